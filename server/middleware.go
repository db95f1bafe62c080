package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/h1"
)

// Surface names a part of the product, for metrics and logs.
type Surface string

const (
	SurfaceNone       Surface = "none"
	SurfaceOps        Surface = "ops"
	SurfaceAuthority  Surface = "authority"
	SurfaceManagement Surface = "management"
	SurfaceSTS        Surface = "sts"
	SurfaceGateway    Surface = "gateway"
	SurfaceVault      Surface = "vault"
	SurfacePortal     Surface = "portal"
	SurfaceGraph      Surface = "graph"
	SurfaceMSI        Surface = "msi"
)

// reqInfo is the per-request state the middleware and handlers share, in
// one allocation per request. It is itself the request's context (the one
// net/http made, plus itself as the value of ctxKey), which saves the
// separate context.WithValue node; the status writer lives in it too.
type reqInfo struct {
	context.Context
	id  string
	idb [36]byte
	// idv is the value slice of the x-ms-request-id response header.
	idv     [1]string
	sw      statusWriter
	surface Surface
	logger  *slog.Logger
	errCode string
	// account and vault are set by the host router for the host forms.
	account, vault string
	// principal is what authentication decided, for the access log.
	principal string
	// started: the middleware has taken it (a reqInfo is one request's).
	started bool
}

type ctxKey struct{}

// NewRequestContext returns parent with room for the middleware's
// per-request state, for a server that makes each request itself (the
// HTTP/1.1 fast path, h1.Server.RequestContext): the middleware then fills
// it in place instead of copying the request with WithContext.
func NewRequestContext(parent context.Context) context.Context {
	return &reqInfo{Context: parent}
}

// Value answers ctxKey with the reqInfo and everything else from the
// context it wraps.
func (i *reqInfo) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return i
	}
	return i.Context.Value(key)
}

func infoFrom(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(ctxKey{}).(*reqInfo)
	return i
}

// RequestID returns the request's id ("" outside a request).
func RequestID(ctx context.Context) string {
	if i := infoFrom(ctx); i != nil {
		return i.id
	}
	return ""
}

// WrittenStatus returns the status the request has been answered with so
// far, as the client sees it (0: none yet, or outside a request).
func WrittenStatus(ctx context.Context) int {
	if i := infoFrom(ctx); i != nil && i.sw.wroteHeader {
		return i.sw.status
	}
	return 0
}

// SetSurface labels the request with its surface.
func SetSurface(ctx context.Context, s Surface) {
	if i := infoFrom(ctx); i != nil {
		i.surface = s
	}
}

// SetPrincipal records who the request authenticated as (an object id or a
// credential kind such as "key1"), for the access log. Never a secret.
func SetPrincipal(ctx context.Context, p string) {
	if i := infoFrom(ctx); i != nil {
		i.principal = p
	}
}

// AccountFromContext returns the account named by the request's host
// ({account}.cognitiveservices.H), or "".
func AccountFromContext(ctx context.Context) string {
	if i := infoFrom(ctx); i != nil {
		return i.account
	}
	return ""
}

// VaultFromContext returns the vault named by the request's host, or "".
func VaultFromContext(ctx context.Context) string {
	if i := infoFrom(ctx); i != nil {
		return i.vault
	}
	return ""
}

// WithSurface wraps h so that its requests are labelled s.
func WithSurface(s Surface, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSurface(r.Context(), s)
		h.ServeHTTP(w, r)
	})
}

// Middleware is the chain every request passes, outermost first:
// request id → observe (metrics, access log) → recover → next.
type Middleware struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time
	// BodyTimeout bounds a stall in a request body net/http reads (HTTP/2,
	// and HTTP/1.1 off the fast path, which has its own): a read that
	// gets nothing within it fails with h1.ErrBodyTimeout, which
	// RenderError answers 408. 0: no limit.
	BodyTimeout time.Duration
}

