package app

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
	hlru "github.com/hashicorp/golang-lru/v2"
)

const testRef = "https://kv.vault.localhost:8443/secrets/llm-key"

// fakeVault answers resolutions from fields the test sets.
type fakeVault struct {
	value, version atomic.Pointer[string]
	err            atomic.Pointer[error]
	calls          atomic.Int64
	gen            atomic.Uint64 // vault.Service.Generation
}

func (f *fakeVault) set(value, version string, err error) {
	f.value.Store(&value)
	f.version.Store(&version)
	f.err.Store(&err)
}

func (f *fakeVault) resolve(_ context.Context, _ *accounts.Account, _ string) ([]byte, string, error) {
	f.calls.Add(1)
	if err := *f.err.Load(); err != nil {
		return nil, "", err
	}
	return []byte(*f.value.Load()), *f.version.Load(), nil
}

type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestCredentials(v *fakeVault, c *testClock) *upstreamCredentials {
	acct := &accounts.Account{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a", InternalID: "i1"}
	return &upstreamCredentials{resolve: v.resolve, localGen: v.gen.Load, bg: context.Background(), ttl: time.Minute, now: c.now,
		logger: slog.New(slog.DiscardHandler), slots: map[credKey]*credSlot{},
		account: func(id string) (*accounts.Account, bool) { return acct, id == acct.ID }}
}

// TestUpstreamCredentials: one resolution per TTL, a change (generation)
// or an expiry reads again, refusals and outages become the data plane's
// errors, and an outage keeps the last value read.
func TestUpstreamCredentials(t *testing.T) {
	c := &testClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	v := &fakeVault{}
	v.set("v1", "ver1", nil)
	u := newTestCredentials(v, c)
	ga := &gateway.Account{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a", InternalID: "i1"}
	dp := &accounts.DataPlaneDeployment{Name: "chat", KeyVaultSecret: testRef}
	get := func() *upstreamCredential { return u.get(ga, dp) }

	for range 100 {
		if cr := get(); cr.value != "v1" || cr.failed != 0 {
			t.Fatalf("%+v", cr)
		}
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("%d resolutions for 100 requests, want 1", n)
	}
	for _, tt := range []struct {
		name    string
		change  func()
		vault   func()
		value   string
		failed  int
		resolve bool
	}{
		{"rotation-seen-through-the-feed", func() { u.invalidate(storage.Change{}) }, func() { v.set("v2", "ver2", nil) }, "v2", 0, true},
		{"no-change-no-read", func() {}, func() { v.set("v2b", "ver2b", nil) }, "v2", 0, false},
		{"secret-written-on-this-node", func() { v.gen.Add(1) }, func() {}, "v2b", 0, true},
		{"no-change-no-read-again", func() {}, func() { v.set("v3", "ver3", nil) }, "v2b", 0, false},
		{"ttl-expired", func() { c.advance(time.Minute) }, func() {}, "v3", 0, true},
		{"outage-keeps-last-value", func() { u.invalidate(storage.Change{}) },
			func() { v.set("", "", gatehouse.ErrUnavailable) }, "v3", 0, true},
		{"outage-retried-after-a-pause", func() { c.advance(upstreamSecretRetry) }, func() { v.set("v4", "ver4", nil) }, "v4", 0, true},
		{"refusal", func() { u.invalidate(storage.Change{}) },
			func() {
				v.set("", "", gatehouse.Errorf(http.StatusForbidden, "Forbidden", "no").WithInner("ForbiddenByRbac"))
			}, "", http.StatusInternalServerError, true},
		{"refusal-kept-until-a-change", func() { c.advance(time.Second) }, func() { v.set("v5", "ver5", nil) }, "", http.StatusInternalServerError, false},
		{"fixed-by-a-change", func() { u.invalidate(storage.Change{Reset: true}) }, func() {}, "v5", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.vault()
			tt.change()
			before := v.calls.Load()
			cr := get()
			if cr.value != tt.value || cr.failed != tt.failed || (v.calls.Load() > before) != tt.resolve {
				t.Fatalf("value %q failed %d resolved %v; want %q %d %v", cr.value, cr.failed, v.calls.Load() > before,
					tt.value, tt.failed, tt.resolve)
			}
		})
	}

	// With nothing read yet, an outage is a 503 with Retry-After; errors
	// never carry vault details.
	c.advance(time.Hour)
	v.set("", "", errors.New("database down"))
	dp2 := &accounts.DataPlaneDeployment{Name: "fresh", KeyVaultSecret: testRef + "/other"}
	cr := u.get(ga, dp2)
	e, ok := gatehouse.AsError(cr.errorFor("fresh"))
	if !ok || e.Status != http.StatusServiceUnavailable || e.Code != codeUpstreamCredentialUnavailable || e.Header.Get("Retry-After") == "" {
		t.Fatalf("outage without a value: %+v", e)
	}
	cr.failed = http.StatusInternalServerError
	if e, _ := gatehouse.AsError(cr.errorFor("fresh")); e.Status != 500 || e.Code != codeUpstreamCredentialUnavailable {
		t.Fatalf("refusal: %+v", e)
	}
	// An account instance that is gone resolves to a refusal.
	if cr := u.get(&gateway.Account{ID: "/subscriptions/s/gone", InternalID: "x"}, dp); cr.failed != http.StatusInternalServerError {
		t.Fatalf("unknown account: %+v", cr)
	}
}

// BenchmarkDeploymentIndex: the gateway's deployment lookup for a
// deployment with a sealed key (baseline) and one whose key is a Key
// Vault reference (cached resolution).
func BenchmarkDeploymentIndex(b *testing.B) {
	s := teststore.SQLite(b)
	k, err := keyring.Generate(rand.Reader, 1)
	if err != nil {
		b.Fatal(err)
	}
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := teststore.NewWatcher(s)
	deps := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: kr})
	teststore.StartWatcher(b, w, deps.Load)
	acct := &accounts.Account{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a",
		Name: "a", Kind: "OpenAI", InternalID: "i1",
		Identity: &accounts.Identity{Type: "SystemAssigned", System: &accounts.IdentityRef{PrincipalID: "p1"}}}
	key := "sk-sealed"
	spec := accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"}, Endpoint: "http://127.0.0.1:9"}
	spec.Key = &key
	if _, _, err := deps.PutDeployment(b.Context(), acct, "sealed", spec, accounts.Actor{}); err != nil {
		b.Fatal(err)
	}
	spec.Key, spec.KeyVaultSecret = nil, testRef
	if _, _, err := deps.PutDeployment(b.Context(), acct, "vault", spec, accounts.Actor{}); err != nil {
		b.Fatal(err)
	}
	views, _ := hlru.New[deploymentViewKey, *gateway.Deployment](4096)
	v := &fakeVault{}
	v.set("sk-from-vault", "ver1", nil)
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	idx := deploymentIndex{d: deps, views: views, front: new([256]atomic.Pointer[deploymentView]), creds: newTestCredentials(v, c)}
	ga := &gateway.Account{ID: acct.ID, InternalID: acct.InternalID}
	for _, name := range []string{"sealed", "vault"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, ok := idx.Deployment(ga, name)
				if !ok || d.Credential == "" || d.Unavailable != nil {
					b.Fatal("lookup failed")
				}
			}
		})
	}
}
