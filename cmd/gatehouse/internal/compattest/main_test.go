// Package compattest drives a real node with the official JavaScript
// clients — @azure/identity, @azure/keyvault-secrets,
// @azure/ai-language-text and openai's AzureOpenAI, pinned in compat/js —
// run by the machine's node, and (python_test.go) with the Azure SDK for
// Python from Debian's python3-azure running compat/python, exactly as an
// application runs them: every
// client is configured only through environment variables
// (AZURE_AUTHORITY_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID/SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE,
// NODE_EXTRA_CA_CERTS, endpoint variables) and the options an application
// sets (disableInstanceDiscovery with a GUID tenant).
//
// Flow: one SQLite node with its own CA is started; the bootstrap
// principal creates, with the Go SDK and the management API, a vault, a
// Language account, an OpenAI account with a deployment on an upstream the
// test runs, service principals (secret, certificate) and a managed
// identity with data roles; then each scenario runs a compat/js script
// with node (`node --require ./resolve-localhost.cjs script.mjs MODE`),
// reads the one JSON object it prints ({"steps":{name:{ok,value|error}}})
// and asserts on every step, verifying returned tokens with the node's
// own authority. Managed-identity scripts run inside `gatehouse run
// --identity`; AzureCliCredential runs after a real `az login` (the one
// scenario that also needs az).
//
// Name resolution: vault hosts are {vault}.vault.localhost:PORT, which
// glibc does not resolve. The preload compat/js/resolve-localhost.cjs
// resolves *.localhost to 127.0.0.1 (RFC 6761 §6.3) inside the node
// process; it touches nothing else, needs no root and no /etc/hosts lines.
//
// The suite skips when node or compat/js/node_modules is missing (run
// `npm ci` in compat/js), except under CI=true, where it fails.
package compattest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// TestJavaScript runs every scenario against one shared node.
func TestJavaScript(t *testing.T) {
	js := requireJS(t)
	e := newEnv(t, js)
	// After every scenario (cleanups run after parallel subtests, and
	// before the node's own cleanup stops it).
	t.Cleanup(func() { e.AssertNotLogged(t, e.secrets()...) })
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"identity", testIdentity},
		{"managed-identity", testManagedIdentity},
		{"azure-cli-credential", testAzureCLICredential},
		{"keyvault", testKeyVault},
		{"language", testLanguage},
		{"openai", testOpenAI},
		{"openai-v1", testOpenAIV1},
		{"openai-realtime", testOpenAIRealtime},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, e)
		})
	}
}

// jsEnv is where the scripts and their node_modules are.
type jsEnv struct {
	dir, node string
}

// requireJS finds node and compat/js with its node_modules; without them
// the suite skips, or fails under CI=true.
func requireJS(t *testing.T) jsEnv {
	t.Helper()
	missing := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the JavaScript compatibility suite must run)", msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "compat", "js"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"@azure/identity", "@azure/keyvault-secrets", "@azure/ai-language-text", "openai"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing("%s is not installed: run `npm ci` in compat/js", pkg)
		}
	}
	return jsEnv{dir: dir, node: node}
}

// env is the node, the resources the scenarios share and the credentials
// of the principals the scripts act as.
type env struct {
	*testenv.Server
	js         jsEnv
	sub, group string
	mgmtToken  string
	roles      *armauthorization.RoleAssignmentsClient
	work       string // temporary files (certificates)

	// app is a service principal with a secret; certApp one with a
	// certificate (certFile holds certificate and key, PEM).
	app, certApp principal
	certFile     string
	// mi is a user-assigned managed identity.
	mi *armmsi.Identity

	vaultName, vaultURL string
	language, openai    *account
	deployment          string
	up                  *testenv.Upstream
}

type principal struct {
	clientID, objectID, secret string
}

type account struct {
	name, id, endpoint string
	key1, key2         string
}

