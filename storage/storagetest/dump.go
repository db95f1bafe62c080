package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// dumper is the store with its dump side; both backends have one.
func dumper(t *testing.T, s storage.Store) storage.Dumper {
	t.Helper()
	d, ok := s.(storage.Dumper)
	if !ok {
		t.Fatalf("%T does not implement storage.Dumper", s)
	}
	return d
}

// writeDump dumps s into a dump file.
func writeDump(t *testing.T, s storage.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := storage.WriteDump(t.Context(), &buf, dumper(t, s), time.Now()); err != nil {
		t.Fatalf("WriteDump: %v", err)
	}
	return buf.Bytes()
}

// loadDump loads a dump file into s.
func loadDump(t *testing.T, s storage.Store, file []byte) error {
	t.Helper()
	r, err := storage.ReadDump(bytes.NewReader(file))
	if err != nil {
		return err
	}
	return dumper(t, s).Load(t.Context(), r.Revision, r.Next)
}

// mustBeEmpty checks that a failed Load left nothing behind.
func mustBeEmpty(t *testing.T, s storage.Store) {
	t.Helper()
	if rev := MustRevision(t, s); rev != 0 {
		t.Errorf("revision %d after a failed load, want 0", rev)
	}
	var n int
	err := dumper(t, s).Dump(t.Context(), func(int64) error { return nil }, func(storage.DumpItem) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("a failed load left %d items (err %v)", n, err)
	}
}

