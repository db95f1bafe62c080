// Command upstream is a tiny, fast stand-in for a model endpoint: it answers
// every GET/POST with the same small chat-completion JSON, and echoes the
// messages of a WebSocket at /v1/realtime. bench/gateway.sh
// puts it behind the gateway and, hit directly, uses it as the "bare Go
// net/http" reference (plain HTTP and TLS 1.3). It is the upstream of
// ../shared/bench/dataplane.sh, kept here so the project's benchmark builds
// from the repository alone.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

var body = []byte(`{"id":"cmpl-bench","object":"chat.completion","model":"stub","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)

func handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/realtime" {
		realtime(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	io.Copy(io.Discard, r.Body) // drain so the connection can be reused
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.Write(body)
}

// realtime is the Realtime API's WebSocket reduced to an echo: it greets
// with session.created and sends every message back as it came (the load
// of bench/realtime).
func realtime(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	ctx := r.Context()
	if c.Write(ctx, websocket.MessageText, []byte(`{"type":"session.created","session":{"model":"stub"}}`)) != nil {
		return
	}
	for {
		typ, b, err := c.Read(ctx)
		if err != nil || c.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// selfSigned makes an in-memory ECDSA P-256 certificate for 127.0.0.1/localhost.
func selfSigned() tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "plain HTTP listen address")
	tlsAddr := flag.String("tls-addr", "", "optional TLS 1.3-only listen address")
	flag.Parse()
	mux := http.HandlerFunc(handle)
	if *tlsAddr != "" {
		srv := &http.Server{Addr: *tlsAddr, Handler: mux, TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{selfSigned()}}}
		go func() { log.Fatal(srv.ListenAndServeTLS("", "")) }()
	}
	log.Fatal((&http.Server{Addr: *addr, Handler: mux}).ListenAndServe())
}
