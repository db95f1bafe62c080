// Package gatewaytest drives the AI data plane of a real node over TLS:
// the official openai-go client (azure.WithEndpoint with WithAPIKey, and
// WithTokenCredential with azidentity and Gatehouse's STS credential)
// through the gateway to an upstream the test starts, the built-in
// Language service over HTTP with every credential kind, key rotation
// under load, and a table of refusals — on SQLite and on PostgreSQL. One
// node per backend is shared by every scenario.
package gatewaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// env is one node, the bootstrap principal's ARM client, and an upstream.
type env struct {
	*testenv.Server
	sub, group string
	accounts   *armcognitiveservices.AccountsClient
	mgmtToken  string
	up         *testenv.Upstream
	// dsn is the PostgreSQL database, for a second node ("" on SQLite).
	dsn string
}

func newEnv(t testing.TB, opts ...testenv.Option) *env {
	t.Helper()
	return newEnvOn(t, false, opts...)
}

// newEnvOn is newEnv with the test clients on HTTP/1.1 (http1) or HTTP/2.
func newEnvOn(t testing.TB, http1 bool, opts ...testenv.Option) *env {
	t.Helper()
	up := testenv.NewUpstream(t, upstreamKey)
	catalog := up.CatalogFile(t)
	s := testenv.Start(t, append([]testenv.Option{testenv.WithConfig(func(c *app.Config) { c.Models = catalog })}, opts...)...)
	if http1 {
		s.HTTP1()
	}
	e := &env{Server: s, sub: s.Bootstrap.SubscriptionID, group: s.Bootstrap.ResourceGroup, up: up}
	var err error
	e.accounts, err = armcognitiveservices.NewAccountsClient(e.sub, s.Credential(t), &arm.ClientOptions{ClientOptions: s.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	e.mgmtToken = s.Token(t, s.Credential(t), "https://management.azure.com/.default")
	return e
}

// TestGateway runs every scenario against one node per backend, with the
// clients on HTTP/2 (net/http serves the node's side) and, on SQLite, on
// HTTP/1.1 (the data plane's fast path, server/h1, serves it).
func TestGateway(t *testing.T) {
	for _, b := range testenv.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnvOn(t, b.HTTP1, b.Opts(t)...)
			if b.HTTP1 {
				// Not all: the CLI scenario's own client speaks HTTP/2.
				e.AssertFastPathServed(t, 20)
			}
			if b.Name == "postgres" {
				e.dsn = pgtest.DSN(t)
			}
			for _, sc := range []struct {
				name string
				run  func(t *testing.T, e *env)
			}{
				{"openai-api-key", testOpenAIKey},
				{"openai-azidentity", testOpenAIIdentity},
				{"openai-sts-credential", testOpenAISTSCredential},
				{"openai-streaming", testOpenAIStreaming},
				{"openai-v1-api", testOpenAIV1},
				{"openai-responses-api", testOpenAIResponses},
				{"openai-images-and-audio", testOpenAIMedia},
				{"openai-realtime", testOpenAIRealtime},
				{"language-every-credential", testLanguage},
				{"identity-through-group", testGroupIdentity},
				{"rotation-under-load", testRotation},
				{"refusals", testRefusals},
				{"usage-evidence-and-metrics", testUsage},
				{"usage-evidence-at-rotation", testUsageAtRotation},
				{"token-metrics", testTokenMetrics},
				{"azure-monitor-metrics", testAzureMonitorMetrics},
				{"deployments-management-api", testDeployments},
				{"catalog-deployments", testCatalogDeployments},
				{"model-quota", testModelQuota},
				{"outbound-restriction", testOutboundRestriction},
				{"cli-deployments-and-sts", testCLI},
				{"network-rules", testNetworkRules},
				{"cli-network-rules", testCLINetworkRules},
			} {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, e)
				})
			}
		})
	}
}

// account is an AI account created through the management API, with its
// keys.
type account struct {
	name, id, endpoint string
	rid                *gatehouse.ResourceID
	key1, key2         string
}

func ptr[T any](v T) *T { return &v }

