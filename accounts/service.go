package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Storage kinds of the records this package owns.
const (
	KindAccount = "accounts.account"
	KindUsage   = "accounts.usage"
)

// Sealer seals key material at rest (the keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Identities manages the managed identities accounts use (the directory).
// Optional: without it, accounts cannot have identities.
type Identities interface {
	// EnsureSystemIdentity returns the system-assigned identity of the
	// resource resourceID, creating it if it does not exist yet.
	EnsureSystemIdentity(ctx context.Context, resourceID, location string) (IdentityRef, error)
	// DeleteSystemIdentity deletes it; no error when there is none.
	DeleteSystemIdentity(ctx context.Context, resourceID string) error
	// UserIdentity returns the user-assigned identity with that ARM id, and
	// ok=false when there is none.
	UserIdentity(ctx context.Context, resourceID string) (ref IdentityRef, ok bool, err error)
}

// Options configure a Service.
type Options struct {
	// Sealer is required.
	Sealer Sealer
	// Identities enables managed identities on accounts.
	Identities Identities
	// Endpoint returns the data-plane URL advertised for a data-plane name
	// (properties.endpoint), e.g. https://H/ai/{name}/. Required.
	Endpoint func(dataPlaneName string) string
	Now      func() time.Time
	// Rand is the source of keys (default crypto/rand).
	Rand io.Reader
	// Retention is how long a deleted account stays recoverable
	// (softdelete.go): 0 means DefaultRetention, Azure's 48 hours; a
	// negative value turns soft delete off (Delete purges at once).
	Retention time.Duration
	// OnPurge, when set, runs before an account is deleted for good (a
	// purge, or a delete with soft delete off) with its ARM id: the node
	// deletes the role assignments at the account there. An error stops the
	// purge (a purge of a deleted account is retried by PurgeExpired), so
	// no grant outlives its account to be inherited by a new one of the
	// same name.
	OnPurge func(ctx context.Context, id string) error
	Logger  *slog.Logger
}

// Service manages AI accounts and their keys, and keeps the in-memory
// indexes the data plane reads (see doc.go). Safe for concurrent use.
type Service struct {
	accounts *storage.Table[record]
	usage    *storage.Table[usageRecord]
	// deployments are deleted with their account (deployment.go).
	deployments *storage.Table[deploymentRecord]
	watcher     *storage.Watcher
	opts        Options
	bg          context.Context

	mu     sync.RWMutex
	byKey  map[string]*entry // storage key (lower-case ARM id)
	byName map[string]*entry // data-plane name
	byHash map[[sha256.Size]byte]KeyMatch

	reload storage.Reloader

	// flushUsage, when set, stores the data plane's usage counts not yet
	// flushed (SetUsageFlusher).
	flushUsage atomic.Pointer[func(context.Context) error]
}

// SetUsageFlusher gives KeyUsage a way to store this node's usage counts
// before it reads the evidence: the data plane flushes them only every so
// often, and the key used a second ago is the one a regeneration must not
// take for unused. (Other nodes' counts still arrive with their next
// flush.)
func (s *Service) SetUsageFlusher(f func(context.Context) error) {
	s.flushUsage.Store(&f)
}

// entry is one account in the index.
type entry struct {
	acct   *Account
	hashes [2][sha256.Size]byte
}

// KeyMatch is what a presented key unlocks.
type KeyMatch struct {
	// Account is a snapshot of the account the key belongs to.
	Account *Account
	// Slot is Key1 or Key2; Generation the slot's generation.
	Slot       int
	Generation int64
}

// New returns the service over store and subscribes it to w. ctx is the
// node's background context (change callbacks read the store with it).
// Call Load after w.Start and before w.Run.
func New(ctx context.Context, store storage.Objects, w *storage.Watcher, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		accounts:    storage.NewTable[record](store, KindAccount),
		usage:       storage.NewTable[usageRecord](store, KindUsage),
		deployments: storage.NewTable[deploymentRecord](store, KindDeployment),
		watcher:     w, opts: opts, bg: ctx,
	}
	s.reload.Name, s.reload.Load, s.reload.Logger = "accounts", s.Load, opts.Logger
	s.reset(nil)
	w.Subscribe(s.apply, KindAccount)
	return s
}

// Load reads every account into the indexes.
func (s *Service) Load(ctx context.Context) error {
	recs, err := s.accounts.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("accounts: load: %w", err)
	}
	s.reset(recs)
	return nil
}

