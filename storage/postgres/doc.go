// Package postgres is the storage backend for several nodes sharing one
// PostgreSQL database, driven by github.com/jackc/pgx/v5.
//
// # Schemas
//
// Everything lives in the connection's current schema, the first existing
// schema of search_path, which the DSN may set (a search_path=NAME query
// parameter, or options=-c search_path=NAME). The goose version table lives
// there too, so deployments or test runs sharing a database stay apart.
//
// # Writes and the change feed
//
//	BEGIN (READ COMMITTED)
//	UPDATE rev SET n = n + 1 RETURNING n   -- row lock: writers queue here
//	INSERT/UPDATE/DELETE objects ...
//	INSERT INTO changes (revision = n) ...; pg_notify(channel, n)
//	COMMIT
//
// The row lock on the one-row counter serializes writers, so revisions are
// gap-free (a rolled-back write rolls its bump back) and commit in revision
// order. Because every statement after the lock reads the newest committed
// data (READ COMMITTED), a read-modify-write under the lock cannot lose an
// update.
//
// Notify wakes subscribers after local commits and, through a dedicated
// LISTEN connection, after commits of other nodes. The listener reconnects
// with backoff after any error and wakes every subscriber after each
// (re)connect: whatever was committed while it was deaf is then read from
// the changes table. That wake-up is the gap repair; the Watcher's periodic
// poll is the last safety net.
package postgres
