package storagetest

import (
	"strconv"
	"testing"

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