func newEnv(t *testing.T, js jsEnv) *env {
	t.Helper()
	up := testenv.NewUpstream(t, upstreamKey)
	s := testenv.Start(t, testenv.WithConfig(func(c *app.Config) { c.Models = up.CatalogFile(t) }))
	e := &env{Server: s, js: js, sub: s.Bootstrap.SubscriptionID, group: s.Bootstrap.ResourceGroup, work: t.TempDir(),
		up: up, deployment: "gpt-4o-mini"}
	boot := s.Credential(t)
	e.mgmtToken = s.Token(t, boot, "https://management.azure.com/.default")
	e.app = e.createPrincipal(t, "compat-js")
	e.certApp, e.certFile = e.createCertPrincipal(t, "compat-js-cert")

	opts := &arm.ClientOptions{ClientOptions: s.ClientOptions()}
	msi, err := armmsi.NewUserAssignedIdentitiesClient(e.sub, boot, opts)
	must(t, err)
	mi, err := msi.CreateOrUpdate(t.Context(), e.group, "compat-web", armmsi.Identity{Location: ptr("westus")}, nil)
	must(t, err)
	e.mi = &mi.Identity

	accounts, err := armcognitiveservices.NewAccountsClient(e.sub, boot, opts)
	must(t, err)
	e.language = e.createAccount(t, accounts, "compat-language", "TextAnalytics")
	e.openai = e.createAccount(t, accounts, "compat-openai", "OpenAI")
	r := e.arm(t, http.MethodPut, e.openai.id+"/deployments/"+e.deployment+"?api-version=2025-06-01", map[string]any{
		"sku": map[string]any{"name": "Standard", "capacity": 1},
		"properties": map[string]any{"model": map[string]any{"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18"},
			"upstream": map[string]any{"endpoint": e.up.URL, "model": upstreamModel, "key": upstreamKey}}})
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("create deployment: %d %s", r.status, r.body)
	}

	e.vaultName = "compat-kv"
	vaultID, vaultURL := e.createVault(t, e.vaultName)
	e.vaultURL = vaultURL

	// Data roles, assigned with armauthorization as an operator would.
	e.roles, err = armauthorization.NewRoleAssignmentsClient(e.sub, boot, opts)
	must(t, err)
	sp := armauthorization.PrincipalTypeServicePrincipal
	e.assign(t, vaultID, secretsOfficer, e.app.objectID, sp)
	e.assign(t, vaultID, secretsUser, *e.mi.Properties.PrincipalID, sp)
	e.assign(t, e.language.id, cogUser, e.app.objectID, sp)
	e.assign(t, e.language.id, cogUser, *e.mi.Properties.PrincipalID, sp)
	e.assign(t, e.openai.id, openAIUser, e.app.objectID, sp)
	return e
}

// createVault creates an RBAC vault in the group with the management API
// and returns its resource id and vaultUri.
func (e *env) createVault(t *testing.T, name string) (id, uri string) {
	t.Helper()
	r := e.arm(t, http.MethodPut, e.groupPath()+"/providers/Microsoft.KeyVault/vaults/"+name+"?api-version=2023-07-01", map[string]any{
		"location": "westus", "properties": map[string]any{"tenantId": e.Directory.DefaultTenant(),
			"sku": map[string]string{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}})
	if r.status != http.StatusCreated {
		t.Fatalf("create vault %s: %d %s", name, r.status, r.body)
	}
	var vault struct {
		ID         string `json:"id"`
		Properties struct {
			VaultURI string `json:"vaultUri"`
		} `json:"properties"`
	}
	r.decode(t, &vault)
	return vault.ID, vault.Properties.VaultURI
}

// assign gives a principal a role at scope with armauthorization, as an
// operator would.
func (e *env) assign(t *testing.T, scope, role, principalID string, typ armauthorization.PrincipalType) {
	t.Helper()
	_, err := e.roles.Create(t.Context(), strings.TrimPrefix(scope, "/"), gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: ptr("/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role),
			PrincipalID:      ptr(principalID), PrincipalType: ptr(typ)}}, nil)
	if err != nil {
		t.Fatalf("assign %s at %s: %v", role, scope, err)
	}
}

// The built-in data roles the scenarios assign.
const (
	secretsOfficer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	secretsUser    = "4633458b-17de-408a-b874-0445c86b69e6"
	cogUser        = "a97b65f3-24c7-4388-baec-2e87135dc908"
	openAIUser     = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
)

func (e *env) groupPath() string { return "/subscriptions/" + e.sub + "/resourceGroups/" + e.group }

func (e *env) createAccount(t *testing.T, c *armcognitiveservices.AccountsClient, name, kind string) *account {
	t.Helper()
	poller, err := c.BeginCreate(t.Context(), e.group, name, armcognitiveservices.Account{
		Kind: ptr(kind), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}, nil)
	must(t, err)
	res, err := poller.PollUntilDone(t.Context(), nil)
	must(t, err)
	keys, err := c.ListKeys(t.Context(), e.group, name, nil)
	must(t, err)
	return &account{name: name, id: *res.ID, endpoint: *res.Properties.Endpoint, key1: *keys.Key1, key2: *keys.Key2}
}

// secrets is everything that must never reach the node's logs.
func (e *env) secrets() []string {
	return []string{e.Bootstrap.ClientSecret, e.app.secret, e.language.key1, e.language.key2,
		e.openai.key1, e.openai.key2, upstreamKey, "value-one", "value-two", "read-by-the-identity"}
}

// identityEnv is the configuration-only environment of an application
// authenticating as p: authority host, tenant adfs, client id and secret.
func (e *env) identityEnv(p principal) map[string]string {
	return map[string]string{
		"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
		"AZURE_CLIENT_ID": p.clientID, "AZURE_CLIENT_SECRET": p.secret,
	}
}

