package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Hand-written fakes of the gateway's consumer-side interfaces. The real
// implementations (accounts index, authority, authz) are exercised by the
// end-to-end tests in cmd/gatehouse/internal/app.

type fakeAccounts struct {
	mu     sync.RWMutex
	byName map[string]Account
	keys   map[[32]byte]KeyMatch
	plain  map[string][2]string // account id → current keys
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{byName: map[string]Account{}, keys: map[[32]byte]KeyMatch{}, plain: map[string][2]string{}}
}

// add creates an account with two fresh keys and returns them.
func (f *fakeAccounts) add(a Account) [2]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a.Generations = [2]int64{1, 1}
	f.byName[a.Name] = a
	var ks [2]string
	for slot := range ks {
		ks[slot] = rand.Text() + rand.Text()
		f.keys[keySum(ks[slot])] = KeyMatch{AccountID: a.ID, Slot: slot, Generation: 1}
	}
	f.plain[a.ID] = ks
	return ks
}

// regenerate replaces one slot's key and bumps its generation, as the
// accounts index does when the change feed delivers a regeneration.
func (f *fakeAccounts) regenerate(name string, slot int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.byName[name]
	ks := f.plain[a.ID]
	delete(f.keys, keySum(ks[slot]))
	a.Generations[slot]++
	ks[slot] = rand.Text() + rand.Text()
	f.keys[keySum(ks[slot])] = KeyMatch{AccountID: a.ID, Slot: slot, Generation: a.Generations[slot]}
	f.byName[name] = a
	f.plain[a.ID] = ks
	return ks[slot]
}

// update changes an account in place, as a change feed delivery would.
func (f *fakeAccounts) update(name string, fn func(*Account)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.byName[name]
	fn(&a)
	f.byName[name] = a
}

func (f *fakeAccounts) AccountByName(name string) (Account, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.byName[name]
	return a, ok
}

func (f *fakeAccounts) AccountByID(id string) (Account, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, a := range f.byName {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

func (f *fakeAccounts) LookupKey(sum [32]byte) (KeyMatch, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.keys[sum]
	return m, ok
}

// fakeTokens is issuer and verifier at once: tokens are random strings
// mapped to what they stand for; "expiring" them removes nothing but makes
// Verify refuse them once the fake clock passes their expiry.
type fakeTokens struct {
	mu     sync.Mutex
	now    func() time.Time
	tokens map[string]*VerifiedToken
}

func (f *fakeTokens) IssueSTSToken(ctx context.Context, g STSGrant) (string, error) {
	return f.mint(&VerifiedToken{Audience: STSAudience, STS: true, AccountID: g.Account.ID, Instance: g.Account.InternalID, Slot: g.Slot,
		Generation: g.Generation, Expires: f.now().Add(g.Lifetime)}), nil
}

func (f *fakeTokens) mint(t *VerifiedToken) string {
	raw := "tok." + rand.Text()
	f.mu.Lock()
	f.tokens[raw] = t
	f.mu.Unlock()
	return raw
}

func (f *fakeTokens) identity(oid, audience string) string {
	return f.mint(&VerifiedToken{Audience: audience, Expires: f.now().Add(time.Hour),
		Principal: gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: oid, TenantID: gatehouse.NewGUID()}})
}

var errBadToken = errors.New("fake: invalid token")

func (f *fakeTokens) VerifyToken(ctx context.Context, raw string, audiences ...string) (VerifiedToken, error) {
	f.mu.Lock()
	t, ok := f.tokens[raw]
	f.mu.Unlock()
	if !ok || f.now().After(t.Expires) {
		return VerifiedToken{}, errBadToken
	}
	for _, a := range audiences {
		if strings.EqualFold(a, t.Audience) {
			return *t, nil
		}
	}
	return VerifiedToken{}, errBadToken
}

// fakeAuthz grants each object id a set of data actions on a scope.
type fakeAuthz struct {
	mu     sync.Mutex
	grants map[string]bool // oid|action|scope
	fail   bool
}

func (f *fakeAuthz) grant(oid, action, scope string) {
	f.mu.Lock()
	f.grants[oid+"|"+action+"|"+scope] = true
	f.mu.Unlock()
}

func (f *fakeAuthz) revoke(oid, action, scope string) {
	f.mu.Lock()
	delete(f.grants, oid+"|"+action+"|"+scope)
	f.mu.Unlock()
}

func (f *fakeAuthz) AuthorizeData(ctx context.Context, p gatehouse.Principal, action, scope string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return false, errors.New("fake: authz store down")
	}
	return f.grants[p.ObjectID+"|"+action+"|"+scope], nil
}

type fakeDeployments struct {
	mu sync.Mutex
	m  map[string]*Deployment // account id|name
}

func (f *fakeDeployments) put(accountID string, d *Deployment) {
	f.mu.Lock()
	f.m[accountID+"|"+d.Name] = d
	f.mu.Unlock()
}

