package directory_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

var fastPasswords = directory.PasswordParams{Time: 1, Memory: 64, Threads: 1}

// newDirectory starts a directory on store with a watcher, as a node does.
func newDirectory(t *testing.T, store storage.Store) (*directory.Directory, *storage.Watcher) {
	t.Helper()
	w := teststore.NewWatcher(store)
	d := directory.New(directory.Options{Store: store, Watcher: w, PasswordParams: fastPasswords})
	teststore.StartWatcher(t, w, d.Load, func(ctx context.Context) error {
		_, _, err := d.EnsureDefaultTenant(ctx)
		return err
	})
	return d, w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecrets(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "app", ServicePrincipal: true})
		must(t, err)
		info, secret, err := d.AddSecret(ctx, app.ObjectID, directory.SecretSpec{DisplayName: "s1"})
		must(t, err)
		if raw, _ := base64.RawURLEncoding.DecodeString(secret); len(raw) != directory.SecretBytes {
			t.Fatalf("secret has %d bytes of entropy, want %d", len(raw), directory.SecretBytes)
		}
		if info.Hint != secret[:3] {
			t.Fatalf("hint %q", info.Hint)
		}
		// Only the SHA-256 is stored.
		obj, err := store.Get(ctx, directory.KindPrincipal, app.ObjectID)
		must(t, err)
		sum := sha256.Sum256([]byte(secret))
		if bytes.Contains(obj.Data, []byte(secret)) || !bytes.Contains(obj.Data, []byte(base64.StdEncoding.EncodeToString(sum[:]))) {
			t.Fatal("the stored record holds the secret, or not its SHA-256")
		}
		c, err := d.Client(d.DefaultTenant(), app.AppID)
		must(t, err)
		now := time.Now()
		if err := c.CheckSecret(secret, now); err != nil {
			t.Fatal(err)
		}
		if err := c.CheckSecret(secret+"x", now); !errors.Is(err, directory.ErrInvalidSecret) {
			t.Fatalf("wrong secret: %v", err)
		}
		// A second secret with an expiry; both work, the expired one says so.
		_, s2, err := d.AddSecret(ctx, app.AppID, directory.SecretSpec{End: now.Add(time.Hour)})
		must(t, err)
		c, _ = d.Client(d.DefaultTenant(), app.AppID)
		if c.CheckSecret(secret, now) != nil || c.CheckSecret(s2, now) != nil {
			t.Fatal("two secrets must be valid at once")
		}
		if err := c.CheckSecret(s2, now.Add(2*time.Hour)); !errors.Is(err, directory.ErrSecretExpired) {
			t.Fatalf("expired: %v", err)
		}
		must(t, d.RemoveSecret(ctx, app.AppID, info.KeyID, false))
		c, _ = d.Client(d.DefaultTenant(), app.AppID)
		if err := c.CheckSecret(secret, now); !errors.Is(err, directory.ErrInvalidSecret) {
			t.Fatalf("removed: %v", err)
		}
		if err := d.RemoveSecret(ctx, app.AppID, info.KeyID, false); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("remove twice: %v", err)
		}
		if _, _, err := d.AddSecret(ctx, app.AppID, directory.SecretSpec{Start: now, End: now.Add(-time.Hour)}); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("end before start: %v", err)
		}
		// Client lookups fail for the wrong tenant, unknown ids, disabled apps.
		if _, err := d.Client(gatehouse.NewGUID(), app.AppID); !errors.Is(err, directory.ErrUnknownClient) {
			t.Fatalf("other tenant: %v", err)
		}
		no := false
		_, err = d.UpdateApplication(ctx, app.AppID, directory.ApplicationUpdate{Enabled: &no})
		must(t, err)
		if _, err := d.Client(d.DefaultTenant(), app.AppID); !errors.Is(err, directory.ErrDisabled) {
			t.Fatalf("disabled: %v", err)
		}
	})
}

