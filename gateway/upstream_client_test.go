package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/rawconn"
)

func postTo(t *testing.T, c *UpstreamClient, ctx context.Context, url, body string, hdr http.Header) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	if hdr != nil {
		req.Header = hdr
	}
	return c.RoundTrip(req)
}

func TestUpstreamClient(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // forces chunked encoding
		}
		fmt.Fprintf(w, "%s %s %s %q", r.Method, r.URL.RequestURI(), b, r.Header.Get("X-Test"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := NewUpstreamClient(time.Second)
	c.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	for i, url := range []string{srv.URL + "/v1/chat/completions", srv.URL + "/v1/x?chunked=1", srv.URL + "/v1/y"} {
		resp, err := postTo(t, c, context.Background(), url, `{"n":1}`, http.Header{"X-Test": {"ok"}, "X-Bad": {"a\r\nInjected: yes"}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasPrefix(string(b), "POST /v1/") || !strings.HasSuffix(string(b), `{"n":1} "ok"`) {
			t.Errorf("request %d: %q %v", i, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sequential requests over https, want 1 (reuse)", n)
	}
}

// TestUpstreamClientIdleTimeout: a connection idle for less than
// IdleTimeout is reused, one idle for longer is not (a new one is dialed),
// and CloseIdle closes those past it — the idle time counted from the end
// of the connection's last exchange, a streamed answer's included.
func TestUpstreamClientIdleTimeout(t *testing.T) {
	var conns, closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("slow") != "" {
			// A streamed answer that lasts longer than the idle timeout.
			for range 4 {
				io.WriteString(w, "data: x\n\n")
				w.(http.Flusher).Flush()
				time.Sleep(175 * time.Millisecond)
			}
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewUpstreamClient(time.Second)
	c.IdleTimeout = 500 * time.Millisecond
	do := func(query string) {
		t.Helper()
		resp, err := postTo(t, c, context.Background(), srv.URL+"/v1/x"+query, `{}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || !strings.HasSuffix(string(b), "ok") {
			t.Fatalf("answer %q %v", b, err)
		}
		resp.Body.Close()
	}
	do("")
	do("?slow=1") // 700 ms of answer on the connection
	do("")        // right after the long answer: still the first connection
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for back-to-back requests, want 1", n)
	}
	time.Sleep(2 * c.IdleTimeout)
	do("")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after an idle timeout, want 2", n)
	}
	time.Sleep(2 * c.IdleTimeout)
	c.CloseIdle(false)
	for deadline := time.Now().Add(5 * time.Second); closed.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := closed.Load(); n != 2 {
		t.Fatalf("%d connections closed, want 2 (the timed-out one and the idle one)", n)
	}
}

// TestUpstreamClientStaleConnection: an upstream that closes an idle
// connection (as uvicorn does after 5 s) costs the next request nothing:
// it is retried once on a new connection.
func TestUpstreamClientStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				// Answer one request, keep-alive style, then close: the
				// client's pooled connection is stale.
				defer nc.Close()
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	c := NewUpstreamClient(time.Second)
	url := "http://" + ln.Addr().String() + "/v1/chat/completions"
	for i := range 3 {
		resp, err := postTo(t, c, context.Background(), url, `{}`, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
		// Let the server close the connection the client just pooled.
		for accepted.Load() < int32(i+1) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per request)", n)
	}
}

// TestUpstreamClientStaleBurst: after a burst pooled several connections
// that the upstream then closed, the next request is not retried on
// another of them (a 502 "could not be reached") but on a new one.
func TestUpstreamClientStaleBurst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const burst = 4
	var accepted, closed atomic.Int32
	all := make(chan struct{})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) == burst {
				close(all)
			}
			go func() {
				// One request each, answered once the whole burst has a
				// connection of its own, then closed.
				defer func() { nc.Close(); closed.Add(1) }()
				req, err := http.ReadRequest(bufio.NewReader(nc))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				<-all
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	c := NewUpstreamClient(time.Minute)
	url := "http://" + ln.Addr().String() + "/v1/chat/completions"
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			if resp, err := postTo(t, c, context.Background(), url, `{}`, nil); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for closed.Load() < burst {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	resp, err := postTo(t, c, context.Background(), url, `{}`, nil)
	if err != nil {
		t.Fatalf("the request after the burst: %v", err)
	}
	resp.Body.Close()
}

func TestUpstreamClientCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := NewUpstreamClient(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := postTo(t, c, ctx, srv.URL+"/v1/x", `{}`, nil)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled request kept waiting for the upstream")
	}
}

func TestUpstreamClientRefusesUnsupported(t *testing.T) {
	c := NewUpstreamClient(time.Second)
	req, _ := http.NewRequest(http.MethodPost, "ftp://example.invalid/x", nil)
	if _, err := c.RoundTrip(req); !errors.Is(err, errUnsupported) {
		t.Errorf("ftp: %v", err)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", io.MultiReader(strings.NewReader("x")))
	req.ContentLength = -1
	if _, err := c.RoundTrip(req); err == nil {
		t.Error("unknown body length accepted")
	}
}

// TestUpstreamClientSilentUpstream: a plain-TCP upstream that never
// answers fails the request with a timeout at ReadTimeout, also when that
// is shorter than the poll interval (the request's write awaits the
// answer; see upConn.writeAwait).
func TestUpstreamClientSilentUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer nc.Close(); io.Copy(io.Discard, nc) }()
		}
	}()
	for _, timeout := range []time.Duration{30 * time.Millisecond, 250 * time.Millisecond} {
		c := NewUpstreamClient(timeout)
		_, err := postTo(t, c, context.Background(), "http://"+ln.Addr().String()+"/v1/x", `{}`, nil)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("read timeout %v: error %v, want a timeout", timeout, err)
		}
	}
}

// TestUpstreamClientBlockedWrite: a request the upstream's socket cannot
// take at once (tiny buffers, an upstream slow to read) is written in full
// all the same, and its answer read — with raw system calls (the default)
// and with ordinary ones.
func TestUpstreamClientBlockedWrite(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) { testBlockedWrite(t, plain) })
	}
}

func testBlockedWrite(t *testing.T, plain bool) {
	small := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1024)
			}
		})
		return serr
	}
	lc := net.ListenConfig{Control: small}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := `{"pad":"` + strings.Repeat("x", 15<<10) + `"}`
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		time.Sleep(50 * time.Millisecond) // the client's write fills the buffers and blocks
		br := bufio.NewReader(nc)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.Itoa(len(b))), len(b))
		}
	}()
	c := NewUpstreamClient(10 * time.Second)
	c.Dialer.Control = small
	c.PlainSyscalls = plain
	for i := range 2 {
		resp, err := postTo(t, c, context.Background(), "http://"+ln.Addr().String()+"/v1/x", body, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != strconv.Itoa(len(body)) {
			t.Errorf("request %d: the upstream read %s bytes, want %d", i, b, len(body))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ic := range c.idle {
		for _, pc := range ic.list {
			if _, raw := pc.nc.(*rawconn.Conn); raw == plain {
				t.Errorf("PlainSyscalls %v: the connection is a %T", plain, pc.nc)
			}
		}
	}
}
