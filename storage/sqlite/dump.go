package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/storage"
)

var _ storage.Dumper = (*Store)(nil)

// Dump implements storage.Dumper. It reads in one read transaction, which
// in WAL mode sees one snapshot of the file while writers go on.
func (s *Store) Dump(ctx context.Context, head func(revision int64) error, item func(storage.DumpItem) error) error {
	const op = "dump"
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail(ctx, op, err)
	}
	defer tx.Rollback()
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT n FROM rev`).Scan(&rev); err != nil {
		return fail(ctx, op, err)
	}
	if err := head(rev); err != nil {
		return err
	}
	each := func(query string, scan func(*sql.Rows) (storage.DumpItem, error)) error {
		rows, err := tx.QueryContext(ctx, query)
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
	err = each(`SELECT name, value FROM meta ORDER BY name`, func(rows *sql.Rows) (storage.DumpItem, error) {
		var m storage.MetaEntry
		err := rows.Scan(&m.Name, &m.Value)
		m.Value = nonNil(m.Value)
		return storage.DumpItem{Meta: &m}, err
	})
	if err != nil {
		return err
	}
	err = each(`SELECT `+objectColumns+` FROM objects ORDER BY kind, key`, func(rows *sql.Rows) (storage.DumpItem, error) {
		o, err := scanObject(rows)
		return storage.DumpItem{Object: o}, err
	})
	if err != nil {
		return err
	}
	return each(`SELECT seq, at, data, prev_hash, hash FROM audit ORDER BY seq`, func(rows *sql.Rows) (storage.DumpItem, error) {
		var r storage.AuditRecord
		var at int64
		err := rows.Scan(&r.Seq, &at, &r.Data, &r.PrevHash, &r.Hash)
		r.Time = fromMicros(at)
		return storage.DumpItem{Audit: &r}, err
	})
}

// Load implements storage.Dumper.
func (s *Store) Load(ctx context.Context, revision int64, next func() (storage.DumpItem, error)) error {
	const op = "load"
	if revision < 0 {
		return fail(ctx, op, fmt.Errorf("%w: negative revision %d", storage.ErrBadDump, revision))
	}
	check := storage.DumpChecker{Revision: revision}
	err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		var rev, used int64
		err := tx.QueryRowContext(ctx, `SELECT n,
			(SELECT count(*) FROM objects) + (SELECT count(*) FROM audit) + (SELECT count(*) FROM meta)
			FROM rev`).Scan(&rev, &used)
		if err != nil {
			return false, err
		}
		if rev != 0 || used != 0 {
			return false, fmt.Errorf("%w (revision %d, %d objects, audit records and meta entries)", storage.ErrNotEmpty, rev, used)
		}
		// One prepared statement per table: the load is row after row.
		prep := func(query string) (*sql.Stmt, error) { return tx.PrepareContext(ctx, query) }
		metaStmt, err := prep(`INSERT INTO meta (name, value) VALUES (?, ?)`)
		if err != nil {
			return false, err
		}
		defer metaStmt.Close()
		objStmt, err := prep(`INSERT INTO objects (` + objectColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return false, err
		}
		defer objStmt.Close()
		auditStmt, err := prep(`INSERT INTO audit (seq, at, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return false, err
		}
		defer auditStmt.Close()
		for {
			it, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return false, err
			}
			if err := check.Check(it); err != nil {
				return false, err
			}
			switch {
			case it.Meta != nil:
				_, err = metaStmt.ExecContext(ctx, it.Meta.Name, nonNil(it.Meta.Value))
				if constraint(err) != 0 {
					err = fmt.Errorf("%w: meta entry %q is repeated", storage.ErrBadDump, it.Meta.Name)
				}
			case it.Object != nil:
				o := normalize(it.Object)
				_, err = objStmt.ExecContext(ctx,
					o.Kind, o.Key, nullString(o.Alt), nullString(o.Ref), o.Data, nullBytes(o.Sealed),
					nullTime(o.Expires), o.Revision, storage.Now(o.Created).UnixMicro(), storage.Now(o.Updated).UnixMicro())
				if constraint(err) != 0 {
					err = fmt.Errorf("%w: object %s %q: its key or alternate key is repeated", storage.ErrBadDump, o.Kind, o.Key)
				}
			default:
				a := it.Audit
				_, err = auditStmt.ExecContext(ctx, a.Seq, a.Time.UnixMicro(), nonNil(a.Data), nullBytes(a.PrevHash), nonNil(a.Hash))
			}
			if err != nil {
				return false, err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE rev SET n = ?`, revision)
		return revision > 0, err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	return nil
}
