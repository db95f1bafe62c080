package vaulttest

import (
	"io"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// BenchmarkSecretRead is the whole read path of a real node on SQLite over
// TLS: token verification, RBAC, the cached sealed record, AES-GCM, JSON;
// over HTTP/2 (net/http, what Go clients speak) and HTTP/1.1 (the fast
// path, what Node's and Python's clients speak), one connection each.
// Baseline in the same run: GET /healthz, the round trip through the same
// edge with no work behind it (over HTTP/1.1 it is net/http's: /healthz
// is not a data plane).
//
//	healthz   the floor
//	raw       GET /secrets/{name}/ with a bearer token
//	sdk       azsecrets.Client.GetSecret (pipeline, policies, decoding)
func BenchmarkSecretRead(b *testing.B) {
	b.Run("h2", func(b *testing.B) { benchmarkSecretRead(b, false) })
	b.Run("http1", func(b *testing.B) { benchmarkSecretRead(b, true) })
}

func benchmarkSecretRead(b *testing.B, http1 bool) {
	e := newEnvOn(b, http1)
	e.createVault(b, "bench", nil)
	c := e.client(b, "bench", e.cred)
	if _, err := c.SetSecret(b.Context(), "db", azsecrets.SetSecretParameters{Value: ptr("0123456789abcdef0123456789abcdef")}, nil); err != nil {
		b.Fatal(err)
	}
	tok := e.vaultToken(b, e.cred)
	get := func(b *testing.B, url string, auth bool) {
		req, _ := http.NewRequestWithContext(b.Context(), "GET", url, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := e.Client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
	}
	b.Run("healthz", func(b *testing.B) {
		for b.Loop() {
			get(b, e.URL+"/healthz", false)
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			get(b, e.vaultURL("bench")+"secrets/db/?api-version=2026-04-01", true)
		}
	})
	b.Run("sdk", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.GetSecret(b.Context(), "db", "", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
