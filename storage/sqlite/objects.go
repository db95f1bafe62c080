package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

const objectColumns = `kind, key, alt, ref, data, sealed, expires, revision, created, updated`

// Batch sizes of the multi-object walks. Each batch is its own transaction,
// so the writer lock is never held for long.
const (
	expireBatch = 500
	rewrapBatch = 100
)

var errIdentity = errors.New("storage: an object needs a non-empty Kind and Key")

type scanner interface{ Scan(dest ...any) error }

func scanObject(sc scanner) (*storage.Object, error) {
	var (
		o                storage.Object
		alt, ref         sql.NullString
		expires          sql.NullInt64
		created, updated int64
	)
	err := sc.Scan(&o.Kind, &o.Key, &alt, &ref, &o.Data, &o.Sealed, &expires, &o.Revision, &created, &updated)
	if err != nil {
		return nil, err
	}
	o.Alt, o.Ref = alt.String, ref.String
	if expires.Valid {
		o.Expires = fromMicros(expires.Int64)
	}
	o.Created, o.Updated = fromMicros(created), fromMicros(updated)
	return &o, nil
}

// normalize returns a copy of o in the form the store keeps: its own byte
// slices (the caller may reuse its buffers), an empty Sealed as nil, and
// Expires in UTC microseconds.
func normalize(o *storage.Object) *storage.Object {
	c := *o
	c.Data = bytes.Clone(nonNil(o.Data))
	c.Sealed = nil
	if len(o.Sealed) > 0 {
		c.Sealed = bytes.Clone(o.Sealed)
	}
	if !c.Expires.IsZero() {
		c.Expires = storage.Now(c.Expires)
	}
	return &c
}