// TestConcurrentWrites: concurrent credential additions on one
// application are all kept (no lost update), and the limit holds.
func TestConcurrentWrites(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "busy", ServicePrincipal: true})
		must(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var secrets []string
		var limited int
		for range directory.MaxSecrets + 5 {
			wg.Go(func() {
				_, s, err := d.AddSecret(ctx, app.AppID, directory.SecretSpec{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					secrets = append(secrets, s)
				case errors.Is(err, directory.ErrInvalid):
					limited++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := d.Application(app.AppID)
		must(t, err)
		if len(secrets) != directory.MaxSecrets || limited != 5 || len(got.Secrets) != directory.MaxSecrets {
			t.Fatalf("%d added, %d refused, %d stored; want %d, 5, %d", len(secrets), limited, len(got.Secrets), directory.MaxSecrets, directory.MaxSecrets)
		}
		c, _ := d.Client(d.DefaultTenant(), app.AppID)
		for _, s := range secrets {
			if c.CheckSecret(s, time.Now()) != nil {
				t.Fatal("a concurrently added secret was lost")
			}
		}
	})
}

func newCert(t *testing.T, notAfter time.Time) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	c, _ := x509.ParseCertificate(der)
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCertificates(t *testing.T) {
	store := teststore.SQLite(t)
	d, _ := newDirectory(t, store)
	ctx := t.Context()
	app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "certs", ServicePrincipal: true})
	must(t, err)
	cert, pemData := newCert(t, time.Now().Add(24*time.Hour))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	ecDER, _ := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ecKey.PublicKey, ecKey)
	_, expiredPEM := newCert(t, time.Now().Add(-time.Minute))
	keyDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("nope")},
		{"private-key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{"ec-certificate", ecDER},
		{"expired", expiredPEM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.AddCertificate(ctx, app.AppID, directory.CertificateSpec{Data: tt.data}); !errors.Is(err, directory.ErrInvalid) {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	// PEM, DER and base64 DER are the same certificate.
	info, err := d.AddCertificate(ctx, app.AppID, directory.CertificateSpec{Data: pemData, End: time.Now().Add(time.Hour)})
	must(t, err)
	if _, err := d.AddCertificate(ctx, app.AppID, directory.CertificateSpec{Data: []byte(base64.StdEncoding.EncodeToString(cert.Raw))}); !errors.Is(err, directory.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	if info.Thumbprint != strings.ToUpper(hexString(s1[:])) {
		t.Fatalf("thumbprint %s", info.Thumbprint)
	}
	c, _ := d.Client(d.DefaultTenant(), app.AppID)
	now := time.Now()
	for name, look := range map[string]func() (*directory.Certificate, error){
		"sha1":   func() (*directory.Certificate, error) { return c.Certificate(s1[:], nil, now) },
		"sha256": func() (*directory.Certificate, error) { return c.Certificate(nil, s256[:], now) },
	} {
		if got, err := look(); err != nil || got.KeyID != info.KeyID {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The registration narrowed the validity to one hour.
	if _, err := c.Certificate(nil, s256[:], now.Add(2*time.Hour)); !errors.Is(err, directory.ErrCertificateExpired) {
		t.Fatalf("outside validity: %v", err)
	}
	if _, err := c.Certificate(nil, make([]byte, 32), now); !errors.Is(err, directory.ErrUnknownCertificate) {
		t.Fatalf("unknown: %v", err)
	}
	// SetCertificates keeps by key id, adds new, drops the rest.
	_, other := newCert(t, time.Now().Add(time.Hour))
	must(t, d.SetCertificates(ctx, app.AppID, []directory.CertificateSpec{{Data: other}}, false))
	got, _ := d.Application(app.AppID)
	if len(got.Certificates) != 1 || got.Certificates[0].KeyID == info.KeyID {
		t.Fatalf("after replace: %+v", got.Certificates)
	}
	must(t, d.SetCertificates(ctx, app.AppID, []directory.CertificateSpec{{KeyID: got.Certificates[0].KeyID}, {Data: pemData}}, false))
	got, _ = d.Application(app.AppID)
	if len(got.Certificates) != 2 {
		t.Fatalf("keep + add: %+v", got.Certificates)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestManagedIdentities(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		sub := gatehouse.NewGUID()
		id := func(rg, name string) string {
			return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
		}
		// Concurrent creates of one resource id: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for range 8 {
			wg.Go(func() {
				_, err := d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: id("RG1", "web"), Location: "westeurope"})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, directory.ErrAlreadyExists):
					conflicts++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || conflicts != 7 {
			t.Fatalf("%d creates won, %d conflicted", wins, conflicts)
		}
		mi, err := d.GetManagedIdentity(ctx, strings.ToUpper(id("rg1", "WEB")))
		must(t, err)
		if mi.Name != "web" || mi.TenantID != d.DefaultTenant() || !gatehouse.IsGUID(mi.ClientID) || !gatehouse.IsGUID(mi.PrincipalID) {
			t.Fatalf("identity %+v", mi)
		}
		p, err := d.Principal(ctx, mi.PrincipalID)
		must(t, err)
		if !p.ManagedIdentity || p.ClientID != mi.ClientID || p.Type != gatehouse.PrincipalServicePrincipal {
			t.Fatalf("principal %+v", p)
		}
		_, err = d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: id("rg2", "worker")})
		must(t, err)
		_, err = d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: "/subscriptions/" + sub + "/resourceGroups/rg1/providers/Microsoft.CognitiveServices/accounts/acct",
			Name: "acct"})
		must(t, err)
		for scope, want := range map[string]int{"": 3, "/subscriptions/" + sub: 3, "/subscriptions/" + sub + "/resourceGroups/rg1": 2,
			"/subscriptions/" + sub + "/resourceGroups/RG2": 1, "/subscriptions/" + gatehouse.NewGUID(): 0} {
			got, err := d.ListManagedIdentities(ctx, scope)
			must(t, err)
			if len(got) != want {
				t.Fatalf("scope %q: %d identities, want %d", scope, len(got), want)
			}
		}
		if _, err := d.ListManagedIdentities(ctx, "not a scope"); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("bad scope: %v", err)
		}
		mi2, err := d.UpdateManagedIdentity(ctx, id("rg1", "web"), "northeurope", map[string]string{"env": "prod"})
		must(t, err)
		if mi2.Location != "northeurope" || mi2.Tags["env"] != "prod" || mi2.ClientID != mi.ClientID {
			t.Fatalf("update: %+v", mi2)
		}
		must(t, d.DeleteManagedIdentity(ctx, id("rg1", "web")))
		if _, err := d.GetManagedIdentity(ctx, id("rg1", "web")); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if _, err := d.Principal(ctx, mi.PrincipalID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("principal after delete: %v", err)
		}
		if err := d.DeleteManagedIdentity(ctx, id("rg1", "web")); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: "nope"}); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("bad id: %v", err)
		}
	})
}