// step is one step of a script's output.
type step struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error *jsError        `json:"error"`
}

// jsError is harness.mjs' description of a thrown error.
type jsError struct {
	Name       string     `json:"name"`
	Message    string     `json:"message"`
	StatusCode int        `json:"statusCode"`
	Status     int        `json:"status"`
	Code       any        `json:"code"`
	ErrorCode  string     `json:"errorCode"`
	OAuthError string     `json:"oauthError"`
	Errors     []*jsError `json:"errors"`
	Cause      *jsError   `json:"cause"`
}

// steps is a script's result.
type steps map[string]step

// value decodes the value of a step that must have succeeded.
func (s steps) value(t *testing.T, name string, v any) {
	t.Helper()
	st, ok := s[name]
	if !ok {
		t.Fatalf("step %s did not run (steps: %s)", name, s.names())
	}
	if !st.OK {
		t.Fatalf("step %s failed: %s", name, st.Error)
	}
	if v != nil {
		if err := json.Unmarshal(st.Value, v); err != nil {
			t.Fatalf("step %s: %v: %s", name, err, st.Value)
		}
	}
}

// err returns the error a step reported (its value, for steps built with
// expectError, or its failure).
func (s steps) err(t *testing.T, name string) *jsError {
	t.Helper()
	st, ok := s[name]
	if !ok {
		t.Fatalf("step %s did not run", name)
	}
	if !st.OK {
		return st.Error
	}
	var e jsError
	if err := json.Unmarshal(st.Value, &e); err != nil || e.Message == "" {
		t.Fatalf("step %s: want an error, got %s", name, st.Value)
	}
	return &e
}

func (s steps) names() string {
	var n []string
	for k := range s {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func (e *jsError) String() string {
	if e == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// node runs `node --require resolve-localhost.cjs script args...` in
// compat/js with exactly the environment vars plus PATH, HOME and
// NODE_EXTRA_CA_CERTS (the node's CA), and returns the steps it printed.
func (e *env) node(t *testing.T, vars map[string]string, script string, args ...string) steps {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NODE_EXTRA_CA_CERTS=" + e.CAFile}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return e.runScript(t, nil, env, script, args...)
}

// runScript runs the script with env; prefix, if set, is the command that
// runs node (e.g. `gatehouse run --identity …`, see gatehouseRun).
func (e *env) runScript(t *testing.T, prefix func(argv []string) (stdout, stderr string, err error), env []string, script string, args ...string) steps {
	t.Helper()
	return e.exec(t, prefix, e.js.dir, env, append([]string{e.js.node, "--require", "./resolve-localhost.cjs", script}, args...))
}

// exec runs argv in dir with env (under prefix, if set) and returns the
// steps the script printed.
func (e *env) exec(t *testing.T, prefix func(argv []string) (stdout, stderr string, err error), dir string, env, argv []string) steps {
	t.Helper()
	var stdout, stderr string
	var err error
	if prefix == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = dir, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		stdout, stderr = out.String(), errb.String()
	} else {
		stdout, stderr, err = prefix(append([]string{"env", "-C", dir}, append(env, argv...)...))
	}
	script := strings.Join(argv[1:], " ")
	if err != nil {
		t.Fatalf("%s: %v\nstderr: %s\nstdout: %.2000s", script, err, e.redact(stderr), e.redact(stdout))
	}
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, `{"steps":`) {
			continue
		}
		var out struct {
			Steps steps `json:"steps"`
		}
		if err := json.Unmarshal([]byte(line), &out); err != nil {
			t.Fatalf("%s: %v: %.500s", script, err, line)
		}
		return out.Steps
	}
	t.Fatalf("%s printed no result\nstderr: %s\nstdout: %.2000s", script, e.redact(stderr), e.redact(stdout))
	return nil
}

// redact hides the credentials in script output shown in a failure.
func (e *env) redact(s string) string {
	for _, sec := range e.secrets() {
		if len(sec) > 12 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// verify checks a token a script obtained with the node's authority and
// returns its claims.
func (e *env) verify(t *testing.T, token string, audiences ...string) *authority.Claims {
	t.Helper()
	c, err := e.Authority.Verify(t.Context(), token, audiences...)
	if err != nil {
		t.Fatalf("token from the script does not verify: %v", err)
	}
	return c
}

// response is a raw management API answer.
type response struct {
	status int
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%d: %v: %s", r.status, err, r.body)
	}
}

// arm calls the management API as the bootstrap principal.
func (e *env) arm(t *testing.T, method, path string, body any) *response {
	t.Helper()
	b, err := json.Marshal(body)
	must(t, err)
	req, err := http.NewRequestWithContext(t.Context(), method, e.URL+path, bytes.NewReader(b))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.mgmtToken)
	resp, err := e.Client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, body: data}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
