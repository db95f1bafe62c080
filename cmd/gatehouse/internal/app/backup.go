package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// Backups are dump files (storage.WriteDump): the store's whole contents as
// of one revision, with every secret, key and signing key still sealed by
// the master key. A backup is taken while nodes serve; a restore writes
// into a store nothing has served from yet — a new data directory or an
// empty PostgreSQL database — so it is also how a deployment moves from the
// embedded SQLite database to PostgreSQL. The master key is not in the
// file: keep it with the backup, apart from it.

// BackupResult says what a backup or a restore held.
type BackupResult struct {
	Revision int64
	Written  time.Time
	Counts   storage.DumpCounts
	// Target names the store written to (restore) or read (backup).
	Target string
}

// describeStore names the configured store for messages, without the
// DSN's password.
func describeStore(cfg *Config) string {
	if cfg.Postgres != "" {
		c, err := pgconn.ParseConfig(cfg.Postgres)
		if err != nil {
			return "the PostgreSQL database of --postgres"
		}
		return fmt.Sprintf("PostgreSQL database %q on %s:%d", c.Database, c.Host, c.Port)
	}
	return "SQLite " + filepath.Join(cfg.DataDir, "gatehouse.db")
}

func dumperOf(s storage.Store) (storage.Dumper, error) {
	d, ok := s.(storage.Dumper)
	if !ok {
		return nil, fmt.Errorf("the %T backend cannot be backed up", s)
	}
	return d, nil
}

// Backup writes the configured store's contents to w, as one snapshot,
// while nodes keep serving.
func Backup(ctx context.Context, cfg Config, w io.Writer, now time.Time) (BackupResult, error) {
	res := BackupResult{Target: describeStore(&cfg), Written: now.UTC()}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	store, err := openStoreForTool(ctx, &cfg)
	if err != nil {
		return res, err
	}
	defer store.Close()
	d, err := dumperOf(store)
	if err != nil {
		return res, err
	}
	res.Revision, res.Counts, err = storage.WriteDump(ctx, w, d, now)
	if err != nil {
		return res, fmt.Errorf("backup of %s: %w", res.Target, err)
	}
	return res, nil
}

// BackupToFile writes a backup to path (0600) through a temporary file in
// the same directory, so path is either the complete backup or untouched.
func BackupToFile(ctx context.Context, cfg Config, path string, now time.Time) (res BackupResult, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return res, fmt.Errorf("backup file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return res, fmt.Errorf("backup file: %w", err)
	}
	if res, err = Backup(ctx, cfg, f, now); err != nil {
		return res, err
	}
	if err = f.Sync(); err != nil {
		return res, fmt.Errorf("backup file: %w", err)
	}
	if err = f.Close(); err != nil {
		return res, fmt.Errorf("backup file: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return res, fmt.Errorf("backup file: %w", err)
	}
	return res, syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openBackup reads the configured master key (never generating one) and
// the backup's first line.
func openBackup(cfg *Config, r io.Reader) (*restoreCheck, *storage.DumpReader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	src := ResolveKeySource(cfg)
	if src.Managed {
		if _, err := os.Stat(src.Path); err != nil {
			return nil, nil, fmt.Errorf("the backup's values are sealed with the master key of the node it was taken from, and %s does not exist: "+
				"copy master.key from that node's data directory there, or give the key with --master-key-file or GATEHOUSE_MASTER_KEY", src.Path)
		}
	}
	keys, _, err := src.Load(nil)
	if err != nil {
		return nil, nil, err
	}
	dump, err := storage.ReadDump(r)
	if err != nil {
		return nil, nil, err
	}
	return &restoreCheck{keys: keys, source: src.Describe(), meta: memMeta{}, rules: storage.DumpChecker{Revision: dump.Revision}}, dump, nil
}

// checked returns the backup's items one by one, each checked.
func (c *restoreCheck) checked(ctx context.Context, dump *storage.DumpReader) func() (storage.DumpItem, error) {
	return func() (storage.DumpItem, error) {
		it, err := dump.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && c.kr == nil {
				err = c.openKeyring(ctx) // a backup without objects
			}
			if err != nil {
				return it, err
			}
		}
		return it, c.item(ctx, it)
	}
}

// VerifyBackup reads a whole backup and checks it as Restore would —
// complete and intact, the store's rules, the configured master key opens
// every sealed value, the audit chain — without writing anywhere: the way
// to test a backup before it is needed.
func VerifyBackup(ctx context.Context, cfg Config, r io.Reader) (BackupResult, error) {
	res := BackupResult{Target: "nothing (verified only)"}
	check, dump, err := openBackup(&cfg, r)
	if err != nil {
		return res, err
	}
	res.Revision, res.Written = dump.Revision, dump.Written
	next := check.checked(ctx, dump)
	for {
		it, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = check.rules.Check(it)
		}
		if err != nil {
			res.Counts = dump.Counts()
			return res, fmt.Errorf("the backup does not verify: %w", err)
		}
	}
	res.Counts = dump.Counts()
	return res, nil
}

