package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpfield"
)

// conn is one HTTP/1.1 connection on the fast path.
type conn struct {
	s      *Server
	tc     *tls.Conn
	tls    *tls.ConnectionState
	remote string
	br     *bufio.Reader
	bw     *bufio.Writer
	// ctx carries the server's and the connection's context values.
	ctx   context.Context
	state atomic.Int32
	// readDeadline is the read deadline set on tc.
	readDeadline time.Time
	// fields is the scratch a request head's fields are found in; pending
	// the scratch a response body waits in until its framing is known.
	fields  [maxFields]fieldPos
	pending []byte
	// reqHeader and header are the request's and the response's header
	// maps, reused from request to request (parse, response.init), like
	// ex.
	reqHeader, header http.Header
	ex                exchange
}

// Limits of a request the fast path takes (bigger ones go to net/http).
const (
	maxFields = 64
	// maxPending is how much of a response body is held back to send it
	// with a Content-Length; a longer one (or one flushed) is chunked.
	maxPending = 4 << 10
	// maxDiscard is how much of a request body the handler left unread is
	// read away to keep the connection (net/http's figure); a longer rest
	// closes the connection.
	maxDiscard = 256 << 10
)

type fieldPos struct{ name, value [2]int32 }

var (
	errHandOff = errors.New("h1: not for the fast path")
	// errAmbiguousLength: a head with both Transfer-Encoding and
	// Content-Length, which two servers in a row may frame differently
	// (request smuggling): refused, and the connection closed (RFC 9112
	// §6.3; net/http would serve it by its Transfer-Encoding and keep the
	// connection).
	errAmbiguousLength = errors.New("h1: both Transfer-Encoding and Content-Length")
	aLongTimeAgo       = time.Unix(1, 0)
)

// serve reads and serves requests until the connection ends, is handed
// off, or the server shuts down.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			c.tc.Close()
		}
	}()
	idle := c.s.HTTP.IdleTimeout
	// The idle deadline is moved only when it would move by more than
	// slack: a keep-alive connection then sets it about once a second
	// instead of once per request (each set modifies a runtime timer),
	// and an idle connection ends between idle-slack and idle.
	slack := min(idle/8, time.Second)
	// A new connection's first request must begin within ReadHeaderTimeout,
	// as net/http's does: IdleTimeout is for a kept-alive connection
	// between requests (a connection that never sends a byte was kept for
	// two minutes instead of ten seconds).
	wait := idle
	if d := c.s.HTTP.ReadHeaderTimeout; d > 0 {
		wait = d
	}
	for {
		if !c.state.CompareAndSwap(stateActive, stateIdle) || c.s.shutdown.Load() {
			return
		}
		if c.br.Buffered() == 0 {
			if wait > 0 {
				now := time.Now()
				if d := now.Add(wait); !c.readDeadline.After(now) || d.Sub(c.readDeadline) > slack {
					c.setReadDeadline(d)
				}
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it
		}
		wait = idle
		r, n, err := c.readRequest()
		if err == errHandOff {
			handedOff = true
			c.handOff()
			return
		}
		if err == errAmbiguousLength {
			c.bw.WriteString(ambiguousLengthAnswer)
			c.bw.Flush()
			c.closeAfterReply()
			return
		}
		if err != nil {
			return
		}
		// A body still to arrive is read under BodyTimeout, set again
		// before every read that waits (body.Read). One that is already
		// buffered, like the head, needs no read: the deadline is left as
		// it is, which saves setting it twice per request (the watcher
		// copes with a stale one).
		if rest := r.body.remaining; rest > 0 && int64(c.br.Buffered()-n) < rest {
			c.bodyDeadline()
		}
		c.br.Discard(n)
		c.s.fastRequests.Add(1)
		if !c.serveRequest(r) {
			return
		}
	}
}

