package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// UpstreamClient is the proxy's HTTP/1.1 client: a keep-alive connection
// pool per upstream with the request written and the response read on the
// calling goroutine. net/http's Transport hands every request to two
// goroutines of its connection (a writer and a reader) and back through
// channels; on a proxy's hot path those hand-offs cost more than the
// proxying itself, so the gateway speaks the small subset of HTTP/1.1 it
// needs directly (ReadResponse still does the response framing: chunked,
// Content-Length, close-delimited).
//
// A request on a reused connection that fails before any byte of the
// response arrived is retried once on a new connection: that is the
// upstream having closed an idle connection (uvicorn does after 5 s), and
// it never saw the request. Nothing else is retried.
//
// UpstreamClient implements http.RoundTripper for requests to http and
// https URLs whose body, if any, has a known ContentLength; the proxy uses
// Do, which takes the request as an Outbound. Proxies in
// the environment are not used: upstreams are reached directly.
type UpstreamClient struct {
	// ReadTimeout bounds how long one read from the upstream may block:
	// the wait for the response headers, and for the next bytes of a body
	// (a stream between two events). 0 means none. The connection's read
	// deadline is pushed forward only when less than half of it is left, so
	// the bound in effect is between ReadTimeout/2 and ReadTimeout and
	// setting it costs nothing per request.
	ReadTimeout time.Duration
	// IdleTimeout is how long an idle connection is kept for reuse.
	IdleTimeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept per upstream.
	MaxIdlePerHost int
	// TLSConfig is cloned for https upstreams (nil: system roots).
	TLSConfig *tls.Config
	// Dialer dials upstreams.
	Dialer net.Dialer

	mu   sync.Mutex
	idle map[hostKey][]*upConn
}

