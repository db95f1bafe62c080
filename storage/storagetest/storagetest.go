// Package storagetest is the conformance suite every storage backend runs.
//
// A backend's test file is a few lines:
//
//	func TestConformance(t *testing.T) { storagetest.Run(t, openTestStore) }
//
// The suite pins what the storage.Store contract promises and where
// backends really differ: sentinel errors mapped from driver codes, no lost
// update under concurrent Update, times as UTC microseconds, blobs byte for
// byte, bytewise key order and stable paging, cancelled contexts, repeatable
// migrations, the change feed and its Watcher, the audit chain, Meta's
// compare-and-set, RewrapSealed and DeleteExpired.
//
// Subtests have kebab-case names, so one can be picked with
// go test -run 'Conformance/feed-history-gone'.
package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// Opener opens a Store for a test.
//
// The first call with a given t must return a Store on a fresh, empty
// database. Every later call with the same t must open another Store on
// that same database, exactly as a restarted process or a second node
// would (so its migrations run again). The Opener closes what it opened in
// t.Cleanup.
type Opener = func(t *testing.T) storage.Store

// waitTimeout bounds every wait for an asynchronous event (a wake-up, a
// delivery). Reaching it means the event never came: a failure, not a slow
// machine.
const waitTimeout = 30 * time.Second

// Run runs the conformance suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"sentinel-errors", testSentinelErrors},
		{"update-rules", testUpdateRules},
		{"round-trip", testRoundTrip},
		{"no-lost-update", testNoLostUpdate},
		{"times-utc-microseconds", testTimes},
		{"blobs-byte-for-byte", testBlobs},
		{"list-paging", testListPaging},
		{"list-bytewise-order", testListBytewise},
		{"list-ref", testListRef},
		{"cancelled-context", testCancelledContext},
		{"migrate-twice", testMigrateTwice},
		{"delete-expired", testDeleteExpired},
		{"table-round-trip", testTable},
		{"feed-every-write", testFeedEveryWrite},
		{"feed-paging", testFeedPaging},
		{"feed-history-gone", testFeedHistoryGone},
		{"notify", testNotify},
		{"watcher-order", testWatcherOrder},
		{"watcher-wait-for", testWatcherWaitFor},
		{"watcher-other-store", testWatcherOtherStore},
		{"watcher-reset", testWatcherReset},
		{"audit-chain", testAuditChain},
		{"audit-rules", testAuditRules},
		{"meta-compare-and-set", testMeta},
		{"rewrap-sealed", testRewrapSealed},
		{"dump-and-load", testDump},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// MustCreate creates o and fails the test on error.
func MustCreate(tb testing.TB, s storage.Objects, o *storage.Object) *storage.Object {
	tb.Helper()
	got, err := s.Create(tb.Context(), o)
	if err != nil {
		tb.Fatalf("Create(%s %q): %v", o.Kind, o.Key, err)
	}
	return got
}

// MustGet returns the object and fails the test on error.
func MustGet(tb testing.TB, s storage.Objects, kind, key string) *storage.Object {
	tb.Helper()
	got, err := s.Get(tb.Context(), kind, key)
	if err != nil {
		tb.Fatalf("Get(%s %q): %v", kind, key, err)
	}
	return got
}

// MustRevision returns the store's revision and fails the test on error.
func MustRevision(tb testing.TB, s storage.Feed) int64 {
	tb.Helper()
	rev, err := s.Revision(tb.Context())
	if err != nil {
		tb.Fatalf("Revision: %v", err)
	}
	return rev
}

// MustChanges returns every retained change after `after`, paging through
// the feed.
func MustChanges(tb testing.TB, s storage.Feed, after int64) []storage.Change {
	tb.Helper()
	var out []storage.Change
	for {
		page, err := s.Changes(tb.Context(), after, 100)
		if err != nil {
			tb.Fatalf("Changes(%d): %v", after, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Revision
	}
}

// obj returns a minimal object.
func obj(kind, key string) *storage.Object {
	return &storage.Object{Kind: kind, Key: key, Data: []byte(`{}`)}
}

// listAll pages through List with the given page size and returns the
// keys, failing on any page larger than asked for.
func listAll(t *testing.T, s storage.Objects, opts storage.ListOptions) []string {
	t.Helper()
	var keys []string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("List(%+v) never ends", opts)
		}
		p, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		if opts.Limit > 0 && len(p.Objects) > opts.Limit {
			t.Fatalf("List(%+v) returned %d objects", opts, len(p.Objects))
		}
		for _, o := range p.Objects {
			if o.Kind != opts.Kind {
				t.Fatalf("List(%+v) returned kind %q", opts, o.Kind)
			}
			keys = append(keys, o.Key)
		}
		if p.Next == "" {
			return keys
		}
		if len(p.Objects) == 0 || p.Next != p.Objects[len(p.Objects)-1].Key {
			t.Fatalf("List(%+v): Next %q is not the last key of the page", opts, p.Next)
		}
		opts.After = p.Next
	}
}

// sameObject reports the first difference between two objects, or "".
func sameObject(got, want *storage.Object) string {
	switch {
	case got.Kind != want.Kind || got.Key != want.Key:
		return fmt.Sprintf("identity %s %q, want %s %q", got.Kind, got.Key, want.Kind, want.Key)
	case got.Alt != want.Alt:
		return fmt.Sprintf("Alt %q, want %q", got.Alt, want.Alt)
	case got.Ref != want.Ref:
		return fmt.Sprintf("Ref %q, want %q", got.Ref, want.Ref)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("Data %q, want %q", got.Data, want.Data)
	case !bytes.Equal(got.Sealed, want.Sealed):
		return fmt.Sprintf("Sealed %q, want %q", got.Sealed, want.Sealed)
	case !got.Expires.Equal(want.Expires):
		return fmt.Sprintf("Expires %v, want %v", got.Expires, want.Expires)
	case got.Revision != want.Revision:
		return fmt.Sprintf("Revision %d, want %d", got.Revision, want.Revision)
	case !got.Created.Equal(want.Created):
		return fmt.Sprintf("Created %v, want %v", got.Created, want.Created)
	case !got.Updated.Equal(want.Updated):
		return fmt.Sprintf("Updated %v, want %v", got.Updated, want.Updated)
	}
	return ""
}

// waitCtx returns a context that ends after waitTimeout.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