// Wrap returns next behind the middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	now, since := m.Now, time.Since // time.Since reads only the monotonic clock
	if now == nil {
		now = time.Now
	} else {
		since = func(t time.Time) time.Duration { return now().Sub(t) }
	}
	logger := m.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			growStack() // see growStack
		}
		start := now()
		info, _ := r.Context().(*reqInfo)
		if info == nil || info.started {
			info = &reqInfo{Context: r.Context()}
			r = r.WithContext(info)
		}
		info.started = true
		// The id's bytes live in info, which nothing reuses: the string
		// over them is immutable and keeps info alive as long as needed.
		gatehouse.PutGUID(&info.idb)
		info.id = unsafe.String(&info.idb[0], len(info.idb))
		info.surface, info.logger = SurfaceNone, logger
		info.idv[0] = info.id
		// Canonical keys, set directly: Header.Set and Get would
		// canonicalize (and allocate) on every request.
		h := w.Header()
		h[hdrRequestID] = info.idv[:]
		if cid := r.Header[hdrClientRequestID]; len(cid) > 0 && cid[0] != "" && len(cid[0]) <= 128 {
			h[hdrClientRequestID] = cid[:1:1]
		}
		if m.BodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody && !h1.OwnsBody(r.Body) {
			sb := &stallBody{ReadCloser: r.Body, rc: http.NewResponseController(w), d: m.BodyTimeout}
			r.Body = sb
			defer sb.end()
		}
		sw := &info.sw
		sw.ResponseWriter = w
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.String("request_id", info.id), slog.String("method", r.Method),
					slog.String("path", LogPath(r)), slog.Any("panic", p),
					slog.String("stack", string(debug.Stack())))
				if !sw.wroteHeader {
					RenderError(sw, r, RenderAzure, fmt.Errorf("panic: %v", p))
				}
			}
			m.observe(r, info, sw, since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

// Canonical forms of the request id headers (x-ms-request-id,
// x-ms-client-request-id).
const (
	hdrRequestID       = "X-Ms-Request-Id"
	hdrClientRequestID = "X-Ms-Client-Request-Id"
)

func (m *Middleware) observe(r *http.Request, info *reqInfo, sw *statusWriter, d time.Duration) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if m.Metrics != nil {
		m.Metrics.observe(info.surface, r.Method, status, d)
	}
	// Successes are counted, not logged one by one at the default level;
	// failures are logged. The query string is never logged: it may carry
	// a secret.
	level := slog.LevelDebug
	if status >= 400 {
		level = slog.LevelInfo
	}
	if !info.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id), slog.String("surface", string(info.surface)),
		slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", LogPath(r)),
		slog.Int("status", status), slog.Duration("duration", d), slog.String("remote", r.RemoteAddr),
	}
	if info.errCode != "" {
		attrs = append(attrs, slog.String("error_code", info.errCode))
	}
	if info.principal != "" {
		attrs = append(attrs, slog.String("principal", info.principal))
	}
	info.logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// statusWriter records the status and passes through Flush (SSE streaming)
// and Hijack.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wroteHeader {
			w.status, w.wroteHeader = http.StatusOK, true
		}
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		c, rw, err := h.Hijack()
		if err == nil && !w.wroteHeader {
			// The handler answers on the connection itself: a protocol
			// switch (the gateway's WebSockets) as far as the access log
			// and the metrics know.
			w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
		}
		return c, rw, err
	}
	return nil, nil, errors.New("server: hijack not supported")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stallBody is a request body read under a stall timeout: when nothing
// of it has arrived for d, a timer sets the read deadline in the past,
// which fails the read that waits (HTTP/2: the stream's body; HTTP/1.1:
// the connection, which net/http then closes). No deadline is set while
// the body flows: over HTTP/2 each set is a message to the connection's
// serving goroutine, and setting one per request cost ~10% of the CPU of
// an HTTP/2 request (bench/gateway.sh gw-key-h2). end stops the timer
// before the handler returns, after which the ResponseController must not
// be used.
type stallBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration

	mu    sync.Mutex
	t     *time.Timer
	ended bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.ended && b.t == nil {
		b.t = time.AfterFunc(b.d, b.stalled)
	}
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	switch {
	case err != nil:
		b.end()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = h1.ErrBodyTimeout
		}
	case n > 0:
		b.mu.Lock()
		if !b.ended {
			b.t.Reset(b.d)
		}
		b.mu.Unlock()
	}
	return n, err
}

// stalled fails the read in progress, unless the body or the request has
// ended.
func (b *stallBody) stalled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		b.rc.SetReadDeadline(time.Unix(1, 0))
	}
}

// end stops the timer: at the body's end, and when the handler returns.
func (b *stallBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	if b.t != nil {
		b.t.Stop()
	}
}

// growStack grows the goroutine's stack to 16 KiB at once, while it is
// shallow. net/http runs each HTTP/2 request on a new goroutine, which
// starts with a small stack; the handler chain (middleware, router,
// gateway, upstream client) needs several kilobytes more, so the stack
// used to grow two or three times per request, each time deep in the
// call chain, where copying it and fixing up every frame is costly (6% of
// the node's CPU under HTTP/2 load: `perf record` of bench/gateway.sh's
// gw-key-h2). One growth here copies a frame or two. (The HTTP/1.1 fast
// path runs on the connection's goroutine, whose stack has grown already.)
//
//go:noinline
func growStack() {
	var pad [8 << 10]byte
	touch(pad[:])
}

// touch keeps growStack's array (and so its frame) from being optimized
// away.
//
//go:noinline
func touch([]byte) {}

// LogPath is the request's path as logs record it: the decoded path, cut
// at a "?" in it. Only an encoded %3F puts one there — a client that
// escaped its query string into the path, credentials (api-key=…,
// subscription-key=…) and all — and the query is never logged.
func LogPath(r *http.Request) string {
	if i := strings.IndexByte(r.URL.Path, '?'); i >= 0 {
		return r.URL.Path[:i] + "?…"
	}
	return r.URL.Path
}