// Create implements storage.Objects.
func (s *Store) Create(ctx context.Context, o *storage.Object) (*storage.Object, error) {
	op := fmt.Sprintf("create %s %q", o.Kind, o.Key)
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if o.Kind == "" || o.Key == "" {
		return nil, fail(ctx, op, errIdentity)
	}
	if !storage.ValidKey(o.Kind) || !storage.ValidKey(o.Key) || !storage.ValidKey(o.Alt) || !storage.ValidKey(o.Ref) {
		return nil, fail(ctx, op, storage.ErrInvalidKey)
	}
	out := normalize(o)
	out.Created = s.nowUTC()
	out.Updated = out.Created
	err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return false, err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO objects (`+objectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			out.Kind, out.Key, nullString(out.Alt), nullString(out.Ref), out.Data, nullBytes(out.Sealed),
			nullTime(out.Expires), rev, out.Created.UnixMicro(), out.Updated.UnixMicro())
		if constraint(err) != 0 { // the key or the alternate key is taken
			return false, storage.ErrAlreadyExists
		}
		if err != nil {
			return false, err
		}
		out.Revision = rev
		return true, appendChange(ctx, tx, rev, out.Kind, out.Key, storage.OpPut, out.Updated)
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// Get implements storage.Objects.
func (s *Store) Get(ctx context.Context, kind, key string) (*storage.Object, error) {
	if !storage.ValidKey(kind) || !storage.ValidKey(key) {
		return nil, fail(ctx, fmt.Sprintf("get %s %q", kind, key), storage.ErrNotFound)
	}
	o, err := scanObject(s.r.QueryRowContext(ctx,
		`SELECT `+objectColumns+` FROM objects WHERE kind = ? AND key = ?`, kind, key))
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("get %s %q", kind, key), err)
	}
	return o, nil
}

// GetByAlt implements storage.Objects.
func (s *Store) GetByAlt(ctx context.Context, kind, alt string) (*storage.Object, error) {
	if !storage.ValidKey(kind) || !storage.ValidKey(alt) {
		return nil, fail(ctx, fmt.Sprintf("get %s by alt %q", kind, alt), storage.ErrNotFound)
	}
	o, err := scanObject(s.r.QueryRowContext(ctx,
		`SELECT `+objectColumns+` FROM objects WHERE kind = ? AND alt = ?`, kind, alt))
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("get %s by alt %q", kind, alt), err)
	}
	return o, nil
}

// List implements storage.Objects. Keys compare bytewise (SQLite's BINARY
// collation), so Prefix becomes a key range that the primary key serves.
func (s *Store) List(ctx context.Context, opts storage.ListOptions) (*storage.Page, error) {
	if !storage.ValidKey(opts.Kind) || !storage.ValidKey(opts.Prefix) || !storage.ValidKey(opts.Ref) || !storage.ValidKey(opts.After) {
		return nil, fail(ctx, fmt.Sprintf("list %s", opts.Kind), storage.ErrInvalidKey)
	}
	limit := pageLimit(opts.Limit)
	var q strings.Builder
	q.WriteString(`SELECT ` + objectColumns + ` FROM objects WHERE kind = ? AND key > ?`)
	args := []any{opts.Kind, opts.After}
	if opts.Prefix != "" {
		q.WriteString(` AND key >= ?`)
		args = append(args, opts.Prefix)
		if end, ok := prefixEnd(opts.Prefix); ok {
			q.WriteString(` AND key < ?`)
			args = append(args, end)
		}
	}
	if opts.Ref != "" {
		q.WriteString(` AND ref = ?`)
		args = append(args, opts.Ref)
	}
	q.WriteString(` ORDER BY key LIMIT ?`)
	args = append(args, limit+1) // one extra row tells whether a next page exists

	op := fmt.Sprintf("list %s", opts.Kind)
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	page := &storage.Page{}
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		page.Objects = append(page.Objects, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if len(page.Objects) > limit {
		page.Objects = page.Objects[:limit]
		page.Next = page.Objects[limit-1].Key
	}
	return page, nil
}

// prefixEnd returns the smallest string greater than every string that
// starts with p, bytewise, or false when there is none (p is all 0xff).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Update implements storage.Objects. The row is read inside the write
// transaction, which already holds the database's write lock, so no other
// writer can slip in between the read and the write: in this backend fn
// runs exactly once per call. Callers must still treat fn as retryable, as
// the interface says.
func (s *Store) Update(ctx context.Context, kind, key string, fn func(*storage.Object) error) (*storage.Object, error) {
	op := fmt.Sprintf("update %s %q", kind, key)
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if !storage.ValidKey(kind) || !storage.ValidKey(key) {
		return nil, fail(ctx, op, storage.ErrNotFound)
	}
	var out *storage.Object
	var fnErr error
	err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return false, err
		}
		cur, err := scanObject(tx.QueryRowContext(ctx,
			`SELECT `+objectColumns+` FROM objects WHERE kind = ? AND key = ?`, kind, key))
		if errors.Is(err, sql.ErrNoRows) {
			return false, storage.ErrNotFound
		}
		if err != nil {
			return false, err
		}
		created := cur.Created
		if fnErr = fn(cur); fnErr != nil { // cur is freshly scanned: fn owns it
			return false, fnErr
		}
		if cur.Kind != kind || cur.Key != key {
			return false, fmt.Errorf("storage: Update cannot change Kind or Key (to %s %q)", cur.Kind, cur.Key)
		}
		if !storage.ValidKey(cur.Alt) || !storage.ValidKey(cur.Ref) {
			return false, storage.ErrInvalidKey
		}
		out = normalize(cur)
		out.Revision, out.Created, out.Updated = rev, created, s.nowUTC()
		_, err = tx.ExecContext(ctx,
			`UPDATE objects SET alt = ?, ref = ?, data = ?, sealed = ?, expires = ?, revision = ?, updated = ?
			 WHERE kind = ? AND key = ?`,
			nullString(out.Alt), nullString(out.Ref), out.Data, nullBytes(out.Sealed), nullTime(out.Expires),
			rev, out.Updated.UnixMicro(), kind, key)
		if constraint(err) != 0 { // the new alternate key belongs to another object
			return false, storage.ErrConflict
		}
		if err != nil {
			return false, err
		}
		return true, appendChange(ctx, tx, rev, kind, key, storage.OpPut, out.Updated)
	})
	if fnErr != nil {
		return nil, fnErr // as the contract says: fn's error, unwrapped
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// Delete implements storage.Objects.
func (s *Store) Delete(ctx context.Context, kind, key string) error {
	op := fmt.Sprintf("delete %s %q", kind, key)
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if !storage.ValidKey(kind) || !storage.ValidKey(key) {
		return fail(ctx, op, storage.ErrNotFound)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return false, err
		}
		if err := deleteRow(ctx, tx, kind, key); err != nil {
			return false, err
		}
		return true, appendChange(ctx, tx, rev, kind, key, storage.OpDelete, s.nowUTC())
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

func deleteRow(ctx context.Context, tx *sql.Tx, kind, key string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE kind = ? AND key = ?`, kind, key)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// DeleteExpired implements storage.Objects. Each removed object gets its
// own revision and delete change, exactly as if Delete had been called.
func (s *Store) DeleteExpired(ctx context.Context, kind string, t time.Time) (int, error) {
	op := fmt.Sprintf("delete expired %s", kind)
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, op, err)
	}
	before := ceilMicros(t)
	total := 0
	for {
		n := 0
		err := s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
			keys, err := expiredKeys(ctx, tx, kind, before)
			if err != nil {
				return false, err
			}
			now := s.nowUTC()
			for _, key := range keys {
				rev, err := bump(ctx, tx)
				if err != nil {
					return false, err
				}
				if err := deleteRow(ctx, tx, kind, key); err != nil {
					return false, err
				}
				if err := appendChange(ctx, tx, rev, kind, key, storage.OpDelete, now); err != nil {
					return false, err
				}
			}
			n = len(keys)
			return n > 0, nil
		})
		if err != nil {
			return total, fail(ctx, op, err)
		}
		total += n
		if n < expireBatch {
			return total, nil
		}
	}
}

