package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

func testSentinelErrors(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	a := MustCreate(t, s, &storage.Object{Kind: "k", Key: "a", Alt: "alt-a", Data: []byte(`{"n":1}`)})
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "b", Alt: "alt-b", Data: []byte(`{"n":2}`)})
	rev := MustRevision(t, s)
	noop := func(*storage.Object) error { return nil }

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get-missing", func() error { _, err := s.Get(ctx, "k", "missing"); return err }, storage.ErrNotFound},
		{"get-other-kind", func() error { _, err := s.Get(ctx, "other", "a"); return err }, storage.ErrNotFound},
		{"get-by-alt-missing", func() error { _, err := s.GetByAlt(ctx, "k", "missing"); return err }, storage.ErrNotFound},
		{"get-by-alt-empty", func() error { _, err := s.GetByAlt(ctx, "k", ""); return err }, storage.ErrNotFound},
		{"update-missing", func() error { _, err := s.Update(ctx, "k", "missing", noop); return err }, storage.ErrNotFound},
		{"delete-missing", func() error { return s.Delete(ctx, "k", "missing") }, storage.ErrNotFound},
		{"create-duplicate-key", func() error {
			_, err := s.Create(ctx, &storage.Object{Kind: "k", Key: "a", Alt: "alt-new", Data: []byte(`{}`)})
			return err
		}, storage.ErrAlreadyExists},
		{"create-duplicate-alt", func() error {
			_, err := s.Create(ctx, &storage.Object{Kind: "k", Key: "c", Alt: "alt-a", Data: []byte(`{}`)})
			return err
		}, storage.ErrAlreadyExists},
		{"update-to-taken-alt", func() error {
			_, err := s.Update(ctx, "k", "b", func(o *storage.Object) error { o.Alt = "alt-a"; return nil })
			return err
		}, storage.ErrConflict},
		// Keys that are not UTF-8 text, or hold NUL (PostgreSQL's text can
		// hold neither): no object has one, and none is created, alike on
		// both backends.
		{"get-invalid-utf8", func() error { _, err := s.Get(ctx, "k", "a\xff"); return err }, storage.ErrNotFound},
		{"get-nul", func() error { _, err := s.Get(ctx, "k", "a\x00"); return err }, storage.ErrNotFound},
		{"get-by-alt-invalid", func() error { _, err := s.GetByAlt(ctx, "k", "\xc3\x28"); return err }, storage.ErrNotFound},
		{"update-invalid", func() error { _, err := s.Update(ctx, "k", "\xff", noop); return err }, storage.ErrNotFound},
		{"delete-invalid", func() error { return s.Delete(ctx, "k\x00", "a") }, storage.ErrNotFound},
		{"create-invalid-key", func() error {
			_, err := s.Create(ctx, &storage.Object{Kind: "k", Key: "bad\xff", Data: []byte(`{}`)})
			return err
		}, storage.ErrInvalidKey},
		{"create-invalid-alt", func() error {
			_, err := s.Create(ctx, &storage.Object{Kind: "k", Key: "fine", Alt: "nul\x00", Data: []byte(`{}`)})
			return err
		}, storage.ErrInvalidKey},
		{"update-to-invalid-ref", func() error {
			_, err := s.Update(ctx, "k", "b", func(o *storage.Object) error { o.Ref = "\xfe"; return nil })
			return err
		}, storage.ErrInvalidKey},
		{"list-after-invalid", func() error {
			_, err := s.List(ctx, storage.ListOptions{Kind: "k", After: "\x9fgarbage"})
			return err
		}, storage.ErrInvalidKey},
		{"list-prefix-nul", func() error { _, err := s.List(ctx, storage.ListOptions{Kind: "k", Prefix: "\x00"}); return err }, storage.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A failed write leaves no trace, not even a revision.
	if got := MustRevision(t, s); got != rev {
		t.Errorf("revision after failed writes = %d, want %d", got, rev)
	}
	if got := MustGet(t, s, "k", "a"); sameObject(got, a) != "" {
		t.Errorf("object a changed: %s", sameObject(got, a))
	}
	if got := MustGet(t, s, "k", "b"); got.Alt != "alt-b" {
		t.Errorf("b.Alt = %q after a conflicting update, want alt-b", got.Alt)
	}
	// Uniqueness is per kind; an empty Alt is "none" and never collides.
	MustCreate(t, s, &storage.Object{Kind: "k2", Key: "a", Alt: "alt-a"})
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "no-alt-1"})
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "no-alt-2"})
	// After a delete the key and the alternate key are free again.
	if err := s.Delete(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "a2", Alt: "alt-a"})
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "a", Alt: "alt-a3"})
}

