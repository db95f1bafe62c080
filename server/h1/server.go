// Package h1 serves HTTP/1.1 requests on TLS connections without net/http's
// per-request machinery (the data planes' hot path above all), and hands
// every other connection and request to a net/http Server.
//
// net/http's server costs a Go proxy about as much CPU per request as the
// proxying itself: per request it starts a background read (a goroutine, a
// read syscall that finds nothing, a park and a wake-up) to notice a client
// going away, builds a cancellable context, and formats the response head
// through several layers. Server keeps net/http for what it does well and
// rarely — HTTP/2, odd HTTP/1.x, what Fast declines —
// and serves the common case itself, on the connection's own goroutine:
//
//	accept → TLS handshake
//	  ALPN h2 (or anything but http/1.1) → net/http, untouched
//	  HTTP/1.1 → read a request head from the connection's buffer
//	    a clean GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (origin-form target, one Host, at most one
//	    Content-Length, no Transfer-Encoding, Expect or Upgrade, the head
//	    within the buffer) for which Fast(host, path) is true
//	        → served here: http.Request and a lean ResponseWriter around
//	          the same handler net/http would call
//	    anything else → net/http, with the connection's buffered bytes
//	        replayed, for the rest of the connection's life
//
// So every request net/http would refuse or treat specially still gets
// net/http's answer — with one exception: spaces in the query of the
// request target (azcore's generated clients send some parameters
// unencoded) are taken as %20, where net/http answers 400 (querySpaces) —, and a fast request sees the handler chain it would see
// under net/http: the same Request fields (TLS included), a ResponseWriter
// that implements Flush and http.ResponseController's deadlines, small
// bodies sent with Content-Length, larger or flushed ones chunked, a HEAD's
// body dropped (its Content-Length kept when small, as net/http does), Date and
// sniffed Content-Type added, panics with http.ErrAbortHandler ending the
// connection mid-body. A connection handed off keeps its TLS session but
// its requests have a nil Request.TLS (net/http sees a plain connection);
// no handler of Gatehouse reads it.
//
// One difference a handler must respect: a connection's requests share
// one Request (its URL and Header too), ResponseWriter, body and header
// maps, set anew for each request — a fresh set was five allocations and
// ~1.8 KB a request, and their collection. So a handler may not keep the
// Request or anything in it but strings (which are every request's own)
// once it has returned, or hand them to a goroutine that outlives it —
// as http.Handler already says of the ResponseWriter and the body; it
// copies what it needs (Request.Clone, Header.Clone). The request's
// context is its own and may outlive the handler.
//
// The request context is cancelled when the handler returns. Noticing a
// client that goes away mid-request needs a read on the connection;
// instead of one per request (net/http's background read), it starts only
// when something asks the context for Done — the gateway's upstream client
// does so only for an upstream still silent after 100 ms — and once the
// request body has been read.
//
// Timeouts follow the http.Server given: the TLS handshake and a request
// head must arrive within ReadHeaderTimeout, an idle connection is closed
// after IdleTimeout. Shutdown stops accepting, closes idle connections and
// waits for the others, for both servers.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server accepts TLS connections and serves them (see the package doc).
type Server struct {
	// HTTP serves HTTP/2 and every connection or request the fast path
	// does not take. Its Handler serves fast requests too; its TLSConfig
	// (required, with NextProtos) is the listener's; its
	// ReadHeaderTimeout and IdleTimeout apply to fast connections.
	HTTP *http.Server
	// Fast reports whether a request for host (as sent, with any port) and
	// path (the raw request path, without the query) is served on the fast
	// path. nil: none is; every connection goes to HTTP.
	Fast func(host, path string) bool
	// RequestContext, when set, is given each fast-path request's context
	// and returns the one the handler gets: what a middleware would add
	// with Request.WithContext, without the copy of the request that costs
	// (server.NewRequestContext is the node middleware's).
	RequestContext func(ctx context.Context) context.Context
	// Logger receives TLS handshake failures (debug) and panics (error).
	Logger *slog.Logger
	// BodyTimeout is how long a fast request's body may stall: a read of
	// it that must wait for the network fails with ErrBodyTimeout when
	// nothing arrives within it, and the connection is closed after the
	// response (nginx's client_body_timeout). 0: no limit.
	BodyTimeout time.Duration

	// fastRequests counts requests served here; handedOff connections
	// given to net/http after their first HTTP/1.1 bytes, h2 those given
	// after the handshake.
	fastRequests, handedOff, other atomic.Uint64

	handoff  *connQueue
	mu       sync.Mutex
	conns    map[*conn]struct{}
	listener net.Listener
	shutdown atomic.Bool
	baseCtx  context.Context
}