// bodyDeadline sets the read deadline a body read that waits for the
// network gets: BodyTimeout from now, or none.
func (c *conn) bodyDeadline() {
	if d := c.s.BodyTimeout; d > 0 {
		c.setReadDeadline(time.Now().Add(d))
	} else {
		c.setReadDeadline(time.Time{})
	}
}

// setReadDeadline sets the connection's read deadline unless it is set
// so already.
func (c *conn) setReadDeadline(t time.Time) {
	if !t.Equal(c.readDeadline) {
		c.readDeadline = t
		c.tc.SetReadDeadline(t)
	}
}

// readRequest parses the request head at the start of the read buffer
// (reading more as needed) without consuming it, and returns the request
// and the head's length. errHandOff: net/http is to serve it.
func (c *conn) readRequest() (*exchange, int, error) {
	deadlineSet := false
	for off := 0; ; {
		n := c.br.Buffered()
		buf, _ := c.br.Peek(n)
		end, next, bare := scanHead(buf, off)
		if bare {
			return nil, 0, errHandOff
		}
		if end > 0 {
			ex, err := c.parse(buf[:end])
			if err == errHandOff && ambiguousLength(buf[:end]) {
				err = errAmbiguousLength
			}
			if err != nil {
				return nil, 0, err
			}
			return ex, end, nil
		}
		if n >= bufSize {
			return nil, 0, errHandOff // a head too large for the fast path
		}
		off = next
		// The head is not all here: the rest must come within
		// ReadHeaderTimeout.
		if d := c.s.HTTP.ReadHeaderTimeout; d > 0 && !deadlineSet {
			c.setReadDeadline(time.Now().Add(d))
			deadlineSet = true
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			return nil, 0, err
		}
	}
}

// scanHead looks for the end of the head that starts buf, from the line
// that starts at off (the lines before it have been looked at): it
// returns the head's length through its empty line, or 0 and the offset
// to go on from once more has arrived. bare: a line ends in a line feed
// without a carriage return before it — net/http accepts such heads; the
// fast path leaves them to it. One IndexByte a line: the SIMD search
// crosses a kilobyte bearer token in a few dozen instructions.
func scanHead(buf []byte, off int) (end, next int, bare bool) {
	for {
		i := bytes.IndexByte(buf[off:], '\n')
		if i < 0 {
			return 0, off, false
		}
		i += off
		if i == 0 || buf[i-1] != '\r' {
			return 0, 0, true
		}
		if i == off+1 {
			return i + 1, 0, false // the empty line
		}
		off = i + 1
	}
}