func (s *Service) reset(recs []*storage.Record[record]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey = make(map[string]*entry, len(recs))
	s.byName = make(map[string]*entry, len(recs))
	s.byHash = make(map[[sha256.Size]byte]KeyMatch, 2*len(recs))
	for _, r := range recs {
		s.putLocked(r)
	}
}

func (s *Service) putLocked(r *storage.Record[record]) {
	s.deleteLocked(r.Key)
	if r.Value.deleted() {
		// A soft-deleted account is not on the data plane: its keys, its
		// name and its id resolve to nothing until it is recovered.
		return
	}
	e := &entry{acct: r.Value.view(r.Revision, s.opts.Endpoint)}
	for slot := range 2 {
		h, err := hex.DecodeString(r.Value.Slots[slot].Hash)
		if err != nil || len(h) != sha256.Size {
			s.opts.Logger.Error("accounts: stored key hash is malformed; the slot accepts no key", "account", r.Key, "slot", SlotName(slot))
			continue
		}
		copy(e.hashes[slot][:], h)
		s.byHash[e.hashes[slot]] = KeyMatch{Account: e.acct, Slot: slot, Generation: e.acct.Keys[slot].Generation}
	}
	s.byKey[r.Key] = e
	s.byName[e.acct.DataPlaneName] = e
}

func (s *Service) deleteLocked(key string) {
	old, ok := s.byKey[key]
	if !ok {
		return
	}
	for _, h := range old.hashes {
		if m, ok := s.byHash[h]; ok && m.Account.Key() == key {
			delete(s.byHash, h)
		}
	}
	if s.byName[old.acct.DataPlaneName] == old {
		delete(s.byName, old.acct.DataPlaneName)
	}
	delete(s.byKey, key)
}

// apply is the change-feed callback.
func (s *Service) apply(c storage.Change) {
	ctx, cancel := context.WithTimeout(s.bg, 10*time.Second)
	defer cancel()
	if c.Reset {
		// Fell behind the feed's history: reload in revision order, or,
		// when storage is down, keep retrying in the background.
		if err := s.Load(ctx); err != nil {
			s.opts.Logger.Warn("accounts: reload after a feed reset failed; retrying", "err", err)
			go s.reload.Soon(s.bg)
		}
		return
	}
	r, err := s.accounts.Get(ctx, c.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.deleteLocked(c.Key)
	case err != nil:
		s.opts.Logger.Warn("accounts: re-reading an account failed; reloading", "err", err)
		go s.reload.Soon(s.bg)
	default:
		s.putLocked(r)
	}
}

// LookupKey returns what the presented key unlocks: the SHA-256 of the key
// is looked up in memory. The data plane calls it on every key-authenticated
// request; it never touches storage. Safe for concurrent use.
func (s *Service) LookupKey(key string) (KeyMatch, bool) {
	return s.LookupKeyHash(sha256.Sum256([]byte(key)))
}

// LookupKeyHash is LookupKey for a key already hashed with SHA-256.
func (s *Service) LookupKeyHash(sum [sha256.Size]byte) (KeyMatch, bool) {
	s.mu.RLock()
	m, ok := s.byHash[sum]
	s.mu.RUnlock()
	return m, ok
}

// ByDataPlaneName returns the account routed at /ai/{name}/ and
// {name}.cognitiveservices.H (name lower-case), from memory.
func (s *Service) ByDataPlaneName(name string) (*Account, bool) {
	s.mu.RLock()
	e, ok := s.byName[name]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.acct, true
}

// ByID returns the account with ARM id id (any case), from memory.
func (s *Service) ByID(id string) (*Account, bool) {
	s.mu.RLock()
	e, ok := s.byKey[lowerKey(id)]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.acct, true
}

func lowerKey(id string) string {
	if rid, err := gatehouse.ParseResourceID(id); err == nil {
		return rid.Key()
	}
	return id
}

// waitFor makes a write visible in this node's indexes before returning.
func (s *Service) waitFor(ctx context.Context, rev int64) error {
	if err := s.watcher.WaitFor(ctx, rev); err != nil {
		return fmt.Errorf("accounts: wait for change %d: %w", rev, err)
	}
	return nil
}

// unavailable maps a storage failure to a public 503; *gatehouse.Error and
// context errors pass through.
func unavailable(err error) error {
	if _, ok := gatehouse.AsError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return gatehouse.ErrUnavailable.WithCause(err)
}
