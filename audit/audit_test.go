package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

func entry(i int) audit.Entry {
	return audit.Entry{
		RequestID: fmt.Sprintf("req-%d", i),
		Principal: audit.Principal{ObjectID: "00000000-0000-0000-0000-000000000001", Type: "ServicePrincipal"},
		Action:    "Microsoft.CognitiveServices/accounts/regenerateKey/action",
		Scope:     "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a",
		Result:    audit.Succeeded,
		Status:    200,
		Details:   map[string]string{"keyName": "Key1", "generation": fmt.Sprint(i)},
	}
}

func TestAppendListVerify(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		log := audit.New(s, nil)
		rep, err := log.Verify(ctx)
		if err != nil || rep.Entries != 0 {
			t.Fatalf("empty log: %+v, %v", rep, err)
		}
		// Concurrent appends from many goroutines still form one chain.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if _, err := log.Append(ctx, entry(i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rep, err = log.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Entries != 40 || rep.LastSeq != 40 || len(rep.LastHash) != 32 {
			t.Fatalf("report %+v", rep)
		}
		recs, err := log.List(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 40 || recs[0].Entry.Action != entry(0).Action || recs[0].Entry.Details["keyName"] != "Key1" {
			t.Fatalf("list: %d records, first %+v", len(recs), recs[0])
		}
		n := 0
		if err := log.Each(ctx, 10, func(r *audit.Record) error { n++; return nil }); err != nil || n != 30 {
			t.Fatalf("Each after 10: %d, %v", n, err)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	log := audit.New(teststore.SQLite(t), nil)
	tests := []struct {
		name string
		edit func(*audit.Entry)
	}{
		{"secret-detail", func(e *audit.Entry) { e.Details = map[string]string{"key1": "abc"} }},
		{"token-detail", func(e *audit.Entry) { e.Details = map[string]string{"accessToken": "x"} }},
		{"no-action", func(e *audit.Entry) { e.Action = "" }},
		{"no-scope", func(e *audit.Entry) { e.Scope = "" }},
		{"unknown-result", func(e *audit.Entry) { e.Result = "Maybe" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entry(1)
			tt.edit(&e)
			if _, err := log.Append(t.Context(), e); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Fatalf("err = %v, want ErrInvalidEntry", err)
			}
		})
	}
	if rep, err := log.Verify(t.Context()); err != nil || rep.Entries != 0 {
		t.Fatalf("rejected entries were stored: %+v %v", rep, err)
	}
}

// tamper serves the real log but alters what ListAudit returns, as an
// attacker with database access would.
type tamper struct {
	audit.Store
	edit func(recs []*storage.AuditRecord) []*storage.AuditRecord
}

func (t *tamper) ListAudit(ctx context.Context, after int64, limit int) ([]*storage.AuditRecord, error) {
	recs, err := t.Store.ListAudit(ctx, after, limit)
	if err != nil || len(recs) == 0 {
		return recs, err
	}
	return t.edit(recs), nil
}