func TestPeople(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		tid := d.DefaultTenant()
		u, err := d.CreateUser(ctx, directory.UserSpec{UserName: "Alice@Example.test", Password: "a long password"})
		must(t, err)
		if _, err := d.CreateUser(ctx, directory.UserSpec{UserName: "alice@example.TEST", Password: "a long password"}); !errors.Is(err, directory.ErrAlreadyExists) {
			t.Fatalf("duplicate (case): %v", err)
		}
		obj, _ := store.Get(ctx, directory.KindPrincipal, u.ObjectID)
		if bytes.Contains(obj.Data, []byte("a long password")) || !bytes.Contains(obj.Data, []byte("$argon2id$")) {
			t.Fatal("password stored in clear or not as argon2id")
		}
		p, err := d.CheckPassword(ctx, tid, "alice@example.test", "a long password")
		must(t, err)
		if p.ObjectID != u.ObjectID || p.Type != gatehouse.PrincipalUser {
			t.Fatalf("principal %+v", p)
		}
		for name, check := range map[string]func() error{
			"wrong-password": func() error { _, err := d.CheckPassword(ctx, tid, "alice@example.test", "wrong"); return err },
			"unknown-user":   func() error { _, err := d.CheckPassword(ctx, tid, "bob@example.test", "a long password"); return err },
			"other-tenant": func() error {
				_, err := d.CheckPassword(ctx, gatehouse.NewGUID(), "alice@example.test", "a long password")
				return err
			},
		} {
			if err := check(); !errors.Is(err, directory.ErrInvalidPassword) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		pw, no := "another long password", false
		_, err = d.UpdateUser(ctx, u.ObjectID, directory.UserUpdate{Password: &pw})
		must(t, err)
		if _, err := d.CheckPassword(ctx, tid, "alice@example.test", "a long password"); !errors.Is(err, directory.ErrInvalidPassword) {
			t.Fatal("the old password still works")
		}
		_, err = d.UpdateUser(ctx, "ALICE@example.test", directory.UserUpdate{Enabled: &no})
		must(t, err)
		if _, err := d.CheckPassword(ctx, tid, "alice@example.test", pw); !errors.Is(err, directory.ErrDisabled) {
			t.Fatalf("disabled: %v", err)
		}
		// Disabling ends the person's sessions; enabling again does not
		// bring them back.
		carol, err := d.CreateUser(ctx, directory.UserSpec{UserName: "carol@example.test", Password: "a long password for carol"})
		must(t, err)
		if !carol.SignInSessionsValidFrom.IsZero() {
			t.Fatalf("a new person's sessions are revoked from %v", carol.SignInSessionsValidFrom)
		}
		yes := true
		_, err = d.UpdateUser(ctx, carol.ObjectID, directory.UserUpdate{Enabled: &no})
		must(t, err)
		carol, err = d.UpdateUser(ctx, carol.ObjectID, directory.UserUpdate{Enabled: &yes})
		must(t, err)
		if !carol.Enabled || carol.SignInSessionsValidFrom.IsZero() {
			t.Errorf("after disable and enable: enabled %v, sessions valid from %v", carol.Enabled, carol.SignInSessionsValidFrom)
		}
		if _, err := d.CreateUser(ctx, directory.UserSpec{UserName: "bob@example.test", Password: "short"}); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("short password: %v", err)
		}
		must(t, d.DeleteUser(ctx, u.ObjectID))
		if _, err := d.User(u.ObjectID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

// TestTwoNodes: a write on one node reaches the other through the change
// feed; the default tenant and the bootstrap claim are decided once.
func TestTwoNodes(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		nodes := make([]*directory.Directory, 4)
		watchers := make([]*storage.Watcher, 4)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() { nodes[i], watchers[i] = newDirectory(t, store) })
		}
		wg.Wait()
		tenant := nodes[0].DefaultTenant()
		for _, d := range nodes {
			if d.DefaultTenant() != tenant || len(d.Tenants()) != 1 {
				t.Fatalf("tenants differ: %s vs %s (%d tenants)", d.DefaultTenant(), tenant, len(d.Tenants()))
			}
		}
		claims := make([]string, len(nodes))
		for i, d := range nodes {
			wg.Go(func() {
				id, _, err := d.ClaimBootstrap(t.Context())
				must(t, err)
				claims[i] = id
			})
		}
		wg.Wait()
		for _, c := range claims {
			if c != claims[0] {
				t.Fatalf("bootstrap claims differ: %v", claims)
			}
		}
		a, b := nodes[0], nodes[1]
		app, err := a.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "shared", ServicePrincipal: true})
		must(t, err)
		_, secret, err := a.AddSecret(t.Context(), app.AppID, directory.SecretSpec{})
		must(t, err)
		must(t, watchers[1].Sync(t.Context()))
		c, err := b.Client(tenant, app.AppID)
		must(t, err)
		if err := c.CheckSecret(secret, time.Now()); err != nil {
			t.Fatalf("node b does not know node a's secret: %v", err)
		}
		must(t, a.DeleteApplication(t.Context(), app.AppID))
		must(t, watchers[1].Sync(t.Context()))
		if _, err := b.Client(tenant, app.AppID); !errors.Is(err, directory.ErrUnknownClient) {
			t.Fatalf("node b still knows a deleted application: %v", err)
		}
	})
}

