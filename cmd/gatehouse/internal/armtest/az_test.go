package armtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

// azHeaders are what az 2.45 sends besides the token (azure-wire.md §6.3).
func azHeaders(command string) http.Header {
	return http.Header{
		"Accept":                 {"application/json"},
		"Commandname":            {command},
		"Parametersetname":       {"--name --resource-group"},
		"X-Ms-Client-Request-Id": {gatehouse.NewGUID()},
		"User-Agent":             {"AZURECLI/2.45.0 (DEB) azsdk-python-mgmt-cognitiveservices/13.4.0b1 Python/3.11.2"},
	}
}

// testAzShaped replays what az 2.45 sends: api-versions 2019-11-01
// (subscriptions), 2022-12-01 (accounts), 2020-04-01-preview (role
// assignments) and 2018-01-01-preview (role definitions).
func testAzShaped(t *testing.T, e *env) {
	// az login: GET /subscriptions?api-version=2019-11-01.
	r := e.do(t, request{method: "GET", path: "/subscriptions?api-version=2019-11-01"})
	var subs struct {
		Value []map[string]any `json:"value"`
	}
	r.json(t, &subs)
	if r.status != 200 || len(subs.Value) != 1 {
		t.Fatalf("subscriptions: %d %s", r.status, r.body)
	}
	s := subs.Value[0]
	if s["id"] != "/subscriptions/"+e.sub || s["subscriptionId"] != e.sub || s["state"] != "Enabled" ||
		s["tenantId"] != e.Directory.DefaultTenant() || s["displayName"] == "" || s["managedByTenants"] == nil {
		t.Fatalf("subscription item: %v", s)
	}
	r = e.do(t, request{method: "GET", path: "/tenants?api-version=2019-11-01"})
	if r.status != 200 || !strings.Contains(string(r.body), e.Directory.DefaultTenant()) {
		t.Fatalf("tenants: %d %s", r.status, r.body)
	}
	r = e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "?api-version=2022-12-01"})
	if r.status != 200 {
		t.Fatalf("subscription: %d %s", r.status, r.body)
	}

	group := e.createGroup(t, "az-shaped")
	path := e.accountPath(group, "az-acct")
	r = e.do(t, request{method: "PUT", path: path + "?api-version=2022-12-01", header: azHeaders("cognitiveservices account create"),
		body: `{"kind": "TextAnalytics", "sku": {"name": "S0"}, "location": "westus", "properties": {}, "tags": null}`})
	if r.status != http.StatusCreated {
		t.Fatalf("az create: %d %s", r.status, r.body)
	}
	// keys list: POST with Content-Length: 0.
	r = e.do(t, request{method: "POST", path: path + "/listKeys?api-version=2022-12-01", header: azHeaders("cognitiveservices account keys list")})
	var keys struct{ Key1, Key2 string }
	r.json(t, &keys)
	if r.status != 200 || len(keys.Key1) != 64 || len(keys.Key2) != 64 {
		t.Fatalf("az keys list: %d %s", r.status, r.body)
	}
	// keys regenerate --key-name key2 (az sends "Key2"; any case works).
	for _, name := range []string{"Key2", "key1"} {
		r = e.do(t, request{method: "POST", path: path + "/regenerateKey?api-version=2022-12-01",
			header: azHeaders("cognitiveservices account keys regenerate"), body: `{"keyName": "` + name + `"}`})
		var after struct{ Key1, Key2 string }
		r.json(t, &after)
		if r.status != 200 {
			t.Fatalf("az regenerate %s: %d %s", name, r.status, r.body)
		}
		changed1, changed2 := after.Key1 != keys.Key1, after.Key2 != keys.Key2
		if (name == "Key2") != changed2 || (name == "key1") != changed1 {
			t.Fatalf("regenerate %s changed key1=%v key2=%v", name, changed1, changed2)
		}
		keys.Key1, keys.Key2 = after.Key1, after.Key2
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("keys response Cache-Control %q", got)
	}

	// az role assignment create --assignee-object-id … --role <GUID> --scope …
	oid, _ := e.principal(t, "az-assignee")
	acctScope := path
	name := gatehouse.NewGUID()
	r = e.do(t, request{method: "PUT", path: acctScope + "/providers/Microsoft.Authorization/roleAssignments/" + name + "?api-version=2020-04-01-preview",
		body: map[string]any{"properties": map[string]any{
			"roleDefinitionId": roleDefID(e.sub, authz.RoleCognitiveServicesUser), "principalId": oid, "principalType": "ServicePrincipal"}}})
	if r.status != http.StatusCreated {
		t.Fatalf("az role assignment create: %d %s", r.status, r.body)
	}
	// az role assignment list --assignee-object-id … (subscription scope).
	q := url.Values{"$filter": {"principalId eq '" + oid + "'"}, "api-version": {"2020-04-01-preview"}}
	r = e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleAssignments?" + q.Encode()})
	var list struct {
		Value []struct {
			Name       string `json:"name"`
			Properties struct {
				Scope string `json:"scope"`
			} `json:"properties"`
		} `json:"value"`
	}
	r.json(t, &list)
	if r.status != 200 || len(list.Value) != 1 || list.Value[0].Name != name || list.Value[0].Properties.Scope != acctScope {
		t.Fatalf("az role assignment list: %d %s", r.status, r.body)
	}
	// az role assignment create --role "Cognitive Services User" looks the
	// role up by name first (api 2018-01-01-preview).
	q = url.Values{"$filter": {"roleName eq 'Cognitive Services User'"}, "api-version": {"2018-01-01-preview"}}
	r = e.do(t, request{method: "GET", path: acctScope + "/providers/Microsoft.Authorization/roleDefinitions?" + q.Encode()})
	if r.status != 200 || !strings.Contains(string(r.body), authz.RoleCognitiveServicesUser) {
		t.Fatalf("az role definition lookup: %d %s", r.status, r.body)
	}
	r = e.do(t, request{method: "DELETE", path: acctScope + "/providers/Microsoft.Authorization/roleAssignments/" + name + "?api-version=2020-04-01-preview"})
	if r.status != 200 {
		t.Fatalf("az role assignment delete: %d %s", r.status, r.body)
	}
	// The resource-provider probes answer "Registered".
	r = e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "/providers/Microsoft.CognitiveServices?api-version=2019-05-01"})
	if r.status != 200 || !strings.Contains(string(r.body), `"registrationState":"Registered"`) {
		t.Fatalf("provider: %d %s", r.status, r.body)
	}
	e.AssertNotLogged(t, keys.Key1, keys.Key2)
}

