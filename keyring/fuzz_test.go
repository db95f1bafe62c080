package keyring_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/gatehouse/gatehouse/keyring"
)

// FuzzOpen feeds arbitrary blobs and additional data to Open, Version and
// Rewrap. None may panic; a blob that opens must be one the test sealed
// (forgery is out of reach), and must still open to the same value after
// Rewrap.
func FuzzOpen(f *testing.F) {
	// The seeds must be the same in every fuzzing worker process, which
	// runs this setup again: seal them with a seeded random source.
	rnd := rand.NewChaCha8([32]byte{1})
	k1, k2 := mustKey(f, 1, 1), mustKey(f, 2, 2)
	old, err := keyring.New([]keyring.Key{k1}, keyring.Options{Rand: rnd})
	if err != nil {
		f.Fatal(err)
	}
	k, err := keyring.New([]keyring.Key{k1, k2}, keyring.Options{Rand: rnd})
	if err != nil {
		f.Fatal(err)
	}
	aad := keyring.AAD("secret", "a")
	seeds := [][]byte{
		mustSeal(f, old, []byte("value"), aad),
		mustSeal(f, k, []byte("value"), aad),
		mustSeal(f, k, nil, aad),
	}
	for _, s := range seeds {
		f.Add(s, aad)
		f.Add(s[:len(s)-1], aad)
		f.Add(s, keyring.AAD("secret", "b"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 0, 0, 0, 1}, aad)
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		keyring.Version(sealed)
		value, err := k.Open(sealed, ad)
		out, changed, rerr := k.Rewrap(sealed, ad)
		if err != nil {
			return
		}
		if !bytes.Equal(ad, aad) || !slicesContain(seeds, sealed) {
			t.Fatalf("Open accepted a blob the test did not seal: %x (aad %q)", sealed, ad)
		}
		if rerr != nil {
			t.Fatalf("Open succeeded but Rewrap failed: %v", rerr)
		}
		again, err := k.Open(out, ad)
		if err != nil || !bytes.Equal(again, value) {
			t.Fatalf("after Rewrap (changed=%v): %v", changed, err)
		}
	})
}

func slicesContain(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// FuzzParse feeds arbitrary key sources to Parse. It must not panic; what
// it accepts must survive Format and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,2:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=",
		"# c\n 1 : AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \r\n",
		"0:x", "01:x", "4294967296:x", "1:,", ",",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		keys, err := keyring.Parse(src)
		if err != nil {
			if _, ok := err.(*keyring.SourceError); !ok {
				t.Fatalf("error of type %T, want *SourceError", err)
			}
			return
		}
		text := keyring.Format(keys...)
		again, err := keyring.Parse(text)
		if err != nil || keyring.Format(again...) != text {
			t.Fatalf("Format/Parse round trip failed: %v", err)
		}
	})
}
