package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Usage is what one credential did since the previous flush: the key usage
// evidence of the management API (which slot is still used, by whom,
// before it is regenerated).
type Usage struct {
	AccountID string
	// Instance is the account instance (Account.InternalID) the requests
	// were made to: counts of an account since deleted and created again
	// under the same id are not the new one's.
	Instance string
	// Slot is 0 (key1) or 1 (key2) for keys and the STS tokens minted from
	// them (and the STS calls that minted them); -1 for an identity.
	Slot int
	// PrincipalID is the identity's object id (Slot -1).
	PrincipalID string
	// Generation is the slot's key generation the requests authenticated
	// with (0 for identities): uses counted before a regeneration and
	// flushed after it belong to the key that is gone, not to the new one.
	Generation int64
	// Requests is the number of requests since the previous flush.
	Requests int64
	// PromptTokens and CompletionTokens are what the upstreams reported
	// in the usage of the answers to those requests (tokens.go).
	PromptTokens, CompletionTokens int64
	LastUsed                       time.Time
	// ClientAddresses and UserAgents are the most recent distinct values,
	// newest first, at most maxRecent each.
	ClientAddresses []string
	UserAgents      []string
}

// UsageSink stores flushed usage (the accounts service). It is called from
// the flush loop only, never on a request.
type UsageSink interface {
	RecordUsage(ctx context.Context, batch []Usage) error
}

const maxRecent = 5

// meter holds the per-credential state of the hot path: usage counters,
// rate limiters and pre-resolved metric counters. Entries live in sync.Maps
// keyed by account and credential; an entry idle for idleAfter is dropped
// after it has been flushed.
type meter struct {
	now     func() time.Time
	entries sync.Map // usageKey → *usageEntry
	// front answers most lookups of entries before the map (see
	// frontSlot).
	front    frontTable[usageEntry]
	accounts sync.Map // account id → *limiter

	requests  *prometheus.CounterVec
	denials   *prometheus.CounterVec
	upstream  *prometheus.HistogramVec
	stsIssued *prometheus.CounterVec
	auditLost prometheus.Counter
	tokens    *tokenMetrics
	// sockets counts the WebSocket sessions open (realtime.go).
	sockets *prometheus.GaugeVec
	// flushing serializes flushes: a Flush that finds the counters already
	// taken by the periodic flush waits until those are stored.
	flushing sync.Mutex
}

const idleAfter = time.Hour

type usageKey struct {
	account    string
	instance   string
	slot       int
	generation int64
	principal  string
}

type usageEntry struct {
	key         usageKey
	accountName string
	count       atomic.Int64 // since the last flush
	prompt      atomic.Int64 // tokens since the last flush
	completion  atomic.Int64
	lastUsed    atomic.Int64 // unix nanoseconds
	last        atomic.Pointer[clientSig]
	limiter     limiter
	okCounters  [4]atomic.Pointer[prometheus.Counter] // by credential kind, status 200
	upstream    atomic.Pointer[prometheus.Observer]   // the account's upstream latency
	m           *meter

	mu     sync.Mutex
	addrs  []string
	agents []string
	dirty  bool // addrs/agents changed since the last flush
}

type clientSig struct{ addr, agent string }

// limiter is a token bucket of a Rate — Count requests per Period, with a
// burst of Count (at least 1) — re-configured when the account's limits
// change.
type limiter struct {
	mu   sync.Mutex
	rate Rate
	lim  *rate.Limiter
}

// allow takes one request from the bucket, or returns how long until one
// is available.
func (l *limiter) allow(now time.Time, r Rate) (bool, time.Duration) {
	l.mu.Lock()
	if l.lim == nil || l.rate != r {
		every := rate.Limit(r.Count / r.Period.Seconds())
		burst := max(1, int(r.Count))
		if l.lim == nil {
			l.lim = rate.NewLimiter(every, burst)
		} else {
			l.lim.SetLimitAt(now, every)
			l.lim.SetBurstAt(now, burst)
		}
		l.rate = r
	}
	lim := l.lim
	l.mu.Unlock()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

func newMeter(reg prometheus.Registerer, now func() time.Time) *meter {
	m := &meter{
		now: now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_gateway_requests_total",
			Help: "Authenticated data-plane requests by account, credential kind (key1, key2, sts, identity) and status.",
		}, []string{"account", "credential", "status"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_gateway_denials_total",
			Help: "Refused data-plane requests by account and reason (unknown accounts are counted under account \"-\").",
		}, []string{"account", "reason"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_gateway_upstream_seconds",
			Help:    "Time from forwarding a request to the upstream's response headers, by account.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"account"}),
		stsIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sts_tokens_issued_total",
			Help: "STS tokens issued, by account and the key slot they were minted from.",
		}, []string{"account", "credential"}),
		auditLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_gateway_denials_unaudited_total",
			Help: "Denials not written to the audit log because of its rate limit or a full queue (they are counted in the next audited entry).",
		}),
	}
	m.tokens = newTokenMetrics()
	m.sockets = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_gateway_websockets_open",
		Help: "WebSocket sessions (the Realtime API) open through the gateway, by account.",
	}, []string{"account"})
	if reg != nil {
		reg.MustRegister(m.requests, m.denials, m.upstream, m.stsIssued, m.auditLost, m.tokens.vec, m.sockets)
	}
	return m
}

