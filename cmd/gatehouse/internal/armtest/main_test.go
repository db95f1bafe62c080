// Package armtest drives the management API of a real node over TLS with
// the official Azure SDK clients (armcognitiveservices/v2,
// armauthorization/v2, armmsi, armresources, armkeyvault) and az-shaped raw requests, on SQLite and
// on PostgreSQL. One node per backend is shared by every scenario.
package armtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// env is one node and the clients of its bootstrap principal (Owner of the
// default subscription).
type env struct {
	*testenv.Server
	sub, group string
	cred       azcore.TokenCredential
	token      string // management token of the bootstrap principal
	accounts   *armcognitiveservices.AccountsClient
	assign     *armauthorization.RoleAssignmentsClient
	roles      *armauthorization.RoleDefinitionsClient
	msi        *armmsi.UserAssignedIdentitiesClient
}

const mgmtScope = "https://management.azure.com/.default"

func newEnv(t testing.TB, opts ...testenv.Option) *env {
	t.Helper()
	return newEnvOn(t, false, opts...)
}

// newEnvOn is newEnv with the test clients on HTTP/1.1 (http1) or HTTP/2.
func newEnvOn(t testing.TB, http1 bool, opts ...testenv.Option) *env {
	t.Helper()
	s := testenv.Start(t, opts...)
	if http1 {
		s.HTTP1()
	}
	if s.Bootstrap == nil || s.Bootstrap.SubscriptionID == "" || s.Bootstrap.ResourceGroup == "" || s.Bootstrap.ARMEndpoint != s.URL {
		t.Fatalf("bootstrap file lacks the management fields: %+v", s.Bootstrap)
	}
	e := &env{Server: s, sub: s.Bootstrap.SubscriptionID, group: s.Bootstrap.ResourceGroup, cred: s.Credential(t)}
	e.token = s.Token(t, e.cred, mgmtScope)
	e.accounts, e.assign, e.roles, e.msi = e.clients(t, e.cred)
	return e
}

func (e *env) armOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: e.ClientOptions()}
}

func (e *env) clients(t testing.TB, cred azcore.TokenCredential) (*armcognitiveservices.AccountsClient,
	*armauthorization.RoleAssignmentsClient, *armauthorization.RoleDefinitionsClient, *armmsi.UserAssignedIdentitiesClient) {
	t.Helper()
	a, err := armcognitiveservices.NewAccountsClient(e.sub, cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	ra, err := armauthorization.NewRoleAssignmentsClient(e.sub, cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := armauthorization.NewRoleDefinitionsClient(cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	m, err := armmsi.NewUserAssignedIdentitiesClient(e.sub, cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	return a, ra, rd, m
}

// principal creates a service principal with a secret and returns its
// object id and a credential for it.
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
	return app.ObjectID, e.SecretCredential(t, app.AppID, secret)
}

// TestManagement runs every scenario against one node per backend (the
// clients on HTTP/2, and on SQLite once more on HTTP/1.1).
func TestManagement(t *testing.T) {
	for _, b := range testenv.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvOn(t, b.HTTP1, b.Opts(t)...)
			if b.HTTP1 {
				e.AssertFastPathServed(t, 100)
			}
			for _, sc := range []scenario{
				{"sdk-accounts", testSDKAccounts},
				{"sdk-role-assignments", testSDKRoleAssignments},
				{"sdk-role-definitions", testSDKRoleDefinitions},
				{"sdk-permissions", testSDKPermissions},
				{"custom-role-scopes", testCustomRoleScopes},
				{"sdk-managed-identities", testSDKIdentities},
				{"sdk-groups-and-vaults", testSDKGroupsAndVaults},
				{"sdk-vault-secrets", testSDKVaultSecrets},
				{"sdk-system-identities", testSDKSystemIdentities},
				{"account-identities", testAccountIdentities},
				{"rbac-list-keys", testRBACListKeys},
				{"az-shaped-requests", testAzShaped},
				{"unauthenticated", testUnauthenticated},
				{"bad-input", testBadInput},
				{"concurrent-regenerate", testConcurrentRegenerate},
				{"group-delete-cascade", testGroupDeleteCascade},
				{"key-usage", testKeyUsage},
				{"management-locks", testLocks},
				{"tag-names", testTagNames},
				{"predefined-tags", testPredefinedTags},
				{"no-policy-or-features", testNoPolicyOrFeatures},
				{"operations-catalog", testOperationsCatalog},
				{"tags-resource", testTagsResource},
				{"activity-log", testActivityLog},
				{"skus-and-locations", testSKUsAndLocations},
				{"providers", testProviders},
				{"correlation-ids", testCorrelationIDs},
				{"cli", testCLI},
			} {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, e)
				})
			}
		})
	}
}

type scenario struct {
	name string
	run  func(t *testing.T, e *env)
}

// request is a raw HTTP call with the bootstrap principal's token (unless
// token is "-": none).
type request struct {
	method, path string
	body         any // string, []byte or a value to marshal
	token        string
	header       http.Header
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

// code returns error.code of an ARM error body.
func (r *response) code() string {
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	return body.Error.Code
}

func (e *env) do(t testing.TB, rq request) *response {
	t.Helper()
	var rd io.Reader
	switch b := rq.body.(type) {
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
	req, err := http.NewRequestWithContext(t.Context(), rq.method, e.URL+rq.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	// A body is sent as JSON unless the request names its own type; a
	// Content-Type of [""] sends none.
	if ct, named := req.Header["Content-Type"]; named && len(ct) == 1 && ct[0] == "" {
		req.Header.Del("Content-Type")
	} else if rd != nil && !named {
		req.Header.Set("Content-Type", "application/json")
	}
	switch rq.token {
	case "-":
	case "":
		req.Header.Set("Authorization", "Bearer "+e.token)
	default:
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) accountPath(group, name string) string {
	return "/subscriptions/" + e.sub + "/resourceGroups/" + group + "/providers/Microsoft.CognitiveServices/accounts/" + name
}

func (e *env) accountID(t *testing.T, group, name string) *gatehouse.ResourceID {
	t.Helper()
	id, err := gatehouse.ParseResourceID(e.accountPath(group, name))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// createGroup makes a resource group for one scenario.
func (e *env) createGroup(t testing.TB, name string) string {
	t.Helper()
	r := e.do(t, request{method: "PUT", path: "/subscriptions/" + e.sub + "/resourceGroups/" + name + "?api-version=2021-04-01",
		body: map[string]any{"location": "westus"}})
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("create group %s: %d %s", name, r.status, r.body)
	}
	return name
}

func ptr[T any](v T) *T { return &v }
