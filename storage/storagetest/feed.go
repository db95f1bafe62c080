package storagetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

func testFeedEveryWrite(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	if rev := MustRevision(t, s); rev != 0 {
		t.Fatalf("fresh database at revision %d", rev)
	}
	if ch, err := s.Changes(ctx, 0, 0); err != nil || len(ch) != 0 {
		t.Fatalf("fresh database has changes %+v, %v", ch, err)
	}
	var revs []int64
	record := func(o *storage.Object, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, o.Revision)
	}
	record(s.Create(ctx, obj("k", "a")))
	record(s.Create(ctx, &storage.Object{Kind: "k", Key: "b", Expires: time.Now().Add(-time.Hour)}))
	record(s.Update(ctx, "k", "a", func(o *storage.Object) error { o.Data = []byte(`{"v":2}`); return nil }))
	if err := s.Delete(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	record(s.Create(ctx, obj("other", "c")))
	// Failed writes take no revision.
	if _, err := s.Create(ctx, obj("other", "c")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k", "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, "k", time.Now()); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	want := []storage.Change{
		{Revision: 1, Kind: "k", Key: "a", Op: storage.OpPut},
		{Revision: 2, Kind: "k", Key: "b", Op: storage.OpPut},
		{Revision: 3, Kind: "k", Key: "a", Op: storage.OpPut},
		{Revision: 4, Kind: "k", Key: "a", Op: storage.OpDelete},
		{Revision: 5, Kind: "other", Key: "c", Op: storage.OpPut},
		{Revision: 6, Kind: "k", Key: "b", Op: storage.OpDelete},
	}
	if got := MustChanges(t, s, 0); !slices.Equal(got, want) {
		t.Errorf("changes:\n got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(revs, []int64{1, 2, 3, 5}) {
		t.Errorf("objects carry revisions %v, want [1 2 3 5]", revs)
	}
	if rev := MustRevision(t, s); rev != 6 {
		t.Errorf("Revision = %d, want 6", rev)
	}
}

func testFeedPaging(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	for _, k := range []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"} {
		MustCreate(t, s, obj("k", k))
	}
	var got []int64
	for after := int64(0); ; {
		page, err := s.Changes(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d changes, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			got = append(got, c.Revision)
		}
		after = page[len(page)-1].Revision
	}
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("paged revisions %v", got)
	}
	if page, err := s.Changes(ctx, 0, 0); err != nil || len(page) != 10 {
		t.Errorf("Changes(0, limit 0) = %d changes, %v; want all 10", len(page), err)
	}
	if page, err := s.Changes(ctx, 7, 100); err != nil || len(page) != 3 || page[0].Key != "c" {
		t.Errorf("Changes(7) = %+v, %v", page, err)
	}
	if page, err := s.Changes(ctx, 99, 100); err != nil || len(page) != 0 {
		t.Errorf("Changes beyond the head = %+v, %v", page, err)
	}
}

func testFeedHistoryGone(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		MustCreate(t, s, obj("k", k))
	}
	if n, err := s.PruneChanges(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("PruneChanges(an hour ago) = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil || n != 4 {
		t.Fatalf("PruneChanges(in an hour) = %d, %v; want 4 (the newest stays)", n, err)
	}
	for _, after := range []int64{0, 1, 3} {
		if _, err := s.Changes(ctx, after, 10); !errors.Is(err, storage.ErrHistoryGone) {
			t.Errorf("Changes(%d) = %v, want ErrHistoryGone", after, err)
		}
	}
	if page, err := s.Changes(ctx, 4, 10); err != nil || len(page) != 1 || page[0].Revision != 5 {
		t.Errorf("Changes(4) = %+v, %v; want revision 5", page, err)
	}
	if page, err := s.Changes(ctx, 5, 10); err != nil || len(page) != 0 {
		t.Errorf("Changes(5) = %+v, %v; want none", page, err)
	}
	if n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second PruneChanges = %d, %v; want 0", n, err)
	}
	MustCreate(t, s, obj("k", "f"))
	if page, err := s.Changes(ctx, 4, 10); err != nil || len(page) != 2 {
		t.Errorf("Changes(4) after a new write = %+v, %v", page, err)
	}
	if rev := MustRevision(t, s); rev != 6 {
		t.Errorf("Revision = %d after pruning, want 6", rev)
	}
}