func kindIndex(k CredentialKind) int {
	switch k {
	case CredentialKey2:
		return 1
	case CredentialSTS:
		return 2
	case CredentialIdentity:
		return 3
	}
	return 0
}

// entry returns the usage entry of c on acct, creating it on first use.
func (m *meter) entry(acct *Account, c *call) *usageEntry {
	k := usageKey{account: acct.ID, instance: acct.InternalID, slot: c.slot}
	if c.slot < 0 {
		k.principal = c.principal.ObjectID
	} else {
		// The generation the key or STS token was checked against: after
		// a regeneration, the new key's uses count apart.
		k.generation = acct.Generations[c.slot&1]
	}
	slot := &m.front[frontSlot(k.account, k.principal, uint64(k.slot)<<32^uint64(k.generation))]
	if e := slot.Load(); e != nil && e.key == k {
		return e
	}
	v, ok := m.entries.Load(k)
	if !ok {
		v, _ = m.entries.LoadOrStore(k, &usageEntry{key: k, accountName: acct.Name, m: m})
	}
	e := v.(*usageEntry)
	slot.Store(e)
	return e
}

// frontTable is a direct-mapped table of pointers in front of a sync.Map
// whose keys are structs of strings: such a Load hashes the key through
// its interface, field by field (~350 instructions, runtime.typehash);
// a slot is an atomic load and a comparison of the key, whose strings are
// most often the very ones the slot was filled with (the same account
// view's), so equal by pointer. A slot may hold any entry; one whose key
// differs is a miss, and the map's answer replaces it.
type frontTable[T any] [256]atomic.Pointer[T]

// frontSlot is the slot of a key made of the strings a and b (by where
// their bytes are, not what they are: the same view's strings land in the
// same slot) and the number n.
func frontSlot(a, b string, n uint64) int {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(a))))>>4 ^ uint64(uintptr(unsafe.Pointer(unsafe.StringData(b))))>>3 ^ n
	h *= 0x9e3779b97f4a7c15
	return int(h >> 56)
}

// forget empties the slots that hold p (an entry leaving the map), so a
// later lookup finds the map's.
func (t *frontTable[T]) forget(p *T) {
	for i := range t {
		t[i].CompareAndSwap(p, nil)
	}
}

// allow applies the credential's and then the account's rate limit.
func (m *meter) allow(acct *Account, c *call) error {
	lim := acct.Limits
	if !lim.Credential.limited() && !lim.Account.limited() {
		return nil
	}
	now := m.now()
	if lim.Credential.limited() {
		if ok, wait := c.usage.limiter.allow(now, lim.Credential); !ok {
			return throttled(lim.Credential, wait.Milliseconds(), reasonThrottled)
		}
	}
	if lim.Account.limited() {
		v, ok := m.accounts.Load(acct.ID)
		if !ok {
			v, _ = m.accounts.LoadOrStore(acct.ID, &limiter{})
		}
		if ok, wait := v.(*limiter).allow(now, lim.Account); !ok {
			return throttled(lim.Account, wait.Milliseconds(), reasonThrottled)
		}
	}
	return nil
}

// hdrUserAgent is the canonical name the client's User-Agent is found by.
const hdrUserAgent = "User-Agent"

