// Package crosstest drives the features that cross areas on a real node
// over TLS, with the official clients: a deployment whose upstream
// credential is a Key Vault secret read as the account's managed identity
// (openai-go through the gateway, then a rotation), deleting accounts and
// resource groups with their deployments and usage evidence, reading and
// verifying the audit chain (and catching a row edited in the database),
// the client address of audited gateway denials, and people's CLI
// sessions (refresh tokens) reaching the vault data plane, and two sweeps
// over every surface (malformed_test.go: malformed bodies, content types,
// queries, names and read-route parameters; authsweep_test.go: broken
// credentials), each request sent over HTTP/2 and over HTTP/1.1, and
// concurrent identical writes on every surface (concurrency_test.go) — on
// SQLite and on PostgreSQL. One node per backend is shared by every
// scenario.
package crosstest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// env is one node, the bootstrap principal's credentials and clients.
type env struct {
	*testenv.Server
	sub, group string
	mgmtToken  string
	oid        string // the bootstrap principal's object id
	cred       azcore.TokenCredential
	accounts   *armcognitiveservices.AccountsClient
	// dsn is the PostgreSQL database ("" on SQLite).
	dsn string
}

const (
	mgmtScope = "https://management.azure.com/.default"
	vaultAPI  = "2023-07-01"
	armAPI    = "2025-06-01"
)

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	var opts []testenv.Option
	if dsn != "" {
		opts = append(opts, testenv.WithPostgres(dsn))
	}
	s := testenv.Start(t, opts...)
	e := &env{Server: s, sub: s.Bootstrap.SubscriptionID, group: s.Bootstrap.ResourceGroup, dsn: dsn}
	e.mgmtToken = s.Token(t, s.Credential(t), mgmtScope)
	c, err := s.Authority.Verify(t.Context(), e.mgmtToken, authority.ManagementAudiences...)
	if err != nil {
		t.Fatal(err)
	}
	e.oid = c.Principal.ObjectID
	e.cred, err = azidentity.NewClientSecretCredential("adfs", s.Bootstrap.ClientID, s.Bootstrap.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	e.accounts, err = armcognitiveservices.NewAccountsClient(e.sub, s.Credential(t), &arm.ClientOptions{ClientOptions: s.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCrossCutting runs every scenario against one node per backend.
func TestCrossCutting(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			e := newEnv(t, dsn)
			for _, sc := range []struct {
				name string
				run  func(t *testing.T, e *env)
				// own: the scenario gets a node of its own. The sweeps
				// send hundreds of refused data-plane requests, whose
				// audited denials are rate-limited per node: on the shared
				// node they would crowd out the denial another scenario
				// looks for in the audit log.
				own bool
			}{
				{"upstream-key-vault-secret", testUpstreamKeyVaultSecret, false},
				{"upstream-key-vault-secret-cli", testUpstreamKeyVaultSecretCLI, false},
				{"delete-account-cascades", testDeleteAccountCascades, false},
				{"delete-group-cascades", testDeleteGroupCascades, false},
				{"soft-delete-data-plane", testSoftDeleteDataPlane, false},
				{"audit-list-verify-tamper", testAuditLog, false},
				{"audit-gateway-client-address", testAuditClientAddress, false},
				{"person-cli-session", testPersonSession, false},
				{"malformed-sweep", testMalformedSweep, true},
				{"auth-header-sweep", testAuthHeaderSweep, true},
				{"concurrent-writes", testConcurrentWrites, true},
			} {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					if !sc.own {
						sc.run(t, e)
						return
					}
					dsn := ""
					if backend == "postgres" {
						dsn = pgtest.DSN(t)
					}
					sc.run(t, newEnv(t, dsn))
				})
			}
		})
	}
}

// --- management API -------------------------------------------------------

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body not JSON: %.300s", r.status, r.body)
	}
	return m
}

// code is error.code of an Azure error body.
func (r *response) code() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// arm calls the management API as the bootstrap principal (token "") or
// with token. path may carry its own api-version.
func (e *env) arm(t testing.TB, method, path string, body any, token string) *response {
	t.Helper()
	if token == "" {
		token = e.mgmtToken
	}
	if !strings.Contains(path, "api-version=") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "api-version=" + armAPI
	}
	return e.do(t, method, e.URL+path, body, token)
}

