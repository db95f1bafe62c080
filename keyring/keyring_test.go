package keyring_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/gatehouse/gatehouse/keyring"
)

// mustNew returns a Keyring over keys (newest active) without a database.
func mustNew(tb testing.TB, keys ...keyring.Key) *keyring.Keyring {
	tb.Helper()
	k, err := keyring.New(keys, keyring.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustSeal(tb testing.TB, k *keyring.Keyring, value, aad []byte) []byte {
	tb.Helper()
	sealed, err := k.Seal(value, aad)
	if err != nil {
		tb.Fatal(err)
	}
	return sealed
}

func mustVersion(tb testing.TB, sealed []byte) uint32 {
	tb.Helper()
	v, err := keyring.Version(sealed)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustNew(t, mustKey(t, 1, 1), mustKey(t, 2, 2))
	aad := keyring.AAD("secret", "/subscriptions/s/vaults/v/secrets/db-password")
	for _, size := range []int{0, 1, 31, 32, 64, 4096, 1 << 20} {
		t.Run(fmt.Sprintf("size-%d", size), func(t *testing.T) {
			value := make([]byte, size)
			rand.Read(value)
			sealed := mustSeal(t, k, value, aad)
			if len(sealed) != size+keyring.Overhead {
				t.Fatalf("len(sealed) = %d, want %d", len(sealed), size+keyring.Overhead)
			}
			if v := mustVersion(t, sealed); v != 2 {
				t.Fatalf("sealed under version %d, want the newest, 2", v)
			}
			if size >= 16 && bytes.Contains(sealed, value[:16]) {
				t.Fatal("sealed blob contains the plaintext")
			}
			got, err := k.Open(sealed, aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, value) {
				t.Fatal("Open returned a different value")
			}
			if again := mustSeal(t, k, value, aad); bytes.Equal(again[5:], sealed[5:]) {
				t.Fatal("sealing twice gave the same blob: data key or nonces reused")
			}
		})
	}
}

func TestOpenDetectsEveryAlteredByte(t *testing.T) {
	k := mustNew(t, mustKey(t, 1, 1), mustKey(t, 2, 2))
	aad := keyring.AAD("secret", "a")
	value := []byte("a value of some length, 64 bytes or so, to cover the value part")
	sealed := mustSeal(t, k, value, aad)
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			altered := bytes.Clone(sealed)
			altered[i] ^= mask
			if _, err := k.Open(altered, aad); err == nil {
				t.Fatalf("Open succeeded with byte %d xor %#02x", i, mask)
			}
			if _, _, err := k.Rewrap(altered, aad); err == nil && i < 65 {
				t.Fatalf("Rewrap succeeded with header/wrap byte %d xor %#02x", i, mask)
			}
		}
	}
	for n := range len(sealed) {
		if _, err := k.Open(sealed[:n], aad); !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("Open of the first %d bytes: err = %v, want ErrDecrypt", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(sealed), 0), aad); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("Open with a byte appended: err = %v, want ErrDecrypt", err)
	}
	if got, err := k.Open(sealed, aad); err != nil || !bytes.Equal(got, value) {
		t.Fatal("the original no longer opens: the test altered it")
	}
}

func TestOpenRejectsOtherRecord(t *testing.T) {
	k := mustNew(t, mustKey(t, 1, 1))
	sealed := mustSeal(t, k, []byte("v"), keyring.AAD("secret", "vault-a/db"))
	for _, tt := range []struct{ name, kind, key string }{
		{"other-key", "secret", "vault-a/db2"},
		{"other-kind", "signingkey", "vault-a/db"},
		{"shifted-separator", "secret\x00vault-a", "db"},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.Open(sealed, keyring.AAD(tt.kind, tt.key)); !errors.Is(err, keyring.ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
			if _, _, err := k.Rewrap(sealed, keyring.AAD(tt.kind, tt.key)); !errors.Is(err, keyring.ErrDecrypt) {
				t.Fatalf("Rewrap: err = %v, want ErrDecrypt", err)
			}
		})
	}
	if _, err := k.Open(sealed, nil); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("nil aad: err = %v, want ErrDecrypt", err)
	}
}

