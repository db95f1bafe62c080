// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by GATEHOUSE_TEST_POSTGRES, dropped when the
// test ends. Without that variable the test is skipped, except under
// CI=true, where a missing database is a failure: CI must not go green
// without having run the PostgreSQL tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BaseDSN returns GATEHOUSE_TEST_POSTGRES, skipping or failing without it.
func BaseDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("GATEHOUSE_TEST_POSTGRES is not set; CI must run the PostgreSQL tests")
		}
		tb.Skip("GATEHOUSE_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// schemas remembers each test's schema DSN, so that a second call in the
// same test reaches the same database (a restart, or a second node).
var schemas sync.Map // testing.TB → string

// DSN returns a DSN whose search_path is a fresh schema created for tb and
// dropped when tb ends. Calls with the same tb return the same DSN.
func DSN(tb testing.TB) string {
	tb.Helper()
	if dsn, ok := schemas.Load(tb); ok {
		return dsn.(string)
	}
	base := BaseDSN(tb)
	name := NewSchema(tb, base)
	dsn := WithSearchPath(base, name)
	schemas.Store(tb, dsn)
	tb.Cleanup(func() { schemas.Delete(tb) })
	return dsn
}

// NewSchema creates a randomly named schema and drops it (with everything
// in it) when tb ends.
func NewSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	name := "gh_test_" + strings.ToLower(rand.Text()[:12])
	Exec(tb, dsn, `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize())
	// Registered before the stores' Close, so it runs after them.
	tb.Cleanup(func() { Exec(tb, dsn, `DROP SCHEMA `+pgx.Identifier{name}.Sanitize()+` CASCADE`) })
	return name
}

// Exec runs one statement on a connection of its own.
func Exec(tb testing.TB, dsn, sql string, args ...any) {
	tb.Helper()
	ctx := context.Background() // also used in cleanups, after tb.Context() ends
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// WithSearchPath adds search_path to a URL or keyword/value DSN; pgx sends
// unknown parameters to the server as run-time settings.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}