func TestFederatedValidation(t *testing.T) {
	d, _ := newDirectory(t, teststore.SQLite(t))
	ctx := t.Context()
	app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "fic", ServicePrincipal: true})
	must(t, err)
	for _, tt := range []struct {
		name string
		f    directory.FederatedCredential
		ok   bool
	}{
		{"ok", directory.FederatedCredential{Name: "ok-1", Issuer: "https://issuer.example", Subject: "s"}, true},
		{"short-name", directory.FederatedCredential{Name: "a", Issuer: "https://issuer.example", Subject: "s"}, false},
		{"http-issuer", directory.FederatedCredential{Name: "abc", Issuer: "http://issuer.example", Subject: "s"}, false},
		{"issuer-with-query", directory.FederatedCredential{Name: "abc", Issuer: "https://issuer.example?x=1", Subject: "s"}, false},
		{"no-subject", directory.FederatedCredential{Name: "abc", Issuer: "https://issuer.example"}, false},
		{"two-audiences", directory.FederatedCredential{Name: "abc", Issuer: "https://i.example", Subject: "s", Audiences: []string{"a", "b"}}, false},
		{"bad-jwks", directory.FederatedCredential{Name: "abc", Issuer: "https://i.example", Subject: "s", JWKS: []byte(`{"keys":[]}`)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := d.AddFederated(ctx, app.AppID, tt.f)
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (len(f.Audiences) != 1 || f.Audiences[0] != directory.DefaultFederatedAudience) {
				t.Fatalf("default audience: %v", f.Audiences)
			}
		})
	}
}

