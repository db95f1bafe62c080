package h1

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// BenchmarkServe measures one keep-alive HTTP/1.1 POST over TLS on
// loopback, served by the fast path and, for comparison, by net/http
// (Fast refusing everything hands each connection over): the per-request
// cost the fast path saves, client included.
//
//	go test -run '^$' -bench Serve -benchmem ./server/h1/
func BenchmarkServe(b *testing.B) {
	body := `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`
	answer := `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}`
	req := "POST /ai/acct/openai/deployments/chat/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n" +
		"Host: localhost\r\nContent-Type: application/json\r\nApi-Key: 0123456789abcdef0123456789abcdef\r\n" +
		"User-Agent: bench\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		io.WriteString(w, answer)
	})
	for _, mode := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"net-http", false}} {
		b.Run(mode.name, func(b *testing.B) {
			cert, pool := testCert(b)
			hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
			fast := mode.fast
			s := &Server{HTTP: hs, Fast: func(string, string) bool { return fast }}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(ln)
			defer s.Close()
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.ReportAllocs()
			b.ResetTimer()
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
				if resp.StatusCode != 200 || n != int64(len(answer)) {
					b.Fatalf("%d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
