package vaulttest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// envOn wraps a node started on a restored store: it bootstrapped nothing,
// so it is given the bootstrap principal of the node the backup came from.
func envOn(t *testing.T, s *testenv.Server, boot *app.BootstrapCredentials) *env {
	t.Helper()
	s.Bootstrap = boot
	e := &env{Server: s, sub: boot.SubscriptionID, group: boot.ResourceGroup}
	e.mgmtToken = s.Token(t, s.Credential(t), mgmtScope)
	c, err := s.Authority.Verify(t.Context(), e.mgmtToken, authority.ManagementAudiences...)
	if err != nil {
		t.Fatal(err)
	}
	e.oid = c.Principal.ObjectID
	e.cred = e.adfsCredential(t, boot.ClientID, boot.ClientSecret)
	return e
}

// backupState is what a node holds that a restored node must hold too.
type backupState struct {
	secrets    map[string]string // name → latest value
	versions   []string          // ids of the versions of "db-password"
	readerCred string            // the reader principal's client id
	readerSec  string
	account    string
	key1, key2 string
	etag       string
	auditSeq   int64
}

// TestBackupRestore moves a deployment through `gatehouse backup` and
// `gatehouse restore`: from a SQLite node, backed up while it serves and
// writes, into PostgreSQL; then from the PostgreSQL node into a new SQLite
// data directory. At each step the official clients find everything on the
// restored node as it was: secrets and their versions (azsecrets, with a
// principal that only holds a role from before), the account's keys
// (armcognitiveservices) and the data plane answering to them, the
// principals' credentials, the audit chain. The file holds none of the
// secret values, keys or client secrets; a wrong master key, a damaged
// file or a used target write nothing.
func TestBackupRestore(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := newEnvOn(t, false)
	cli := &cliRunner{dir: t.TempDir()}
	st := seedBackupState(t, a)

	// Back up while the node serves and writes.
	file := filepath.Join(t.TempDir(), "a.backup")
	c := a.client(t, "bk-vault", a.cred)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.SetSecret(t.Context(), "busy", azsecrets.SetSecretParameters{Value: ptr(fmt.Sprint("busy-", i))}, nil); err != nil {
				t.Errorf("write during backup: %v", err)
				return
			}
		}
	})
	_, _, errOut := cli.run(t, "", "backup", "--data-dir", a.DataDir, "--file", file)
	close(stop)
	wg.Wait()
	if !strings.Contains(errOut, "backed up SQLite") {
		t.Fatalf("backup: %s", errOut)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v", err, fi.Mode())
	}
	raw, _ := os.ReadFile(file)
	leaks := []string{st.key1, st.key2, st.readerSec, a.Bootstrap.ClientSecret}
	for _, v := range st.secrets {
		leaks = append(leaks, v)
	}
	for _, s := range leaks {
		if bytes.Contains(raw, []byte(s)) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(s)))) {
			t.Errorf("the backup holds a secret (%.4s…) in the clear", s)
		}
	}

	// Bad restores write nothing.
	otherKey := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(otherKey, []byte("1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600)
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	os.WriteFile(damaged, bytes.Replace(raw, []byte(`"kind":"vault.secret"`), []byte(`"kind":"vault.secreT"`), 1), 0o600)
	truncated := filepath.Join(t.TempDir(), "truncated.backup")
	os.WriteFile(truncated, raw[:len(raw)*2/3], 0o600)
	for _, bad := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong-key", []string{"--file", file, "--postgres", dsn, "--master-key-file", otherKey}, "does not match"},
		{"no-key-in-new-dir", []string{"--file", file, "--data-dir", t.TempDir()}, "copy master.key"},
		{"damaged", []string{"--file", damaged, "--postgres", dsn, "--master-key-file", filepath.Join(a.DataDir, "master.key")}, "not a complete Gatehouse dump"},
		{"truncated", []string{"--file", truncated, "--postgres", dsn, "--master-key-file", filepath.Join(a.DataDir, "master.key")}, "truncated"},
		{"used-target", []string{"--file", file, "--data-dir", a.DataDir}, "in use by another gatehouse serve"},
		{"no-file", []string{"--postgres", dsn}, "--file is required"},
	} {
		code, _, errOut := cli.run(t, "", append([]string{"restore"}, bad.args...)...)
		if code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("restore %s: exit %d, %q; want an error with %q", bad.name, code, errOut, bad.want)
		}
	}

	// --verify-only checks as a restore does and writes nothing (the
	// restore into the same database below still finds it empty).
	keyArg := []string{"--master-key-file", filepath.Join(a.DataDir, "master.key")}
	if out := cli.mustRun(t, append([]string{"restore", "--file", file, "--verify-only", "--postgres", dsn}, keyArg...)...); !strings.Contains(out, "verifies") {
		t.Errorf("restore --verify-only: %s", out)
	}
	for _, bad := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong-key", []string{"--file", file, "--master-key-file", otherKey}, "does not match"},
		{"damaged", append([]string{"--file", damaged}, keyArg...), "not a complete Gatehouse dump"},
		{"truncated", append([]string{"--file", truncated}, keyArg...), "truncated"},
	} {
		code, _, errOut := cli.run(t, "", append([]string{"restore", "--verify-only"}, bad.args...)...)
		if code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("restore --verify-only %s: exit %d, %q; want an error with %q", bad.name, code, errOut, bad.want)
		}
	}

	// SQLite → PostgreSQL.
	out := cli.mustRun(t, "restore", "--file", file, "--postgres", dsn, "--master-key-file", filepath.Join(a.DataDir, "master.key"))
	if !strings.Contains(out, "restored the backup") {
		t.Errorf("restore: %s", out)
	}
	if code, _, errOut := cli.run(t, "", "restore", "--file", file, "--postgres", dsn, "--master-key-file", filepath.Join(a.DataDir, "master.key")); code == 0 || !strings.Contains(errOut, "already been used") {
		t.Errorf("a second restore into the same database: exit %d, %s", code, errOut)
	}
	keyFile := filepath.Join(a.DataDir, "master.key")
	b := envOn(t, testenv.Start(t, testenv.WithPostgres(dsn), testenv.WithConfig(func(c *app.Config) { c.MasterKeyFile = keyFile })), a.Bootstrap)
	checkBackupState(t, b, st)
	caA, _ := os.ReadFile(a.CAFile)
	caB, _ := os.ReadFile(b.CAFile)
	if !bytes.Equal(caA, caB) {
		t.Error("the restored node has another CA: clients would have to trust it anew")
	}
	// The restored node goes on: a new secret version is served by it.
	if _, err := b.client(t, "bk-vault", b.cred).SetSecret(t.Context(), "after-move", azsecrets.SetSecretParameters{Value: ptr("moved")}, nil); err != nil {
		t.Fatal(err)
	}
	st.secrets["after-move"] = "moved"
	st.auditSeq = lastAuditSeq(t, b)

	// PostgreSQL → a new SQLite data directory, with its master.key,
	// through a pipe (--file -).
	backup2 := cli.mustRun(t, "backup", "--postgres", dsn, "--file", "-")
	dir := filepath.Join(t.TempDir(), "new")
	key, _ := os.ReadFile(keyFile)
	must(t, os.MkdirAll(dir, 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "master.key"), key, 0o600))
	if code, out, errOut := cli.run(t, backup2, "restore", "--file", "-", "--data-dir", dir); code != 0 {
		t.Fatalf("restore from standard input: exit %d: %s %s", code, out, errOut)
	}
	b.Close()
	d := envOn(t, testenv.Start(t, testenv.WithDataDir(dir)), a.Bootstrap)
	checkBackupState(t, d, st)
	for _, s := range []*env{a, b, d} {
		s.AssertNotLogged(t, leaks...)
	}
}

