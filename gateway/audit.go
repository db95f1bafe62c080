package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"golang.org/x/time/rate"
)

// Denial is one refused data-plane request, as audited. It never holds a
// key or a token.
type Denial struct {
	Time      time.Time
	RequestID string
	// AccountID is the ARM id of the addressed account.
	AccountID string
	// Action is the data action (or the STS action) that was refused.
	Action     string
	Credential CredentialKind // "" when none was presented
	Principal  gatehouse.Principal
	Status     int
	Code       string
	// Reason is one of the fixed denial reasons (invalid_key, revoked_token, ...).
	Reason        string
	ClientAddress string
	// Suppressed counts denials that were not audited (rate limit, full
	// queue) since the previous audited one.
	Suppressed int64
}

// Auditor appends denials to the audit log. It is called from the
// auditor's own goroutine, never on a request.
type Auditor interface {
	AuditDenial(ctx context.Context, d Denial) error
}

// denialAuditor decouples the hot path from the audit log: record never
// blocks; a token bucket bounds how many denials are written (a
// credential-stuffing flood must not become a write flood), and the ones
// left out are counted into the next entry.
type denialAuditor struct {
	sink       Auditor
	queue      chan Denial
	limit      *rate.Limiter
	now        func() time.Time
	logger     *slog.Logger
	meter      *meter
	suppressed atomic.Int64
	// pending counts denials queued and not yet written, the one run is
	// writing included, so drain can wait for that one too: "flushed"
	// means in the log.
	pending atomic.Int64
}

func newDenialAuditor(sink Auditor, perSecond float64, now func() time.Time, logger *slog.Logger, m *meter) *denialAuditor {
	return &denialAuditor{sink: sink, queue: make(chan Denial, 256),
		limit: rate.NewLimiter(rate.Limit(perSecond), 20), now: now, logger: logger, meter: m}
}

func (a *denialAuditor) record(d Denial) {
	if a.sink == nil || d.AccountID == "" {
		return
	}
	if !a.limit.AllowN(a.now(), 1) {
		a.suppressed.Add(1)
		a.meter.auditLost.Inc()
		return
	}
	d.Suppressed = a.suppressed.Swap(0)
	a.pending.Add(1)
	select {
	case a.queue <- d:
	default:
		a.pending.Add(-1)
		a.suppressed.Add(1 + d.Suppressed)
		a.meter.auditLost.Inc()
	}
}

// run writes queued denials until ctx is done.
func (a *denialAuditor) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-a.queue:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := a.sink.AuditDenial(wctx, d); err != nil && ctx.Err() == nil {
				a.logger.Warn("gateway: audit of a denial failed", "err", err, "request_id", d.RequestID)
				a.suppressed.Add(1 + d.Suppressed)
			}
			cancel()
			a.pending.Add(-1)
		}
	}
}

// drain writes whatever is queued and waits for the denial run may be
// writing (tests, shutdown), until ctx is done.
func (a *denialAuditor) drain(ctx context.Context) {
	for a.pending.Load() > 0 && ctx.Err() == nil {
		select {
		case d := <-a.queue:
			if err := a.sink.AuditDenial(ctx, d); err != nil {
				a.logger.Warn("gateway: audit of a denial failed", "err", err, "request_id", d.RequestID)
			}
			a.pending.Add(-1)
		default:
			time.Sleep(time.Millisecond) // run is writing one
		}
	}
}
