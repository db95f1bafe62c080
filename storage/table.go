package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"
)

// Record is a typed object: Value is stored as JSON in Object.Data.
type Record[T any] struct {
	Key, Alt, Ref string
	Value         T
	Sealed        []byte
	Expires       time.Time

	Revision         int64
	Created, Updated time.Time
}

// Table is the typed view of one kind of object. It is the per-record-type
// storage API: each service declares the tables it uses.
type Table[T any] struct {
	store Objects
	kind  string
}

// NewTable returns the table for kind in store.
func NewTable[T any](store Objects, kind string) *Table[T] {
	return &Table[T]{store: store, kind: kind}
}

// Kind returns the table's kind, as it appears in the change feed.
func (t *Table[T]) Kind() string { return t.kind }

func (t *Table[T]) encode(r *Record[T]) (*Object, error) {
	data, err := json.Marshal(r.Value)
	if err != nil {
		return nil, fmt.Errorf("storage: encode %s %q: %w", t.kind, r.Key, err)
	}
	return &Object{Kind: t.kind, Key: r.Key, Alt: r.Alt, Ref: r.Ref, Data: data,
		Sealed: r.Sealed, Expires: r.Expires}, nil
}

func (t *Table[T]) decode(o *Object) (*Record[T], error) {
	r := &Record[T]{Key: o.Key, Alt: o.Alt, Ref: o.Ref, Sealed: o.Sealed, Expires: o.Expires,
		Revision: o.Revision, Created: o.Created, Updated: o.Updated}
	if err := json.Unmarshal(o.Data, &r.Value); err != nil {
		return nil, fmt.Errorf("storage: decode %s %q: %w", t.kind, o.Key, err)
	}
	return r, nil
}

// Create stores r. ErrAlreadyExists.
func (t *Table[T]) Create(ctx context.Context, r *Record[T]) (*Record[T], error) {
	o, err := t.encode(r)
	if err != nil {
		return nil, err
	}
	o, err = t.store.Create(ctx, o)
	if err != nil {
		return nil, err
	}
	return t.decode(o)
}

// Get returns the record with key. ErrNotFound.
func (t *Table[T]) Get(ctx context.Context, key string) (*Record[T], error) {
	o, err := t.store.Get(ctx, t.kind, key)
	if err != nil {
		return nil, err
	}
	return t.decode(o)
}

// GetByAlt returns the record whose alternate key is alt. ErrNotFound.
func (t *Table[T]) GetByAlt(ctx context.Context, alt string) (*Record[T], error) {
	o, err := t.store.GetByAlt(ctx, t.kind, alt)
	if err != nil {
		return nil, err
	}
	return t.decode(o)
}

// List returns one page; opts.Kind is ignored.
func (t *Table[T]) List(ctx context.Context, opts ListOptions) ([]*Record[T], string, error) {
	opts.Kind = t.kind
	p, err := t.store.List(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]*Record[T], 0, len(p.Objects))
	for _, o := range p.Objects {
		r, err := t.decode(o)
		if err != nil {
			return nil, "", err
		}
		out = append(out, r)
	}
	return out, p.Next, nil
}

// All iterates over every matching record, page by page. It stops at the
// first error, which it yields.
func (t *Table[T]) All(ctx context.Context, opts ListOptions) iter.Seq2[*Record[T], error] {
	return func(yield func(*Record[T], error) bool) {
		for {
			recs, next, err := t.List(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			opts.After = next
		}
	}
}

// Collect returns every matching record.
func (t *Table[T]) Collect(ctx context.Context, opts ListOptions) ([]*Record[T], error) {
	var out []*Record[T]
	for r, err := range t.All(ctx, opts) {
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Update applies fn to the record with key; see Objects.Update. fn may be
// called more than once and must not have side effects.
func (t *Table[T]) Update(ctx context.Context, key string, fn func(*Record[T]) error) (*Record[T], error) {
	o, err := t.store.Update(ctx, t.kind, key, func(o *Object) error {
		r, err := t.decode(o)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		n, err := t.encode(r)
		if err != nil {
			return err
		}
		o.Alt, o.Ref, o.Data, o.Sealed, o.Expires = n.Alt, n.Ref, n.Data, n.Sealed, n.Expires
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.decode(o)
}

// Delete removes the record with key. ErrNotFound.
func (t *Table[T]) Delete(ctx context.Context, key string) error {
	return t.store.Delete(ctx, t.kind, key)
}
