package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/sqlite"
	"github.com/gatehouse/gatehouse/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, openTest)
}

// paths remembers each test's database file, so that a second open in the
// same test reaches the same database (storagetest.Opener's contract).
var paths sync.Map // testing.TB → string

// openTest opens a Store on a real file in the test's temporary directory.
func openTest(t *testing.T) storage.Store { return mustOpen(t) }

func mustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	var path string
	if p, ok := paths.Load(tb); ok {
		path = p.(string)
	} else {
		path = filepath.Join(tb.TempDir(), "gatehouse.db")
		paths.Store(tb, path)
		tb.Cleanup(func() { paths.Delete(tb) })
	}
	s, err := sqlite.Open(tb.Context(), path, sqlite.Options{})
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func BenchmarkStore(b *testing.B) {
	storagetest.Benchmark(b, mustOpen(b))
}

func BenchmarkDump(b *testing.B) {
	n := 0
	storagetest.BenchmarkDump(b, func(b *testing.B) storage.Store {
		n++
		s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), fmt.Sprintf("gatehouse-%d.db", n)), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}, 5000)
}
