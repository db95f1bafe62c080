package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/storage"
)

const objectColumns = `kind, key, alt, ref, data, sealed, expires, revision, created, updated`

// Batch sizes of the multi-object walks. Each batch is its own transaction,
// so the counter's lock is never held for long.
const (
	expireBatch = 500
	rewrapBatch = 100
)

var errIdentity = errors.New("storage: an object needs a non-empty Kind and Key")

func scanObject(row pgx.Row) (*storage.Object, error) {
	var (
		o        storage.Object
		alt, ref *string
		expires  *time.Time
	)
	err := row.Scan(&o.Kind, &o.Key, &alt, &ref, &o.Data, &o.Sealed, &expires, &o.Revision, &o.Created, &o.Updated)
	if err != nil {
		return nil, err
	}
	if alt != nil {
		o.Alt = *alt
	}
	if ref != nil {
		o.Ref = *ref
	}
	if expires != nil {
		o.Expires = expires.UTC()
	}
	// pgx returns timestamptz in the local zone; the contract is UTC.
	o.Created, o.Updated = o.Created.UTC(), o.Updated.UTC()
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

// Create implements storage.Objects. A unique violation (SQLSTATE 23505)
// of the primary key or of the alternate-key index is ErrAlreadyExists.
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
	err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return 0, err
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO objects (`+objectColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			out.Kind, out.Key, nullString(out.Alt), nullString(out.Ref), out.Data, nullBytes(out.Sealed),
			nullTime(out.Expires), rev, out.Created, out.Updated)
		if isUniqueViolation(err) {
			return 0, storage.ErrAlreadyExists
		}
		if err != nil {
			return 0, err
		}
		out.Revision = rev
		return rev, appendChange(ctx, tx, rev, out.Kind, out.Key, storage.OpPut, out.Updated)
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
	o, err := scanObject(s.pool.QueryRow(ctx,
		`SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND key = $2`, kind, key))
	if errors.Is(err, pgx.ErrNoRows) {
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
	o, err := scanObject(s.pool.QueryRow(ctx,
		`SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND alt = $2`, kind, alt))
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, fmt.Sprintf("get %s by alt %q", kind, alt), err)
	}
	return o, nil
}

// List implements storage.Objects. Key columns use COLLATE "C", so Prefix
// becomes a key range that the primary key serves (no LIKE, whose '%' and
// '_' would need escaping).
func (s *Store) List(ctx context.Context, opts storage.ListOptions) (*storage.Page, error) {
	if !storage.ValidKey(opts.Kind) || !storage.ValidKey(opts.Prefix) || !storage.ValidKey(opts.Ref) || !storage.ValidKey(opts.After) {
		return nil, fail(ctx, fmt.Sprintf("list %s", opts.Kind), storage.ErrInvalidKey)
	}
	limit := pageLimit(opts.Limit)
	var q strings.Builder
	q.WriteString(`SELECT ` + objectColumns + ` FROM objects WHERE kind = $1 AND key > $2`)
	args := []any{opts.Kind, opts.After}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if opts.Prefix != "" {
		q.WriteString(` AND key >= ` + arg(opts.Prefix))
		if end, ok := prefixEnd(opts.Prefix); ok {
			q.WriteString(` AND key < ` + arg(end))
		}
	}
	if opts.Ref != "" {
		q.WriteString(` AND ref = ` + arg(opts.Ref))
	}
	// One extra row tells whether a next page exists.
	q.WriteString(` ORDER BY key LIMIT ` + arg(limit+1))

	op := fmt.Sprintf("list %s", opts.Kind)
	rows, err := s.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*storage.Object, error) { return scanObject(r) })
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	page := &storage.Page{Objects: objs}
	if len(objs) > limit {
		page.Objects = objs[:limit]
		page.Next = objs[limit-1].Key
	}
	return page, nil
}

// prefixEnd returns the smallest valid UTF-8 string greater than every
// string that starts with p, or false when there is none. PostgreSQL text
// must be valid UTF-8, so instead of incrementing the last byte (which can
// yield an invalid sequence) it increments the last code point; UTF-8 byte
// order is code point order, so the range is the same.
func prefixEnd(p string) (string, bool) {
	r := []rune(p)
	for i := len(r) - 1; i >= 0; i-- {
		switch next := r[i] + 1; {
		case next == 0xD800: // skip the surrogate block, which UTF-8 cannot encode
			r[i] = 0xE000
			return string(r[:i+1]), true
		case next <= utf8.MaxRune:
			r[i] = next
			return string(r[:i+1]), true
		}
	}
	return "", false
}

// Update implements storage.Objects. The row is read after the counter's
// row lock is granted, so no other writer can slip in between the read and
// the write: in this backend fn runs exactly once per call. Callers must
// still treat fn as retryable, as the interface says. Moving Alt onto one
// that another object holds is a unique violation: ErrConflict.
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
	err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return 0, err
		}
		cur, err := scanObject(tx.QueryRow(ctx,
			`SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND key = $2`, kind, key))
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, storage.ErrNotFound
		}
		if err != nil {
			return 0, err
		}
		created := cur.Created
		if fnErr = fn(cur); fnErr != nil { // cur is freshly scanned: fn owns it
			return 0, fnErr
		}
		if cur.Kind != kind || cur.Key != key {
			return 0, fmt.Errorf("storage: Update cannot change Kind or Key (to %s %q)", cur.Kind, cur.Key)
		}
		if !storage.ValidKey(cur.Alt) || !storage.ValidKey(cur.Ref) {
			return 0, storage.ErrInvalidKey
		}
		out = normalize(cur)
		out.Revision, out.Created, out.Updated = rev, created, s.nowUTC()
		_, err = tx.Exec(ctx,
			`UPDATE objects SET alt = $1, ref = $2, data = $3, sealed = $4, expires = $5, revision = $6, updated = $7
			 WHERE kind = $8 AND key = $9`,
			nullString(out.Alt), nullString(out.Ref), out.Data, nullBytes(out.Sealed), nullTime(out.Expires),
			rev, out.Updated, kind, key)
		if isUniqueViolation(err) {
			return 0, storage.ErrConflict
		}
		if err != nil {
			return 0, err
		}
		return rev, appendChange(ctx, tx, rev, kind, key, storage.OpPut, out.Updated)
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
	err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return 0, err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM objects WHERE kind = $1 AND key = $2`, kind, key)
		if err != nil {
			return 0, err
		}
		if tag.RowsAffected() == 0 {
			return 0, storage.ErrNotFound
		}
		return rev, appendChange(ctx, tx, rev, kind, key, storage.OpDelete, s.nowUTC())
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// DeleteExpired implements storage.Objects. Each removed object gets its
// own revision and delete change, exactly as if Delete had been called; a
// batch is written set-wise: lock the counter, delete, number the deleted
// keys in key order, advance the counter by their count.
func (s *Store) DeleteExpired(ctx context.Context, kind string, t time.Time) (int, error) {
	op := fmt.Sprintf("delete expired %s", kind)
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, op, err)
	}
	before := ceilMicro(t)
	total := 0
	for {
		n := 0
		err := s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
			// The same row lock a bump takes: writers queue behind it.
			var base int64
			if err := tx.QueryRow(ctx, `SELECT n FROM rev FOR UPDATE`).Scan(&base); err != nil {
				return 0, err
			}
			rows, err := tx.Query(ctx,
				`DELETE FROM objects WHERE kind = $1 AND key IN (
					SELECT key FROM objects WHERE kind = $1 AND expires < $2 ORDER BY key LIMIT $3)
				 RETURNING key`, kind, before, expireBatch)
			if err != nil {
				return 0, err
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(keys) == 0 {
				return 0, err
			}
			slices.Sort(keys) // bytewise, like COLLATE "C"
			_, err = tx.Exec(ctx,
				`INSERT INTO changes (revision, kind, key, op, at)
				 SELECT $1 + k.i, $2, k.key, 'delete', $3
				 FROM unnest($4::text[]) WITH ORDINALITY AS k(key, i)`,
				base, kind, s.nowUTC(), keys)
			if err != nil {
				return 0, err
			}
			last := base + int64(len(keys))
			if _, err := tx.Exec(ctx, `UPDATE rev SET n = $1`, last); err != nil {
				return 0, err
			}
			n = len(keys)
			return last, nil
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

// sealedRow is one object visited by RewrapSealed.
type sealedRow struct {
	kind, key string
	sealed    []byte
	revision  int64
}

// errStale reports that a conditional write found a newer revision.
var errStale = errors.New("object changed meanwhile")

// RewrapSealed implements storage.Store. It reads batches in (kind, key)
// order, calls fn outside any transaction (fn may be slow: it decrypts and
// encrypts), and writes each replacement with a revision check. An object
// that changed meanwhile is read again and fn is called again on its new
// blob.
func (s *Store) RewrapSealed(ctx context.Context, fn func(kind, key string, sealed []byte) ([]byte, error)) (int, error) {
	const op = "rewrap sealed"
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, op, err)
	}
	count := 0
	var afterKind, afterKey string // ("", "") sorts before every object: Kind is never empty
	for {
		rows, err := s.pool.Query(ctx,
			`SELECT kind, key, sealed, revision FROM objects
			 WHERE sealed IS NOT NULL AND (kind, key) > ($1, $2)
			 ORDER BY kind, key LIMIT $3`, afterKind, afterKey, rewrapBatch)
		if err != nil {
			return count, fail(ctx, op, err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sealedRow, error) {
			var sr sealedRow
			err := r.Scan(&sr.kind, &sr.key, &sr.sealed, &sr.revision)
			return sr, err
		})
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

// replaceSealed writes repl over row's blob if the object still has
// row.revision, as a regular feed write. errStale otherwise.
func (s *Store) replaceSealed(ctx context.Context, row sealedRow, repl []byte) error {
	return s.writeTx(ctx, func(tx pgx.Tx) (int64, error) {
		rev, err := bump(ctx, tx)
		if err != nil {
			return 0, err
		}
		now := s.nowUTC()
		tag, err := tx.Exec(ctx,
			`UPDATE objects SET sealed = $1, revision = $2, updated = $3
			 WHERE kind = $4 AND key = $5 AND revision = $6`,
			nullBytes(repl), rev, now, row.kind, row.key, row.revision)
		if err != nil {
			return 0, err
		}
		if tag.RowsAffected() == 0 {
			return 0, errStale // rolls the revision back
		}
		return rev, appendChange(ctx, tx, rev, row.kind, row.key, storage.OpPut, now)
	})
}