func testDump(t *testing.T, open Opener) {
	ctx := t.Context()
	src := open(t)
	for _, m := range []storage.MetaEntry{{Name: "keyring.active", Value: []byte("1")}, {Name: "keyring.kcv.1", Value: allBytes()}} {
		if err := src.PutMeta(ctx, m.Name, nil, m.Value); err != nil {
			t.Fatal(err)
		}
	}
	MustCreate(t, src, &storage.Object{Kind: "principal", Key: "p1", Alt: "client-1", Ref: "tenant-a", Data: []byte(`{"n":1}`)})
	MustCreate(t, src, &storage.Object{Kind: "principal", Key: "p2", Alt: "client-2", Ref: "tenant-a", Data: []byte(`{"n":2}`), Sealed: allBytes()})
	MustCreate(t, src, &storage.Object{Kind: "session", Key: "s1", Data: []byte(`{}`), Expires: time.Now().Add(time.Hour)})
	MustCreate(t, src, &storage.Object{Kind: "secret", Key: "gone", Data: []byte(`{}`)})
	if _, err := src.Update(ctx, "principal", "p1", func(o *storage.Object) error { o.Data = []byte(`{"n":11}`); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, "secret", "gone"); err != nil {
		t.Fatal(err)
	}
	MustCreate(t, src, &storage.Object{Kind: "secret", Key: "kept", Data: []byte{}, Sealed: []byte{1, 2, 3}})
	for i := range 3 {
		appendAudit(t, src, fmt.Sprintf(`{"i":%d}`, i))
	}
	file := writeDump(t, src)
	rev := MustRevision(t, src)

	t.Run("round-trip", func(t *testing.T) {
		dst := open(t)
		if err := loadDump(t, dst, file); err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := MustRevision(t, dst); got != rev {
			t.Fatalf("revision %d after load, want %d", got, rev)
		}
		for _, kind := range []string{"principal", "session", "secret"} {
			want, err := src.List(ctx, storage.ListOptions{Kind: kind})
			if err != nil {
				t.Fatal(err)
			}
			got, err := dst.List(ctx, storage.ListOptions{Kind: kind})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Objects) != len(want.Objects) {
				t.Fatalf("%s: %d objects loaded, want %d", kind, len(got.Objects), len(want.Objects))
			}
			for i, w := range want.Objects {
				g := got.Objects[i]
				if g.Key != w.Key || g.Alt != w.Alt || g.Ref != w.Ref || !bytes.Equal(g.Data, w.Data) ||
					!bytes.Equal(g.Sealed, w.Sealed) || !g.Expires.Equal(w.Expires) || g.Revision != w.Revision ||
					!g.Created.Equal(w.Created) || !g.Updated.Equal(w.Updated) {
					t.Errorf("%s %s: loaded %+v, dumped %+v", kind, w.Key, g, w)
				}
			}
		}
		if o, err := dst.GetByAlt(ctx, "principal", "client-2"); err != nil || o.Key != "p2" {
			t.Errorf("GetByAlt after load: %v, %v", o, err)
		}
		if page, err := dst.List(ctx, storage.ListOptions{Kind: "principal", Ref: "tenant-a"}); err != nil || len(page.Objects) != 2 {
			t.Errorf("List by ref after load: %v, %v", page, err)
		}
		wantAudit, _ := src.ListAudit(ctx, 0, 0)
		gotAudit, err := dst.ListAudit(ctx, 0, 0)
		if err != nil || len(gotAudit) != len(wantAudit) {
			t.Fatalf("audit after load: %d records (%v), want %d", len(gotAudit), err, len(wantAudit))
		}
		for i := range wantAudit {
			w, g := wantAudit[i], gotAudit[i]
			if g.Seq != w.Seq || !g.Time.Equal(w.Time) || !bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.PrevHash, w.PrevHash) || !bytes.Equal(g.Hash, w.Hash) {
				t.Errorf("audit %d: loaded %+v, dumped %+v", w.Seq, g, w)
			}
		}
		if v, err := dst.GetMeta(ctx, "keyring.kcv.1"); err != nil || !bytes.Equal(v, allBytes()) {
			t.Errorf("meta after load: %x, %v", v, err)
		}
		// The loaded store goes on from the dump's revision: the audit
		// chain continues, the feed has the new write and nothing older.
		if next := appendAudit(t, dst, `{"after":"load"}`); next.Seq != 4 {
			t.Errorf("audit after load continued at %d, want 4", next.Seq)
		}
		created := MustCreate(t, dst, obj("secret", "new"))
		if created.Revision != rev+1 {
			t.Errorf("first write after load has revision %d, want %d", created.Revision, rev+1)
		}
		if ch := MustChanges(t, dst, rev); len(ch) != 1 || ch[0].Key != "new" {
			t.Errorf("changes after the dump's revision: %+v", ch)
		}
		if _, err := dst.Changes(ctx, 0, 0); !errors.Is(err, storage.ErrHistoryGone) {
			t.Errorf("changes from 0 after load: %v, want ErrHistoryGone", err)
		}
		// Dumping the loaded store again gives the same items.
		again := writeDump(t, dst)
		if n := bytes.Count(again, []byte("\n")); n != bytes.Count(file, []byte("\n"))+2 {
			t.Errorf("dump of the loaded store has %d lines, want the first dump's plus 2", n)
		}
		// A store that has been written to is never loaded over.
		if err := loadDump(t, dst, file); !errors.Is(err, storage.ErrNotEmpty) {
			t.Errorf("load into a used store: %v, want ErrNotEmpty", err)
		}
	})

	t.Run("used-store", func(t *testing.T) {
		dst := open(t)
		if err := dst.PutMeta(ctx, "keyring.active", nil, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := loadDump(t, dst, file); !errors.Is(err, storage.ErrNotEmpty) {
			t.Errorf("load into a store with meta: %v, want ErrNotEmpty", err)
		}
	})

	t.Run("failure-rolls-back", func(t *testing.T) {
		dst := open(t)
		r, err := storage.ReadDump(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("the sealed value does not open")
		n := 0
		err = dumper(t, dst).Load(ctx, r.Revision, func() (storage.DumpItem, error) {
			if n++; n == 5 {
				return storage.DumpItem{}, boom
			}
			return r.Next()
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Load with a failing source: %v", err)
		}
		mustBeEmpty(t, dst)
		if err := loadDump(t, dst, file); err != nil {
			t.Fatalf("load after a failed load: %v", err)
		}
	})

	t.Run("damaged-files", func(t *testing.T) {
		lines := bytes.SplitAfter(file, []byte("\n"))
		lines = lines[:len(lines)-1] // the empty piece after the last newline
		truncated := bytes.Join(lines[:len(lines)-1], nil)
		flipped := bytes.Clone(file)
		j := bytes.Index(flipped, []byte(`"key":"p2"`))
		flipped[j+8] = '3'
		cases := map[string][]byte{
			"empty":         nil,
			"truncated":     truncated,
			"half-line":     file[:len(file)-10],
			"changed-byte":  flipped,
			"trailing-data": append(bytes.Clone(file), []byte("{}\n")...),
			"not-json":      []byte("PGDMP\n"),
			"other-format":  []byte(`{"format":"other","version":1,"revision":0}` + "\n"),
			"newer-version": []byte(`{"format":"gatehouse-dump","version":2,"revision":0}` + "\n"),
			"unknown-field": append(bytes.Clone(lines[0]), []byte(`{"object":{"kind":"a","key":"b","data":"","revision":1,"created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z","owner":"x"}}`+"\n")...),
			"two-in-a-line": append(bytes.Clone(lines[0]), []byte(`{"meta":{"name":"a","value":""},"audit":{"seq":1}}`+"\n")...),
		}
		for name, f := range cases {
			t.Run(name, func(t *testing.T) {
				dst := open(t)
				if err := loadDump(t, dst, f); !errors.Is(err, storage.ErrBadDumpFile) {
					t.Errorf("load: %v, want ErrBadDumpFile", err)
				}
				mustBeEmpty(t, dst)
			})
		}
	})

	t.Run("bad-items", func(t *testing.T) {
		at := storage.Now(time.Now())
		good := &storage.Object{Kind: "k", Key: "a", Alt: "x", Data: []byte(`{}`), Revision: 1, Created: at, Updated: at}
		withObj := func(f func(o *storage.Object)) []storage.DumpItem {
			o := *good
			f(&o)
			return []storage.DumpItem{{Object: good}, {Object: &o}}
		}
		rec1 := newAudit(1, nil, `{}`)
		cases := map[string][]storage.DumpItem{
			"revision-above":  withObj(func(o *storage.Object) { o.Key, o.Alt, o.Revision = "b", "", 99 }),
			"revision-zero":   withObj(func(o *storage.Object) { o.Key, o.Alt, o.Revision = "b", "", 0 }),
			"repeated-key":    withObj(func(o *storage.Object) { o.Alt = "" }),
			"repeated-alt":    withObj(func(o *storage.Object) { o.Key = "b" }),
			"empty-kind":      withObj(func(o *storage.Object) { o.Kind = "" }),
			"nul-in-key":      withObj(func(o *storage.Object) { o.Key = "a\x00" }),
			"no-times":        withObj(func(o *storage.Object) { o.Key, o.Alt, o.Created = "b", "", time.Time{} }),
			"meta-after":      {{Object: good}, {Meta: &storage.MetaEntry{Name: "m", Value: []byte{1}}}},
			"meta-repeated":   {{Meta: &storage.MetaEntry{Name: "m", Value: []byte{1}}}, {Meta: &storage.MetaEntry{Name: "m", Value: []byte{2}}}},
			"meta-no-name":    {{Meta: &storage.MetaEntry{Value: []byte{1}}}},
			"empty-item":      {{}},
			"audit-gap":       {{Audit: rec1}, {Audit: newAudit(3, rec1.Hash, `{}`)}},
			"audit-unchained": {{Audit: rec1}, {Audit: newAudit(2, []byte("other"), `{}`)}},
			"audit-first-2":   {{Audit: newAudit(2, nil, `{}`)}},
			"audit-before":    {{Audit: rec1}, {Object: good}},
		}
		for name, items := range cases {
			t.Run(name, func(t *testing.T) {
				dst := open(t)
				i := 0
				err := dumper(t, dst).Load(ctx, 5, func() (storage.DumpItem, error) {
					if i == len(items) {
						return storage.DumpItem{}, io.EOF
					}
					i++
					return items[i-1], nil
				})
				if !errors.Is(err, storage.ErrBadDump) {
					t.Errorf("load: %v, want ErrBadDump", err)
				}
				mustBeEmpty(t, dst)
			})
		}
	})

	t.Run("snapshot-under-writes", func(t *testing.T) {
		// A dump taken while another store on the same database writes is
		// one snapshot: every object it holds is at or before its revision
		// (Load checks), and it holds every object written before it.
		busy := open(t)
		before := MustRevision(t, src)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := busy.Create(context.WithoutCancel(ctx), obj("busy", fmt.Sprintf("%06d", i))); err != nil {
					t.Errorf("create during dump: %v", err)
					return
				}
			}
		})
		var files [][]byte
		for range 3 {
			files = append(files, writeDump(t, src))
		}
		close(stop)
		wg.Wait()
		for i, f := range files {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				dst := open(t)
				if err := loadDump(t, dst, f); err != nil {
					t.Fatalf("load: %v", err)
				}
				r, _ := storage.ReadDump(bytes.NewReader(f))
				if r.Revision < before {
					t.Errorf("dump revision %d is before the writes that preceded it (%d)", r.Revision, before)
				}
				keys := listAll(t, dst, storage.ListOptions{Kind: "busy", Limit: storage.MaxPageSize})
				// Creates are sequential, so a snapshot holds a prefix.
				for j, k := range keys {
					if k != fmt.Sprintf("%06d", j) {
						t.Fatalf("the dump holds busy objects %v…: not a prefix of the writes", keys[:min(j+1, 5)])
					}
				}
				if !slices.IsSorted(keys) {
					t.Errorf("keys not sorted")
				}
			})
		}
	})
}
