package vault_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

// BenchmarkGetSecret is the secret read path on SQLite. Baselines in the
// same run: keyring-open (the AES-GCM unwrap and open every read pays)
// and storage-get (one uncached read of the version record).
//
//	cached    GetSecret with the sealed records in the read cache
//	uncached  GetSecret with a cache too small to hit (two storage reads)
func BenchmarkGetSecret(b *testing.B) {
	store := teststore.SQLite(b)
	ctx := context.Background()
	kr := sealer(b)
	newSvc := func(cacheSize int) (*vault.Service, *vault.Vault) {
		w := teststore.NewWatcher(store)
		svc, err := vault.New(ctx, store, w, vault.Options{Sealer: kr, VaultURI: uri, CacheSize: cacheSize})
		if err != nil {
			b.Fatal(err)
		}
		teststore.StartWatcher(b, w, svc.Load)
		return svc, nil
	}
	svc, _ := newSvc(0)
	f := &fixture{svc: svc, store: store, clock: newClock()}
	v := f.vault(b, "bench", vault.Spec{})
	value := make([]byte, 64)
	for _, name := range []string{"one", "two"} {
		if _, err := svc.SetSecret(ctx, v, name, vault.SetInput{Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	page, err := store.List(ctx, storage.ListOptions{Kind: vault.KindVersion, Prefix: v.InternalID + "/one/"})
	if err != nil || len(page.Objects) != 1 {
		b.Fatal(err)
	}
	obj := page.Objects[0]
	b.Run("keyring-open", func(b *testing.B) {
		for b.Loop() {
			if _, err := kr.Open(obj.Sealed, keyring.AAD(vault.KindVersion, obj.Key)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("storage-get", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Get(ctx, vault.KindVersion, obj.Key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.GetSecret(ctx, v, "one", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		small, _ := newSvc(1)
		names := []string{"one", "two"}
		i := 0
		for b.Loop() {
			// Alternating keeps a one-entry cache missing.
			if _, err := small.GetSecret(ctx, v, names[i%2], ""); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
