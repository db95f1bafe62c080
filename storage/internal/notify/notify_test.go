package notify

import (
	"context"
	"testing"
)

func TestHub(t *testing.T) {
	h := New()
	ctx, cancel := context.WithCancel(t.Context())
	a, b := h.Subscribe(ctx), h.Subscribe(t.Context())

	// Wakes coalesce and never block, whether or not anyone reads.
	for range 100 {
		h.Wake()
	}
	for _, ch := range []<-chan struct{}{a, b} {
		if _, ok := <-ch; !ok {
			t.Fatal("no wake-up")
		}
		select {
		case <-ch:
			t.Fatal("wake-ups did not coalesce")
		default:
		}
	}

	cancel()
	for range a { // the close follows, after any pending wake-up
	}
	h.Wake() // a dropped subscriber is not sent to (a send would panic)

	h.Close()
	<-b // the pending wake-up from the Wake above
	if _, ok := <-b; ok {
		t.Fatal("Close left a subscriber open")
	}
	if _, ok := <-h.Subscribe(t.Context()); ok {
		t.Fatal("Subscribe after Close returned an open channel")
	}
	h.Close() // idempotent
}
