package gateway

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/server"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// stsLimiter bounds failed STS attempts per client address: a bucket of
// perMinute failures (burst the same) per address, in a bounded LRU so a
// flood of addresses cannot grow memory. An address whose bucket is empty
// is refused before its key is even looked at, until the bucket refills.
type stsLimiter struct {
	now       func() time.Time
	perMinute int
	buckets   *expirable.LRU[string, *rate.Limiter]
}

func newSTSLimiter(perMinute int, now func() time.Time) *stsLimiter {
	return &stsLimiter{now: now, perMinute: perMinute,
		buckets: expirable.NewLRU[string, *rate.Limiter](100_000, nil, 10*time.Minute)}
}

// blocked reports whether addr has used up its failures, and for how long.
func (l *stsLimiter) blocked(addr string) (bool, time.Duration) {
	b, ok := l.buckets.Get(addr)
	if !ok {
		return false, 0
	}
	now := l.now()
	if t := b.TokensAt(now); t < 1 {
		return true, time.Duration((1 - t) / float64(b.Limit()) * float64(time.Second))
	}
	return false, 0
}

// failed spends one of addr's failures.
func (l *stsLimiter) failed(addr string) {
	b, ok := l.buckets.Get(addr)
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.perMinute)
		l.buckets.Add(addr, b)
	}
	b.AllowN(l.now(), 1)
}

// issueToken is POST /sts/v1.0/issueToken: a subscription key in, a JWT of
// STSLifetime out, as plain text. At an account endpoint (named) the key
// must belong to that account; at H the key alone names the account.
func (g *Gateway) issueToken(w http.ResponseWriter, r *http.Request, name string, named bool) error {
	g.corsHeaders(w, r)
	requestIDs(w)
	// The body is ignored (clients send none, or an empty form).
	io.CopyN(io.Discard, r.Body, 4<<10)
	addr := clientIP(r.RemoteAddr)
	if blocked, wait := g.sts.blocked(addr); blocked {
		g.meter.denied(nil, reasonSTSThrottled)
		return throttledFailures(g.opts.STSFailuresPerMinute, wait.Milliseconds())
	}
	fail := func(acct *Account, c *call, err error) error {
		g.sts.failed(addr)
		if acct == nil {
			g.meter.denied(nil, reasonOf(err))
			return err
		}
		return g.deny(r, acct, c, stsAction, err)
	}
	var target *Account
	if named {
		a, ok := g.opts.Accounts.AccountByName(strings.ToLower(name))
		if !ok {
			return fail(nil, nil, deny(errAccessDenied, reasonUnknownAccount))
		}
		target = &a
		// The account's network rules come before its keys (a refusal
		// by configuration: not counted as a failed attempt).
		if a.Network != nil {
			if err := g.checkNetwork(r, target); err != nil {
				return g.deny(r, target, nil, stsAction, err)
			}
		}
	}
	key, ok := presentedKey(r.Header)
	if !ok {
		return fail(target, nil, deny(errAccessDenied, reasonMissing))
	}
	m, ok := g.opts.Accounts.LookupKey(keySum(key))
	if !ok {
		return fail(target, nil, deny(errAccessDenied, reasonInvalidKey))
	}
	acct, ok := g.opts.Accounts.AccountByID(m.AccountID)
	if !ok {
		return fail(target, nil, deny(errAccessDenied, reasonInvalidKey))
	}
	if target != nil && target.ID != acct.ID {
		return fail(target, nil, deny(errAccessDenied, reasonWrongAccount))
	}
	c := &call{account: acct, kind: SlotKind(m.Slot), slot: m.Slot}
	if target == nil && acct.Network != nil {
		if err := g.checkNetwork(r, &acct); err != nil {
			return g.deny(r, &acct, c, stsAction, err)
		}
	}
	if acct.DisableLocalAuth {
		// A configuration answer, not a guess: not counted as a failure.
		return g.deny(r, &acct, c, stsAction, deny(errLocalAuthDisabled, reasonLocalAuthDisabled))
	}
	server.SetPrincipal(r.Context(), string(c.kind))
	c.usage = g.meter.entry(&acct, c)
	if err := g.meter.allow(&acct, c); err != nil {
		return g.deny(r, &acct, c, stsAction, err)
	}
	tok, err := g.opts.Issuer.IssueSTSToken(r.Context(), STSGrant{Account: acct, Slot: m.Slot,
		Generation: m.Generation, Lifetime: g.opts.STSLifetime})
	if err != nil {
		return err
	}
	g.meter.stsIssued.WithLabelValues(acct.Name, string(c.kind)).Inc()
	c.usage.served(r, c.kind, http.StatusOK)
	h := w.Header()
	h.Set("Content-Type", "application/jwt; charset=us-ascii")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = io.WriteString(w, tok)
	return err
}

// stsAction names the STS operation in audit entries.
const stsAction = "Microsoft.CognitiveServices/accounts/sts/issueToken/action"

func reasonOf(err error) string {
	if d, ok := err.(*denial); ok {
		return d.reason
	}
	return "error"
}