// parse builds the request from a complete head as scanHead found it
// (every line ends in CRLF, the last one empty), or answers errHandOff for anything but a clean GET, HEAD, POST, PUT,
// PATCH, DELETE or OPTIONS (of a path: "OPTIONS *" is net/http's) for the
// fast path.
func (c *conn) parse(buf []byte) (*exchange, error) {
	eol := bytes.IndexByte(buf, '\n') - 1
	line := buf[:eol]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return nil, errHandOff
	}
	method := line[:sp1]
	rest := line[sp1+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 < 0 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return nil, errHandOff
	}
	target := rest[:sp2]
	switch string(method) {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		return nil, errHandOff
	}
	// Spaces in the query are taken as %20 (querySpaces); anywhere else
	// the request is net/http's (a 400).
	spaces := querySpaces(target)
	if len(target) == 0 || target[0] != '/' || spaces < 0 || !validTarget(target, spaces > 0) {
		return nil, errHandOff
	}

	// The fields: validated and located first, built only if the request
	// is for the fast path.
	nf, hostIdx, length, closeConn := 0, -1, int64(-1), false
	pos := eol + 2
	for pos < len(buf)-2 {
		// Every line ends in CRLF (scanHead): the LF finds its end.
		end := pos + bytes.IndexByte(buf[pos:], '\n') - 1
		line := buf[pos:end]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || nf == maxFields || !httpfield.ValidName(line[:colon]) {
			return nil, errHandOff // obs-fold, a space before the colon, ...
		}
		vs, ve := colon+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		name, value := line[:colon], line[vs:ve]
		if !httpfield.ValidValue(value) {
			return nil, errHandOff
		}
		switch {
		case equalFold(name, "host"):
			if hostIdx >= 0 || !validHost(value) {
				return nil, errHandOff
			}
			hostIdx = nf
		case equalFold(name, "content-length"):
			v, err := strconv.ParseInt(string(value), 10, 64)
			if length >= 0 || err != nil || v < 0 || len(value) == 0 || value[0] == '+' {
				return nil, errHandOff
			}
			length = v
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"), equalFold(name, "upgrade"):
			return nil, errHandOff
		case equalFold(name, "connection"):
			if hasToken(value, "close") {
				closeConn = true
			}
		}
		c.fields[nf] = fieldPos{[2]int32{int32(pos), int32(pos + colon)}, [2]int32{int32(pos + vs), int32(pos + ve)}}
		nf++
		pos = end + 2
	}
	if hostIdx < 0 {
		return nil, errHandOff
	}
	if length < 0 {
		length = 0
	}
	if length > 0 && (string(method) == http.MethodGet || string(method) == http.MethodHead) {
		return nil, errHandOff
	}
	// One string holds the head; every name and value is a piece of it.
	head := string(buf)
	hp := c.fields[hostIdx].value
	targetS := head[sp1+1 : sp1+1+sp2]
	if spaces > 0 {
		targetS = strings.ReplaceAll(targetS, " ", "%20")
	}
	path, _, _ := strings.Cut(targetS, "?")
	if !c.s.Fast(head[hp[0]:hp[1]], path) {
		return nil, errHandOff
	}
	// The connection's exchange serves each request in turn (the
	// package doc says what that asks of a handler); the context is the
	// request's own, as it may outlive the handler.
	ex := &c.ex
	*ex = exchange{ctx: &reqContext{parent: c.ctx, c: c}}
	u := plainURL(targetS, &ex.url)
	if u == nil {
		var err error
		if u, err = url.ParseRequestURI(targetS); err != nil {
			return nil, errHandOff
		}
	}
	// The connection's request header map is emptied and filled again,
	// like the response's (response.init): see Server's doc on what that
	// asks of a handler. One that a request grew past a group is dropped.
	h := c.reqHeader
	if h != nil && len(h) <= 8 && nf <= 9 {
		clear(h)
	} else {
		h = make(http.Header, nf)
		c.reqHeader = h
	}
	values := ex.values[:0]
	if nf > len(ex.values) {
		values = make([]string, nf)
	}
	values = values[:nf]
	for i := 0; i < nf; i++ {
		if i == hostIdx {
			continue // net/http keeps Host out of the header too
		}
		f := c.fields[i]
		name := httpfield.Canonical(head[f.name[0]:f.name[1]])
		values[i] = head[f.value[0]:f.value[1]]
		if vv, ok := h[name]; ok {
			h[name] = append(vv, values[i])
		} else {
			h[name] = values[i : i+1 : i+1]
		}
	}
	ex.body = body{c: c, remaining: length, ctx: ex.ctx}
	r := http.Request{
		Method:        head[:sp1],
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: length,
		Close:         closeConn,
		Host:          head[hp[0]:hp[1]],
		RemoteAddr:    c.remote,
		RequestURI:    targetS,
		TLS:           c.tls,
		Body:          http.NoBody,
	}
	if length > 0 {
		r.Body = &ex.body
	} else {
		ex.ctx.bodyDone = true
	}
	var ctx context.Context = ex.ctx
	if c.s.RequestContext != nil {
		ctx = c.s.RequestContext(ctx)
	}
	// Copied into the exchange: WithContext's copy then stays on the stack.
	ex.request = *r.WithContext(ctx)
	ex.req = &ex.request
	return ex, nil
}