func testUpdateRules(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	orig := MustCreate(t, s, &storage.Object{Kind: "k", Key: "a", Data: []byte(`{"v":1}`)})

	boom := errors.New("boom")
	_, err := s.Update(ctx, "k", "a", func(o *storage.Object) error {
		o.Data = []byte(`{"v":2}`)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update with failing fn = %v, want fn's error", err)
	}
	for _, change := range []struct {
		name string
		fn   func(*storage.Object)
	}{
		{"key", func(o *storage.Object) { o.Key = "b" }},
		{"kind", func(o *storage.Object) { o.Kind = "other" }},
	} {
		_, err := s.Update(ctx, "k", "a", func(o *storage.Object) error { change.fn(o); return nil })
		if err == nil {
			t.Errorf("Update changing the %s succeeded", change.name)
		}
	}
	if got := MustGet(t, s, "k", "a"); sameObject(got, orig) != "" {
		t.Errorf("rejected updates wrote: %s", sameObject(got, orig))
	}
	for _, k := range []struct{ kind, key string }{{"k", "b"}, {"other", "a"}} {
		if _, err := s.Get(ctx, k.kind, k.key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%s %q) after a rejected rename = %v, want ErrNotFound", k.kind, k.key, err)
		}
	}
	if rev := MustRevision(t, s); rev != orig.Revision {
		t.Errorf("revision = %d after rejected updates, want %d", rev, orig.Revision)
	}
	// Fields the store owns are not taken from fn.
	got, err := s.Update(ctx, "k", "a", func(o *storage.Object) error {
		o.Revision, o.Created = 999, time.Unix(0, 0)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != orig.Revision+1 || !got.Created.Equal(orig.Created) {
		t.Errorf("Update took store-owned fields from fn: revision %d, created %v", got.Revision, got.Created)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	in := &storage.Object{Kind: "principal", Key: "/tenants/t1/sp/x", Alt: "client-1", Ref: "tenant-1",
		Data: []byte(`{"name":"x"}`), Sealed: []byte("sealed"), Expires: exp}
	created := MustCreate(t, s, in)
	if created.Revision <= 0 || created.Created.IsZero() || !created.Updated.Equal(created.Created) {
		t.Fatalf("Create returned revision %d, created %v, updated %v", created.Revision, created.Created, created.Updated)
	}
	want := *in
	want.Data, want.Sealed = bytes.Clone(in.Data), bytes.Clone(in.Sealed)
	want.Expires = storage.Now(exp)
	want.Revision, want.Created, want.Updated = created.Revision, created.Created, created.Updated
	if d := sameObject(created, &want); d != "" {
		t.Errorf("Create returned %s", d)
	}
	in.Data[0] = 'X' // the store must not alias the caller's buffers
	if d := sameObject(MustGet(t, s, "principal", in.Key), &want); d != "" {
		t.Errorf("Get returned %s", d)
	}
	byAlt, err := s.GetByAlt(ctx, "principal", "client-1")
	if err != nil {
		t.Fatal(err)
	}
	if d := sameObject(byAlt, &want); d != "" {
		t.Errorf("GetByAlt returned %s", d)
	}

	updated, err := s.Update(ctx, "principal", in.Key, func(o *storage.Object) error {
		if d := sameObject(o, &want); d != "" {
			t.Errorf("fn got %s", d)
		}
		o.Alt, o.Ref, o.Data, o.Sealed, o.Expires = "client-2", "", []byte(`{"name":"y"}`), nil, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Revision <= created.Revision || !updated.Created.Equal(created.Created) || updated.Updated.Before(created.Updated) {
		t.Errorf("Update returned revision %d, created %v, updated %v", updated.Revision, updated.Created, updated.Updated)
	}
	want2 := storage.Object{Kind: "principal", Key: in.Key, Alt: "client-2", Data: []byte(`{"name":"y"}`),
		Revision: updated.Revision, Created: created.Created, Updated: updated.Updated}
	for name, got := range map[string]*storage.Object{"Update": updated, "Get": MustGet(t, s, "principal", in.Key)} {
		if d := sameObject(got, &want2); d != "" {
			t.Errorf("%s after update returned %s", name, d)
		}
	}
	if _, err := s.GetByAlt(ctx, "principal", "client-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old alt still resolves: %v", err)
	}
	if err := s.Delete(ctx, "principal", in.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "principal", in.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// Create rejects an object without identity instead of storing it.
	for _, o := range []*storage.Object{{Kind: "k"}, {Key: "k"}} {
		if _, err := s.Create(ctx, o); err == nil {
			t.Errorf("Create(%q, %q) succeeded", o.Kind, o.Key)
		}
	}
}

func testNoLostUpdate(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	MustCreate(t, s, &storage.Object{Kind: "counter", Key: "c", Data: []byte("0")})
	const n = 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs = map[int64]bool{}
	)
	for range n {
		wg.Go(func() {
			o, err := s.Update(ctx, "counter", "c", func(o *storage.Object) error {
				v, err := strconv.Atoi(string(o.Data))
				if err != nil {
					return err
				}
				o.Data = strconv.AppendInt(nil, int64(v+1), 10)
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
				return
			}
			mu.Lock()
			revs[o.Revision] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if got := string(MustGet(t, s, "counter", "c").Data); got != strconv.Itoa(n) {
		t.Errorf("counter = %s after %d concurrent increments", got, n)
	}
	if len(revs) != n {
		t.Errorf("%d distinct revisions for %d updates", len(revs), n)
	}
}

func testTimes(t *testing.T, open Opener) {
	s := open(t)
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	for i, exp := range []time.Time{
		time.Date(2031, 7, 9, 10, 11, 12, 123456789, zone),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, zone), // before the epoch: floor, not toward zero
		time.Date(2024, 2, 29, 0, 0, 0, 1, time.UTC),
	} {
		want := exp.Truncate(time.Microsecond).UTC()
		key := fmt.Sprintf("t%d", i)
		created := MustCreate(t, s, &storage.Object{Kind: "time", Key: key, Expires: exp})
		got := MustGet(t, s, "time", key)
		for name, o := range map[string]*storage.Object{"Create": created, "Get": got} {
			if !o.Expires.Equal(want) || o.Expires.Location() != time.UTC {
				t.Errorf("%s: Expires = %v, want %v (UTC)", name, o.Expires, want)
			}
			for field, v := range map[string]time.Time{"Created": o.Created, "Updated": o.Updated} {
				if v.Location() != time.UTC || v.Nanosecond()%1000 != 0 {
					t.Errorf("%s: %s = %v, want UTC microseconds", name, field, v)
				}
			}
		}
		if !got.Created.Equal(created.Created) {
			t.Errorf("Created %v round-tripped as %v", created.Created, got.Created)
		}
	}
}

// allBytes returns every byte value twice, forwards then backwards, plus
// NULs and invalid UTF-8.
func allBytes() []byte {
	var b []byte
	for i := range 256 {
		b = append(b, byte(i))
	}
	for i := 255; i >= 0; i-- {
		b = append(b, byte(i))
	}
	return append(b, 0, 0, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0x28, 0)
}

func testBlobs(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	data := allBytes()
	sealed := slices.Clone(data)
	slices.Reverse(sealed)
	MustCreate(t, s, &storage.Object{Kind: "blob", Key: "all", Data: data, Sealed: sealed})
	got := MustGet(t, s, "blob", "all")
	if !bytes.Equal(got.Data, data) || !bytes.Equal(got.Sealed, sealed) {
		t.Errorf("blobs changed in the store:\nData   %x\nSealed %x", got.Data, got.Sealed)
	}
	_, err := s.Update(ctx, "blob", "all", func(o *storage.Object) error {
		o.Data, o.Sealed = o.Sealed, o.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got = MustGet(t, s, "blob", "all")
	if !bytes.Equal(got.Data, sealed) || !bytes.Equal(got.Sealed, data) {
		t.Errorf("blobs changed by Update")
	}
	// No Sealed blob comes back as nil; empty Data as empty.
	MustCreate(t, s, &storage.Object{Kind: "blob", Key: "empty", Sealed: []byte{}})
	if got := MustGet(t, s, "blob", "empty"); got.Sealed != nil || len(got.Data) != 0 {
		t.Errorf("empty blobs came back as Data %q, Sealed %#v", got.Data, got.Sealed)
	}
}

func testListPaging(t *testing.T, open Opener) {
	s := open(t)
	var want []string
	for i := range 25 {
		key := fmt.Sprintf("key-%02d", 24-i) // created out of order
		want = append(want, key)
		MustCreate(t, s, obj("page", key))
		MustCreate(t, s, obj("page-other", key)) // another kind never shows up
	}
	slices.Sort(want)
	for _, limit := range []int{1, 5, 7, 24, 25, 26, 0} {
		t.Run(fmt.Sprintf("limit-%d", limit), func(t *testing.T) {
			got := listAll(t, s, storage.ListOptions{Kind: "page", Limit: limit})
			if !slices.Equal(got, want) {
				t.Errorf("pages gave %q, want %q", got, want)
			}
		})
	}
	t.Run("after-cursor", func(t *testing.T) {
		got := listAll(t, s, storage.ListOptions{Kind: "page", After: "key-19", Limit: 2})
		if !slices.Equal(got, want[20:]) {
			t.Errorf("after key-19: %q", got)
		}
		got = listAll(t, s, storage.ListOptions{Kind: "page", After: "key-1", Limit: 3}) // not a key itself
		if !slices.Equal(got, want[10:]) {
			t.Errorf("after key-1: %q", got)
		}
	})
	t.Run("empty-kind", func(t *testing.T) {
		p, err := s.List(t.Context(), storage.ListOptions{Kind: "none"})
		if err != nil || len(p.Objects) != 0 || p.Next != "" {
			t.Errorf("List of an empty kind = %+v, %v", p, err)
		}
	})
	t.Run("deletes-between-pages", func(t *testing.T) {
		// A page boundary whose key is deleted still continues correctly.
		p, err := s.List(t.Context(), storage.ListOptions{Kind: "page", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(t.Context(), "page", p.Next); err != nil {
			t.Fatal(err)
		}
		rest := listAll(t, s, storage.ListOptions{Kind: "page", After: p.Next, Limit: 10})
		if !slices.Equal(rest, want[10:]) {
			t.Errorf("after a deleted cursor: %q", rest)
		}
	})
}

func testListBytewise(t *testing.T, open Opener) {
	s := open(t)
	keys := []string{"a", "A", "b", "B", "Z", "z", "0", "9", "~", "a b", "a/b", "a/", "a_b", "a_", "a%b",
		"a%", "a-b", "a.b", "ab", "aB", "é", "éa", "ê", "日本", "\U0001F600", "a\U0010FFFF"}
	for _, k := range keys {
		MustCreate(t, s, obj("bytes", k))
	}
	want := slices.Sorted(slices.Values(keys)) // Go compares strings bytewise
	if got := listAll(t, s, storage.ListOptions{Kind: "bytes", Limit: 4}); !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	for _, prefix := range []string{"a", "A", "a_", "a%", "a/", "é", "\U0001F600", "a\U0010FFFF", "日", "q"} {
		t.Run("prefix-"+prefix, func(t *testing.T) {
			var want []string
			for _, k := range keys {
				if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
					want = append(want, k)
				}
			}
			slices.Sort(want)
			got := listAll(t, s, storage.ListOptions{Kind: "bytes", Prefix: prefix, Limit: 2})
			if !slices.Equal(got, want) {
				t.Errorf("prefix %q: got %q, want %q", prefix, got, want)
			}
		})
	}
}

func testListRef(t *testing.T, open Opener) {
	s := open(t)
	var r1 []string
	for i := range 15 {
		o := obj("ref", fmt.Sprintf("k%02d", i))
		switch i % 3 {
		case 0:
			o.Ref = "r1"
			r1 = append(r1, o.Key) // k00 k03 k06 k09 k12
		case 1:
			o.Ref = "r2"
		}
		MustCreate(t, s, o)
		MustCreate(t, s, &storage.Object{Kind: "ref-other", Key: o.Key, Ref: "r1"})
	}
	for _, tc := range []struct {
		name string
		opts storage.ListOptions
		want []string
	}{
		{"ref", storage.ListOptions{Ref: "r1", Limit: 2}, r1},
		{"ref-after", storage.ListOptions{Ref: "r1", After: "k05"}, r1[2:]},
		{"ref-prefix", storage.ListOptions{Ref: "r1", Prefix: "k1", Limit: 1}, []string{"k12"}},
		{"ref-unknown", storage.ListOptions{Ref: "none"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Kind = "ref"
			if got := listAll(t, s, tc.opts); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func testCancelledContext(t *testing.T, open Opener) {
	s := open(t)
	MustCreate(t, s, &storage.Object{Kind: "k", Key: "a", Alt: "x", Sealed: []byte("s")})
	rev := MustRevision(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	calls := []struct {
		name string
		call func() error
	}{
		{"create", func() error { _, err := s.Create(ctx, obj("k", "b")); return err }},
		{"get", func() error { _, err := s.Get(ctx, "k", "a"); return err }},
		{"get-by-alt", func() error { _, err := s.GetByAlt(ctx, "k", "x"); return err }},
		{"list", func() error { _, err := s.List(ctx, storage.ListOptions{Kind: "k"}); return err }},
		{"update", func() error {
			_, err := s.Update(ctx, "k", "a", func(*storage.Object) error { called = true; return nil })
			return err
		}},
		{"delete", func() error { return s.Delete(ctx, "k", "a") }},
		{"delete-expired", func() error { _, err := s.DeleteExpired(ctx, "k", time.Now()); return err }},
		{"revision", func() error { _, err := s.Revision(ctx); return err }},
		{"changes", func() error { _, err := s.Changes(ctx, 0, 10); return err }},
		{"prune-changes", func() error { _, err := s.PruneChanges(ctx, time.Now()); return err }},
		{"append-audit", func() error {
			_, err := s.AppendAudit(ctx, func(int64, []byte) (*storage.AuditRecord, error) { called = true; return nil, nil })
			return err
		}},
		{"list-audit", func() error { _, err := s.ListAudit(ctx, 0, 10); return err }},
		{"last-audit-seq", func() error { _, err := s.LastAuditSeq(ctx); return err }},
		{"get-meta", func() error { _, err := s.GetMeta(ctx, "m"); return err }},
		{"put-meta", func() error { return s.PutMeta(ctx, "m", nil, []byte("v")) }},
		{"rewrap-sealed", func() error {
			_, err := s.RewrapSealed(ctx, func(string, string, []byte) ([]byte, error) { called = true; return nil, nil })
			return err
		}},
		{"ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to notice the cancelled context", d)
			}
		})
	}
	if called {
		t.Error("a callback ran under a cancelled context")
	}
	t.Run("notify", func(t *testing.T) {
		ch := s.Notify(ctx)
		timeout := time.After(waitTimeout)
		for { // wake-ups may come first; the close must follow
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-timeout:
				t.Fatal("Notify channel of a cancelled context is not closed")
			}
		}
	})
	if got := MustRevision(t, s); got != rev {
		t.Errorf("revision %d after cancelled writes, want %d", got, rev)
	}
	if _, err := s.GetMeta(t.Context(), "m"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("meta written under a cancelled context: %v", err)
	}
}

func testMigrateTwice(t *testing.T, open Opener) {
	s1 := open(t)
	ctx := t.Context()
	a := MustCreate(t, s1, &storage.Object{Kind: "k", Key: "a", Alt: "x", Data: []byte(`{"v":1}`)})
	if err := s1.PutMeta(ctx, "m", nil, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s1, "first")
	rev := MustRevision(t, s1)

	s2 := open(t) // same database: migrations run again and must change nothing
	if d := sameObject(MustGet(t, s2, "k", "a"), a); d != "" {
		t.Errorf("after reopening: %s", d)
	}
	if got := MustRevision(t, s2); got != rev {
		t.Errorf("revision after reopening = %d, want %d", got, rev)
	}
	if v, err := s2.GetMeta(ctx, "m"); err != nil || string(v) != "v1" {
		t.Errorf("meta after reopening = %q, %v", v, err)
	}
	if recs, err := s2.ListAudit(ctx, 0, 0); err != nil || len(recs) != 1 {
		t.Errorf("audit after reopening = %d records, %v", len(recs), err)
	}
	b := MustCreate(t, s2, obj("k", "b"))
	if b.Revision != rev+1 {
		t.Errorf("revision continues at %d, want %d", b.Revision, rev+1)
	}
	MustGet(t, s1, "k", "b") // both stores are on one database
	s3 := open(t)
	if got := MustRevision(t, s3); got != rev+1 {
		t.Errorf("third open: revision %d, want %d", got, rev+1)
	}
}

func testDeleteExpired(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	t0 := storage.Now(time.Now())
	for _, o := range []*storage.Object{
		{Kind: "exp", Key: "past", Expires: t0.Add(-time.Hour)},
		{Kind: "exp", Key: "just-past", Expires: t0.Add(-time.Microsecond)},
		{Kind: "exp", Key: "at-t", Expires: t0},
		{Kind: "exp", Key: "future", Expires: t0.Add(time.Hour)},
		{Kind: "exp", Key: "never"},
		{Kind: "exp-other", Key: "past", Expires: t0.Add(-time.Hour)},
	} {
		MustCreate(t, s, o)
	}
	rev := MustRevision(t, s)
	n, err := s.DeleteExpired(ctx, "exp", t0)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpired(t0) = %d, %v; want 2", n, err)
	}
	changes := MustChanges(t, s, rev)
	want := []storage.Change{
		{Revision: rev + 1, Kind: "exp", Key: "just-past", Op: storage.OpDelete},
		{Revision: rev + 2, Kind: "exp", Key: "past", Op: storage.OpDelete},
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes = %+v, want %+v", changes, want)
	}
	// "Before t" is exact, below the microseconds the store keeps.
	if n, err := s.DeleteExpired(ctx, "exp", t0.Add(time.Nanosecond)); err != nil || n != 1 {
		t.Errorf("DeleteExpired(t0+1ns) = %d, %v; want 1 (at-t)", n, err)
	}
	if got := listAll(t, s, storage.ListOptions{Kind: "exp"}); !slices.Equal(got, []string{"future", "never"}) {
		t.Errorf("left %q", got)
	}
	MustGet(t, s, "exp-other", "past")
	if n, err := s.DeleteExpired(ctx, "exp", t0); err != nil || n != 0 {
		t.Errorf("second DeleteExpired = %d, %v", n, err)
	}
}

// widget is a record type for the Table test.
type widget struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
}

func testTable(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	tbl := storage.NewTable[widget](s, "widget")
	if tbl.Kind() != "widget" {
		t.Errorf("Kind = %q", tbl.Kind())
	}
	r, err := tbl.Create(ctx, &storage.Record[widget]{Key: "w1", Alt: "one", Ref: "red",
		Value: widget{Name: "first", Count: 1, Tags: []string{"a"}}, Sealed: []byte{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision == 0 || r.Value.Name != "first" {
		t.Errorf("Create returned %+v", r)
	}
	for i := 2; i <= 5; i++ {
		if _, err := tbl.Create(ctx, &storage.Record[widget]{Key: fmt.Sprintf("w%d", i), Ref: "blue",
			Value: widget{Name: "more", Count: i}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tbl.GetByAlt(ctx, "one")
	if err != nil || got.Key != "w1" || got.Value.Count != 1 || !bytes.Equal(got.Sealed, []byte{0, 1}) {
		t.Fatalf("GetByAlt = %+v, %v", got, err)
	}
	up, err := tbl.Update(ctx, "w1", func(r *storage.Record[widget]) error {
		r.Value.Count++
		r.Value.Tags = append(r.Value.Tags, "b")
		r.Alt = "uno"
		return nil
	})
	if err != nil || up.Value.Count != 2 || !slices.Equal(up.Value.Tags, []string{"a", "b"}) || up.Alt != "uno" {
		t.Fatalf("Update = %+v, %v", up, err)
	}
	if got, err := tbl.Get(ctx, "w1"); err != nil || got.Value.Count != 2 || got.Revision != up.Revision {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	page, next, err := tbl.List(ctx, storage.ListOptions{Kind: "ignored", Limit: 2})
	if err != nil || len(page) != 2 || next != "w2" {
		t.Errorf("List = %d records, next %q, %v", len(page), next, err)
	}
	all, err := tbl.Collect(ctx, storage.ListOptions{Ref: "blue", Limit: 2})
	if err != nil || len(all) != 4 || all[0].Key != "w2" || all[3].Key != "w5" {
		t.Errorf("Collect(Ref blue) = %d records, %v", len(all), err)
	}
	seen := 0
	for r, err := range tbl.All(ctx, storage.ListOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; seen == 3 || r == nil {
			break // stopping early must be safe
		}
	}
	if err := tbl.Delete(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Get(ctx, "w1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	// A record whose Data is not its type's JSON is an error, not a zero value.
	MustCreate(t, s, &storage.Object{Kind: "widget", Key: "bad", Data: []byte("not json")})
	if _, err := tbl.Get(ctx, "bad"); err == nil {
		t.Error("Get of undecodable data succeeded")
	}
}