// served counts one request that reached its service.
func (e *usageEntry) served(r *http.Request, kind CredentialKind, status int) {
	e.count.Add(1)
	e.lastUsed.Store(e.m.now().UnixNano())
	var agent string // indexed: Get would canonicalize the name per request
	if v := r.Header[hdrUserAgent]; len(v) > 0 {
		agent = v[0]
	}
	e.note(clientIP(r.RemoteAddr), agent)
	if status == http.StatusOK {
		p := &e.okCounters[kindIndex(kind)]
		ctr := p.Load()
		if ctr == nil {
			c := e.m.requests.WithLabelValues(e.accountName, string(kind), "200")
			ctr = &c
			p.Store(ctr)
		}
		(*ctr).Inc()
		return
	}
	e.m.requests.WithLabelValues(e.accountName, string(kind), strconv.Itoa(status)).Inc()
}

// tokens adds the tokens an answer reported.
func (e *usageEntry) tokens(prompt, completion int64) {
	e.prompt.Add(prompt)
	e.completion.Add(completion)
}

// observeUpstream records the time to an upstream's response headers.
func (e *usageEntry) observeUpstream(d time.Duration) {
	o := e.upstream.Load()
	if o == nil {
		h := e.m.upstream.WithLabelValues(e.accountName)
		o = &h
		e.upstream.Store(o)
	}
	(*o).Observe(d.Seconds())
}

// note remembers the client's address and user agent. The common case (the
// same client as last time) takes no lock.
func (e *usageEntry) note(addr, agent string) {
	if len(agent) > 256 {
		agent = agent[:256]
	}
	if s := e.last.Load(); s != nil && s.addr == addr && s.agent == agent {
		return
	}
	e.mu.Lock()
	e.addrs = pushRecent(e.addrs, addr)
	e.agents = pushRecent(e.agents, agent)
	e.dirty = true
	e.mu.Unlock()
	e.last.Store(&clientSig{addr, agent})
}

// pushRecent moves v to the front of list, keeping at most maxRecent
// distinct values.
func pushRecent(list []string, v string) []string {
	if v == "" {
		return list
	}
	for i, x := range list {
		if x == v {
			copy(list[1:i+1], list[:i])
			list[0] = v
			return list
		}
	}
	if len(list) < maxRecent {
		list = append(list, "")
	}
	copy(list[1:], list[:len(list)-1])
	list[0] = v
	return list
}

// denied counts a refusal.
func (m *meter) denied(acct *Account, reason string) {
	name := "-"
	if acct != nil {
		name = acct.Name
	}
	m.denials.WithLabelValues(name, reason).Inc()
}

// flush sends every entry's counts to sink. Counts taken for a failed
// flush are put back, so none is lost while the store is unreachable. When
// it returns, everything counted before the call is stored (or put back):
// flushes run one at a time.
func (m *meter) flush(ctx context.Context, sink UsageSink, logger *slog.Logger) error {
	m.flushing.Lock()
	defer m.flushing.Unlock()
	now := m.now()
	var batch []Usage
	var taken []*usageEntry
	m.entries.Range(func(k, v any) bool {
		e := v.(*usageEntry)
		n := e.count.Swap(0)
		prompt, completion := e.prompt.Swap(0), e.completion.Swap(0)
		e.mu.Lock()
		dirty := e.dirty
		e.dirty = false
		u := Usage{AccountID: e.key.account, Instance: e.key.instance, Slot: e.key.slot, Generation: e.key.generation, PrincipalID: e.key.principal, Requests: n,
			PromptTokens: prompt, CompletionTokens: completion,
			ClientAddresses: append([]string(nil), e.addrs...), UserAgents: append([]string(nil), e.agents...)}
		e.mu.Unlock()
		last := e.lastUsed.Load()
		if n == 0 && prompt == 0 && completion == 0 && !dirty {
			if last != 0 && now.Sub(time.Unix(0, last)) > idleAfter {
				m.entries.Delete(k)
				m.front.forget(e)
			}
			return true
		}
		if last == 0 {
			last = now.UnixNano() // tokens of a session still open (realtime.go)
		}
		u.LastUsed = time.Unix(0, last).UTC()
		batch = append(batch, u)
		taken = append(taken, e)
		return true
	})
	if len(batch) == 0 || sink == nil {
		return nil
	}
	if err := sink.RecordUsage(ctx, batch); err != nil {
		for i, e := range taken {
			e.count.Add(batch[i].Requests)
			e.tokens(batch[i].PromptTokens, batch[i].CompletionTokens)
			e.mu.Lock()
			e.dirty = true
			e.mu.Unlock()
		}
		logger.Warn("gateway: usage flush failed; counts kept for the next flush", "err", err, "entries", len(batch))
		return err
	}
	return nil
}
