package crosstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

// testConcurrentWrites sends each write route the same request from
// several clients at once — creating one resource, regenerating one key,
// setting one secret, deleting one thing — as a client retrying on a
// timeout, or two operators, would. None may be answered with a 5xx, the
// answers must be the ones the route gives one at a time (a create's 201
// and then 200, or 409 where the route refuses a duplicate; one delete's
// 200 and 404 for the rest), and what is stored afterwards must be
// consistent: one resource, as many secret versions and passwords as
// successful writes, the key one of the answers gave.
func testConcurrentWrites(t *testing.T, e *env) {
	const n = 8
	clients := e.protocolClients(t)
	type answer struct {
		status int
		body   []byte
	}
	// burst sends the request n times at once, alternating protocols.
	burst := func(t *testing.T, method, url, auth, body string) []answer {
		t.Helper()
		out := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			c := clients["h2"]
			if i%2 == 1 {
				c = clients["h1"]
			}
			wg.Go(func() {
				req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				k, v, _ := strings.Cut(auth, ": ")
				req.Header.Set(k, v)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out[i] = answer{resp.StatusCode, data}
			})
		}
		wg.Wait()
		return out
	}
	// expect checks every answer is one of want, and returns the count of
	// each.
	expect := func(t *testing.T, what string, answers []answer, want ...int) map[int]int {
		t.Helper()
		got := map[int]int{}
		for _, a := range answers {
			got[a.status]++
			if !slices.Contains(want, a.status) {
				t.Errorf("%s: %d %.300s (want one of %v)", what, a.status, a.body, want)
			}
		}
		t.Logf("%s: %v", what, got)
		return got
	}

	mgmt := "Authorization: Bearer " + e.mgmtToken
	rg := e.URL + e.groupPath(e.group)
	arm := "?api-version=" + armAPI

	t.Run("create-account", func(t *testing.T) {
		url := rg + "/providers/Microsoft.CognitiveServices/accounts/race-acct" + arm
		got := expect(t, "PUT account", burst(t, "PUT", url, mgmt, `{"kind":"OpenAI","location":"westus","sku":{"name":"S0"}}`), 200, 201, 409)
		if got[201] != 1 {
			t.Errorf("PUT account ×%d: %v, want exactly one 201", n, got)
		}
		if r := e.arm(t, "GET", e.groupPath(e.group)+"/providers/Microsoft.CognitiveServices/accounts/race-acct", nil, ""); r.status != 200 {
			t.Fatalf("GET after: %d", r.status)
		}
	})
	t.Run("regenerate-key", func(t *testing.T) {
		path := e.groupPath(e.group) + "/providers/Microsoft.CognitiveServices/accounts/race-acct"
		answers := burst(t, "POST", e.URL+path+"/regenerateKey"+arm, mgmt, `{"keyName":"Key1"}`)
		expect(t, "regenerateKey", answers, 200)
		var seen []string
		for _, a := range answers {
			var k struct{ Key1 string }
			json.Unmarshal(a.body, &k)
			seen = append(seen, k.Key1)
		}
		var now struct{ Key1 string }
		json.Unmarshal(e.arm(t, "POST", path+"/listKeys", nil, "").body, &now)
		if !slices.Contains(seen, now.Key1) {
			t.Error("the stored key1 is none of the keys the regenerations answered")
		}
		// The key in force works on the data plane at once.
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.URL+"/ai/race-acct/openai/v1/models", nil)
		req.Header.Set("api-key", now.Key1)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("the stored key1 on the data plane: %d", resp.StatusCode)
		}
	})
	t.Run("create-deployment", func(t *testing.T) {
		url := rg + "/providers/Microsoft.CognitiveServices/accounts/race-acct/deployments/d1" + arm
		got := expect(t, "PUT deployment", burst(t, "PUT", url, mgmt,
			`{"sku":{"name":"Standard","capacity":1},"properties":{"model":{"format":"OpenAI","name":"gpt-4o"},"upstream":{"endpoint":"http://127.0.0.1:9"}}}`), 200, 201, 409)
		if got[201] != 1 {
			t.Errorf("PUT deployment ×%d: %v, want exactly one 201", n, got)
		}
	})
	t.Run("create-vault-and-secret", func(t *testing.T) {
		url := rg + "/providers/Microsoft.KeyVault/vaults/racekv?api-version=" + vaultAPI
		got := expect(t, "PUT vault", burst(t, "PUT", url, mgmt, `{"location":"westus","properties":{"tenantId":"`+e.Directory.DefaultTenant()+
			`","sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true}}`), 200, 201, 409)
		if got[201] != 1 {
			t.Errorf("PUT vault ×%d: %v, want exactly one 201", n, got)
		}
		e.assign(t, e.vaultPath("racekv"), authz.RoleKeyVaultSecretsOfficer, e.oid, "ServicePrincipal")
		kv := "Authorization: Bearer " + e.Token(t, e.Credential(t), "https://vault."+e.Host+"/.default")
		var answers []answer
		for i := range 2 {
			answers = append(answers, burst(t, "PUT", e.vaultURL("racekv")+"secrets/s?api-version=7.4", kv, fmt.Sprintf(`{"value":"v%d"}`, i))...)
		}
		expect(t, "PUT secret", answers, 200)
		r := e.do(t, "GET", e.vaultURL("racekv")+"secrets/s/versions?api-version=7.4&maxresults=25", nil, strings.TrimPrefix(kv, "Authorization: Bearer "))
		var versions struct{ Value []any }
		json.Unmarshal(r.body, &versions)
		if len(versions.Value) != 2*n {
			t.Errorf("%d versions after %d concurrent sets, want %d", len(versions.Value), 2*n, 2*n)
		}
		got = expect(t, "DELETE secret", burst(t, "DELETE", e.vaultURL("racekv")+"secrets/s?api-version=7.4", kv, ""), 200, 404, 409)
		if got[200] != 1 {
			t.Errorf("DELETE secret ×%d: %v, want exactly one 200", n, got)
		}
		got = expect(t, "recover secret", burst(t, "POST", e.vaultURL("racekv")+"deletedsecrets/s/recover?api-version=7.4", kv, ""), 200, 404, 409)
		if got[200] != 1 {
			t.Errorf("recover secret ×%d: %v, want exactly one 200", n, got)
		}
	})
	t.Run("role-assignment", func(t *testing.T) {
		scope := e.groupPath(e.group) + "/providers/Microsoft.CognitiveServices/accounts/race-acct"
		url := e.URL + scope + "/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID() + "?api-version=2022-04-01"
		body := `{"properties":{"roleDefinitionId":"/subscriptions/` + e.sub + `/providers/Microsoft.Authorization/roleDefinitions/` +
			authz.RoleCognitiveServicesUser + `","principalId":"` + e.oid + `","principalType":"ServicePrincipal"}}`
		got := expect(t, "PUT role assignment", burst(t, "PUT", url, mgmt, body), 200, 201, 409)
		if got[201] != 1 {
			t.Errorf("PUT role assignment ×%d: %v, want exactly one 201", n, got)
		}
		// Other names for the same (scope, role, principal): one assignment.
		var answers []answer
		for range 2 {
			other := e.URL + scope + "/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID() + "?api-version=2022-04-01"
			answers = append(answers, burst(t, "PUT", other, mgmt, body)...)
		}
		expect(t, "PUT same assignment, other names", answers, 409)
		got = expect(t, "DELETE role assignment", burst(t, "DELETE", url, mgmt, ""), 200, 204)
		if got[200] != 1 {
			t.Errorf("DELETE role assignment ×%d: %v, want exactly one 200", n, got)
		}
	})
	t.Run("application-passwords", func(t *testing.T) {
		graphToken := e.Token(t, e.Credential(t), "https://graph.microsoft.com/.default")
		graph := "Authorization: Bearer " + graphToken
		r := e.do(t, "POST", e.URL+"/v1.0/applications", map[string]any{"displayName": "race-app"}, graphToken)
		if r.status != 201 {
			t.Fatalf("application: %d %s", r.status, r.body)
		}
		id, _ := r.json(t)["id"].(string)
		expect(t, "addPassword", burst(t, "POST", e.URL+"/v1.0/applications/"+id+"/addPassword", graph, `{"passwordCredential":{"displayName":"p"}}`), 200)
		var app struct{ PasswordCredentials []any }
		json.Unmarshal(e.do(t, "GET", e.URL+"/v1.0/applications/"+id, nil, graphToken).body, &app)
		if len(app.PasswordCredentials) != n {
			t.Errorf("%d passwords after %d concurrent adds", len(app.PasswordCredentials), n)
		}
		got := expect(t, "POST user", burst(t, "POST", e.URL+"/v1.0/users", graph,
			`{"userPrincipalName":"race@x.test","displayName":"r","accountEnabled":true,"passwordProfile":{"password":"race user password"}}`), 201, 400, 409)
		if got[201] != 1 {
			t.Errorf("POST the same user ×%d: %v, want exactly one 201", n, got)
		}
		got = expect(t, "DELETE application", burst(t, "DELETE", e.URL+"/v1.0/applications/"+id, graph, ""), 204, 404)
		if got[204] != 1 {
			t.Errorf("DELETE application ×%d: %v, want exactly one 204", n, got)
		}
	})
	t.Run("delete-account", func(t *testing.T) {
		url := rg + "/providers/Microsoft.CognitiveServices/accounts/race-acct" + arm
		got := expect(t, "DELETE account", burst(t, "DELETE", url, mgmt, ""), 200, 202, 204)
		if got[200]+got[202] != 1 {
			t.Errorf("DELETE account ×%d: %v, want exactly one 200/202 and 204 for the rest", n, got)
		}
	})
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, `"status":50`) && strings.Contains(line, "race") {
			t.Errorf("the node logged: %.400s", line)
		}
	}
	e.AssertNotLogged(t, "race user password")
}
