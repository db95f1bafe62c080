package armtest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

// snapshot is the state bad requests must not change.
type snapshot struct {
	Accounts, Groups, Identities string
	Keys                         string // SHA-256 of listKeys' answer
	Assignments                  int
	Roles                        int // roles named as the bad role PUT tried
}

func (e *env) snapshot(t *testing.T, group string) snapshot {
	t.Helper()
	get := func(path string) string {
		r := e.do(t, request{method: "GET", path: path})
		if r.status != 200 {
			t.Fatalf("snapshot GET %s: %d %s", path, r.status, r.body)
		}
		return string(r.body)
	}
	subPath := "/subscriptions/" + e.sub
	return snapshot{
		Accounts:    get(subPath + "/resourceGroups/" + group + "/providers/Microsoft.CognitiveServices/accounts?api-version=2025-06-01"),
		Groups:      get(subPath + "/resourceGroups/" + group + "?api-version=2021-04-01"),
		Identities:  get(subPath + "/resourceGroups/" + group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31"),
		Keys:        fmt.Sprintf("%x", sha256.Sum256(e.do(t, request{method: "POST", path: e.accountPath(group, "target") + "/listKeys?api-version=2025-06-01"}).body)),
		Assignments: e.assignmentsWithin(t, subPath+"/resourceGroups/"+group),
		Roles:       len(e.Authz.Roles(authz.RoleFilter{Name: "Owner2"})),
	}
}

// assignmentsWithin counts the assignments at scope or beneath it. The
// filter's answer also holds those above it, at the subscription, which
// scenarios running in parallel add and remove.
func (e *env) assignmentsWithin(t *testing.T, scope string) int {
	id, err := gatehouse.ParseResourceID(scope)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range e.Authz.Assignments(authz.AssignmentFilter{Scope: id}) {
		if strings.EqualFold(a.Scope, scope) || len(a.Scope) > len(scope) && strings.EqualFold(a.Scope[:len(scope)+1], scope+"/") {
			n++
		}
	}
	return n
}

func testBadInput(t *testing.T, e *env) {
	group := e.createGroup(t, "bad-input")
	createAccount(t, e, group, "target", "OpenAI")
	sub := "/subscriptions/" + e.sub
	acct := e.accountPath(group, "target")
	const v = "?api-version=2025-06-01"
	goodAcct := `{"kind":"OpenAI","location":"westus","sku":{"name":"S0"}}`
	oid, _ := e.principal(t, "bad-input-assignee")
	assignBody := func(props map[string]any) string {
		b, _ := json.Marshal(map[string]any{"properties": props})
		return string(b)
	}
	raPath := acct + "/providers/Microsoft.Authorization/roleAssignments/"
	reader := roleDefID(e.sub, authz.RoleReader)
	huge := `{"kind":"OpenAI","location":"westus","tags":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
	tests := []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		// Malformed ids and paths.
		{"subscription-not-guid", "GET", "/subscriptions/not-a-guid/resourceGroups/x/providers/Microsoft.CognitiveServices/accounts/a" + v, "", 400, "InvalidSubscriptionId"},
		{"subscription-unknown", "GET", "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/x" + "?api-version=2021-04-01", "", 404, "SubscriptionNotFound"},
		{"group-unknown", "GET", e.accountPath("no-such-group", "a") + v, "", 404, "ResourceGroupNotFound"},
		{"unknown-resource-type", "GET", sub + "/resourceGroups/" + group + "/providers/Microsoft.Foo/bars/x" + v, "", 404, "InvalidResourceType"},
		{"type-without-name", "GET", sub + "/resourceGroups/" + group + "/providers/Microsoft.CognitiveServices" + v, "", 404, "InvalidResourceType"},
		{"control-char-in-path", "GET", sub + "/resourceGroups/a%00b" + v, "", 400, "InvalidRequestUri"},
		{"assignment-scope-malformed", "PUT", sub + "/resourceGroups/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": reader, "principalId": oid}), 404, "InvalidResourceType"},
		{"assignment-scope-of-unknown-type", "PUT", sub + "/resourceGroups/" + group + "/providers/Microsoft.Foo/bars/x/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": reader, "principalId": oid}), 404, "ResourceNotFound"},
		{"assignment-name-not-guid", "PUT", raPath + "reader-for-bob?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": reader, "principalId": oid}), 400, "InvalidRoleAssignmentId"},
		{"role-definition-id-malformed", "PUT", raPath + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": "/subscriptions/x/providers/Foo", "principalId": oid}), 400, "InvalidRoleDefinitionId"},
		{"role-definition-unknown", "PUT", raPath + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": roleDefID(e.sub, gatehouse.NewGUID()), "principalId": oid}), 400, "RoleDefinitionDoesNotExist"},
		{"principal-not-guid", "PUT", raPath + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": reader, "principalId": "bob"}), 400, "InvalidPrincipalId"},
		{"assignment-condition", "PUT", raPath + gatehouse.NewGUID() + "?api-version=2022-04-01", assignBody(map[string]any{"roleDefinitionId": reader, "principalId": oid, "condition": "true", "conditionVersion": "2.0"}), 400, "RoleAssignmentConditionNotSupported"},
		{"assignment-no-properties", "PUT", raPath + gatehouse.NewGUID() + "?api-version=2022-04-01", `{}`, 400, "InvalidRequestContent"},
		{"unsupported-filter", "GET", sub + "/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=drop%20table", "", 400, "UnsupportedQuery"},
		// api-version.
		{"api-version-unknown", "GET", acct + "?api-version=2099-01-01", "", 400, "NoRegisteredProviderFound"},
		{"api-version-missing", "GET", acct, "", 400, "MissingApiVersionParameter"},
		{"api-version-unknown-group", "GET", sub + "/resourceGroups/" + group + "?api-version=1999-01-01", "", 400, "InvalidApiVersionParameter"},
		{"api-version-unknown-authorization", "GET", sub + "/providers/Microsoft.Authorization/roleAssignments?api-version=2025-99-99", "", 400, "InvalidApiVersionParameter"},
		// Bodies.
		{"json-truncated", "PUT", acct + v, `{"kind":`, 400, "InvalidRequestContent"},
		{"json-not-object", "PUT", acct + v, `[1,2]`, 400, "InvalidRequestContent"},
		{"json-trailing-data", "PUT", acct + v, goodAcct + `{}`, 400, "InvalidRequestContent"},
		{"json-empty", "PUT", acct + v, ``, 400, "InvalidRequestContent"},
		{"wrong-type-kind", "PUT", acct + v, `{"kind":5,"location":"westus"}`, 400, "InvalidRequestContent"},
		{"wrong-type-bool", "PATCH", acct + v, `{"properties":{"disableLocalAuth":"yes"}}`, 400, "InvalidRequestContent"},
		{"wrong-type-tags", "PATCH", acct + v, `{"tags":["a"]}`, 400, "InvalidRequestContent"},
		{"wrong-type-rate-limit", "PATCH", acct + v, `{"properties":{"rateLimits":[{"key":"account","renewalPeriod":"60","count":1}]}}`, 400, "InvalidRequestContent"},
		{"customer-managed-key", "PATCH", acct + v, `{"properties":{"encryption":{"keySource":"Microsoft.KeyVault","keyVaultProperties":{"keyName":"k"}}}}`, 400, "CustomerManagedKeyNotSupported"},
		{"user-owned-storage", "PATCH", acct + v, `{"properties":{"userOwnedStorage":[{"resourceId":"/subscriptions/x/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/z"}]}}`, 400, "UserOwnedStorageNotSupported"},
		{"api-properties", "PATCH", acct + v, `{"properties":{"apiProperties":{"qnaRuntimeEndpoint":"https://x"}}}`, 400, "ApiPropertiesNotSupported"},
		// Azure features Gatehouse lacks are refused by name, never taken
		// and dropped (their defaults are taken: see defaults-taken below).
		{"dynamic-throttling", "PATCH", acct + v, `{"properties":{"dynamicThrottlingEnabled":true}}`, 400, "PropertyNotSupported"},
		{"multi-region", "PATCH", acct + v, `{"properties":{"locations":{"routingMethod":"Priority","regions":[{"name":"eastus","value":1}]}}}`, 400, "PropertyNotSupported"},
		{"migration-token", "PATCH", acct + v, `{"properties":{"migrationToken":"abc"}}`, 400, "PropertyNotSupported"},
		{"project-management", "PATCH", acct + v, `{"properties":{"allowProjectManagement":true}}`, 400, "PropertyNotSupported"},
		{"network-injections", "PATCH", acct + v, `{"properties":{"networkInjections":[{"scenario":"agent"}]}}`, 400, "PropertyNotSupported"},
		{"invalid-rate-limit", "PATCH", acct + v, `{"properties":{"rateLimits":[{"key":"account","renewalPeriod":0,"count":1}]}}`, 400, "InvalidRateLimits"},
		{"oversized-body", "PUT", acct + v, huge, 413, "RequestEntityTooLarge"},

		{"no-location", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI"}`, 400, "LocationRequired"},
		// SKUs and locations: those the server lists (resourceSkus, locations), no others.
		{"sku-unknown", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"TextAnalytics","location":"westus","sku":{"name":"ZZ9"}}`, 400, "InvalidSkuId"},
		{"sku-of-another-kind", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI","location":"westus","sku":{"name":"F0"}}`, 400, "InvalidSkuId"},
		{"sku-missing", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI","location":"westus"}`, 400, "InvalidSkuId"},
		{"sku-empty-name", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI","location":"westus","sku":{}}`, 400, "InvalidSkuId"},
		{"sku-patch-unknown", "PATCH", acct + v, `{"sku":{"name":"P1"}}`, 400, "InvalidSkuId"},
		{"location-unknown", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI","location":"mars","sku":{"name":"S0"}}`, 400, "LocationNotAvailableForResourceType"},
		{"location-unknown-existing", "PUT", acct + v, `{"kind":"OpenAI","location":"Mars","sku":{"name":"S0"}}`, 400, "LocationNotAvailableForResourceType"},
		{"location-patch-unknown", "PATCH", acct + v, `{"location":"mars"}`, 400, "LocationNotAvailableForResourceType"},
		{"group-location-unknown", "PUT", sub + "/resourceGroups/bad-input-mars?api-version=2021-04-01", `{"location":"mars"}`, 400, "LocationNotAvailableForResourceGroup"},
		// Resource providers: only the namespaces served.
		{"provider-unknown", "GET", sub + "/providers/Microsoft.Nope?api-version=2021-04-01", "", 404, "InvalidResourceNamespace"},
		{"provider-register-unknown", "POST", sub + "/providers/Microsoft.Nope/register?api-version=2021-04-01", "", 404, "InvalidResourceNamespace"},
		{"provider-unregister-unknown", "POST", sub + "/providers/Microsoft.Nope/unregister?api-version=2021-04-01", "", 404, "InvalidResourceNamespace"},
		{"provider-unregister", "POST", sub + "/providers/Microsoft.CognitiveServices/unregister?api-version=2021-04-01", "", 400, "ProviderUnregistrationNotSupported"},
		{"unknown-kind", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"Quantum","location":"westus"}`, 400, "InvalidApiSetId"},
		{"kind-change", "PUT", acct + v, `{"kind":"TextAnalytics","location":"westus"}`, 409, "KindCannotBeChanged"},
		{"bad-identity-type", "PATCH", acct + v, `{"identity":{"type":"Everything"}}`, 400, "InvalidIdentityType"},
		// Names that break Azure's rules.
		{"account-name-leading-dash", "PUT", e.accountPath(group, "-bad") + v, goodAcct, 400, "InvalidResourceName"},
		{"account-name-too-long", "PUT", e.accountPath(group, strings.Repeat("a", 65)) + v, goodAcct, 400, "InvalidResourceName"},
		{"account-name-bad-char", "PUT", e.accountPath(group, "a+b") + v, goodAcct, 400, "InvalidResourceName"},
		{"subdomain-bad", "PUT", e.accountPath(group, "new-acct") + v, `{"kind":"OpenAI","location":"westus","properties":{"customSubDomainName":"a_b"}}`, 400, "InvalidCustomSubDomainName"},
		{"group-name-bad", "PUT", sub + "/resourceGroups/bad!name?api-version=2021-04-01", `{"location":"westus"}`, 400, "InvalidResourceGroup"},
		{"group-name-trailing-dot", "PUT", sub + "/resourceGroups/bad.?api-version=2021-04-01", `{"location":"westus"}`, 400, "InvalidResourceGroup"},
		{"group-no-location", "PUT", sub + "/resourceGroups/no-loc?api-version=2021-04-01", `{}`, 400, "LocationRequired"},
		{"identity-location-unknown", "PUT", sub + "/resourceGroups/" + group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/on-mars?api-version=2023-01-31", `{"location":"mars"}`, 400, "LocationNotAvailableForResourceType"},
		{"vault-location-unknown", "PUT", sub + "/resourceGroups/" + group + "/providers/Microsoft.KeyVault/vaults/mars-vault?api-version=2023-07-01",
			`{"location":"mars","properties":{"sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true}}`, 400, "LocationNotAvailableForResourceType"},
		{"identity-name-short", "PUT", sub + "/resourceGroups/" + group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ab?api-version=2023-01-31", `{"location":"westus"}`, 400, "InvalidResourceName"},
		{"tag-name-bad", "PATCH", acct + v, `{"tags":{"a/b":"x"}}`, 400, "InvalidTag"},
		{"tag-names-differ-in-case", "PATCH", acct + v, `{"tags":{"Team":"x","team":"y"}}`, 400, "InvalidTag"},
		{"tags-resource-names-differ-in-case", "PUT", acct + "/providers/Microsoft.Resources/tags/default?api-version=2021-04-01",
			`{"properties":{"tags":{"B":"1","b":"2"}}}`, 400, "InvalidTag"},
		// Key names.
		{"key-name-unknown", "POST", acct + "/regenerateKey" + v, `{"keyName":"Key3"}`, 400, "InvalidKeyName"},
		{"key-name-empty", "POST", acct + "/regenerateKey" + v, `{"keyName":""}`, 400, "InvalidKeyName"},
		{"key-name-missing", "POST", acct + "/regenerateKey" + v, `{}`, 400, "InvalidKeyName"},
		{"key-name-number", "POST", acct + "/regenerateKey" + v, `{"keyName":1}`, 400, "InvalidRequestContent"},
		{"key-name-no-body", "POST", acct + "/regenerateKey" + v, ``, 400, "InvalidRequestContent"},
		// Others.
		{"regenerate-missing-account", "POST", e.accountPath(group, "nope") + "/regenerateKey" + v, `{"keyName":"Key1"}`, 404, "ResourceNotFound"},
		{"wrong-method", "PATCH", acct + "/listKeys" + v, `{}`, 405, "MethodNotAllowed"},
		{"builtin-role-change", "PUT", sub + "/providers/Microsoft.Authorization/roleDefinitions/" + authz.RoleOwner + "?api-version=2022-04-01",
			`{"properties":{"roleName":"Owner2","permissions":[{"actions":["*"]}],"assignableScopes":["` + sub + `"]}}`, 400, "BuiltInRoleCannotBeModified"},
	}
	contentTypes := map[string]string{
		"body-as-text":              "text/plain",
		"body-as-form":              "application/x-www-form-urlencoded",
		"body-without-type":         "",
		"body-as-json-with-charset": "application/json; charset=utf-8",
	}
	tests = append(tests, []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		{"body-as-text", "PUT", acct + v, goodAcct, 415, "UnsupportedMediaType"},
		{"body-as-form", "PATCH", acct + v, `{"tags":{"a":"b"}}`, 415, "UnsupportedMediaType"},
		{"body-without-type", "POST", acct + "/regenerateKey" + v, `{"keyName":"Key1"}`, 415, "UnsupportedMediaType"},
		{"body-as-json-with-charset", "POST", acct + "/regenerateKey" + v, `{"keyName":"Key3"}`, 400, "InvalidKeyName"},
	}...)
	before := e.snapshot(t, group)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := request{method: tt.method, path: tt.path}
			if tt.body != "" {
				rq.body = tt.body
			}
			// A body that does not say it is JSON, as curl -d sends
			// one, is 415 whatever it holds; charset aside.
			if ct, ok := contentTypes[tt.name]; ok {
				rq.header = http.Header{"Content-Type": {ct}}
			}
			r := e.do(t, rq)
			if r.status >= 500 {
				t.Fatalf("server error %d: %s", r.status, r.body)
			}
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.status, clipBody(r.body), tt.status, tt.code)
			}
			if r.header.Get("x-ms-error-code") != tt.code {
				t.Errorf("x-ms-error-code %q", r.header.Get("x-ms-error-code"))
			}
		})
	}
	if after := e.snapshot(t, group); !reflect.DeepEqual(before, after) {
		t.Fatalf("bad requests changed state:\nbefore %+v\nafter  %+v", before, after)
	}
	// defaults-taken: the unsupported features' defaults, as templates
	// and SDKs send them, are not refused.
	if r := e.do(t, request{method: "PATCH", path: acct + v, body: `{"properties":{"dynamicThrottlingEnabled":false,` +
		`"allowProjectManagement":false,"locations":null,"migrationToken":"","associatedProjects":[],"amlWorkspace":null}}`}); r.status != 200 {
		t.Errorf("defaults: %d %s", r.status, clipBody(r.body))
	}
	if strings.Contains(e.Logs.String(), `"status":500`) {
		t.Error("the node logged a 500")
	}
}

func clipBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
