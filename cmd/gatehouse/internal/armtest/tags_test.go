package armtest

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
)

// testTagNames: GET /subscriptions/{sub}/tagNames counts the tags of the
// groups and resources the caller may read — names case-insensitively,
// values exactly — and shows nothing the caller cannot read.
func testTagNames(t *testing.T, e *env) {
	group := e.createGroup(t, "tagged")
	if r := e.do(t, request{method: "PATCH", path: "/subscriptions/" + e.sub + "/resourceGroups/" + group + "?api-version=2021-04-01",
		body: map[string]any{"tags": map[string]string{"TagScenario": "blue"}}}); r.status != 200 {
		t.Fatalf("tag the group: %d %s", r.status, r.body)
	}
	createAccount(t, e, group, "tagged-acct", "TextAnalytics")
	if r := e.do(t, request{method: "PATCH", path: e.accountPath(group, "tagged-acct") + "?api-version=2024-10-01",
		body: map[string]any{"tags": map[string]string{"tagscenario": "green", "other": ""}}}); r.status != 200 && r.status != 202 {
		t.Fatalf("tag the account: %d %s", r.status, r.body)
	}
	type value struct {
		TagValue string
		Count    struct{ Value int }
	}
	type name struct {
		ID      string
		TagName string
		Count   struct{ Value int }
		Values  []value
	}
	find := func(token string) *name {
		t.Helper()
		var l struct{ Value []name }
		r := e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "/tagNames?api-version=2021-04-01", token: token})
		r.json(t, &l)
		if r.status != http.StatusOK {
			t.Fatalf("tagNames: %d %s", r.status, r.body)
		}
		for i := range l.Value {
			if l.Value[i].TagName == "TagScenario" || l.Value[i].TagName == "tagscenario" {
				return &l.Value[i]
			}
		}
		return nil
	}
	got := find("")
	if got == nil || got.Count.Value != 2 || len(got.Values) != 2 || got.Values[0].TagValue != "blue" || got.Values[1].Count.Value != 1 {
		t.Fatalf("the scenario's tag: %+v", got)
	}
	// A principal that may read only the account sees only its tag.
	oid, cred := e.principal(t, "tag-reader")
	assign(t, e, e.accountPath(group, "tagged-acct"), authz.RoleReader, oid)
	if got := find(e.Token(t, cred, mgmtScope)); got == nil || got.Count.Value != 1 || got.Values[0].TagValue != "green" {
		t.Fatalf("as the account's Reader: %+v", got)
	}
}
