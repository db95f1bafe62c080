package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/storage"
)

// Revision implements storage.Feed.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT n FROM rev`).Scan(&rev); err != nil {
		return 0, fail(ctx, "revision", err)
	}
	return rev, nil
}

// Changes implements storage.Feed.
//
// The changes table always holds a contiguous range of revisions ending at
// the current one: writers commit in revision order under the counter's
// lock, PruneChanges removes a prefix and keeps the newest. So one range
// read (one snapshot) decides everything: if its first row is not after+1,
// the revisions in between were pruned; if it is empty, nothing newer is
// committed.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]storage.Change, error) {
	const op = "changes"
	rows, err := s.pool.Query(ctx,
		`SELECT revision, kind, key, op FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2`,
		after, pageLimit(limit))
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Change, error) {
		var c storage.Change
		var o string
		err := r.Scan(&c.Revision, &c.Kind, &c.Key, &o)
		c.Op = storage.Op(o)
		return c, err
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	if len(out) > 0 && out[0].Revision > after+1 {
		return nil, fail(ctx, op, fmt.Errorf("%w: oldest retained revision is %d, asked for %d",
			storage.ErrHistoryGone, out[0].Revision, after+1))
	}
	return out, nil
}

// PruneChanges implements storage.Feed. It removes the prefix of the
// history that ends before the first change at or after t, so the retained
// history stays contiguous even if node clocks disagree, and always keeps
// the newest change.
func (s *Store) PruneChanges(ctx context.Context, t time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM changes WHERE revision < coalesce(
			(SELECT min(revision) FROM changes WHERE at >= $1),
			(SELECT max(revision) FROM changes))`,
		ceilMicro(t))
	if err != nil {
		return 0, fail(ctx, "prune changes", err)
	}
	return int(tag.RowsAffected()), nil
}

// AppendAudit implements storage.Audit. The transaction locks the audit
// table against other appenders (EXCLUSIVE mode still lets readers in), so
// appends from every node are serialized and the chain cannot fork. Audit
// appends do not take the revision counter: they are not in the object
// feed and need not wait for object writers. build runs under the lock and
// should only compute.
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
	err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		if _, err := tx.Exec(ctx, `LOCK TABLE audit IN EXCLUSIVE MODE`); err != nil {
			return 0, err
		}
		var last int64
		var prev []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return 0, err
		}
		rec, err := build(last+1, prev)
		if err != nil {
			buildErr = err
			return 0, err
		}
		if err := checkAudit(rec, last+1, prev); err != nil {
			return 0, err
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO audit (seq, at, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)`,
			rec.Seq, rec.Time, nonNil(rec.Data), nullBytes(rec.PrevHash), nonNil(rec.Hash))
		if err != nil {
			return 0, err
		}
		out = &storage.AuditRecord{Seq: rec.Seq, Time: rec.Time.UTC(), Data: bytes.Clone(rec.Data),
			PrevHash: bytes.Clone(rec.PrevHash), Hash: bytes.Clone(rec.Hash)}
		return 0, nil // the audit log is not part of the object feed
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
	rows, err := s.pool.Query(ctx,
		`SELECT seq, at, data, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`,
		after, pageLimit(limit))
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*storage.AuditRecord, error) {
		var a storage.AuditRecord
		err := r.Scan(&a.Seq, &a.Time, &a.Data, &a.PrevHash, &a.Hash)
		a.Time = a.Time.UTC()
		return &a, err
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// LastAuditSeq implements storage.Audit.
func (s *Store) LastAuditSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit`).Scan(&seq); err != nil {
		return 0, fail(ctx, "last audit seq", err)
	}
	return seq, nil
}

// GetMeta implements storage.Meta.
func (s *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
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
	var err error
	var n int64
	if old == nil {
		tag, e := s.pool.Exec(ctx,
			`INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, nonNil(value))
		n, err = tag.RowsAffected(), e
	} else {
		tag, e := s.pool.Exec(ctx,
			`UPDATE meta SET value = $1 WHERE name = $2 AND value = $3`, nonNil(value), name, old)
		n, err = tag.RowsAffected(), e
	}
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return fail(ctx, op, storage.ErrConflict)
	}
	return nil
}
