package identitytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// testCLI drives `gatehouse login`, `ad sp …`, `ad user …`, the output
// formats and `logout` against the node.
func (f *fixture) testCLI(t *testing.T) {
	c := newCLI(t)
	if code, _, errOut := c.run(t, "ad", "sp", "list"); code == 0 || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("before login: exit %d %q", code, errOut)
	}
	out := c.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "--tenant", f.tenant,
		"--service-principal", "-u", f.s.Bootstrap.ClientID, "-p", f.s.Bootstrap.ClientSecret)
	if !strings.Contains(out, f.tenant) {
		t.Fatalf("login output: %s", out)
	}
	st, err := os.Stat(filepath.Join(c.dir, "profile.json"))
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("profile mode %v, want 0600", st.Mode().Perm())
	}

	// ad sp create → a working secret, shown once.
	var created struct{ AppID, DisplayName, Password, Tenant, ID string }
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "sp", "create", "--display-name", "cli-app")), &created))
	f.addSecret(created.Password)
	if created.AppID == "" || created.Password == "" || created.Tenant != f.tenant {
		t.Fatalf("create: %+v", created)
	}
	works := func(secret string) bool {
		_, err := f.s.SecretCredential(t, created.AppID, secret).GetToken(t.Context(),
			policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		return err == nil
	}
	if !works(created.Password) {
		t.Fatal("the created secret does not work")
	}

	// list / show with the output formats.
	if out := c.mustRun(t, "ad", "sp", "list", "--display-name", "cli-app", "--query", "[].appId", "-o", "tsv"); strings.TrimSpace(out) != created.AppID {
		t.Fatalf("list --query -o tsv: %q", out)
	}
	table := c.mustRun(t, "ad", "sp", "list", "--display-name", "cli-app", "-o", "table")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "DisplayName") || !strings.Contains(lines[2], created.AppID) {
		t.Fatalf("table:\n%s", table)
	}
	if out := c.mustRun(t, "ad", "sp", "show", "--id", created.AppID, "--query", "servicePrincipalType", "-o", "tsv"); strings.TrimSpace(out) != "Application" {
		t.Fatalf("show: %q", out)
	}
	// The application's API names (az ad app update --identifier-uris).
	apiURI := "api://cli-app-" + created.AppID[:8]
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--identifier-uris", apiURI)
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "identifierUris[0]", "-o", "tsv"); strings.TrimSpace(out) != apiURI {
		t.Fatalf("app show: %q", out)
	}
	if code, _, errOut := c.run(t, "ad", "app", "update", "--id", created.AppID, "--identifier-uris", "http://plain.example.test"); code == 0 || !strings.Contains(errOut, "api://") {
		t.Fatalf("a bad identifier URI: %d %q", code, errOut)
	}
	if code, _, errOut := c.run(t, "ad", "app", "update", "--id", created.AppID); code == 0 || !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("update without a change: %d %q", code, errOut)
	}
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--web-redirect-uris", "https://cli.example.test/cb,http://localhost:7000/cb")
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "web.redirectUris[1]", "-o", "tsv"); strings.TrimSpace(out) != "http://localhost:7000/cb" {
		t.Fatalf("web redirect URIs: %q", out)
	}
	// App roles: defined from a file, granted to the suite's app, in its token for the API.
	rolesFile := filepath.Join(t.TempDir(), "roles.json")
	must(t, os.WriteFile(rolesFile, []byte(`[{"value":"Orders.Read","displayName":"Read orders","allowedMemberTypes":["Application"],"isEnabled":true}]`), 0o600))
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--app-roles", "@"+rolesFile)
	roleID := strings.TrimSpace(c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "appRoles[0].id", "-o", "tsv"))
	// The same file again changes nothing: the role keeps its id (a new
	// one would remove an enabled role, which is refused).
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--app-roles", "@"+rolesFile)
	if again := strings.TrimSpace(c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "appRoles[0].id", "-o", "tsv")); again != roleID {
		t.Fatalf("the app role's id changed: %s → %s", roleID, again)
	}
	var grant struct{ ID, AppRoleID, PrincipalID string }
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "app", "role", "assign", "--id", created.AppID, "--assignee", f.app.AppID, "--role", "Orders.Read")), &grant))
	if grant.PrincipalID != f.app.ObjectID || grant.ID == "" {
		t.Fatalf("role assign: %+v", grant)
	}
	if code, _, errOut := c.run(t, "ad", "app", "role", "assign", "--id", created.AppID, "--assignee", f.app.AppID, "--role", "Orders.Write"); code == 0 || !strings.Contains(errOut, "no app role") {
		t.Fatalf("assigning an undefined role: %d %q", code, errOut)
	}
	tok, err := f.s.SecretCredential(t, f.app.AppID, f.secret).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{apiURI + "/.default"}})
	must(t, err)
	f.addSecret(tok.Token)
	if cl := f.claims(t, tok.Token, apiURI); len(cl.Roles) != 1 || cl.Roles[0] != "Orders.Read" {
		t.Fatalf("roles in the token: %v", cl.Roles)
	}
	if out := c.mustRun(t, "ad", "app", "role", "list", "--id", created.AppID, "--query", "[0].principalDisplayName", "-o", "tsv"); strings.TrimSpace(out) != "suite-app" {
		t.Fatalf("role list: %q", out)
	}
	c.mustRun(t, "ad", "app", "role", "remove", "--id", created.AppID, "--assignment-id", grant.ID)
	if out := c.mustRun(t, "ad", "app", "role", "list", "--id", created.AppID, "--query", "length(@)", "-o", "tsv"); strings.TrimSpace(out) != "0" {
		t.Fatalf("role list after remove: %q", out)
	}
	// Owners (az ad app owner …): the creator first; another added by appId, then removed.
	owners := func(kind string) string {
		return strings.Join(strings.Fields(c.mustRun(t, "ad", kind, "owner", "list", "--id", created.AppID, "--query", "sort([].displayName)", "-o", "tsv")), " ")
	}
	creator := strings.TrimSpace(c.mustRun(t, "ad", "sp", "show", "--id", f.s.Bootstrap.ClientID, "--query", "displayName", "-o", "tsv"))
	if got := owners("app"); got != creator {
		t.Fatalf("app owners: %q, want the creator %q", got, creator)
	}
	c.mustRun(t, "ad", "app", "owner", "add", "--id", created.AppID, "--owner-object-id", f.app.AppID)
	if got := owners("app"); !strings.Contains(got, "suite-app") || len(strings.Fields(got)) < 2 {
		t.Fatalf("app owners after add: %q", got)
	}
	if code, _, errOut := c.run(t, "ad", "app", "owner", "add", "--id", created.AppID, "--owner-object-id", f.app.AppID); code == 0 || !strings.Contains(errOut, "already exist") {
		t.Fatalf("adding an owner twice: %d %q", code, errOut)
	}
	c.mustRun(t, "ad", "app", "owner", "remove", "--id", created.AppID, "--owner-object-id", f.app.AppID)
	if got := owners("app"); got != creator {
		t.Fatalf("app owners after remove: %q", got)
	}
	if code, _, errOut := c.run(t, "ad", "app", "owner", "remove", "--id", created.AppID, "--owner-object-id", f.app.AppID); code == 0 || !strings.Contains(errOut, "one of its owners") {
		t.Fatalf("removing a non-owner: %d %q", code, errOut)
	}
	if code, _, errOut := c.run(t, "ad", "app", "owner", "add", "--id", created.AppID); code == 0 || !strings.Contains(errOut, "--owner-object-id") {
		t.Fatalf("add without an owner: %d %q", code, errOut)
	}
	if code, _, errOut := c.run(t, "ad", "app", "owner", "list", "--id", "00000000-0000-0000-0000-00000000dead"); code == 0 || !strings.Contains(errOut, "appId or object id") {
		t.Fatalf("owners of nothing: %d %q", code, errOut)
	}
	if got := owners("sp"); got != creator {
		t.Fatalf("sp owners: %q, want the creator %q", got, creator)
	}
	// Delegated scopes from a file: ids made, shown as Graph shows them; a bad one is refused.
	scopesFile := filepath.Join(t.TempDir(), "scopes.json")
	must(t, os.WriteFile(scopesFile, []byte(`[{"value":"Orders.View","adminConsentDisplayName":"View orders","type":"User","isEnabled":true}]`), 0o600))
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--scopes", "@"+scopesFile)
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "api.oauth2PermissionScopes[0].[value,type,isEnabled]", "-o", "tsv"); strings.Join(strings.Fields(out), " ") != "Orders.View User true" {
		t.Fatalf("scopes: %q", out)
	}
	// The file with an entry more adds it; the first keeps its id.
	must(t, os.WriteFile(scopesFile, []byte(`[{"value":"Orders.View","adminConsentDisplayName":"View orders","type":"User","isEnabled":true},`+
		`{"value":"Orders.Edit","adminConsentDisplayName":"Edit orders","type":"Admin","isEnabled":true}]`), 0o600))
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--scopes", "@"+scopesFile)
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "length(api.oauth2PermissionScopes)", "-o", "tsv"); strings.TrimSpace(out) != "2" {
		t.Fatalf("scopes after adding one: %q", out)
	}
	must(t, os.WriteFile(scopesFile, []byte(`[{"value":"Orders View","adminConsentDisplayName":"x"}]`), 0o600))
	if code, _, errOut := c.run(t, "ad", "app", "update", "--id", created.AppID, "--scopes", "@"+scopesFile); code == 0 || !strings.Contains(errOut, "no spaces") {
		t.Fatalf("a bad scope: %d %q", code, errOut)
	}
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--group-membership-claims", "All")
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "groupMembershipClaims", "-o", "tsv"); strings.TrimSpace(out) != "All" {
		t.Fatalf("group membership claims: %q", out)
	}
	if code, _, errOut := c.run(t, "ad", "app", "update", "--id", created.AppID, "--group-membership-claims", "Everyone"); code == 0 || !strings.Contains(errOut, "SecurityGroup") {
		t.Fatalf("a bad group membership claims value: %d %q", code, errOut)
	}
	must(t, os.WriteFile(scopesFile, []byte(`{"value":"x"}`), 0o600))
	if code, _, errOut := c.run(t, "ad", "app", "update", "--id", created.AppID, "--scopes", "@"+scopesFile); code == 0 || !strings.Contains(errOut, "JSON array") {
		t.Fatalf("not an array: %d %q", code, errOut)
	}
	c.mustRun(t, "ad", "app", "update", "--id", created.AppID, "--identifier-uris=")
	if out := c.mustRun(t, "ad", "app", "show", "--id", created.AppID, "--query", "length(identifierUris)", "-o", "tsv"); strings.TrimSpace(out) != "0" {
		t.Fatalf("cleared identifier URIs: %q", out)
	}
	if code, _, errOut := c.run(t, "ad", "sp", "list", "--query", "[?"); code == 0 || !strings.Contains(errOut, "--query") {
		t.Fatalf("bad query: %d %q", code, errOut)
	}

	// Rotation without downtime: reset --append keeps the old secret.
	var second struct{ Password, KeyID string }
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "sp", "credential", "reset", "--id", created.AppID, "--append", "--years", "2")), &second))
	f.addSecret(second.Password)
	if !works(created.Password) || !works(second.Password) {
		t.Fatal("after reset --append both secrets must work")
	}
	var creds []map[string]any
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "sp", "credential", "list", "--id", created.AppID)), &creds))
	if len(creds) != 2 || strings.Contains(mustJSON(creds), second.Password) {
		t.Fatalf("credential list: %v", creds)
	}
	for _, cr := range creds {
		if cr["keyId"] != second.KeyID {
			c.mustRun(t, "ad", "sp", "credential", "delete", "--id", created.AppID, "--key-id", cr["keyId"].(string))
		}
	}
	if works(created.Password) || !works(second.Password) {
		t.Fatal("after deleting the old secret only the new one may work")
	}
	// reset without --append replaces everything.
	var third struct{ Password string }
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "sp", "credential", "reset", "--id", created.AppID)), &third))
	f.addSecret(third.Password)
	if works(second.Password) || !works(third.Password) {
		t.Fatal("reset must replace the secrets")
	}
	// Certificates.
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	must(t, os.WriteFile(certFile, []byte(f.certPEM), 0o600))
	c.mustRun(t, "ad", "sp", "credential", "reset", "--id", created.AppID, "--cert", certFile, "--append")
	must(t, json.Unmarshal([]byte(c.mustRun(t, "ad", "sp", "credential", "list", "--id", created.AppID, "--cert")), &creds))
	if len(creds) != 1 {
		t.Fatalf("certificates: %v", creds)
	}
	// Sign in with the certificate.
	cc := newCLI(t)
	cc.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, // tenant: adfs, the default
		"--service-principal", "-u", created.AppID, "--certificate", certFile, "-o", "none")

	// Federated credentials.
	c.mustRun(t, "ad", "sp", "federated-credential", "create", "--id", created.AppID, "--name", "ci-prod",
		"--issuer", "https://token.actions.githubusercontent.com", "--subject", "repo:o/r:environment:prod")
	if out := c.mustRun(t, "ad", "sp", "federated-credential", "list", "--id", created.AppID, "--query", "[0].subject", "-o", "tsv"); strings.TrimSpace(out) != "repo:o/r:environment:prod" {
		t.Fatalf("federated list: %q", out)
	}
	c.mustRun(t, "ad", "sp", "federated-credential", "delete", "--id", created.AppID, "--federated-credential-id", "ci-prod")

	// People: create, sign in with a password, act, sign out.
	userID := c.mustRun(t, "ad", "user", "create", "--user-principal-name", "cli-user@suite.test", "--password", "cli user password", "--query", "id", "-o", "tsv")
	f.addSecret("cli user password")
	pc := newCLI(t)
	// Without a role anywhere the login says so, as az does; a role granted
	// later is found by the next command, without a new login.
	if code, _, errOut := pc.run(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "-u", "cli-user@suite.test", "-p", "cli user password", "-o", "none"); code != 0 || !strings.Contains(errOut, "No subscriptions found for cli-user@suite.test") {
		t.Fatalf("login without a role: exit %d %q", code, errOut)
	}
	if code, _, errOut := pc.run(t, "group", "list"); code == 0 || !strings.Contains(errOut, "--subscription is required") {
		t.Fatalf("group list without a subscription: exit %d %q", code, errOut)
	}
	c.mustRun(t, "role", "assignment", "create", "--assignee-object-id", strings.TrimSpace(userID), "--assignee-principal-type", "User",
		"--role", "Reader", "-o", "none")
	if out := pc.mustRun(t, "group", "list", "--query", "length(@) > `0`"); strings.TrimSpace(out) != "true" {
		t.Fatalf("group list once a Reader: %q", out)
	}
	// Without a directory role a person sees only what they own (nothing).
	if out := pc.mustRun(t, "ad", "sp", "list", "--query", "length(@)", "-o", "tsv"); strings.TrimSpace(out) != "0" {
		t.Fatalf("a person without a directory role lists %q", out)
	}
	if code, _, errOut := pc.run(t, "ad", "sp", "show", "--id", f.app.AppID); code == 0 || !strings.Contains(errOut, "Authorization_RequestDenied") {
		t.Fatalf("a person without a directory role: %d %q", code, errOut)
	}
	profile, err := os.ReadFile(filepath.Join(pc.dir, "profile.json"))
	must(t, err)
	if strings.Contains(string(profile), "cli user password") {
		t.Fatal("the profile stores a person's password")
	}
	pc.mustRun(t, "logout")
	if code, _, _ := pc.run(t, "ad", "sp", "list"); code == 0 {
		t.Fatal("commands work after logout")
	}
	c.mustRun(t, "ad", "user", "delete", "--id", "cli-user@suite.test")

	// The password can come from standard input instead of the command line.
	c.stdin = "cli stdin password\n"
	c.mustRun(t, "ad", "user", "create", "--user-principal-name", "cli-stdin@suite.test", "--password-stdin", "-o", "none")
	f.addSecret("cli stdin password")
	sc := newCLI(t)
	sc.stdin = "cli stdin password\n"
	sc.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "-u", "cli-stdin@suite.test", "--password-stdin", "-o", "none")
	if code, _, errOut := c.run(t, "ad", "user", "create", "--user-principal-name", "cli-nopass@suite.test"); code == 0 || !strings.Contains(errOut, "--password") {
		t.Fatalf("user create without a password: %d %q", code, errOut)
	}
	c.mustRun(t, "ad", "user", "delete", "--id", "cli-stdin@suite.test")

	// User-assigned identities through the management API (az identity's
	// shape); then run a command as the new identity.
	rg := f.s.Bootstrap.ResourceGroup
	if rg == "" || f.s.Bootstrap.SubscriptionID == "" {
		t.Fatal("the bootstrap file has no default subscription and group (the management API's bootstrap step)")
	}
	var mi map[string]any
	must(t, json.Unmarshal([]byte(c.mustRun(t, "identity", "create", "-g", rg, "-n", "cli-mi")), &mi))
	// Without --location: the group's, as az's default.
	groupLoc := strings.TrimSpace(c.mustRun(t, "group", "list", "--query", "[?name=='"+rg+"'].location", "-o", "tsv"))
	if mi["name"] != "cli-mi" || mi["clientId"] == nil || mi["principalId"] == nil || mi["location"] != groupLoc {
		t.Fatalf("identity create: %v (group in %q)", mi, groupLoc)
	}
	if out := c.mustRun(t, "identity", "show", "-g", rg, "-n", "cli-mi", "--query", "principalId", "-o", "tsv"); strings.TrimSpace(out) != mi["principalId"] {
		t.Fatalf("identity show: %q", out)
	}
	if out := c.mustRun(t, "identity", "list", "-g", rg, "--query", "[?name=='cli-mi'].clientId", "-o", "tsv"); strings.TrimSpace(out) != mi["clientId"] {
		t.Fatalf("identity list: %q", out)
	}
	t.Setenv("GATEHOUSE_TEST_HELPER", "mi")
	code, out, errOut := c.run(t, "run", "--identity", "cli-mi", "--", os.Args[0], "-test.run=^TestHelperProcess$")
	if code != 0 {
		t.Fatalf("run as cli-mi: %d %s", code, errOut)
	}
	res := helperResult(t, out)
	f.addSecret(res["token"], res["header"])
	if cl := f.claims(t, res["token"]); cl.Principal.ObjectID != mi["principalId"] {
		t.Fatalf("run as cli-mi: oid %s", cl.Principal.ObjectID)
	}
	// A principal without a directory role may act as the identity only
	// when role-based access lets it (Managed Identity Operator on it).
	op, err := f.s.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "mi-operator", ServicePrincipal: true})
	must(t, err)
	_, opSecret, err := f.s.Directory.AddSecret(t.Context(), op.AppID, directory.SecretSpec{})
	must(t, err)
	f.addSecret(opSecret)
	oc := newCLI(t)
	oc.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "--service-principal", "-u", op.AppID, "-p", opSecret, "-o", "none")
	if code, _, errOut := oc.run(t, "run", "--identity", mi["clientId"].(string), "--", os.Args[0], "-test.run=^TestHelperProcess$"); code == 0 || !strings.Contains(errOut, "AuthorizationFailed") {
		t.Fatalf("without a role: exit %d %q", code, errOut)
	}
	scope, err := gatehouse.ParseResourceID(mi["id"].(string))
	must(t, err)
	_, _, err = f.s.Authz.CreateAssignment(t.Context(), scope, gatehouse.NewGUID(), authz.AssignmentSpec{
		RoleDefinitionID: authz.DefinitionID(scope, authz.RoleManagedIdentityOperator), PrincipalID: op.ObjectID,
		PrincipalType: "ServicePrincipal"}, f.s.Bootstrap.ClientID)
	must(t, err)
	code, out, errOut = oc.run(t, "run", "--identity", mi["clientId"].(string), "--", os.Args[0], "-test.run=^TestHelperProcess$")
	if code != 0 {
		t.Fatalf("with Managed Identity Operator: exit %d %q", code, errOut)
	}
	res = helperResult(t, out)
	f.addSecret(res["token"], res["header"])
	if cl := f.claims(t, res["token"]); cl.Principal.ObjectID != mi["principalId"] {
		t.Fatalf("operator run: oid %s", cl.Principal.ObjectID)
	}
	c.mustRun(t, "identity", "delete", "-g", rg, "-n", "cli-mi")
	if code, _, errOut := c.run(t, "identity", "show", "-g", rg, "-n", "cli-mi"); code == 0 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("show after delete: %d %q", code, errOut)
	}

	// Delete the service principal.
	c.mustRun(t, "ad", "sp", "delete", "--id", created.AppID)
	if code, _, errOut := c.run(t, "ad", "sp", "show", "--id", created.AppID); code == 0 || !strings.Contains(errOut, "Request_ResourceNotFound") {
		t.Fatalf("show after delete: %d %q", code, errOut)
	}
	if works(third.Password) {
		t.Fatal("a deleted service principal still gets tokens")
	}
	if code, _, errOut := c.run(t, "ad", "sp", "login-typo"); code == 0 {
		t.Fatalf("unknown command accepted: %q", errOut)
	}
}
