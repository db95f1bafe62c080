// Package sqlite is the embedded storage backend: one SQLite database file,
// driven by modernc.org/sqlite (pure Go, so the binary needs no cgo).
//
// # Connections
//
//	| pool   | size | settings                                   | used by                 |
//	| ------ | ---- | ------------------------------------------ | ----------------------- |
//	| writer | 1    | BEGIN IMMEDIATE, busy_timeout, WAL         | every write, migrations |
//	| reader | N    | query_only, busy_timeout                   | every read              |
//
// The writer pool has a single connection and begins every transaction
// IMMEDIATE, so writes are serialized in this process (by the pool) and
// against other processes using the same file (by SQLite's write lock, with
// busy_timeout as the wait). Readers never block the writer thanks to WAL.
//
// # Writes and the change feed
//
// A write transaction first bumps the one-row revision counter
// (UPDATE rev SET n = n + 1 RETURNING n), then writes the object and appends
// a changes row carrying that revision, then commits. A write that fails rolls
// the counter back with it, so revisions are gap-free and commit in order.
// After the commit, Notify subscribers of this Store are woken in-process; a
// second process writing the same file is seen by a Watcher's polling.
//
// Times are stored as INTEGER microseconds since the Unix epoch and come back
// as UTC.
package sqlite