// NewUpstreamClient returns the default upstream client.
func NewUpstreamClient(readTimeout time.Duration) *UpstreamClient {
	return &UpstreamClient{ReadTimeout: readTimeout, IdleTimeout: 30 * time.Second, MaxIdlePerHost: 1024,
		Dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
}

type hostKey struct{ scheme, addr string }

type upConn struct {
	nc     net.Conn
	cr     countingReader
	br     *bufio.Reader
	bw     *bufio.Writer
	key    hostKey
	idleAt time.Time
	reused bool
	// deadline is the read deadline set on nc (zero: none yet).
	deadline time.Time
}

// refreshDeadline pushes the read deadline ReadTimeout ahead when less
// than half of it is left.
func (c *UpstreamClient) refreshDeadline(pc *upConn) {
	if c.ReadTimeout <= 0 {
		return
	}
	now := time.Now()
	if pc.deadline.Sub(now) < c.ReadTimeout/2 {
		pc.deadline = now.Add(c.ReadTimeout)
		pc.nc.SetReadDeadline(pc.deadline)
	}
}

// countingReader counts the bytes read from the connection, so a failure
// can be told apart from an upstream that answered nothing at all.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errUnsupported = errors.New("gateway: upstream client: unsupported request")

// Outbound is one request as the client writes it. The proxy builds it
// directly (no http.Request, no header map); RoundTrip builds one from an
// http.Request.
type Outbound struct {
	Method string
	// URL gives the scheme, the host to dial and the request URI.
	URL *url.URL
	// Host is the Host header ("" = URL.Host).
	Host string
	// Header and Fields are written as they are (Fields after Header);
	// names and values with control bytes are left out.
	Header http.Header
	Fields []Field
	// Body is sent with its Content-Length.
	Body []byte

	fields [8]Field // room for Fields without another allocation
}

// Field is one header line.
type Field struct{ Name, Value string }

// RoundTrip sends req and returns the response. Its body must be read to
// the end or closed; a body read to the end returns the connection to the
// pool.
func (c *UpstreamClient) RoundTrip(req *http.Request) (*http.Response, error) {
	o := &Outbound{Method: req.Method, URL: req.URL, Host: req.Host, Header: req.Header}
	if req.Body != nil {
		if req.ContentLength < 0 {
			req.Body.Close()
			return nil, errUnsupported
		}
		b, err := readBody(make([]byte, 0, req.ContentLength), req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != req.ContentLength {
			return nil, errors.New("gateway: upstream client: body length differs from ContentLength")
		}
		o.Body = b
	}
	return c.Do(req.Context(), o)
}

// Do sends o and returns the response (see RoundTrip). ctx cancels the
// request, including while the upstream is thinking.
func (c *UpstreamClient) Do(ctx context.Context, o *Outbound) (*http.Response, error) {
	key := hostKey{o.URL.Scheme, o.URL.Host}
	switch key.scheme {
	case "http":
		if o.URL.Port() == "" {
			key.addr += ":80"
		}
	case "https":
		if o.URL.Port() == "" {
			key.addr += ":443"
		}
	default:
		return nil, errUnsupported
	}
	for attempt := 0; ; attempt++ {
		pc, err := c.get(ctx, key, o.URL.Hostname())
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, pc, o)
		if err == nil {
			return resp, nil
		}
		pc.nc.Close()
		if attempt == 0 && pc.reused && pc.cr.n == 0 && stale(err) && ctx.Err() == nil {
			continue // the upstream closed the idle connection: it never saw o
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// stale reports whether err is what a connection the peer already closed
// gives: EOF (ReadResponse reports it as ErrUnexpectedEOF), a reset, a
// broken pipe. The caller also checks that no byte of a response arrived.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// aLongTimeAgo is a deadline that has passed: setting it unblocks I/O.
var aLongTimeAgo = time.Unix(1, 0)

func (c *UpstreamClient) send(ctx context.Context, pc *upConn, o *Outbound) (*http.Response, error) {
	// Cancellation (the client went away) unblocks the connection.
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(aLongTimeAgo) })
	if err := writeRequest(pc.bw, o); err != nil {
		stop()
		return nil, err
	}
	c.refreshDeadline(pc)
	resp, err := http.ReadResponse(pc.br, nil)
	if err != nil {
		stop()
		return nil, err
	}
	resp.Body = &upBody{c: c, pc: pc, body: resp.Body, stop: stop, reuse: !resp.Close}
	return resp, nil
}

// writeRequest writes o in HTTP/1.1 and flushes once (a body that fits the
// buffer leaves in the same write as the headers).
func writeRequest(bw *bufio.Writer, o *Outbound) error {
	bw.WriteString(o.Method)
	bw.WriteByte(' ')
	bw.WriteString(o.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := o.Host
	if host == "" {
		host = o.URL.Host
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range o.Header {
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	for _, f := range o.Fields {
		writeField(bw, f.Name, f.Value)
	}
	if o.Body != nil || o.Method == http.MethodPost || o.Method == http.MethodPut {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(o.Body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(o.Body)
	return bw.Flush()
}

func writeField(bw *bufio.Writer, name, value string) {
	if !validHeaderName(name) || !validHeaderValue(value) {
		return
	}
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// validHeaderName and validHeaderValue keep a header from breaking the
// request framing (no CR, LF or other control bytes).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// get returns an idle connection to key, or dials one.
func (c *UpstreamClient) get(ctx context.Context, key hostKey, serverName string) (*upConn, error) {
	now := time.Now()
	c.mu.Lock()
	if c.idle == nil {
		c.idle = map[hostKey][]*upConn{}
	}
	list := c.idle[key]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(pc.idleAt) < c.IdleTimeout {
			c.idle[key] = list
			c.mu.Unlock()
			pc.reused = true
			pc.cr.n = 0
			return pc, nil
		}
		// The newest idle connection is too old: so are all the others.
		pc.nc.Close()
		for _, old := range list {
			old.nc.Close()
		}
		list = list[:0]
	}
	c.idle[key] = list
	c.mu.Unlock()

	nc, err := c.Dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	if key.scheme == "https" {
		cfg := &tls.Config{}
		if c.TLSConfig != nil {
			cfg = c.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	pc := &upConn{nc: nc, key: key}
	pc.cr.r = nc
	pc.br = bufio.NewReaderSize(&pc.cr, 16<<10)
	pc.bw = bufio.NewWriterSize(nc, 16<<10)
	return pc, nil
}

// put returns a connection whose last response was read completely.
func (c *UpstreamClient) put(pc *upConn) {
	pc.idleAt = time.Now()
	c.mu.Lock()
	list := c.idle[pc.key]
	if len(list) >= c.MaxIdlePerHost {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	c.idle[pc.key] = append(list, pc)
	c.mu.Unlock()
}

// CloseIdle closes idle connections older than IdleTimeout (all of them
// when all is set).
func (c *UpstreamClient) CloseIdle(all bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, list := range c.idle {
		keep := list[:0]
		for _, pc := range list {
			if all || now.Sub(pc.idleAt) >= c.IdleTimeout {
				pc.nc.Close()
			} else {
				keep = append(keep, pc)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(c.idle, k)
		} else {
			c.idle[k] = keep
		}
	}
}

// upBody is a response body on a pooled connection: read to its end, it
// gives the connection back; closed early, it closes the connection (the
// rest of a long stream is not worth draining).
type upBody struct {
	c     *UpstreamClient
	pc    *upConn
	body  io.ReadCloser
	stop  func() bool
	reuse bool
	done  bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	b.c.refreshDeadline(b.pc)
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(b.reuse)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *upBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *upBody) finish(reuse bool) {
	b.done = true
	if !b.stop() {
		reuse = false // cancellation fired: the deadline poisoned the connection
	}
	if reuse {
		b.c.put(b.pc)
		return
	}
	b.pc.nc.Close()
	b.body.Close()
}
