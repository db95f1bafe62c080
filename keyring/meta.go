package keyring

import (
	"cmp"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse/storage"
)

// Names in storage.Meta.
const (
	metaActive    = "keyring/active"
	metaKCVPrefix = "keyring/kcv/"
)

// casAttempts bounds the retries of a compare-and-swap on Meta. Each retry
// means another node wrote the same name meanwhile; after that its value is
// settled, so two attempts are enough and the rest is margin.
const casAttempts = 10

// The hint that ends the errors an operator fixes in the key source. The
// names are the server's configuration (cmd/gatehouse); they are here
// because the first thing to tell someone whose key does not match is
// where the key came from.
const keySourceHint = "GATEHOUSE_MASTER_KEY or --master-key-file"

// SealedStore is what Rotate and CountVersions need of a store;
// storage.Store provides it.
type SealedStore interface {
	storage.Meta
	RewrapSealed(ctx context.Context, fn func(kind, key string, sealed []byte) ([]byte, error)) (int, error)
}

// Open returns a Keyring holding keys after checking them against the
// database's bookkeeping in meta:
//
//   - every version whose key check value (KCV) the database holds must
//     match it (else an ErrKeyMismatch error naming the version);
//   - the database's active version must be among keys (else an
//     ErrVersionUnavailable error);
//   - versions the database has not seen get their KCV recorded;
//   - on an empty database, the newest version becomes active.
//
// The checks run before anything is written, so a wrong key leaves the
// database untouched. Concurrent Opens of several nodes are safe: every
// write is a compare-and-swap, and losing one re-reads the winner's value.
func Open(ctx context.Context, meta storage.Meta, keys []Key, opts Options) (*Keyring, error) {
	k, r, err := newKeyring(keys, opts)
	if err != nil {
		return nil, err
	}
	active, found, err := getActive(ctx, meta)
	if err != nil {
		return nil, err
	}
	missing, err := verifyKeys(ctx, meta, r.sorted())
	if err != nil {
		return nil, err
	}
	if found {
		if _, err := r.kek(active); err != nil {
			return nil, activeUnavailable(r, active)
		}
	}
	if err := recordKeys(ctx, meta, missing); err != nil {
		return nil, err
	}
	if !found {
		// Empty database. The KCVs are recorded first, so a crash here
		// leaves a database that the next Open treats the same way.
		if active, err = activate(ctx, meta, r.newest); err != nil {
			return nil, err
		}
		if _, err := r.kek(active); err != nil { // another node initialized it first, with a newer key
			return nil, activeUnavailable(r, active)
		}
	}
	r.active = r.keks[active]
	k.state.Store(r)
	return k, nil
}

func activeUnavailable(r *ring, active uint32) error {
	return errorf(ErrVersionUnavailable,
		"keyring: this database's active master key version %d is not available locally (loaded: %s): add it to %s",
		active, r.versionList(), keySourceHint)
}

// sorted returns the loaded versions in ascending order.
func (r *ring) sorted() []*kek {
	out := make([]*kek, 0, len(r.keks))
	for _, kk := range r.keks {
		out = append(out, kk)
	}
	slices.SortFunc(out, func(a, b *kek) int { return cmp.Compare(a.version, b.version) })
	return out
}

// AddKeys loads more master key versions into a running Keyring — after the
// key file gained a version (AppendVersionToFile, or the operator) — with
// the checks of Open: a version the database knows must match its KCV, a
// new one gets its KCV recorded. The active version does not change; Rotate
// changes it. Versions already loaded with the same material are ignored.
func (k *Keyring) AddKeys(ctx context.Context, meta storage.Meta, keys ...Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.state.Load().clone()
	if err := r.add(keys); err != nil {
		return err
	}
	var added []*kek
	for _, key := range keys {
		added = append(added, r.keks[key.version])
	}
	missing, err := verifyKeys(ctx, meta, added)
	if err != nil {
		return err
	}
	if err := recordKeys(ctx, meta, missing); err != nil {
		return err
	}
	k.state.Store(r)
	return nil
}

