package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/internal/notify"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives migration and listener messages (default: discard).
	Logger *slog.Logger
	// Now is the clock for Created, Updated and change times
	// (default: time.Now).
	Now func() time.Time
	// ListenerName is the application_name of the LISTEN connection, as
	// pg_stat_activity shows it (default: "gatehouse-listen").
	ListenerName string
	// ReconnectMin and ReconnectMax bound the listener's exponential
	// backoff between reconnection attempts (defaults: 100ms and 10s).
	ReconnectMin, ReconnectMax time.Duration
}

// Store is a storage.Store on a PostgreSQL schema. It is safe for
// concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	listenC *pgx.ConnConfig // config of the LISTEN connection
	schema  string
	channel string // NOTIFY channel, derived from schema
	now     func() time.Time
	log     *slog.Logger
	backoff [2]time.Duration // min, max
	hub     *notify.Hub

	// onListen, when set (by tests), runs after the listener connects and
	// before it issues LISTEN.
	onListen func(pid uint32)

	mu         sync.Mutex
	closed     bool
	stopListen context.CancelFunc // nil until the first Notify
	listenDone chan struct{}

	closeOnce sync.Once
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database named by dsn (a URL or keyword/value
// string, as pgx parses it), applies any pending migrations to the current
// schema and returns the Store. Opening an already migrated schema changes
// nothing.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ListenerName == "" {
		opts.ListenerName = "gatehouse-listen"
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 100 * time.Millisecond
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 10 * time.Second
	}
	opts.ReconnectMax = max(opts.ReconnectMax, opts.ReconnectMin)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err) // pgx redacts the password
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	}
	listenC := cfg.ConnConfig.Copy()
	listenC.RuntimeParams["application_name"] = opts.ListenerName

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, listenC: listenC, now: opts.Now, log: opts.Logger,
		backoff: [2]time.Duration{opts.ReconnectMin, opts.ReconnectMax}, hub: notify.New()}

	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fail(ctx, "open", err)
	}
	if schema == nil {
		pool.Close()
		return nil, errors.New("postgres: open: no schema of search_path exists")
	}
	s.schema, s.channel = *schema, channelName(*schema)
	if err := s.migrate(ctx, cfg.ConnConfig); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// channelName returns the NOTIFY channel of schema. PostgreSQL channel
// names are identifiers (at most 63 bytes), so a long schema name is hashed.
func channelName(schema string) string {
	name := "gatehouse." + schema
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(schema))
		name = "gatehouse." + hex.EncodeToString(sum[:20])
	}
	return name
}

// migrate applies the embedded migrations with goose through a short-lived
// database/sql handle. A session-level advisory lock keyed by the schema
// makes nodes that start together migrate one after the other.
func (s *Store) migrate(ctx context.Context, cc *pgx.ConnConfig) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("gatehouse-migrate:" + s.schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64())),
		lock.WithLockTimeout(1, 300), // poll every second for five minutes
	)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDB(*cc.Copy())
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fail(ctx, "migrate", err)
	}
	for _, r := range res {
		s.log.Info("storage migration applied", "backend", "postgres", "schema", s.schema,
			"version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fail(ctx, "ping", err)
	}
	return nil
}

// Close stops the listener, closes Notify channels and the pool. It is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		stop, done := s.stopListen, s.listenDone
		s.mu.Unlock()
		if stop != nil {
			stop()
			<-done
		}
		s.hub.Close()
		s.pool.Close()
	})
	return nil
}

// nowUTC returns the store clock in storage form.
func (s *Store) nowUTC() time.Time { return storage.Now(s.now()) }

// writeTx runs fn in a READ COMMITTED transaction and commits it. fn
// returns the newest revision it wrote (0 if it wrote none to the feed);
// then the transaction notifies the channel before committing, and local
// subscribers are woken after the commit.
//
// READ COMMITTED is required, not a default we live with: each statement
// after the counter's row lock sees the writes committed before the lock was
// granted. Under REPEATABLE READ the snapshot could predate them.
func (s *Store) writeTx(ctx context.Context, fn func(tx pgx.Tx) (rev int64, err error)) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer func() {
		// A no-op after Commit. It must run even if ctx is done, and must
		// not hang on a dead connection.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	rev, err := fn(tx)
	if err != nil {
		return err
	}
	if rev > 0 {
		// Delivered to listeners only if and when the transaction commits.
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2::bigint::text)`, s.channel, rev); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if rev > 0 {
		s.hub.Wake()
	}
	return nil
}

// bump advances the revision counter inside tx and returns the new
// revision. It must be the first statement of a feed write: its row lock
// is what serializes writers.
func bump(ctx context.Context, tx pgx.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRow(ctx, `UPDATE rev SET n = n + 1 RETURNING n`).Scan(&rev)
	return rev, err
}

// appendChange records the write with revision rev in the change feed.
func appendChange(ctx context.Context, tx pgx.Tx, rev int64, kind, key string, op storage.Op, at time.Time) error {
	_, err := tx.Exec(ctx,
		`INSERT INTO changes (revision, kind, key, op, at) VALUES ($1, $2, $3, $4, $5)`,
		rev, kind, key, string(op), at)
	return err
}

// uniqueViolation is SQLSTATE unique_violation.
const uniqueViolation = "23505"

// isUniqueViolation reports whether err is a unique-constraint violation
// (of the primary key or of the alternate-key index).
func isUniqueViolation(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	return ok && e.Code == uniqueViolation
}

// fail wraps err for the caller. When ctx is done the context's error is
// reported, so callers can test errors.Is(err, context.Canceled).
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = cerr
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
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

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// ceilMicro rounds t up to a whole microsecond: a stored time (always whole
// microseconds) is before t exactly when it is before this bound.
func ceilMicro(t time.Time) time.Time {
	c := storage.Now(t)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
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
