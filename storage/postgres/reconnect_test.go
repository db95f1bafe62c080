package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/storagetest"
)

// node is one Store with its Watcher, as a Gatehouse node runs them.
type node struct {
	name string // the listener's application_name
	s    *Store
	w    *storage.Watcher

	pids chan uint32   // each listener connection's backend pid
	gate chan struct{} // receives let a held reconnection proceed to LISTEN

	mu      sync.Mutex
	changes []storage.Change
}

// openNode opens a Store on dsn whose watcher is driven only by
// notifications (the poll is an hour) and whose listener, after its first
// connection, waits at n.gate before it LISTENs again.
func openNode(t *testing.T, dsn, name string) *node {
	n := &node{name: name, pids: make(chan uint32, 16), gate: make(chan struct{})}
	s, err := Open(t.Context(), dsn, Options{ListenerName: name, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	first := true
	testCtx := t.Context() // ends before cleanups run: a failed test never leaves the listener stuck
	s.onListen = func(pid uint32) {
		n.pids <- pid
		if first {
			first = false
			return
		}
		select {
		case <-n.gate:
		case <-testCtx.Done():
		}
	}
	n.s = s
	n.w = storage.NewWatcher(s, time.Hour, nil)
	n.w.Subscribe(func(c storage.Change) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.changes = append(n.changes, c)
	})
	if err := n.w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	storagetest.RunWatcher(t, n.w) // its Notify starts the listener
	return n
}

func (n *node) pid(ctx context.Context, t *testing.T) uint32 {
	t.Helper()
	select {
	case pid := <-n.pids:
		return pid
	case <-ctx.Done():
		t.Fatalf("%s: listener did not connect", n.name)
		return 0
	}
}

func (n *node) waitFor(ctx context.Context, t *testing.T, rev int64) {
	t.Helper()
	if err := n.w.WaitFor(ctx, rev); err != nil {
		t.Fatalf("%s: WaitFor(%d): %v (applied %d)", n.name, rev, err, n.w.Applied())
	}
}

func (n *node) write(t *testing.T, count int, prefix string) int64 {
	t.Helper()
	var rev int64
	for i := range count {
		o := storagetest.MustCreate(t, n.s, &storage.Object{Kind: "node", Key: fmt.Sprintf("%s-%s-%d", n.name, prefix, i)})
		rev = o.Revision
	}
	return rev
}

// writeWhileDeaf has w write changes while deaf's listener is held, and
// returns their last revision once w has applied them and deaf has not.
// deaf may still have one wake-up of its own commits pending (in-process
// notifications are coalesced, and WaitFor can return before the last
// one is taken): the drain it starts can read w's first writes, which
// then prove nothing about the repair. Such a round is written off and
// another one written; the pending wake-up is spent by then.
func writeWhileDeaf(ctx context.Context, t *testing.T, w, deaf *node, prefix string) int64 {
	t.Helper()
	for round := 1; ; round++ {
		before := deaf.w.Applied()
		rev := w.write(t, 5, fmt.Sprintf("%s-%d", prefix, round))
		w.waitFor(ctx, t, rev)
		got := deaf.w.Applied()
		if got == before {
			return rev
		}
		if round == 3 {
			t.Fatalf("%s applied %d (had %d) while deaf, three rounds running; the test cannot prove the repair", deaf.name, got, before)
		}
		t.Logf("%s applied %d (had %d) while deaf: a wake-up of its own commits was pending; another round", deaf.name, got, before)
	}
}

// TestListenerReconnect: two Stores on one schema each see the other's
// committed changes, in order and with no gap, across a forced reconnect
// of their LISTEN connections. While a listener is down the other node
// writes; its notifications reach no one, and only the wake-up after the
// reconnect (the gap repair) can deliver those changes, because the
// watchers' poll is an hour.
func TestListenerReconnect(t *testing.T) {
	dsn := schemaDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	suffix := strings.ToLower(rand.Text()[:8])
	a := openNode(t, dsn, "gatehouse-test-a-"+suffix)
	b := openNode(t, dsn, "gatehouse-test-b-"+suffix)
	pidA, pidB := a.pid(ctx, t), b.pid(ctx, t)

	// Phase 1: plain notifications.
	a.write(t, 3, "p1")
	rev := b.write(t, 3, "p1")
	a.waitFor(ctx, t, rev)
	b.waitFor(ctx, t, rev)

	// Phase 2: kill both listeners, found by application_name, as an
	// operator (or a failover) would.
	terminate(ctx, t, dsn, map[string]uint32{a.name: pidA, b.name: pidB})
	if p := a.pid(ctx, t); p == pidA {
		t.Fatal("a reconnected on the terminated backend")
	}
	if p := b.pid(ctx, t); p == pidB {
		t.Fatal("b reconnected on the terminated backend")
	}
	// Both listeners are now connected but held before LISTEN.
	rev = writeWhileDeaf(ctx, t, b, a, "p2") // b sees its own commits in-process
	a.gate <- struct{}{}
	a.waitFor(ctx, t, rev) // only the reconnect wake-up can deliver this

	rev = writeWhileDeaf(ctx, t, a, b, "p3")
	b.gate <- struct{}{}
	b.waitFor(ctx, t, rev)

	// Phase 3: notifications flow again on the new connections.
	rev = a.write(t, 2, "p4")
	b.waitFor(ctx, t, rev)
	rev = b.write(t, 2, "p4")
	a.waitFor(ctx, t, rev)
	b.waitFor(ctx, t, rev) // b's own last commits, before comparing

	want := storagetest.MustChanges(t, a.s, 0)
	for _, n := range []*node{a, b} {
		n.mu.Lock()
		got := slices.Clone(n.changes)
		n.mu.Unlock()
		storagetest.CheckConsecutive(t, got, 1, rev)
		if !slices.Equal(got, want) {
			t.Errorf("%s delivered %+v, want %+v", n.name, got, want)
		}
	}
}

// terminate ends the listener backends named in pids (application_name →
// the pid it must have), waiting until they are gone.
func terminate(ctx context.Context, t *testing.T, dsn string, pids map[string]uint32) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	names := make([]string, 0, len(pids))
	for name := range pids {
		names = append(names, name)
	}
	rows, err := conn.Query(ctx,
		`SELECT application_name, pid, pg_terminate_backend(pid, 10000)
		 FROM pg_stat_activity WHERE application_name = ANY($1)`, names)
	if err != nil {
		t.Fatal(err)
	}
	killed := map[string]uint32{}
	for rows.Next() {
		var name string
		var pid uint32
		var ok bool
		if err := rows.Scan(&name, &pid, &ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("backend %d (%s) did not terminate", pid, name)
		}
		killed[name] = pid
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if killed[name] != pid {
			t.Fatalf("listener %s: terminated pid %d, want %d (all: %v)", name, killed[name], pid, killed)
		}
	}
}
