package armtest

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
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

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return v
}

// testCLI drives the management commands of the gatehouse CLI.
func testCLI(t *testing.T, e *env) {
	c := &cliRunner{dir: t.TempDir()}
	c.mustRun(t, "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret)

	g := decodeJSON[map[string]any](t, c.mustRun(t, "group", "create", "-n", "cli-group", "-l", "westus", "--subscription", e.sub))
	if g["name"] != "cli-group" || g["location"] != "westus" {
		t.Fatalf("group create: %v", g)
	}
	sub := []string{"--subscription", e.sub}
	// Without --subscription: the profile's default (set at login).
	if out := c.mustRun(t, "group", "list", "--query", "[?name=='cli-group'].name", "-o", "tsv"); strings.TrimSpace(out) != "cli-group" {
		t.Fatalf("group list: %q", out)
	}
	acct := []string{"-n", "cli-acct", "-g", "cli-group", "--subscription", e.sub}
	created := decodeJSON[map[string]any](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "create",
		"--kind", "TextAnalytics", "-l", "westus", "--tags", "team=a"}, acct...)...))
	if created["name"] != "cli-acct" || created["kind"] != "TextAnalytics" {
		t.Fatalf("account create: %v", created)
	}
	if out := c.mustRun(t, append([]string{"cognitiveservices", "account", "show", "--query", "properties.endpoint", "-o", "tsv"}, acct...)...); strings.TrimSpace(out) != e.URL+"/ai/cli-acct/" {
		t.Fatalf("show --query endpoint: %q", out)
	}
	table := c.mustRun(t, "cognitiveservices", "account", "list", "-g", "cli-group", "--subscription", e.sub, "-o", "table")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "Name") || !strings.Contains(lines[2], "cli-acct") {
		t.Fatalf("list -o table:\n%s", table)
	}
	updated := decodeJSON[map[string]any](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "update",
		"--tags", "team=b", "--disable-local-auth", "true"}, acct...)...))
	if updated["tags"].(map[string]any)["team"] != "b" || updated["properties"].(map[string]any)["disableLocalAuth"] != true {
		t.Fatalf("update: %v", updated)
	}

	// Without local auth the keys are not listed (Azure's 400); with it again, they are.
	keysList := append([]string{"cognitiveservices", "account", "keys", "list"}, acct...)
	if code, _, errOut := c.run(t, "", keysList...); code == 0 || !strings.Contains(errOut, "disableLocalAuth is set to be true") {
		t.Fatalf("keys list without local auth: %d %s", code, errOut)
	}
	c.mustRun(t, append([]string{"cognitiveservices", "account", "update", "--disable-local-auth", "false", "-o", "none"}, acct...)...)
	keys := decodeJSON[map[string]string](t, c.mustRun(t, keysList...))
	if len(keys["key1"]) != 64 || len(keys["key2"]) != 64 {
		t.Fatalf("keys list: %v", keys)
	}
	// key1 was just used: regenerate asks, and "n" keeps it.
	id := e.accountID(t, "cli-group", "cli-acct")
	if err := e.Accounts.RecordUsage(t.Context(), []accounts.Usage{{AccountID: id.String(), Slot: accounts.Key1, Requests: 3,
		LastUsed: time.Now().Add(-time.Minute), ClientAddresses: []string{"198.51.100.4"}, UserAgents: []string{"billing-job/2"}}}); err != nil {
		t.Fatal(err)
	}
	usage := decodeJSON[[]map[string]any](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "keys", "usage"}, acct...)...))
	if len(usage) != 2 || usage[0]["requestsLastHour"] != float64(3) {
		t.Fatalf("keys usage: %v", usage)
	}
	regen := append([]string{"cognitiveservices", "account", "keys", "regenerate", "--key-name", "key1"}, acct...)
	code, _, errOut := c.run(t, "n\n", regen...)
	if code == 0 || !strings.Contains(errOut, "key1 was used") || !strings.Contains(errOut, "198.51.100.4") || !strings.Contains(errOut, "billing-job/2") {
		t.Fatalf("regenerate of a key in use without confirmation: exit %d: %s", code, errOut)
	}
	if now, _ := e.Accounts.LookupKey(keys["key1"]); now.Account == nil {
		t.Fatal("key1 was regenerated although the user said no")
	}
	code, out, errOut := c.run(t, "y\n", regen...)
	if code != 0 {
		t.Fatalf("regenerate confirmed: exit %d: %s", code, errOut)
	}
	after := decodeJSON[map[string]string](t, out)
	if after["key1"] == keys["key1"] || after["key2"] != keys["key2"] {
		t.Fatal("regenerate key1 did not change exactly key1")
	}
	// key2 is unused: no question asked; --yes also skips it.
	after2 := decodeJSON[map[string]string](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "keys", "regenerate", "--key-name", "KEY2"}, acct...)...))
	if after2["key1"] != after["key1"] || after2["key2"] == keys["key2"] {
		t.Fatal("regenerate key2 did not change exactly key2")
	}
	if code, _, _ := c.run(t, "", append([]string{"cognitiveservices", "account", "keys", "regenerate", "--key-name", "key3"}, acct...)...); code == 0 {
		t.Fatal("--key-name key3 accepted")
	}

	// Roles.
	if out := c.mustRun(t, "role", "definition", "list", "--name", "Reader", "--query", "[0].name", "-o", "tsv"); strings.TrimSpace(out) != authz.RoleReader {
		t.Fatalf("role definition list --name Reader: %q", out)
	}
	oid, _ := e.principal(t, "cli-assignee")
	appID := strings.TrimSpace(c.mustRun(t, "ad", "sp", "show", "--id", oid, "--query", "appId", "-o", "tsv"))
	scope := id.String()
	// An appId given as the object id: the error names the object id meant.
	if code, _, errOut := c.run(t, "", "role", "assignment", "create", "--assignee-object-id", appID, "--assignee-principal-type", "ServicePrincipal",
		"--role", "Cognitive Services User", "--scope", scope); code == 0 || !strings.Contains(errOut, "PrincipalNotFound") ||
		!strings.Contains(errOut, "object id is "+oid) {
		t.Fatalf("create with an appId as the object id: exit %d %s", code, errOut)
	}
	// --assignee takes the appId (looked up, as az does).
	ra := decodeJSON[map[string]any](t, c.mustRun(t, "role", "assignment", "create", "--assignee", appID,
		"--assignee-principal-type", "ServicePrincipal", "--role", "Cognitive Services User", "--scope", scope))
	if ra["principalId"] != oid || !strings.HasSuffix(ra["roleDefinitionId"].(string), authz.RoleCognitiveServicesUser) {
		t.Fatalf("role assignment create: %v", ra)
	}
	list := decodeJSON[[]map[string]any](t, c.mustRun(t, append([]string{"role", "assignment", "list", "--assignee", appID, "--all"}, sub...)...))
	if len(list) != 1 || list[0]["roleDefinitionName"] != "Cognitive Services User" || list[0]["scope"] != scope {
		t.Fatalf("role assignment list: %v", list)
	}
	c.mustRun(t, "role", "assignment", "delete", "--assignee", oid, "--role", "Cognitive Services User", "--scope", scope)
	if left := e.Authz.Assignments(authz.AssignmentFilter{PrincipalID: oid}); len(left) != 0 {
		t.Fatalf("assignment left after delete: %+v", left)
	}

	c.mustRun(t, append([]string{"cognitiveservices", "account", "delete"}, acct...)...)
	if _, ok := e.Accounts.LookupKey(after2["key1"]); ok {
		t.Fatal("deleted account's key still accepted")
	}
	// Soft delete: listed, shown, recovered with its keys, purged.
	deleted := decodeJSON[[]map[string]any](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "list-deleted"}, sub...)...))
	if !slices.ContainsFunc(deleted, func(d map[string]any) bool { return d["name"] == "cli-acct" }) {
		t.Fatalf("list-deleted: %v", deleted)
	}
	// Creating it again is refused with the command that brings it back.
	if code, _, errOut := c.run(t, "", append([]string{"cognitiveservices", "account", "create", "--kind", "TextAnalytics", "-l", "westus"}, acct...)...); code == 0 ||
		!strings.Contains(errOut, "FlagMustBeSetForRestore") || !strings.Contains(errOut, "gatehouse cognitiveservices account recover -n cli-acct -g cli-group -l westus") {
		t.Fatalf("create over a deleted account: exit %d %s", code, errOut)
	}
	where := append([]string{"-l", "westus"}, acct...)
	shown := decodeJSON[map[string]any](t, c.mustRun(t, append([]string{"cognitiveservices", "account", "show-deleted"}, where...)...))
	if props, _ := shown["properties"].(map[string]any); props["scheduledPurgeDate"] == nil {
		t.Fatalf("show-deleted: %v", shown)
	}
	if code, _, errOut := c.run(t, "", append([]string{"cognitiveservices", "account", "recover"}, acct...)...); code == 0 || !strings.Contains(errOut, "--location") {
		t.Fatalf("recover without --location: exit %d %s", code, errOut)
	}
	c.mustRun(t, append([]string{"cognitiveservices", "account", "recover"}, where...)...)
	if m, ok := e.Accounts.LookupKey(after2["key1"]); !ok || m.Slot != accounts.Key1 {
		t.Fatal("the recovered account's key1 is refused")
	}
	// Tags: the account's (--resource-id) and the subscription's predefined ones (--name).
	acctID := e.accountPath("cli-group", "cli-acct")
	tagsOf := func(out string) map[string]any {
		t.Helper()
		props, _ := decodeJSON[map[string]any](t, out)["properties"].(map[string]any)
		tags, _ := props["tags"].(map[string]any)
		return tags
	}
	if got := tagsOf(c.mustRun(t, "tag", "create", "--resource-id", acctID, "--tags", "team=ai,env=prod")); len(got) != 2 || got["team"] != "ai" {
		t.Fatalf("tag create --resource-id: %v", got)
	}
	if got := tagsOf(c.mustRun(t, "tag", "update", "--resource-id", acctID, "--operation", "delete", "--tags", "env")); len(got) != 1 || got["team"] != "ai" {
		t.Fatalf("tag update --operation delete: %v", got)
	}
	// az's forms: the words after --tags, and a comma inside a value.
	if got := tagsOf(c.mustRun(t, "tag", "update", "--resource-id", acctID, "--operation", "merge", "--tags", "note=a,b", "env=dev", "cost=1")); len(got) != 4 ||
		got["note"] != "a,b" || got["env"] != "dev" || got["cost"] != "1" {
		t.Fatalf("tag update with az's forms: %v", got)
	}
	if got := tagsOf(c.mustRun(t, "tag", "update", "--resource-id", acctID, "--operation", "delete", "--tags", "note", "--tags", "env", "--tags", "cost")); len(got) != 1 || got["team"] != "ai" {
		t.Fatalf("tag update --operation delete of three: %v", got)
	}
	// Without --tags, tag create would have replaced them all with none.
	if code, _, errOut := c.run(t, "", "tag", "create", "--resource-id", acctID); code == 0 || !strings.Contains(errOut, "--tags is required") {
		t.Fatalf("tag create without --tags: exit %d %s", code, errOut)
	}
	if got := tagsOf(c.mustRun(t, "tag", "list", "--resource-id", acctID)); len(got) != 1 {
		t.Fatalf("tag list --resource-id: %v", got)
	}
	c.mustRun(t, "tag", "create", "--name", "CliTeam", "--subscription", e.sub)
	c.mustRun(t, "tag", "add-value", "--name", "cliteam", "--value", "platform", "--subscription", e.sub)
	if out := c.mustRun(t, "tag", "list", "--subscription", e.sub, "--query", "[?tagName=='CliTeam'].values[].tagValue", "-o", "tsv"); strings.TrimSpace(out) != "platform" {
		t.Fatalf("tag list: %q", out)
	}
	if code, _, errOut := c.run(t, "no\n", "tag", "delete", "--name", "CliTeam", "--subscription", e.sub); code == 0 || !strings.Contains(errOut, "not deleted") {
		t.Fatalf("tag delete not confirmed: exit %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", "tag", "delete", "--name", "CliTeam", "--resource-id", acctID, "--yes"); code == 0 || !strings.Contains(errOut, "--name") {
		t.Fatalf("tag delete with --name and --resource-id: exit %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", "tag", "delete", "--name", "CliTeam", "--subscription", e.sub, "--yes"); code == 0 || !strings.Contains(errOut, "TagNameHasValues") {
		t.Fatalf("tag delete of a name with values: exit %d %s", code, errOut)
	}
	c.mustRun(t, "tag", "remove-value", "--name", "CliTeam", "--value", "platform", "--subscription", e.sub)
	c.run(t, "y\n", "tag", "delete", "--name", "CliTeam", "--subscription", e.sub)
	if out := c.mustRun(t, "tag", "list", "--subscription", e.sub, "--query", "[?tagName=='CliTeam']", "-o", "tsv"); strings.TrimSpace(out) != "" {
		t.Fatalf("tag list after delete: %q", out)
	}
	c.mustRun(t, "tag", "delete", "--resource-id", acctID, "--yes")

	// A lock keeps the account; removed, the delete goes through.
	lockArgs := []string{"-g", "cli-group", "--account", "cli-acct", "--subscription", e.sub}
	c.mustRun(t, append([]string{"lock", "create", "-n", "cli-keep", "--lock-type", "CanNotDelete", "--notes", "prod"}, lockArgs...)...)
	if out := c.mustRun(t, "lock", "list", "-g", "cli-group", "--query", "[0].[name,properties.level]", "-o", "tsv"); strings.Join(strings.Fields(out), " ") != "cli-keep CanNotDelete" {
		t.Fatalf("lock list: %q", out)
	}
	if code, _, errOut := c.run(t, "", append([]string{"cognitiveservices", "account", "delete"}, acct...)...); code == 0 || !strings.Contains(errOut, "ScopeLocked") {
		t.Fatalf("delete a locked account: exit %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", "lock", "create", "-n", "x", "--account", "cli-acct"); code == 0 || !strings.Contains(errOut, "--resource-group") {
		t.Fatalf("lock create without a group: exit %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", append([]string{"lock", "create", "-n", "x"}, lockArgs...)...); code == 0 || !strings.Contains(errOut, "--lock-type") {
		t.Fatalf("lock create without a type: exit %d %s", code, errOut)
	}
	c.mustRun(t, append([]string{"lock", "delete", "-n", "cli-keep"}, lockArgs...)...)
	c.mustRun(t, append([]string{"cognitiveservices", "account", "delete"}, acct...)...)
	c.mustRun(t, append([]string{"cognitiveservices", "account", "purge"}, where...)...)
	if code, _, errOut := c.run(t, "", append([]string{"cognitiveservices", "account", "show-deleted"}, where...)...); code == 0 || !strings.Contains(errOut, "ResourceNotFound") {
		t.Fatalf("show-deleted after purge: exit %d %s", code, errOut)
	}
	if code, _, _ := c.run(t, "no\n", "group", "delete", "-n", "cli-group", "--subscription", e.sub); code == 0 {
		t.Fatal("group delete without confirmation succeeded")
	}
	c.mustRun(t, "group", "delete", "-n", "cli-group", "--subscription", e.sub, "--yes")
	e.AssertNotLogged(t, keys["key1"], keys["key2"], after["key1"], after2["key2"])
}