// bufSize is the size of a connection's read and write buffers: the
// largest request head the fast path takes (bigger ones go to net/http,
// which allows MaxHeaderBytes).
const bufSize = 8 << 10

// Serve accepts connections on ln (plain TCP; the TLS handshake happens
// here) until Shutdown or Close, and then returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.HTTP == nil || s.HTTP.TLSConfig == nil {
		return errors.New("h1: Server needs HTTP with a TLSConfig")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listener = ln
	s.handoff = newConnQueue(ln.Addr())
	s.conns = make(map[*conn]struct{})
	s.baseCtx = context.WithValue(context.Background(), http.ServerContextKey, s.HTTP)
	s.mu.Unlock()

	httpErr := make(chan error, 1)
	go func() { httpErr <- s.HTTP.Serve(s.handoff) }()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			if temporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does, and go on.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Logger.Warn("h1: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			s.handoff.Close()
			<-httpErr
			return err
		}
		delay = 0
		go s.serveConn(nc)
	}
}

// temporary reports whether an accept error says it is temporary (EMFILE,
// ECONNABORTED), as net/http's accept loop asks.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// serveConn completes the TLS handshake and serves the connection or hands
// it to net/http.
func (s *Server) serveConn(nc net.Conn) {
	tc := tls.Server(nc, s.HTTP.TLSConfig)
	if d := s.HTTP.ReadHeaderTimeout; d > 0 {
		tc.SetDeadline(time.Now().Add(d))
	}
	if err := tc.HandshakeContext(s.baseCtx); err != nil {
		s.Logger.Debug("h1: TLS handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	state := tc.ConnectionState()
	if s.Fast == nil || state.NegotiatedProtocol != "" && state.NegotiatedProtocol != "http/1.1" {
		s.other.Add(1)
		s.handoff.put(tc)
		return
	}
	c := newConn(s, tc, &state)
	if !s.track(c, true) {
		tc.Close()
		return
	}
	c.serve()
	s.track(c, false)
}

// Stats are the server's counters since it started.
type Stats struct {
	// FastRequests is the number of requests served on the fast path.
	FastRequests uint64
	// HandedOff is the number of HTTP/1.1 connections given to net/http
	// at a request the fast path does not take; Other the number given
	// right after the handshake (HTTP/2, or no Fast).
	HandedOff, Other uint64
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{FastRequests: s.fastRequests.Load(), HandedOff: s.handedOff.Load(), Other: s.other.Load()}
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown.Load() {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// Shutdown stops accepting, closes idle connections and waits for the
// others to finish their request, as http.Server.Shutdown does, for the
// fast connections and for HTTP's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.HTTP.Shutdown(ctx) }()
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			<-httpDone
			return ctx.Err()
		case <-timer.C:
			poll = min(2*poll, 500*time.Millisecond)
			timer.Reset(poll)
		}
	}
	return <-httpDone
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.beginShutdown()
	err := s.HTTP.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.tc.Close()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	s.shutdown.Store(true)
	ln := s.listener
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// closeIdle closes the idle fast connections and reports whether none is
// left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.tc.Close()
		}
	}
	return len(s.conns) == 0
}

// connQueue is the listener net/http serves: the connections the fast
// path hands over.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.closed.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// replayConn is a connection handed to net/http after the fast path has
// read bytes of it: those are read again first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handOff gives the rest of the connection, from its unread buffered
// bytes on, to net/http.
func (c *conn) handOff() {
	pending, _ := c.br.Peek(c.br.Buffered())
	rc := &replayConn{Conn: c.tc, pending: append([]byte(nil), pending...)}
	c.s.handedOff.Add(1)
	c.s.handoff.put(rc)
}

// Connection states, for Shutdown.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

func newConn(s *Server, tc *tls.Conn, state *tls.ConnectionState) *conn {
	c := &conn{s: s, tc: tc, tls: state, remote: tc.RemoteAddr().String()}
	c.br = bufio.NewReaderSize(tc, bufSize)
	c.bw = bufio.NewWriterSize(tc, bufSize)
	c.ctx = context.WithValue(s.baseCtx, http.LocalAddrContextKey, tc.LocalAddr())
	c.state.Store(stateActive)
	return c
}
