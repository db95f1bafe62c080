package postgres

import (
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
	"github.com/gatehouse/gatehouse/storage/storagetest"
)

func testDSN(tb testing.TB) string               { return pgtest.BaseDSN(tb) }
func schemaDSN(tb testing.TB) string             { return pgtest.DSN(tb) }
func newSchema(tb testing.TB, dsn string) string { return pgtest.NewSchema(tb, dsn) }

// mustOpen opens a Store on tb's schema and closes it when tb ends.
func mustOpen(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), schemaDSN(tb), opts)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return mustOpen(t, Options{}) })
}

func BenchmarkStore(b *testing.B) {
	storagetest.Benchmark(b, mustOpen(b, Options{}))
}

func BenchmarkDump(b *testing.B) {
	base := testDSN(b)
	storagetest.BenchmarkDump(b, func(b *testing.B) storage.Store {
		s, err := Open(b.Context(), pgtest.WithSearchPath(base, newSchema(b, base)), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}, 5000)
}

// TestSearchPathOptions: the schema can also come from options=-c
// search_path=…, and everything (goose's table included) lands in it.
func TestSearchPathOptions(t *testing.T) {
	base := testDSN(t)
	name := newSchema(t, base)
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Skip("needs a URL DSN")
	}
	// pgx decodes the query with path rules: a space must be %20, not '+'.
	opt := "options=" + strings.ReplaceAll(url.QueryEscape("-c search_path="+name), "+", "%20")
	if u.RawQuery != "" {
		opt = "&" + opt
	}
	u.RawQuery += opt
	s, err := Open(t.Context(), u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.schema != name || s.channel != "gatehouse."+name {
		t.Errorf("schema %q, channel %q", s.schema, s.channel)
	}
	for _, table := range []string{"objects", "changes", "audit", "meta", "rev", "goose_db_version"} {
		var found bool
		err := s.pool.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, name+"."+table).Scan(&found)
		if err != nil || !found {
			t.Errorf("table %s.%s: %v, %v", name, table, found, err)
		}
	}
}

func TestChannelName(t *testing.T) {
	short := channelName("tenant_a")
	if short != "gatehouse.tenant_a" {
		t.Errorf("channelName(tenant_a) = %q", short)
	}
	long1, long2 := channelName(strings.Repeat("x", 63)), channelName(strings.Repeat("x", 62)+"y")
	if len(long1) > 63 || long1 == long2 {
		t.Errorf("long schema names give %q and %q", long1, long2)
	}
}