func (e *env) do(t testing.TB, method, url string, body any, token string) *response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// protocolClients returns the node's client (HTTP/2) and one that speaks
// only HTTP/1.1, whose requests the node's fast path (server/h1) serves:
// the sweeps send every request over both.
func (e *env) protocolClients(t *testing.T) map[string]*http.Client {
	t.Helper()
	tr := e.Transport.Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	t.Cleanup(tr.CloseIdleConnections)
	return map[string]*http.Client{"h2": e.Client, "h1": {Transport: tr}}
}

func (e *env) groupPath(group string) string {
	return "/subscriptions/" + e.sub + "/resourceGroups/" + group
}

// account is an AI account created through armcognitiveservices.
type account struct {
	name, id, endpoint string
	key1               string
	internalID         string
	identity           string // system-assigned principal id ("" = none)
}

func ptr[T any](v T) *T { return &v }

func (e *env) createAccount(t *testing.T, group, name, kind string, systemIdentity bool) *account {
	t.Helper()
	a := armcognitiveservices.Account{Kind: ptr(kind), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}
	if systemIdentity {
		a.Identity = &armcognitiveservices.Identity{Type: ptr(armcognitiveservices.ResourceIdentityTypeSystemAssigned)}
	}
	poller, err := e.accounts.BeginCreate(t.Context(), group, name, a, nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	res, err := poller.PollUntilDone(t.Context(), nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	keys, err := e.accounts.ListKeys(t.Context(), group, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &account{name: name, id: *res.ID, endpoint: *res.Properties.Endpoint, key1: *keys.Key1}
	if res.Identity != nil && res.Identity.PrincipalID != nil {
		out.identity = *res.Identity.PrincipalID
	}
	if acct, ok := e.Accounts.ByID(out.id); ok {
		out.internalID = acct.InternalID
	}
	return out
}

// deploy creates deployment name of a with upstream (a JSON object).
func (e *env) deploy(t *testing.T, a *account, name string, upstream map[string]any) *response {
	t.Helper()
	return e.arm(t, "PUT", a.id+"/deployments/"+name, map[string]any{
		"sku":        map[string]any{"name": "Standard", "capacity": 1},
		"properties": map[string]any{"model": map[string]any{"format": "OpenAI", "name": "gpt-4o"}, "upstream": upstream}}, "")
}

// --- Key Vault --------------------------------------------------------------

func (e *env) vaultURL(name string) string { return "https://" + name + ".vault." + e.Host + "/" }

func (e *env) vaultPath(name string) string {
	return e.groupPath(e.group) + "/providers/Microsoft.KeyVault/vaults/" + name
}

// createVault creates a vault and makes the bootstrap principal its Key
// Vault Secrets Officer.
func (e *env) createVault(t *testing.T, name string) {
	t.Helper()
	r := e.arm(t, "PUT", e.vaultPath(name)+"?api-version="+vaultAPI, map[string]any{"location": "westus",
		"properties": map[string]any{"tenantId": e.Directory.DefaultTenant(), "sku": map[string]string{"family": "A", "name": "standard"},
			"enableRbacAuthorization": true}}, "")
	if r.status != http.StatusCreated {
		t.Fatalf("create vault %s: %d %s", name, r.status, r.body)
	}
	e.assign(t, e.vaultPath(name), authz.RoleKeyVaultSecretsOfficer, e.oid, "ServicePrincipal")
}

func (e *env) secrets(t *testing.T, vault string) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(e.vaultURL(vault), e.cred, &azsecrets.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assign creates a role assignment through the management API and returns
// its id.
func (e *env) assign(t *testing.T, scope, role, principal, principalType string) string {
	t.Helper()
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID()
	r := e.arm(t, "PUT", id+"?api-version=2022-04-01", map[string]any{"properties": map[string]string{
		"roleDefinitionId": "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": principalType}}, "")
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("assign %s at %s: %d %s", role, scope, r.status, r.body)
	}
	return id
}

// --- CLI --------------------------------------------------------------------

// cliRunner runs `gatehouse …` in-process with a profile directory of its
// own.
type cliRunner struct{ dir string }

func newCLI(t *testing.T) *cliRunner { return &cliRunner{dir: t.TempDir()} }

func (c *cliRunner) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(t.Context(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
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
	code, out, errOut := c.run(t, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// loginBootstrap signs the bootstrap principal in.
func (e *env) loginBootstrap(t *testing.T) *cliRunner {
	t.Helper()
	c := newCLI(t)
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
