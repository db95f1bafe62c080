package armtest

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
)

// testTagsResource: {scope}/providers/Microsoft.Resources/tags/default on
// an account, a group and an identity — PUT replaces, PATCH merges,
// replaces or deletes, DELETE clears, and the resource's own GET shows
// the result; Tag Contributor tags an account it may not change, a Reader
// reads but does not write, a ReadOnly lock refuses, bad input is 400 and
// concurrent merges all land.
func testTagsResource(t *testing.T, e *env) {
	group := e.createGroup(t, "tags-res")
	createAccount(t, e, group, "tags-acct", "TextAnalytics")
	groupScope := "/subscriptions/" + e.sub + "/resourceGroups/" + group
	acct := e.accountPath(group, "tags-acct")
	tagsPath := func(scope string) string {
		return scope + "/providers/Microsoft.Resources/tags/default?api-version=2021-04-01"
	}
	type tagsJSON struct {
		ID, Name, Type string
		Properties     struct{ Tags map[string]string }
	}
	call := func(method, scope string, body any, token string, want int) map[string]string {
		t.Helper()
		r := e.do(t, request{method: method, path: tagsPath(scope), body: body, token: token})
		if r.status != want {
			t.Fatalf("%s tags of %s: %d %s, want %d", method, scope, r.status, r.body, want)
		}
		if method == "DELETE" || want != http.StatusOK {
			return nil
		}
		var v tagsJSON
		r.json(t, &v)
		if !strings.EqualFold(v.ID, scope+"/providers/Microsoft.Resources/tags/default") || v.Name != "default" || v.Type != "Microsoft.Resources/tags" || v.Properties.Tags == nil {
			t.Fatalf("%s tags of %s: %s", method, scope, r.body)
		}
		return v.Properties.Tags
	}
	props := func(tags map[string]string) map[string]any {
		return map[string]any{"properties": map[string]any{"tags": tags}}
	}
	patch := func(op string, tags map[string]string) map[string]any {
		return map[string]any{"operation": op, "properties": map[string]any{"tags": tags}}
	}
	accountTags := func() map[string]string {
		t.Helper()
		var a struct{ Tags map[string]string }
		e.do(t, request{method: "GET", path: acct + "?api-version=2024-10-01"}).json(t, &a)
		return a.Tags
	}
	expect := func(what string, got, want map[string]string) {
		t.Helper()
		if !maps.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}

	expect("the tags it was created with", call("GET", acct, nil, "", 200), map[string]string{"team": "a"})
	expect("PUT", call("PUT", acct, props(map[string]string{"env": "prod", "team": "a"}), "", 200), map[string]string{"env": "prod", "team": "a"})
	expect("the account's own GET", accountTags(), map[string]string{"env": "prod", "team": "a"})
	expect("Merge", call("PATCH", acct, patch("Merge", map[string]string{"Env": "test", "owner": "x"}), "", 200),
		map[string]string{"Env": "test", "team": "a", "owner": "x"})
	expect("Delete with another value", call("PATCH", acct, patch("Delete", map[string]string{"team": "b"}), "", 200),
		map[string]string{"Env": "test", "team": "a", "owner": "x"})
	expect("Delete", call("PATCH", acct, patch("delete", map[string]string{"TEAM": "a", "owner": ""}), "", 200),
		map[string]string{"Env": "test"})
	expect("Replace", call("PATCH", acct, patch("Replace", map[string]string{"only": "1"}), "", 200), map[string]string{"only": "1"})
	call("DELETE", acct, nil, "", 200)
	expect("after DELETE", call("GET", acct, nil, "", 200), map[string]string{})
	expect("the account after DELETE", accountTags(), map[string]string{})

	// A group and an identity keep their tags the same way.
	expect("group PUT", call("PUT", groupScope, props(map[string]string{"cost": "42"}), "", 200), map[string]string{"cost": "42"})
	var g struct{ Tags map[string]string }
	e.do(t, request{method: "GET", path: groupScope + "?api-version=2021-04-01"}).json(t, &g)
	expect("the group's own GET", g.Tags, map[string]string{"cost": "42"})
	mi := groupScope + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/tags-mi"
	if r := e.do(t, request{method: "PUT", path: mi + "?api-version=2023-01-31", body: map[string]any{"location": "westus"}}); r.status != 201 {
		t.Fatalf("create identity: %d %s", r.status, r.body)
	}
	call("PATCH", mi, patch("Merge", map[string]string{"app": "web"}), "", 200)
	var m struct{ Tags map[string]string }
	e.do(t, request{method: "GET", path: mi + "?api-version=2023-01-31"}).json(t, &m)
	expect("the identity's own GET", m.Tags, map[string]string{"app": "web"})
	// A subscription keeps none.
	expect("subscription", call("GET", "/subscriptions/"+e.sub, nil, "", 200), map[string]string{})
	call("PUT", "/subscriptions/"+e.sub, props(map[string]string{"a": "b"}), "", 400)

	// Tag Contributor tags the account but cannot change it or read its keys;
	// a Reader reads the tags but cannot write them.
	tagger, taggerCred := e.principal(t, "tagger")
	assign(t, e, acct, authz.RoleTagContributor, tagger)
	tok := e.Token(t, taggerCred, mgmtScope)
	expect("Tag Contributor's PUT", call("PUT", acct, props(map[string]string{"by": "tagger"}), tok, 200), map[string]string{"by": "tagger"})
	if r := e.do(t, request{method: "PATCH", path: acct + "?api-version=2024-10-01", body: map[string]any{"tags": map[string]string{}}, token: tok}); r.status != 403 {
		t.Fatalf("Tag Contributor's PATCH of the account: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "POST", path: acct + "/listKeys?api-version=2024-10-01", token: tok}); r.status != 403 {
		t.Fatalf("Tag Contributor's listKeys: %d %s", r.status, r.body)
	}
	reader, readerCred := e.principal(t, "tag-reader2")
	assign(t, e, acct, authz.RoleReader, reader)
	rtok := e.Token(t, readerCred, mgmtScope)
	expect("Reader's GET", call("GET", acct, nil, rtok, 200), map[string]string{"by": "tagger"})
	call("PATCH", acct, patch("Merge", map[string]string{"x": "y"}), rtok, 403)

	// A ReadOnly lock refuses tag changes.
	lock := acct + "/providers/Microsoft.Authorization/locks/ro?api-version=2016-09-01"
	if r := e.do(t, request{method: "PUT", path: lock, body: map[string]any{"properties": map[string]any{"level": "ReadOnly"}}}); r.status != 201 {
		t.Fatalf("lock: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "PUT", path: tagsPath(acct), body: props(map[string]string{"a": "b"})}); r.status != 409 || r.code() != "ScopeLocked" {
		t.Fatalf("tags under ReadOnly: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "DELETE", path: lock}); r.status != 200 {
		t.Fatalf("unlock: %d %s", r.status, r.body)
	}

	// Bad input.
	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprint("t", i)] = "v"
	}
	for name, c := range map[string]struct {
		method, scope string
		body          any
		status        int
		code          string
	}{
		"no-properties":   {"PUT", acct, map[string]any{}, 400, "InvalidRequestContent"},
		"no-tags":         {"PATCH", acct, map[string]any{"operation": "Merge", "properties": map[string]any{}}, 400, "InvalidRequestContent"},
		"bad-operation":   {"PATCH", acct, patch("Append", map[string]string{"a": "b"}), 400, "InvalidRequestContent"},
		"no-operation":    {"PATCH", acct, props(map[string]string{"a": "b"}), 400, "InvalidRequestContent"},
		"too-many":        {"PUT", acct, props(many), 400, "InvalidTag"},
		"bad-name":        {"PUT", acct, props(map[string]string{"a<b": "c"}), 400, "InvalidTag"},
		"long-value":      {"PUT", acct, props(map[string]string{"a": strings.Repeat("v", 257)}), 400, "InvalidTag"},
		"not-json":        {"PUT", acct, "{", 400, "InvalidRequestContent"},
		"tags-not-object": {"PUT", acct, map[string]any{"properties": map[string]any{"tags": []string{"a"}}}, 400, "InvalidRequestContent"},
		"no-account":      {"PUT", e.accountPath(group, "tags-none"), props(map[string]string{"a": "b"}), 404, "ResourceNotFound"},
		"no-group":        {"GET", "/subscriptions/" + e.sub + "/resourceGroups/tags-none", nil, 404, "ResourceGroupNotFound"},
		"child":           {"PUT", acct + "/deployments/d", props(map[string]string{"a": "b"}), 400, "InvalidResourceType"},
		"other-type":      {"PUT", groupScope + "/providers/Microsoft.Compute/virtualMachines/vm", props(map[string]string{"a": "b"}), 404, "ResourceNotFound"},
	} {
		r := e.do(t, request{method: c.method, path: tagsPath(c.scope), body: c.body})
		if r.status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, c.status, c.code)
		}
	}
	expect("after the bad input", accountTags(), map[string]string{"by": "tagger"})

	// Concurrent merges of different tags all land.
	var wg sync.WaitGroup
	want := map[string]string{"by": "tagger"}
	for i := range 8 {
		want[fmt.Sprint("c", i)] = fmt.Sprint(i)
		wg.Go(func() {
			r := e.do(t, request{method: "PATCH", path: tagsPath(acct), body: patch("Merge", map[string]string{fmt.Sprint("c", i): fmt.Sprint(i)})})
			if r.status != 200 {
				t.Errorf("concurrent merge %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	expect("after concurrent merges", accountTags(), want)

	// The changes are audited, a PATCH with its operation.
	merges, deletes := 0, 0
	e.Audit.Each(t.Context(), 0, func(r *audit.Record) error {
		if r.Entry.Action == "Microsoft.Resources/tags/write" && strings.EqualFold(r.Entry.Scope, acct) && r.Entry.Result == audit.Succeeded &&
			r.Entry.Details["operation"] == "merge" {
			merges++
		}
		if r.Entry.Action == "Microsoft.Resources/tags/delete" && strings.EqualFold(r.Entry.Scope, acct) && r.Entry.Result == audit.Succeeded {
			deletes++
		}
		return nil
	})
	if merges < 9 || deletes != 1 {
		t.Errorf("audited tag merges %d (want at least 9), deletes %d (want 1)", merges, deletes)
	}
}
