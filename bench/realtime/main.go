// Command realtime is bench/gateway.sh's load generator for the Realtime
// API: -sessions WebSockets to -url, each sending a text event the size of
// 100 ms of 24 kHz audio (input_audio_buffer.append, base64) and waiting
// for its echo (bench/upstream echoes every message), for -duration. It
// prints one line: messages/s (round trips), p50 and p99 round-trip ms,
// and the number of round trips. Any failure exits non-zero.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "ws:// or wss:// URL of the Realtime endpoint")
	cacert := flag.String("cacert", "", "PEM file of the CA to trust for wss://")
	sessions := flag.Int("sessions", 64, "concurrent sessions")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	size := flag.Int("size", 4800, "audio bytes per event (before base64; 4,800 = 100 ms of 24 kHz PCM16)")
	var hdrs headers
	flag.Var(&hdrs, "header", `"Name: value" sent on the upgrade (repeatable)`)
	flag.Parse()
	if *url == "" {
		log.Fatal("-url is required")
	}
	h := http.Header{}
	for _, kv := range hdrs {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			log.Fatalf("header %q is not Name: value", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	tlsConf := &tls.Config{}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsConf.RootCAs = pool
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: false}}
	event := []byte(`{"type":"input_audio_buffer.append","audio":"` + base64.StdEncoding.EncodeToString(make([]byte, *size)) + `"}`)

	ctx := context.Background()
	conns := make([]*websocket.Conn, *sessions)
	for i := range conns {
		c, resp, err := websocket.Dial(ctx, *url, &websocket.DialOptions{HTTPClient: client, HTTPHeader: h})
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			log.Fatalf("session %d: %v (status %d)", i, err, status)
		}
		c.SetReadLimit(1 << 20)
		if _, _, err := c.Read(ctx); err != nil { // session.created
			log.Fatalf("session %d: %v", i, err)
		}
		conns[i] = c
	}
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(*duration)
	for _, c := range conns {
		wg.Go(func() {
			var rtts []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := c.Write(ctx, websocket.MessageText, event); err != nil {
					log.Fatalf("write: %v", err)
				}
				_, b, err := c.Read(ctx)
				if err != nil || len(b) != len(event) {
					log.Fatalf("read: %v (%d bytes)", err, len(b))
				}
				rtts = append(rtts, time.Since(t0))
			}
			mu.Lock()
			all = append(all, rtts...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	if len(all) == 0 {
		log.Fatal("no round trip completed")
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
	fmt.Printf("%.0f %.3f %.3f %d\n", float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), len(all))
}
