package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The authentication benchmarks measure the gateway's own work per request
// (header parsing, hashing, index lookups, the generation check, the
// decision call) against in-memory fakes. The same paths against the real
// authority and accounts index are benchmarked end to end in
// cmd/gatehouse/internal/app (BenchmarkGatewayAuth*).

func benchAuth(b *testing.B, w *world, hdr map[string]string) {
	w.authz.grant("oid", routes[0].dataAction, acctID("acct1"))
	r := httptest.NewRequest(http.MethodPost, "/ai/acct1"+langPath, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	acct, _ := w.accounts.AccountByName("acct1")
	b.ReportAllocs()
	for b.Loop() {
		c, err := w.gw.authenticate(r, &acct)
		if err != nil {
			b.Fatal(err)
		}
		if c.kind == CredentialIdentity {
			if ok, _ := w.gw.opts.Authz.AuthorizeData(r.Context(), c.principal, routes[0].dataAction, acct.ID); !ok {
				b.Fatal("denied")
			}
		}
	}
}

func BenchmarkAuthKey(b *testing.B) {
	w := newWorld(b)
	benchAuth(b, w, map[string]string{"Ocp-Apim-Subscription-Key": w.keys["acct1"][0]})
}

func BenchmarkAuthSTS(b *testing.B) {
	w := newWorld(b)
	tok, _ := w.tokens.IssueSTSToken(context.Background(), STSGrant{Account: Account{ID: acctID("acct1")}, Generation: 1, Lifetime: time.Hour})
	benchAuth(b, w, bearerHdr(tok))
}

func BenchmarkAuthIdentity(b *testing.B) {
	w := newWorld(b)
	benchAuth(b, w, bearerHdr(w.tokens.identity("oid", CognitiveAudience)))
}

// BenchmarkProxy measures one chat completion through the whole gateway
// (router, middleware, key check, rate-limit and usage accounting, body
// check and model rewrite, forwarding) against the same request sent to
// the upstream directly, both over loopback HTTP with keep-alive. The
// ratio of the two ns/op is the gateway's cost.
func BenchmarkProxy(b *testing.B) {
	w := newWorld(b)
	body := `{"model":"chat","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":1}`
	run := func(b *testing.B, url, host string, hdr map[string]string) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				r.Host = host
				for k, v := range hdr {
					r.Header.Set(k, v)
				}
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) {
		run(b, w.up.srv.URL+"/v1/chat/completions", "", nil)
	})
	b.Run("gateway-key", func(b *testing.B) {
		run(b, w.srv.URL+"/ai/acct1"+chatPath, w.host, key1(w, "acct1"))
	})
}
