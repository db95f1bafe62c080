package vault_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

const sub = "11111111-2222-3333-4444-555555555555"
const tenant = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

// clock is an injected, settable time.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time                           { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Add(d time.Duration)                      { c.t.Add(int64(d)) }
func uri(name string) string                              { return "https://" + name + ".vault.gatehouse.test/" }
func allowAll(string, string, *gatehouse.ResourceID) bool { return true }

type authorizerFunc func(principalID, action string, scope *gatehouse.ResourceID) bool

func (f authorizerFunc) AuthorizeData(p, a string, s *gatehouse.ResourceID) bool { return f(p, a, s) }

func sealer(t testing.TB) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Generate(rand.Reader, 1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type fixture struct {
	svc   *vault.Service
	store storage.Store
	clock *clock
}

func newFixture(t testing.TB, store storage.Store, auth vault.Authorizer, opts ...func(*vault.Options)) *fixture {
	t.Helper()
	c := newClock()
	w := teststore.NewWatcher(store)
	o := vault.Options{Sealer: sealer(t), VaultURI: uri, Now: c.Now, Authorizer: auth}
	for _, f := range opts {
		f(&o)
	}
	svc, err := vault.New(context.Background(), store, w, o)
	if err != nil {
		t.Fatal(err)
	}
	teststore.StartWatcher(t, w, svc.Load)
	return &fixture{svc: svc, store: store, clock: c}
}

func (f *fixture) vault(t testing.TB, name string, spec vault.Spec) *vault.Vault {
	t.Helper()
	id, ok := vault.ParseID("/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name)
	if !ok {
		t.Fatal("bad id")
	}
	spec.Location, spec.TenantID = "westus", tenant
	if _, _, err := f.svc.PutVault(context.Background(), id, spec, vault.Actor{}); err != nil {
		t.Fatal(err)
	}
	v, ok := f.svc.VaultByName(strings.ToLower(name))
	if !ok {
		t.Fatal("vault not in the index after PutVault")
	}
	return v
}

func set(t testing.TB, f *fixture, v *vault.Vault, name, value string) *vault.Secret {
	t.Helper()
	s, err := f.svc.SetSecret(context.Background(), v, name, vault.SetInput{Value: []byte(value)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func status(err error) int {
	if err == nil {
		return 200
	}
	return gatehouse.ErrorStatus(err)
}

func TestSecrets(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		f := newFixture(t, store, authorizerFunc(allowAll))
		ctx := t.Context()
		v := f.vault(t, "kv1", vault.Spec{})
		t.Run("read-your-writes", func(t *testing.T) {
			// Every set is visible to the next read on this node, cache or not.
			for i := range 20 {
				set(t, f, v, "ryw", fmt.Sprint("v", i))
				got, err := f.svc.GetSecret(ctx, v, "ryw", "")
				if err != nil || string(got.Value) != fmt.Sprint("v", i) {
					t.Fatalf("after set %d: %q %v", i, got.Value, err)
				}
			}
		})
		t.Run("concurrent-sets", func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() { set(t, f, v, "busy", fmt.Sprint("value-", i)) })
			}
			wg.Wait()
			list, _, err := f.svc.ListVersions(ctx, v, "busy", "", 25)
			if err != nil || len(list) != 8 {
				t.Fatalf("%d versions, %v", len(list), err)
			}
			if _, err := f.svc.GetSecret(ctx, v, "busy", ""); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("sealed-at-rest", func(t *testing.T) {
			s := set(t, f, v, "sealed", "plain-value-xyz")
			objs, err := store.List(ctx, storage.ListOptions{Kind: vault.KindVersion, Prefix: v.InternalID + "/sealed/"})
			if err != nil || len(objs.Objects) != 1 {
				t.Fatalf("%v %v", objs, err)
			}
			o := objs.Objects[0]
			if strings.Contains(string(o.Data)+string(o.Sealed), "plain-value-xyz") || !strings.HasSuffix(o.Key, s.Version) {
				t.Fatal("value stored in plaintext")
			}
			// The blob is bound to its record: moved elsewhere it does not open.
			if _, err := sealer(t).Open(o.Sealed, keyring.AAD(vault.KindVersion, o.Key)); err == nil {
				t.Fatal("opened with another key")
			}
		})
	})
}

// TestScheduledPurge: deleted secrets and vaults are purged once their
// retention has passed, even with purge protection; not before.
func TestScheduledPurge(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		var purged []string
		f := newFixture(t, store, nil, func(o *vault.Options) {
			o.OnVaultPurged = func(_ context.Context, id *gatehouse.ResourceID) error {
				purged = append(purged, id.Key())
				return nil
			}
		})
		ctx := t.Context()
		v := f.vault(t, "sched", vault.Spec{RetentionDays: ptr(7), EnablePurgeProtection: ptr(true)})
		set(t, f, v, "gone", "x")
		set(t, f, v, "stays", "y")
		if _, err := f.svc.DeleteSecret(ctx, v, "gone"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.PurgeSecret(ctx, v, "gone"); status(err) != 403 {
			t.Fatalf("purge with protection: %v", err)
		}
		f.clock.Add(7*24*time.Hour - time.Second)
		if n, err := f.svc.PurgeDue(ctx); n != 0 || err != nil {
			t.Fatalf("before the date: %d %v", n, err)
		}
		f.clock.Add(time.Second)
		if n, err := f.svc.PurgeDue(ctx); n != 1 || err != nil {
			t.Fatalf("at the date: %d %v", n, err)
		}
		if _, err := f.svc.GetDeletedSecret(ctx, v, "gone"); status(err) != 404 {
			t.Fatalf("after purge: %v", err)
		}
		if left, _ := store.List(ctx, storage.ListOptions{Kind: vault.KindVersion, Prefix: v.InternalID + "/gone/"}); len(left.Objects) != 0 {
			t.Fatalf("%d versions left", len(left.Objects))
		}
		if _, err := f.svc.GetSecret(ctx, v, "stays", ""); err != nil {
			t.Fatal(err)
		}

		// The vault itself.
		id := v.Scope()
		if _, err := f.svc.DeleteVault(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.PurgeDeletedVault(ctx, sub, "westus", "sched"); status(err) != 409 {
			t.Fatalf("purge protected vault: %v", err)
		}
		f.clock.Add(7 * 24 * time.Hour)
		if n, err := f.svc.PurgeDue(ctx); n != 1 || err != nil {
			t.Fatalf("vault purge: %d %v", n, err)
		}
		if len(purged) != 1 || purged[0] != v.Scope().Key() {
			t.Fatalf("OnVaultPurged: %v", purged)
		}
		for _, kind := range []string{vault.KindVault, vault.KindSecret, vault.KindVersion} {
			if left, _ := store.List(ctx, storage.ListOptions{Kind: kind}); len(left.Objects) != 0 {
				t.Fatalf("%d %s objects left", len(left.Objects), kind)
			}
		}
	})
}

// TestPurgeResumes: a purge interrupted after marking (a crash) is
// finished by the purge loop.
func TestPurgeResumes(t *testing.T) {
	store := teststore.SQLite(t)
	f := newFixture(t, store, nil)
	ctx := t.Context()
	v := f.vault(t, "resume", vault.Spec{})
	set(t, f, v, "half", "x")
	if _, err := f.svc.DeleteSecret(ctx, v, "half"); err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: mark the record purging as purgeSecret does.
	key := v.InternalID + "/half"
	if _, err := store.Update(ctx, vault.KindSecret, key, func(o *storage.Object) error {
		o.Data = []byte(strings.Replace(string(o.Data), `"state":"deleted"`, `"state":"purging"`, 1))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.PurgeDue(ctx); n != 1 || err != nil {
		t.Fatalf("resume: %d %v", n, err)
	}
	if _, err := store.Get(ctx, vault.KindSecret, key); err == nil {
		t.Fatal("the purging secret is still there")
	}
}

func TestResolveSecretReference(t *testing.T) {
	store := teststore.SQLite(t)
	allowed := "oid-allowed"
	f := newFixture(t, store, authorizerFunc(func(p, action string, scope *gatehouse.ResourceID) bool {
		return p == allowed && action == vault.ActionGetSecret && strings.HasSuffix(scope.Key(), "/secrets/key")
	}))
	ctx := t.Context()
	v := f.vault(t, "Refs", vault.Spec{})
	s := set(t, f, v, "key", "upstream")
	ok := gatehouse.Principal{ObjectID: allowed}
	for _, tt := range []struct {
		name string
		p    gatehouse.Principal
		uri  string
		want int
	}{
		{"latest", ok, "https://refs.vault.gatehouse.test/secrets/key", 200},
		{"upper-case-host", ok, "https://REFS.vault.gatehouse.test/secrets/key/", 200},
		{"version", ok, "https://refs.vault.gatehouse.test/secrets/key/" + s.Version, 200},
		{"denied", gatehouse.Principal{ObjectID: "other"}, "https://refs.vault.gatehouse.test/secrets/key", 403},
		{"anonymous", gatehouse.Principal{}, "https://refs.vault.gatehouse.test/secrets/key", 403},
		{"wrong-domain", ok, "https://refs.vault.evil.test/secrets/key", 400},
		{"userinfo", ok, "https://u:p@refs.vault.gatehouse.test/secrets/key", 400},
		{"too-deep", ok, "https://refs.vault.gatehouse.test/secrets/key/" + s.Version + "/x", 400},
		{"no-vault", ok, "https://nope.vault.gatehouse.test/secrets/key", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			val, ver, err := f.svc.ResolveSecretReference(ctx, tt.p, tt.uri)
			if status(err) != tt.want {
				t.Fatalf("%v, want %d", err, tt.want)
			}
			if tt.want == 200 && (string(val) != "upstream" || ver != s.Version) {
				t.Fatalf("%q %s", val, ver)
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	store := teststore.SQLite(f)
	fx := newFixture(f, store, nil)
	for _, s := range []string{"https://kv.vault.gatehouse.test/secrets/a", "https://kv.vault.gatehouse.test/secrets/a/0123456789abcdef0123456789abcdef",
		"http://x/secrets/a", "https://kv.vault.gatehouse.test:443/secrets/", "%zz", "https://[::1]/secrets/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := fx.svc.ParseReference(s)
		if err != nil {
			if status(err) != 400 {
				t.Fatalf("non-400 error %v", err)
			}
			return
		}
		if !vault.ValidSecretName(ref.Name) || ref.Vault == "" {
			t.Fatalf("accepted %q as %+v", s, ref)
		}
	})
}

func FuzzValidateVaultName(f *testing.F) {
	for _, s := range []string{"kv1", "a--b", "1ab", "abc-", strings.Repeat("a", 24)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if vault.ValidateVaultName(s) != nil {
			return
		}
		if len(s) < 3 || len(s) > 24 || strings.Contains(s, "--") || !('a' <= s[0]|32 && s[0]|32 <= 'z') {
			t.Fatalf("accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i] | 32; !('a' <= c && c <= 'z' || '0' <= s[i] && s[i] <= '9' || s[i] == '-') {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }
