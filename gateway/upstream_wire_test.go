package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers each request on a connection with the next canned
// response of script (cycling), reading requests with http.ReadRequest. It
// counts connections, so reuse can be checked.
func rawServer(t *testing.T, script ...string) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	var next atomic.Int32
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					i := int(next.Add(1)-1) % len(script)
					if _, err := io.WriteString(nc, script[i]); err != nil {
						return
					}
					if strings.Contains(script[i], "Connection: close") || strings.HasPrefix(script[i], "HTTP/1.0") {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

func TestUpstreamResponseFraming(t *testing.T) {
	tests := []struct {
		name, response string
		status         int
		body           string
		header         map[string]string
		reuse          bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200, "{}",
			map[string]string{"Content-Type": "application/json"}, true},
		{"no-reason-phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", 200, "ok", nil, true},
		{"chunked-with-trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3;ext=1\r\ncde\r\n0\r\nX-Trailer: t\r\n\r\n",
			200, "abcde", nil, true},
		{"interim-103-first", "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 201, "x", nil, true},
		{"no-content", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", 204, "", map[string]string{"X-A": "1"}, true},
		{"lower-case-names-canonicalized", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nx-custom-thing:  v  \r\n\r\nz", 200, "z",
			map[string]string{"X-Custom-Thing": "v", "Content-Length": "1"}, true},
		{"connection-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc", 200, "c", nil, false},
		{"http10-until-eof", "HTTP/1.0 200 OK\r\n\r\nall of it", 200, "all of it", nil, false},
		{"same-content-length-twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nd", 200, "d", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, conns := rawServer(t, tt.response)
			c := NewUpstreamClient(time.Second)
			for i := range 2 {
				resp, err := postTo(t, c, context.Background(), url+"/v1/x", `{}`, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != tt.body || resp.StatusCode != tt.status {
					t.Fatalf("request %d: %d %q %v, want %d %q", i, resp.StatusCode, b, err, tt.status, tt.body)
				}
				for k, v := range tt.header {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q (all: %v)", k, got, v, resp.Header)
					}
				}
			}
			want := int32(2)
			if tt.reuse {
				want = 1
			}
			if n := conns.Load(); n != want {
				t.Errorf("%d connections for 2 requests, want %d", n, want)
			}
		})
	}
}

func TestUpstreamResponseRefused(t *testing.T) {
	for _, tt := range []struct{ name, response string }{
		{"not-http", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"bad-status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"http2-preface", "HTTP/2 200\r\n\r\n"},
		{"conflicting-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"negative-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"plus-length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"},
		{"space-before-colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx"},
		{"folded-line", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n"},
		{"control-byte-in-value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n"},
		{"gzip-transfer-encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"switching-protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"},
		{"head-too-large", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70) + "\r\n"},
		{"truncated-head", "HTTP/1.1 200 OK\r\nContent-Le"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := rawServer(t, tt.response)
			c := NewUpstreamClient(200 * time.Millisecond) // a truncated head waits for it
			resp, err := postTo(t, c, context.Background(), url+"/v1/x", `{}`, nil)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("accepted: %d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestUpstreamClientCancelAfterPoll: an upstream still silent after the
// poll interval gets a cancellation watcher, and a cancellation from then
// on ends the wait at once (not at the read timeout).
func TestUpstreamClientCancelAfterPoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan struct{}, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		http.ReadRequest(bufio.NewReader(nc))
		got <- struct{}{}
		io.Copy(io.Discard, nc) // never answers
	}()
	c := NewUpstreamClient(time.Hour)
	c.poll = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := postTo(t, c, ctx, "http://"+ln.Addr().String()+"/v1/x", `{}`, nil)
		done <- err
	}()
	<-got
	time.Sleep(20 * time.Millisecond) // many polls: the watcher is registered
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

// TestUpstreamClientBodyCancelled: cancelling while the body is being
// streamed ends the read with the context's error and closes the
// connection instead of pooling it.
func TestUpstreamClientBodyCancelled(t *testing.T) {
	url, conns := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
	c := NewUpstreamClient(time.Hour)
	c.poll = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := postTo(t, c, ctx, url+"/v1/x", `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first part" {
		t.Fatalf("%q %v", buf, err)
	}
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	resp.Body.Close()
	resp, err = postTo(t, c, context.Background(), url+"/v1/x", `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the cancelled one is not reused)", n)
	}
}

// FuzzUpstreamResponse feeds arbitrary bytes to the response parser as an
// upstream's answer. It must not panic, and whatever it accepts with a
// Content-Length or chunked body, net/http's ReadResponse must accept too,
// with the same status and body.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewUpstreamClient(time.Second)
		pc := &upConn{c: c, nc: &bytesConn{r: bytes.NewReader(data)}}
		pc.br = bufio.NewReaderSize(pc, 16<<10)
		ex := &pc.ex
		*ex = upExchange{pc: pc}
		if err := ex.readHead(false); err != nil {
			return
		}
		status, framed := ex.status, ex.remaining >= 0 || ex.chunked != nil
		var body []byte
		buf := make([]byte, 7)
		for {
			n, err := ex.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				if err != io.EOF {
					return // a truncated or malformed body is refused
				}
				break
			}
		}
		if !framed || data[9] == '1' {
			return // until EOF, or after an interim response: ReadResponse frames those otherwise
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", err, data)
		}
		want, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != status || !bytes.Equal(want, body) {
			t.Fatalf("got %d %q, net/http %d %q %v", status, body, resp.StatusCode, want, err)
		}
	})
}

// bytesConn is a net.Conn that reads from r and discards writes.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// TestUpstreamClientSlowTLS: an https upstream that answers after several
// poll intervals is waited for — a read deadline that passes mid-TLS-record
// is not an error — and its connection is reused afterwards.
func TestUpstreamClientSlowTLS(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, "late")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := NewUpstreamClient(time.Minute)
	c.poll = time.Millisecond
	c.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	postOnOneConn(t, c, srv.URL+"/v1/x", 2, "late", &conns)
}

// TestUpstreamClientPollPassedBeforeWrite: a poll deadline that has passed
// before the request's last bytes are written (a busy machine, or a request
// whose earlier writes took longer than the poll) is the poll's, not a
// failed request: the request is still written and answered.
func TestUpstreamClientPollPassedBeforeWrite(t *testing.T) {
	url, conns := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := NewUpstreamClient(time.Hour)
	c.poll = time.Nanosecond // passed before any write
	postOnOneConn(t, c, url+"/v1/x", 3, "ok", conns)
}

// postOnOneConn posts n requests to url with c, wants each answered with
// body want, and all on one connection (conns counts the server's).
func postOnOneConn(t *testing.T, c *UpstreamClient, url string, n int, want string, conns *atomic.Int32) {
	t.Helper()
	for i := range n {
		resp, err := postTo(t, c, context.Background(), url, `{}`, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != want {
			t.Fatalf("request %d: %q %v", i, b, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
}
