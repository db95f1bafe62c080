package armtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// azCLI runs the real az CLI with its own configuration directory, trusting
// the node's CA (REQUESTS_CA_BUNDLE, as a user would set it).
type azCLI struct {
	t          *testing.T
	path       string
	config, ca string
	redact     []string // credentials never printed in a failure
	env        []string // more environment
}

func newAzCLI(t *testing.T, e *env) *azCLI {
	t.Helper()
	path, err := exec.LookPath("az")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("az is not installed (apt-get install -y azure-cli); CI=true: the az compatibility test must run")
		}
		t.Skip("az is not installed (apt-get install -y azure-cli)")
	}
	return &azCLI{t: t, path: path, config: t.TempDir(), ca: e.CAFile, redact: []string{e.Bootstrap.ClientSecret}}
}

// with returns a copy of a that reports to t (a subtest).
func (a *azCLI) with(t *testing.T) *azCLI {
	c := *a
	c.t = t
	return &c
}

// run runs az and returns its stdout; a failure ends the test.
func (a *azCLI) run(args ...string) []byte {
	a.t.Helper()
	out, errOut, err := a.try(args...)
	if err != nil {
		// Never print the arguments: a login carries the secret.
		a.t.Fatalf("az %s %s: %v\n%s", args[0], args[1], err, a.clean(errOut))
	}
	return out
}

// json runs az and decodes its JSON output into v.
func (a *azCLI) json(v any, args ...string) {
	a.t.Helper()
	out := a.run(args...)
	if err := json.Unmarshal(out, v); err != nil {
		a.t.Fatalf("az %s: output is not JSON: %v: %.500s", strings.Join(args[:2], " "), err, a.clean(string(out)))
	}
}

func (a *azCLI) try(args ...string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(a.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.path, args...)
	cmd.Env = append(os.Environ(), "AZURE_CONFIG_DIR="+a.config, "HOME="+a.config, "REQUESTS_CA_BUNDLE="+a.ca,
		"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_NO_COLOR=true", "AZURE_CORE_OUTPUT=json",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true", "AZURE_CORE_SURVEY_MESSAGE=false")
	cmd.Env = append(cmd.Env, a.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.String(), err
}

func (a *azCLI) clean(s string) string {
	for _, r := range a.redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "***")
		}
	}
	return s
}

// register registers the node as a custom cloud in ADFS mode
// (azure-wire.md §6.1) and selects it. The cloud is given as a
// --cloud-config file because az 2.45 has no flag for the Microsoft Graph
// resource id, which az keyvault create needs.
func (a *azCLI) register(e *env) {
	a.t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"endpoints": map[string]string{
			"resourceManager":                e.URL + "/",
			"activeDirectory":                e.URL + "/adfs",
			"activeDirectoryResourceId":      "https://management.core.windows.net/",
			"activeDirectoryGraphResourceId": "https://graph.windows.net/",
			"microsoftGraphResourceId":       e.URL + "/",
		},
		"suffixes": map[string]string{"keyvaultDns": ".vault." + e.Host},
	})
	must(a.t, err)
	file := filepath.Join(a.config, "gatehouse-cloud.json")
	must(a.t, os.WriteFile(file, cfg, 0o600))
	a.run("cloud", "register", "-n", "Gatehouse", "--cloud-config", "@"+file)
	a.run("cloud", "set", "-n", "Gatehouse")
}

