// Package storage persists Gatehouse's records and publishes every committed
// change through a feed.
//
// Storage is dumb: it stores objects, enforces uniqueness of an object's key
// and alternate key within its kind, makes a one-object read-modify-write
// atomic through an updater closure, and numbers every committed write with
// a gap-free, monotonically increasing revision. Every rule (who may, expiry,
// rotation, soft delete) lives in the services above it.
//
// Objects are typed through Table[T]: a service declares
//
//	principals := storage.NewTable[principalRecord](store, "principal")
//
// and gets Create/Get/List/Update/Delete for that record type. The record
// type belongs to the service; storage sees JSON bytes, an optional sealed
// blob (encrypted by the keyring; storage never sees plaintext secrets) and
// the index columns Key, Alt and Ref.
//
// Backends: storage/sqlite (embedded default) and storage/postgres (several
// nodes). Both pass storage/storagetest.Run.
//
// # The change feed
//
//	write tx: bump revision → write object → append change(revision) → [NOTIFY] → commit
//	watcher:  wake on NOTIFY, on a local commit, or every PollInterval
//	          → Changes(after=last) → deliver in order → last = max revision
//
// Because revisions are gap-free and the changes table is read by range, a
// subscriber never misses a change: a lost notification or a reconnect only
// delays delivery until the next wake-up. If a subscriber falls behind the
// retained history, it is told to reload (Change.Reset).
package storage
