package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
	hlru "github.com/hashicorp/golang-lru/v2"
)

// Namespace and Type of vaults in ARM.
const (
	Namespace = "Microsoft.KeyVault"
	Type      = Namespace + "/vaults"
)

// Storage kinds of the records this package owns (see doc.go).
const (
	KindVault   = "vault.vault"
	KindSecret  = "vault.secret"
	KindVersion = "vault.secretversion"
)

// Sealer seals secret values at rest (the keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Authorizer is the authorization decision (authz.Service.Decide, reduced
// to what ResolveSecretReference needs): may the principal perform the
// data action at scope?
type Authorizer interface {
	AuthorizeData(principalID, action string, scope *gatehouse.ResourceID) bool
}

// Options configure a Service.
type Options struct {
	// Sealer is required.
	Sealer Sealer
	// VaultURI returns the data-plane URL of a vault by its data-plane
	// name: https://{name}.vault.H/ (with H's port). Required.
	VaultURI func(dataPlaneName string) string
	// Authorizer is needed by ResolveSecretReference only.
	Authorizer Authorizer
	// OnVaultPurged, when set, runs after a vault is purged (by request,
	// by the purge loop, or deleted without soft delete), with its ARM id:
	// the node removes the role assignments at it there, so that a vault
	// created later under the same id does not inherit them. An error
	// leaves the purge done and is returned (the loop logs it).
	OnVaultPurged func(ctx context.Context, id *gatehouse.ResourceID) error
	Now           func() time.Time
	// Rand is the source of version ids and internal ids (default crypto/rand).
	Rand   io.Reader
	Logger *slog.Logger
	// CacheSize bounds the in-memory cache of sealed secret records
	// (default 16384 entries; values stay sealed in it).
	CacheSize int
}

// Service manages vaults and their secrets. Safe for concurrent use.
type Service struct {
	vaults   *storage.Table[vaultRecord]
	secrets  *storage.Table[secretRecord]
	versions *storage.Table[versionRecord]
	store    storage.Objects
	watcher  *storage.Watcher
	opts     Options
	bg       context.Context

	mu     sync.RWMutex
	byKey  map[string]*Vault // lower-case ARM id → vault (deleted ones too)
	byName map[string]*Vault // data-plane name → live vault

	// The read cache holds decoded secret and version records, values
	// sealed. gen counts invalidations: a reader only fills the cache if no
	// change arrived between its snapshot of gen and its storage read.
	secretCache  *hlru.Cache[string, *storage.Record[secretRecord]]
	versionCache *hlru.Cache[string, *storage.Record[versionRecord]]
	gen          atomic.Uint64

	reload storage.Reloader
}

// New returns the service over store and subscribes it to w. ctx is the
// node's background context. Call Load after w.Start and before w.Run.
func New(ctx context.Context, store storage.Objects, w *storage.Watcher, opts Options) (*Service, error) {
	if opts.Sealer == nil || opts.VaultURI == nil {
		return nil, errors.New("vault: Sealer and VaultURI are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 16384
	}
	sc, err := hlru.New[string, *storage.Record[secretRecord]](opts.CacheSize)
	if err != nil {
		return nil, err
	}
	vc, err := hlru.New[string, *storage.Record[versionRecord]](opts.CacheSize)
	if err != nil {
		return nil, err
	}
	s := &Service{
		vaults:   storage.NewTable[vaultRecord](store, KindVault),
		secrets:  storage.NewTable[secretRecord](store, KindSecret),
		versions: storage.NewTable[versionRecord](store, KindVersion),
		store:    store, watcher: w, opts: opts, bg: ctx,
		secretCache: sc, versionCache: vc,
	}
	s.reload.Name, s.reload.Load, s.reload.Logger = "vault", s.Load, opts.Logger
	s.reset(nil)
	w.Subscribe(s.applyVault, KindVault)
	w.Subscribe(s.applySecret, KindSecret, KindVersion)
	return s, nil
}

// Load reads every vault into the index.
func (s *Service) Load(ctx context.Context) error {
	recs, err := s.vaults.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("vault: load: %w", err)
	}
	s.reset(recs)
	return nil
}