func testNotify(t *testing.T, open Opener) {
	s := open(t)
	ctx := waitCtx(t)
	nctx, cancel := context.WithCancel(ctx)
	ch := s.Notify(nctx)
	// A subscriber that does not read never blocks a writer.
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		MustCreate(t, s, obj("k", k))
	}
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("no wake-up after commits")
	}
	other := s.Notify(ctx)
	MustCreate(t, s, obj("k", "z"))
	select {
	case <-other:
	case <-ctx.Done():
		t.Fatal("no wake-up for a second subscriber")
	}
	cancel()
	for { // pending wake-ups may come first; the close must follow
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatal("Notify channel not closed after its context ended")
		}
	}
}

// recorder collects what a Watcher delivers.
type recorder struct {
	mu      sync.Mutex
	changes []storage.Change
}

func (r *recorder) add(c storage.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) get() []storage.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// RunWatcher runs w until the test ends. Its cleanup stops the watcher
// before the cleanups registered earlier (such as closing the store) run.
func RunWatcher(t testing.TB, w *storage.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
	})
}

// CheckConsecutive fails the test unless changes are exactly the revisions
// from..to, each once, in order.
func CheckConsecutive(t testing.TB, changes []storage.Change, from, to int64) {
	t.Helper()
	if int64(len(changes)) != to-from+1 {
		t.Errorf("%d changes, want revisions %d..%d", len(changes), from, to)
	}
	for i, c := range changes {
		if c.Revision != from+int64(i) {
			t.Errorf("change %d has revision %d, want %d (gap, duplicate or reordering)", i, c.Revision, from+int64(i))
			return
		}
	}
}

func testWatcherOrder(t *testing.T, open Opener) {
	s := open(t)
	ctx := waitCtx(t)
	w := storage.NewWatcher(s, time.Hour, nil) // an hour: only Notify can drive it
	var all, k1 recorder
	w.Subscribe(all.add)
	w.Subscribe(k1.add, "k1")
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	RunWatcher(t, w)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				kind := []string{"k1", "k2"}[(g+i)%2]
				if _, err := s.Create(ctx, obj(kind, string(rune('a'+g))+string(rune('a'+i)))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rev := MustRevision(t, s)
	if err := w.WaitFor(ctx, rev); err != nil {
		t.Fatalf("WaitFor(%d): %v (applied %d)", rev, err, w.Applied())
	}
	got := all.get()
	CheckConsecutive(t, got, 1, rev)
	if want := MustChanges(t, s, 0); !slices.Equal(got, want) {
		t.Errorf("delivered %+v, feed has %+v", got, want)
	}
	var wantK1 []storage.Change
	for _, c := range got {
		if c.Kind == "k1" {
			wantK1 = append(wantK1, c)
		}
	}
	if got := k1.get(); !slices.Equal(got, wantK1) {
		t.Errorf("kind subscriber got %+v, want %+v", got, wantK1)
	}
	if w.Applied() != rev {
		t.Errorf("Applied = %d, want %d", w.Applied(), rev)
	}
}

func testWatcherWaitFor(t *testing.T, open Opener) {
	s := open(t)
	ctx := waitCtx(t)
	MustCreate(t, s, obj("k", "before"))
	w := storage.NewWatcher(s, time.Hour, nil)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	RunWatcher(t, w)
	rev := MustRevision(t, s)
	done := make(chan error, 1)
	go func() { done <- w.WaitFor(ctx, rev+2) }()
	MustCreate(t, s, obj("k", "x"))
	MustCreate(t, s, obj("k", "y"))
	if err := <-done; err != nil {
		t.Fatalf("WaitFor(%d): %v", rev+2, err)
	}
	if err := w.WaitFor(ctx, rev); err != nil {
		t.Errorf("WaitFor of a delivered revision: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.WaitFor(cctx, rev+100); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(future) with a cancelled context = %v", err)
	}
	MustCreate(t, s, obj("k", "z"))
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Applied() != rev+3 {
		t.Errorf("Applied after Sync = %d, want %d", w.Applied(), rev+3)
	}
}

// testWatcherOtherStore: a second Store on the same database (another node,
// or another process on the same file) sees every write. Backends without
// cross-node notifications rely on the poll.
func testWatcherOtherStore(t *testing.T, open Opener) {
	s1, s2 := open(t), open(t)
	ctx := waitCtx(t)
	w := storage.NewWatcher(s2, 20*time.Millisecond, nil)
	var rec recorder
	w.Subscribe(rec.add)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	RunWatcher(t, w)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		MustCreate(t, s1, obj("k", k))
		MustCreate(t, s2, obj("k2", k))
	}
	if err := s1.Delete(ctx, "k", "c"); err != nil {
		t.Fatal(err)
	}
	rev := MustRevision(t, s1)
	if err := w.WaitFor(ctx, rev); err != nil {
		t.Fatalf("WaitFor(%d): %v (applied %d)", rev, err, w.Applied())
	}
	got := rec.get()
	CheckConsecutive(t, got, 1, rev)
	if want := MustChanges(t, s1, 0); !slices.Equal(got, want) {
		t.Errorf("delivered %+v, want %+v", got, want)
	}
}

