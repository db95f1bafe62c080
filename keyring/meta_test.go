package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

func mustOpen(tb testing.TB, meta storage.Meta, keys ...keyring.Key) *keyring.Keyring {
	tb.Helper()
	k, err := keyring.Open(tb.Context(), meta, keys, keyring.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestOpenEmptyDatabase(t *testing.T) {
	meta := newMemMeta()
	if used, err := keyring.Initialized(t.Context(), meta); used || err != nil {
		t.Fatalf("Initialized on an empty database = %v, %v; want false", used, err)
	}
	k := mustOpen(t, meta, mustKey(t, 1, 1), mustKey(t, 2, 2))
	if used, err := keyring.Initialized(t.Context(), meta); !used || err != nil {
		t.Fatalf("Initialized after Open = %v, %v; want true", used, err)
	}
	if k.Active() != 2 || !slices.Equal(k.Versions(), []uint32{1, 2}) {
		t.Fatalf("active %d, versions %v; want 2, [1 2]", k.Active(), k.Versions())
	}
	if got := meta.get("keyring/active"); got != "2" {
		t.Fatalf("keyring/active = %q, want 2", got)
	}
	for _, v := range []string{"1", "2"} {
		kcv := meta.get("keyring/kcv/" + v)
		if len(kcv) != 32 || strings.Trim(kcv, "0123456789abcdef") != "" {
			t.Fatalf("keyring/kcv/%s = %q, want 32 hex digits", v, kcv)
		}
	}
	if meta.get("keyring/kcv/1") == meta.get("keyring/kcv/2") {
		t.Fatal("two versions have the same KCV")
	}
	// Same keys again: nothing changes.
	if k := mustOpen(t, meta, mustKey(t, 1, 1), mustKey(t, 2, 2)); k.Active() != 2 {
		t.Fatalf("reopened with active %d, want 2", k.Active())
	}
}

func TestOpenExistingDatabase(t *testing.T) {
	k1, k2, k3 := mustKey(t, 1, 1), mustKey(t, 2, 2), mustKey(t, 3, 3)
	tests := []struct {
		name       string
		setup      []keyring.Key // keys of the first Open, on an empty database
		keys       []keyring.Key
		wantActive uint32
		wantKCVs   []string
		wantErr    error
		wantMsg    string
	}{
		{
			name: "new-version-is-recorded-not-activated", setup: []keyring.Key{k1},
			keys: []keyring.Key{k1, k2}, wantActive: 1, wantKCVs: []string{"1", "2"},
		},
		{
			name: "old-version-dropped", setup: []keyring.Key{k1, k2},
			keys: []keyring.Key{k2}, wantActive: 2, wantKCVs: []string{"1", "2"},
		},
		{
			name: "wrong-key", setup: []keyring.Key{k1},
			keys: []keyring.Key{mustKey(t, 1, 9)}, wantErr: keyring.ErrKeyMismatch, wantKCVs: []string{"1"},
			wantMsg: "keyring: master key version 1 does not match this database (key check value differs): wrong GATEHOUSE_MASTER_KEY or --master-key-file?",
		},
		{
			name: "every-wrong-version-is-named", setup: []keyring.Key{k1, k2},
			keys: []keyring.Key{mustKey(t, 1, 8), mustKey(t, 2, 9)}, wantErr: keyring.ErrKeyMismatch, wantKCVs: []string{"1", "2"},
			wantMsg: "keyring: master key version 1 does not match this database (key check value differs): wrong GATEHOUSE_MASTER_KEY or --master-key-file?\n" +
				"keyring: master key version 2 does not match this database (key check value differs): wrong GATEHOUSE_MASTER_KEY or --master-key-file?",
		},
		{
			// The right v1 and a wrong v2 that the database already knows.
			name: "wrong-newer-key", setup: []keyring.Key{k1, k2},
			keys: []keyring.Key{k1, mustKey(t, 2, 9)}, wantErr: keyring.ErrKeyMismatch, wantKCVs: []string{"1", "2"},
		},
		{
			// Nothing is written when the check fails: v3's KCV is not
			// recorded next to a wrong v1.
			name: "wrong-key-records-nothing", setup: []keyring.Key{k1},
			keys: []keyring.Key{mustKey(t, 1, 9), k3}, wantErr: keyring.ErrKeyMismatch, wantKCVs: []string{"1"},
		},
		{
			name: "active-version-missing", setup: []keyring.Key{k1, k2},
			keys: []keyring.Key{k1, k3}, wantErr: keyring.ErrVersionUnavailable, wantKCVs: []string{"1", "2"},
			wantMsg: "keyring: this database's active master key version 2 is not available locally (loaded: 1, 3): add it to GATEHOUSE_MASTER_KEY or --master-key-file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := newMemMeta()
			mustOpen(t, meta, tt.setup...)
			k, err := keyring.Open(t.Context(), meta, tt.keys, keyring.Options{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantMsg != "" && err.Error() != tt.wantMsg {
					t.Fatalf("message =\n%s\nwant\n%s", err, tt.wantMsg)
				}
				assertNoMaterial(t, err.Error(), secret(1), secret(2), secret(3), secret(8), secret(9))
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if k.Active() != tt.wantActive {
					t.Fatalf("active = %d, want %d", k.Active(), tt.wantActive)
				}
			}
			var kcvs []string
			for name := range meta.m {
				if v, ok := strings.CutPrefix(name, "keyring/kcv/"); ok {
					kcvs = append(kcvs, v)
				}
			}
			slices.Sort(kcvs)
			if !slices.Equal(kcvs, tt.wantKCVs) {
				t.Fatalf("KCVs recorded for %v, want %v", kcvs, tt.wantKCVs)
			}
		})
	}
}

func TestOpenMetaErrors(t *testing.T) {
	t.Run("malformed-active", func(t *testing.T) {
		meta := newMemMeta()
		meta.m["keyring/active"] = []byte("two")
		if _, err := keyring.Open(t.Context(), meta, []keyring.Key{mustKey(t, 1, 1)}, keyring.Options{}); err == nil ||
			!strings.Contains(err.Error(), "keyring/active is malformed") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled-context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := keyring.Open(ctx, newMemMeta(), []keyring.Key{mustKey(t, 1, 1)}, keyring.Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// once returns a beforePut hook that runs fn until fn reports that it acted,
// and never again; fn may itself write to the meta it hooks (another node's
// writes do not trigger the hook again).
func once(fn func(name string) bool) func(string) {
	var state atomic.Int32 // 0 waiting, 1 running, 2 done
	return func(name string) {
		if !state.CompareAndSwap(0, 1) {
			return
		}
		if fn(name) {
			state.Store(2)
		} else {
			state.Store(0)
		}
	}
}

// TestOpenRaces lets "another node" write between this node's read and its
// compare-and-swap.
func TestOpenRaces(t *testing.T) {
	k1 := mustKey(t, 1, 1)
	t.Run("other-node-initializes-with-same-key", func(t *testing.T) {
		meta := newMemMeta()
		meta.beforePut = once(func(string) bool { mustOpen(t, meta, k1); return true })
		if k := mustOpen(t, meta, k1); k.Active() != 1 {
			t.Fatalf("active = %d", k.Active())
		}
	})
	t.Run("other-node-initializes-with-other-key", func(t *testing.T) {
		meta := newMemMeta()
		meta.beforePut = once(func(string) bool { mustOpen(t, meta, mustKey(t, 1, 9)); return true })
		if _, err := keyring.Open(t.Context(), meta, []keyring.Key{k1}, keyring.Options{}); !errors.Is(err, keyring.ErrKeyMismatch) {
			t.Fatalf("err = %v, want ErrKeyMismatch", err)
		}
	})
	t.Run("other-node-initializes-with-newer-version", func(t *testing.T) {
		meta := newMemMeta()
		meta.beforePut = once(func(name string) bool {
			if name != "keyring/active" {
				return false
			}
			mustOpen(t, meta, mustKey(t, 2, 2))
			return true
		})
		if _, err := keyring.Open(t.Context(), meta, []keyring.Key{k1}, keyring.Options{}); !errors.Is(err, keyring.ErrVersionUnavailable) {
			t.Fatalf("err = %v, want ErrVersionUnavailable", err)
		}
	})
	t.Run("many-nodes-at-once", func(t *testing.T) {
		meta := newMemMeta()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := keyring.Open(t.Context(), meta, []keyring.Key{k1, mustKey(t, 2, 2)}, keyring.Options{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if meta.get("keyring/active") != "2" {
			t.Fatalf("active = %q", meta.get("keyring/active"))
		}
	})
}

// sealAll stores n values sealed by k in store and returns them by key.
func sealAll(t *testing.T, k *keyring.Keyring, store *memStore, n int) map[string][]byte {
	t.Helper()
	values := map[string][]byte{}
	for i := range n {
		kind, key := []string{"secret", "accountkey"}[i%2], fmt.Sprintf("record-%03d", i)
		value := []byte(strings.Repeat(key, i%5+1))
		store.putBlob(kind, key, mustSeal(t, k, value, keyring.AAD(kind, key)))
		values[kind+"/"+key] = value
	}
	return values
}

// checkAll opens every value in store with k and checks its content and,
// when wantVersion is non-zero, the version in its header.
func checkAll(t *testing.T, k *keyring.Keyring, store *memStore, values map[string][]byte, wantVersion uint32) {
	t.Helper()
	for id, want := range values {
		kind, key, _ := strings.Cut(id, "/")
		sealed := store.blob(kind, key)
		got, err := k.Open(sealed, keyring.AAD(kind, key))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v", id, err)
		}
		if v := mustVersion(t, sealed); wantVersion != 0 && v != wantVersion {
			t.Fatalf("%s is wrapped under version %d, want %d", id, v, wantVersion)
		}
	}
}

func TestRotate(t *testing.T) {
	k1, k2 := mustKey(t, 1, 1), mustKey(t, 2, 2)
	store := newMemStore()
	node1 := mustOpen(t, store, k1)
	values := sealAll(t, node1, store, 50)
	before := map[string][]byte{}
	for id := range values {
		kind, key, _ := strings.Cut(id, "/")
		before[id] = store.blob(kind, key)
	}

	// Step 2: both nodes learn version 2 (a restart, or AddKeys); it is
	// recorded, not activated.
	node2 := mustOpen(t, store, k1, k2)
	if err := node1.AddKeys(t.Context(), store, k2); err != nil {
		t.Fatal(err)
	}
	if node1.Active() != 1 || node2.Active() != 1 || store.get("keyring/kcv/2") == "" {
		t.Fatalf("active %d/%d, kcv/2 %q: version 2 should be known, not active",
			node1.Active(), node2.Active(), store.get("keyring/kcv/2"))
	}
	counts, err := keyring.CountVersions(t.Context(), store)
	if err != nil || counts[1] != 50 || len(counts) != 1 {
		t.Fatalf("CountVersions = %v, %v; want 50 under version 1", counts, err)
	}

	// Step 3: rotate on node 2.
	rot, err := node2.Rotate(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	if rot != (keyring.Rotation{From: 1, To: 2, Rewrapped: 50}) {
		t.Fatalf("Rotate = %+v", rot)
	}
	if store.get("keyring/active") != "2" || node2.Active() != 2 {
		t.Fatalf("after Rotate: database active %q, node active %d", store.get("keyring/active"), node2.Active())
	}
	checkAll(t, node2, store, values, 2)
	for id, old := range before {
		kind, key, _ := strings.Cut(id, "/")
		if !bytes.Equal(store.blob(kind, key)[65:], old[65:]) {
			t.Fatalf("%s: the value ciphertext changed", id)
		}
	}

	// Node 1 still seals under version 1 and opens everything.
	checkAll(t, node1, store, values, 0)
	late := mustSeal(t, node1, []byte("late"), keyring.AAD("secret", "late"))
	store.putBlob("secret", "late", late)
	values["secret/late"] = []byte("late")
	if v := mustVersion(t, late); v != 1 {
		t.Fatalf("node 1 sealed under %d before Reload", v)
	}

	// Step 4: node 1 reloads.
	if err := node1.Reload(t.Context(), store); err != nil || node1.Active() != 2 {
		t.Fatalf("Reload: active %d, err %v", node1.Active(), err)
	}
	if v := mustVersion(t, mustSeal(t, node1, nil, nil)); v != 2 {
		t.Fatalf("node 1 seals under %d after Reload", v)
	}

	// Step 5: rotating again re-wraps only the late value.
	rot, err = node1.Rotate(t.Context(), store)
	if err != nil || rot != (keyring.Rotation{From: 2, To: 2, Rewrapped: 1}) {
		t.Fatalf("second Rotate = %+v, %v", rot, err)
	}
	counts, err = keyring.CountVersions(t.Context(), store)
	if err != nil || counts[2] != 51 || len(counts) != 1 {
		t.Fatalf("CountVersions = %v, %v; want 51 under version 2", counts, err)
	}

	// Step 6: version 1 is retired; a node with only version 2 opens all.
	checkAll(t, mustOpen(t, store, k2), store, values, 2)
}

// TestRotateWithoutDowntime opens every value continuously while the
// rotation runs, and writes a value in the middle of the walk.
func TestRotateWithoutDowntime(t *testing.T) {
	k1, k2 := mustKey(t, 1, 1), mustKey(t, 2, 2)
	store := newMemStore()
	reader := mustOpen(t, store, k1)
	values := sealAll(t, reader, store, 40)
	if err := reader.AddKeys(t.Context(), store, k2); err != nil {
		t.Fatal(err)
	}
	rotator := mustOpen(t, store, k1, k2)

	var visits atomic.Int32
	store.duringWalk = func(kind, key string) {
		// A concurrent write to the record being visited: the store
		// revisits it, and the new value must end up under version 2 too.
		if visits.Add(1) == 10 {
			store.putBlob(kind, key, mustSeal(t, reader, values[kind+"/"+key], keyring.AAD(kind, key)))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for id, want := range values {
				kind, key, _ := strings.Cut(id, "/")
				got, err := reader.Open(store.blob(kind, key), keyring.AAD(kind, key))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s during rotation: %v", id, err)
					return
				}
			}
		}
	})
	rot, err := rotator.Rotate(t.Context(), store)
	close(stop)
	wg.Wait()
	if err != nil || rot.Rewrapped != 40 {
		t.Fatalf("Rotate = %+v, %v", rot, err)
	}
	checkAll(t, rotator, store, values, 2)
}

func TestRotateErrors(t *testing.T) {
	k1, k2, k3 := mustKey(t, 1, 1), mustKey(t, 2, 2), mustKey(t, 3, 3)
	t.Run("database-is-ahead", func(t *testing.T) {
		store := newMemStore()
		mustOpen(t, store, k1)
		behind := mustOpen(t, store, k1, k2)
		ahead := mustOpen(t, store, k1, k2, k3)
		if _, err := ahead.Rotate(t.Context(), store); err != nil {
			t.Fatal(err)
		}
		_, err := behind.Rotate(t.Context(), store)
		if !errors.Is(err, keyring.ErrVersionUnavailable) || store.get("keyring/active") != "3" {
			t.Fatalf("err = %v, active %q; want ErrVersionUnavailable and 3 kept", err, store.get("keyring/active"))
		}
		if err := behind.Reload(t.Context(), store); !errors.Is(err, keyring.ErrVersionUnavailable) || behind.Active() != 1 {
			t.Fatalf("Reload: err = %v, active %d; want ErrVersionUnavailable and 1 kept", err, behind.Active())
		}
	})
	t.Run("newest-version-differs-from-database", func(t *testing.T) {
		store := newMemStore()
		mustOpen(t, store, k1)
		mustOpen(t, store, k1, k2) // another node records version 2
		// A running node is given a different version 2 later.
		node := mustOpen(t, store, k1)
		if err := node.AddKeys(t.Context(), store, mustKey(t, 2, 9)); !errors.Is(err, keyring.ErrKeyMismatch) {
			t.Fatalf("AddKeys: err = %v, want ErrKeyMismatch", err)
		}
		if !slices.Equal(node.Versions(), []uint32{1}) {
			t.Fatalf("versions after a failed AddKeys: %v", node.Versions())
		}
	})
	t.Run("concurrent-rotation-elsewhere", func(t *testing.T) {
		store := newMemStore()
		mustOpen(t, store, k1)
		node := mustOpen(t, store, k1, k2)
		other := mustOpen(t, store, k1, k2)
		store.beforePut = once(func(name string) bool {
			if name != "keyring/active" {
				return false
			}
			if _, err := other.Rotate(t.Context(), store); err != nil {
				t.Error(err)
			}
			return true
		})
		rot, err := node.Rotate(t.Context(), store)
		if err != nil || rot.To != 2 || node.Active() != 2 {
			t.Fatalf("Rotate = %+v, %v", rot, err)
		}
	})
	t.Run("undecryptable-value-stops-the-walk", func(t *testing.T) {
		store := newMemStore()
		node := mustOpen(t, store, k1)
		sealAll(t, node, store, 4)
		store.putBlob("secret", "moved", store.blob("secret", "record-000")) // wrong record
		if err := node.AddKeys(t.Context(), store, k2); err != nil {
			t.Fatal(err)
		}
		_, err := node.Rotate(t.Context(), store)
		if !errors.Is(err, keyring.ErrDecrypt) || !strings.Contains(err.Error(), `rewrap secret "moved"`) {
			t.Fatalf("err = %v, want ErrDecrypt naming the record", err)
		}
	})
	t.Run("reload-never-lowers", func(t *testing.T) {
		store := newMemStore()
		node := mustOpen(t, store, k1, k2)
		store.memMeta.m["keyring/active"] = []byte("1") // e.g. a read that raced with a rotation
		if err := node.Reload(t.Context(), store); err != nil || node.Active() != 2 {
			t.Fatalf("Reload: active %d, err %v; want 2 kept", node.Active(), err)
		}
	})
	t.Run("reload-on-empty-database", func(t *testing.T) {
		if err := mustNew(t, k1).Reload(t.Context(), newMemMeta()); err == nil {
			t.Fatal("Reload succeeded without an active version")
		}
	})
}
