package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The authentication benchmarks measure the gateway's own work per request
// (header parsing, hashing, index lookups, the generation check, the
// decision call) against in-memory fakes. The same paths with the real
// token verifier are BenchmarkAuthReal (realauth_test.go).

func benchAuth(b *testing.B, w *world, hdr map[string]string) {
	w.authz.grant("oid", routes[0].dataAction, acctID("acct1"))
	r := httptest.NewRequest(http.MethodPost, "/ai/acct1"+langPath, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	acct, _ := w.accounts.AccountByName("acct1")
	b.ReportAllocs()
	for b.Loop() {
		c, err := w.gw.authenticate(r, &acct, false)
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

// BenchmarkHandler measures what the node spends on one proxied chat
// completion, per credential kind, without the client's HTTP stack and
// TLS: the middleware, the router and the gateway (authentication,
// accounting, body check and model rewrite, the upstream exchange and the
// response copy) are called in-process with a reused request, against a
// raw loopback upstream that answers every request with the same bytes.
// Compare the kinds with each other, and a change with its baseline.
func BenchmarkHandler(b *testing.B) {
	w := newWorld(b)
	up := newRawUpstream(b)
	w.deps.put(acctID("acct1"), &Deployment{Name: "raw", Upstream: mustURL(b, up), Model: "upstream-model", Credential: upstreamK})
	w.authz.grant("oid", dataActionPrefix+"OpenAI/deployments/chat/completions/action", acctID("acct1"))
	sts, _ := w.tokens.IssueSTSToken(context.Background(), STSGrant{Account: Account{ID: acctID("acct1")}, Generation: 1, Lifetime: time.Hour})
	body := []byte(`{"model":"stub","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`)
	for _, bc := range []struct{ name, header, value string }{
		{"key", "Ocp-Apim-Subscription-Key", w.keys["acct1"][0]},
		{"sts", "Authorization", "Bearer " + sts},
		{"identity", "Authorization", "Bearer " + w.tokens.identity("oid", CognitiveAudience)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "https://gw.test/ai/acct1/openai/deployments/raw/chat/completions?api-version=2024-10-21", nil)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(bc.header, bc.value)
			rd := bytes.NewReader(body)
			rw := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
				clear(rw.h)
				rw.status, rw.n = 0, 0
				w.handler.ServeHTTP(rw, r)
				if rw.status != http.StatusOK || rw.n == 0 {
					b.Fatalf("status %d, %d bytes", rw.status, rw.n)
				}
			}
		})
	}
}

// benchWriter is a reusable http.ResponseWriter that keeps nothing.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// newRawUpstream starts a loopback HTTP/1.1 responder that reads each
// request (headers and Content-Length body) and answers with the same
// chat completion, allocating nothing per request. It returns its URL.
func newRawUpstream(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	payload := `{"id":"cmpl-bench","object":"chat.completion","model":"stub","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(len(payload)) + "\r\n\r\n" + payload)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 16<<10)
				for {
					n := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
							n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
					}
					if _, err := br.Discard(n); err != nil {
						return
					}
					if _, err := nc.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