// TestUpdateFederated: an update changes what it gives, keeps the rest,
// and is validated as a new credential is — on both backends, and seen by
// the token endpoint's view (the application in memory) at once.
func TestUpdateFederated(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "fic-update", ServicePrincipal: true})
		must(t, err)
		const issuer = "https://token.actions.githubusercontent.com"
		main, err := d.AddFederated(ctx, app.AppID, directory.FederatedCredential{Name: "gh-main", Issuer: issuer, Subject: "repo:o/r:ref:refs/heads/main"})
		must(t, err)
		_, err = d.AddFederated(ctx, app.AppID, directory.FederatedCredential{Name: "gh-prod", Issuer: issuer, Subject: "repo:o/r:environment:prod"})
		must(t, err)
		str := func(s string) *string { return &s }
		f, err := d.UpdateFederated(ctx, app.AppID, "GH-MAIN", directory.FederatedPatch{Subject: str("repo:o/r:ref:refs/heads/dev")})
		if err != nil || f.ID != main.ID || f.Name != "gh-main" || f.Issuer != issuer || f.Subject != "repo:o/r:ref:refs/heads/dev" ||
			len(f.Audiences) != 1 || f.Audiences[0] != directory.DefaultFederatedAudience {
			t.Fatalf("update: %+v %v", f, err)
		}
		got, err := d.Application(app.AppID)
		must(t, err)
		if i := slices.IndexFunc(got.Federated, func(x directory.FederatedCredential) bool { return x.ID == main.ID }); i < 0 || got.Federated[i].Subject != f.Subject {
			t.Fatalf("the application's view: %+v", got.Federated)
		}
		for name, p := range map[string]directory.FederatedPatch{
			"rename":        {Name: str("gh-other")},
			"http-issuer":   {Issuer: str("http://insecure.example")},
			"empty-subject": {Subject: str("")},
			"taken":         {Subject: str("repo:o/r:environment:prod")},
			"two-audiences": {Audiences: &[]string{"a", "b"}},
		} {
			if _, err := d.UpdateFederated(ctx, app.AppID, main.ID, p); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if _, err := d.UpdateFederated(ctx, app.AppID, "missing", directory.FederatedPatch{Subject: str("x")}); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("unknown credential: %v", err)
		}
		got, _ = d.Application(app.AppID)
		if i := slices.IndexFunc(got.Federated, func(x directory.FederatedCredential) bool { return x.ID == main.ID }); got.Federated[i].Subject != f.Subject {
			t.Fatalf("a refused update changed the credential: %+v", got.Federated[i])
		}
	})
}

// dashFirst yields bytes whose first draw would encode to a secret starting
// with '-' (base64url 62: the top six bits 111110), then random bytes.
type dashFirst struct{ n int }

func (r *dashFirst) Read(p []byte) (int, error) {
	if r.n == 0 {
		for i := range p {
			p[i] = 0xF8
		}
	} else if _, err := rand.Read(p); err != nil {
		return 0, err
	}
	r.n++
	return len(p), nil
}

