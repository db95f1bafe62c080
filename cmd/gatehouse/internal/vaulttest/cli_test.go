package vaulttest

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
)

// cliRunner runs `gatehouse …` in-process with a profile directory of its
// own.
type cliRunner struct{ dir string }

func (c *cliRunner) run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(t.Context(), args, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		LookupEnv: func(k string) (string, bool) {
			if k == "GATEHOUSE_CONFIG_DIR" {
				return c.dir, true
			}
			return "", false
		}})
	return code, out.String(), errb.String()
}

func (c *cliRunner) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := c.run(t, "", args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// login signs the bootstrap principal in with a profile of its own.
func (e *env) login(t *testing.T) *cliRunner {
	t.Helper()
	c := &cliRunner{dir: t.TempDir()}
	c.mustRun(t, "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret, "-o", "none")
	return c
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return v
}

// testCLI drives `gatehouse keyvault` and `gatehouse keyvault secret`.
func testCLI(t *testing.T, e *env) {
	c := e.login(t)
	created := decode[map[string]any](t, c.mustRun(t, "keyvault", "create", "-n", "cli-vault", "-g", e.group, "-l", "westus", "--retention-days", "7"))
	if created["name"] != "cli-vault" || created["properties"].(map[string]any)["vaultUri"] != e.vaultURL("cli-vault") {
		t.Fatalf("create: %v", created)
	}
	// create again without --retention-days: the vault keeps its 7 days.
	c.mustRun(t, "keyvault", "create", "-n", "cli-vault", "-g", e.group, "-l", "westus")
	if out := c.mustRun(t, "keyvault", "list", "--query", "[?name=='cli-vault'].name", "-o", "tsv"); strings.TrimSpace(out) != "cli-vault" {
		t.Fatalf("list: %q", out)
	}
	if code, _, errOut := c.run(t, "", "keyvault", "show", "-n", "no-such-vault"); code == 0 || !strings.Contains(errOut, "(ResourceNotFound)") {
		t.Fatalf("show of an unknown vault: %d %q", code, errOut)
	}
	// show without -g finds the group, as az does.
	if out := c.mustRun(t, "keyvault", "show", "-n", "cli-vault", "--query", "properties.softDeleteRetentionInDays", "-o", "tsv"); strings.TrimSpace(out) != "7" {
		t.Fatalf("show: %q", out)
	}
	e.assign(t, e.vaultScope("cli-vault"), authz.RoleKeyVaultSecretsOfficer, e.oid)

	kv := []string{"keyvault", "secret"}
	run := func(args ...string) string { return c.mustRun(t, append(kv, args...)...) }
	set := decode[map[string]any](t, run("set", "--vault-name", "cli-vault", "-n", "token", "--value", "cli-secret-1", "--content-type", "text/plain", "--tags", "a=b"))
	if set["value"] != "cli-secret-1" {
		t.Fatalf("set: %v", set)
	}
	file := filepath.Join(t.TempDir(), "value.txt")
	must(t, os.WriteFile(file, []byte("cli-secret-2\n"), 0o600))
	// From standard input (--file -): the value is neither in argv nor on disk.
	if code, _, errOut := c.run(t, "cli-secret-0", append(kv, "set", "--vault-name", "cli-vault", "-n", "piped", "--file", "-")...); code != 0 {
		t.Fatalf("set --file -: %d %s", code, errOut)
	}
	if out := run("show", "--vault-name", "cli-vault", "-n", "piped", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "cli-secret-0" {
		t.Fatalf("show of a piped value: %q", out)
	}
	run("delete", "--vault-name", "cli-vault", "-n", "piped")
	run("purge", "--vault-name", "cli-vault", "-n", "piped")
	run("set", "--vault-name", "cli-vault", "-n", "token", "--file", file)
	if out := run("show", "--vault-name", "cli-vault", "-n", "token", "--query", "value", "-o", "tsv"); out != "cli-secret-2\n\n" && strings.TrimSpace(out) != "cli-secret-2" {
		t.Fatalf("show: %q", out)
	}
	v1 := set["id"].(string)[strings.LastIndex(set["id"].(string), "/")+1:]
	if out := run("show", "--vault-name", "cli-vault", "-n", "token", "--version", v1, "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "cli-secret-1" {
		t.Fatalf("show --version: %q", out)
	}
	if out := run("list", "--vault-name", "cli-vault", "--query", "length(@)"); strings.TrimSpace(out) != "1" {
		t.Fatalf("list: %q", out)
	}
	if out := run("list-versions", "--vault-name", "cli-vault", "-n", "token", "--query", "length(@)"); strings.TrimSpace(out) != "2" {
		t.Fatalf("list-versions: %q", out)
	}
	backup := filepath.Join(t.TempDir(), "token.backup")
	run("backup", "--vault-name", "cli-vault", "-n", "token", "--file", backup)
	del := decode[map[string]any](t, run("delete", "--vault-name", "cli-vault", "-n", "token"))
	if del["recoveryId"] == nil {
		t.Fatalf("delete: %v", del)
	}
	if out := run("list-deleted", "--vault-name", "cli-vault", "--query", "[].id", "-o", "tsv"); !strings.Contains(out, "/secrets/token") {
		t.Fatalf("list-deleted: %q", out)
	}
	run("recover", "--vault-name", "cli-vault", "-n", "token")
	run("delete", "--vault-name", "cli-vault", "-n", "token")
	run("purge", "--vault-name", "cli-vault", "-n", "token")
	restored := decode[map[string]any](t, run("restore", "--vault-name", "cli-vault", "--file", backup))
	if id, _ := restored["id"].(string); !strings.HasPrefix(id, e.vaultURL("cli-vault")+"secrets/token/") || restored["value"] != nil {
		t.Fatalf("restore: %v", restored)
	}
	if out := run("show", "--vault-name", "cli-vault", "-n", "token", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "cli-secret-2" {
		t.Fatalf("after restore: %q", out)
	}
	// A login that names the server by its IP address still reaches vaults
	// by the public host's names (found in the authority's metadata).
	if u, err := url.Parse(e.URL); err != nil || u.Hostname() != "localhost" {
		t.Fatalf("the test server is at %s, not localhost", e.URL)
	} else {
		ipc := &cliRunner{dir: t.TempDir()}
		ipc.mustRun(t, "login", "--server", "https://127.0.0.1:"+u.Port(), "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
			"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret, "-o", "none")
		if out := ipc.mustRun(t, "keyvault", "secret", "show", "--vault-name", "cli-vault", "-n", "token", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "cli-secret-2" {
			t.Fatalf("show through a login by IP address: %q", out)
		}
	}
	// Errors come back as the server's codes.
	code, _, errOut := c.run(t, "", append(kv, "show", "--vault-name", "cli-vault", "-n", "missing")...)
	if code == 0 || !strings.Contains(errOut, "SecretNotFound") {
		t.Fatalf("show missing: %d %s", code, errOut)
	}
	c.mustRun(t, "keyvault", "delete", "-n", "cli-vault", "-g", e.group)
	code, _, errOut = c.run(t, "", "keyvault", "show", "-n", "cli-vault", "-g", e.group)
	if code == 0 || !strings.Contains(errOut, "ResourceNotFound") {
		t.Fatalf("show deleted: %d %s", code, errOut)
	}
	// The deleted vault: listed, shown and recovered by name alone (the
	// commands find its location and group), then purged.
	if out := c.mustRun(t, "keyvault", "list-deleted", "--query", "[?name=='cli-vault'].properties.location", "-o", "tsv"); strings.TrimSpace(out) != "westus" {
		t.Fatalf("list-deleted: %q", out)
	}
	if out := c.mustRun(t, "keyvault", "show-deleted", "-n", "cli-vault", "--query", "properties.vaultId", "-o", "tsv"); !strings.HasSuffix(strings.TrimSpace(out), "/vaults/cli-vault") {
		t.Fatalf("show-deleted: %q", out)
	}
	code, _, errOut = c.run(t, "", "keyvault", "show-deleted", "-n", "cli-vault", "-l", "eastus")
	if code == 0 || !strings.Contains(errOut, "no deleted vault") {
		t.Fatalf("show-deleted elsewhere: %d %s", code, errOut)
	}
	if out := c.mustRun(t, "keyvault", "recover", "-n", "cli-vault", "--query", "properties.provisioningState", "-o", "tsv"); strings.TrimSpace(out) != "Succeeded" {
		t.Fatalf("recover: %q", out)
	}
	// Its secrets and the role assignment at it came back with it.
	if out := run("show", "--vault-name", "cli-vault", "-n", "token", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "cli-secret-2" {
		t.Fatalf("after vault recover: %q", out)
	}
	c.mustRun(t, "keyvault", "delete", "-n", "cli-vault")
	c.mustRun(t, "keyvault", "purge", "-n", "cli-vault", "-l", "westus")
	if out := c.mustRun(t, "keyvault", "list-deleted", "--query", "[?name=='cli-vault'] | length(@)"); strings.TrimSpace(out) != "0" {
		t.Fatalf("after purge: %q", out)
	}
	code, _, errOut = c.run(t, "", "keyvault", "recover", "-n", "cli-vault")
	if code == 0 || !strings.Contains(errOut, "no deleted vault") {
		t.Fatalf("recover purged: %d %s", code, errOut)
	}
}