func (s *Service) reset(recs []*storage.Record[vaultRecord]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey = make(map[string]*Vault, len(recs))
	s.byName = make(map[string]*Vault, len(recs))
	for _, r := range recs {
		s.putLocked(r)
	}
}

func (s *Service) putLocked(r *storage.Record[vaultRecord]) {
	s.deleteLocked(r.Key)
	v := r.Value.view(r.Revision, s.opts.VaultURI)
	s.byKey[r.Key] = v
	if v.State == StateActive {
		s.byName[v.DataPlaneName] = v
	}
}

func (s *Service) deleteLocked(key string) {
	old, ok := s.byKey[key]
	if !ok {
		return
	}
	if s.byName[old.DataPlaneName] == old {
		delete(s.byName, old.DataPlaneName)
	}
	delete(s.byKey, key)
}

// applyVault is the change-feed callback for vaults.
func (s *Service) applyVault(c storage.Change) {
	ctx, cancel := context.WithTimeout(s.bg, 10*time.Second)
	defer cancel()
	if c.Reset {
		s.invalidate("")
		if err := s.Load(ctx); err != nil {
			s.opts.Logger.Warn("vault: reload after a feed reset failed; retrying", "err", err)
			go s.reload.Soon(s.bg)
		}
		return
	}
	r, err := s.vaults.Get(ctx, c.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.deleteLocked(c.Key)
	case err != nil:
		s.opts.Logger.Warn("vault: re-reading a vault failed; reloading", "err", err)
		go s.reload.Soon(s.bg)
	default:
		s.putLocked(r)
	}
}

// applySecret is the change-feed callback for secrets and versions: it
// drops the changed record from the read cache.
func (s *Service) applySecret(c storage.Change) {
	if c.Reset {
		s.invalidate("")
		return
	}
	s.invalidate(c.Key)
}

// Generation counts the changes to secrets this node has seen: each write
// made here (before it returns) and each change the feed delivers. A
// caller that keeps what ResolveSecretReference returned (the gateway's
// upstream credentials) keeps it only while the generation is unchanged:
// secret writes invalidate this node's cache directly rather than waiting
// for the feed, so the feed alone would let a just-deleted or just-rotated
// secret be served a moment longer.
func (s *Service) Generation() uint64 { return s.gen.Load() }

// invalidate drops key ("" = everything) from the read cache and bumps
// the generation, so that no read that started before it fills the cache
// with what it read.
func (s *Service) invalidate(key string) {
	s.gen.Add(1)
	if key == "" {
		s.secretCache.Purge()
		s.versionCache.Purge()
		return
	}
	s.secretCache.Remove(key)
	s.versionCache.Remove(key)
}

// VaultByName returns the live vault served at {name}.vault.H (name
// lower-case), from memory. The data plane calls it on every request.
func (s *Service) VaultByName(name string) (*Vault, bool) {
	s.mu.RLock()
	v, ok := s.byName[name]
	s.mu.RUnlock()
	return v, ok
}

// allVaults returns a snapshot of the index.
func (s *Service) allVaults() []*Vault {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Vault, 0, len(s.byKey))
	for _, v := range s.byKey {
		out = append(out, v)
	}
	return out
}

// waitFor makes a vault write visible in this node's index before
// returning (read-your-writes for the data plane).
func (s *Service) waitFor(ctx context.Context, rev int64) error {
	if err := s.watcher.WaitFor(ctx, rev); err != nil {
		return fmt.Errorf("vault: wait for change %d: %w", rev, err)
	}
	return nil
}

// newID returns 32 lower-case hex digits from the configured randomness.
func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("vault: randomness: %w", err)
	}
	const hexd = "0123456789abcdef"
	out := make([]byte, 32)
	for i, c := range b {
		out[2*i], out[2*i+1] = hexd[c>>4], hexd[c&15]
	}
	return string(out), nil
}

func (s *Service) now() time.Time { return storage.Now(s.opts.Now()) }

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

// lower is strings.ToLower without allocating for already lower-case
// ASCII (names on the hot path usually are).
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
