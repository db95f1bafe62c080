package vaulttest

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/jackc/pgx/v5"
)

// testCanary: a secret value never appears in plaintext in the database
// (every file of the data directory, or every row of every PostgreSQL
// table), the logs or the audit log — after set, get, update, backup,
// restore, delete and recover.
func testCanary(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "canary", nil)
	c := e.client(t, "canary", e.cred)
	canary := "canary-" + gatehouse.NewGUID()
	canary2 := "canary-" + gatehouse.NewGUID()
	set, err := c.SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary)}, nil)
	must(t, err)
	_, err = c.SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary2)}, nil)
	must(t, err)
	if got, err := c.GetSecret(ctx, "canary", set.ID.Version(), nil); err != nil || *got.Value != canary {
		t.Fatalf("get: %v", err)
	}
	_, err = c.UpdateSecretProperties(ctx, "canary", "", azsecrets.UpdateSecretPropertiesParameters{ContentType: ptr("x")}, nil)
	must(t, err)
	b, err := c.BackupSecret(ctx, "canary", nil)
	must(t, err)
	_, err = c.DeleteSecret(ctx, "canary", nil)
	must(t, err)
	_, err = c.RecoverDeletedSecret(ctx, "canary", nil)
	must(t, err)
	_, err = c.DeleteSecret(ctx, "canary", nil)
	must(t, err)
	_, err = c.PurgeDeletedSecret(ctx, "canary", nil)
	must(t, err)
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	must(t, err)
	// A denied write carries a value too.
	_, noneCred := e.principal(t, "canary-denied")
	canary3 := "canary-" + gatehouse.NewGUID()
	_, err = e.client(t, "canary", noneCred).SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary3)}, nil)
	if err == nil {
		t.Fatal("a principal without a role set a secret")
	}
	values := []string{canary, canary2, canary3}

	e.AssertNotLogged(t, values...)
	must(t, e.Audit.Each(ctx, 0, func(r *audit.Record) error {
		for _, v := range values {
			if strings.Contains(r.Entry.Action+r.Entry.Scope+r.Entry.Code+strings.Join(mapValues(r.Entry.Details), ""), v) {
				t.Errorf("audit entry %d holds a secret value", r.Seq)
			}
		}
		return nil
	}))
	if dsn := e.Config.Postgres; dsn != "" {
		assertNotInPostgres(t, ctx, dsn, values...)
	}
	// The data directory: the SQLite database, its WAL, keys, certificates.
	must(t, filepath.WalkDir(e.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s holds a secret value in plaintext", filepath.Base(path))
			}
		}
		return nil
	}))
	// The value is still readable: it was sealed, not lost.
	got, err := c.GetSecret(ctx, "canary", "", nil)
	must(t, err)
	if *got.Value != canary2 {
		t.Fatalf("after restore: %q", *got.Value)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

// assertNotInPostgres reads every row of every table of the node's schema
// as text.
func assertNotInPostgres(t *testing.T, ctx context.Context, dsn string, values ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	must(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	must(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if len(tables) == 0 {
		t.Fatal("no tables in the node's schema")
	}
	for _, tbl := range tables {
		var dump *string
		// encode(...) of bytea columns is included by the row's text form
		// (bytea renders as hex, so look for the hex of the values too).
		must(t, conn.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM `+pgx.Identifier{tbl}.Sanitize()+` t`).Scan(&dump))
		if dump == nil {
			continue
		}
		for _, v := range values {
			if strings.Contains(*dump, v) || strings.Contains(*dump, hexOf(v)) {
				t.Errorf("table %s holds a secret value in plaintext", tbl)
			}
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(out)
}
