package keyring

import (
	"cmp"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// KeySize is the size in bytes of a master key and of a data key (AES-256).
const KeySize = 32

// Key is one version of the master key.
//
// The zero Key is invalid (version 0); make one with Parse, LoadFile,
// Generate or NewKey. Key never prints its material: every fmt verb,
// String, slog and encoding/json show only the version. Format is the one
// function that writes key material, for key files.
type Key struct {
	version uint32
	secret  [KeySize]byte
}

// NewKey returns version `version` of the master key with the given 32
// bytes of material (copied).
func NewKey(version uint32, secret []byte) (Key, error) {
	if version == 0 {
		return Key{}, errors.New("keyring: master key version 0 is not allowed; versions start at 1")
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("keyring: master key is %d bytes; want %d (AES-256)", len(secret), KeySize)
	}
	k := Key{version: version}
	copy(k.secret[:], secret)
	return k, nil
}

// Generate returns a new master key with the given version, its material
// read from rand (crypto/rand.Reader in production).
func Generate(rand io.Reader, version uint32) (Key, error) {
	var b [KeySize]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return Key{}, fmt.Errorf("keyring: generate master key: %w", err)
	}
	return NewKey(version, b[:])
}

// Version returns the key's version.
func (k Key) Version() uint32 { return k.version }

// String returns "keyring.Key{version: N}": never the material.
func (k Key) String() string { return fmt.Sprintf("keyring.Key{version: %d}", k.version) }

// Format implements fmt.Formatter so that no verb (%x and %d included,
// which would otherwise print the unexported array) reveals the material.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer: only the version is logged.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("version", uint64(k.version)))
}