// TestSecretNeverStartsWithDash: a secret starting with '-' is taken for an
// option on command lines (az login -p), so such a draw is discarded.
func TestSecretNeverStartsWithDash(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		w := teststore.NewWatcher(store)
		src := &dashFirst{}
		d := directory.New(directory.Options{Store: store, Watcher: w, PasswordParams: fastPasswords, Rand: src})
		teststore.StartWatcher(t, w, d.Load, func(ctx context.Context) error {
			_, _, err := d.EnsureDefaultTenant(ctx)
			return err
		})
		app, err := d.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "app", ServicePrincipal: true})
		must(t, err)
		src.n = 0 // the next draw is the dash one
		_, secret, err := d.AddSecret(t.Context(), app.ObjectID, directory.SecretSpec{DisplayName: "s"})
		must(t, err)
		if secret[0] == '-' || src.n < 2 {
			t.Fatalf("secret %q… after %d draws", secret[:3], src.n)
		}
	})
}

// TestIdentifierURIs: an application's API names — set on one node, found
// on another, replaced, unique in the tenant, gone with the application.
func TestIdentifierURIs(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		a, wa := newDirectory(t, store)
		b, wb := newDirectory(t, store)
		ctx := t.Context()
		tenant := a.DefaultTenant()
		app, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "api", ServicePrincipal: true})
		must(t, err)
		other, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "other", ServicePrincipal: true})
		must(t, err)
		got, err := a.SetIdentifierURIs(ctx, app.AppObjectID, []string{"api://Orders", "https://orders.example.test/api"}, nil)
		must(t, err)
		if len(got.IdentifierURIs) != 2 || got.IdentifierURIs[0] != "api://Orders" {
			t.Fatalf("identifier URIs as set: %v", got.IdentifierURIs)
		}
		must(t, wb.Sync(ctx))
		for _, name := range []string{"api://orders/", "HTTPS://orders.example.test/API", app.AppID, "api://" + strings.ToUpper(app.AppID)} {
			if found, err := b.API(tenant, name); err != nil || found.AppID != app.AppID {
				t.Fatalf("node b: API(%q) = %v, %v", name, found, err)
			}
		}
		if _, err := b.API("00000000-0000-0000-0000-000000000001", "api://orders"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("another tenant's name: %v", err)
		}
		if _, err := a.SetIdentifierURIs(ctx, other.AppID, []string{"API://ORDERS"}, nil); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("a name another application has: %v", err)
		}
		_, err = a.SetIdentifierURIs(ctx, app.AppID, []string{"api://orders-v2"}, nil)
		must(t, err)
		must(t, wb.Sync(ctx))
		if _, err := b.API(tenant, "api://orders"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("a replaced name still resolves: %v", err)
		}
		// Now free for the other application.
		_, err = a.SetIdentifierURIs(ctx, other.AppID, []string{"api://orders"}, nil)
		must(t, err)
		off := false
		_, err = a.UpdateApplication(ctx, app.AppID, directory.ApplicationUpdate{Enabled: &off})
		must(t, err)
		if _, err := a.API(tenant, "api://orders-v2"); !errors.Is(err, directory.ErrDisabled) {
			t.Fatalf("a disabled application's API: %v", err)
		}
		must(t, a.DeleteApplication(ctx, app.AppID))
		must(t, wa.Sync(ctx))
		must(t, wb.Sync(ctx))
		for _, d := range []*directory.Directory{a, b} {
			if _, err := d.API(tenant, "api://orders-v2"); !errors.Is(err, directory.ErrNotFound) {
				t.Fatalf("a deleted application's API: %v", err)
			}
		}
	})
}

