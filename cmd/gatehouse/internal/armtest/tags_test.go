package armtest

import (
	"net/http"
	"strings"
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

// testPredefinedTags: a subscription's predefined tag names and values
// (PUT/DELETE {sub}/tagNames/{name}[/tagValues/{value}]) — created once
// whatever the case, listed with a count of 0 until something carries
// them, not deletable while in use or while a name has values, refused
// with ARM's errors for bad names, and only for whoever may write them.
func testPredefinedTags(t *testing.T, e *env) {
	base := "/subscriptions/" + e.sub + "/tagNames/"
	const v = "?api-version=2021-04-01"
	type value struct {
		ID       string
		TagValue string
		Count    struct {
			Type  string
			Value int
		}
	}
	type name struct {
		ID      string
		TagName string
		Count   struct {
			Type  string
			Value int
		}
		Values []value
	}
	do := func(method, path string, token string, wantStatus int, wantCode string) *response {
		t.Helper()
		r := e.do(t, request{method: method, path: path + v, token: token})
		if r.status != wantStatus || wantCode != "" && !strings.Contains(string(r.body), `"code":"`+wantCode+`"`) {
			t.Fatalf("%s %s: %d %s, want %d %s", method, path, r.status, r.body, wantStatus, wantCode)
		}
		return r
	}
	var n name
	do("PUT", base+"PredefScenario", "", 201, "").json(t, &n)
	if n.TagName != "PredefScenario" || n.ID != base+"PredefScenario" || n.Count.Type != "Total" || n.Count.Value != 0 || n.Values == nil || len(n.Values) != 0 {
		t.Fatalf("created: %+v", n)
	}
	do("PUT", base+"predefscenario", "", 200, "").json(t, &n)
	if n.TagName != "PredefScenario" {
		t.Fatalf("created again in another case: %+v", n)
	}
	var val value
	do("PUT", base+"predefSCENARIO/tagValues/Blue%20Sky", "", 201, "").json(t, &val)
	if val.TagValue != "Blue Sky" || val.ID != base+"PredefScenario/tagValues/Blue%20Sky" || val.Count.Value != 0 {
		t.Fatalf("value: %+v", val)
	}
	do("PUT", base+"PredefScenario/tagValues/Blue%20Sky", "", 200, "")
	do("PUT", base+"PredefScenario/tagValues/green", "", 201, "")
	for _, c := range []struct{ path, code string }{
		{"azureThing", "InvalidTagName"}, {"Microsoft", "InvalidTagName"}, {"windowsUpdate", "InvalidTagName"},
		{"a%26b", "InvalidTagNameCharacters"}, {"a%3Cb", "InvalidTagNameCharacters"}, {"a%09b", "InvalidRequestUri"},
		{strings.Repeat("n", 513), "InvalidTagName"},
		{"PredefScenario/tagValues/" + strings.Repeat("v", 257), "InvalidTagValue"},
		{"PredefScenario/tagValues/a%00b", "InvalidRequestUri"},
	} {
		do("PUT", base+c.path, "", 400, c.code)
	}
	do("PUT", base+"NotPredefined/tagValues/x", "", 404, "TagNameNotFound")
	do("DELETE", base+"NotPredefined/tagValues/x", "", 404, "TagNameNotFound")
	do("PUT", "/subscriptions/00000000-0000-0000-0000-000000000000/tagNames/x", "", 404, "")

	list := func(token string) *name {
		t.Helper()
		var l struct{ Value []name }
		do("GET", base[:len(base)-1], token, 200, "").json(t, &l)
		for i := range l.Value {
			if strings.EqualFold(l.Value[i].TagName, "PredefScenario") {
				return &l.Value[i]
			}
		}
		return nil
	}
	got := list("")
	if got == nil || got.TagName != "PredefScenario" || got.Count.Value != 0 || len(got.Values) != 2 ||
		got.Values[0].TagValue != "Blue Sky" || got.Values[0].Count.Value != 0 || got.Values[1].TagValue != "green" {
		t.Fatalf("listed: %+v", got)
	}

	// Who may: a subscription Reader sees them and may not write them; a
	// Reader of one account alone sees none of them; Tag Contributor
	// (tags on resources) may not predefine them.
	readerOID, readerCred := e.principal(t, "predef-reader")
	assign(t, e, "/subscriptions/"+e.sub, authz.RoleReader, readerOID)
	readerTok := e.Token(t, readerCred, mgmtScope)
	if got := list(readerTok); got == nil || len(got.Values) != 2 {
		t.Fatalf("as the subscription's Reader: %+v", got)
	}
	do("PUT", base+"ReaderTag", readerTok, 403, "AuthorizationFailed")
	do("DELETE", base+"PredefScenario/tagValues/green", readerTok, 403, "AuthorizationFailed")
	group := e.createGroup(t, "predef")
	createAccount(t, e, group, "predef-acct", "TextAnalytics")
	narrowOID, narrowCred := e.principal(t, "predef-narrow")
	assign(t, e, e.accountPath(group, "predef-acct"), authz.RoleReader, narrowOID)
	if got := list(e.Token(t, narrowCred, mgmtScope)); got != nil {
		t.Fatalf("as one account's Reader: %+v", got)
	}
	taggerOID, taggerCred := e.principal(t, "predef-tagger")
	assign(t, e, "/subscriptions/"+e.sub, authz.RoleTagContributor, taggerOID)
	do("PUT", base+"TaggerTag", e.Token(t, taggerCred, mgmtScope), 403, "AuthorizationFailed")

	// In use: a resource carrying the tag (in another case) keeps its
	// value and name; the list counts it.
	acct := e.accountPath(group, "predef-acct") + "?api-version=2024-10-01"
	if r := e.do(t, request{method: "PATCH", path: acct, body: map[string]any{"tags": map[string]string{"PREDEFSCENARIO": "green"}}}); r.status != 200 && r.status != 202 {
		t.Fatalf("tag the account: %d %s", r.status, r.body)
	}
	if got := list(""); got == nil || got.TagName != "PredefScenario" || got.ID != base+"PredefScenario" || got.Count.Value != 1 ||
		got.Values[1].Count.Value != 1 || got.Values[1].ID != base+"PredefScenario/tagValues/green" {
		t.Fatalf("listed in use (in the predefined spelling, ids too): %+v", got)
	}
	do("DELETE", base+"PredefScenario/tagValues/green", "", 409, "TagValueInUse")
	do("DELETE", base+"PredefScenario", "", 409, "TagNameHasValues")
	do("DELETE", base+"PredefScenario/tagValues/Blue%20Sky", "", 200, "")
	do("DELETE", base+"PredefScenario/tagValues/Blue%20Sky", "", 204, "")
	if r := e.do(t, request{method: "PATCH", path: acct, body: map[string]any{"tags": map[string]string{}}}); r.status != 200 && r.status != 202 {
		t.Fatalf("untag the account: %d %s", r.status, r.body)
	}
	do("DELETE", base+"predefscenario/tagValues/green", "", 200, "")
	do("DELETE", base+"predefscenario", "", 200, "")
	do("DELETE", base+"PredefScenario", "", 204, "")
	if got := list(""); got != nil {
		t.Fatalf("listed after the delete: %+v", got)
	}
}