func expiredKeys(ctx context.Context, tx *sql.Tx, kind string, before int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT key FROM objects WHERE kind = ? AND expires < ? ORDER BY key LIMIT ?`,
		kind, before, expireBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// sealedRow is one object visited by RewrapSealed.
type sealedRow struct {
	kind, key string
	sealed    []byte
	revision  int64
}

// errStale reports that a conditional write found a newer revision.
var errStale = errors.New("object changed meanwhile")

// RewrapSealed implements storage.Store. It reads batches in (kind, key)
// order from the reader pool, calls fn outside any transaction (fn may be
// slow: it decrypts and encrypts), and writes each replacement with a
// revision check. An object that changed meanwhile is read again and fn is
// called again on its new blob.
func (s *Store) RewrapSealed(ctx context.Context, fn func(kind, key string, sealed []byte) ([]byte, error)) (int, error) {
	const op = "rewrap sealed"
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, op, err)
	}
	count := 0
	var afterKind, afterKey string // ("", "") sorts before every object: Kind is never empty
	for {
		batch, err := s.sealedBatch(ctx, afterKind, afterKey)
		if err != nil {
			return count, fail(ctx, op, err)
		}
		for _, row := range batch {
			for {
				repl, err := fn(row.kind, row.key, row.sealed)
				if err != nil {
					return count, err
				}
				if repl == nil {
					break
				}
				err = s.replaceSealed(ctx, row, repl)
				if err == nil {
					count++
					break
				}
				if !errors.Is(err, errStale) {
					return count, fail(ctx, op, err)
				}
				cur, err := s.Get(ctx, row.kind, row.key)
				if errors.Is(err, storage.ErrNotFound) {
					break // deleted meanwhile: nothing to rewrap
				}
				if err != nil {
					return count, err
				}
				if len(cur.Sealed) == 0 {
					break
				}
				row.sealed, row.revision = cur.Sealed, cur.Revision
			}
		}
		if len(batch) < rewrapBatch {
			return count, nil
		}
		last := batch[len(batch)-1]
		afterKind, afterKey = last.kind, last.key
	}
}

func (s *Store) sealedBatch(ctx context.Context, afterKind, afterKey string) ([]sealedRow, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT kind, key, sealed, revision FROM objects
		 WHERE sealed IS NOT NULL AND (kind, key) > (?, ?)
		 ORDER BY kind, key LIMIT ?`, afterKind, afterKey, rewrapBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var batch []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.kind, &r.key, &r.sealed, &r.revision); err != nil {
			return nil, err
		}
		batch = append(batch, r)
	}
	return batch, rows.Err()
}

// replaceSealed writes repl over row's blob if the object still has
// row.revision, as a regular feed write. errStale otherwise.
func (s *Store) replaceSealed(ctx context.Context, row sealedRow, repl []byte) error {
	return s.writeTx(ctx, func(tx *sql.Tx) (bool, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return false, err
		}
		now := s.nowUTC()
		res, err := tx.ExecContext(ctx,
			`UPDATE objects SET sealed = ?, revision = ?, updated = ?
			 WHERE kind = ? AND key = ? AND revision = ?`,
			nullBytes(repl), rev, now.UnixMicro(), row.kind, row.key, row.revision)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			return false, errStale // rolls the revision back
		}
		return true, appendChange(ctx, tx, rev, row.kind, row.key, storage.OpPut, now)
	})
}
