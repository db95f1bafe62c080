// Package teststore opens real stores for service tests: a SQLite file in a
// temporary directory, and a fresh PostgreSQL schema when
// GATEHOUSE_TEST_POSTGRES is set (see storage/postgres/pgtest: without it
// the PostgreSQL subtest skips, and under CI=true it fails).
package teststore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/postgres"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
	"github.com/gatehouse/gatehouse/storage/sqlite"
)

// SQLite opens a store on a new SQLite file, closed when tb ends.
func SQLite(tb testing.TB) storage.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "gatehouse.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Postgres opens a store on a new PostgreSQL schema, closed (and dropped)
// when tb ends. It skips or fails as pgtest.DSN does.
func Postgres(tb testing.TB) storage.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), pgtest.DSN(tb), postgres.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Run runs fn as the subtests "sqlite" and "postgres", each with a store of
// its own.
func Run(t *testing.T, fn func(t *testing.T, s storage.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// NewWatcher returns a watcher over s that polls every 10ms. Subscribe the
// services to it, then call StartWatcher.
func NewWatcher(s storage.Store) *storage.Watcher {
	return storage.NewWatcher(s, 10*time.Millisecond, nil)
}

// StartWatcher starts w as a node does: Start, then the caches' initial
// loads, then Run until tb ends.
func StartWatcher(tb testing.TB, w *storage.Watcher, loads ...func(ctx context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Start(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	for _, load := range loads {
		if err := load(ctx); err != nil {
			cancel()
			tb.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
}