// TestGroups: security groups and their members — set on one node, seen
// on another with the membership generation moved; no nesting, no
// foreign or unknown members; gone with the group.
func TestGroups(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		a, _ := newDirectory(t, store)
		b, wb := newDirectory(t, store)
		ctx := t.Context()
		g, err := a.CreateGroup(ctx, directory.GroupSpec{DisplayName: "Readers", MailNickname: "readers"})
		must(t, err)
		u, err := a.CreateUser(ctx, directory.UserSpec{UserName: "gm@x.test", Password: "a long enough password"})
		must(t, err)
		app, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "gapp", ServicePrincipal: true})
		must(t, err)
		noSP, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "nosp"})
		must(t, err)
		must(t, wb.Sync(ctx))
		before := b.GroupGeneration()
		_, err = a.AddGroupMember(ctx, g.ObjectID, u.ObjectID)
		must(t, err)
		_, err = a.AddGroupMember(ctx, g.ObjectID, strings.ToUpper(app.ObjectID))
		must(t, err)
		must(t, wb.Sync(ctx))
		if b.GroupGeneration() == before {
			t.Fatal("membership changed, the generation did not")
		}
		if got := b.GroupsOf(u.ObjectID); len(got) != 1 || got[0] != g.ObjectID {
			t.Fatalf("node b: GroupsOf(person) = %v", got)
		}
		if got := b.GroupsOf(app.ObjectID); len(got) != 1 {
			t.Fatalf("node b: GroupsOf(app) = %v", got)
		}
		other, err := a.CreateGroup(ctx, directory.GroupSpec{DisplayName: "Other", MailNickname: "other"})
		must(t, err)
		for name, id := range map[string]string{"twice": u.ObjectID, "unknown": "00000000-0000-0000-0000-000000000001",
			"no service principal": noSP.ObjectID, "itself": g.ObjectID} {
			if _, err := a.AddGroupMember(ctx, g.ObjectID, id); err == nil {
				t.Errorf("%s: added", name)
			}
		}
		// Nested: a member of a member group is a member; no cycles.
		inner, err := a.CreateGroup(ctx, directory.GroupSpec{DisplayName: "Inner", MailNickname: "inner"})
		must(t, err)
		_, err = a.AddGroupMember(ctx, other.ObjectID, inner.ObjectID)
		must(t, err)
		_, err = a.AddGroupMember(ctx, g.ObjectID, other.ObjectID)
		must(t, err)
		solo, err := a.CreateUser(ctx, directory.UserSpec{UserName: "nested@x.test", Password: "a long enough password"})
		must(t, err)
		_, err = a.AddGroupMember(ctx, inner.ObjectID, solo.ObjectID)
		must(t, err)
		for name, pair := range map[string][2]string{"outer into inner": {inner.ObjectID, g.ObjectID}, "middle into inner": {inner.ObjectID, other.ObjectID},
			"outer into middle": {other.ObjectID, g.ObjectID}} {
			if _, err := a.AddGroupMember(ctx, pair[0], pair[1]); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("cycle %s: %v", name, err)
			}
		}
		must(t, wb.Sync(ctx))
		if got := b.GroupsOf(solo.ObjectID); !slices.Equal(got, []string{inner.ObjectID, other.ObjectID, g.ObjectID}) {
			t.Fatalf("node b: GroupsOf(nested person) = %v", got)
		}
		if got := b.GroupsOf(other.ObjectID); !slices.Equal(got, []string{g.ObjectID}) {
			t.Fatalf("node b: GroupsOf(group) = %v", got)
		}
		// Deleting the middle group takes it out of the outer one.
		must(t, a.DeleteGroup(ctx, other.ObjectID))
		must(t, wb.Sync(ctx))
		if got := b.GroupsOf(solo.ObjectID); !slices.Equal(got, []string{inner.ObjectID}) {
			t.Fatalf("after deleting the middle group: %v", got)
		}
		if grp, _ := b.Group(g.ObjectID); slices.Contains(grp.Members, other.ObjectID) {
			t.Fatalf("the deleted group is still a member: %v", grp.Members)
		}
		must(t, a.DeleteGroup(ctx, inner.ObjectID))
		if _, err := a.CreateGroup(ctx, directory.GroupSpec{DisplayName: "x", MailNickname: "has space"}); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("a nickname with a space: %v", err)
		}
		_, err = a.RemoveGroupMember(ctx, g.ObjectID, u.ObjectID)
		must(t, err)
		if _, err := a.RemoveGroupMember(ctx, g.ObjectID, u.ObjectID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("removing a non-member: %v", err)
		}
		must(t, a.DeleteGroup(ctx, g.ObjectID))
		must(t, wb.Sync(ctx))
		if got := b.GroupsOf(app.ObjectID); len(got) != 0 {
			t.Fatalf("after the group's deletion: %v", got)
		}
		if _, err := b.Group(g.ObjectID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("deleted group: %v", err)
		}
		if n := len(b.Groups("")); n != 0 {
			t.Fatalf("groups left: %d", n)
		}
	})
}

