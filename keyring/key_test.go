package keyring_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse/gatehouse/keyring"
)

// secret returns 32 bytes of test key material derived from seed.
func secret(seed byte) []byte {
	b := make([]byte, keyring.KeySize)
	for i := range b {
		b[i] = seed + byte(i)*7
	}
	return b
}

// mustKey returns version v of a test master key with material secret(seed).
func mustKey(tb testing.TB, v uint32, seed byte) keyring.Key {
	tb.Helper()
	k, err := keyring.NewKey(v, secret(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func versions(keys []keyring.Key) []uint32 {
	var vs []uint32
	for _, k := range keys {
		vs = append(vs, k.Version())
	}
	return vs
}

// assertNoMaterial fails if s contains any encoding of any of secrets.
func assertNoMaterial(t *testing.T, s string, secrets ...[]byte) {
	t.Helper()
	for _, sec := range secrets {
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(sec)[:12],
			base64.RawURLEncoding.EncodeToString(sec)[:12],
			hex.EncodeToString(sec)[:12],
			fmt.Sprint(sec[:6])[1:16], // "[a b c d e f]" as %v/%d print it
			string(sec[:8]),
		} {
			if strings.Contains(s, enc) {
				t.Fatalf("output contains key material (%q): %s", enc, s)
			}
		}
	}
}

func TestParse(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(secret(1))
	b := base64.StdEncoding.EncodeToString(secret(2))
	c := base64.StdEncoding.EncodeToString(secret(3))
	tests := []struct {
		name string
		src  string
		want []uint32
	}{
		{"bare-key", a, []uint32{1}},
		{"bare-key-in-file", "# generated\n\n" + a + "\n", []uint32{1}},
		{"one-version", "7:" + a, []uint32{7}},
		{"lines", "1:" + a + "\n2:" + b + "\n", []uint32{1, 2}},
		{"commas-sorted", "2:" + b + ",1:" + a, []uint32{1, 2}},
		{"lines-and-commas", "1:" + a + ", 2:" + b + "\n3:" + c, []uint32{1, 2, 3}},
		{"crlf-tabs-spaces", " 1 : " + a + " \r\n\t2:" + b + "\r\n", []uint32{1, 2}},
		{"max-version", "4294967295:" + a, []uint32{4294967295}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := keyring.Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(keys); !slices.Equal(got, tt.want) {
				t.Fatalf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseMaterialAndFormat(t *testing.T) {
	src := "2:" + base64.StdEncoding.EncodeToString(secret(2)) + "\n1:" + base64.StdEncoding.EncodeToString(secret(1))
	keys, err := keyring.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want := keyring.Format(mustKey(t, 1, 1), mustKey(t, 2, 2))
	if got := keyring.Format(keys...); got != want {
		t.Fatalf("Format(Parse(src)) = %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(secret(1))
	b := base64.StdEncoding.EncodeToString(secret(2))
	tests := []struct {
		name        string
		src         string
		line, entry int
		reason      string
	}{
		{"empty", "", 0, 0, "no key"},
		{"only-comments", "# nothing\n\n  \n", 0, 0, "no key"},
		{"bad-base64", "1:" + a[:10] + "!" + a[11:], 1, 1, "not valid standard base64 (bad input at character 11 of the key)"},
		{"url-safe-base64", "1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), 1, 1, "not valid standard base64"},
		{"unpadded-base64", "1:" + base64.RawStdEncoding.EncodeToString(secret(1)), 1, 1, "not valid standard base64"},
		{"short-key", "1:" + base64.StdEncoding.EncodeToString(secret(1)[:16]), 1, 1, "decodes to 16 bytes; want 32"},
		{"long-key", "1:" + base64.StdEncoding.EncodeToString(append(secret(1), 0)), 1, 1, "decodes to 33 bytes; want 32"},
		{"bare-short-key", base64.StdEncoding.EncodeToString(secret(1)[:31]), 1, 1, "decodes to 31 bytes"},
		{"duplicate-version", "1:" + a + "\n# x\n1:" + b, 3, 1, "version 1 is defined twice (first at line 1, entry 1)"},
		{"duplicate-version-commas", "3:" + a + ",3:" + b, 1, 2, "version 3 is defined twice"},
		{"same-key-twice", "1:" + a + "\n2:" + a, 2, 1, "versions 1 and 2 have the same key"},
		{"version-zero", "0:" + a, 1, 1, "version 0 is not allowed"},
		{"leading-zero", "01:" + a, 1, 1, "version must be a decimal number"},
		{"negative", "-1:" + a, 1, 1, "version must be a decimal number"},
		{"plus-sign", "+1:" + a, 1, 1, "version must be a decimal number"},
		{"too-large", "4294967296:" + a, 1, 1, "version must be a decimal number from 1 to 4294967295"},
		{"hex-version", "0x1:" + a, 1, 1, "version must be a decimal number"},
		{"word-version", "v1:" + a, 1, 1, "version must be a decimal number"},
		{"missing-version", ":" + a, 1, 1, "version must be a decimal number"},
		{"missing-key", "1:", 1, 1, "no key after the colon"},
		{"bare-beside-versioned", a + "\n2:" + b, 1, 1, "a bare key is only allowed as the only entry"},
		{"two-bare-keys", a + "," + b, 1, 1, "a bare key is only allowed as the only entry"},
		{"empty-entry", "1:" + a + ",,2:" + b, 1, 2, "empty entry"},
		{"trailing-comma", "1:" + a + ",", 1, 2, "empty entry"},
		{"inline-comment", "1:" + a + " # old", 1, 1, "not valid standard base64"},
		{"key-in-version-position", a + ":1", 1, 1, "version must be a decimal number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyring.Parse(tt.src)
			se, ok := errors.AsType[*keyring.SourceError](err)
			if !ok {
				t.Fatalf("err = %v, want a *SourceError", err)
			}
			if se.Line != tt.line || se.Entry != tt.entry || !strings.Contains(se.Reason, tt.reason) {
				t.Fatalf("err = line %d, entry %d, %q; want line %d, entry %d, %q", se.Line, se.Entry, se.Reason, tt.line, tt.entry, tt.reason)
			}
			assertNoMaterial(t, err.Error(), secret(1), secret(2))
		})
	}
}

func TestNewKeyAndGenerate(t *testing.T) {
	if _, err := keyring.NewKey(0, secret(1)); err == nil {
		t.Error("NewKey(0, ...) succeeded")
	}
	if _, err := keyring.NewKey(1, secret(1)[:31]); err == nil {
		t.Error("NewKey with 31 bytes succeeded")
	}
	if _, err := keyring.Generate(rand.Reader, 0); err == nil {
		t.Error("Generate(version 0) succeeded")
	}
	if _, err := keyring.Generate(iotest.ErrReader(io.ErrUnexpectedEOF), 1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Generate with a failing reader: err = %v", err)
	}
	k1, err := keyring.Generate(rand.Reader, 4)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := keyring.Generate(rand.Reader, 4)
	if k1.Version() != 4 || keyring.Format(k1) == keyring.Format(k2) {
		t.Fatalf("Generate: version %d, distinct keys: %v", k1.Version(), keyring.Format(k1) != keyring.Format(k2))
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := mustKey(t, 3, 9)
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T"} {
		out = append(out, fmt.Sprintf(verb, k), fmt.Sprintf(verb, []keyring.Key{k}), fmt.Sprintf(verb, &k))
	}
	j, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"version":3}` {
		t.Fatalf("json.Marshal(key) = %s", j)
	}
	out = append(out, string(j))
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("text", "key", k, "keys", []keyring.Key{k})
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("json", "key", k, "keys", []keyring.Key{k})
	out = append(out, logs.String())
	all := strings.Join(out, "\n")
	assertNoMaterial(t, all, secret(9))
	if !strings.Contains(fmt.Sprint(k), "version: 3") || !strings.Contains(logs.String(), "key.version=3") {
		t.Fatalf("the version should be visible: %s", all)
	}
}

func TestLoadOrCreateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	keys, created, err := keyring.LoadOrCreateFile(path, rand.Reader)
	if err != nil || !created {
		t.Fatalf("first call: created = %v, err = %v", created, err)
	}
	if got := versions(keys); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("versions = %v, want [1]", got)
	}
	assertMode(t, path, 0o600)
	again, created, err := keyring.LoadOrCreateFile(path, rand.Reader)
	if err != nil || created {
		t.Fatalf("second call: created = %v, err = %v", created, err)
	}
	if keyring.Format(again...) != keyring.Format(keys...) {
		t.Fatal("second call returned a different key")
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# Gatehouse master key.") {
		t.Fatalf("generated file lacks its header:\n%s", data)
	}
	assertOnlyFile(t, dir, "master.key")
}

func TestLoadOrCreateFileErrors(t *testing.T) {
	t.Run("missing-directory", func(t *testing.T) {
		_, _, err := keyring.LoadOrCreateFile(filepath.Join(t.TempDir(), "nope", "master.key"), rand.Reader)
		if err == nil {
			t.Fatal("succeeded without a directory")
		}
	})
	t.Run("malformed-file-is-not-replaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "master.key")
		if err := os.WriteFile(path, []byte("1:nope\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := keyring.LoadOrCreateFile(path, rand.Reader)
		if se, ok := errors.AsType[*keyring.SourceError](err); !ok || se.Path != path || !strings.Contains(err.Error(), path+" line 1, entry 1") {
			t.Fatalf("err = %v, want a *SourceError for %s", err, path)
		}
		if data, _ := os.ReadFile(path); string(data) != "1:nope\n" {
			t.Fatalf("file changed to %q", data)
		}
	})
	t.Run("failing-random", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := keyring.LoadOrCreateFile(filepath.Join(dir, "master.key"), iotest.ErrReader(io.ErrUnexpectedEOF))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v", err)
		}
		assertOnlyFile(t, dir)
	})
}

func TestAppendVersionToFile(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(secret(1))
	tests := []struct {
		name   string
		before string
		mode   os.FileMode
		// wantPrefix is what must survive at the start of the file.
		wantPrefix string
		want       []uint32
	}{
		{"versioned-with-comments", "# keep me\n1:" + a + "\n", 0o600, "# keep me\n1:" + a + "\n2:", []uint32{1, 2}},
		{"no-trailing-newline", "1:" + a, 0o600, "1:" + a + "\n2:", []uint32{1, 2}},
		{"gap-in-versions", "1:" + a + ",5:" + base64.StdEncoding.EncodeToString(secret(5)), 0o600, "1:", []uint32{1, 5, 6}},
		{"bare-key-is-rewritten", a + "\n", 0o600, "1:" + a + "\n2:", []uint32{1, 2}},
		{"loose-mode-is-tightened", "1:" + a + "\n", 0o644, "1:" + a + "\n2:", []uint32{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "master.key")
			if err := os.WriteFile(path, []byte(tt.before), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // not subject to umask
				t.Fatal(err)
			}
			k, err := keyring.AppendVersionToFile(path, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want[len(tt.want)-1]
			if k.Version() != want {
				t.Fatalf("new version = %d, want %d", k.Version(), want)
			}
			data, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(data), tt.wantPrefix) || !strings.HasSuffix(string(data), keyring.Format(k)) {
				t.Fatalf("file =\n%s\nwant prefix\n%s\nand the new key last", data, tt.wantPrefix)
			}
			keys, err := keyring.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(keys); !slices.Equal(got, tt.want) {
				t.Fatalf("versions = %v, want %v", got, tt.want)
			}
			assertMode(t, path, 0o600)
			assertOnlyFile(t, dir, "master.key")
		})
	}
}

func TestAppendVersionToFileErrors(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(secret(1))
	tests := []struct {
		name   string
		before string
		rand   io.Reader
		want   string
	}{
		{"malformed", "1:" + a + "\n1:" + a + "\n", rand.Reader, "version 1 is defined twice"},
		{"highest-version-taken", "4294967295:" + a, rand.Reader, "already 4294967295"},
		{"failing-random", "1:" + a, iotest.ErrReader(io.ErrUnexpectedEOF), "unexpected EOF"},
		{"random-repeats-a-key", "1:" + a, bytes.NewReader(secret(1)), "refusing to write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "master.key")
			if err := os.WriteFile(path, []byte(tt.before), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := keyring.AppendVersionToFile(path, tt.rand)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			assertNoMaterial(t, err.Error(), secret(1))
			if data, _ := os.ReadFile(path); string(data) != tt.before {
				t.Fatalf("file changed to %q", data)
			}
			assertOnlyFile(t, dir, "master.key")
		})
	}
	t.Run("missing-file", func(t *testing.T) {
		_, err := keyring.AppendVersionToFile(filepath.Join(t.TempDir(), "master.key"), rand.Reader)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
	})
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("mode of %s = %v, want %v", path, got, want)
	}
}

// assertOnlyFile fails if dir holds anything but names (no temporary files
// left behind).
func assertOnlyFile(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}
