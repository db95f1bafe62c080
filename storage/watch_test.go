package storage_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// TestReloader: Soon retries a failing Load with backoff until it
// succeeds, a second Soon while one runs returns at once, and a cancelled
// context stops the retries.
func TestReloader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		r := &storage.Reloader{Name: "test", Load: func(context.Context) error {
			if calls.Add(1) < 3 {
				return errors.New("storage down")
			}
			return nil
		}}
		start := time.Now()
		done := make(chan struct{})
		go func() { r.Soon(t.Context()); close(done) }()
		synctest.Wait()     // the first Load failed; the loop sleeps
		r.Soon(t.Context()) // returns at once: one reload at a time
		<-done
		if n := calls.Load(); n != 3 {
			t.Fatalf("%d loads, want 3", n)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("took %v, want the 100 ms + 200 ms backoff", d)
		}

		ctx, cancel := context.WithCancel(t.Context())
		calls.Store(-100) // fails for a long while
		go func() { time.Sleep(time.Second); cancel() }()
		r.Soon(ctx)
		if ctx.Err() == nil {
			t.Fatal("Soon returned before the context ended")
		}
	})
}