// seedBackupState gives node e a vault with versioned secrets, a principal
// that reads them through a role, and an account with keys.
func seedBackupState(t *testing.T, e *env) *backupState {
	t.Helper()
	ctx := t.Context()
	st := &backupState{secrets: map[string]string{}, account: "bk-lang"}
	e.createVault(t, "bk-vault", nil)
	c := e.client(t, "bk-vault", e.cred)
	for i, v := range []string{"first-Pa55", "second-Pa55", "third-Pa55"} {
		r, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: ptr(v), Tags: map[string]*string{"n": ptr(fmt.Sprint(i))}}, nil)
		must(t, err)
		st.versions = append(st.versions, r.ID.Version())
		st.secrets["db-password"] = v
	}
	_, err := c.SetSecret(ctx, "api-token", azsecrets.SetSecretParameters{Value: ptr("tok-8c1f")}, nil)
	must(t, err)
	st.secrets["api-token"] = "tok-8c1f"

	reader, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "bk-reader", ServicePrincipal: true})
	must(t, err)
	_, secret, err := e.Directory.AddSecret(ctx, reader.AppID, directory.SecretSpec{DisplayName: "test"})
	must(t, err)
	st.readerCred, st.readerSec = reader.AppID, secret
	e.assign(t, e.vaultScope("bk-vault"), authz.RoleKeyVaultSecretsUser, reader.ObjectID)

	r := e.arm(t, "PUT", "/subscriptions/"+e.sub+"/resourceGroups/"+e.group+"/providers/Microsoft.CognitiveServices/accounts/"+st.account+"?api-version=2023-05-01",
		map[string]any{"kind": "TextAnalytics", "location": "westus", "sku": map[string]string{"name": "S"}, "properties": map[string]any{}}, "")
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		t.Fatalf("create account: %d %s", r.status, r.body)
	}
	st.key1, st.key2, st.etag = accountKeys(t, e, st.account)
	st.auditSeq = lastAuditSeq(t, e)
	return st
}

