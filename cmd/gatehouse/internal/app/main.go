// Package app wires every Gatehouse package into a running node. It is the
// only package that knows every concrete type. Main is what `gatehouse
// serve` runs and what end-to-end tests start on :0 with a temporary data
// directory.
//
// Start-up order (each step fails with one clear message; nothing is
// written before the configuration, the listeners, the PostgreSQL
// connection and a supplied master key source have all been checked):
//
//	validate config → bind listeners → reach PostgreSQL → read master key source
//	→ create + lock data dir → open store (migrate) → read or generate
//	<data-dir>/master.key → open keyring (key check) → CA + server
//	certificate → services → serve
//
// The data directory's master.key is generated only for a store that
// records no master key yet (keys.go): the store is opened first to know.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/internal/rawconn"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/pki"
	"github.com/gatehouse/gatehouse/portal"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/server/h1"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
)

// Main is one running node.
type Main struct {
	Config Config
	// Stdout receives the start-up banner; Logger the logs.
	Stdout io.Writer
	Logger *slog.Logger
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
	// Worker is set in workers 1…N-1 of a node run with --workers
	// (workers.go); nil in worker 0 and a node of one process.
	Worker *WorkerSpec

	// Set by Run.
	URL     string // https://H
	Host    string // H
	Addr    net.Addr
	Store   storage.Store
	Keyring *keyring.Keyring
	// Sealer is the keyring as services use it (reloads the key source on
	// an unknown version).
	Sealer  Sealer
	Watcher *storage.Watcher
	Certs   *pki.Manager
	Metrics *server.Metrics
	Router  *server.Router
	// Directory and Authority are the identity services (identity.go);
	// MSIAddr is the managed-identity listener's address.
	Directory *directory.Directory
	Authority *authority.Authority
	MSIAddr   net.Addr
	identity  identityState
	// Authz, Resources, Accounts and Audit are the management services
	// (management.go). AccountEndpoint, when set before Run, overrides the
	// data-plane URL advertised in accounts' properties.endpoint.
	Authz           *authz.Service
	Resources       *resources.Service
	Accounts        *accounts.Service
	Audit           *audit.Log
	AccountEndpoint func(dataPlaneName string) string
	// Deployments and Gateway are the AI data plane (gateway.go).
	Deployments *accounts.Deployments
	Gateway     *gateway.Gateway
	gateway     gatewayState
	// Vaults is the key vault service (vault.go).
	Vaults *vault.Service
	// Portal is the web portal (portal.go).
	Portal *portal.Portal

	lock     *dirLock
	ln       net.Listener
	srv      *http.Server
	fast     *h1.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closers  []func()
	serveErr chan error
}

// Sealer seals values at rest (the keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stdout: os.Stdout}
}

func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Main) rand() io.Reader {
	if m.Rand != nil {
		return m.Rand
	}
	return rand.Reader
}

