package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// KeySource is where a node's master key versions come from: the
// environment, an operator's file, or the file generated into the data
// directory (Managed).
type KeySource struct {
	// Path is the key file; "" for the environment.
	Path string
	// Managed is true for the generated <data-dir>/master.key, the one
	// `gatehouse keyring rotate` may append versions to.
	Managed bool
	env     string
}

// ResolveKeySource returns the configured key source. It reads nothing.
func ResolveKeySource(cfg *Config) KeySource {
	switch {
	case cfg.MasterKey != "":
		return KeySource{env: cfg.MasterKey}
	case cfg.MasterKeyFile != "":
		return KeySource{Path: cfg.MasterKeyFile}
	default:
		return KeySource{Path: filepath.Join(cfg.DataDir, "master.key"), Managed: true}
	}
}

// Describe names the source for messages.
func (s KeySource) Describe() string {
	if s.Path == "" {
		return "GATEHOUSE_MASTER_KEY"
	}
	return s.Path
}

// Load reads the key versions. A managed file is created when missing
// (created reports it); other sources must exist.
func (s KeySource) Load(random io.Reader) (keys []keyring.Key, created bool, err error) {
	switch {
	case s.Path == "":
		keys, err = keyring.Parse(s.env)
	case s.Managed:
		keys, created, err = keyring.LoadOrCreateFile(s.Path, random)
	default:
		keys, err = keyring.LoadFile(s.Path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("master key from %s: %w", s.Describe(), err)
	}
	return keys, created, nil
}

// loadManagedKey reads the generated key file <data-dir>/master.key, and
// generates it only for a new store (checkManagedKey). store is the opened
// store; name describes it for messages.
func loadManagedKey(ctx context.Context, src KeySource, store storage.Meta, name string, random io.Reader) (keys []keyring.Key, created bool, err error) {
	if err := checkManagedKey(ctx, src, store, name); err != nil {
		return nil, false, err
	}
	return src.Load(random)
}

// checkManagedKey refuses a missing <data-dir>/master.key for a store that
// records a master key — it was served from, or restored into — since such
// a store opens only with that key: a generated one would be refused at
// the key check, and the file left behind would stand where the right key
// must go.
func checkManagedKey(ctx context.Context, src KeySource, store storage.Meta, name string) error {
	if _, err := os.Stat(src.Path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there is a file to read, or an error reading will tell
	}
	used, err := keyring.Initialized(ctx, store)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	if used {
		return fmt.Errorf("%s already holds data sealed with a master key, and no key was given: "+
			"put that key in %s (the master.key of the data directory it came from), "+
			"or give it with --master-key-file or GATEHOUSE_MASTER_KEY; "+
			"a new master key is generated only for a new, empty store", name, src.Path)
	}
	return nil
}

// sealer is the keyring as the services see it. When a value was sealed
// under a version this node has not loaded yet (a rotation just appended it
// to the key file), it re-reads the key source once and retries, so a
// rotation never makes a running node fail to open a value.
type sealer struct {
	kr     *keyring.Keyring
	meta   storage.Meta
	source KeySource

	mu       sync.Mutex
	lastLoad time.Time
}

func (s *sealer) Seal(plaintext, aad []byte) ([]byte, error) { return s.kr.Seal(plaintext, aad) }

func (s *sealer) Open(sealed, aad []byte) ([]byte, error) {
	b, err := s.kr.Open(sealed, aad)
	if errors.Is(err, keyring.ErrVersionUnavailable) && s.refresh(context.Background(), false) {
		return s.kr.Open(sealed, aad)
	}
	return b, err
}

// refresh re-reads a file key source and loads new versions, then adopts
// the database's active version. Without force it runs at most once a
// second. It reports whether it loaded anything.
func (s *sealer) refresh(ctx context.Context, force bool) bool {
	if s.source.Path == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && time.Since(s.lastLoad) < time.Second {
		return false
	}
	s.lastLoad = time.Now()
	keys, _, err := s.source.Load(nil)
	if err != nil {
		return false
	}
	before := len(s.kr.Versions())
	if err := s.kr.AddKeys(ctx, s.meta, keys...); err != nil {
		return false
	}
	s.kr.Reload(ctx, s.meta)
	return len(s.kr.Versions()) > before
}

// RotateMasterKey is `gatehouse keyring rotate`: it opens the store (a
// running node may have it open too), makes sure the key source holds a
// version newer than the active one — appending one to a managed key file —
// activates it and re-wraps every sealed value. Running nodes pick the new
// version up from the file and the database within seconds.
func RotateMasterKey(ctx context.Context, cfg Config, random io.Reader) (keyring.Rotation, error) {
	var rot keyring.Rotation
	if err := cfg.Validate(); err != nil {
		return rot, err
	}
	store, err := openStoreForTool(ctx, &cfg)
	if err != nil {
		return rot, err
	}
	defer store.Close()
	src := ResolveKeySource(&cfg)
	if src.Managed {
		if _, err := os.Stat(src.Path); err != nil {
			return rot, fmt.Errorf("master key %s: %w", src.Path, err)
		}
	}
	keys, _, err := src.Load(random)
	if err != nil {
		return rot, err
	}
	kr, err := keyring.Open(ctx, store, keys, keyring.Options{Rand: random})
	if err != nil {
		return rot, err
	}
	newest := kr.Versions()[len(kr.Versions())-1]
	if newest <= kr.Active() {
		if src.Path == "" {
			return rot, fmt.Errorf("GATEHOUSE_MASTER_KEY holds no version newer than the active version %d: add %d:<base64 key> to it on every node, restart them, then rotate", kr.Active(), kr.Active()+1)
		}
		k, err := keyring.AppendVersionToFile(src.Path, random)
		if err != nil {
			return rot, fmt.Errorf("master key %s: %w", src.Path, err)
		}
		if err := kr.AddKeys(ctx, store, k); err != nil {
			return rot, err
		}
	}
	return kr.Rotate(ctx, store)
}

// openStoreForTool opens the configured store without taking the data
// directory's serve lock (SQLite serializes writers across processes).
func openStoreForTool(ctx context.Context, cfg *Config) (storage.Store, error) {
	if cfg.Postgres != "" {
		return openPostgres(ctx, cfg.Postgres, nil, nil)
	}
	path := filepath.Join(cfg.DataDir, "gatehouse.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no Gatehouse database in %s (run gatehouse serve first, or pass --data-dir / --postgres)", cfg.DataDir)
	}
	return openSQLite(ctx, path, nil, nil)
}