// accountKeys lists an account's keys and reads its ETag with
// armcognitiveservices.
func accountKeys(t *testing.T, e *env, name string) (key1, key2, etag string) {
	t.Helper()
	ac, err := armcognitiveservices.NewAccountsClient(e.sub, e.Credential(t), &arm.ClientOptions{ClientOptions: e.ClientOptions()})
	must(t, err)
	keys, err := ac.ListKeys(t.Context(), e.group, name, nil)
	must(t, err)
	acc, err := ac.Get(t.Context(), e.group, name, nil)
	must(t, err)
	return *keys.Key1, *keys.Key2, *acc.Etag
}

func lastAuditSeq(t *testing.T, e *env) int64 {
	t.Helper()
	rep, err := audit.New(e.Store, nil).Verify(t.Context())
	if err != nil {
		t.Fatalf("the audit chain does not verify: %v", err)
	}
	return rep.LastSeq
}

// checkBackupState checks, through the official clients, that node e holds
// st.
func checkBackupState(t *testing.T, e *env, st *backupState) {
	t.Helper()
	ctx := t.Context()
	reader := e.client(t, "bk-vault", e.adfsCredential(t, st.readerCred, st.readerSec))
	for name, want := range st.secrets {
		got, err := reader.GetSecret(ctx, name, "", nil)
		if err != nil {
			t.Errorf("%s: the reader principal cannot read %s: %v", e.URL, name, err)
			continue
		}
		if *got.Value != want {
			t.Errorf("%s: %s = %q, want %q", e.URL, name, *got.Value, want)
		}
	}
	var versions []string
	pager := e.client(t, "bk-vault", e.cred).NewListSecretPropertiesVersionsPager("db-password", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			versions = append(versions, p.ID.Version())
		}
	}
	for _, v := range st.versions {
		if !strings.Contains(strings.Join(versions, ","), v) {
			t.Errorf("%s: version %s of db-password is gone (have %v)", e.URL, v, versions)
		}
	}
	if first, err := reader.GetSecret(ctx, "db-password", st.versions[0], nil); err != nil || *first.Value != "first-Pa55" {
		t.Errorf("%s: the first version of db-password: %v", e.URL, err)
	}
	key1, key2, etag := accountKeys(t, e, st.account)
	if key1 != st.key1 || key2 != st.key2 {
		t.Errorf("%s: the account's keys changed", e.URL)
	}
	if etag != st.etag {
		t.Errorf("%s: the account's ETag %s, was %s", e.URL, etag, st.etag)
	}
	r := e.do(t, "POST", e.URL+"/ai/"+st.account+"/language/:analyze-text?api-version=2023-04-01",
		`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Bonjour tout le monde"}]}}`,
		"-", http.Header{"Ocp-Apim-Subscription-Key": {key2}})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"fr"`) {
		t.Errorf("%s: the data plane with key2: %d %s", e.URL, r.status, r.body)
	}
	if seq := lastAuditSeq(t, e); seq < st.auditSeq {
		t.Errorf("%s: the audit log ends at %d, the backup's at %d", e.URL, seq, st.auditSeq)
	}
}