func (e *env) createAccount(t testing.TB, name, kind string, props *armcognitiveservices.AccountProperties) *account {
	t.Helper()
	// An account without local auth has no keys to list: it is created
	// with, its keys read, then local auth is disabled.
	disable := props != nil && props.DisableLocalAuth != nil && *props.DisableLocalAuth
	if disable {
		p := *props
		p.DisableLocalAuth = ptr(false)
		props = &p
	}
	poller, err := e.accounts.BeginCreate(t.Context(), e.group, name, armcognitiveservices.Account{
		Kind: ptr(kind), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}, Properties: props}, nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	res, err := poller.PollUntilDone(t.Context(), nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	keys, err := e.accounts.ListKeys(t.Context(), e.group, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if disable {
		up, err := e.accounts.BeginUpdate(t.Context(), e.group, name, armcognitiveservices.Account{
			Properties: &armcognitiveservices.AccountProperties{DisableLocalAuth: ptr(true)}}, nil)
		if err == nil {
			_, err = up.PollUntilDone(t.Context(), nil)
		}
		if err != nil {
			t.Fatalf("disable local auth on %s: %v", name, err)
		}
	}
	rid, err := gatehouse.ParseResourceID(*res.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &account{name: name, id: *res.ID, rid: rid, endpoint: *res.Properties.Endpoint, key1: *keys.Key1, key2: *keys.Key2}
}

// deploy maps deployment name of a to the test upstream, with the
// upstream model and credential the upstream checks, through the
// management API (PUT …/deployments/{name} with properties.upstream).
func (e *env) deploy(t testing.TB, a *account, name, model string) {
	t.Helper()
	r := e.arm(t, http.MethodPut, a.id+"/deployments/"+name, deploymentBody(model, e.up.URL, upstreamKey))
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("create deployment %s: %d %s", name, r.status, r.body)
	}
}

func deploymentBody(model, endpoint, key string) string {
	return jsonBody(map[string]any{"sku": map[string]any{"name": "Standard", "capacity": 1},
		"properties": map[string]any{"model": map[string]any{"format": "OpenAI", "name": model},
			"upstream": map[string]any{"endpoint": endpoint, "key": key}}})
}

// arm calls the management API as the bootstrap principal (Owner).
func (e *env) arm(t testing.TB, method, path, body string) *result {
	t.Helper()
	return e.do(t, call{method: method, url: e.URL + path + "?api-version=2025-06-01", body: body,
		header: bearer(e.mgmtToken)})
}

// principal creates a service principal and returns its object id and a
// credential; role, when set, is assigned to it on a.
func (e *env) principal(t testing.TB, name string, a *account, role string) (string, azcore.TokenCredential) {
	t.Helper()
	app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.Directory.AddSecret(t.Context(), app.AppID, directory.SecretSpec{DisplayName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if role != "" {
		_, _, err := e.Authz.CreateAssignment(t.Context(), a.rid, gatehouse.NewGUID(), authz.AssignmentSpec{
			RoleDefinitionID: authz.DefinitionID(a.rid, role), PrincipalID: app.ObjectID}, e.Bootstrap.ClientID)
		if err != nil {
			t.Fatal(err)
		}
	}
	return app.ObjectID, e.SecretCredential(t, app.AppID, secret)
}

// call is a raw data-plane request.
type call struct {
	method, url string
	header      map[string]string
	body        string
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r *result) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body not JSON: %.300s", r.status, r.body)
	}
	return m
}

func (r *result) errorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: not an Azure error: %.300s", r.status, r.body)
	}
	if h := r.header.Get("x-ms-error-code"); h != e.Error.Code {
		t.Errorf("x-ms-error-code %q, body code %q", h, e.Error.Code)
	}
	return e.Error.Code
}

func (e *env) do(t testing.TB, c call) *result {
	t.Helper()
	r, err := e.try(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's: it reports errors
// instead of failing the test.
func (e *env) try(t testing.TB, c call) (*result, error) {
	if c.method == "" {
		c.method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &result{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func keyHeader(k string) map[string]string { return map[string]string{"Ocp-Apim-Subscription-Key": k} }
func bearer(tok string) map[string]string  { return map[string]string{"Authorization": "Bearer " + tok} }

// sts trades key for a token at endpoint's STS.
func (e *env) sts(t testing.TB, endpoint, key string) string {
	t.Helper()
	r := e.do(t, call{url: strings.TrimSuffix(endpoint, "/") + "/sts/v1.0/issueToken", header: keyHeader(key)})
	if r.status != 200 {
		t.Fatalf("STS: %d %s", r.status, r.body)
	}
	return string(r.body)
}

const upstreamKey = "upstream-own-credential-7c1e"

func jsonBody(v any) string {
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(v)
	return b.String()
}
