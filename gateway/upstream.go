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
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpfield"
	"github.com/gatehouse/gatehouse/internal/rawconn"
	"github.com/gatehouse/gatehouse/netacl"
)

// UpstreamClient is the proxy's HTTP/1.1 client: a keep-alive connection
// pool per upstream with the request written and the response read on the
// calling goroutine. net/http's Transport hands every request to two
// goroutines of its connection (a writer and a reader) and back through
// channels; on a proxy's hot path those hand-offs cost more than the
// proxying itself, so the gateway speaks the small subset of HTTP/1.1 it
// needs directly: it writes the request in one write and parses the
// response head itself (upstream_wire.go), into one string per response,
// with the body framed by Content-Length, chunked encoding or the end of
// the connection.
//
// A request on a reused connection that fails before any byte of the
// response arrived is retried once on a new connection: that is the
// upstream having closed an idle connection (uvicorn does after 5 s), and
// it never saw the request. Nothing else is retried.
//
// Cancellation (the client went away) is watched lazily: a connection's
// read deadline is kept at most pollInterval ahead, and only a read that
// outlasts it registers a context.AfterFunc watcher for the rest of the
// exchange. An upstream that answers quickly — nearly every request —
// costs no watcher (registering and unregistering one costs about a
// microsecond and five allocations); a slow one is cancelled as promptly
// as with a watcher from the start, once its first poll has passed.
//
// On a plain TCP connection the request's write also arms the wait for the
// answer (upConn.writeAwait), which saves the read that would find nothing
// yet: the runtime otherwise learns that a socket is readable only from a
// read that failed. Per proxied request that is one system call of six.
//
// UpstreamClient implements http.RoundTripper for requests to http and
// https URLs whose body, if any, has a known ContentLength; the proxy uses
// exchange, which takes the request as an Outbound and leaves the response
// in the connection's buffer. Proxies in the environment are not used:
// upstreams are reached directly.
type UpstreamClient struct {
	// ReadTimeout bounds how long one read from the upstream may block:
	// the wait for the response headers, and for the next bytes of a body
	// (a stream between two events). 0 means none. The bound in effect is
	// between ReadTimeout and ReadTimeout plus pollInterval.
	ReadTimeout time.Duration
	// IdleTimeout is how long an idle connection is kept for reuse.
	IdleTimeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept per upstream.
	MaxIdlePerHost int
	// TLSConfig is cloned for https upstreams (nil: system roots).
	TLSConfig *tls.Config
	// Dialer dials upstreams.
	Dialer net.Dialer
	// PlainSyscalls makes the connections' reads and writes ordinary
	// system calls (internal/rawconn off: to measure what it saves, or
	// should a platform mind raw calls).
	PlainSyscalls bool

	// poll is pollInterval unless a test sets it.
	poll time.Duration

	mu   sync.Mutex
	idle map[string]*idleConns // by hostKey.id
}

// idleConns are one host's idle connections, the newest last.
type idleConns struct{ list []*upConn }