// Run starts the node and returns once it is listening. Call Close to stop.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := &m.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	if m.Logger == nil {
		m.Logger = NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	}
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()

	// Listeners first: a port in use is a configuration problem, found
	// before anything is written.
	if m.ln, err = m.listen(); err != nil {
		return err
	}
	m.Addr = m.ln.Addr()
	m.Host = cfg.Host
	if m.Host == "" {
		m.Host = "localhost:" + strconv.Itoa(m.Addr.(*net.TCPAddr).Port)
	}
	m.URL = "https://" + m.Host

	// PostgreSQL must answer before the data directory is created.
	if cfg.Postgres != "" {
		if m.Store, err = openPostgres(ctx, cfg.Postgres, m.Logger, m.Now); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}

	// A supplied master key source must parse before anything is written.
	src := ResolveKeySource(cfg)
	var keys []keyring.Key
	if !src.Managed {
		if keys, _, err = src.Load(m.rand()); err != nil {
			return err
		}
	}

	// A PostgreSQL database that another node set up is refused a
	// generated key before this node's data directory is made.
	if src.Managed && m.Store != nil {
		if err := checkManagedKey(ctx, src, m.Store, describeStore(cfg)); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, unwrapSyscall(err))
	}
	if m.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return err
	}
	if m.Store == nil {
		if m.Store, err = openSQLite(ctx, filepath.Join(cfg.DataDir, "gatehouse.db"), m.Logger, m.Now); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	if src.Managed {
		var created bool
		if keys, created, err = loadManagedKey(ctx, src, m.Store, describeStore(cfg), m.rand()); err != nil {
			return err
		}
		if created {
			m.Logger.Warn("generated a master key in the data directory; production deployments should supply one with --master-key-file or GATEHOUSE_MASTER_KEY and keep it apart from the data", "path", src.Path)
		}
	}
	if m.Keyring, err = keyring.Open(ctx, m.Store, keys, keyring.Options{Rand: m.Rand}); err != nil {
		return err
	}
	m.Sealer = &sealer{kr: m.Keyring, meta: m.Store, source: src}

	// Background work runs until Close.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.Watcher = storage.NewWatcher(m.Store, time.Second, m.Logger)
	if err := m.Watcher.Start(ctx); err != nil {
		return fmt.Errorf("change feed: %w", err)
	}

	if err := m.startTLS(ctx); err != nil {
		return err
	}
	m.Metrics = server.NewMetrics()
	if cfg.Workers > 1 {
		if err := m.startWorkerMetrics(); err != nil {
			return err
		}
	}
	m.Router = server.NewRouter(m.Host)
	metricsClients, err := netacl.ParsePrefixes(m.Config.MetricsNetworks) // validated with the config
	if err != nil {
		return err
	}
	server.MountOps(m.Router.Root, &readiness{store: m.Store, watcher: m.Watcher, keep: time.Second}, m.Metrics, metricsClients)
	// The feed runs while services mount, so start-up writes (bootstrap)
	// can WaitFor their revision. Caches subscribe, then load: a change
	// delivered before the subscription is in the load.
	m.goBackground(func() { m.Watcher.Run(bg) })
	if err := m.mountServices(ctx, bg); err != nil {
		return err
	}

	m.goBackground(func() { m.Certs.Run(bg, time.Hour) })
	m.goBackground(func() { m.watchKeyring(bg) })
	m.goBackground(func() { m.pruneChanges(bg) })

	mw := &server.Middleware{Logger: m.Logger, Metrics: m.Metrics, Now: m.Now, BodyTimeout: m.Config.BodyTimeout}
	m.srv = &http.Server{
		Handler: mw.Wrap(m.Router),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: m.Certs.GetCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake noise (scanners, clients that do not trust the CA)
		// is debug-level.
		ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelDebug),
	}
	m.serveErr = make(chan error, 1)
	if cfg.HTTP1FastPath {
		// HTTP/1.1 on the fast path — every surface: a connection handed
		// to net/http stays there, and a keep-alive load balancer in front
		// mixes all clients' requests on its connections —, HTTP/2 and
		// unusual requests through m.srv.
		m.fast = &h1.Server{HTTP: m.srv, Fast: fastPathAll, RequestContext: server.NewRequestContext, Logger: m.Logger,
			BodyTimeout: m.Config.BodyTimeout}
		registerFastPathMetrics(m.Metrics.Registry, m.fast)
		fast, ln := m.fast, m.ln
		go func() { m.serveErr <- fast.Serve(ln) }()
	} else {
		tlsLn := tls.NewListener(m.ln, m.srv.TLSConfig)
		srv := m.srv
		go func() { m.serveErr <- srv.Serve(tlsLn) }()
	}
	m.printBanner()
	return nil
}

// FastPathStats returns the HTTP/1.1 fast path's counters (zero when it
// is off).
func (m *Main) FastPathStats() h1.Stats {
	if m.fast == nil {
		return h1.Stats{}
	}
	return m.fast.Stats()
}

// registerFastPathMetrics exports the HTTP/1.1 fast path's counters, so an
// operator sees how much data-plane traffic it takes.
func registerFastPathMetrics(reg prometheus.Registerer, s *h1.Server) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_http1_fast_requests_total",
			Help: "Data-plane HTTP/1.1 requests served on the fast path (server/h1)."},
			func() float64 { return float64(s.Stats().FastRequests) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_http1_handoffs_total",
			Help: "HTTP/1.1 connections the fast path gave to net/http at a request it does not take."},
			func() float64 { return float64(s.Stats().HandedOff) }))
}

func (m *Main) startTLS(ctx context.Context) error {
	cfg := &m.Config
	m.Certs = &pki.Manager{DataDir: cfg.DataDir, Host: server.Hostname(m.Host), Now: m.Now, Rand: m.Rand, Logger: m.Logger}
	if cfg.TLSCert != "" {
		m.Certs.CertFile, m.Certs.KeyFile = cfg.TLSCert, cfg.TLSKey
	} else {
		ca, err := pki.LoadOrCreateCA(ctx, m.Store, m.Sealer, m.now(), m.rand())
		if err != nil {
			return err
		}
		m.Certs.CA = ca
	}
	if err := m.Certs.Load(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// watchKeyring picks up master key rotations done by `gatehouse keyring
// rotate` or another node: the active version lives in storage meta, the
// keys in the key source.
func (m *Main) watchKeyring(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sealer.(*sealer).refresh(ctx, true)
			if err := m.Keyring.Reload(ctx, m.Store); err != nil && ctx.Err() == nil {
				m.Logger.Warn("keyring: reload failed", "err", err)
			}
		}
	}
}

// ChangeRetention is how long the change feed keeps history. A node that is
// disconnected for longer reloads its caches instead of replaying.
const ChangeRetention = 24 * time.Hour

// pruneChanges trims the change feed's history once an hour. Several nodes
// may prune at once; pruning is idempotent.
func (m *Main) pruneChanges(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Store.PruneChanges(ctx, m.now().Add(-ChangeRetention)); err != nil && ctx.Err() == nil {
				m.Logger.Warn("change feed: prune failed", "err", err)
			}
		}
	}
}

