package gatewaytest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// BenchmarkDataPlane is one proxied chat completion with a key, from a
// keep-alive HTTP/1.1 client over TLS through a real node (SQLite) to an
// upstream in the same process: the request path as wrk drives it in
// bench/gateway.sh, here with allocations counted and -cpuprofile at hand;
// with a key, an STS token and an identity token.
//
//	go test -run '^$' -bench DataPlane -benchmem -cpuprofile /tmp/cpu.out ./cmd/gatehouse/internal/gatewaytest/
func BenchmarkDataPlane(b *testing.B) {
	answer := `{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "Bearer "+upstreamKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer up.Close()
	e := newEnv(b, testenv.WithLogLevel("info"))
	a := e.createAccount(b, "bench", "OpenAI", nil)
	if r := e.arm(b, http.MethodPut, a.id+"/deployments/chat", deploymentBody("m", up.URL, upstreamKey)); r.status >= 300 {
		b.Fatalf("deployment: %d %s", r.status, r.body)
	}
	u, err := url.Parse(a.endpoint)
	if err != nil {
		b.Fatal(err)
	}
	body := `{"messages":[{"role":"user","content":"hi"}]}`
	_, cred := e.principal(b, "bench-app", a, authz.RoleCognitiveServicesOpenAIUser)
	identity := e.Token(b, cred, "https://cognitiveservices.azure.com/.default")
	for _, cred := range []struct{ name, header string }{
		{"key", "Api-Key: " + a.key1},
		{"sts", "Authorization: Bearer " + e.sts(b, a.endpoint, a.key1)},
		{"identity", "Authorization: Bearer " + identity},
	} {
		req := "POST " + u.Path + "openai/deployments/chat/chat/completions?api-version=" + openAIVersion + " HTTP/1.1\r\n" +
			"Host: " + u.Host + "\r\nContent-Type: application/json\r\n" + cred.header + "\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		b.Run(cred.name, func(b *testing.B) { roundTrips(b, e, req, len(answer)) })
	}
}

// roundTrips sends req over one keep-alive HTTP/1.1 connection, b.N times.
func roundTrips(b *testing.B, e *env, req string, answerLen int) {
	c, err := tls.Dial("tcp", e.Addr.String(), &tls.Config{RootCAs: e.CAPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	before := e.Main.FastPathStats().FastRequests
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.WriteString(c, req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(answerLen) {
			b.Fatalf("%d, %d bytes", resp.StatusCode, n)
		}
	}
	b.StopTimer()
	if got := e.Main.FastPathStats().FastRequests - before; got < uint64(b.N) {
		b.Fatalf("the fast path served %d of %d requests", got, b.N)
	}
}