// MarshalJSON returns {"version":N}: a Key that ends up in a JSON document
// (a config dump, a debug endpoint) shows which version it is, nothing more.
func (k Key) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"version":%d}`, k.version), nil
}

// Format returns keys in the key source format, one "<version>:<base64>"
// line each, in the order given. Its result is secret: it is meant for a
// key file or for printing a freshly generated key to the operator.
func Format(keys ...Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.FormatUint(uint64(k.version), 10))
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(k.secret[:]))
		b.WriteByte('\n')
	}
	return b.String()
}

// SourceError reports a malformed key source. It never contains key
// material nor any other text of the source: only positions and a reason.
type SourceError struct {
	// Path is the key file, "" when the source was parsed from a string.
	Path string
	// Line and Entry locate the offending entry (1-based; Entry counts the
	// comma-separated entries of the line). Both are 0 when the problem is
	// the source as a whole.
	Line, Entry int
	// Reason says what is wrong.
	Reason string
}

func (e *SourceError) Error() string {
	var b strings.Builder
	b.WriteString("keyring: ")
	if e.Path != "" {
		b.WriteString("master key file ")
		b.WriteString(e.Path)
	} else {
		b.WriteString("master key")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d, entry %d", e.Line, e.Entry)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Parse reads a key source: the value of GATEHOUSE_MASTER_KEY or the text of
// a key file (see the package documentation for the format). It returns
// the keys ordered by version. Errors are *SourceError.
func Parse(src string) ([]Key, error) {
	keys, _, err := parse(src)
	return keys, err
}

// LoadFile reads and parses a key file. It does not check the file's
// permissions: a mounted secret (Kubernetes, Docker) is often 0644 inside a
// private volume, and refusing it would help no one.
func LoadFile(path string) ([]Key, error) {
	keys, _, _, err := loadFile(path)
	return keys, err
}

func loadFile(path string) (keys []Key, data []byte, bare bool, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("keyring: read master key file: %w", err)
	}
	keys, bare, err = parse(string(data))
	if se, ok := errors.AsType[*SourceError](err); ok {
		se.Path = path
	}
	return keys, data, bare, err
}

// entry is one parsed entry of a key source, with its position.
type entry struct {
	line, index int
	key         Key
	bare        bool
}

// parse implements Parse and also reports whether the source was a single
// bare key (AppendVersionToFile must rewrite such a file).
func parse(src string) ([]Key, bool, error) {
	var entries []entry
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for j, field := range strings.Split(line, ",") {
			e, reason := parseEntry(strings.TrimSpace(field))
			if reason != "" {
				return nil, false, &SourceError{Line: i + 1, Entry: j + 1, Reason: reason}
			}
			e.line, e.index = i+1, j+1
			entries = append(entries, e)
		}
	}
	switch {
	case len(entries) == 0:
		return nil, false, &SourceError{Reason: "no key (want <version>:<base64 of 32 bytes>, or one bare base64 key)"}
	case len(entries) > 1:
		for _, e := range entries {
			if e.bare {
				return nil, false, &SourceError{Line: e.line, Entry: e.index,
					Reason: "entry has no version: a bare key is only allowed as the only entry"}
			}
		}
	}
	// Each version once, each key material once: the same material under
	// two versions would make a rotation between them a silent no-op, and is
	// almost certainly a copy-paste mistake.
	for i, e := range entries {
		for _, prev := range entries[:i] {
			if e.key.version == prev.key.version {
				return nil, false, &SourceError{Line: e.line, Entry: e.index,
					Reason: fmt.Sprintf("version %d is defined twice (first at line %d, entry %d)", e.key.version, prev.line, prev.index)}
			}
			if subtle.ConstantTimeCompare(e.key.secret[:], prev.key.secret[:]) == 1 {
				return nil, false, &SourceError{Line: e.line, Entry: e.index,
					Reason: fmt.Sprintf("versions %d and %d have the same key", prev.key.version, e.key.version)}
			}
		}
	}
	keys := make([]Key, len(entries))
	for i, e := range entries {
		keys[i] = e.key
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Compare(a.version, b.version) })
	return keys, entries[0].bare, nil
}

// parseEntry parses one trimmed, non-empty-line entry. It returns a reason
// instead of an error so that the caller adds the position; reasons never
// quote the entry.
func parseEntry(s string) (entry, string) {
	if s == "" {
		return entry{}, "empty entry (stray comma?)"
	}
	e := entry{key: Key{version: 1}, bare: true}
	b64 := s
	if v, k, ok := strings.Cut(s, ":"); ok {
		version, reason := parseVersion(strings.TrimSpace(v))
		if reason != "" {
			return entry{}, reason
		}
		e = entry{key: Key{version: version}}
		b64 = strings.TrimSpace(k)
		if b64 == "" {
			return entry{}, "no key after the colon"
		}
	}
	secret, err := base64.StdEncoding.Strict().DecodeString(b64)
	defer clear(secret)
	if err != nil {
		if ce, ok := errors.AsType[base64.CorruptInputError](err); ok {
			return entry{}, fmt.Sprintf("key is not valid standard base64 (bad input at character %d of the key)", int64(ce)+1)
		}
		return entry{}, "key is not valid standard base64"
	}
	if len(secret) != KeySize {
		return entry{}, fmt.Sprintf("key decodes to %d bytes; want %d (AES-256)", len(secret), KeySize)
	}
	copy(e.key.secret[:], secret)
	return e, ""
}

// parseVersion parses a version strictly: decimal digits, no sign, no
// leading zero, 1 to 4294967295. Strictness keeps "1" and "01" from naming
// the same version in two spellings.
func parseVersion(s string) (uint32, string) {
	const reason = "version must be a decimal number from 1 to 4294967295"
	if s == "0" {
		return 0, "version 0 is not allowed; versions start at 1"
	}
	if s == "" || s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, reason
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, reason
	}
	return uint32(v), ""
}

// generatedFileHeader heads a key file that Gatehouse generated.
const generatedFileHeader = `# Gatehouse master key. Generated by Gatehouse; keep it secret and back it up
# separately from the database: without it, sealed values cannot be read.
# Format: one <version>:<base64 of 32 bytes> per line; the highest version
# is used for new values after a rotation.
`

// LoadOrCreateFile loads the key file at path or, when there is none,
// creates it (mode 0600, atomically, never replacing a file another process
// created meanwhile) holding a new version-1 key from rand. created tells
// the caller to warn that production should supply its own key source.
// The directory must exist.
func LoadOrCreateFile(path string, rand io.Reader) (keys []Key, created bool, err error) {
	keys, err = LoadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, false, err
	}
	k, err := Generate(rand, 1)
	if err != nil {
		return nil, false, err
	}
	err = writeFileAtomic(path, []byte(generatedFileHeader+Format(k)), false)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use its key, not ours.
		keys, err = LoadFile(path)
		return keys, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return []Key{k}, true, nil
}

// AppendVersionToFile adds a new master key version to the key file at
// path — one more than its highest version, material from rand — and
// returns it. The file is replaced atomically with mode 0600; its existing
// lines and comments are kept, except that a file holding a single bare key
// is rewritten in the versioned form ("1:..." then the new line), since a
// bare key cannot sit beside other entries.
//
// The new version is not active until Keyring.Rotate runs. The
// read-modify-write is not locked against another process appending at the
// same moment; it is an operator action, run once.
func AppendVersionToFile(path string, rand io.Reader) (Key, error) {
	keys, data, bare, err := loadFile(path)
	if err != nil {
		return Key{}, err
	}
	newest := keys[len(keys)-1].version
	if newest == math.MaxUint32 {
		return Key{}, &SourceError{Path: path, Reason: "the highest version is already 4294967295"}
	}
	k, err := Generate(rand, newest+1)
	if err != nil {
		return Key{}, err
	}
	var out []byte
	if bare {
		out = []byte(Format(append(keys, k)...))
	} else {
		out = data
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, Format(k)...)
	}
	// Never write a file that would not load (e.g. a broken rand repeating
	// an existing key): the operator would find out at the next restart.
	if _, _, err := parse(string(out)); err != nil {
		return Key{}, fmt.Errorf("keyring: refusing to write %s: %w", path, err)
	}
	if err := writeFileAtomic(path, out, true); err != nil {
		return Key{}, err
	}
	return k, nil
}

// writeFileAtomic writes data to a new 0600 file next to path, syncs it and
// moves it into place: with rename when replace is set, else with link,
// which fails with fs.ErrExist instead of replacing a file. A crash leaves
// either the old file or the new one, never a partial key file.
func writeFileAtomic(path string, data []byte, replace bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("keyring: write master key file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		// After a link the temporary name is still there; after a rename
		// it is gone and this is a no-op.
		os.Remove(tmp)
		if err != nil {
			err = fmt.Errorf("keyring: write master key file %s: %w", path, err)
		}
	}()
	// CreateTemp already uses 0600; Chmod states the contract and does not
	// depend on that detail.
	if err = f.Chmod(0o600); err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some platforms and file systems cannot sync a directory; the file
	// itself is already synced, so that is not worth failing over.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
