package kvapi

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/vault"
)

func TestValidAPIVersion(t *testing.T) {
	for _, tt := range []struct {
		v  string
		ok bool
	}{
		{"7.0", true}, {"7.4", true}, {"7.6", true}, {"7.6-preview", true}, {"2025-07-01", true}, {"2026-04-01", true},
		{"2016-10-01", true}, {"2025-07-01-preview", true}, {"7.6-preview.2", true}, {"7.7-preview.1", true},
		{"7.6-preview.", false}, {"7.6-preview.0", false}, {"7.6-preview.12", false}, {"2025-07-01-preview.1", false},
		{"", false}, {"7", false}, {"7.", false}, {"7.10", false}, {"8.0", false}, {"2025-13-01", false}, {"2025-7-1", false},
		{"latest", false}, {"2025-07-01-beta", false}, {"7.6-preview-preview", false},
	} {
		if got := validAPIVersion(tt.v); got != tt.ok {
			t.Errorf("validAPIVersion(%q) = %v", tt.v, got)
		}
	}
}

func FuzzAPIVersion(f *testing.F) {
	for _, s := range []string{"7.6", "2026-04-01", "7.5-preview", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "/secrets", nil)
		r.URL.RawQuery = "api-version=" + s
		err := checkAPIVersion(r)
		if err != nil && gatehouse.ErrorStatus(err) != 400 {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

func FuzzPageParams(f *testing.F) {
	for _, s := range []string{"maxresults=3", "$skiptoken=YQ&maxresults=25", "$skiptoken=%%", "maxresults=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/secrets", nil)
		r.URL.RawQuery = q
		_, limit, err := pageParams(r)
		if err != nil {
			if gatehouse.ErrorStatus(err) != 400 {
				t.Fatalf("%q: %v", q, err)
			}
			return
		}
		if limit < 1 || limit > maxPage {
			t.Fatalf("%q: limit %d", q, limit)
		}
	})
}

func FuzzDecodeBase64(f *testing.F) {
	f.Add("YWJj")
	f.Add("YW-_")
	f.Fuzz(func(t *testing.T, s string) { decodeBase64(s) })
}

type stubVerifier struct{}

func (stubVerifier) VerifyVaultToken(ctx context.Context, raw string) (gatehouse.Principal, error) {
	if raw != "good" {
		return gatehouse.Principal{}, ErrTokenExpired
	}
	return gatehouse.Principal{ObjectID: "oid", TenantID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}, nil
}

type allow struct{}

func (allow) Decide(string, authz.Operation, *gatehouse.ResourceID) authz.Decision {
	return authz.Decision{Allowed: true}
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, audit.Entry) (*audit.Record, error) {
	return &audit.Record{}, nil
}

// BenchmarkGetSecretHTTP is GET /secrets/{name}/ through the edge
// (middleware, Host routing) and the handler, with the service on SQLite,
// against the service call alone in the same run. Token verification and
// authorization are stubs here (their own benchmarks live with them).
func BenchmarkGetSecretHTTP(b *testing.B) {
	ctx := context.Background()
	store := teststore.SQLite(b)
	k, _ := keyring.Generate(rand.Reader, 1)
	kr, _ := keyring.New([]keyring.Key{k}, keyring.Options{})
	w := teststore.NewWatcher(store)
	svc, err := vault.New(ctx, store, w, vault.Options{Sealer: kr, VaultURI: func(n string) string { return "https://" + n + ".vault.gatehouse.test/" }})
	if err != nil {
		b.Fatal(err)
	}
	teststore.StartWatcher(b, w, svc.Load)
	id, _ := vault.ParseID("/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1")
	if _, _, err := svc.PutVault(ctx, id, vault.Spec{Location: "westus", TenantID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}, vault.Actor{}); err != nil {
		b.Fatal(err)
	}
	v, _ := svc.VaultByName("kv1")
	if _, err := svc.SetSecret(ctx, v, "db", vault.SetInput{Value: make([]byte, 64)}); err != nil {
		b.Fatal(err)
	}
	rt := server.NewRouter("gatehouse.test")
	New(Options{Vaults: svc, Verifier: stubVerifier{}, Authz: allow{}, Audit: nopAudit{},
		AuthorizationURI: "https://gatehouse.test/adfs", Resource: "https://vault.gatehouse.test"}).Mount(rt.Vault)
	h := (&server.Middleware{}).Wrap(rt)
	req := httptest.NewRequest("GET", "https://kv1.vault.gatehouse.test/secrets/db/?api-version=2026-04-01", nil)
	req.Header.Set("Authorization", "Bearer good")
	b.Run("service", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.GetSecret(ctx, v, "db", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
