package keyring_test

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/keyring"
)

var benchSizes = []int{64, 4096}

func BenchmarkSeal(b *testing.B) {
	k := mustNew(b, mustKey(b, 1, 1))
	aad := keyring.AAD("secret", "/subscriptions/s/vaults/v/secrets/name")
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			value := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Seal(value, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustNew(b, mustKey(b, 1, 1))
	aad := keyring.AAD("secret", "/subscriptions/s/vaults/v/secrets/name")
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sealed := mustSeal(b, k, make([]byte, size), aad)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Open(sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRewrap measures the per-value cost of a rotation (not counting
// storage): the cost is the same for every value size, since only the
// wrapped data key is re-encrypted; the copy of the value is all that grows.
func BenchmarkRewrap(b *testing.B) {
	k1, k2 := mustKey(b, 1, 1), mustKey(b, 2, 2)
	aad := keyring.AAD("secret", "/subscriptions/s/vaults/v/secrets/name")
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			sealed := mustSeal(b, mustNew(b, k1), make([]byte, size), aad)
			k := mustNew(b, k1, k2)
			b.ReportAllocs()
			for b.Loop() {
				if _, changed, err := k.Rewrap(sealed, aad); err != nil || !changed {
					b.Fatal(changed, err)
				}
			}
		})
	}
}