func TestOpenWrongOrMissingMasterKey(t *testing.T) {
	aad := keyring.AAD("k", "1")
	sealed := mustSeal(t, mustNew(t, mustKey(t, 1, 1)), []byte("v"), aad)
	t.Run("same-version-other-key", func(t *testing.T) {
		_, err := mustNew(t, mustKey(t, 1, 2)).Open(sealed, aad)
		if !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("err = %v, want ErrDecrypt", err)
		}
	})
	t.Run("version-not-loaded", func(t *testing.T) {
		_, err := mustNew(t, mustKey(t, 2, 2), mustKey(t, 3, 3)).Open(sealed, aad)
		if !errors.Is(err, keyring.ErrVersionUnavailable) || err.Error() != "keyring: master key version 1 is not loaded (loaded: 2, 3)" {
			t.Fatalf("err = %v, want ErrVersionUnavailable", err)
		}
	})
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		blob []byte
		want uint32
		ok   bool
	}{
		{"short", make([]byte, keyring.Overhead-1), 0, false},
		{"unknown-format", append([]byte{2, 0, 0, 0, 1}, make([]byte, keyring.Overhead)...), 0, false},
		{"format-1", append([]byte{1, 0, 1, 0, 2}, make([]byte, keyring.Overhead)...), 65538, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := keyring.Version(tt.blob)
			if (err == nil) != tt.ok || v != tt.want {
				t.Fatalf("Version = %d, %v; want %d, ok=%v", v, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, keyring.ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestRewrap(t *testing.T) {
	k1, k2 := mustKey(t, 1, 1), mustKey(t, 2, 2)
	aad := keyring.AAD("secret", "x")
	value := []byte("value")
	old := mustSeal(t, mustNew(t, k1), value, aad)
	both := mustNew(t, k1, k2)

	out, changed, err := both.Rewrap(old, aad)
	if err != nil || !changed {
		t.Fatalf("Rewrap of a v1 blob: changed = %v, err = %v", changed, err)
	}
	if v := mustVersion(t, out); v != 2 {
		t.Fatalf("rewrapped under version %d, want 2", v)
	}
	const valuePart = 65 // offset of the value nonce (doc.go)
	if !bytes.Equal(out[valuePart:], old[valuePart:]) {
		t.Fatal("Rewrap changed the value nonce or ciphertext")
	}
	if bytes.Equal(out[5:valuePart], old[5:valuePart]) {
		t.Fatal("Rewrap kept the wrap nonce and wrapped key")
	}
	if got, err := mustNew(t, k2).Open(out, aad); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("a v2-only keyring cannot open the rewrapped blob: %v", err)
	}

	again, changed, err := both.Rewrap(out, aad)
	if err != nil || changed || !bytes.Equal(again, out) {
		t.Fatalf("Rewrap of an active-version blob: changed = %v, err = %v", changed, err)
	}
	// A keyring still on version 1 leaves a version-2 blob alone: it must
	// not undo a rotation.
	behind, err := keyring.New([]keyring.Key{k1}, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := behind.Rewrap(out, aad); !errors.Is(err, keyring.ErrVersionUnavailable) {
		t.Fatalf("Rewrap of a blob under an unloaded version: err = %v", err)
	}
}

func TestRandomFailure(t *testing.T) {
	k1 := mustKey(t, 1, 1)
	old := mustSeal(t, mustNew(t, k1), []byte("v"), nil)
	k, err := keyring.New([]keyring.Key{k1, mustKey(t, 2, 2)}, keyring.Options{Rand: iotest.ErrReader(io.ErrUnexpectedEOF)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Seal([]byte("v"), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Seal: err = %v", err)
	}
	if _, _, err := k.Rewrap(old, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Rewrap: err = %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		keys []keyring.Key
		want string
	}{
		{"no-keys", nil, "no master key"},
		{"zero-key", []keyring.Key{{}}, "version 0"},
		{"same-version-other-key", []keyring.Key{mustKey(t, 1, 1), mustKey(t, 1, 2)}, "version 1 is given twice with different keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyring.New(tt.keys, keyring.Options{})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	// The same version and material twice is harmless.
	if _, err := keyring.New([]keyring.Key{mustKey(t, 1, 1), mustKey(t, 1, 1)}, keyring.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse seals, re-wraps and opens from many goroutines while
// the keyring reloads and rotates; run with -race.
func TestConcurrentUse(t *testing.T) {
	store := newMemStore()
	k1, k2 := mustKey(t, 1, 1), mustKey(t, 2, 2)
	k, err := keyring.Open(t.Context(), store, []keyring.Key{k1}, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.AddKeys(t.Context(), store, k2); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			aad := keyring.AAD("kind", fmt.Sprint(g))
			for i := range 200 {
				value := []byte(fmt.Sprint(g, i))
				sealed, err := k.Seal(value, aad)
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if sealed, _, err = k.Rewrap(sealed, aad); err != nil {
						t.Error(err)
						return
					}
				}
				got, err := k.Open(sealed, aad)
				if err != nil || !bytes.Equal(got, value) {
					t.Errorf("Open: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			if i == 50 {
				if _, err := k.Rotate(t.Context(), store); err != nil {
					t.Error(err)
					return
				}
			}
			if err := k.Reload(t.Context(), store); err != nil {
				t.Error(err)
				return
			}
			_ = k.Active()
			_ = k.Versions()
		}
	})
	wg.Wait()
}
