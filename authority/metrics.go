package authority

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the authority's counters. Labels are fixed words: never a
// client id, a token or a secret.
type metrics struct {
	issued   prometheus.Counter
	verified *prometheus.CounterVec
	grants   *prometheus.CounterVec
	// The three children of verified, resolved once: Verify is on every
	// bearer request's path.
	verifiedOK, verifiedExpired, verifiedInvalid prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_authority_tokens_issued_total",
			Help: "Access tokens signed.",
		}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authority_token_verifications_total",
			Help: "Token verifications by result (ok, expired, invalid).",
		}, []string{"result"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authority_token_requests_total",
			Help: "Token endpoint requests by grant and OAuth error (\"\" = success).",
		}, []string{"grant", "error"}),
	}
	if reg != nil {
		reg.MustRegister(m.issued, m.verified, m.grants)
	}
	m.verifiedOK = m.verified.WithLabelValues("ok")
	m.verifiedExpired = m.verified.WithLabelValues("expired")
	m.verifiedInvalid = m.verified.WithLabelValues("invalid")
	return m
}

func (m *metrics) countVerify(err error) {
	if errors.Is(err, ErrTokenExpired) {
		m.verifiedExpired.Inc()
	} else {
		m.verifiedInvalid.Inc()
	}
}
