package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/internal/notify"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives migration and background messages (default: discard).
	Logger *slog.Logger
	// Now is the clock for Created, Updated and change times
	// (default: time.Now).
	Now func() time.Time
	// BusyTimeout is how long a statement waits for another process's lock
	// before failing with SQLITE_BUSY (default: 5s).
	BusyTimeout time.Duration
	// ReadConns caps the reader pool (default: max(4, GOMAXPROCS)).
	ReadConns int
}

// Store is a storage.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w, r *sql.DB // single-connection writer, reader pool
	now  func() time.Time
	log  *slog.Logger
	hub  *notify.Hub

	closeOnce sync.Once
	closeErr  error
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies any
// pending migrations and returns the Store. Opening a database that is
// already migrated changes nothing.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	busy := "busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")"

	// The writer sets WAL (a persistent property of the file) before any
	// reader connects, because migrations run on it first.
	w, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_txlock": {"immediate"},
		"_pragma": {busy, "journal_mode(WAL)", "foreign_keys(1)"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {busy, "foreign_keys(1)", "query_only(1)"},
	}))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)

	s := &Store{w: w, r: r, now: opts.Now, log: opts.Logger, hub: notify.New()}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// dsn returns a file: URI for path with the driver's query parameters. The
// URI form keeps a path containing '?' or '#' intact.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	if u.Path[0] != '/' { // Windows: C:/x → /C:/x
		u.Path = "/" + u.Path
	}
	return u.String()
}

// migrate applies the embedded migrations with goose on the writer
// connection. goose keeps its version table (goose_db_version) in the same
// file, so a second run finds nothing to do.
//
// Two processes opening a brand-new file at the same instant may both try
// to create the schema; the loser fails its Open and can simply retry.
func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("storage migration applied", "backend", "sqlite", "version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// Ping checks that both pools can reach the file.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes Notify channels and both pools. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.hub.Close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

// nowUTC returns the store clock in storage form.
func (s *Store) nowUTC() time.Time { return storage.Now(s.now()) }

// writeTx runs fn in a BEGIN IMMEDIATE transaction on the writer connection
// and commits it. When fn reports that it changed the feed, subscribers are
// woken after the commit.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) (feed bool, err error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	feed, err := fn(tx)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if feed {
		s.hub.Wake()
	}
	return nil
}

// bump advances the revision counter inside tx and returns the new
// revision. It must be the first statement of a feed write.
func bump(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, `UPDATE rev SET n = n + 1 RETURNING n`).Scan(&rev)
	return rev, err
}

// appendChange records the write with revision rev in the change feed.
func appendChange(ctx context.Context, tx *sql.Tx, rev int64, kind, key string, op storage.Op, at time.Time) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO changes (revision, kind, key, op, at) VALUES (?, ?, ?, ?, ?)`,
		rev, kind, key, string(op), at.UnixMicro())
	return err
}

// constraint returns the extended SQLite result code of a constraint
// violation in err, or 0.
func constraint(err error) int {
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch c := e.Code(); c {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return c
		}
	}
	return 0
}

// fail wraps err for the caller. When ctx is done the context's error is
// reported (the driver's "interrupted" would hide why), so callers can test
// errors.Is(err, context.Canceled).
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = cerr
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// nullString maps "" to NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes maps an empty blob to NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nonNil maps a nil blob to an empty one, for NOT NULL columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullTime maps the zero time to NULL and anything else to microseconds.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros converts stored microseconds back to UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// ceilMicros returns t in microseconds, rounded up: a stored time (always
// whole microseconds) is before t exactly when it is before this bound.
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return us
}

// pageLimit applies ListOptions' Limit contract.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return storage.DefaultPageSize
	case n > storage.MaxPageSize:
		return storage.MaxPageSize
	}
	return n
}
