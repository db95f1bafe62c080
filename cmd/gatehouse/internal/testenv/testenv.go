// Package testenv starts real Gatehouse nodes for end-to-end tests: the
// binary's own app.Main on 127.0.0.1:0 with a temporary data directory, TLS
// from its own CA, and an HTTP transport that trusts that CA and sends every
// *.localhost name to the node (no /etc/hosts needed).
//
// Everything the node logs, at debug level, is captured so a test can check
// that no secret reached a log line (Server.AssertNotLogged).
package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
)

// Server is a running node.
type Server struct {
	*app.Main
	DataDir string
	// CAPool trusts the node's CA; CAFile is its path.
	CAPool *x509.CertPool
	CAFile string
	// Transport trusts the CA and dials every host to the node.
	Transport *http.Transport
	// Client uses Transport.
	Client *http.Client
	// Banner is what the node printed at start.
	Banner *SyncBuffer
	// Logs is everything it logged (JSON lines, debug level).
	Logs *SyncBuffer
	// Bootstrap holds the bootstrap service principal's credentials, read
	// from the bootstrap file testenv configures (see identity.go for
	// helpers that get tokens with them).
	Bootstrap *app.BootstrapCredentials
}

// Option adjusts the configuration before start.
type Option func(*app.Config)

// WithPostgres makes the node use PostgreSQL at dsn.
func WithPostgres(dsn string) Option { return func(c *app.Config) { c.Postgres = dsn } }

// WithDataDir uses dir instead of a new temporary directory (for restarts).
func WithDataDir(dir string) Option { return func(c *app.Config) { c.DataDir = dir } }

// WithLogLevel sets the node's log level (tests log at debug, so that a
// leak into any log line is caught; benchmarks measure the default, info).
func WithLogLevel(level string) Option { return func(c *app.Config) { c.LogLevel = level } }

// WithConfig applies an arbitrary change.
func WithConfig(f func(*app.Config)) Option { return Option(f) }

// Start starts a node and stops it at the end of the test.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := TryStart(t, opts...)
	if err != nil {
		t.Fatalf("start gatehouse: %v\nlogs:\n%s", err, s.Logs.String())
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TryStart starts a node and returns the start error instead of failing.
// The caller closes a node that started.
func TryStart(t testing.TB, opts ...Option) (*Server, error) {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.MSIListen = "127.0.0.1:0"
	cfg.LogLevel = "debug"
	cfg.ShutdownTimeout = 5 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.BootstrapFile == "" {
		cfg.BootstrapFile = filepath.Join(cfg.DataDir, "bootstrap.json")
	}
	s := &Server{Main: app.NewMain(), DataDir: cfg.DataDir, Banner: &SyncBuffer{}, Logs: &SyncBuffer{}}
	s.Config = cfg
	s.Stdout = s.Banner
	s.Logger = app.NewLogger(s.Logs, "json", cfg.LogLevel)
	if err := s.Run(context.Background()); err != nil {
		return s, err
	}
	s.CAPool = x509.NewCertPool()
	if ca := s.Certs.CAFile(); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			s.Close()
			return s, err
		}
		s.CAPool.AppendCertsFromPEM(pem)
		s.CAFile = ca
	}
	// Only the node that bootstrapped writes the file: a second node on
	// the same database has none (Bootstrap stays nil).
	if b, err := app.ReadBootstrapFile(cfg.BootstrapFile); err == nil {
		s.Bootstrap = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.Close()
		return s, err
	}
	addr := s.Addr.String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	s.Transport = &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.CAPool},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}
	s.Client = &http.Client{Transport: s.Transport, Timeout: 30 * time.Second}
	return s, nil
}

// HTTP1 makes the node's test client (Transport, Client, and every SDK
// client built on ClientOptions) speak HTTP/1.1 only, as Node's and
// Python's clients do: data-plane requests then take the node's HTTP/1.1
// fast path (server/h1) instead of net/http's HTTP/2. Call it before the
// first request.
func (s *Server) HTTP1() {
	s.Transport.ForceAttemptHTTP2 = false
	s.Transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	s.Transport.TLSClientConfig.NextProtos = []string{"http/1.1"}
}

// Close stops the node and its idle client connections.
func (s *Server) Close() error {
	if s.Transport != nil {
		s.Transport.CloseIdleConnections()
	}
	return s.Main.Close()
}

// AssertNotLogged fails the test if any of secrets appears in the logs or
// the banner. Empty strings are ignored.
func (s *Server) AssertNotLogged(t testing.TB, secrets ...string) {
	t.Helper()
	logs, banner := s.Logs.String(), s.Banner.String()
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if strings.Contains(logs, sec) {
			t.Errorf("a secret (%.4s…) appears in the logs", sec)
		}
		if strings.Contains(banner, sec) {
			t.Errorf("a secret (%.4s…) appears in the banner", sec)
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