// Reload makes the database's active version this Keyring's active version
// if it is newer. A server calls it periodically (Meta is not in the change
// feed) so that a rotation started on another node reaches every node; it
// costs one read. Reload never lowers the active version: a read that raced
// with a Rotate must not undo it.
//
// If the active version is not loaded here, Reload returns an
// ErrVersionUnavailable error and the Keyring keeps sealing under its
// current version: such values stay readable everywhere, and a repeated
// Rotate re-wraps them once this node has the key.
func (k *Keyring) Reload(ctx context.Context, meta storage.Meta) error {
	active, found, err := getActive(ctx, meta)
	if err != nil {
		return err
	}
	if !found {
		return errors.New("keyring: the database records no active master key version (keyring.Open was not run on it)")
	}
	return k.raiseActive(active)
}

// raiseActive makes v the active version unless the active one is newer.
func (k *Keyring) raiseActive(v uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.state.Load()
	if r.active.version >= v {
		return nil
	}
	kk, ok := r.keks[v]
	if !ok {
		return activeUnavailable(r, v)
	}
	r = r.clone()
	r.active = kk
	k.state.Store(r)
	return nil
}

// Rotation reports what Rotate did.
type Rotation struct {
	// From is the active version before the rotation, To the one after; they
	// are equal when the newest version was already active (Rotate then only
	// finishes re-wrapping, e.g. after an interrupted run).
	From, To uint32
	// Rewrapped is how many values the walk re-wrapped (the replacements
	// RewrapSealed reports it wrote).
	Rewrapped int
}

// Rotate makes the newest loaded version active and re-wraps every sealed
// value in store under it:
//
//  1. record (or verify) the newest version's KCV, so that no node can seal
//     under that version number with a different key;
//  2. compare-and-swap the database's active version to it, and switch this
//     Keyring to it;
//  3. re-wrap every sealed value whose version is older (store.RewrapSealed,
//     as Rewrap does; value ciphertexts are unchanged).
//
// There is no downtime: the older versions stay loaded, so every value
// opens before, during and after the walk. Rotate is idempotent; running it
// again resumes an interrupted walk and catches values sealed by nodes that
// had not yet reloaded the active version. It refuses (ErrVersionUnavailable)
// when the database's active version is newer than every loaded one.
func (k *Keyring) Rotate(ctx context.Context, store SealedStore) (Rotation, error) {
	r := k.state.Load()
	newest := r.keks[r.newest]
	missing, err := verifyKeys(ctx, store, []*kek{newest})
	if err != nil {
		return Rotation{}, err
	}
	if err := recordKeys(ctx, store, missing); err != nil {
		return Rotation{}, err
	}
	from, _, err := getActive(ctx, store)
	if err != nil {
		return Rotation{}, err
	}
	active, err := activate(ctx, store, newest.version)
	if err != nil {
		return Rotation{}, err
	}
	if active != newest.version {
		return Rotation{}, errorf(ErrVersionUnavailable,
			"keyring: this database's active master key version %d is newer than every local version (loaded: %s): add it to %s",
			active, r.versionList(), keySourceHint)
	}
	if err := k.raiseActive(active); err != nil {
		return Rotation{}, err
	}
	// The walk re-wraps under newest explicitly rather than under whatever
	// is active when each value is visited.
	n, err := store.RewrapSealed(ctx, func(kind, key string, sealed []byte) ([]byte, error) {
		out, changed, err := k.rewrap(k.state.Load(), newest, sealed, AAD(kind, key))
		if err != nil {
			// Kind and key name the record, which is not secret.
			return nil, fmt.Errorf("keyring: rewrap %s %q: %w", kind, key, err)
		}
		if !changed {
			return nil, nil
		}
		return out, nil
	})
	rot := Rotation{From: from, To: active, Rewrapped: n}
	if err != nil {
		return rot, fmt.Errorf("keyring: rotation to version %d: %w (run it again to resume)", active, err)
	}
	return rot, nil
}