func (f *fakeDeployments) Deployment(acct *Account, name string) (*Deployment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.m[acct.ID+"|"+name]
	return d, ok
}

func (f *fakeDeployments) DeploymentNames(acct *Account) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, d := range f.m {
		if strings.HasPrefix(k, acct.ID+"|") {
			out = append(out, d.Name)
		}
	}
	slices.Sort(out)
	return out
}

type fakeUsage struct {
	mu      sync.Mutex
	batches [][]Usage
	fail    bool
}

func (f *fakeUsage) RecordUsage(ctx context.Context, batch []Usage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("fake: store down")
	}
	f.batches = append(f.batches, batch)
	return nil
}

// each calls fn with every flushed usage of one account and slot (or
// principal), in flush order.
func (f *fakeUsage) each(accountID string, slot int, principal string, fn func(Usage)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		for _, u := range b {
			if u.AccountID == accountID && u.Slot == slot && u.PrincipalID == principal {
				fn(u)
			}
		}
	}
}

// total sums the flushed requests of one account and slot (or principal).
func (f *fakeUsage) total(accountID string, slot int, principal string) (n int64, last Usage) {
	f.each(accountID, slot, principal, func(u Usage) { n, last = n+u.Requests, u })
	return n, last
}

// tokens sums the flushed tokens of one account and slot (or principal).
func (f *fakeUsage) tokens(accountID string, slot int, principal string) (prompt, completion int64) {
	f.each(accountID, slot, principal, func(u Usage) { prompt, completion = prompt+u.PromptTokens, completion+u.CompletionTokens })
	return prompt, completion
}

type fakeAudit struct {
	mu      sync.Mutex
	denials []Denial
}

func (f *fakeAudit) AuditDenial(ctx context.Context, d Denial) error {
	f.mu.Lock()
	f.denials = append(f.denials, d)
	f.mu.Unlock()
	return nil
}

func (f *fakeAudit) reasons() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]int{}
	for _, d := range f.denials {
		m[d.Reason] += 1 + int(d.Suppressed)
	}
	return m
}

// clock is a settable fake time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a gateway behind the real router and middleware, on an
// httptest server, with fakes behind it.
type fixture struct {
	gw       *Gateway
	handler  http.Handler // middleware, router and gateway, as srv serves them
	srv      *httptest.Server
	host     string // the router's H
	clock    *clock
	accounts *fakeAccounts
	tokens   *fakeTokens
	authz    *fakeAuthz
	deps     *fakeDeployments
	usage    *fakeUsage
	audit    *fakeAudit
	reg      *prometheus.Registry
}

func newFixture(t testing.TB, adjust ...func(*Options)) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	f := &fixture{
		host: "gw.test", clock: clk, accounts: newFakeAccounts(),
		tokens: &fakeTokens{now: clk.Now, tokens: map[string]*VerifiedToken{}},
		authz:  &fakeAuthz{grants: map[string]bool{}},
		deps:   &fakeDeployments{m: map[string]*Deployment{}},
		usage:  &fakeUsage{}, audit: &fakeAudit{}, reg: prometheus.NewRegistry(),
	}
	opts := Options{Accounts: f.accounts, Tokens: f.tokens, Issuer: f.tokens, Authz: f.authz,
		Deployments: f.deps, Usage: f.usage, Audit: f.audit, Registry: f.reg, Now: clk.Now,
		Language: func(w http.ResponseWriter, r *http.Request) error {
			server.WriteJSON(w, http.StatusOK, map[string]string{"kind": "LanguageDetectionResults"})
			return nil
		}}
	for _, fn := range adjust {
		fn(&opts)
	}
	f.gw = New(opts)
	rt := server.NewRouter(f.host)
	f.gw.Mount(rt)
	mw := &server.Middleware{Metrics: server.NewMetrics(), Logger: slog.New(slog.DiscardHandler)}
	f.handler = mw.Wrap(rt)
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// req describes one request to the fixture. url is relative to H
// ("/ai/acct/...") or names a host form ("acct.openai.gw.test/...").
type req struct {
	method, url string
	header      map[string]string
	body        string
}

func (f *fixture) do(t testing.TB, rq req) *http.Response {
	t.Helper()
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	host, path := f.host, rq.url
	if !strings.HasPrefix(path, "/") {
		host, path, _ = strings.Cut(path, "/")
		path = "/" + path
	}
	r, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Host = host
	r.Header.Set("User-Agent", "fixture/1.0")
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// closedURL is the URL of an address nothing listens on (an upstream
// that is down).
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// transports are the two ways to an upstream every proxy test runs both
// of: the gateway's own client, and net/http's (Options.Transport).
var transports = []string{"upstream-client", "http-transport"}

// onTransport is the fixture option that picks one of transports.
func onTransport(transport string) func(*Options) {
	return func(o *Options) {
		if transport == "http-transport" {
			o.Transport = &http.Transport{}
		}
	}
}