// NewUpstreamClient returns the default upstream client.
func NewUpstreamClient(readTimeout time.Duration) *UpstreamClient {
	return &UpstreamClient{ReadTimeout: readTimeout, IdleTimeout: 30 * time.Second, MaxIdlePerHost: 1024,
		Dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
}

// pollInterval is how far ahead a connection's read deadline is kept while
// no cancellation watcher is registered (see UpstreamClient).
const pollInterval = 100 * time.Millisecond

// watchWritesAbove is the request size from which the cancellation watcher
// is registered before writing: a smaller request fits the socket buffer
// and its write does not block, a larger one may wait for an upstream that
// does not read (and a timed-out TLS write cannot be resumed, so writes are
// never polled).
const watchWritesAbove = 16 << 10

// hostKey is where requests go: scheme and host:port (addr), named by id
// (the pool's key: a string hashes faster than a struct), and the host's
// name a TLS connection verifies.
type hostKey struct{ scheme, addr, id, serverName string }

// upConn is one pooled connection. It is the reader under br: every read
// from the upstream passes through upConn.Read, which keeps the deadline
// and watches for cancellation.
type upConn struct {
	c      *UpstreamClient
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	key    string // hostKey.id: its pool
	idleAt time.Time
	reused bool
	// n counts the bytes read during the current exchange, so a failure
	// can be told apart from an upstream that answered nothing at all.
	n int64
	// deadline is the read deadline set on nc (zero: none yet).
	deadline time.Time
	// sent is when the current exchange started (Outbound.start): the
	// request's last write and the head's first read wait from then.
	sent time.Time
	// ctx is the current exchange's context; stop unregisters its
	// cancellation watcher (nil: none registered).
	ctx  context.Context
	stop func() bool
	// ex is the current exchange (a connection carries one at a time); head
	// is the scratch the response head is gathered in.
	ex   upExchange
	head []byte
	// raw is the plain TCP connection's descriptor access (nil for TLS),
	// for the write that awaits the answer (writeAwait); await is set while
	// the request's last bytes are to be written so.
	raw   syscall.RawConn
	await bool
	// awaitErr is what the wait for the answer ended with, for the next
	// read to return: the exchange was cancelled, or the read timed out.
	awaitErr  error
	aw        awaitWrite
	awaitStep func(uintptr) bool
}

// Read reads from the upstream for br: with the deadline kept current, a
// timeout that is only the poll registering the cancellation watcher, and
// ctx.Err() once the exchange is cancelled.
func (pc *upConn) Read(p []byte) (int, error) {
	if err := pc.awaitErr; err != nil {
		pc.awaitErr = nil
		return 0, err
	}
	start := pc.sent // the head's first read waits from the request on
	if start.IsZero() {
		start = time.Now()
	} else {
		pc.sent = time.Time{}
	}
	pc.refreshDeadline(start)
	for {
		n, err := pc.nc.Read(p)
		pc.n += int64(n)
		if n > 0 || err == nil || !isTimeout(err) {
			return n, err
		}
		if err := pc.timedOut(start, err); err != nil {
			return 0, err
		}
	}
}

// timedOut handles a read (or a wait for the answer) that timed out after
// waiting since start: ctx.Err() if the exchange is cancelled, err if the
// read timeout has passed; otherwise the wait goes on (nil), the deadline
// moved where it must be.
func (pc *upConn) timedOut(start time.Time, err error) error {
	c := pc.c
	if pc.ctx != nil && pc.ctx.Err() != nil {
		return pc.ctx.Err()
	}
	now := time.Now()
	if c.ReadTimeout > 0 && now.Sub(start) >= c.ReadTimeout {
		return err
	}
	// The poll deadline passed: this upstream is slow. From now on a
	// watcher unblocks the connection when the exchange is cancelled,
	// and the deadline is the read timeout's.
	pc.watch()
	var d time.Time
	if c.ReadTimeout > 0 {
		d = start.Add(c.ReadTimeout)
	} else if pc.stop == nil {
		d = now.Add(c.pollInterval()) // no context to watch: keep polling
	}
	pc.setDeadline(d)
	return nil
}

// Write writes for bw: through the connection, or — for the request's
// last bytes when await is set — with writeAwait.
func (pc *upConn) Write(p []byte) (int, error) {
	if pc.await {
		pc.await = false
		return pc.writeAwait(p)
	}
	return pc.nc.Write(p)
}

// writeAwait writes p, the end of a request, and returns once the answer
// can be read (or the poll deadline passed), without the read that would
// find nothing. The runtime's poller learns that a descriptor is readable
// only from a read that failed with EAGAIN, or from a wait armed before
// the bytes arrive; so the request is written from inside a raw read,
// which arms the wait first: the answer cannot come before its request,
// and a reused connection holds nothing unread (send checks). That saves
// one read system call per exchange, a few percent of the proxy's CPU.
// A write that would block leaves the rest to the ordinary write, and the
// answer to the ordinary read.
func (pc *upConn) writeAwait(p []byte) (int, error) {
	start := pc.sent
	if start.IsZero() {
		start = time.Now()
	}
	pc.refreshDeadline(start)
	w := &pc.aw
	*w = awaitWrite{p: p, plain: pc.c.PlainSyscalls}
	if pc.awaitStep == nil {
		pc.awaitStep = w.step // once per connection: a method value allocates
	}
	err := pc.raw.Read(pc.awaitStep)
	written, sent, werr := w.written, w.sent, w.err
	*w = awaitWrite{}
	switch {
	case werr == syscall.EAGAIN:
		n, err := pc.nc.Write(p[written:])
		return written + n, err
	case werr != nil:
		return written, &net.OpError{Op: "write", Net: "tcp", Source: pc.nc.LocalAddr(), Addr: pc.nc.RemoteAddr(),
			Err: os.NewSyscallError("write", werr)}
	case !sent && err != nil && isTimeout(err):
		// The poll deadline passed before the wait began (the raw read
		// checks it first): a busy machine, or earlier writes that took
		// longer than the poll. That is the poll's, as for a read; the
		// request is written the ordinary way, and the answer is read so.
		if err := pc.timedOut(start, err); err != nil {
			return 0, err
		}
		return pc.nc.Write(p)
	case !sent:
		// The descriptor failed before anything was written (closed).
		return 0, err
	case err != nil && isTimeout(err):
		// Sent; the poll deadline passed while waiting: as for a read
		// that timed out.
		pc.awaitErr = pc.timedOut(start, err)
	}
	// Any other error of the wait is the next read's to meet.
	return len(p), nil
}

// awaitWrite is the state of one writeAwait, in the connection (the raw
// read's callback would otherwise allocate it per request).
type awaitWrite struct {
	p       []byte
	plain   bool // ordinary system calls (UpstreamClient.PlainSyscalls)
	written int
	sent    bool
	err     error
}

// step is the raw read's callback: the first call writes (true: stop,
// the write failed; false: wait for readability), the next one reports
// the answer readable.
func (w *awaitWrite) step(fd uintptr) bool {
	if w.sent || w.err != nil {
		return true
	}
	for w.written < len(w.p) {
		write := rawconn.Write
		if w.plain {
			write = rawconn.SyscallWrite
		}
		n, errno := write(fd, w.p[w.written:])
		switch {
		case errno == syscall.EINTR:
		case errno != 0:
			w.err = errno
			return true
		case n <= 0:
			w.err = io.ErrShortWrite
			return true
		default:
			w.written += n
		}
	}
	w.sent = true
	return false
}

// refreshDeadline keeps the read deadline where the exchange's state wants
// it: at most pollInterval ahead while no watcher is registered, then
// ReadTimeout ahead, pushed forward only when less than half of it is left
// (so that setting it costs nothing on most reads).
func (pc *upConn) refreshDeadline(now time.Time) {
	c := pc.c
	if pc.stop == nil {
		poll := c.pollInterval()
		if c.ReadTimeout > 0 && c.ReadTimeout < poll {
			poll = c.ReadTimeout
		}
		if left := pc.deadline.Sub(now); left < poll/2 || left > poll {
			pc.setDeadline(now.Add(poll))
		}
		return
	}
	if c.ReadTimeout <= 0 {
		if !pc.deadline.IsZero() {
			pc.setDeadline(time.Time{})
		}
		return
	}
	if pc.deadline.Sub(now) < c.ReadTimeout/2 {
		pc.setDeadline(now.Add(c.ReadTimeout))
	}
}

// setDeadline sets the read deadline. A watcher that fired before it
// poisoned the deadline, which this one would undo: the context is checked
// again after setting it, and such a read ends at once (pc.Read sees the
// cancelled context on the next timeout, which the poisoned deadline makes
// immediate).
func (pc *upConn) setDeadline(d time.Time) {
	pc.deadline = d
	pc.nc.SetReadDeadline(d)
	if pc.stop != nil && pc.ctx.Err() != nil {
		pc.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// watch registers the cancellation watcher now (for a request that may
// block while it is written).
func (pc *upConn) watch() {
	if pc.stop == nil && pc.ctx != nil && pc.ctx.Done() != nil {
		nc := pc.nc
		pc.stop = context.AfterFunc(pc.ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	}
}

func (c *UpstreamClient) pollInterval() time.Duration {
	if c.poll > 0 {
		return c.poll
	}
	return pollInterval
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

var errUnsupported = errors.New("gateway: upstream client: unsupported request")

// errUpstreamNotAllowed: the upstream's address is outside the networks the
// server may reach (Options.UpstreamNetworks).
var errUpstreamNotAllowed = errors.New("gateway: the upstream's address is not in the networks this server may reach")

// upstreamControl is the upstream dialer's check of each resolved address,
// made before connecting (so a name that resolves somewhere else later is
// caught too).
func upstreamControl(allowed netacl.Networks) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if !netacl.UpstreamAllowed(allowed, netacl.RemoteAddr(address)) {
			return errUpstreamNotAllowed
		}
		return nil
	}
}

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
	// a Header field whose name is not a token, and any field whose value
	// has a control byte, is left out. Fields' names are the callers'
	// constants (and a deployment's key header, checked when its view is
	// built): tokens, not checked again.
	Header http.Header
	Fields []Field
	// Body is sent with its Content-Length. The client is done with it when
	// exchange, Do or RoundTrip returns.
	Body []byte

	fields [8]Field // room for Fields without another allocation
	// key, when set, is hostKeyOf(URL), prepared once (a deployment's).
	key *hostKey
	// start, when set, is the time the exchange starts, read by the
	// caller for its own timing: the pool, the request's write and the
	// head's read take it instead of reading the clock each (a clock read
	// is ~30 ns on a VM).
	start time.Time
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
	ex, err := c.exchange(ctx, o)
	if err != nil {
		return nil, err
	}
	return ex.response(), nil
}

// exchange sends o and reads the response head. The caller reads the body
// through the exchange and must end it with finish (read to its end, the
// body does that itself) or abort.
func (c *UpstreamClient) exchange(ctx context.Context, o *Outbound) (*upExchange, error) {
	key := o.key
	if key == nil {
		k, err := hostKeyOf(o.URL)
		if err != nil {
			return nil, err
		}
		key = &k
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := o.start
	for attempt := 0; ; attempt++ {
		if now.IsZero() || attempt > 0 {
			now = time.Now()
		}
		pc, err := c.get(ctx, key, now)
		if err != nil {
			return nil, err
		}
		pc.sent = now
		ex, err := pc.send(ctx, o)
		if err == nil {
			return ex, nil
		}
		pc.drop()
		if attempt == 0 && pc.reused && pc.n == 0 && stale(err) && ctx.Err() == nil {
			// The upstream closed the idle connection: it never saw o. The
			// ones idle as long or longer (a burst's, pooled together) are
			// closed as surely: the retry must not take one of them.
			c.dropIdleSince(key.id, pc.idleAt)
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// dropIdleSince closes key's idle connections that went idle at or
// before t.
func (c *UpstreamClient) dropIdleSince(id string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ic := c.idle[id]
	if ic == nil {
		return
	}
	list := ic.list
	keep := list[:0]
	for _, pc := range list {
		if pc.idleAt.After(t) {
			keep = append(keep, pc)
		} else {
			pc.nc.Close()
		}
	}
	clear(list[len(keep):])
	ic.list = keep
}

// stale reports whether err is what a connection the peer already closed
// gives: EOF, a reset, a broken pipe. The caller also checks that no byte
// of a response arrived.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// aLongTimeAgo is a deadline that has passed: setting it unblocks I/O.
var aLongTimeAgo = time.Unix(1, 0)

// send writes o on pc and reads the response head.
func (pc *upConn) send(ctx context.Context, o *Outbound) (*upExchange, error) {
	pc.ctx, pc.awaitErr = ctx, nil
	if len(o.Body) > watchWritesAbove {
		pc.watch()
	}
	writeRequest(pc.bw, o)
	// The last write awaits the answer when it cannot block for long and
	// nothing is left unread (see writeAwait).
	pc.await = pc.raw != nil && len(o.Body) <= watchWritesAbove && pc.br.Buffered() == 0
	err := pc.bw.Flush()
	pc.await = false
	if err != nil {
		return nil, err
	}
	ex := &pc.ex
	*ex = upExchange{pc: pc, fields: ex.fields[:0]}
	if err := ex.readHead(o.Method == http.MethodHead); err != nil {
		return nil, err
	}
	return ex, nil
}

// writeRequest writes o in HTTP/1.1 into bw, for one flush (a body that
// fits the buffer leaves in the same write as the headers).
func writeRequest(bw *bufio.Writer, o *Outbound) {
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
		if httpfield.ValidValueString(f.Value) {
			httpfield.Write(bw, f.Name, f.Value)
		}
	}
	if o.Body != nil || o.Method == http.MethodPost || o.Method == http.MethodPut {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(o.Body)), 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(o.Body)
}

// writeField writes one field unless its name is not a token or its value
// carries a control byte: either could break the request's framing.
func writeField(bw *bufio.Writer, name, value string) {
	if httpfield.ValidName(name) && httpfield.ValidValueString(value) {
		httpfield.Write(bw, name, value)
	}
}

// get returns an idle connection to key, or dials one.
// now is the time of the request.
func (c *UpstreamClient) get(ctx context.Context, key *hostKey, now time.Time) (*upConn, error) {
	c.mu.Lock()
	ic := c.idle[key.id]
	for ic != nil && len(ic.list) > 0 {
		list := ic.list
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		ic.list = list[:len(list)-1]
		if now.Sub(pc.idleAt) < c.IdleTimeout {
			c.mu.Unlock()
			pc.reused = true
			pc.n = 0
			return pc, nil
		}
		// The newest idle connection is too old: so are all the others.
		pc.nc.Close()
		for _, old := range ic.list {
			old.nc.Close()
		}
		clear(ic.list)
		ic.list = ic.list[:0]
	}
	c.mu.Unlock()

	nc, err := c.dial(ctx, *key)
	if err != nil {
		return nil, err
	}
	pc := &upConn{c: c, nc: nc, key: key.id}
	if sc, ok := nc.(syscall.Conn); ok { // plain TCP (a TLS connection is not one)
		pc.raw, _ = sc.SyscallConn()
	}
	pc.br = bufio.NewReaderSize(pc, 16<<10)
	pc.bw = bufio.NewWriterSize(pc, 16<<10)
	return pc, nil
}

// dial opens a connection to key's address: TCP, and TLS (HTTP/1.1 by
// ALPN) for https.
func (c *UpstreamClient) dial(ctx context.Context, key hostKey) (net.Conn, error) {
	nc, err := c.Dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	if !c.PlainSyscalls {
		nc = rawconn.Wrap(nc)
	}
	if key.scheme == "https" {
		cfg := &tls.Config{}
		if c.TLSConfig != nil {
			cfg = c.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = key.serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return nc, nil
}

// DialTunnel opens a connection of its own to u's host, for a
// connection that leaves HTTP (a WebSocket): never pooled, the caller
// closes it.
func (c *UpstreamClient) DialTunnel(ctx context.Context, u *url.URL) (net.Conn, error) {
	key, err := hostKeyOf(u)
	if err != nil {
		return nil, err
	}
	return c.dial(ctx, key)
}

// hostKeyOf is where u's requests go: its scheme and host:port.
func hostKeyOf(u *url.URL) (hostKey, error) {
	key := hostKey{scheme: u.Scheme, addr: u.Host, serverName: u.Hostname()}
	switch key.scheme {
	case "http":
		if u.Port() == "" {
			key.addr += ":80"
		}
	case "https":
		if u.Port() == "" {
			key.addr += ":443"
		}
	default:
		return key, errUnsupported
	}
	key.id = key.scheme + "://" + key.addr
	return key, nil
}

// release ends the current exchange: the connection goes back to the pool
// when reuse is set and no cancellation poisoned it, else it is closed.
func (pc *upConn) release(reuse bool) {
	if pc.stop != nil {
		if !pc.stop() {
			reuse = false // the watcher fired: the deadline poisoned the connection
		}
		pc.stop = nil
	}
	pc.ctx = nil
	if !reuse {
		pc.nc.Close()
		return
	}
	pc.c.put(pc)
}

// drop closes a connection whose exchange failed.
func (pc *upConn) drop() { pc.release(false) }

// put returns a connection whose last response was read completely.
func (c *UpstreamClient) put(pc *upConn) {
	pc.idleAt = time.Now()
	c.mu.Lock()
	if c.idle == nil {
		c.idle = map[string]*idleConns{}
	}
	ic := c.idle[pc.key]
	if ic == nil {
		ic = &idleConns{}
		c.idle[pc.key] = ic
	}
	if len(ic.list) >= c.MaxIdlePerHost {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	ic.list = append(ic.list, pc)
	c.mu.Unlock()
}

// CloseIdle closes idle connections older than IdleTimeout (all of them
// when all is set).
func (c *UpstreamClient) CloseIdle(all bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, ic := range c.idle {
		list := ic.list
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
			ic.list = keep
		}
	}
}
