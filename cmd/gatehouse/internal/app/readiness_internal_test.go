package app

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestReadiness: /readyz's check fails while the node has not applied the
// change feed up to the database's revision (a node catching up after an
// outage), and passes once it has.
func TestReadiness(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		w := teststore.NewWatcher(s)
		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := &readiness{store: s, watcher: w}
		if err := r.Ping(t.Context()); err != nil {
			t.Fatalf("a node that has applied everything: %v", err)
		}
		// A write the watcher has not applied (it is not running): behind.
		if _, err := s.Create(t.Context(), &storage.Object{Kind: "test.readiness", Key: "k", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := r.Ping(ctx); err == nil {
			t.Fatal("a node behind the feed is ready")
		}
		runCtx, stop := context.WithCancel(t.Context())
		defer stop()
		go w.Run(runCtx)
		if err := r.Ping(t.Context()); err != nil {
			t.Fatalf("after catching up: %v", err)
		}

		// With keep, an answer serves the probes that follow within it
		// (a flood costs the database nothing more).
		kept := &readiness{store: s, watcher: teststore.NewWatcher(s), keep: time.Hour}
		if err := kept.watcher.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := kept.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(t.Context(), &storage.Object{Kind: "test.readiness", Key: "k2", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		ctx2, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel2()
		if err := kept.Ping(ctx2); err != nil {
			t.Fatalf("a kept answer was not reused: %v", err)
		}
	})
}
