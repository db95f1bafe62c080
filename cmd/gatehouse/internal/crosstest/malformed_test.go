package crosstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// sweepTarget is one route of one surface, with a valid request for it.
type sweepTarget struct {
	label  string
	method string
	// base is the URL up to the name, name the valid name in it, rest what
	// follows the name; query is the valid query.
	base, name, rest, query string
	body                    string
	auth                    string // the Authorization or key header line ("Name: value")
	oauth                   bool   // errors in OAuth's shape, not Azure's
	// ignoresBody: the route reads no body (the STS); stores: it keeps
	// what the body says, so a body that is not UTF-8 must be refused
	// rather than kept altered.
	ignoresBody, stores bool
}

func (s sweepTarget) url(name, query string) string {
	u := s.base + name + s.rest
	if query != "" {
		u += "?" + query
	}
	return u
}

// testMalformedSweep sends every surface's write routes a table of
// malformed requests — bodies that are not JSON, are the wrong JSON, are
// nested too deep, too large, not UTF-8; content types that are not JSON;
// missing, malformed, repeated api-versions; names too long, with NUL,
// dots, slashes, non-ASCII — and checks that none is answered with a 5xx,
// and that every refusal is in its surface's error shape (Azure's
// {"error":{"code","message"}}, OAuth's {"error","error_description"}).
// The node's log must show no panic and no 500.
func testMalformedSweep(t *testing.T, e *env) {
	group := e.group
	a := e.createAccount(t, group, "sweep", "AIServices", false)
	up := testenv.NewUpstream(t, "sweep-upstream-key")
	if r := e.deploy(t, a, "chat", map[string]any{"endpoint": up.URL, "key": up.Key, "model": "m"}); r.status >= 300 {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	e.createVault(t, "sweepkv")
	vaultToken := e.Token(t, e.Credential(t), "https://vault."+e.Host+"/.default")
	graphToken := e.Token(t, e.Credential(t), "https://graph.microsoft.com/.default")
	r := e.do(t, "POST", e.URL+"/v1.0/applications", map[string]any{"displayName": "sweep-app"}, graphToken)
	if r.status != http.StatusCreated {
		t.Fatalf("application: %d %s", r.status, r.body)
	}
	appID, _ := r.json(t)["id"].(string)
	if r := e.do(t, "PUT", e.vaultURL("sweepkv")+"secrets/s1?api-version=7.4", map[string]any{"value": "sweep value"}, vaultToken); r.status != 200 {
		t.Fatalf("secret: %d %s", r.status, r.body)
	}

	mgmt := "Authorization: Bearer " + e.mgmtToken
	arm := "api-version=" + armAPI
	sub := e.URL + "/subscriptions/" + e.sub
	rg := sub + "/resourceGroups/" + group
	acct := rg + "/providers/Microsoft.CognitiveServices/accounts/"
	vaults := rg + "/providers/Microsoft.KeyVault/vaults/"
	kv := "Authorization: Bearer " + vaultToken
	kvq := "api-version=7.4"
	graph := "Authorization: Bearer " + graphToken
	key := "Ocp-Apim-Subscription-Key: " + a.key1
	ai := e.URL + "/ai/"
	targets := []sweepTarget{
		{label: "arm-account-put", stores: true, method: "PUT", base: acct, name: "sweep", query: arm, auth: mgmt,
			body: `{"kind":"AIServices","location":"westus","sku":{"name":"S0"}}`},
		{label: "arm-account-patch", stores: true, method: "PATCH", base: acct, name: "sweep", query: arm, auth: mgmt, body: `{"tags":{"a":"b"}}`},
		{label: "arm-check-domain", method: "POST", base: sub + "/providers/Microsoft.CognitiveServices/", name: "checkDomainAvailability", query: arm, auth: mgmt,
			body: `{"subdomainName":"sweep-free","type":"Microsoft.CognitiveServices/accounts"}`},
		{label: "arm-check-sku", method: "POST", base: sub + "/providers/Microsoft.CognitiveServices/locations/", name: "westus", rest: "/checkSkuAvailability",
			query: arm, auth: mgmt, body: `{"skus":["S0"],"kind":"TextAnalytics","type":"Microsoft.CognitiveServices/accounts"}`},
		{label: "arm-calculate-capacity", method: "POST", base: sub + "/providers/Microsoft.CognitiveServices/", name: "calculateModelCapacity", query: arm, auth: mgmt,
			body: `{"model":{"format":"OpenAI","name":"gpt-4o-mini","version":"2024-07-18"},"skuName":"Standard","workloads":[{"requestPerMinute":10,"requestParameters":{"avgPromptTokens":30,"avgGeneratedTokens":50}}]}`},
		{label: "arm-regenerate", stores: true, method: "POST", base: acct, name: "sweep", rest: "/regenerateKey", query: arm, auth: mgmt, body: `{"keyName":"Key2"}`},
		{label: "arm-deployment-put", stores: true, method: "PUT", base: acct + "sweep/deployments/", name: "chat", query: arm, auth: mgmt,
			body: `{"sku":{"name":"Standard","capacity":1},"properties":{"model":{"format":"OpenAI","name":"gpt-4o"},"upstream":{"endpoint":"` + up.URL + `","key":"` + up.Key + `","model":"m"}}}`},
		{label: "arm-deployment-patch", stores: true, method: "PATCH", base: acct + "sweep/deployments/", name: "chat", query: arm, auth: mgmt,
			body: `{"sku":{"name":"Standard","capacity":2},"tags":{"k":"v"}}`},
		{label: "arm-vault-put", stores: true, method: "PUT", base: vaults, name: "sweepkv", query: "api-version=" + vaultAPI, auth: mgmt,
			body: `{"location":"westus","properties":{"tenantId":"` + e.Directory.DefaultTenant() + `","sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true}}`},
		{label: "arm-group-put", stores: true, method: "PUT", base: sub + "/resourceGroups/", name: group, query: "api-version=2021-04-01", auth: mgmt, body: `{"location":"westus"}`},
		{label: "arm-identity-put", stores: true, method: "PUT", base: rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/", name: "sweep-id",
			query: "api-version=2023-01-31", auth: mgmt, body: `{"location":"westus"}`},
		{label: "arm-lock-put", stores: true, method: "PUT", base: rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/sweep-id/providers/Microsoft.Authorization/locks/",
			name: "sweep-lock", query: "api-version=2016-09-01", auth: mgmt, body: `{"properties":{"level":"CanNotDelete","notes":"sweep"}}`},
		{label: "arm-role-assignment-put", stores: true, method: "PUT", base: acct + "sweep/providers/Microsoft.Authorization/roleAssignments/",
			name: "9f4c1f8e-2a55-4c1e-9b8e-0d6f1b2a3c4d", query: "api-version=2022-04-01", auth: mgmt,
			body: `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/` + authz.RoleCognitiveServicesUser + `","principalId":"` + e.oid + `"}}`},
		{label: "arm-role-definition-put", stores: true, method: "PUT", base: sub + "/providers/Microsoft.Authorization/roleDefinitions/", name: "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
			query: "api-version=2022-04-01", auth: mgmt,
			body: `{"properties":{"roleName":"sweep-role","type":"CustomRole","permissions":[{"actions":["*/read"]}],"assignableScopes":["/subscriptions/` + e.sub + `"]}}`},
		{label: "kv-secret-put", stores: true, method: "PUT", base: e.vaultURL("sweepkv") + "secrets/", name: "s1", query: kvq, auth: kv, body: `{"value":"v2"}`},
		{label: "kv-secret-patch", stores: true, method: "PATCH", base: e.vaultURL("sweepkv") + "secrets/", name: "s1", query: kvq, auth: kv, body: `{"attributes":{"enabled":true}}`},
		{label: "kv-restore", stores: true, method: "POST", base: e.vaultURL("sweepkv") + "secrets/", name: "restore", query: kvq, auth: kv, body: `{"value":"AAAA"}`},
		{label: "graph-application-patch", stores: true, method: "PATCH", base: e.URL + "/v1.0/applications/", name: appID, auth: graph, body: `{"displayName":"sweep-app"}`},
		{label: "graph-add-password", stores: true, method: "POST", base: e.URL + "/v1.0/applications/", name: appID, rest: "/addPassword", auth: graph,
			body: `{"passwordCredential":{"displayName":"p"}}`},
		{label: "graph-federated", stores: true, method: "POST", base: e.URL + "/v1.0/applications/", name: appID, rest: "/federatedIdentityCredentials", auth: graph,
			body: `{"name":"f","issuer":"https://issuer.example","subject":"s","audiences":["api://AzureADTokenExchange"]}`},
		{label: "graph-user", stores: true, method: "POST", base: e.URL + "/v1.0/", name: "users", auth: graph,
			body: `{"userPrincipalName":"sweep@x.test","displayName":"s","accountEnabled":true,"passwordProfile":{"password":"sweep user password"}}`},
		{label: "graph-sp-create", stores: true, method: "POST", base: e.URL + "/v1.0/", name: "servicePrincipals", auth: graph, body: `{"appId":"` + appID + `"}`},
		{label: "graph-sp-patch", stores: true, method: "PATCH", base: e.URL + "/v1.0/servicePrincipals/", name: appID, auth: graph, body: `{"accountEnabled":true}`},
		{label: "graph-remove-password", stores: true, method: "POST", base: e.URL + "/v1.0/applications/", name: appID, rest: "/removePassword", auth: graph,
			body: `{"keyId":"00000000-0000-0000-0000-000000000000"}`},
		{label: "graph-add-key", stores: true, method: "POST", base: e.URL + "/v1.0/applications/", name: appID, rest: "/addKey", auth: graph,
			body: `{"keyCredential":{"type":"AsymmetricX509Cert","usage":"Verify","key":"AAAA"}}`},
		{label: "graph-directory-role", stores: true, method: "POST", base: e.URL + "/v1.0/roleManagement/directory/", name: "roleAssignments", auth: graph,
			body: `{"roleDefinitionId":"00000000-0000-0000-0000-000000000000","principalId":"` + e.oid + `","directoryScopeId":"/"}`},
		{label: "identity-header", stores: true, method: "POST", base: e.URL + "/gatehouse/v1/", name: "identityHeaders", auth: mgmt,
			body: `{"identity":"no-such-identity","lifetimeSeconds":60}`},
		{label: "oauth-token", method: "POST", base: e.URL + "/", name: e.Directory.DefaultTenant(), rest: "/oauth2/v2.0/token", oauth: true,
			body: url.Values{"grant_type": {"client_credentials"}, "client_id": {e.Bootstrap.ClientID}, "client_secret": {"wrong"}, "scope": {mgmtScope}}.Encode()},
		{label: "sts", ignoresBody: true, method: "POST", base: ai, name: "sweep", rest: "/sts/v1.0/issueToken", auth: key},
		{label: "language", method: "POST", base: ai, name: "sweep", rest: "/language/:analyze-text", query: "api-version=2023-04-01", auth: key,
			body: `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello world"}]}}`},
		{label: "openai-chat", method: "POST", base: ai + "sweep/openai/deployments/", name: "chat", rest: "/chat/completions", query: "api-version=2024-10-21", auth: key,
			body: `{"messages":[{"role":"user","content":"hi"}]}`},
		{label: "openai-v1", method: "POST", base: ai + "sweep/openai/", name: "v1", rest: "/chat/completions", auth: key,
			body: `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`},
		{label: "openai-responses", method: "POST", base: ai + "sweep/openai/v1/", name: "responses", auth: key, body: `{"model":"chat","input":"hi"}`},
		{label: "openai-responses-dated", method: "POST", base: ai + "sweep/openai/", name: "responses", query: "api-version=2025-04-01-preview", auth: key,
			body: `{"model":"chat","input":"hi"}`},
		{label: "openai-response-read", ignoresBody: true, method: "GET", base: ai + "sweep/openai/v1/responses/", name: "resp_1", auth: key},
		{label: "openai-response-cancel", ignoresBody: true, method: "POST", base: ai + "sweep/openai/responses/", name: "resp_1", rest: "/cancel",
			query: "api-version=2025-04-01-preview", auth: key},
		{label: "openai-transcription", method: "POST", base: ai + "sweep/openai/deployments/", name: "chat", rest: "/audio/transcriptions",
			query: "api-version=2024-10-21", auth: key, body: `{"model":"chat"}`},
		{label: "openai-speech", method: "POST", base: ai + "sweep/openai/v1/audio/", name: "speech", auth: key, body: `{"model":"chat","input":"hi","voice":"alloy"}`},
		// A WebSocket's upgrade request sent as a plain GET: 426 (or what
		// the name, query and credential make of it first).
		{label: "openai-realtime", ignoresBody: true, method: "GET", base: ai + "sweep/openai/", name: "realtime",
			query: "api-version=2025-04-01-preview&deployment=chat", auth: key},
		{label: "openai-realtime-v1", ignoresBody: true, method: "GET", base: ai + "sweep/openai/v1/", name: "realtime", query: "model=chat", auth: key},
	}

	bodies := map[string]string{
		"not-json":    "not json",
		"truncated":   `{"a":`,
		"array":       `[]`,
		"string":      `"x"`,
		"null":        `null`,
		"number":      `123`,
		"deep":        strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"deep-object": strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000),
		"wrong-types": `{"properties":"x","location":5,"sku":[],"kind":{},"value":7,"tags":"t","displayName":[],"messages":"m","analysisInput":1,"attributes":"a","keyName":9}`,
		"bad-utf8":    "{\"location\":\"\xff\xfe\",\"value\":\"\xc3\x28\",\"displayName\":\"\xed\xa0\x80\"}",
		// encoding/json would decode these escapes to U+FFFD: refused as
		// bad UTF-8 is.
		"lone-surrogate": `{"location":"w\ud800","value":"pw-\ud800-end","displayName":"\udc00x","tags":{"k":"v\udc00"},"keyName":"Key1\ud83d"}`,
		"nul":            `{"location":"a\u0000b","value":"a\u0000b","displayName":"a\u0000b","keyName":"Key1\u0000","properties":{"roleName":"a\u0000b","permissions":[{"actions":["*/read"]}],"assignableScopes":["/subscriptions/` + e.sub + `"]},"userPrincipalName":"a\u0000b@x.test","name":"a\u0000b"}`,
		"huge":           `{"value":"` + strings.Repeat("x", 6<<20) + `"}`,
		"duplicate-keys": `{"keyName":"Key1","keyName":7,"value":"a","value":{}}`,
		"big-number":     `{"properties":{"x":1e999},"value":1e999,"max_tokens":1e999}`,
		"empty":          ``,
	}
	// Bodies every route that reads one refuses.
	mustRefuse := map[string]bool{"not-json": true, "truncated": true, "array": true, "string": true,
		"number": true, "null": true, "deep": true, "empty": true}
	contentTypes := []string{"text/plain", "application/json; charset=utf-16", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", ""}
	queries := map[string]string{
		"no-api-version":   "",
		"bad-api-version":  "api-version=9999-99-99",
		"junk-api-version": "api-version=%27%3B%20DROP",
		"long-api-version": "api-version=" + strings.Repeat("2", 10000),
		"bad-escape":       "api-version=%zz",
		"repeated":         "api-version=2024-10-21&api-version=7.4&api-version=" + armAPI,
	}
	names := map[string]string{
		"long":      strings.Repeat("a", 400),
		"nul":       "a%00b",
		"dots":      "..",
		"enc-dots":  "%2e%2e",
		"slash":     "a%2Fb",
		"non-ascii": "%C3%BC%E2%82%AC",
		"bad-utf8":  "%ff%fe",
		"space":     "a%20b",
		"empty":     "",
		"percent":   "%25",
		"ctl":       "a%0d%0aX-Injected:%201",
	}

	clients := e.protocolClients(t)
	var mu sync.Mutex
	statuses := map[int]int{}
	send := func(t *testing.T, tg sweepTarget, what, method, u, ctype, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
		if err != nil {
			return 0 // a URL net/http will not send is not the server's to answer
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if tg.auth != "" {
			k, v, _ := strings.Cut(tg.auth, ": ")
			req.Header.Set(k, v)
		}
		var resp *http.Response
		for proto, c := range clients {
			rq := req.Clone(req.Context())
			rq.Body = io.NopCloser(strings.NewReader(body))
			r, err := c.Do(rq)
			if err != nil {
				t.Errorf("%s %s over %s: %v", tg.label, what, proto, err)
				return 0
			}
			if resp == nil {
				resp = r
				continue
			}
			// The other protocol must get the same status — but for a
			// request that created something, which the repeat finds (an
			// idempotent PUT's 200, a POST's 409).
			r.Body.Close()
			repeat := resp.StatusCode == http.StatusCreated && (r.StatusCode == http.StatusOK || r.StatusCode == http.StatusConflict)
			if r.StatusCode != resp.StatusCode && !repeat {
				t.Errorf("%s %s: %d over one protocol, %d over the other", tg.label, what, resp.StatusCode, r.StatusCode)
			}
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		mu.Lock()
		statuses[resp.StatusCode]++
		mu.Unlock()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d %.300s", tg.label, what, resp.StatusCode, data)
			return resp.StatusCode
		}
		if resp.StatusCode < 400 {
			return resp.StatusCode
		}
		if resp.Header.Get("X-Injected") != "" {
			t.Errorf("%s %s: a header was injected", tg.label, what)
		}
		if len(data) == 0 && resp.StatusCode == http.StatusNotFound {
			return resp.StatusCode
		}
		// A path no route matches is the router's (Azure's shape) on every
		// surface.
		if !errorShaped(data, tg.oauth) && !(resp.StatusCode == 404 || resp.StatusCode == 405) || !errorShaped(data, tg.oauth) && !errorShaped(data, false) {
			t.Errorf("%s %s: %d, body not an error of its surface: %.300s", tg.label, what, resp.StatusCode, data)
		}
		return resp.StatusCode
	}
	for _, tg := range targets {
		t.Run(tg.label, func(t *testing.T) {
			ctype := "application/json"
			if tg.oauth {
				ctype = "application/x-www-form-urlencoded"
			}
			for what, body := range bodies {
				status := send(t, tg, "body "+what, tg.method, tg.url(tg.name, tg.query), ctype, body)
				refuse := !tg.ignoresBody && (mustRefuse[what] || tg.stores && (what == "bad-utf8" || what == "lone-surrogate"))
				if refuse && status < 400 {
					t.Errorf("%s body %s: %d, want it refused", tg.label, what, status)
				}
			}
			for _, ct := range contentTypes {
				send(t, tg, "content-type "+ct, tg.method, tg.url(tg.name, tg.query), ct, tg.body)
			}
			for what, q := range queries {
				send(t, tg, "query "+what, tg.method, tg.url(tg.name, q), ctype, tg.body)
			}
			for what, n := range names {
				send(t, tg, "name "+what, tg.method, tg.url(n, tg.query), ctype, tg.body)
			}
		})
	}
	t.Logf("answers by status: %v", statuses)
	if statuses[200]+statuses[201] == 0 || statuses[400] < 100 {
		t.Errorf("answers by status %v: the sweep did not reach the routes", statuses)
	}
	// Read routes: their filters, paging tokens and sizes, each with the
	// route's valid api-version kept.
	reads := []sweepTarget{
		{label: "arm-subscriptions", base: e.URL + "/subscriptions", query: "api-version=2022-12-01", auth: mgmt},
		{label: "arm-groups", base: sub + "/resourceGroups", query: "api-version=2021-04-01", auth: mgmt},
		{label: "arm-locations", base: sub + "/locations", query: "api-version=2022-12-01", auth: mgmt},
		{label: "arm-resources", base: sub + "/resources", query: "api-version=2021-04-01", auth: mgmt},
		{label: "arm-accounts", base: rg + "/providers/Microsoft.CognitiveServices/accounts", query: arm, auth: mgmt},
		{label: "arm-deployments", base: acct + "sweep/deployments", query: arm, auth: mgmt},
		{label: "arm-skus", base: sub + "/providers/Microsoft.CognitiveServices/skus", query: arm, auth: mgmt},
		{label: "arm-account-models", base: acct + "sweep/models", query: arm, auth: mgmt},
		{label: "arm-location-models", base: sub + "/providers/Microsoft.CognitiveServices/locations/westus/models", query: arm, auth: mgmt},
		{label: "arm-vaults", base: rg + "/providers/Microsoft.KeyVault/vaults", query: "api-version=" + vaultAPI, auth: mgmt},
		{label: "arm-identities", base: rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities", query: "api-version=2023-01-31", auth: mgmt},
		{label: "arm-role-assignments", base: sub + "/providers/Microsoft.Authorization/roleAssignments", query: "api-version=2022-04-01", auth: mgmt},
		{label: "arm-role-definitions", base: sub + "/providers/Microsoft.Authorization/roleDefinitions", query: "api-version=2022-04-01", auth: mgmt},
		{label: "arm-audit", base: sub + "/providers/Microsoft.Authorization/auditLogs", query: "api-version=2022-04-01", auth: mgmt},
		{label: "kv-secrets", base: e.vaultURL("sweepkv") + "secrets", query: kvq, auth: kv},
		{label: "kv-versions", base: e.vaultURL("sweepkv") + "secrets/s1/versions", query: kvq, auth: kv},
		{label: "kv-deleted", base: e.vaultURL("sweepkv") + "deletedsecrets", query: kvq, auth: kv},
		{label: "graph-applications", base: e.URL + "/v1.0/applications", auth: graph},
		{label: "graph-service-principals", base: e.URL + "/v1.0/servicePrincipals", auth: graph},
		{label: "graph-users", base: e.URL + "/v1.0/users", auth: graph},
		{label: "graph-role-assignments", base: e.URL + "/v1.0/roleManagement/directory/roleAssignments", auth: graph},
		{label: "openai-models", base: ai + "sweep/openai/v1/models", auth: key},
		{label: "openai-base-models", base: ai + "sweep/openai/models", query: "api-version=2024-10-21", auth: key},
	}
	params := map[string]string{
		"filter-quote":     "$filter=%27",
		"filter-open":      "$filter=name%20eq%20%27a",
		"filter-and":       "$filter=name%20eq%20%27a%27%20and",
		"filter-or":        "$filter=name%20eq%20%27a%27%20or%20name%20eq%20%27b%27",
		"filter-func":      "$filter=startswith(displayName,%27a%27)",
		"filter-unicode":   "$filter=displayName%20eq%20%27%C3%BC%E2%82%AC%27",
		"filter-bad-utf8":  "$filter=displayName%20eq%20%27%ff%27",
		"filter-long":      "$filter=" + strings.Repeat("a", 20000),
		"filter-principal": "$filter=principalId%20eq%20%27not-a-guid%27",
		"filter-assigned":  "$filter=assignedTo(%27%27)",
		"filter-atscope":   "$filter=atScope()%20and%20atScope()",
		"top-negative":     "$top=-1",
		"top-word":         "$top=abc",
		"top-huge":         "$top=99999999999999999999999",
		"top-zero":         "$top=0",
		"skiptoken":        "$skiptoken=garbage",
		"skiptoken-b64":    "$skiptoken=eyJ4Ijoi",
		"skiptoken-utf8":   "$skiptoken=%ff%fe",
		"skipToken":        "$skipToken=%00",
		"maxresults-zero":  "maxresults=0",
		"maxresults-word":  "maxresults=abc",
		"maxresults-huge":  "maxresults=99999999999999999999",
		"expand":           "$expand=%27",
		"select":           "$select=%27,,",
		"count":            "$count=maybe",
		"search":           "$search=%22",
		"orderby":          "$orderby=%27",
	}
	for _, tg := range reads {
		t.Run(tg.label, func(t *testing.T) {
			if st := send(t, tg, "plain", "GET", tg.url("", tg.query), "", ""); st != http.StatusOK {
				t.Errorf("%s: %d, want the list", tg.label, st)
			}
			for what, p := range params {
				q := p
				if tg.query != "" {
					q = tg.query + "&" + p
				}
				send(t, tg, what, "GET", tg.url("", q), "", "")
			}
		})
	}

	// The node is shared with the other scenarios (one of which expects
	// a 500 of its own): only this sweep's requests are looked at, and
	// panics anywhere.
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, `"status":500`) && strings.Contains(line, "sweep") {
			t.Errorf("the node logged: %.500s", line)
		}
	}
	e.AssertNotLogged(t, "sweep value", "sweep user password", a.key1, up.Key)
	if up.SawSecret(a.key1) {
		t.Error("the upstream saw the account key")
	}
}

// errorShaped reports whether body is an error in Azure's shape
// ({"error":{"code":…,"message":…}}) or, for oauth, OAuth's
// ({"error":"…","error_description":"…"}).
func errorShaped(body []byte, oauth bool) bool {
	var v map[string]json.RawMessage
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	raw, ok := v["error"]
	if !ok {
		return false
	}
	if oauth {
		var s string
		return json.Unmarshal(raw, &s) == nil && s != "" && v["error_description"] != nil
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	return json.Unmarshal(raw, &e) == nil && e.Code != "" && e.Message != "" && !bytes.Contains(body, []byte("goroutine"))
}
