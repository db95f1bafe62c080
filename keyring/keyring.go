package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Errors, tested with errors.Is. The errors that wrap them name versions,
// never key material.
var (
	// ErrDecrypt: a sealed value is malformed, was altered, or was sealed
	// for another record (different additional data).
	ErrDecrypt = errors.New("keyring: cannot open sealed value")
	// ErrVersionUnavailable: a master key version that is needed (the one a
	// value is wrapped under, or the database's active one) is not loaded.
	ErrVersionUnavailable = errors.New("keyring: master key version not available")
	// ErrKeyMismatch: a loaded master key version differs from the key the
	// database recorded under that version number.
	ErrKeyMismatch = errors.New("keyring: master key does not match the database")
)

// keyringError carries a complete, readable message and a sentinel for
// errors.Is, so that messages need not end in the sentinel's text.
type keyringError struct {
	msg  string
	kind error
}

func (e *keyringError) Error() string { return e.msg }
func (e *keyringError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &keyringError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// Sealed value layout, format 1 (documented in doc.go).
const (
	format1      byte = 0x01
	headerSize        = 1 + 4 // format, version
	nonceSize         = 12    // GCM standard nonce
	tagSize           = 16    // GCM tag
	wrapNonceAt       = headerSize
	wrappedAt         = wrapNonceAt + nonceSize
	wrappedSize       = KeySize + tagSize
	valueNonceAt      = wrappedAt + wrappedSize
	valueAt           = valueNonceAt + nonceSize

	// Overhead is how many bytes Seal adds to a value.
	Overhead = valueAt + tagSize
)

// AAD returns the additional data that binds a sealed value to the record
// (kind, key) that holds it: kind, a NUL byte, key. Kinds are code
// constants without NUL, so the encoding is unambiguous.
func AAD(kind, key string) []byte {
	b := make([]byte, 0, len(kind)+1+len(key))
	b = append(b, kind...)
	b = append(b, 0)
	return append(b, key...)
}

// Version returns the master key version a sealed value is wrapped under,
// read from its header without authenticating anything.
func Version(sealed []byte) (uint32, error) {
	if len(sealed) < Overhead {
		return 0, errorf(ErrDecrypt, "keyring: cannot open sealed value: %d bytes, shorter than the %d-byte minimum", len(sealed), Overhead)
	}
	if sealed[0] != format1 {
		return 0, errorf(ErrDecrypt, "keyring: cannot open sealed value: unknown format 0x%02x", sealed[0])
	}
	return binary.BigEndian.Uint32(sealed[1:headerSize]), nil
}

// Options configure a Keyring.
type Options struct {
	// Rand supplies data keys and nonces; nil means crypto/rand.Reader. It
	// must be safe for concurrent use.
	Rand io.Reader
}

// Keyring seals and opens values with envelope encryption under a set of
// master key versions, one of which is active (used for new seals).
//
// Seal, Open, Rewrap and the accessors are safe for concurrent use and take
// no lock: they read an immutable snapshot of the loaded versions and the
// active one. The methods that change it (AddKeys, Reload, Rotate) are
// serialized among themselves and publish a new snapshot.
type Keyring struct {
	rand io.Reader

	mu    sync.Mutex // serializes writers of state
	state atomic.Pointer[ring]
}

// ring is one immutable snapshot of a Keyring's keys.
type ring struct {
	keks   map[uint32]*kek
	active *kek
	newest uint32
}

// kek is one loaded master key version: a key-encryption key.
type kek struct {
	version uint32
	aead    cipher.AEAD
	// check is the key check value, as stored in Meta (see checkValue).
	check []byte
}

// New returns a Keyring holding keys, with the newest version active,
// without consulting any database. Servers use Open, which checks the keys
// against the database and takes the active version from it; New is for
// tools and tests.
func New(keys []Key, opts Options) (*Keyring, error) {
	k, r, err := newKeyring(keys, opts)
	if err != nil {
		return nil, err
	}
	r.active = r.keks[r.newest]
	k.state.Store(r)
	return k, nil
}

// newKeyring returns a Keyring and the ring it will publish once the caller
// has chosen the active version.
func newKeyring(keys []Key, opts Options) (*Keyring, *ring, error) {
	if len(keys) == 0 {
		return nil, nil, errors.New("keyring: no master key")
	}
	k := &Keyring{rand: opts.Rand}
	if k.rand == nil {
		k.rand = rand.Reader
	}
	r := &ring{keks: make(map[uint32]*kek, len(keys))}
	if err := r.add(keys); err != nil {
		return nil, nil, err
	}
	return k, r, nil
}

// add loads keys into r (which must not yet be published). A version that
// is already loaded with the same material is skipped; with different
// material it is an error.
func (r *ring) add(keys []Key) error {
	for _, key := range keys {
		if key.version == 0 {
			return errors.New("keyring: master key version 0 is not allowed (zero Key?)")
		}
		kk, err := newKEK(key)
		if err != nil {
			return err
		}
		if old, ok := r.keks[key.version]; ok {
			if !hmac.Equal(old.check, kk.check) {
				return fmt.Errorf("keyring: master key version %d is given twice with different keys", key.version)
			}
			continue
		}
		r.keks[key.version] = kk
		r.newest = max(r.newest, key.version)
	}
	return nil
}

// clone returns a copy of r that can be changed and then published.
func (r *ring) clone() *ring {
	c := *r
	c.keks = make(map[uint32]*kek, len(r.keks))
	for v, kk := range r.keks {
		c.keks[v] = kk
	}
	return &c
}

func newKEK(key Key) (*kek, error) {
	aead, err := newGCM(key.secret[:])
	if err != nil {
		return nil, err
	}
	return &kek{version: key.version, aead: aead, check: checkValue(key)}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return aead, nil
}

// checkValue returns the key check value of a master key version:
// HMAC-SHA256(key, "gatehouse keyring check value v<N>"), truncated to 16
// bytes, hex-encoded. It identifies the key without revealing it: an HMAC
// under the key is as hard to invert as the key is to guess, and binding
// the version makes the values of two versions unrelated.
func checkValue(key Key) []byte {
	m := hmac.New(sha256.New, key.secret[:])
	m.Write([]byte("gatehouse keyring check value v" + strconv.FormatUint(uint64(key.version), 10)))
	return []byte(hex.EncodeToString(m.Sum(nil)[:16]))
}

// Active returns the version that Seal wraps new data keys under.
func (k *Keyring) Active() uint32 { return k.state.Load().active.version }

// Versions returns the loaded master key versions, ascending.
func (k *Keyring) Versions() []uint32 {
	r := k.state.Load()
	vs := make([]uint32, 0, len(r.keks))
	for v := range r.keks {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// versionList formats the loaded versions for error messages.
func (r *ring) versionList() string {
	vs := make([]string, 0, len(r.keks))
	for v := range r.keks {
		vs = append(vs, strconv.FormatUint(uint64(v), 10))
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}

// kek returns the loaded version v or an ErrVersionUnavailable error.
func (r *ring) kek(v uint32) (*kek, error) {
	if kk, ok := r.keks[v]; ok {
		return kk, nil
	}
	return nil, errorf(ErrVersionUnavailable, "keyring: master key version %d is not loaded (loaded: %s)", v, r.versionList())
}

// Seal encrypts value for the record that aad identifies (use AAD) and
// returns the sealed blob, Overhead bytes longer than value. Every call
// draws a fresh data key and fresh nonces, so sealing the same value twice
// gives unrelated blobs. It fails only if the random source fails.
func (k *Keyring) Seal(value, aad []byte) ([]byte, error) {
	kk := k.state.Load().active
	// One read for the data key and both nonces.
	var rnd [KeySize + 2*nonceSize]byte
	defer clear(rnd[:])
	if _, err := io.ReadFull(k.rand, rnd[:]); err != nil {
		return nil, fmt.Errorf("keyring: seal: read random: %w", err)
	}
	dek := rnd[:KeySize]
	dekAEAD, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, Overhead+len(value))
	out[0] = format1
	binary.BigEndian.PutUint32(out[1:headerSize], kk.version)
	copy(out[wrapNonceAt:wrappedAt], rnd[KeySize:KeySize+nonceSize])
	copy(out[valueNonceAt:valueAt], rnd[KeySize+nonceSize:])

	wrapAD, valueAD := additionalData(aad, out[:headerSize])
	kk.aead.Seal(out[wrappedAt:wrappedAt], out[wrapNonceAt:wrappedAt], dek, wrapAD)
	dekAEAD.Seal(out[valueAt:valueAt], out[valueNonceAt:valueAt], value, valueAD)
	return out, nil
}

// additionalData returns the GCM additional data of the two layers: the
// wrap layer binds aad, the format and the version; the value layer binds
// aad and the format only, so that Rewrap can change the version without
// touching the value ciphertext. Both are prefixes of one buffer.
func additionalData(aad, header []byte) (wrapAD, valueAD []byte) {
	b := make([]byte, 0, len(aad)+len(header))
	b = append(b, aad...)
	b = append(b, header...)
	return b, b[:len(aad)+1]
}

// Open decrypts a blob made by Seal (or Rewrap) for the record that aad
// identifies. Errors: ErrDecrypt when the blob is malformed, altered or
// belongs to another record; ErrVersionUnavailable when it is wrapped under
// a master key version that is not loaded.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	dek, err := k.unwrap(k.state.Load(), sealed, aad)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	dekAEAD, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	_, valueAD := additionalData(aad, sealed[:headerSize])
	value, err := dekAEAD.Open(nil, sealed[valueNonceAt:valueAt], sealed[valueAt:], valueAD)
	if err != nil {
		return nil, errorf(ErrDecrypt, "keyring: cannot open sealed value: value authentication failed (altered, or sealed for another record)")
	}
	return value, nil
}

// unwrap checks the header and returns the data key of sealed.
func (k *Keyring) unwrap(r *ring, sealed, aad []byte) ([]byte, error) {
	v, err := Version(sealed)
	if err != nil {
		return nil, err
	}
	kk, err := r.kek(v)
	if err != nil {
		return nil, err
	}
	wrapAD, _ := additionalData(aad, sealed[:headerSize])
	dek, err := kk.aead.Open(make([]byte, 0, KeySize), sealed[wrapNonceAt:wrappedAt], sealed[wrappedAt:valueNonceAt], wrapAD)
	if err != nil {
		return nil, errorf(ErrDecrypt, "keyring: cannot open sealed value: data key authentication failed (altered, sealed for another record, or master key version %d differs from the one that sealed it)", v)
	}
	return dek, nil
}

// Rewrap re-wraps the data key of sealed under the active master key
// version, leaving the value ciphertext as it is, and reports whether it
// changed anything. A blob already wrapped under the active version, or
// under a newer one (this Keyring has not yet learned of a rotation), is
// returned unchanged: Rewrap never moves a value to an older version.
//
// Rewrap authenticates the wrapped data key (with aad) in every case, so a
// blob that was altered in its header or wrap layer, or belongs to another
// record, fails with ErrDecrypt; it does not decrypt the value. The result
// is a new slice; sealed is not modified.
func (k *Keyring) Rewrap(sealed, aad []byte) ([]byte, bool, error) {
	r := k.state.Load()
	return k.rewrap(r, r.active, sealed, aad)
}

// rewrap re-wraps sealed under to, if it is wrapped under an older version.
func (k *Keyring) rewrap(r *ring, to *kek, sealed, aad []byte) ([]byte, bool, error) {
	dek, err := k.unwrap(r, sealed, aad)
	if err != nil {
		return nil, false, err
	}
	defer clear(dek)
	if v, _ := Version(sealed); v >= to.version {
		return sealed, false, nil
	}
	out := slices.Clone(sealed)
	binary.BigEndian.PutUint32(out[1:headerSize], to.version)
	if _, err := io.ReadFull(k.rand, out[wrapNonceAt:wrappedAt]); err != nil {
		return nil, false, fmt.Errorf("keyring: rewrap: read random: %w", err)
	}
	wrapAD, _ := additionalData(aad, out[:headerSize])
	to.aead.Seal(out[wrappedAt:wrappedAt], out[wrapNonceAt:wrappedAt], dek, wrapAD)
	return out, true, nil
}