func testWatcherReset(t *testing.T, open Opener) {
	s := open(t)
	ctx := waitCtx(t)
	for _, k := range []string{"a", "b", "c"} {
		MustCreate(t, s, obj("k", k))
	}
	w := storage.NewWatcher(s, time.Hour, nil)
	var rec recorder
	w.Subscribe(rec.add, "k")
	if err := w.Start(ctx); err != nil { // applied = 3
		t.Fatal(err)
	}
	for _, k := range []string{"d", "e", "f"} {
		MustCreate(t, s, obj("k", k))
	}
	if _, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil { // keeps only 6
		t.Fatal(err)
	}
	RunWatcher(t, w)
	if err := w.WaitFor(ctx, 6); err != nil {
		t.Fatal(err)
	}
	MustCreate(t, s, obj("k", "g"))
	if err := w.WaitFor(ctx, 7); err != nil {
		t.Fatal(err)
	}
	want := []storage.Change{{Revision: 6, Reset: true}, {Revision: 7, Kind: "k", Key: "g", Op: storage.OpPut}}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("delivered %+v, want %+v", got, want)
	}
}

func testMeta(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	rev := MustRevision(t, s)
	if _, err := s.GetMeta(ctx, "m"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetMeta(missing) = %v", err)
	}
	v1, v2 := []byte("v1"), allBytes()
	steps := []struct {
		name       string
		old, value []byte
		want       error
	}{
		{"create", nil, v1, nil},
		{"create-again", nil, v2, storage.ErrConflict},
		{"wrong-old", []byte("v0"), v2, storage.ErrConflict},
		{"swap", v1, v2, nil},
		{"stale-old", v1, []byte("v3"), storage.ErrConflict},
		{"binary-old", v2, v1, nil},
	}
	for _, st := range steps {
		if err := s.PutMeta(ctx, "m", st.old, st.value); !errors.Is(err, st.want) {
			t.Errorf("%s: PutMeta = %v, want %v", st.name, err, st.want)
		}
	}
	if v, err := s.GetMeta(ctx, "m"); err != nil || string(v) != "v1" {
		t.Errorf("GetMeta = %q, %v; want v1", v, err)
	}
	// Present-but-empty is not absent.
	if err := s.PutMeta(ctx, "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta(ctx, "empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("GetMeta(empty) = %#v, %v; want a non-nil empty value", v, err)
	}
	if err := s.PutMeta(ctx, "empty", nil, []byte("x")); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("PutMeta(old nil) over an empty value = %v", err)
	}
	if err := s.PutMeta(ctx, "empty", []byte{}, []byte("x")); err != nil {
		t.Errorf("PutMeta(old empty) = %v", err)
	}
	// Exactly one of many racing compare-and-sets wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 10 {
		wg.Go(func() {
			err := s.PutMeta(ctx, "race", nil, []byte{byte(i)})
			if err != nil && !errors.Is(err, storage.ErrConflict) {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d racing creates won", wins)
	}
	if got := MustRevision(t, s); got != rev {
		t.Errorf("meta writes moved the revision to %d", got)
	}
}
