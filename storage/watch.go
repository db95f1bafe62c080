package storage

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Watcher delivers the change feed to in-process subscribers, in revision
// order, each change exactly once per subscriber (a Reset replaces the
// changes it covers). One Watcher per node serves every cache.
type Watcher struct {
	feed   Feed
	poll   time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	subs    []*subscription
	applied int64
	cond    chan struct{} // closed and replaced whenever applied advances
	started bool
}

type subscription struct {
	kinds []string // empty = all
	fn    func(Change)
}

// NewWatcher returns a watcher over feed that also polls every poll (the
// safety net for lost notifications; 0 means one second).
func NewWatcher(feed Feed, poll time.Duration, logger *slog.Logger) *Watcher {
	if poll <= 0 {
		poll = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{feed: feed, poll: poll, logger: logger, cond: make(chan struct{})}
}

// Subscribe registers fn for changes to the given kinds (none = every kind).
// fn runs on the watcher's goroutine, in revision order; it must not block
// for long. Subscribe before Start, or accept missing earlier changes.
func (w *Watcher) Subscribe(fn func(Change), kinds ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, &subscription{kinds: kinds, fn: fn})
}

// Start records the current revision as the starting point: changes after
// it will be delivered. Load caches after Start and before Run, so that no
// change falls between the load and the first delivery.
func (w *Watcher) Start(ctx context.Context) error {
	rev, err := w.feed.Revision(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.applied = rev
	w.started = true
	w.mu.Unlock()
	return nil
}

// Applied returns the newest revision delivered to every subscriber.
func (w *Watcher) Applied() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

// WaitFor blocks until revision rev has been delivered (read-your-writes on
// this node), or ctx is done.
func (w *Watcher) WaitFor(ctx context.Context, rev int64) error {
	for {
		w.mu.Lock()
		applied, ch := w.applied, w.cond
		w.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Sync delivers everything committed so far before returning.
func (w *Watcher) Sync(ctx context.Context) error {
	rev, err := w.feed.Revision(ctx)
	if err != nil {
		return err
	}
	return w.WaitFor(ctx, rev)
}

// Run delivers changes until ctx is done. It calls Start if Start was not
// called.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if !started {
		if err := w.Start(ctx); err != nil {
			return err
		}
	}
	notify := w.feed.Notify(ctx)
	ticker := time.NewTicker(w.poll)
	defer ticker.Stop()
	for {
		if err := w.drain(ctx); err != nil && ctx.Err() == nil {
			// Storage is down: keep serving from memory and try again at
			// the next wake-up (static stability).
			w.logger.Warn("change feed: read failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-notify:
			if !ok {
				notify = nil
			}
		case <-ticker.C:
		}
	}
}

func (w *Watcher) drain(ctx context.Context) error {
	for {
		w.mu.Lock()
		after := w.applied
		w.mu.Unlock()
		changes, err := w.feed.Changes(ctx, after, 500)
		if errors.Is(err, ErrHistoryGone) {
			rev, rerr := w.feed.Revision(ctx)
			if rerr != nil {
				return rerr
			}
			w.logger.Warn("change feed: fell behind retained history; caches reload", "from", after, "to", rev)
			w.deliver([]Change{{Revision: rev, Reset: true}})
			continue
		}
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		w.deliver(changes)
	}
}

func (w *Watcher) deliver(changes []Change) {
	w.mu.Lock()
	subs := slices.Clone(w.subs)
	w.mu.Unlock()
	for _, c := range changes {
		for _, s := range subs {
			if c.Reset || len(s.kinds) == 0 || slices.Contains(s.kinds, c.Kind) {
				s.fn(c)
			}
		}
	}
	w.mu.Lock()
	w.applied = changes[len(changes)-1].Revision
	close(w.cond)
	w.cond = make(chan struct{})
	w.mu.Unlock()
}

// Reloader rebuilds a subscriber's in-memory index when the change feed
// could not be applied (a Reset it could not follow, a failed re-read):
// Soon runs Load until it succeeds or ctx ends, backing off from 100 ms to
// 10 s, so the index converges once storage is back. A Soon while another
// runs returns at once. Set Load (and Name and Logger for the warnings)
// before the first Soon; do not copy a Reloader after that.
type Reloader struct {
	Name   string
	Load   func(context.Context) error
	Logger *slog.Logger

	running sync.Mutex
}

// Soon reloads, retrying; run it in its own goroutine.
func (r *Reloader) Soon(ctx context.Context) {
	if !r.running.TryLock() {
		return
	}
	defer r.running.Unlock()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		err := r.Load(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if r.Logger != nil {
			r.Logger.Warn(r.Name+": reload failed; retrying", "err", err, "in", delay.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