// Restore loads the backup in r into the configured store, which nothing
// may have served from. Before anything is kept it checks, item by item,
// what a node would check at start and more: the configured master key
// matches the backup's key check values and opens every sealed value, and
// the audit chain verifies. Any failure — a wrong key, a damaged or
// truncated file — leaves the store as it was.
func Restore(ctx context.Context, cfg Config, r io.Reader) (BackupResult, error) {
	res := BackupResult{Target: describeStore(&cfg)}
	check, dump, err := openBackup(&cfg, r)
	if err != nil {
		return res, err
	}
	res.Revision, res.Written = dump.Revision, dump.Written

	var store storage.Store
	if cfg.Postgres != "" {
		store, err = openPostgres(ctx, cfg.Postgres, nil, nil)
	} else {
		// The directory's lock keeps a serve from starting on it meanwhile.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return res, fmt.Errorf("data directory: %w", err)
		}
		lock, lerr := lockDataDir(cfg.DataDir)
		if lerr != nil {
			return res, lerr
		}
		defer lock.release()
		store, err = openSQLite(ctx, filepath.Join(cfg.DataDir, "gatehouse.db"), nil, nil)
	}
	if err != nil {
		return res, err
	}
	defer store.Close()
	d, err := dumperOf(store)
	if err != nil {
		return res, err
	}
	err = d.Load(ctx, dump.Revision, check.checked(ctx, dump))
	res.Counts = dump.Counts()
	if errors.Is(err, storage.ErrNotEmpty) {
		return res, fmt.Errorf("%s has already been used: restore only into a new data directory or an empty PostgreSQL database (%w)", res.Target, err)
	}
	if err != nil {
		return res, fmt.Errorf("restore into %s: nothing was written: %w", res.Target, err)
	}
	return res, nil
}

// restoreCheck verifies the items of a backup as they are loaded.
type restoreCheck struct {
	keys   []keyring.Key
	source string
	meta   memMeta
	kr     *keyring.Keyring
	chain  audit.Chain
	// rules are the store's (Load applies its own; VerifyBackup these).
	rules storage.DumpChecker
}

func (c *restoreCheck) openKeyring(ctx context.Context) error {
	kr, err := keyring.Open(ctx, c.meta, c.keys, keyring.Options{})
	if err != nil {
		return fmt.Errorf("the master key from %s does not match the backup: %w", c.source, err)
	}
	c.kr = kr
	return nil
}

func (c *restoreCheck) item(ctx context.Context, it storage.DumpItem) error {
	if it.Meta != nil {
		if c.kr == nil {
			c.meta[it.Meta.Name] = it.Meta.Value
		}
		return nil
	}
	if c.kr == nil {
		// Meta entries come first: the key check values are all known.
		if err := c.openKeyring(ctx); err != nil {
			return err
		}
	}
	if o := it.Object; o != nil && len(o.Sealed) > 0 {
		if _, err := c.kr.Open(o.Sealed, keyring.AAD(o.Kind, o.Key)); err != nil {
			return fmt.Errorf("the sealed value of %s %q does not open with the master key from %s: %w", o.Kind, o.Key, c.source, err)
		}
	}
	if a := it.Audit; a != nil {
		if err := c.chain.Next(a); err != nil {
			return fmt.Errorf("the backup's audit log does not verify: %w", err)
		}
	}
	return nil
}

// memMeta is the backup's meta entries, for keyring.Open to check the key
// against. What Open records in it is not kept: a node records its keys at
// start.
type memMeta map[string][]byte

func (m memMeta) GetMeta(_ context.Context, name string) ([]byte, error) {
	v, ok := m[name]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return v, nil
}

func (m memMeta) PutMeta(_ context.Context, name string, old, value []byte) error {
	if cur, ok := m[name]; ok != (old != nil) || (ok && string(cur) != string(old)) {
		return storage.ErrConflict
	}
	m[name] = value
	return nil
}