// TestAzCLI drives the real az CLI (Debian's azure-cli 2.45) against a
// node, as a user would after registering it as a cloud in ADFS mode
// (azure-wire.md §6): service-principal login with a secret and with a
// certificate, accounts, tokens for every resource, resource groups,
// Cognitive Services accounts and their keys, managed identities and Key
// Vault vaults. It skips when az is not installed, except under CI=true.
func TestAzCLI(t *testing.T) {
	up := testenv.NewUpstream(t, "az-upstream-key-5e2c")
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.Models = up.CatalogFile(t) }))
	az := newAzCLI(t, e)
	az.register(e)
	tenant := e.Directory.DefaultTenant()

	var accounts []map[string]any
	az.json(&accounts, "login", "--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret, "--tenant", tenant)
	if len(accounts) != 1 || accounts[0]["id"] != e.sub {
		t.Fatalf("az login: %v", accounts)
	}

	t.Run("account", func(t *testing.T) {
		az := az.with(t)
		var list []struct {
			ID, TenantID, CloudName, State string
			IsDefault                      bool
			User                           struct{ Name, Type string }
		}
		az.json(&list, "account", "list")
		if len(list) != 1 || list[0].ID != e.sub || list[0].TenantID != tenant || list[0].CloudName != "Gatehouse" ||
			list[0].State != "Enabled" || !list[0].IsDefault || list[0].User.Type != "servicePrincipal" || list[0].User.Name != e.Bootstrap.ClientID {
			t.Fatalf("az account list: %+v", list)
		}
		var show map[string]any
		az.json(&show, "account", "show")
		if show["id"] != e.sub || show["tenantId"] != tenant {
			t.Fatalf("az account show: %v", show)
		}
	})

	// az rest against Graph's alternate key and query options, as scripts
	// send them (Graph is the node itself, so the resource is named).
	t.Run("rest-graph-alternate-key", func(t *testing.T) {
		az := az.with(t)
		var sp map[string]any
		az.json(&sp, "rest", "--method", "get", "--resource", e.URL+"/",
			"--url", e.URL+"/v1.0/servicePrincipals(appId='"+e.Bootstrap.ClientID+"')?$select=id,appId")
		if len(sp) != 3 || sp["appId"] != e.Bootstrap.ClientID || sp["id"] == nil {
			t.Fatalf("az rest servicePrincipals(appId=…): %v", sp)
		}
		var page struct {
			Value []map[string]any `json:"value"`
		}
		az.json(&page, "rest", "--method", "get", "--resource", e.URL+"/", "--url", e.URL+"/v1.0/applications?$top=1&$select=appId")
		if len(page.Value) != 1 || len(page.Value[0]) != 1 {
			t.Fatalf("az rest applications?$top=1: %v", page)
		}
		if _, errOut, err := az.try("rest", "--method", "get", "--resource", e.URL+"/", "--url", e.URL+"/v1.0/servicePrincipals(appId=x)"); err == nil ||
			!strings.Contains(errOut, "Request_BadRequest") {
			t.Fatalf("a malformed key: %v %s", err, az.clean(errOut))
		}
	})

	t.Run("get-access-token", func(t *testing.T) {
		az := az.with(t)
		vault := e.Authority.VaultResource()
		for _, tt := range []struct {
			name string
			args []string
			auds []string
		}{
			{"management", nil, authority.ManagementAudiences},
			{"cognitive-services", []string{"--resource", "https://cognitiveservices.azure.com"}, authority.CognitiveServicesAudiences},
			{"key-vault", []string{"--resource", vault}, e.Authority.VaultAudiences()},
			{"graph", []string{"--resource", "https://graph.microsoft.com"}, authority.GraphAudiences},
			{"scope", []string{"--scope", "https://cognitiveservices.azure.com/.default"}, authority.CognitiveServicesAudiences},
		} {
			t.Run(tt.name, func(t *testing.T) {
				az := az.with(t)
				var tok struct {
					AccessToken, TokenType, Tenant, Subscription, ExpiresOn string
				}
				az.json(&tok, append([]string{"account", "get-access-token"}, tt.args...)...)
				c, err := e.Authority.Verify(t.Context(), tok.AccessToken, tt.auds...)
				if err != nil {
					t.Fatalf("token does not verify: %v", err)
				}
				if c.Principal.ClientID != e.Bootstrap.ClientID || tok.TokenType != "Bearer" || tok.Tenant != tenant || tok.Subscription != e.sub {
					t.Fatalf("token of %s (%s %s %s)", c.Principal.ClientID, tok.TokenType, tok.Tenant, tok.Subscription)
				}
				// expiresOn is local time without a zone.
				exp, err := time.ParseInLocation("2006-01-02 15:04:05.000000", tok.ExpiresOn, time.Local)
				if err != nil || time.Until(exp) < 50*time.Minute || time.Until(exp) > 70*time.Minute {
					t.Fatalf("expiresOn %q: %v", tok.ExpiresOn, err)
				}
			})
		}
	})

	// An application's API: az ad app create/update --identifier-uris, its
	// service principal, and az account get-access-token for the API.
	t.Run("app-api", func(t *testing.T) {
		az := az.with(t)
		uri := "api://az-orders-" + gatehouse.NewGUID()[:8]
		var app struct {
			ID, AppID      string
			IdentifierURIs []string `json:"identifierUris"`
		}
		az.json(&app, "ad", "app", "create", "--display-name", "az-orders-api", "--identifier-uris", uri)
		if app.AppID == "" || len(app.IdentifierURIs) != 1 || app.IdentifierURIs[0] != uri {
			t.Fatalf("az ad app create: %+v", app)
		}
		uri2 := uri + "-v2"
		az.run("ad", "app", "update", "--id", app.AppID, "--identifier-uris", uri, uri2)
		var uris []string
		az.json(&uris, "ad", "app", "show", "--id", app.AppID, "--query", "identifierUris")
		if len(uris) != 2 || uris[1] != uri2 {
			t.Fatalf("az ad app show after update: %v", uris)
		}
		// A web app's and a native app's redirect URIs.
		az.run("ad", "app", "update", "--id", app.AppID, "--web-redirect-uris", "https://orders.example.test/signin-oidc",
			"--public-client-redirect-uris", "myapp://auth")
		var redirects struct{ Web, Public []string }
		az.json(&redirects, "ad", "app", "show", "--id", app.AppID, "--query", "{web: web.redirectUris, public: publicClient.redirectUris}")
		if len(redirects.Web) != 1 || redirects.Web[0] != "https://orders.example.test/signin-oidc" || len(redirects.Public) != 1 {
			t.Fatalf("redirect URIs: %+v", redirects)
		}
		// App roles from a manifest file, as az ad app update --app-roles takes them.
		rolesFile := filepath.Join(t.TempDir(), "roles.json")
		must(t, os.WriteFile(rolesFile, []byte(`[{"allowedMemberTypes":["Application"],"description":"Read orders",
			"displayName":"Orders reader","isEnabled":true,"value":"Orders.Read"}]`), 0o600))
		az.run("ad", "app", "update", "--id", app.AppID, "--app-roles", "@"+rolesFile)
		var roleValues []string
		az.json(&roleValues, "ad", "app", "show", "--id", app.AppID, "--query", "appRoles[].value")
		if len(roleValues) != 1 || roleValues[0] != "Orders.Read" {
			t.Fatalf("app roles: %v", roleValues)
		}
		az.run("ad", "sp", "create", "--id", app.AppID)
		var sp struct{ AppID string }
		az.json(&sp, "ad", "sp", "show", "--id", uri2)
		if sp.AppID != app.AppID {
			t.Fatalf("az ad sp show --id %s: %+v", uri2, sp)
		}
		// Delegated scopes, set as a manifest's api property through az's generic --set.
		scopeID := gatehouse.NewGUID()
		az.run("ad", "app", "update", "--id", app.AppID, "--set", `api={"oauth2PermissionScopes":[{"id":"`+scopeID+
			`","value":"Orders.View","type":"User","isEnabled":true,"adminConsentDisplayName":"View orders","adminConsentDescription":"Read orders as the signed-in person"}]}`)
		var scopes []string
		az.json(&scopes, "ad", "sp", "show", "--id", uri2, "--query", "oauth2PermissionScopes[].value")
		if len(scopes) != 1 || scopes[0] != "Orders.View" {
			t.Fatalf("the service principal's scopes: %v", scopes)
		}
		// Declared API permissions (requiredResourceAccess): kept and listed; consent is implicit.
		const graphApp, userRead = "00000003-0000-0000-c000-000000000000", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"
		az.run("ad", "app", "permission", "add", "--id", app.AppID, "--api", graphApp, "--api-permissions", userRead+"=Scope")
		az.run("ad", "app", "permission", "add", "--id", app.AppID, "--api", graphApp, "--api-permissions", userRead+"=Scope") // twice: kept once
		var perms []struct {
			ResourceAppID  string `json:"resourceAppId"`
			ResourceAccess []struct{ ID, Type string }
		}
		az.json(&perms, "ad", "app", "permission", "list", "--id", app.AppID)
		if len(perms) != 1 || perms[0].ResourceAppID != graphApp || len(perms[0].ResourceAccess) != 1 || perms[0].ResourceAccess[0].Type != "Scope" {
			t.Fatalf("az ad app permission list: %+v", perms)
		}
		if _, errOut, err := az.try("ad", "app", "permission", "add", "--id", app.AppID, "--api", graphApp, "--api-permissions", "not-a-guid=Scope"); err == nil || !strings.Contains(errOut, "GUID") {
			t.Fatalf("a bad permission id: %v %s", err, az.clean(errOut))
		}
		az.run("ad", "app", "permission", "delete", "--id", app.AppID, "--api", graphApp)
		if az.json(&perms, "ad", "app", "permission", "list", "--id", app.AppID); len(perms) != 0 {
			t.Fatalf("after az ad app permission delete: %+v", perms)
		}
		// Consent, recorded: the bootstrap client granted the API's scope
		// for everyone; granting again replaces the grant (az deletes the
		// old one first).
		type grant struct{ ID, ClientID, ResourceID, ConsentType, Scope string }
		var g grant
		az.json(&g, "ad", "app", "permission", "grant", "--id", e.Bootstrap.ClientID, "--api", app.AppID, "--scope", "Orders.View")
		if g.ID == "" || g.ConsentType != "AllPrincipals" || g.Scope != "Orders.View" {
			t.Fatalf("az ad app permission grant: %+v", g)
		}
		az.json(&g, "ad", "app", "permission", "grant", "--id", e.Bootstrap.ClientID, "--api", app.AppID, "--scope", "Orders.View", "openid")
		var grants []grant
		az.json(&grants, "ad", "app", "permission", "list-grants", "--id", e.Bootstrap.ClientID)
		if len(grants) != 1 || grants[0].Scope != "Orders.View openid" || grants[0].ID != g.ID {
			t.Fatalf("az ad app permission list-grants: %+v", grants)
		}
		// Group claims, as az's own help shows: --set groupMembershipClaims=…; the caller's groups in its token.
		az.run("ad", "app", "update", "--id", app.AppID, "--set", "groupMembershipClaims=SecurityGroup")
		var group struct{ ID string }
		az.json(&group, "ad", "group", "create", "--display-name", "Az Readers", "--mail-nickname", "az-readers")
		var me struct{ ID string }
		az.json(&me, "ad", "sp", "show", "--id", e.Bootstrap.ClientID)
		az.run("ad", "group", "member", "add", "--group", group.ID, "--member-id", me.ID)
		var tok struct{ AccessToken string }
		az.json(&tok, "account", "get-access-token", "--scope", uri2+"/.default")
		if c, err := e.Authority.Verify(t.Context(), tok.AccessToken, uri2); err != nil || c.Principal.ClientID != e.Bootstrap.ClientID ||
			len(c.Groups) != 1 || c.Groups[0] != group.ID {
			t.Fatalf("token for the API: %+v %v", c, err)
		}
		az.run("ad", "group", "delete", "--group", group.ID)
		az.run("ad", "app", "delete", "--id", app.AppID)
		// A grant on a deleted API is no longer listed.
		if az.json(&grants, "ad", "app", "permission", "list-grants", "--id", e.Bootstrap.ClientID); len(grants) != 0 {
			t.Fatalf("grants after the API was deleted: %+v", grants)
		}
	})

	// The rest of az ad a team uses day to day: rotating secrets,
	// federated credentials for CI, people.
	t.Run("ad-daily", func(t *testing.T) {
		az := az.with(t)
		var sp struct{ AppID, Password string }
		az.json(&sp, "ad", "sp", "create-for-rbac", "-n", "az-daily")
		az.redact = append(az.redact, sp.Password)
		var apps []struct{ AppID string }
		az.json(&apps, "ad", "app", "list", "--display-name", "az-daily")
		if len(apps) != 1 || apps[0].AppID != sp.AppID {
			t.Fatalf("az ad app list --display-name: %+v", apps)
		}
		var sps []struct{ AppID string }
		az.json(&sps, "ad", "sp", "list", "--display-name", "az-daily")
		if len(sps) != 1 || sps[0].AppID != sp.AppID {
			t.Fatalf("az ad sp list --display-name: %+v", sps)
		}
		// Rotation: --append keeps the old secret, a plain reset replaces it.
		var second struct{ AppID, Password string }
		az.json(&second, "ad", "app", "credential", "reset", "--id", sp.AppID, "--append", "--display-name", "second")
		az.redact = append(az.redact, second.Password)
		var creds []map[string]any
		az.json(&creds, "ad", "app", "credential", "list", "--id", sp.AppID)
		if len(creds) != 2 {
			t.Fatalf("after reset --append: %d credentials", len(creds))
		}
		// The service principal has credentials of its own, apart from
		// its application's (Graph's): az ad sp credential reset replaces
		// those alone, and the application's secrets keep working.
		az.json(&creds, "ad", "sp", "credential", "list", "--id", sp.AppID)
		if len(creds) != 0 {
			t.Fatalf("the service principal lists its application's credentials: %d", len(creds))
		}
		var third struct{ AppID, Password string }
		az.json(&third, "ad", "sp", "credential", "reset", "--id", sp.AppID)
		az.redact = append(az.redact, third.Password)
		az.json(&third, "ad", "sp", "credential", "reset", "--id", sp.AppID) // replaces the first
		az.redact = append(az.redact, third.Password)
		az.json(&creds, "ad", "sp", "credential", "list", "--id", sp.AppID)
		if len(creds) != 1 {
			t.Fatalf("after sp credential reset: %d credentials", len(creds))
		}
		az.json(&creds, "ad", "app", "credential", "list", "--id", sp.AppID)
		if len(creds) != 2 {
			t.Fatalf("sp credential reset touched the application's credentials: %d left", len(creds))
		}
		for _, secret := range []string{sp.Password, third.Password} {
			e.Token(t, e.SecretCredential(t, sp.AppID, secret), "https://management.azure.com/.default")
		}
		// A certificate of its own (a PATCH of the service principal's
		// keyCredentials), again leaving the application's alone.
		az.run("ad", "sp", "credential", "reset", "--id", sp.AppID, "--create-cert", "--append")
		az.json(&creds, "ad", "sp", "credential", "list", "--id", sp.AppID, "--cert")
		if len(creds) != 1 {
			t.Fatalf("after sp credential reset --create-cert: %d certificates", len(creds))
		}
		az.json(&creds, "ad", "app", "credential", "list", "--id", sp.AppID)
		if len(creds) != 2 {
			t.Fatalf("sp credential reset --create-cert touched the application's secrets: %d left", len(creds))
		}
		// Federated credential for a CI system (GitHub Actions' shape).
		fic := filepath.Join(t.TempDir(), "fic.json")
		must(t, os.WriteFile(fic, []byte(`{"name":"gh-main","issuer":"https://token.actions.githubusercontent.com",
			"subject":"repo:octo/app:ref:refs/heads/main","audiences":["api://AzureADTokenExchange"],"description":"main"}`), 0o600))
		az.run("ad", "app", "federated-credential", "create", "--id", sp.AppID, "--parameters", fic)
		var fics []struct{ Name, Subject string }
		az.json(&fics, "ad", "app", "federated-credential", "list", "--id", sp.AppID)
		if len(fics) != 1 || fics[0].Name != "gh-main" {
			t.Fatalf("federated credentials: %+v", fics)
		}
		// A new branch: update, by name (a PATCH of the credential).
		dev := filepath.Join(t.TempDir(), "fic-dev.json")
		must(t, os.WriteFile(dev, []byte(`{"subject":"repo:octo/app:ref:refs/heads/dev"}`), 0o600))
		az.run("ad", "app", "federated-credential", "update", "--id", sp.AppID, "--federated-credential-id", "gh-main", "--parameters", dev)
		var ficShown struct{ Name, Subject, Issuer string }
		az.json(&ficShown, "ad", "app", "federated-credential", "show", "--id", sp.AppID, "--federated-credential-id", "gh-main")
		if ficShown.Subject != "repo:octo/app:ref:refs/heads/dev" || ficShown.Issuer != "https://token.actions.githubusercontent.com" {
			t.Fatalf("after az ad app federated-credential update: %+v", ficShown)
		}
		az.run("ad", "app", "federated-credential", "delete", "--id", sp.AppID, "--federated-credential-id", "gh-main")
		// People.
		var user struct{ ID, UserPrincipalName string }
		az.json(&user, "ad", "user", "create", "--display-name", "Az Person", "--user-principal-name", "az.person@suite.test",
			"--password", "an az person password 1")
		if user.ID == "" || user.UserPrincipalName != "az.person@suite.test" {
			t.Fatalf("az ad user create: %+v", user)
		}
		var shown struct{ ID string }
		az.json(&shown, "ad", "user", "show", "--id", "az.person@suite.test")
		if shown.ID != user.ID {
			t.Fatalf("az ad user show: %+v", shown)
		}
		// The flag alone marks the current password temporary (az sends a
		// passwordProfile without a password); a new one with it too.
		az.run("ad", "user", "update", "--id", user.ID, "--force-change-password-next-sign-in", "true")
		az.run("ad", "user", "update", "--id", user.ID, "--password", "an az person password 2", "--force-change-password-next-sign-in", "false")
		// Groups: a role assigned to one grants its members.
		var group struct{ ID, DisplayName, MailNickname string }
		az.json(&group, "ad", "group", "create", "--display-name", "Az Team", "--mail-nickname", "az-team")
		if group.ID == "" || group.MailNickname != "az-team" {
			t.Fatalf("az ad group create: %+v", group)
		}
		az.json(&group, "ad", "group", "create", "--display-name", "Az Team", "--mail-nickname", "az-team") // idempotent, as az makes it
		var groups []struct{ ID string }
		if az.json(&groups, "ad", "group", "list", "--display-name", "Az"); len(groups) != 1 || groups[0].ID != group.ID {
			t.Fatalf("az ad group list: %+v", groups)
		}
		az.run("ad", "group", "member", "add", "--group", group.ID, "--member-id", user.ID)
		var check struct{ Value bool }
		if az.json(&check, "ad", "group", "member", "check", "--group", group.ID, "--member-id", user.ID); !check.Value {
			t.Fatal("az ad group member check: not a member")
		}
		var members []struct{ ID, UserPrincipalName string }
		if az.json(&members, "ad", "group", "member", "list", "--group", "Az Team"); len(members) != 1 || members[0].UserPrincipalName != "az.person@suite.test" {
			t.Fatalf("az ad group member list: %+v", members)
		}
		var memberOf []struct{ ID, DisplayName string }
		if az.json(&memberOf, "ad", "user", "get-member-groups", "--id", user.ID); len(memberOf) != 1 || memberOf[0].ID != group.ID || memberOf[0].DisplayName != "Az Team" {
			t.Fatalf("az ad user get-member-groups: %+v", memberOf)
		}
		// Nested: a group in the group; its members are members too, and a cycle is refused.
		var parent struct{ ID string }
		az.json(&parent, "ad", "group", "create", "--display-name", "Az Org", "--mail-nickname", "az-org")
		az.run("ad", "group", "member", "add", "--group", parent.ID, "--member-id", group.ID)
		if az.json(&check, "ad", "group", "member", "check", "--group", parent.ID, "--member-id", user.ID); !check.Value {
			t.Fatal("az ad group member check: not a member of the outer group")
		}
		if az.json(&memberOf, "ad", "user", "get-member-groups", "--id", user.ID); len(memberOf) != 2 || memberOf[1].ID != parent.ID {
			t.Fatalf("az ad user get-member-groups with a nested group: %+v", memberOf)
		}
		if _, errOut, err := az.try("ad", "group", "member", "add", "--group", group.ID, "--member-id", parent.ID); err == nil || !strings.Contains(errOut, "inside itself") {
			t.Fatalf("a cycle: %v %s", err, errOut)
		}
		var parentMembers []struct {
			ID   string
			Type string `json:"@odata.type"`
		}
		if az.json(&parentMembers, "ad", "group", "member", "list", "--group", parent.ID); len(parentMembers) != 1 || parentMembers[0].Type != "#microsoft.graph.group" {
			t.Fatalf("az ad group member list of the outer group: %+v", parentMembers)
		}
		az.run("ad", "group", "delete", "--group", parent.ID)
		az.run("ad", "group", "member", "remove", "--group", group.ID, "--member-id", user.ID)
		if az.json(&check, "ad", "group", "member", "check", "--group", group.ID, "--member-id", user.ID); check.Value {
			t.Fatal("az ad group member check: still a member")
		}
		az.run("ad", "group", "delete", "--group", group.ID)
		az.run("ad", "user", "delete", "--id", user.ID)
		az.run("ad", "app", "delete", "--id", sp.AppID)
	})

	// Owners: az ad app owner add|list|remove and az ad sp owner list; a
	// person without a directory role manages the application they own
	// (a service principal, a secret) with their own az, while a person
	// who owns nothing is refused, and owning an application that holds a
	// directory role (the bootstrap one) gives no way to its credentials.
	t.Run("app-owners", func(t *testing.T) {
		az := az.with(t)
		var app struct{ ID, AppID string }
		az.json(&app, "ad", "app", "create", "--display-name", "az-owned")
		owner := subscriptionReader(t, e, "azowner@example.test", "az owner password 1")
		stranger := subscriptionReader(t, e, "azstranger@example.test", "az stranger password 1")
		var boot struct{ ID string }
		az.json(&boot, "ad", "sp", "show", "--id", e.Bootstrap.ClientID)
		type ownerView struct {
			ID                string
			Type              string `json:"@odata.type"`
			UserPrincipalName string `json:"userPrincipalName"`
		}
		var owners []ownerView
		if az.json(&owners, "ad", "app", "owner", "list", "--id", app.AppID); len(owners) != 1 || owners[0].ID != boot.ID ||
			owners[0].Type != "#microsoft.graph.servicePrincipal" {
			t.Fatalf("the creator as owner: %+v", owners)
		}
		az.run("ad", "app", "owner", "add", "--id", app.AppID, "--owner-object-id", owner.ObjectID)
		az.run("ad", "app", "owner", "add", "--id", app.AppID, "--owner-object-id", owner.ObjectID) // az checks first: no error
		if az.json(&owners, "ad", "app", "owner", "list", "--id", app.ID); len(owners) != 2 || owners[1].UserPrincipalName != owner.UserName ||
			owners[1].Type != "#microsoft.graph.user" {
			t.Fatalf("az ad app owner list: %+v", owners)
		}
		if _, errOut, err := az.try("ad", "app", "owner", "add", "--id", app.AppID, "--owner-object-id", gatehouse.NewGUID()); err == nil ||
			!strings.Contains(errOut, "does not exist") {
			t.Fatalf("an unknown owner: %v %s", err, az.clean(errOut))
		}

		// The owner, signed in to az as themselves, with no directory role.
		mine, _ := deviceLogin(t, e, az, owner)
		mine.run("ad", "sp", "create", "--id", app.AppID)
		var sps []ownerView
		if mine.json(&sps, "ad", "sp", "owner", "list", "--id", app.AppID); len(sps) != 1 || sps[0].ID != owner.ObjectID {
			t.Fatalf("az ad sp owner list: %+v", sps)
		}
		var cred struct{ AppID, Password string }
		mine.json(&cred, "ad", "app", "credential", "reset", "--id", app.AppID, "--append", "--display-name", "owner's")
		mine.redact = append(mine.redact, cred.Password)
		az.redact = append(az.redact, cred.Password)
		if _, err := e.SecretCredential(t, app.AppID, cred.Password).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{mgmtScope}}); err != nil {
			t.Fatalf("the owner's secret: %v", err)
		}
		var listed []struct{ AppID string }
		if mine.json(&listed, "ad", "app", "list", "--show-mine"); len(listed) != 1 || listed[0].AppID != app.AppID {
			t.Fatalf("az ad app list --show-mine: %+v", listed)
		}
		// Not the bootstrap application's credentials, owned or not: it is a
		// Global Administrator.
		if _, errOut, err := mine.try("ad", "app", "credential", "reset", "--id", e.Bootstrap.ClientID, "--append"); err == nil ||
			!strings.Contains(errOut, "Insufficient privileges") {
			t.Fatalf("a person's credential for the bootstrap application: %v %s", err, mine.clean(errOut))
		}
		az.run("ad", "app", "owner", "add", "--id", e.Bootstrap.ClientID, "--owner-object-id", owner.ObjectID)
		if _, errOut, err := mine.try("ad", "app", "credential", "reset", "--id", e.Bootstrap.ClientID, "--append"); err == nil ||
			!strings.Contains(errOut, "directory role") {
			t.Fatalf("an owner's credential for the bootstrap application: %v %s", err, mine.clean(errOut))
		}
		if _, errOut, err := mine.try("ad", "app", "owner", "add", "--id", e.Bootstrap.ClientID, "--owner-object-id", stranger.ObjectID); err == nil ||
			!strings.Contains(errOut, "directory role") {
			t.Fatalf("an owner making an owner of the bootstrap application: %v %s", err, mine.clean(errOut))
		}
		az.run("ad", "app", "owner", "remove", "--id", e.Bootstrap.ClientID, "--owner-object-id", owner.ObjectID)

		// The stranger owns nothing: no credential, no owner for themselves.
		other, _ := deviceLogin(t, e, az, stranger)
		for _, args := range [][]string{
			{"ad", "app", "credential", "reset", "--id", app.AppID, "--append"},
			{"ad", "app", "owner", "add", "--id", app.AppID, "--owner-object-id", stranger.ObjectID},
			{"ad", "app", "owner", "list", "--id", app.AppID},
		} {
			if _, errOut, err := other.try(args...); err == nil || !strings.Contains(errOut, "Insufficient privileges") {
				t.Fatalf("a stranger's az %s: %v %s", strings.Join(args[:4], " "), err, other.clean(errOut))
			}
		}

		// Removed, the owner can no longer.
		az.run("ad", "app", "owner", "remove", "--id", app.AppID, "--owner-object-id", owner.ObjectID)
		if az.json(&owners, "ad", "app", "owner", "list", "--id", app.AppID); len(owners) != 1 {
			t.Fatalf("after az ad app owner remove: %+v", owners)
		}
		if _, errOut, err := mine.try("ad", "app", "credential", "reset", "--id", app.AppID, "--append"); err == nil || !strings.Contains(errOut, "Insufficient privileges") {
			t.Fatalf("a former owner's credential: %v %s", err, mine.clean(errOut))
		}
		if _, errOut, err := az.try("ad", "app", "owner", "remove", "--id", app.AppID, "--owner-object-id", owner.ObjectID); err == nil ||
			!strings.Contains(errOut, "does not exist") {
			t.Fatalf("removing a non-owner: %v %s", err, az.clean(errOut))
		}
		az.run("ad", "app", "delete", "--id", app.AppID)
		az.run("ad", "user", "delete", "--id", owner.ObjectID)
		az.run("ad", "user", "delete", "--id", stranger.ObjectID)
		e.AssertNotLogged(t, cred.Password)
	})

	// The usual way to make a service principal for a CI job. (With
	// --role, Debian's az 2.45 fails before its role assignment request:
	// 'RoleAssignmentsOperations' object has no attribute 'config' — as
	// for az role assignment create; the role is assigned with
	// armauthorization here.)
	t.Run("create-for-rbac", func(t *testing.T) {
		az := az.with(t)
		var sp struct{ AppID, DisplayName, Password, Tenant string }
		az.json(&sp, "ad", "sp", "create-for-rbac", "-n", "az-ci")
		az.redact = append(az.redact, sp.Password)
		if sp.AppID == "" || sp.Tenant != tenant || sp.DisplayName != "az-ci" || sp.Password == "" {
			t.Fatalf("create-for-rbac: %+v", sp)
		}
		var oid string
		az.json(&oid, "ad", "sp", "show", "--id", sp.AppID, "--query", "id")
		assign(t, e, "/subscriptions/"+e.sub, authz.RoleReader, oid)
		cred, err := azidentity.NewClientSecretCredential(tenant, sp.AppID, sp.Password, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: e.ClientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		accounts, _, _, _ := e.clients(t, cred)
		if _, err := accounts.NewListPager(nil).NextPage(t.Context()); err != nil {
			t.Fatalf("the new principal as Reader: %v", err)
		}
		az.run("ad", "sp", "delete", "--id", sp.AppID)
	})

	t.Run("groups-accounts-keys", func(t *testing.T) {
		az := az.with(t)
		const group, name = "az-cli-group", "az-cli-acct"
		var g map[string]any
		az.json(&g, "group", "create", "-n", group, "-l", "westus", "--tags", "team=a")
		if g["name"] != group || g["location"] != "westus" {
			t.Fatalf("az group create: %v", g)
		}
		if out := strings.TrimSpace(string(az.run("group", "exists", "-n", group))); out != "true" {
			t.Fatalf("az group exists: %s", out)
		}
		var groups []struct{ Name string }
		az.json(&groups, "group", "list")
		if !slices.ContainsFunc(groups, func(g struct{ Name string }) bool { return g.Name == group }) {
			t.Fatalf("az group list: %v", groups)
		}
		// --tag narrows the list (a $filter the server must not ignore).
		az.json(&groups, "group", "list", "--tag", "team=a")
		if len(groups) != 1 || groups[0].Name != group {
			t.Fatalf("az group list --tag team=a: %v", groups)
		}
		az.json(&groups, "group", "list", "--tag", "team=b")
		if len(groups) != 0 {
			t.Fatalf("az group list --tag team=b: %v", groups)
		}

		var acct struct {
			ID, Name, Kind string
			Properties     struct{ Endpoint, ProvisioningState string }
		}
		az.json(&acct, "cognitiveservices", "account", "create", "-n", name, "-g", group, "--kind", "TextAnalytics",
			"--sku", "S0", "-l", "westus", "--yes")
		if acct.Name != name || acct.Kind != "TextAnalytics" || acct.Properties.ProvisioningState != "Succeeded" ||
			acct.Properties.Endpoint != e.URL+"/ai/"+name+"/" {
			t.Fatalf("az cognitiveservices account create: %+v", acct)
		}
		az.json(&acct, "cognitiveservices", "account", "show", "-n", name, "-g", group)
		if acct.Properties.Endpoint != e.URL+"/ai/"+name+"/" {
			t.Fatalf("az cognitiveservices account show: %+v", acct)
		}
		var list []struct{ Name string }
		az.json(&list, "cognitiveservices", "account", "list", "-g", group)
		if len(list) != 1 || list[0].Name != name {
			t.Fatalf("az cognitiveservices account list -g: %v", list)
		}
		az.json(&list, "cognitiveservices", "account", "list")
		if !slices.ContainsFunc(list, func(a struct{ Name string }) bool { return a.Name == name }) {
			t.Fatalf("az cognitiveservices account list: %v", list)
		}
		var kinds []string
		az.json(&kinds, "cognitiveservices", "account", "list-kinds")
		if !slices.Contains(kinds, "OpenAI") || !slices.Contains(kinds, "TextAnalytics") {
			t.Fatalf("az cognitiveservices account list-kinds: %v", kinds)
		}
		az.json(&list, "cognitiveservices", "account", "list-skus", "--kind", "TextAnalytics", "-l", "westus")
		if !slices.ContainsFunc(list, func(s struct{ Name string }) bool { return s.Name == "S0" }) {
			t.Fatalf("az cognitiveservices account list-skus: %v", list)
		}

		var keys, after map[string]string
		az.json(&keys, "cognitiveservices", "account", "keys", "list", "-n", name, "-g", group)
		if len(keys["key1"]) != 64 || len(keys["key2"]) != 64 {
			t.Fatal("az keys list: not two keys")
		}
		az.redact = append(az.redact, keys["key1"], keys["key2"])
		az.json(&after, "cognitiveservices", "account", "keys", "regenerate", "-n", name, "-g", group, "--key-name", "key1")
		if after["key1"] == keys["key1"] || after["key2"] != keys["key2"] {
			t.Fatal("az keys regenerate --key-name key1 did not change exactly key1")
		}
		az.redact = append(az.redact, after["key1"])
		// The regenerated key works on the data plane at once.
		req, _ := http.NewRequestWithContext(t.Context(), "POST", acct.Properties.Endpoint+"language/:analyze-text?api-version=2023-04-01",
			strings.NewReader(`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello there, friend."}]}}`))
		req.Header.Set("Ocp-Apim-Subscription-Key", after["key1"])
		req.Header.Set("Content-Type", "application/json")
		if resp, err := e.Client.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("the regenerated key1 on the data plane: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}

		// az's network rules (a GET, then a PATCH of properties.networkAcls):
		// the first IP rule turns the firewall on (az's default rule set is
		// Deny), and the data plane applies the rules to this client
		// (127.0.0.1) at once.
		dataPlane := func(want int) {
			t.Helper()
			status := 0
			for deadline := time.Now().Add(5 * time.Second); status != want && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				req, _ := http.NewRequestWithContext(t.Context(), "POST", acct.Properties.Endpoint+"language/:analyze-text?api-version=2023-04-01",
					strings.NewReader(`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello there, friend."}]}}`))
				req.Header.Set("Ocp-Apim-Subscription-Key", after["key1"])
				req.Header.Set("Content-Type", "application/json")
				resp, err := e.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			}
			if status != want {
				t.Fatalf("data plane under the network rules: %d, want %d", status, want)
			}
		}
		var acl struct {
			DefaultAction string `json:"defaultAction"`
			IPRules       []struct {
				Value string `json:"value"`
			} `json:"ipRules"`
		}
		az.run("cognitiveservices", "account", "network-rule", "add", "-n", name, "-g", group, "--ip-address", "10.1.0.0/16")
		az.json(&acl, "cognitiveservices", "account", "network-rule", "list", "-n", name, "-g", group)
		if acl.DefaultAction != "Deny" || len(acl.IPRules) != 1 || acl.IPRules[0].Value != "10.1.0.0/16" {
			t.Fatalf("az network-rule list after add: %+v", acl)
		}
		dataPlane(http.StatusForbidden)
		az.run("cognitiveservices", "account", "network-rule", "add", "-n", name, "-g", group, "--ip-address", "127.0.0.1")
		dataPlane(http.StatusOK)
		az.run("cognitiveservices", "account", "network-rule", "remove", "-n", name, "-g", group, "--ip-address", "10.1.0.0/16")
		az.json(&acl, "cognitiveservices", "account", "network-rule", "list", "-n", name, "-g", group)
		if len(acl.IPRules) != 1 || acl.IPRules[0].Value != "127.0.0.1" {
			t.Fatalf("az network-rule list after remove: %+v", acl)
		}

		az.run("cognitiveservices", "account", "delete", "-n", name, "-g", group)
		az.json(&list, "cognitiveservices", "account", "list", "-g", group)
		if len(list) != 0 {
			t.Fatalf("after delete: %v", list)
		}
		// The account is soft-deleted: listed, shown, recovered with its
		// keys, deleted again and purged.
		var deleted []struct {
			ID, Name   string
			Properties struct{ DeletionDate, ScheduledPurgeDate string }
		}
		az.json(&deleted, "cognitiveservices", "account", "list-deleted")
		if len(deleted) != 1 || deleted[0].Name != name || deleted[0].Properties.ScheduledPurgeDate == "" ||
			!strings.HasSuffix(deleted[0].ID, "/locations/westus/resourceGroups/"+group+"/deletedAccounts/"+name) {
			t.Fatalf("list-deleted: %+v", deleted)
		}
		var shown struct{ Name, Kind string }
		az.json(&shown, "cognitiveservices", "account", "show-deleted", "-l", "westus", "-g", group, "-n", name)
		if shown.Name != name || shown.Kind != "TextAnalytics" {
			t.Fatalf("show-deleted: %+v", shown)
		}
		if _, errOut, err := az.try("cognitiveservices", "account", "create", "-n", name, "-g", group, "--kind", "TextAnalytics",
			"--sku", "S0", "-l", "westus", "--yes"); err == nil || !strings.Contains(errOut, "FlagMustBeSetForRestore") {
			t.Fatalf("create over a deleted account: %v %s", err, az.clean(errOut))
		}
		az.run("cognitiveservices", "account", "recover", "-l", "westus", "-g", group, "-n", name)
		// What Gatehouse does not do is refused, not dropped.
		for flag, code := range map[string]string{
			"--encryption":     "CustomerManagedKeyNotSupported",
			"--storage":        "UserOwnedStorageNotSupported",
			"--api-properties": "ApiPropertiesNotSupported",
		} {
			value := map[string]string{
				"--encryption": `{"keySource":"Microsoft.KeyVault","keyVaultProperties":{"keyName":"k","keyVersion":"1","keyVaultUri":"https://kv.example/"}}`,
				"--storage":    `[{"resourceId":"/subscriptions/` + e.sub + `/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/z"}]`,
			}[flag]
			args := []string{"cognitiveservices", "account", "update", "-n", name, "-g", group, flag}
			if flag == "--api-properties" {
				args = append(args, "qnaRuntimeEndpoint=https://x.example")
			} else {
				args = append(args, value)
			}
			if _, errOut, err := az.try(args...); err == nil || !strings.Contains(errOut, code) {
				t.Fatalf("az account update %s: %v %s", flag, err, az.clean(errOut))
			}
		}
		var recovered map[string]string
		az.json(&recovered, "cognitiveservices", "account", "keys", "list", "-n", name, "-g", group)
		if recovered["key1"] != after["key1"] || recovered["key2"] != after["key2"] {
			t.Fatal("az recover: the keys differ from the deleted account's")
		}
		az.run("cognitiveservices", "account", "delete", "-n", name, "-g", group)
		az.run("cognitiveservices", "account", "purge", "-l", "westus", "-g", group, "-n", name)
		az.json(&deleted, "cognitiveservices", "account", "list-deleted")
		if len(deleted) != 0 {
			t.Fatalf("list-deleted after purge: %+v", deleted)
		}
		az.run("group", "delete", "-n", group, "--yes")
		if out := strings.TrimSpace(string(az.run("group", "exists", "-n", group))); out != "false" {
			t.Fatalf("az group exists after delete: %s", out)
		}
		e.AssertNotLogged(t, keys["key1"], keys["key2"], after["key1"])
	})

	// Deployments made the Azure way: az 2.45 sends the model and
	// properties.scaleSettings (no sku, no upstream), so only a model of the
	// node's catalog (serve --models) can be deployed — and is then served
	// by the catalog's upstream.
	t.Run("deployments", func(t *testing.T) {
		az := az.with(t)
		group := e.createGroup(t, "az-deploy")
		az.run("cognitiveservices", "account", "create", "-n", "az-openai", "-g", group, "--kind", "OpenAI", "--sku", "S0", "-l", "westus", "--yes")
		var models []struct {
			Format, Name, Version string
			IsDefaultVersion      bool
		}
		az.json(&models, "cognitiveservices", "account", "list-models", "-n", "az-openai", "-g", group)
		if len(models) != 3 || models[0].Name != "gpt-4o-mini" || models[0].Version != "2024-07-18" || !models[0].IsDefaultVersion ||
			models[1].IsDefaultVersion || models[2].Name != "text-embedding-3-small" {
			t.Errorf("list-models: %+v", models)
		}
		type deployment struct {
			Name string
			SKU  struct {
				Name     string
				Capacity int
			}
			Properties struct {
				Model             struct{ Format, Name, Version string }
				ProvisioningState string
				ScaleSettings     struct {
					ScaleType string
					Capacity  int
				}
			}
		}
		var dep deployment
		az.json(&dep, "cognitiveservices", "account", "deployment", "create", "-n", "az-openai", "-g", group, "--deployment-name", "chat",
			"--model-name", "gpt-4o-mini", "--model-version", "2024-05-13", "--model-format", "OpenAI",
			"--scale-settings-scale-type", "Manual", "--scale-settings-capacity", "3")
		if dep.Name != "chat" || dep.SKU.Capacity != 3 || dep.Properties.Model.Version != "2024-05-13" || dep.Properties.ProvisioningState != "Succeeded" ||
			dep.Properties.ScaleSettings.ScaleType != "Manual" || dep.Properties.ScaleSettings.Capacity != 3 {
			t.Errorf("deployment create: %+v", dep)
		}
		var list []deployment
		az.json(&list, "cognitiveservices", "account", "deployment", "list", "-n", "az-openai", "-g", group)
		if len(list) != 1 || list[0].Name != "chat" {
			t.Errorf("deployment list: %+v", list)
		}
		az.json(&dep, "cognitiveservices", "account", "deployment", "show", "-n", "az-openai", "-g", group, "--deployment-name", "chat")
		if dep.Properties.Model.Name != "gpt-4o-mini" || dep.Properties.ScaleSettings.ScaleType != "Manual" {
			t.Errorf("deployment show: %+v", dep)
		}

		// The deployment az made answers, through the catalog's upstream.
		var keys map[string]string
		az.json(&keys, "cognitiveservices", "account", "keys", "list", "-n", "az-openai", "-g", group)
		az.redact = append(az.redact, keys["key1"], keys["key2"])
		r := e.do(t, request{method: "POST", path: "/ai/az-openai/openai/deployments/chat/chat/completions?api-version=2024-10-21", token: "-",
			header: http.Header{"Api-Key": {keys["key1"]}}, body: `{"messages":[{"role":"user","content":"hi"}]}`})
		if r.status != 200 || !strings.Contains(string(r.body), "echo from "+testenv.CatalogUpstreamModel) {
			t.Errorf("chat through the deployment: %d %s", r.status, r.body)
		}

		// A model the catalog lacks is refused with Azure's error shape.
		if _, errOut, err := az.try("cognitiveservices", "account", "deployment", "create", "-n", "az-openai", "-g", group,
			"--deployment-name", "other", "--model-name", "gpt-5", "--model-version", "1", "--model-format", "OpenAI",
			"--scale-settings-scale-type", "Manual", "--scale-settings-capacity", "1"); err == nil || !strings.Contains(errOut, "DeploymentModelNotSupported") {
			t.Errorf("a model outside the catalog: %v %s", err, az.clean(errOut))
		}
		// Generic resource commands find the types' api-versions in the
		// provider's resourceTypes.
		id := e.accountPath(group, "az-openai")
		var generic struct {
			Name, Type string
			Tags       map[string]string
		}
		az.json(&generic, "resource", "show", "--ids", id+"/deployments/chat")
		if generic.Name != "chat" || generic.Type != "Microsoft.CognitiveServices/accounts/deployments" {
			t.Errorf("az resource show (deployment): %+v", generic)
		}
		az.json(&generic, "resource", "tag", "--ids", id, "--tags", "cost=ai")
		if generic.Name != "az-openai" || generic.Tags["cost"] != "ai" {
			t.Errorf("az resource tag: %+v", generic)
		}
		var locations []struct{ Name string }
		az.json(&locations, "account", "list-locations")
		if !slices.ContainsFunc(locations, func(l struct{ Name string }) bool { return l.Name == "westus" }) {
			t.Errorf("az account list-locations: %+v", locations)
		}
		type tagValue struct{ TagValue string }
		type tagName struct {
			TagName string
			Count   struct{ Value int }
			Values  []tagValue
		}
		var tags []tagName
		az.json(&tags, "tag", "list")
		if i := slices.IndexFunc(tags, func(tg tagName) bool { return tg.TagName == "cost" }); i < 0 || tags[i].Count.Value < 1 ||
			!slices.Contains(tags[i].Values, tagValue{"ai"}) {
			t.Errorf("az tag list: %+v", tags)
		}
		// Predefined tags: az tag create --name, add-value, remove-value, delete --name.
		var predefined tagName
		if az.json(&predefined, "tag", "create", "--name", "AzPredefined"); predefined.TagName != "AzPredefined" || predefined.Count.Value != 0 {
			t.Errorf("az tag create --name: %+v", predefined)
		}
		var added tagValue
		if az.json(&added, "tag", "add-value", "--name", "azpredefined", "--value", "v1"); added.TagValue != "v1" {
			t.Errorf("az tag add-value: %+v", added)
		}
		az.json(&tags, "tag", "list")
		if i := slices.IndexFunc(tags, func(tg tagName) bool { return tg.TagName == "AzPredefined" }); i < 0 ||
			!slices.Equal(tags[i].Values, []tagValue{{"v1"}}) {
			t.Errorf("az tag list with a predefined tag: %+v", tags)
		}
		if _, errOut, err := az.try("tag", "delete", "--name", "AzPredefined", "--yes"); err == nil || !strings.Contains(errOut, "TagNameHasValues") {
			t.Errorf("az tag delete --name of a name with values: %v %s", err, errOut)
		}
		az.run("tag", "remove-value", "--name", "AzPredefined", "--value", "v1")
		az.run("tag", "delete", "--name", "AzPredefined", "--yes")
		if _, errOut, err := az.try("tag", "add-value", "--name", "AzPredefined", "--value", "v1"); err == nil || !strings.Contains(errOut, "TagNameNotFound") {
			t.Errorf("az tag add-value after az tag delete --name: %v %s", err, errOut)
		}
		var namespaces []string
		az.json(&namespaces, "provider", "list", "--query", "[?registrationState=='Registered'].namespace")
		if !slices.Contains(namespaces, "Microsoft.CognitiveServices") || !slices.Contains(namespaces, "Microsoft.KeyVault") {
			t.Errorf("az provider list: %v", namespaces)
		}

		// The operations catalog, for writing custom roles.
		var provider struct {
			Name          string
			ResourceTypes []struct {
				Name       string
				Operations []struct {
					Name         string
					IsDataAction bool
				}
			}
		}
		az.json(&provider, "provider", "operation", "show", "--namespace", "Microsoft.CognitiveServices")
		found := false
		for _, rt := range provider.ResourceTypes {
			for _, op := range rt.Operations {
				found = found || op.Name == "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action" && op.IsDataAction
			}
		}
		if provider.Name != "Microsoft.CognitiveServices" || !found {
			t.Errorf("az provider operation show: %+v", provider)
		}

		// Nothing is billed: no commitment tiers or plans, as empty lists;
		// no preview features and no Azure Policy either.
		for _, args := range [][]string{
			{"feature", "list"},
			{"feature", "registration", "list"},
			{"policy", "assignment", "list"},
			{"policy", "definition", "list"},
			{"cognitiveservices", "commitment-tier", "list", "-l", "westus"},
			{"cognitiveservices", "account", "commitment-plan", "list", "-n", "az-openai", "-g", group},
		} {
			var none []any
			if az.json(&none, args...); len(none) != 0 {
				t.Errorf("az %s: %v", strings.Join(args, " "), none)
			}
		}
		az.run("cognitiveservices", "account", "deployment", "delete", "-n", "az-openai", "-g", group, "--deployment-name", "chat")
		if _, errOut, err := az.try("cognitiveservices", "account", "deployment", "show", "-n", "az-openai", "-g", group,
			"--deployment-name", "chat"); err == nil || !strings.Contains(errOut, "DeploymentNotFound") {
			t.Errorf("show after delete: %v %s", err, az.clean(errOut))
		}
		if up.SawSecret(keys["key1"]) {
			t.Error("the upstream saw the account's key")
		}
		e.AssertNotLogged(t, keys["key1"], keys["key2"], up.Key)
	})

	t.Run("existing-account", func(t *testing.T) {
		az := az.with(t)
		group := e.createGroup(t, "az-cli")
		createAccount(t, e, group, "az-cli-existing", "TextAnalytics")
		var keys map[string]string
		az.json(&keys, "cognitiveservices", "account", "keys", "list", "-n", "az-cli-existing", "-g", group)
		az.redact = append(az.redact, keys["key1"], keys["key2"])
		var after map[string]string
		az.json(&after, "cognitiveservices", "account", "keys", "regenerate", "-n", "az-cli-existing", "-g", group, "--key-name", "key2")
		if after["key2"] == keys["key2"] || after["key1"] != keys["key1"] {
			t.Fatal("az keys regenerate --key-name key2 did not change exactly key2")
		}
		// Who regenerated it: az monitor activity-log list.
		type azEvent struct {
			OperationName struct{ Value string }
			Status        struct{ Value string }
			ResourceID    string
		}
		var events []azEvent
		az.json(&events, "monitor", "activity-log", "list", "--resource-group", group, "--offset", "1h")
		if !slices.ContainsFunc(events, func(ev azEvent) bool {
			return strings.EqualFold(ev.OperationName.Value, "Microsoft.CognitiveServices/accounts/regenerateKey/action") &&
				ev.Status.Value == "Succeeded" && strings.EqualFold(ev.ResourceID, e.accountPath(group, "az-cli-existing"))
		}) {
			t.Fatalf("az monitor activity-log list: no regeneration among %d events: %+v", len(events), events)
		}
		az.json(&events, "monitor", "activity-log", "list", "--resource-id", e.accountPath(group, "az-cli-existing"), "--status", "Failed", "--offset", "1h")
		if len(events) != 0 {
			t.Fatalf("az monitor activity-log list --status Failed: %+v", events)
		}

		// Its Azure Monitor metrics: az monitor metrics list, list-definitions.
		var metrics struct {
			Value []struct {
				Name       struct{ Value string }
				Timeseries []struct{ Data []struct{ Total *float64 } }
			}
		}
		if az.json(&metrics, "monitor", "metrics", "list", "--resource", e.accountPath(group, "az-cli-existing"), "--metric", "TotalCalls"); len(metrics.Value) != 1 || metrics.Value[0].Name.Value != "TotalCalls" || len(metrics.Value[0].Timeseries) != 1 || len(metrics.Value[0].Timeseries[0].Data) < 12 {
			t.Fatalf("az monitor metrics list: %+v", metrics)
		}
		var defs []struct{ Name struct{ Value string } }
		if az.json(&defs, "monitor", "metrics", "list-definitions", "--resource", e.accountPath(group, "az-cli-existing")); len(defs) != 4 {
			t.Fatalf("az monitor metrics list-definitions: %+v", defs)
		}

		var settings []any
		if az.json(&settings, "monitor", "diagnostic-settings", "list", "--resource", e.accountPath(group, "az-cli-existing")); len(settings) != 0 {
			t.Fatalf("az monitor diagnostic-settings list: %+v", settings)
		}

		// (az role assignment create / role definition list fail client-side
		// in Debian's azure-cli 2.45 — "'RoleAssignmentsOperations' object
		// has no attribute 'config'" — before sending anything; the ARM
		// requests they would send are replayed in testAzShaped.)

		// The account's Tags resource: az tag create|update|list|delete --resource-id.
		id := e.accountPath(group, "az-cli-existing")
		tagsOf := func(args ...string) map[string]string {
			t.Helper()
			var tr struct {
				Properties struct{ Tags map[string]string }
			}
			az.json(&tr, args...)
			return tr.Properties.Tags
		}
		if got := tagsOf("tag", "create", "--resource-id", id, "--tags", "env=prod", "team=ai"); !maps.Equal(got, map[string]string{"env": "prod", "team": "ai"}) {
			t.Fatalf("az tag create --resource-id: %v", got)
		}
		if got := tagsOf("tag", "update", "--resource-id", id, "--operation", "merge", "--tags", "owner=ops"); len(got) != 3 {
			t.Fatalf("az tag update --operation merge: %v", got)
		}
		want := map[string]string{"env": "prod", "owner": "ops"}
		if got := tagsOf("tag", "update", "--resource-id", id, "--operation", "delete", "--tags", "team=ai"); !maps.Equal(got, want) {
			t.Fatalf("az tag update --operation delete: %v", got)
		}
		var shown struct{ Tags map[string]string }
		if az.json(&shown, "cognitiveservices", "account", "show", "-n", "az-cli-existing", "-g", group); !maps.Equal(shown.Tags, want) {
			t.Fatalf("az cognitiveservices account show after az tag: %+v", shown)
		}
		if got := tagsOf("tag", "list", "--resource-id", id); !maps.Equal(got, want) {
			t.Fatalf("az tag list --resource-id: %v", got)
		}
		az.run("tag", "delete", "--resource-id", id, "--yes")
		if got := tagsOf("tag", "list", "--resource-id", id); len(got) != 0 {
			t.Fatalf("az tag list after az tag delete: %v", got)
		}

		// Management locks: a CanNotDelete lock on the account keeps az from deleting it.
		az.run("lock", "create", "-n", "az-keep", "--lock-type", "CanNotDelete", "-g", group, "--resource", "az-cli-existing",
			"--resource-type", "Microsoft.CognitiveServices/accounts", "--notes", "production")
		var locks []struct{ Name, Level, Notes string }
		if az.json(&locks, "lock", "list", "-g", group); len(locks) != 1 || locks[0].Level != "CanNotDelete" || locks[0].Notes != "production" {
			t.Fatalf("az lock list: %+v", locks)
		}
		if _, errOut, err := az.try("cognitiveservices", "account", "delete", "-n", "az-cli-existing", "-g", group); err == nil || !strings.Contains(errOut, "ScopeLocked") {
			t.Fatalf("az cognitiveservices account delete under a lock: %v %s", err, az.clean(errOut))
		}
		az.run("lock", "delete", "-n", "az-keep", "-g", group, "--resource", "az-cli-existing", "--resource-type", "Microsoft.CognitiveServices/accounts")
		az.run("cognitiveservices", "account", "delete", "-n", "az-cli-existing", "-g", group)
	})

	// az login --identity inside `gatehouse run` (the Cloud Shell
	// protocol: a form POST to MSI_ENDPOINT, whose query carries the
	// identity header, as run sets it).
	t.Run("login-identity", func(t *testing.T) {
		group := e.createGroup(t, "az-cli-mi")
		var created struct{ PrincipalID string }
		az.with(t).json(&created, "identity", "create", "-n", "az-login-mi", "-g", group)
		mi, err := e.Directory.ManagedIdentityByID(created.PrincipalID)
		if err != nil {
			t.Fatal(err)
		}
		assign(t, e, "/subscriptions/"+e.sub, authz.RoleReader, mi.PrincipalID)
		h, secret, err := e.Authority.CreateIdentityHeader(t.Context(), "azcli-test", mi, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		mia := newAzCLI(t, e)
		mia.register(e)
		mia.redact = append(mia.redact, secret)
		mia.env = []string{"MSI_ENDPOINT=" + h.Endpoint + "?" + url.Values{"identity-header": {secret}}.Encode()}
		var accounts []struct {
			ID   string
			User struct{ Name, Type string }
		}
		mia.json(&accounts, "login", "--identity")
		if len(accounts) != 1 || accounts[0].ID != e.sub || accounts[0].User.Name != "systemAssignedIdentity" {
			t.Fatalf("az login --identity: %+v", accounts)
		}
		var groups []struct{ Name string }
		mia.json(&groups, "group", "list")
		if !slices.ContainsFunc(groups, func(g struct{ Name string }) bool { return g.Name == group }) {
			t.Fatalf("az group list as the identity: %+v", groups)
		}
		var tok struct{ AccessToken string }
		mia.json(&tok, "account", "get-access-token")
		c, err := e.Authority.Verify(t.Context(), tok.AccessToken, authority.ManagementAudiences...)
		if err != nil || c.Principal.ObjectID != mi.PrincipalID {
			t.Fatalf("token as the identity: %v %+v", err, c)
		}
		// A Reader cannot write.
		if _, errOut, err := mia.try("group", "create", "-n", "az-mi-denied", "-l", "westeurope"); err == nil || !strings.Contains(errOut, "AuthorizationFailed") {
			t.Fatalf("az group create as a Reader: %v %s", err, mia.clean(errOut))
		}
		e.AssertNotLogged(t, secret)
	})

	t.Run("identity-and-vault", func(t *testing.T) {
		az := az.with(t)
		group := e.createGroup(t, "az-cli-kv")
		var mi struct{ Name, ClientID, PrincipalID, TenantID string }
		az.json(&mi, "identity", "create", "-n", "az-web", "-g", group)
		if mi.Name != "az-web" || mi.ClientID == "" || mi.PrincipalID == "" || mi.TenantID != tenant {
			t.Fatalf("az identity create: %+v", mi)
		}
		az.json(&mi, "identity", "show", "-n", "az-web", "-g", group)
		if mi.Name != "az-web" {
			t.Fatalf("az identity show: %+v", mi)
		}
		// Workload identity federation on the identity (AKS's setup).
		var fic struct{ Name, Issuer, Subject string }
		az.json(&fic, "identity", "federated-credential", "create", "--identity-name", "az-web", "-g", group, "-n", "aks",
			"--issuer", "https://oidc.example.test/cluster1", "--subject", "system:serviceaccount:web:api", "--audiences", "api://AzureADTokenExchange")
		if fic.Name != "aks" || fic.Issuer != "https://oidc.example.test/cluster1" || fic.Subject != "system:serviceaccount:web:api" {
			t.Fatalf("az identity federated-credential create: %+v", fic)
		}
		var fics []struct{ Name string }
		az.json(&fics, "identity", "federated-credential", "list", "--identity-name", "az-web", "-g", group)
		if len(fics) != 1 || fics[0].Name != "aks" {
			t.Fatalf("az identity federated-credential list: %+v", fics)
		}
		az.json(&fic, "identity", "federated-credential", "show", "--identity-name", "az-web", "-g", group, "-n", "aks")
		az.run("identity", "federated-credential", "delete", "--identity-name", "az-web", "-g", group, "-n", "aks", "--yes")
		az.json(&fics, "identity", "federated-credential", "list", "--identity-name", "az-web", "-g", group)
		if len(fics) != 0 {
			t.Fatalf("after delete: %+v", fics)
		}
		// What the identity is assigned to (POST …/listAssociatedResources).
		var assoc []struct{ Name, Type, ResourceGroup string }
		az.json(&assoc, "identity", "list-resources", "-n", "az-web", "-g", group)
		if len(assoc) != 0 {
			t.Fatalf("az identity list-resources before any use: %+v", assoc)
		}
		miID := "/subscriptions/" + e.sub + "/resourceGroups/" + group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/az-web"
		if r := e.do(t, request{method: "PUT", path: e.accountPath(group, "az-mi-user") + "?api-version=2023-05-01",
			body: `{"kind":"OpenAI","location":"westus","sku":{"name":"S0"},"identity":{"type":"UserAssigned","userAssignedIdentities":{"` + miID + `":{}}}}`}); r.status != 201 {
			t.Fatalf("an account with the identity: %d %s", r.status, r.body)
		}
		az.json(&assoc, "identity", "list-resources", "-n", "az-web", "-g", group)
		if len(assoc) != 1 || assoc[0].Name != "az-mi-user" || assoc[0].Type != "Microsoft.CognitiveServices/accounts" || assoc[0].ResourceGroup != group {
			t.Fatalf("az identity list-resources: %+v", assoc)
		}
		az.run("cognitiveservices", "account", "delete", "-n", "az-mi-user", "-g", group)

		const kv = "azclivault"
		var v struct {
			Name       string
			Properties struct {
				VaultURI                string
				EnableRbacAuthorization bool
			}
		}
		az.json(&v, "keyvault", "create", "-n", kv, "-g", group, "-l", "westus", "--enable-rbac-authorization", "true")
		if v.Name != kv || v.Properties.VaultURI != "https://"+kv+".vault."+e.Host+"/" || !v.Properties.EnableRbacAuthorization {
			t.Fatalf("az keyvault create: %+v", v)
		}
		// Letting Azure's platforms read the secrets is refused, not dropped.
		if _, errOut, err := az.try("keyvault", "update", "-n", kv, "-g", group, "--enabled-for-deployment", "true"); err == nil || !strings.Contains(errOut, "enabledForDeployment must be false") {
			t.Fatalf("az keyvault update --enabled-for-deployment: %v %s", err, az.clean(errOut))
		}
		// Without -g, az finds the vault through the generic resource list.
		var names []string
		az.json(&names, "keyvault", "list", "--query", "[].name")
		if !slices.Contains(names, kv) {
			t.Fatalf("az keyvault list: %v", names)
		}
		az.json(&v, "keyvault", "show", "-n", kv)
		if v.Properties.VaultURI != "https://"+kv+".vault."+e.Host+"/" {
			t.Fatalf("az keyvault show: %+v", v)
		}
		// az's vault network rules: network-rule add (a GET, then a PUT of
		// the whole vault) and update --default-action; the data plane's
		// enforcement is vaulttest's (az's secret commands do not run).
		var acl struct {
			DefaultAction string `json:"defaultAction"`
			Bypass        string `json:"bypass"`
			IPRules       []struct {
				Value string `json:"value"`
			} `json:"ipRules"`
		}
		az.run("keyvault", "network-rule", "add", "-n", kv, "--ip-address", "10.1.0.0/16")
		az.run("keyvault", "update", "-n", kv, "--default-action", "Deny")
		az.json(&acl, "keyvault", "network-rule", "list", "-n", kv)
		if acl.DefaultAction != "Deny" || acl.Bypass != "AzureServices" || len(acl.IPRules) != 1 || acl.IPRules[0].Value != "10.1.0.0/16" {
			t.Fatalf("az keyvault network-rule list: %+v", acl)
		}
		az.json(&names, "resource", "list", "-g", group, "--query", "[].name")
		slices.Sort(names)
		if !slices.Equal(names, []string{"az-web", kv}) {
			t.Fatalf("az resource list -g: %v", names)
		}
		az.json(&names, "resource", "list", "-g", group, "-l", "westus", "--query", "[].name")
		if !slices.Contains(names, kv) {
			t.Fatalf("az resource list -l westus: %v", names)
		}
		az.json(&names, "resource", "list", "-g", group, "-l", "eastus", "--query", "[].name")
		if slices.Contains(names, kv) {
			t.Fatalf("az resource list -l eastus: %v", names)
		}
		az.run("keyvault", "delete", "-n", kv)
		az.json(&names, "keyvault", "list-deleted", "--query", "[].name")
		if !slices.Contains(names, kv) {
			t.Fatalf("az keyvault list-deleted: %v", names)
		}
		az.run("keyvault", "purge", "-n", kv)
		az.json(&names, "keyvault", "list-deleted", "--query", "[].name")
		if slices.Contains(names, kv) {
			t.Fatalf("az keyvault list-deleted after purge: %v", names)
		}
	})

	t.Run("certificate-login", func(t *testing.T) {
		// MSAL Python signs RS256 assertions with an x5t (SHA-1) thumbprint.
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		must(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "az-cert"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(t, err)
		app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "az-cert", ServicePrincipal: true})
		must(t, err)
		// The certificate goes on through az, whose keyCredentials
		// entries carry "@odata.type".
		certFile := filepath.Join(t.TempDir(), "cert.pem")
		must(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		az.run("ad", "app", "credential", "reset", "--id", app.AppID, "--cert", "@"+certFile, "--append")
		var thumbprints []string
		az.json(&thumbprints, "ad", "app", "credential", "list", "--id", app.AppID, "--cert", "--query", "[].customKeyIdentifier")
		if len(thumbprints) != 1 {
			t.Fatalf("az ad app credential list --cert: %v", thumbprints)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		must(t, err)
		file := filepath.Join(t.TempDir(), "sp.pem")
		must(t, os.WriteFile(file, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), 0o600))

		cert := &azCLI{t: t, path: az.path, config: t.TempDir(), ca: e.CAFile}
		cert.register(e)
		var accounts []map[string]any
		cert.json(&accounts, "login", "--service-principal", "-u", app.AppID, "-p", file, "--tenant", tenant, "--allow-no-subscriptions")
		if len(accounts) != 1 || accounts[0]["tenantId"] != tenant {
			t.Fatalf("az login with a certificate: %v", accounts)
		}
		var tok struct{ AccessToken string }
		cert.json(&tok, "account", "get-access-token", "--resource", "https://cognitiveservices.azure.com")
		c, err := e.Authority.Verify(t.Context(), tok.AccessToken, authority.CognitiveServicesAudiences...)
		if err != nil || c.Principal.ObjectID != app.ObjectID || c.AppIDACR != "2" {
			t.Fatalf("certificate token: %+v %v", c, err)
		}
	})
	t.Run("device-code-login", func(t *testing.T) {
		// A person signs az in from a browser: az prints the code, the
		// person approves it (here through the authority, as the portal's
		// device page does), az finds the subscription the person may read
		// and then gets other resources' tokens from the session.
		const pw = "az device-code password"
		person := subscriptionReader(t, e, "azdev@example.test", pw)
		dev, out := deviceLogin(t, e, az, person)
		var accounts []map[string]any
		if err := json.Unmarshal(out, &accounts); err != nil || len(accounts) != 1 || accounts[0]["id"] != e.sub {
			t.Fatalf("az login --use-device-code: %v %s", err, out)
		}
		if u, _ := accounts[0]["user"].(map[string]any); u["name"] != person.UserName || u["type"] != "user" {
			t.Fatalf("signed-in user: %v", accounts[0]["user"])
		}
		var tok struct{ AccessToken string }
		dev.json(&tok, "account", "get-access-token", "--resource", "https://cognitiveservices.azure.com")
		c, err := e.Authority.Verify(t.Context(), tok.AccessToken, authority.CognitiveServicesAudiences...)
		if err != nil || c.Principal.ObjectID != person.ObjectID {
			t.Fatalf("the person's token from the session: %+v %v", c, err)
		}
		e.AssertNotLogged(t, pw, tok.AccessToken)
	})

	t.Run("browser-login", func(t *testing.T) {
		// Plain `az login`: az opens the browser at the authorize URL
		// (MSAL Python: a loopback listener, PKCE, a redirect back); the
		// person signs in to the portal there and continues.
		const pw = "az browser password"
		person := subscriptionReader(t, e, "azweb@example.test", pw)
		urls := testenv.FakeBrowser(t)
		var opened atomic.Int32
		go func() {
			for u := range urls {
				opened.Add(1)
				e.BrowserSignIn(t, u, person.UserName, pw, true)
			}
		}()
		web := &azCLI{t: t, path: az.path, config: t.TempDir(), ca: e.CAFile}
		web.register(e)
		var accounts []map[string]any
		web.json(&accounts, "login", "--tenant", tenant)
		if len(accounts) != 1 || accounts[0]["id"] != e.sub {
			t.Fatalf("az login: %v", accounts)
		}
		if u, _ := accounts[0]["user"].(map[string]any); u["name"] != person.UserName || u["type"] != "user" {
			t.Fatalf("signed-in user: %v", accounts[0]["user"])
		}
		var tok struct{ AccessToken string }
		web.json(&tok, "account", "get-access-token", "--resource", e.Authority.VaultResource())
		if c, err := e.Authority.Verify(t.Context(), tok.AccessToken, e.Authority.VaultResource()); err != nil || c.Principal.ObjectID != person.ObjectID {
			t.Fatalf("the person's vault token: %+v %v", c, err)
		}
		if n := opened.Load(); n != 1 {
			t.Fatalf("the browser opened %d times, want once", n)
		}
		e.AssertNotLogged(t, pw, tok.AccessToken)
	})
	e.AssertNotLogged(t, e.Bootstrap.ClientSecret)
}

// deviceLogin signs person in to a new az configuration with az login
// --use-device-code, approving the code as the portal's device page does,
// and returns that az and the login's output.
func deviceLogin(t *testing.T, e *env, az *azCLI, person *directory.User) (*azCLI, []byte) {
	t.Helper()
	dev := &azCLI{t: t, path: az.path, config: t.TempDir(), ca: e.CAFile}
	dev.register(e)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dev.path, "login", "--use-device-code", "--tenant", person.TenantID)
	cmd.Env = append(os.Environ(), "AZURE_CONFIG_DIR="+dev.config, "HOME="+dev.config, "REQUESTS_CA_BUNDLE="+dev.ca,
		"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_NO_COLOR=true", "AZURE_CORE_OUTPUT=json", "AZURE_CORE_SURVEY_MESSAGE=false")
	var out bytes.Buffer
	stderr := &codeWatcher{found: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = &out, stderr
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case code := <-stderr.found:
		if _, err := e.Authority.DecideDevice(t.Context(), nil, code, gatehouse.Principal{Type: gatehouse.PrincipalUser,
			ObjectID: person.ObjectID, TenantID: person.TenantID, Name: person.UserName}, true); err != nil {
			t.Fatal(err)
		}
	case err := <-done:
		t.Fatalf("az exited before printing a code: %v\n%s", err, stderr.String())
	case <-ctx.Done():
		t.Fatalf("az printed no code: %s", stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatalf("az login --use-device-code: %v\n%s", err, stderr.String())
	}
	return dev, out.Bytes()
}

// subscriptionReader creates a person who may read the subscription (so
// that az login finds it).
func subscriptionReader(t *testing.T, e *env, name, password string) *directory.User {
	t.Helper()
	person, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: name, Password: password})
	must(t, err)
	_, _, err = e.Authz.CreateAssignment(t.Context(), &gatehouse.ResourceID{Subscription: e.sub}, gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.RoleReader, PrincipalID: person.ObjectID}, e.Bootstrap.ClientID)
	must(t, err)
	return person
}

// codeWatcher collects az's standard error and sends the first device
// code it prints.
type codeWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string
	sent  bool
}

var deviceMessage = regexp.MustCompile(`enter the code ([A-Z0-9]{9})`)

func (w *codeWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := deviceMessage.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.found <- m[1]
	}
	return len(p), nil
}

func (w *codeWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
