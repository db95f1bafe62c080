package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// Revision implements storage.Feed.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.r.QueryRowContext(ctx, `SELECT n FROM rev`).Scan(&rev); err != nil {
		return 0, fail(ctx, "revision", err)
	}
	return rev, nil
}

// Changes implements storage.Feed.
//
// The changes table always holds a contiguous range of revisions ending at
// the current one (writes are gap-free, PruneChanges removes a prefix and
// keeps the newest). So one range read decides everything: if its first row
// is not after+1, the revisions in between were pruned; if it is empty,
// nothing newer exists.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]storage.Change, error) {
	const op = "changes"
	rows, err := s.r.QueryContext(ctx,
		`SELECT revision, kind, key, op FROM changes WHERE revision > ? ORDER BY revision LIMIT ?`,
		after, pageLimit(limit))
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []storage.Change
	for rows.Next() {
		var c storage.Change
		var o string
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Key, &o); err != nil {
			return nil, fail(ctx, op, err)
		}
		c.Op = storage.Op(o)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if len(out) > 0 && out[0].Revision > after+1 {
		return nil, fail(ctx, op, fmt.Errorf("%w: oldest retained revision is %d, asked for %d",
			storage.ErrHistoryGone, out[0].Revision, after+1))
	}
	return out, nil
}

// Notify implements storage.Feed: subscribers are woken after every commit
// of this Store. Writes by another process to the same file wake no one
// here; a Watcher's polling picks them up.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	return s.hub.Subscribe(ctx)
}

// PruneChanges implements storage.Feed. It removes the prefix of the
// history that ends before the first change at or after t, so the retained
// history stays contiguous even if the clock stepped back, and always keeps
// the newest change.
func (s *Store) PruneChanges(ctx context.Context, t time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM changes WHERE revision < coalesce(
			(SELECT min(revision) FROM changes WHERE at >= ?),
			(SELECT max(revision) FROM changes))`,
		ceilMicros(t))
	if err != nil {
		return 0, fail(ctx, "prune changes", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail(ctx, "prune changes", err)
	}
	return int(n), nil
}

// AppendAudit implements storage.Audit. The append runs in a write
// transaction, which holds the database's write lock, so appends (from this
// process or another) are serialized and the chain cannot fork. build runs
// under that lock and should only compute.
//
// The returned record must carry the seq and previous hash build was given,
// and a Time already in storage form (storage.Now): the hash covers the
// time, so storing a truncated copy would break the chain.
func (s *Store) AppendAudit(ctx context.Context, build func(seq int64, prevHash []byte) (*storage.AuditRecord, error)) (*storage.AuditRecord, error) {
	const op = "append audit"
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	var out *storage.AuditRecord
	var buildErr error
	err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		var last int64
		var prev []byte
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		rec, err := build(last+1, prev)
		if err != nil {
			buildErr = err
			return false, err
		}
		if err := checkAudit(rec, last+1, prev); err != nil {
			return false, err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO audit (seq, at, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?)`,
			rec.Seq, rec.Time.UnixMicro(), nonNil(rec.Data), nullBytes(rec.PrevHash), nonNil(rec.Hash))
		if err != nil {
			return false, err
		}
		out = &storage.AuditRecord{Seq: rec.Seq, Time: rec.Time.UTC(), Data: bytes.Clone(rec.Data),
			PrevHash: bytes.Clone(rec.PrevHash), Hash: bytes.Clone(rec.Hash)}
		return false, nil // the audit log is not part of the object feed
	})
	if buildErr != nil {
		return nil, buildErr
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// checkAudit verifies that rec continues the chain at seq after prev.
func checkAudit(rec *storage.AuditRecord, seq int64, prev []byte) error {
	switch {
	case rec == nil:
		return errors.New("storage: audit build returned no record")
	case rec.Seq != seq:
		return fmt.Errorf("storage: audit record has seq %d, want %d", rec.Seq, seq)
	case !bytes.Equal(rec.PrevHash, prev):
		return errors.New("storage: audit record does not chain to the previous hash")
	case rec.Time.IsZero() || !rec.Time.Equal(storage.Now(rec.Time)):
		return errors.New("storage: audit record time must be set and in storage form (storage.Now)")
	}
	return nil
}

// ListAudit implements storage.Audit.
func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]*storage.AuditRecord, error) {
	const op = "list audit"
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, at, data, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, pageLimit(limit))
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []*storage.AuditRecord
	for rows.Next() {
		var r storage.AuditRecord
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Data, &r.PrevHash, &r.Hash); err != nil {
			return nil, fail(ctx, op, err)
		}
		r.Time = fromMicros(at)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// LastAuditSeq implements storage.Audit.
func (s *Store) LastAuditSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit`).Scan(&seq); err != nil {
		return 0, fail(ctx, "last audit seq", err)
	}
	return seq, nil
}

// GetMeta implements storage.Meta.
func (s *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("get meta %q", name), err)
	}
	return nonNil(v), nil
}

// PutMeta implements storage.Meta as one conditional statement: an insert
// that does nothing if the name exists (old == nil), or an update guarded by
// the old value.
func (s *Store) PutMeta(ctx context.Context, name string, old, value []byte) error {
	op := fmt.Sprintf("put meta %q", name)
	var res sql.Result
	var err error
	if old == nil {
		res, err = s.w.ExecContext(ctx,
			`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, nonNil(value))
	} else {
		res, err = s.w.ExecContext(ctx,
			`UPDATE meta SET value = ? WHERE name = ? AND value = ?`, nonNil(value), name, old)
	}
	if err != nil {
		return fail(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return fail(ctx, op, storage.ErrConflict)
	}
	return nil
}