// ambiguousLength reports whether a head (every line ending in CRLF) has
// both a Transfer-Encoding and a Content-Length field. parse hands every
// head with a Transfer-Encoding to net/http, so only those are looked at.
func ambiguousLength(head []byte) bool {
	te, cl := false, false
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		name, _, ok := bytes.Cut(line, []byte(":"))
		switch {
		case !ok:
		case equalFold(name, "transfer-encoding"):
			te = true
		case equalFold(name, "content-length"):
			cl = true
		}
	}
	return te && cl
}

// ambiguousLengthAnswer answers errAmbiguousLength.
var ambiguousLengthAnswer = func() string {
	body := `{"error":{"code":"BadRequest","message":"The request has both Transfer-Encoding and Content-Length."}}`
	return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// plainURL returns the URL of an origin-form target whose path has only
// characters url.ParseRequestURI keeps as they are (no escapes), built in
// u without it; nil for any other target. FuzzParse holds the two equal.
func plainURL(target string, u *url.URL) *url.URL {
	path, query, hasQuery := strings.Cut(target, "?")
	if !httpfield.PlainPath(path) {
		return nil
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return u
}

// exchange is one request and its response, in the connection (the
// request context apart).
type exchange struct {
	req     *http.Request
	request http.Request // what req points to
	url     url.URL
	// values backs the header's value slices (most requests have few
	// fields).
	values [8]string
	resp   response
	body   body
	ctx    *reqContext
}

// serveRequest runs the handler and finishes the response; false: the
// connection is to be closed.
func (c *conn) serveRequest(ex *exchange) bool {
	w := &ex.resp
	w.init(c, ex.req, &ex.body)
	ok := c.runHandler(w, ex.req)
	ex.ctx.end()
	w.handlerDone = true
	if !ok {
		return false // aborted: the client must see a broken response
	}
	keep := w.finish()
	if w.deadlineSet {
		c.tc.SetWriteDeadline(time.Time{})
	}
	if ex.body.remaining > 0 {
		// Left unread by a full-duplex handler, or by one that gave up
		// reading after its response went out (read away then, or the
		// response said Connection: close, as after a stalled body).
		if !keep || !c.discardBody(&ex.body) {
			c.closeAfterReply()
			return false
		}
	}
	return keep // a connection not kept is closed at once, as net/http does
}

func (c *conn) runHandler(w *response, r *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.s.Logger.Error("h1: panic serving", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			}
			ok = false
		}
	}()
	c.s.HTTP.Handler.ServeHTTP(w, r)
	return true
}

// discardBody reads away what is left of a request body of at most
// maxDiscard bytes, within ReadHeaderTimeout, and reports whether it could.
func (c *conn) discardBody(b *body) bool {
	if b.remaining > maxDiscard {
		return false
	}
	if d := c.s.HTTP.ReadHeaderTimeout; d > 0 {
		c.setReadDeadline(time.Now().Add(d))
	}
	n, err := c.br.Discard(int(b.remaining))
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.ctx.readAll()
	}
	return err == nil
}