// CountVersions walks every sealed value in store and counts them by the
// master key version they are wrapped under; malformed blobs count under
// version 0. A version with no values left can be removed from the key
// source, unless it is the active one. The walk writes nothing.
func CountVersions(ctx context.Context, store SealedStore) (map[uint32]int, error) {
	counts := map[uint32]int{}
	_, err := store.RewrapSealed(ctx, func(_, _ string, sealed []byte) ([]byte, error) {
		v, _ := Version(sealed)
		counts[v]++
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: count versions: %w", err)
	}
	return counts, nil
}

// Initialized reports whether the database records an active master key
// version: Open has run on it, or a restore copied a database's records
// into it. Such a database opens only with the keys it records, so a key
// source made up now cannot serve it: generate a key only when this is
// false.
func Initialized(ctx context.Context, meta storage.Meta) (bool, error) {
	_, found, err := getActive(ctx, meta)
	return found, err
}

// getActive reads the database's active version; found is false on an
// empty database.
func getActive(ctx context.Context, meta storage.Meta) (v uint32, found bool, err error) {
	b, err := meta.GetMeta(ctx, metaActive)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("keyring: read %s: %w", metaActive, err)
	}
	v, reason := parseVersion(string(b))
	if reason != "" {
		return 0, false, fmt.Errorf("keyring: the database's %s is malformed: %s", metaActive, reason)
	}
	return v, true, nil
}

// activate moves the database's active version up to v by compare-and-swap
// and returns the active version afterwards: v, or a newer one another node
// set (the active version never goes down).
func activate(ctx context.Context, meta storage.Meta, v uint32) (uint32, error) {
	for range casAttempts {
		cur, found, err := getActive(ctx, meta)
		if err != nil {
			return 0, err
		}
		if found && cur >= v {
			return cur, nil
		}
		var old []byte
		if found {
			old = []byte(strconv.FormatUint(uint64(cur), 10))
		}
		err = meta.PutMeta(ctx, metaActive, old, []byte(strconv.FormatUint(uint64(v), 10)))
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return 0, fmt.Errorf("keyring: write %s: %w", metaActive, err)
		}
	}
	return 0, fmt.Errorf("keyring: write %s: still conflicting after %d attempts", metaActive, casAttempts)
}

func kcvName(v uint32) string { return metaKCVPrefix + strconv.FormatUint(uint64(v), 10) }

// verifyKeys checks each kek against the KCV the database holds for its
// version and returns those it holds none for. Every mismatch is reported
// (errors.Join). It writes nothing.
func verifyKeys(ctx context.Context, meta storage.Meta, keks []*kek) (missing []*kek, err error) {
	var errs []error
	for _, kk := range keks {
		stored, err := meta.GetMeta(ctx, kcvName(kk.version))
		if errors.Is(err, storage.ErrNotFound) {
			missing = append(missing, kk)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keyring: read %s: %w", kcvName(kk.version), err)
		}
		if !hmac.Equal(stored, kk.check) {
			errs = append(errs, mismatch(kk.version))
		}
	}
	return missing, errors.Join(errs...)
}

func mismatch(v uint32) error {
	return errorf(ErrKeyMismatch,
		"keyring: master key version %d does not match this database (key check value differs): wrong %s?", v, keySourceHint)
}

// recordKeys records the KCV of each kek whose version the database has not
// seen. A version is trusted on first sight: once recorded, a different key
// under that number is refused everywhere (a version recorded by mistake is
// retired by using the next number). If another node records the same
// version meanwhile, its value is verified instead.
func recordKeys(ctx context.Context, meta storage.Meta, keks []*kek) error {
	for _, kk := range keks {
		name := kcvName(kk.version)
		err := meta.PutMeta(ctx, name, nil, kk.check)
		if errors.Is(err, storage.ErrConflict) {
			var stored []byte
			if stored, err = meta.GetMeta(ctx, name); err == nil && !hmac.Equal(stored, kk.check) {
				return mismatch(kk.version)
			}
		}
		if err != nil {
			return fmt.Errorf("keyring: record %s: %w", name, err)
		}
	}
	return nil
}