func (m *Main) goBackground(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// Wait blocks until the server stops serving by itself (a fatal listener
// error), returning that error.
func (m *Main) Wait() error {
	if m.serveErr == nil {
		return nil
	}
	err := <-m.serveErr
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close shuts down gracefully: stop accepting, finish requests in flight
// (up to ShutdownTimeout), stop background work, close storage, release the
// data directory.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		shutdown := m.srv.Shutdown
		if m.fast != nil {
			shutdown = m.fast.Shutdown // both servers
		}
		if err := shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		m.srv, m.fast = nil, nil
	} else if m.ln != nil {
		m.ln.Close()
	}
	m.ln = nil
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i]()
	}
	m.closers = nil
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, err)
		}
		m.Store = nil
	}
	m.lock.release()
	m.lock = nil
	return errors.Join(errs...)
}

func (m *Main) printBanner() {
	w := m.Stdout
	fmt.Fprintf(w, "Gatehouse is listening on %s (%s)\n", m.URL, m.Addr)
	if n := m.Config.Workers; n > 1 {
		fmt.Fprintf(w, "Workers: %d processes share the ports, each with GOMAXPROCS=%d\n", n, runtime.GOMAXPROCS(0))
	}
	if ca := m.Certs.CAFile(); ca != "" {
		abs, _ := filepath.Abs(ca)
		fmt.Fprintf(w, "CA certificate: %s\n", abs)
		fmt.Fprintf(w, "Client environment:\n")
		fmt.Fprintf(w, "  export SSL_CERT_FILE=%s\n", abs)
		fmt.Fprintf(w, "  export NODE_EXTRA_CA_CERTS=%s\n", abs)
		fmt.Fprintf(w, "  export REQUESTS_CA_BUNDLE=%s\n", abs)
	} else {
		fmt.Fprintf(w, "TLS certificate: %s (operator-supplied)\nClient environment:\n", m.Config.TLSCert)
	}
	fmt.Fprintf(w, "  export AZURE_AUTHORITY_HOST=%s\n", m.URL)
	for _, line := range m.bannerExtra() {
		fmt.Fprintln(w, line)
	}
}

// NewLogger returns the process logger.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// unwrapSyscall drops Go's "op addr:" prefixes when the error already says
// enough ("address already in use", "permission denied").
func unwrapSyscall(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sc *os.SyscallError
		if errors.As(op.Err, &sc) {
			return sc.Err
		}
		return op.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fastPathAll takes every clean HTTP/1.1 request on the fast path: no
// handler of any surface needs what it lacks (Hijack, trailers, push), and
// HEAD, OPTIONS, chunked or Expect bodies and odd framing go to net/http.
func fastPathAll(host, path string) bool { return true }

// listen opens the node's TLS port (the handshake happens later): with raw
// system calls on its connections unless switched off (internal/rawconn:
// a tenth of the data plane's CPU under load), and the PROXY protocol read
// from the configured load balancers.
func (m *Main) listen() (net.Listener, error) {
	cfg := &m.Config
	ln, err := m.listenTCP(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, unwrapSyscall(err))
	}
	if cfg.RawSyscalls {
		ln = rawconn.Listener(ln)
	}
	if lbs, _ := netacl.ParsePrefixes(cfg.ProxyProtocol); len(lbs) > 0 { // validated with the config
		ln = proxyProtocolListener(ln, lbs)
	}
	return ln, nil
}

// proxyProtocolListener wraps ln so that a connection from one of the load
// balancers lbs may start with a PROXY protocol header (v1 or v2), whose
// source address becomes the connection's RemoteAddr: what the network
// rules, the audit log and the STS's per-address limit see. From any
// other address nothing is parsed: a header there is TLS garbage and the
// handshake fails. The header must arrive within 10 seconds.
func proxyProtocolListener(ln net.Listener, lbs netacl.Networks) net.Listener {
	return &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 10 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if lbs.Contains(netacl.RemoteAddr(o.Upstream.String())) {
				return proxyproto.USE, nil // optional: the balancer's own health checks may send none
			}
			return proxyproto.SKIP, nil
		}}
}

// readiness is /readyz's check: the database answers, and this node has
// applied the change feed up to the database's current revision — a node
// that was cut off serves what it last knew (a key since regenerated, say)
// until it has caught up, so a load balancer should not send it traffic
// before. /readyz's deadline (2 s) bounds the wait. /readyz answers
// anyone: one check runs at a time and its answer is kept for keep, so a
// flood of probes costs the database two queries a second, not two each.
type readiness struct {
	store   server.Pinger
	watcher *storage.Watcher
	keep    time.Duration

	mu  sync.Mutex
	at  time.Time
	err error
}

func (r *readiness) Ping(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keep > 0 && !r.at.IsZero() && time.Since(r.at) < r.keep {
		return r.err
	}
	err := r.store.Ping(ctx)
	if err == nil {
		err = r.watcher.Sync(ctx)
	}
	if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.at, r.err = time.Now(), err // not the answer of a probe that went away
	}
	return err
}