// closeAfterReply ends the connection after a response the client may
// still be sending a request body to: the write side is closed first, and
// what the client still sends is read away (nginx's lingering close) —
// until it closes its side, pauses for lingerIdle, or has sent lingerMax
// more or for lingerTime. Closing with its bytes unread would make the
// kernel reset the connection, and a client that writes its whole body
// before it reads (Python's requests, a 413 for a large upload) would
// lose the answer with it; net/http only waits half a second.
func (c *conn) closeAfterReply() {
	c.tc.CloseWrite()
	if cw, ok := c.tc.NetConn().(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	end := time.Now().Add(lingerTime)
	for n := int64(0); n < lingerMax; {
		d := time.Now().Add(lingerIdle)
		if d.After(end) {
			d = end
		}
		c.tc.SetReadDeadline(d)
		m, err := c.br.Discard(c.br.Buffered() + 1)
		n += int64(m)
		if err != nil {
			return
		}
	}
}

// How long and how much closeAfterReply reads away.
const (
	lingerTime = 10 * time.Second
	lingerIdle = 2 * time.Second
	lingerMax  = 64 << 20
)

// body is a request body of known length, read from the connection's
// buffer.
type body struct {
	c         *conn
	remaining int64
	closed    bool
	// stalled: a read ran into BodyTimeout; the connection is not reused.
	stalled bool
	ctx     *reqContext
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if b.stalled {
		return 0, ErrBodyTimeout
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	if b.c.br.Buffered() == 0 && b.c.s.BodyTimeout > 0 {
		b.c.bodyDeadline() // this read waits for the network
	}
	n, err := b.c.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.ctx.readAll()
		return n, io.EOF
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() && n == 0 {
		b.stalled = true
		return 0, ErrBodyTimeout
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// OwnsBody reports whether b is the body of a request the fast path
// serves (which times out its own stalls).
func OwnsBody(b io.ReadCloser) bool {
	_, ok := b.(*body)
	return ok
}

// ErrBodyTimeout is what a read of a request body returns when nothing of
// it arrived within the server's BodyTimeout (server.Middleware's too):
// the request is answered 408 and the connection closed.
var ErrBodyTimeout = errors.New("the request body did not arrive in time")

func (b *body) Close() error {
	b.closed = true
	return nil
}

// reqContext is a request's context: the connection's values, cancelled
// when the handler returns or — once something waits on Done and the body
// has been read — when the client goes away.
type reqContext struct {
	parent context.Context
	c      *conn

	mu        sync.Mutex
	done      chan struct{}
	err       error
	bodyDone  bool
	ended     bool
	watchDone chan struct{} // non-nil while a watcher runs
}

func (x *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *reqContext) Value(key any) any           { return x.parent.Value(key) }

func (x *reqContext) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *reqContext) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		} else {
			x.watchLocked()
		}
	}
	return x.done
}

// readAll records that the body has been read: a watcher may start.
func (x *reqContext) readAll() {
	x.mu.Lock()
	x.bodyDone = true
	x.watchLocked()
	x.mu.Unlock()
}

// watchLocked starts the watcher that notices the client going away, if
// something waits on Done and the connection is not being read.
func (x *reqContext) watchLocked() {
	if x.done == nil || !x.bodyDone || x.ended || x.watchDone != nil {
		return
	}
	x.watchDone = make(chan struct{})
	go x.watch(x.watchDone)
}

func (x *reqContext) watch(done chan struct{}) {
	defer close(done)
	for {
		// Bytes (a pipelined request) mean the client is still there;
		// they stay buffered for the connection's loop. An error before
		// the handler ended means it went away — but for a timeout, which
		// is the connection's stale deadline (cleared, and the watch goes
		// on) or end stopping the watch.
		_, err := x.c.br.Peek(1)
		if err == nil {
			return
		}
		x.mu.Lock()
		if x.ended {
			x.mu.Unlock()
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			x.c.readDeadline = time.Time{}
			x.c.tc.SetReadDeadline(time.Time{})
			x.mu.Unlock()
			continue
		}
		x.cancelLocked()
		x.mu.Unlock()
		return
	}
}

func (x *reqContext) cancelLocked() {
	if x.err != nil {
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
}

// end cancels the context when the handler has returned, and stops the
// watcher before the connection is read again.
func (x *reqContext) end() {
	x.mu.Lock()
	x.ended = true
	x.cancelLocked()
	watching := x.watchDone
	if watching != nil {
		// Under the lock, so that a watcher clearing a stale deadline
		// cannot undo this one.
		x.c.tc.SetReadDeadline(aLongTimeAgo)
	}
	x.mu.Unlock()
	if watching != nil {
		<-watching
		x.c.readDeadline = aLongTimeAgo // the loop sets the next one
	}
}
