package testenv

import (
	"testing"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// Backend is one node configuration a scenario suite runs under.
type Backend struct {
	Name string
	Opts func(t *testing.T) []Option
	// HTTP1: the test clients speak HTTP/1.1 (Server.HTTP1), so the fast
	// path (server/h1) serves the node's side.
	HTTP1 bool
}

// Backends are the configurations of the scenario suites: SQLite and
// PostgreSQL with the clients on HTTP/2 (net/http serves the node's side),
// and SQLite again with them on HTTP/1.1 (the fast path, server/h1). The
// PostgreSQL node also makes ordinary system calls on its sockets
// (--raw-syscalls=false), the SQLite ones raw calls (internal/rawconn):
// every scenario meets both.
func Backends() []Backend {
	sqlite := func(*testing.T) []Option { return nil }
	return []Backend{
		{Name: "sqlite", Opts: sqlite},
		{Name: "postgres", Opts: func(t *testing.T) []Option {
			return []Option{WithPostgres(pgtest.DSN(t)), WithConfig(func(c *app.Config) { c.RawSyscalls = false })}
		}},
		{Name: "sqlite-http1", Opts: sqlite, HTTP1: true},
	}
}

// AssertFastPathServed checks, when the test ends, that the fast path
// served at least min requests: a lower bound, since a connection that
// carried a request the fast path does not take stays with net/http and
// how many do depends on connection reuse.
func (s *Server) AssertFastPathServed(t *testing.T, min uint64) {
	t.Cleanup(func() {
		if n := s.Main.FastPathStats().FastRequests; n < min {
			t.Errorf("the fast path served %d of the HTTP/1.1 scenarios' requests, want at least %d", n, min)
		}
	})
}
