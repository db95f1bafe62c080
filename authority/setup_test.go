package authority

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// clock is an injectable clock shared by the nodes of a test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// node is one authority with its directory and watcher, as a server node
// has them.
type node struct {
	a       *Authority
	d       *directory.Directory
	watcher *storage.Watcher
}

// testSealer is one keyring shared by every node of a test (as nodes share
// the master key).
func testSealer(t testing.TB) Sealer {
	t.Helper()
	k, err := keyring.Generate(rand.Reader, 1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// newNode starts a node on store. opts may set anything but the wiring.
func newNode(t testing.TB, store storage.Store, sealer Sealer, c *clock, opts Options) *node {
	t.Helper()
	n := &node{watcher: teststore.NewWatcher(store)}
	n.d = directory.New(directory.Options{Store: store, Watcher: n.watcher, Now: c.Now,
		PasswordParams: directory.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	opts.Store, opts.Watcher, opts.Sealer, opts.Directory, opts.Now = store, n.watcher, sealer, n.d, c.Now
	if opts.Host == "" {
		opts.Host = "localhost:8443"
	}
	var err error
	if n.a, err = New(opts); err != nil {
		t.Fatal(err)
	}
	teststore.StartWatcher(t, n.watcher, n.d.Load,
		func(ctx context.Context) error { _, _, err := n.d.EnsureDefaultTenant(ctx); return err },
		n.a.Start)
	return n
}

// sync waits until the node has applied every committed change.
func (n *node) sync(t testing.TB) {
	t.Helper()
	if err := n.watcher.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}
