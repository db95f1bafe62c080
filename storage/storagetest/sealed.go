package storagetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// auditHash is a stand-in for the audit service's hash: it covers Seq,
// Time, Data and PrevHash.
func auditHash(r *storage.AuditRecord) []byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.Seq)))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.Time.UnixMicro())))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(r.PrevHash))))
	h.Write(r.PrevHash)
	h.Write(r.Data)
	return h.Sum(nil)
}

func newAudit(seq int64, prev []byte, data string) *storage.AuditRecord {
	r := &storage.AuditRecord{Seq: seq, Time: storage.Now(time.Now()), Data: []byte(data), PrevHash: prev}
	r.Hash = auditHash(r)
	return r
}

func appendAudit(t testing.TB, s storage.Audit, data string) *storage.AuditRecord {
	t.Helper()
	rec, err := s.AppendAudit(t.Context(), func(seq int64, prev []byte) (*storage.AuditRecord, error) {
		return newAudit(seq, prev, data), nil
	})
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	return rec
}

func testAuditChain(t *testing.T, open Opener) {
	s1, s2 := open(t), open(t) // two stores: appends are serialized across nodes too
	first := appendAudit(t, s1, `{"first":true}`)
	if first.Seq != 1 || first.PrevHash != nil {
		t.Fatalf("first record: seq %d, prev %x", first.Seq, first.PrevHash)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		s := []storage.Store{s1, s2}[g%2]
		wg.Go(func() {
			for i := range 5 {
				rec, err := s.AppendAudit(t.Context(), func(seq int64, prev []byte) (*storage.AuditRecord, error) {
					return newAudit(seq, prev, fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)), nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if rec.Time.Location() != time.UTC {
					t.Errorf("AppendAudit returned time %v", rec.Time)
				}
			}
		})
	}
	wg.Wait()
	var all []*storage.AuditRecord
	for after := int64(0); ; {
		page, err := s2.ListAudit(t.Context(), after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != 41 {
		t.Fatalf("%d audit records, want 41", len(all))
	}
	var prev []byte
	for i, r := range all {
		switch {
		case r.Seq != int64(i+1):
			t.Fatalf("record %d has seq %d", i, r.Seq)
		case !bytes.Equal(r.PrevHash, prev):
			t.Fatalf("record %d: chain forked (prev %x, want %x)", r.Seq, r.PrevHash, prev)
		case !bytes.Equal(r.Hash, auditHash(r)):
			t.Fatalf("record %d does not verify after the round trip", r.Seq)
		case r.Time.Location() != time.UTC:
			t.Fatalf("record %d: time %v not UTC", r.Seq, r.Time)
		}
		prev = r.Hash
	}
	if page, err := s1.ListAudit(t.Context(), 40, 0); err != nil || len(page) != 1 || page[0].Seq != 41 {
		t.Errorf("ListAudit(40) = %d records, %v", len(page), err)
	}
	if last, err := s1.LastAuditSeq(t.Context()); err != nil || last != 41 {
		t.Errorf("LastAuditSeq = %d, %v; want 41", last, err)
	}
}

func testAuditRules(t *testing.T, open Opener) {
	s := open(t)
	boom := errors.New("boom")
	if _, err := s.AppendAudit(t.Context(), func(int64, []byte) (*storage.AuditRecord, error) {
		return nil, boom
	}); !errors.Is(err, boom) {
		t.Errorf("AppendAudit with a failing build = %v, want build's error", err)
	}
	appendAudit(t, s, `{}`)
	bad := []struct {
		name  string
		build func(seq int64, prev []byte) *storage.AuditRecord
	}{
		{"nil-record", func(int64, []byte) *storage.AuditRecord { return nil }},
		{"other-seq", func(seq int64, prev []byte) *storage.AuditRecord { return newAudit(seq+1, prev, `{}`) }},
		{"other-prev-hash", func(seq int64, _ []byte) *storage.AuditRecord { return newAudit(seq, []byte("x"), `{}`) }},
		{"nanosecond-time", func(seq int64, prev []byte) *storage.AuditRecord {
			r := newAudit(seq, prev, `{}`)
			r.Time = r.Time.Add(1) // would not survive the round trip, so the hash could not verify
			return r
		}},
		{"zero-time", func(seq int64, prev []byte) *storage.AuditRecord {
			r := newAudit(seq, prev, `{}`)
			r.Time = time.Time{}
			return r
		}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := s.AppendAudit(t.Context(), func(seq int64, prev []byte) (*storage.AuditRecord, error) {
				return b.build(seq, prev), nil
			})
			if err == nil {
				t.Error("AppendAudit accepted the record")
			}
		})
	}
	if recs, err := s.ListAudit(t.Context(), 0, 0); err != nil || len(recs) != 1 {
		t.Errorf("ListAudit = %d records, %v; want only the valid one", len(recs), err)
	}
}

func testRewrapSealed(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	// 150 sealed objects (more than one batch of any sane size) in two
	// kinds, and unsealed ones among them.
	var want []string
	for i := range 150 {
		kind := "sa"
		if i >= 100 {
			kind = "sb"
		}
		key := fmt.Sprintf("k%03d", i)
		MustCreate(t, s, &storage.Object{Kind: kind, Key: key, Sealed: []byte("v1:" + key)})
		want = append(want, kind+"/"+key)
		if i%15 == 0 {
			MustCreate(t, s, obj(kind, fmt.Sprintf("k%03d-plain", i)))
		}
	}
	const (
		changed = "sa/k007" // updated while fn looks at it: visited again
		deleted = "sa/k008" // deleted while fn looks at it: not written
	)
	skip := func(key string) bool { return strings.HasSuffix(key, "5") } // fn leaves these (15 objects)
	before := MustRevision(t, s)
	var visits []string
	n, err := s.RewrapSealed(ctx, func(kind, key string, sealed []byte) ([]byte, error) {
		id := kind + "/" + key
		visits = append(visits, id)
		if !bytes.Equal(sealed, []byte("v1:"+key)) && !(id == changed && string(sealed) == "v1:changed") {
			t.Errorf("%s: fn got %q", id, sealed)
		}
		switch {
		case id == changed && string(sealed) != "v1:changed":
			if _, err := s.Update(ctx, kind, key, func(o *storage.Object) error {
				o.Sealed = []byte("v1:changed")
				return nil
			}); err != nil {
				return nil, err
			}
		case id == deleted:
			if err := s.Delete(ctx, kind, key); err != nil {
				return nil, err
			}
		case skip(key):
			return nil, nil
		}
		return append([]byte("v2:"), sealed...), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVisits := slices.Insert(slices.Clone(want), slices.Index(want, changed), changed)
	if !slices.Equal(visits, wantVisits) {
		t.Errorf("visited %d objects:\n got %q\nwant %q", len(visits), visits, wantVisits)
	}
	if n != 150-15-1 {
		t.Errorf("RewrapSealed = %d, want %d", n, 150-15-1)
	}
	if rev := MustRevision(t, s); rev != before+2+int64(n) {
		t.Errorf("revision %d, want %d (each rewrap is a write)", rev, before+2+int64(n))
	}
	for _, id := range want {
		kind, key, _ := strings.Cut(id, "/")
		o, err := s.Get(ctx, kind, key)
		switch {
		case id == deleted:
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s came back: %v", id, err)
			}
		case err != nil:
			t.Fatal(err)
		case id == changed:
			if string(o.Sealed) != "v2:v1:changed" {
				t.Errorf("%s: %q, want the rewrap of the concurrent update", id, o.Sealed)
			}
		case skip(key):
			if string(o.Sealed) != "v1:"+key {
				t.Errorf("%s: %q, want it left alone", id, o.Sealed)
			}
		case string(o.Sealed) != "v2:v1:"+key:
			t.Errorf("%s: %q", id, o.Sealed)
		}
	}
	// A second pass finds only what the first one left.
	visits = nil
	n, err = s.RewrapSealed(ctx, func(kind, key string, sealed []byte) ([]byte, error) {
		visits = append(visits, kind+"/"+key)
		if bytes.HasPrefix(sealed, []byte("v2:")) {
			return nil, nil
		}
		return append([]byte("v2:"), sealed...), nil
	})
	if err != nil || n != 15 || len(visits) != 149 {
		t.Errorf("second pass: %d rewrapped of %d visited, %v; want 15 of 149", n, len(visits), err)
	}
	boom := errors.New("boom")
	if _, err := s.RewrapSealed(ctx, func(string, string, []byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("RewrapSealed with a failing fn = %v", err)
	}
}
