// Package notify is the in-process wake-up broadcaster behind
// storage.Feed.Notify, shared by the backends.
//
// A Hub hands each subscriber a channel with a buffer of one. Wake sends to
// every channel without blocking: a subscriber that has not yet read its
// previous wake-up simply keeps it, so bursts of commits coalesce into one
// wake-up and a slow subscriber never delays a writer.
package notify

import (
	"context"
	"sync"
)

// Hub broadcasts wake-ups to subscribers. The zero value is not usable; use
// New.
type Hub struct {
	mu     sync.Mutex
	subs   map[chan struct{}]struct{}
	closed bool
}

// New returns an empty hub.
func New() *Hub {
	return &Hub{subs: make(map[chan struct{}]struct{})}
}

// Subscribe returns a channel that receives after every Wake (coalesced). It
// is closed when ctx is done or the hub is closed.
func (h *Hub) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() { h.drop(ch) })
	return ch
}

func (h *Hub) drop(ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// Wake signals every subscriber. It never blocks on a subscriber.
func (h *Hub) Wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending: coalesce
		}
	}
}

// Close closes every subscriber's channel; later subscribers get a closed
// channel. Close is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		close(ch)
	}
	clear(h.subs)
}
