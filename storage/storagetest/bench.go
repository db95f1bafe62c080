package storagetest

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// Benchmark measures the per-record operations on s: get reads one object
// by key, update is a read-modify-write of one object (a committed feed
// write: counter bump, object, change row).
func Benchmark(b *testing.B, s storage.Store) {
	data := []byte(`{"displayName":"bench","appId":"00000000-0000-0000-0000-000000000000","n":0}`)
	MustCreate(b, s, &storage.Object{Kind: "bench", Key: "/tenants/t/principals/bench", Alt: "bench-alt",
		Ref: "t", Data: data, Sealed: make([]byte, 60)})
	b.Run("get", func(b *testing.B) {
		ctx := b.Context()
		for b.Loop() {
			if _, err := s.Get(ctx, "bench", "/tenants/t/principals/bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		ctx := b.Context()
		n := 0
		for b.Loop() {
			n++
			_, err := s.Update(ctx, "bench", "/tenants/t/principals/bench", func(o *storage.Object) error {
				o.Ref = strconv.Itoa(n)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDump measures a backup and a restore of a store of n objects,
// each with a 300-byte document and a 100-byte sealed blob (a secret's
// size): dump writes the dump file from one snapshot, load writes it into
// an empty store (open returns a new empty one on every call). Both report
// objects/s.
func BenchmarkDump(b *testing.B, open func(b *testing.B) storage.Store, n int) {
	src := open(b)
	data := []byte(`{"displayName":"` + strings.Repeat("x", 270) + `"}`)
	for i := range n {
		MustCreate(b, src, &storage.Object{Kind: "bench", Key: fmt.Sprintf("/subscriptions/s/vaults/v/secrets/%08d", i),
			Ref: "v", Data: data, Sealed: make([]byte, 100)})
	}
	var file bytes.Buffer
	if _, _, err := storage.WriteDump(b.Context(), &file, src.(storage.Dumper), time.Now()); err != nil {
		b.Fatal(err)
	}
	b.Run("dump", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := storage.WriteDump(b.Context(), io.Discard, src.(storage.Dumper), time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dst := open(b)
			r, err := storage.ReadDump(bytes.NewReader(file.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := dst.(storage.Dumper).Load(b.Context(), r.Revision, r.Next); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
	})
}
