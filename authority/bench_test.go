package authority

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
)

// Benchmarks of the hot paths. Compare within one run:
//
//	BenchmarkBaseline/ecdsa-p256-sign   the signature alone
//	BenchmarkIssue/ES256                a whole access token (claims, JSON, signature)
//	BenchmarkVerify/cold                signature + claims + checks
//	BenchmarkVerify/cached              seeded hash of the token + LRU lookup + comparison + checks
//	BenchmarkTokenEndpoint              the client-credentials handler, in process (no TLS)
//
// go test -run=^$ -bench=. -benchmem ./authority

func benchNode(b *testing.B, alg string) *node {
	return newNode(b, teststore.SQLite(b), testSealer(b), newClock(), Options{SigningAlg: alg})
}

func BenchmarkBaseline(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sum := sha256.Sum256([]byte("x"))
	b.Run("ecdsa-p256-sign", func(b *testing.B) {
		for b.Loop() {
			ecdsa.Sign(rand.Reader, key, sum[:])
		}
	})
	b.Run("ecdsa-p256-verify", func(b *testing.B) {
		r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
		for b.Loop() {
			ecdsa.Verify(&key.PublicKey, sum[:], r, s)
		}
	})
	tok := strings.Repeat("x", 700)
	b.Run("sha256-of-token", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256([]byte(tok))
		}
	})
}

func benchPrincipal(n *node) gatehouse.Principal {
	return gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, TenantID: n.d.DefaultTenant(),
		ObjectID: gatehouse.NewGUID(), ClientID: gatehouse.NewGUID(), Name: "bench"}
}

func BenchmarkIssue(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			n := benchNode(b, alg)
			p := benchPrincipal(n)
			for b.Loop() {
				if _, _, err := n.a.mint(mintSpec{principal: p, audience: ResourceManagement, acr: "1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ES256-extra-claims", func(b *testing.B) {
		n := benchNode(b, AlgES256)
		extra := map[string]any{"acct": "account-1", "slot": 1, "gen": 7}
		for b.Loop() {
			if _, _, err := n.a.Issue(b.Context(), gatehouse.Principal{}, "sts", 10*time.Minute, extra); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgRS256} {
		n := benchNode(b, alg)
		tok, _, err := n.a.mint(mintSpec{principal: benchPrincipal(n), audience: ResourceManagement, acr: "1"})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("cold-"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := n.a.verifyCold(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cached-"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := n.a.Verify(b.Context(), tok, ManagementAudiences...); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("cached-parallel-"+alg, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := n.a.Verify(b.Context(), tok, ManagementAudiences...); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkTokenEndpoint(b *testing.B) {
	n := benchNode(b, AlgES256)
	app, err := n.d.CreateApplication(b.Context(), directory.ApplicationSpec{DisplayName: "bench", ServicePrincipal: true})
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := n.d.AddSecret(b.Context(), app.AppID, directory.SecretSpec{})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	n.a.Mount(mux)
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {secret},
		"scope": {"https://management.azure.com/.default openid offline_access profile"}}.Encode()
	path := "/" + n.d.DefaultTenant() + "/oauth2/v2.0/token"
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
