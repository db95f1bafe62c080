package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/storage"
)

var _ storage.Dumper = (*Store)(nil)

// loadBatch is how many rows Load sends in one round trip.
const loadBatch = 256

// Dump implements storage.Dumper. It reads in one REPEATABLE READ, read-only
// transaction: one snapshot, while the nodes go on writing.
func (s *Store) Dump(ctx context.Context, head func(revision int64) error, item func(storage.DumpItem) error) error {
	const op = "dump"
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail(ctx, op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var rev int64
	if err := tx.QueryRow(ctx, `SELECT n FROM rev`).Scan(&rev); err != nil {
		return fail(ctx, op, err)
	}
	if err := head(rev); err != nil {
		return err
	}
	each := func(query string, scan func(pgx.Rows) (storage.DumpItem, error)) error {
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return fail(ctx, op, err)
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scan(rows)
			if err != nil {
				return fail(ctx, op, err)
			}
			if err := item(it); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fail(ctx, op, err)
		}
		return nil
	}
	err = each(`SELECT name, value FROM meta ORDER BY name`, func(rows pgx.Rows) (storage.DumpItem, error) {
		var m storage.MetaEntry
		err := rows.Scan(&m.Name, &m.Value)
		m.Value = nonNil(m.Value)
		return storage.DumpItem{Meta: &m}, err
	})
	if err != nil {
		return err
	}
	err = each(`SELECT `+objectColumns+` FROM objects ORDER BY kind, key`, func(rows pgx.Rows) (storage.DumpItem, error) {
		o, err := scanObject(rows)
		return storage.DumpItem{Object: o}, err
	})
	if err != nil {
		return err
	}
	return each(`SELECT seq, at, data, prev_hash, hash FROM audit ORDER BY seq`, func(rows pgx.Rows) (storage.DumpItem, error) {
		var a storage.AuditRecord
		err := rows.Scan(&a.Seq, &a.Time, &a.Data, &a.PrevHash, &a.Hash)
		a.Time = a.Time.UTC()
		return storage.DumpItem{Audit: &a}, err
	})
}

// Load implements storage.Dumper. The tables are locked against writes for
// the transaction, so a node starting meanwhile waits and then finds the
// loaded store.
func (s *Store) Load(ctx context.Context, revision int64, next func() (storage.DumpItem, error)) error {
	const op = "load"
	if revision < 0 {
		return fail(ctx, op, fmt.Errorf("%w: negative revision %d", storage.ErrBadDump, revision))
	}
	check := storage.DumpChecker{Revision: revision}
	err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		if _, err := tx.Exec(ctx, `LOCK TABLE rev, objects, changes, audit, meta IN EXCLUSIVE MODE`); err != nil {
			return 0, err
		}
		var rev, used int64
		err := tx.QueryRow(ctx, `SELECT n,
			(SELECT count(*) FROM objects) + (SELECT count(*) FROM audit) + (SELECT count(*) FROM meta)
			FROM rev`).Scan(&rev, &used)
		if err != nil {
			return 0, err
		}
		if rev != 0 || used != 0 {
			return 0, fmt.Errorf("%w (revision %d, %d objects, audit records and meta entries)", storage.ErrNotEmpty, rev, used)
		}
		// Rows go in batches of loadBatch statements: one round trip each.
		var batch pgx.Batch
		var queued []storage.DumpItem
		flush := func() error {
			if len(queued) == 0 {
				return nil
			}
			br := tx.SendBatch(ctx, &batch)
			for _, it := range queued {
				if _, err := br.Exec(); err != nil {
					br.Close()
					if isUniqueViolation(err) {
						if it.Meta != nil {
							return fmt.Errorf("%w: meta entry %q is repeated", storage.ErrBadDump, it.Meta.Name)
						}
						return fmt.Errorf("%w: object %s %q: its key or alternate key is repeated", storage.ErrBadDump, it.Object.Kind, it.Object.Key)
					}
					return err
				}
			}
			batch, queued = pgx.Batch{}, queued[:0]
			return br.Close()
		}
		for {
			it, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, err
			}
			if err := check.Check(it); err != nil {
				return 0, err
			}
			switch {
			case it.Meta != nil:
				batch.Queue(`INSERT INTO meta (name, value) VALUES ($1, $2)`, it.Meta.Name, nonNil(it.Meta.Value))
			case it.Object != nil:
				o := normalize(it.Object)
				batch.Queue(`INSERT INTO objects (`+objectColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
					o.Kind, o.Key, nullString(o.Alt), nullString(o.Ref), o.Data, nullBytes(o.Sealed),
					nullTime(o.Expires), o.Revision, storage.Now(o.Created), storage.Now(o.Updated))
			default:
				a := it.Audit
				batch.Queue(`INSERT INTO audit (seq, at, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)`,
					a.Seq, a.Time, nonNil(a.Data), nullBytes(a.PrevHash), nonNil(a.Hash))
			}
			queued = append(queued, it)
			if len(queued) == loadBatch {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
		if err := flush(); err != nil {
			return 0, err
		}
		_, err = tx.Exec(ctx, `UPDATE rev SET n = $1`, revision)
		return revision, err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	return nil
}