func TestVerifyDetectsTampering(t *testing.T) {
	s := teststore.SQLite(t)
	log := audit.New(s, nil)
	for i := range 5 {
		if _, err := log.Append(t.Context(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		seq  int64
		edit func([]*storage.AuditRecord) []*storage.AuditRecord
	}{
		{"edited-data", 3, func(r []*storage.AuditRecord) []*storage.AuditRecord {
			r[2].Data = bytes.Replace(r[2].Data, []byte("Succeeded"), []byte("Failed"), 1)
			return r
		}},
		{"edited-time", 2, func(r []*storage.AuditRecord) []*storage.AuditRecord {
			r[1].Time = r[1].Time.Add(time.Microsecond)
			return r
		}},
		{"deleted-entry", 4, func(r []*storage.AuditRecord) []*storage.AuditRecord {
			return append(r[:2:2], r[3:]...)
		}},
		{"swapped-entries", 3, func(r []*storage.AuditRecord) []*storage.AuditRecord {
			r[1], r[2] = r[2], r[1]
			return r
		}},
		{"rehashed-entry", 4, func(r []*storage.AuditRecord) []*storage.AuditRecord {
			// Editing an entry and recomputing its own hash still breaks
			// the next link.
			r[2].Data = []byte(strings.Replace(string(r[2].Data), "req-2", "req-X", 1))
			r[2].Hash = bytes.Repeat([]byte{1}, 32)
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := audit.New(&tamper{Store: s, edit: tt.edit}, nil)
			_, err := bad.Verify(t.Context())
			ce, ok := errors.AsType[*audit.ChainError](err)
			if !ok {
				t.Fatalf("Verify = %v, want a ChainError", err)
			}
			if ce.Seq > tt.seq {
				t.Errorf("break reported at %d, want ≤ %d", ce.Seq, tt.seq)
			}
		})
	}
}

func TestRecent(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		log := audit.New(s, nil)
		if recs, err := log.Recent(t.Context(), 10, 5, func(*audit.Record) bool { return true }); err != nil || len(recs) != 0 {
			t.Fatalf("empty log: %d, %v", len(recs), err)
		}
		for i := range 30 {
			scope := "/a"
			if i%2 == 1 {
				scope = "/b"
			}
			if _, err := log.Append(t.Context(), audit.Entry{Action: fmt.Sprintf("act%d", i), Scope: scope, Result: audit.Succeeded}); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := log.Recent(t.Context(), 10, 3, func(r *audit.Record) bool { return r.Entry.Scope == "/b" })
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Entry.Action)
		}
		if want := []string{"act29", "act27", "act25"}; !slices.Equal(got, want) {
			t.Fatalf("Recent = %v, want %v", got, want)
		}
		// Only the window is read: of the last 4 entries, 2 are /a.
		if recs, _ := log.Recent(t.Context(), 4, 10, func(r *audit.Record) bool { return r.Entry.Scope == "/a" }); len(recs) != 2 {
			t.Fatalf("window of 4: %d entries of /a", len(recs))
		}
	})
}

func TestBefore(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		log := audit.New(s, nil)
		if recs, err := log.Before(t.Context(), 0, 10); err != nil || len(recs) != 0 {
			t.Fatalf("empty log: %d, %v", len(recs), err)
		}
		for i := range 12 {
			if _, err := log.Append(t.Context(), audit.Entry{Action: fmt.Sprintf("act%d", i+1), Scope: "/a", Result: audit.Succeeded}); err != nil {
				t.Fatal(err)
			}
		}
		seqs := func(before int64, limit int) []int64 {
			t.Helper()
			recs, err := log.Before(t.Context(), before, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, r := range recs {
				if r.Entry.Action != fmt.Sprintf("act%d", r.Seq) {
					t.Fatalf("entry %d is %s", r.Seq, r.Entry.Action)
				}
				out = append(out, r.Seq)
			}
			return out
		}
		for _, c := range []struct {
			before int64
			limit  int
			want   []int64
		}{
			{0, 3, []int64{12, 11, 10}},
			{10, 3, []int64{9, 8, 7}},
			{3, 5, []int64{2, 1}},
			{1, 5, nil},
			{100, 2, []int64{12, 11}},
			{0, 0, []int64{12}},
		} {
			if got := seqs(c.before, c.limit); !slices.Equal(got, c.want) {
				t.Errorf("Before(%d, %d) = %v, want %v", c.before, c.limit, got, c.want)
			}
		}
		// EachBefore walks the pages down to the first entry, and stops at
		// fn's error.
		walk := func(before int64, page int, stopAt int64) ([]int64, error) {
			var out []int64
			err := audit.EachBeforePaged(log, t.Context(), before, page, func(r *audit.Record) error {
				if r.Seq == stopAt {
					return errors.New("stop")
				}
				out = append(out, r.Seq)
				return nil
			})
			return out, err
		}
		for _, c := range []struct {
			before int64
			page   int
			want   []int64
		}{
			{0, 5, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{7, 2, []int64{6, 5, 4, 3, 2, 1}},
			{2, 4, []int64{1}},
			{1, 4, nil},
		} {
			if got, err := walk(c.before, c.page, -1); err != nil || !slices.Equal(got, c.want) {
				t.Errorf("EachBefore(%d) by %d = %v, %v; want %v", c.before, c.page, got, err, c.want)
			}
		}
		if got, err := walk(0, 3, 8); err == nil || !slices.Equal(got, []int64{12, 11, 10, 9}) {
			t.Errorf("EachBefore stopped at 8: %v, %v", got, err)
		}
		if got, err := walk(0, 1000, -1); err != nil || len(got) != 12 {
			t.Errorf("EachBefore by a large page: %v, %v", got, err)
		}
	})
}