func testUnauthenticated(t *testing.T, e *env) {
	path := "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "?api-version=2021-04-01"
	cogToken := e.Token(t, e.cred, "https://cognitiveservices.azure.com/.default")
	tests := []struct {
		name, auth string
		code       string
	}{
		{"no-header", "", "AuthenticationFailed"},
		{"basic", "Basic dXNlcjpwYXNz", "AuthenticationFailedInvalidHeader"},
		{"garbage", "Bearer not-a-token", "InvalidAuthenticationToken"},
		{"tampered", "Bearer " + e.token[:len(e.token)-4] + "AAAA", "InvalidAuthenticationToken"},
		{"wrong-audience", "Bearer " + cogToken, "InvalidAuthenticationTokenAudience"},
	}
	// The server's own base URL is ARM's endpoint and an audience it
	// takes (the JS ARM SDKs' scope when only the endpoint is changed).
	if r := e.do(t, request{method: "GET", path: path, token: "-", header: http.Header{
		"Authorization": {"Bearer " + e.Token(t, e.cred, e.URL+"/.default")}}}); r.status != 200 {
		t.Errorf("a token for the server's own URL: %d %s", r.status, r.body)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			r := e.do(t, request{method: "GET", path: path, token: "-", header: h})
			if r.status != 401 || r.code() != tt.code {
				t.Fatalf("%d %s, want 401 %s", r.status, r.body, tt.code)
			}
			if wa := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, `Bearer authorization_uri="`) || !strings.Contains(wa, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
		})
	}
}
