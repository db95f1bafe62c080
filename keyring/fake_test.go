package keyring_test

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/storage"
)

// memMeta is an in-memory storage.Meta with the contract's compare-and-swap.
// beforePut, when set, runs before each PutMeta (outside the lock): tests
// use it to let "another node" write first.
type memMeta struct {
	mu        sync.Mutex
	m         map[string][]byte
	beforePut func(name string)
}

func newMemMeta() *memMeta { return &memMeta{m: map[string][]byte{}} }

func (m *memMeta) GetMeta(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[name]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (m *memMeta) PutMeta(ctx context.Context, name string, old, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.beforePut != nil {
		m.beforePut(name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.m[name]
	if old == nil && ok || old != nil && (!ok || !bytes.Equal(cur, old)) {
		return storage.ErrConflict
	}
	m.m[name] = bytes.Clone(value)
	return nil
}

// get returns name's value as a string, "" when absent.
func (m *memMeta) get(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.m[name])
}

// memStore adds sealed blobs and RewrapSealed to memMeta. A blob's bytes
// stand in for the object's revision: a replacement is written only if the
// blob did not change while fn ran, else the object is visited again, as
// the storage contract says.
type memStore struct {
	*memMeta
	mu     sync.Mutex
	sealed map[[2]string][]byte // (kind, key) → blob
	// duringWalk, when set, runs after fn for each visit, before the
	// replacement is written: tests use it to write concurrently.
	duringWalk func(kind, key string)
}

func newMemStore() *memStore {
	return &memStore{memMeta: newMemMeta(), sealed: map[[2]string][]byte{}}
}

func (s *memStore) putBlob(kind, key string, blob []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed[[2]string{kind, key}] = bytes.Clone(blob)
}

func (s *memStore) blob(kind, key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.sealed[[2]string{kind, key}])
}

func (s *memStore) RewrapSealed(ctx context.Context, fn func(kind, key string, sealed []byte) ([]byte, error)) (int, error) {
	s.mu.Lock()
	ids := slices.SortedFunc(maps.Keys(s.sealed), func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		for {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			before := s.blob(id[0], id[1])
			out, err := fn(id[0], id[1], bytes.Clone(before))
			if err != nil {
				return n, err
			}
			if s.duringWalk != nil {
				s.duringWalk(id[0], id[1])
			}
			if out == nil {
				break
			}
			s.mu.Lock()
			unchanged := bytes.Equal(s.sealed[id], before)
			if unchanged {
				s.sealed[id] = bytes.Clone(out)
				n++
			}
			s.mu.Unlock()
			if unchanged {
				break
			}
		}
	}
	return n, nil
}
