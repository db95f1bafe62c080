// Package vaulttest drives the Key Vault surfaces of a real node over TLS:
// the data plane with the official azsecrets v1.5.1 client (challenge
// flow, every secret operation, RBAC), raw requests for the wire details
// and the bad-input table, the Microsoft.KeyVault/vaults management
// routes, the CLI and a managed identity — on SQLite and on PostgreSQL.
// One node per backend is shared by every scenario.
package vaulttest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// env is one node and its bootstrap principal's credentials.
type env struct {
	*testenv.Server
	sub, group string
	mgmtToken  string
	// cred is the bootstrap principal with tenant adfs: the form clients
	// configured by environment use, and the tenant the challenge names.
	cred azcore.TokenCredential
	oid  string
}

const (
	mgmtScope   = "https://management.azure.com/.default"
	vaultAPI    = "2023-07-01"
	dataVersion = "2026-04-01"
)

// newEnvOn starts a node with the test clients on HTTP/1.1 (http1) or
// HTTP/2.
func newEnvOn(t testing.TB, http1 bool, opts ...testenv.Option) *env {
	t.Helper()
	s := testenv.Start(t, opts...)
	if http1 {
		s.HTTP1()
	}
	e := &env{Server: s, sub: s.Bootstrap.SubscriptionID, group: s.Bootstrap.ResourceGroup}
	e.mgmtToken = s.Token(t, s.Credential(t), mgmtScope)
	c, err := s.Authority.Verify(t.Context(), e.mgmtToken, authority.ManagementAudiences...)
	if err != nil {
		t.Fatal(err)
	}
	e.oid = c.Principal.ObjectID
	e.cred = e.adfsCredential(t, s.Bootstrap.ClientID, s.Bootstrap.ClientSecret)
	return e
}

// TestKeyVault runs every scenario against one node per backend, with the
// clients on HTTP/2 and, on SQLite, on HTTP/1.1 (the data plane's fast
// path, server/h1, serves the vault's requests then).
func TestKeyVault(t *testing.T) {
	for _, b := range testenv.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvOn(t, b.HTTP1, b.Opts(t)...)
			if b.HTTP1 {
				e.AssertFastPathServed(t, 20)
			}
			for _, sc := range []struct {
				name string
				run  func(t *testing.T, e *env)
			}{
				{"sdk-secrets", testSDKSecrets},
				{"sdk-delete-recover-purge", testSDKDeleteRecoverPurge},
				{"sdk-backup-restore", testSDKBackupRestore},
				{"sdk-paging", testSDKPaging},
				{"challenge", testChallenge},
				{"wire", testWire},
				{"rbac", testRBAC},
				{"bad-input", testBadInput},
				{"arm-vaults", testARMVaults},
				{"purge-protection", testPurgeProtection},
				{"reference", testReference},
				{"managed-identity", testManagedIdentity},
				{"cli", testCLI},
				{"canary", testCanary},
				{"network-rules", testNetworkRules},
				{"on-behalf-of", testOnBehalfOf},
				{"group-access", testGroupAccess},
			} {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, e)
				})
			}
		})
	}
}

// adfsCredential is a client-secret credential with tenant adfs.
func (e *env) adfsCredential(t testing.TB, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential("adfs", clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// principal creates a service principal and returns its object id and an
// adfs credential for it.
func (e *env) principal(t *testing.T, name string) (string, azcore.TokenCredential) {
	t.Helper()
	app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.Directory.AddSecret(t.Context(), app.AppID, directory.SecretSpec{DisplayName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return app.ObjectID, e.adfsCredential(t, app.AppID, secret)
}

// client returns an azsecrets client for the vault (the node's Transport
// resolves {vault}.vault.localhost).
func (e *env) client(t testing.TB, vaultName string, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(e.vaultURL(vaultName), cred, &azsecrets.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) vaultURL(name string) string {
	return "https://" + strings.ToLower(name) + ".vault." + e.Host + "/"
}

func (e *env) vaultPath(name string) string {
	return "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.KeyVault/vaults/" + name
}

// createVault creates a vault through the management API and makes the
// bootstrap principal its Key Vault Secrets Officer. props are merged
// into the default properties.
func (e *env) createVault(t testing.TB, name string, props map[string]any) map[string]any {
	t.Helper()
	p := map[string]any{"tenantId": e.Directory.DefaultTenant(), "sku": map[string]string{"family": "A", "name": "standard"},
		"enableRbacAuthorization": true}
	for k, v := range props {
		p[k] = v
	}
	r := e.arm(t, "PUT", e.vaultPath(name)+"?api-version="+vaultAPI, map[string]any{"location": "westus", "properties": p}, "")
	if r.status != http.StatusCreated {
		t.Fatalf("create vault %s: %d %s", name, r.status, r.body)
	}
	var v map[string]any
	r.json(t, &v)
	e.assign(t, e.vaultScope(name), authz.RoleKeyVaultSecretsOfficer, e.oid)
	return v
}

func (e *env) vaultScope(name string) string { return e.vaultPath(name) }

// assign creates a role assignment through the management API.
func (e *env) assign(t testing.TB, scope, role, principal string) {
	t.Helper()
	body := map[string]any{"properties": map[string]string{
		"roleDefinitionId": "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": "ServicePrincipal"}}
	r := e.arm(t, "PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+gatehouse.NewGUID()+"?api-version=2022-04-01", body, "")
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("assign %s at %s: %d %s", role, scope, r.status, r.body)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

// code returns error.code (and innererror.code) of an Azure error body.
func (r *response) code() (string, string) {
	var b struct {
		Error struct {
			Code  string `json:"code"`
			Inner *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &b)
	inner := ""
	if b.Error.Inner != nil {
		inner = b.Error.Inner.Code
	}
	return b.Error.Code, inner
}

// arm calls the management API with the bootstrap principal's token (or
// token; "-" for none).
func (e *env) arm(t testing.TB, method, path string, body any, token string) *response {
	t.Helper()
	if token == "" {
		token = e.mgmtToken
	}
	return e.do(t, method, e.URL+path, body, token, nil)
}

// data calls a vault's data plane (path relative to the vault URL).
func (e *env) data(t testing.TB, method, vaultName, path string, body any, token string, hdr http.Header) *response {
	t.Helper()
	return e.do(t, method, strings.TrimSuffix(e.vaultURL(vaultName), "/")+path, body, token, hdr)
}

func (e *env) do(t testing.TB, method, url string, body any, token string, hdr http.Header) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "-" && token != "" {
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

// vaultToken is a data-plane token of cred.
func (e *env) vaultToken(t testing.TB, cred azcore.TokenCredential) string {
	t.Helper()
	return e.Token(t, cred, e.Authority.VaultResource()+"/.default")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