// TestRequiredResourceAccess: an application's declared API permissions
// are validated, de-duplicated and seen by another node.
func TestRequiredResourceAccess(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		a, _ := newDirectory(t, store)
		b, wb := newDirectory(t, store)
		ctx := t.Context()
		app, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "needs-graph"})
		must(t, err)
		const graphApp, userRead = "00000003-0000-0000-C000-000000000000", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"
		for name, bad := range map[string][]directory.RequiredResourceAccess{
			"app id":    {{ResourceAppID: "graph"}},
			"perm id":   {{ResourceAppID: graphApp, ResourceAccess: []directory.ResourceAccess{{ID: "x", Type: "Scope"}}}},
			"perm type": {{ResourceAppID: graphApp, ResourceAccess: []directory.ResourceAccess{{ID: userRead, Type: "Delegated"}}}},
			"api twice": {{ResourceAppID: graphApp}, {ResourceAppID: strings.ToLower(graphApp)}},
		} {
			if _, err := a.SetRequiredResourceAccess(ctx, app.AppID, bad); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		_, err = a.SetRequiredResourceAccess(ctx, app.AppID, []directory.RequiredResourceAccess{{ResourceAppID: graphApp,
			ResourceAccess: []directory.ResourceAccess{{ID: userRead, Type: "Scope"}, {ID: strings.ToUpper(userRead), Type: "Scope"}, {ID: userRead, Type: "Role"}}}})
		must(t, err)
		must(t, wb.Sync(ctx))
		got, err := b.Application(app.AppID)
		must(t, err)
		if len(got.RequiredAccess) != 1 || got.RequiredAccess[0].ResourceAppID != strings.ToLower(graphApp) || len(got.RequiredAccess[0].ResourceAccess) != 2 {
			t.Fatalf("node b: %+v", got.RequiredAccess)
		}
	})
}

// TestTemporaryPassword: a password set with "must change" signs in only
// to be changed (ErrPasswordExpired, only when it is right); the change
// needs it, refuses the same password and clears the mark; an
// administrator marks and unmarks the current password without a new one.
func TestTemporaryPassword(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		tid := d.DefaultTenant()
		const temp, chosen = "temporary password 1", "chosen password 22"
		u, err := d.CreateUser(ctx, directory.UserSpec{UserName: "dan@example.test", Password: temp, ForceChangePassword: true})
		must(t, err)
		if !u.ForceChangePassword {
			t.Fatal("the user does not show the mark")
		}
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", temp); !errors.Is(err, directory.ErrPasswordExpired) {
			t.Fatalf("temporary password: %v", err)
		}
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", "wrong password 1"); !errors.Is(err, directory.ErrInvalidPassword) {
			t.Fatalf("wrong password of a marked person: %v", err)
		}
		if _, err := d.ChangePassword(ctx, tid, "dan@example.test", "wrong password 1", chosen); !errors.Is(err, directory.ErrInvalidPassword) {
			t.Fatalf("change with a wrong current password: %v", err)
		}
		if _, err := d.ChangePassword(ctx, tid, "dan@example.test", temp, temp); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("change to the same password: %v", err)
		}
		if _, err := d.ChangePassword(ctx, tid, "dan@example.test", temp, "short"); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("change to a short password: %v", err)
		}
		p, err := d.ChangePassword(ctx, tid, "dan@example.test", temp, chosen)
		must(t, err)
		if p.ObjectID != u.ObjectID {
			t.Fatalf("changed: %+v", p)
		}
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", chosen); err != nil {
			t.Fatalf("the chosen password: %v", err)
		}
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", temp); !errors.Is(err, directory.ErrInvalidPassword) {
			t.Fatalf("the temporary password after the change: %v", err)
		}
		yes, no := true, false
		u, err = d.UpdateUser(ctx, u.ObjectID, directory.UserUpdate{ForceChangePassword: &yes})
		must(t, err)
		if !u.ForceChangePassword {
			t.Fatal("marking the current password")
		}
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", chosen); !errors.Is(err, directory.ErrPasswordExpired) {
			t.Fatalf("marked current password: %v", err)
		}
		_, err = d.UpdateUser(ctx, u.ObjectID, directory.UserUpdate{ForceChangePassword: &no})
		must(t, err)
		if _, err := d.CheckPassword(ctx, tid, "dan@example.test", chosen); err != nil {
			t.Fatalf("unmarked: %v", err)
		}
	})
}
