package armtest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/authz"
)

// testLocks: management locks — CanNotDelete on a group keeps its account
// from being deleted (armcognitiveservices sees ARM's 409 ScopeLocked),
// ReadOnly on the account also refuses updates and key listing; locks are
// listed at, above and below a scope; only Owner-like roles manage them;
// bad input is refused.
func testLocks(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "locked")
	createAccount(t, e, group, "locked-acct", "OpenAI")
	accts, _, _, _ := e.clients(t, e.cred)
	groupScope := "/subscriptions/" + e.sub + "/resourceGroups/" + group
	acctScope := e.accountPath(group, "locked-acct")
	lockPath := func(scope, name string) string {
		return scope + "/providers/Microsoft.Authorization/locks/" + url.PathEscape(name) + "?api-version=2016-09-01"
	}
	put := func(scope, name, level string, token string) *response {
		return e.do(t, request{method: "PUT", path: lockPath(scope, name), token: token,
			body: map[string]any{"properties": map[string]any{"level": level, "notes": "keep " + name}}})
	}

	// A Contributor may change the account but not lock it.
	oid, cred := e.principal(t, "lock-contributor")
	assign(t, e, groupScope, authz.RoleContributor, oid)
	if r := put(groupScope, "keep", "CanNotDelete", e.Token(t, cred, mgmtScope)); r.status != http.StatusForbidden || r.code() != "AuthorizationFailed" {
		t.Fatalf("a Contributor's lock: %d %s", r.status, r.body)
	}
	if r := put(groupScope, "keep", "CanNotDelete", ""); r.status != http.StatusCreated {
		t.Fatalf("lock the group: %d %s", r.status, r.body)
	}
	var got struct {
		ID         string
		Name       string
		Properties struct{ Level, Notes string }
	}
	r := e.do(t, request{method: "GET", path: lockPath(groupScope, "KEEP")})
	r.json(t, &got)
	if r.status != 200 || got.Properties.Level != "CanNotDelete" || got.Properties.Notes != "keep keep" || !strings.EqualFold(got.ID, groupScope+"/providers/Microsoft.Authorization/locks/keep") {
		t.Fatalf("get lock: %d %s", r.status, r.body)
	}
	// The scope escaped whole, as the Python SDK's management_locks
	// *_by_scope send it: the same lock, and the same list.
	encoded := "/" + url.PathEscape(groupScope)
	if r := e.do(t, request{method: "GET", path: lockPath(encoded, "keep")}); r.status != 200 || !strings.Contains(string(r.body), `"notes":"keep keep"`) {
		t.Fatalf("get lock by escaped scope %s: %d %s", encoded, r.status, r.body)
	}
	if r := e.do(t, request{method: "GET", path: encoded + "/providers/Microsoft.Authorization/locks?api-version=2016-09-01"}); r.status != 200 || !strings.Contains(string(r.body), `"name":"keep"`) {
		t.Fatalf("list locks by escaped scope: %d %s", r.status, r.body)
	}
	// Go's armlocks escapes a scope written without its leading slash, as
	// its examples write it: "/subscriptions%2F…".
	bare := "/" + url.PathEscape(strings.TrimPrefix(groupScope, "/"))
	if r := e.do(t, request{method: "GET", path: lockPath(bare, "keep")}); r.status != 200 || !strings.Contains(string(r.body), `"notes":"keep keep"`) {
		t.Fatalf("get lock by a scope escaped without its leading slash %s: %d %s", bare, r.status, r.body)
	}
	// Elsewhere an escaped slash is not a separator.
	if r := e.do(t, request{method: "GET", path: groupScope + "/providers/Microsoft.Authorization/locks/a%2Fb?api-version=2016-09-01"}); r.status < 400 || r.status >= 500 {
		t.Fatalf("escaped slash in a lock name: %d %s", r.status, r.body)
	}

	// CanNotDelete: no delete, other changes go through.
	if _, err := accts.BeginDelete(ctx, group, "locked-acct", nil); !isCode(err, 409, "ScopeLocked") {
		t.Fatalf("delete under CanNotDelete: %v", err)
	}
	if _, err := accts.ListKeys(ctx, group, "locked-acct", nil); err != nil {
		t.Fatalf("list keys under CanNotDelete: %v", err)
	}
	if _, err := accts.BeginUpdate(ctx, group, "locked-acct", armcognitiveservices.Account{Tags: map[string]*string{"env": ptr("prod")}}, nil); err != nil {
		t.Fatalf("update under CanNotDelete: %v", err)
	}
	if r := e.do(t, request{method: "DELETE", path: groupScope + "?api-version=2021-04-01"}); r.status != http.StatusConflict || r.code() != "ScopeLocked" {
		t.Fatalf("delete the locked group: %d %s", r.status, r.body)
	}

	// ReadOnly on the account: no update, no key listing or regeneration; reads go on.
	if r := put(acctScope, "frozen", "readonly", ""); r.status != http.StatusCreated {
		t.Fatalf("lock the account: %d %s", r.status, r.body)
	}
	if _, err := accts.ListKeys(ctx, group, "locked-acct", nil); !isCode(err, 409, "ScopeLocked") {
		t.Fatalf("list keys under ReadOnly: %v", err)
	}
	if _, err := accts.RegenerateKey(ctx, group, "locked-acct", armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil); !isCode(err, 409, "ScopeLocked") {
		t.Fatalf("regenerate under ReadOnly: %v", err)
	}
	if _, err := accts.Get(ctx, group, "locked-acct", nil); err != nil {
		t.Fatalf("get under ReadOnly: %v", err)
	}
	// A group tag is not the account's: the group's CanNotDelete allows it.
	if r := e.do(t, request{method: "PATCH", path: groupScope + "?api-version=2021-04-01", body: map[string]any{"tags": map[string]string{"a": "b"}}}); r.status != 200 {
		t.Fatalf("tag the group: %d %s", r.status, r.body)
	}

	names := func(scope, filter string) []string {
		t.Helper()
		path := scope + "/providers/Microsoft.Authorization/locks?api-version=2020-05-01"
		if filter != "" {
			path += "&$filter=" + url.QueryEscape(filter)
		}
		var l struct{ Value []struct{ Name string } }
		r := e.do(t, request{method: "GET", path: path})
		r.json(t, &l)
		if r.status != 200 {
			t.Fatalf("list locks at %s: %d %s", scope, r.status, r.body)
		}
		var out []string
		for _, v := range l.Value {
			out = append(out, v.Name)
		}
		slices.Sort(out)
		return out
	}
	for scope, want := range map[string][]string{groupScope: {"frozen", "keep"}, acctScope: {"frozen", "keep"}} {
		if got := names(scope, ""); !slices.Equal(got, want) {
			t.Errorf("locks at %s: %v, want %v", scope, got, want)
		}
	}
	// The subscription's list holds other scenarios' locks too (they run in parallel).
	if got := names("/subscriptions/"+e.sub, ""); !slices.Contains(got, "frozen") || !slices.Contains(got, "keep") {
		t.Errorf("locks at the subscription: %v", got)
	}
	if got := names(groupScope, "atScope()"); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("locks atScope() of the group: %v", got)
	}

	// Bad input.
	for name, rq := range map[string]struct {
		rq     request
		status int
		code   string
	}{
		"bad level":       {request{method: "PUT", path: lockPath(groupScope, "x"), body: map[string]any{"properties": map[string]any{"level": "Maybe"}}}, 400, "InvalidLockLevel"},
		"no properties":   {request{method: "PUT", path: lockPath(groupScope, "x"), body: map[string]any{}}, 400, "InvalidRequestContent"},
		"bad name":        {request{method: "PUT", path: lockPath(groupScope, "a<b"), body: map[string]any{"properties": map[string]any{"level": "ReadOnly"}}}, 400, "InvalidLockName"},
		"long notes":      {request{method: "PUT", path: lockPath(groupScope, "x"), body: map[string]any{"properties": map[string]any{"level": "ReadOnly", "notes": strings.Repeat("n", 513)}}}, 400, "InvalidLockNotes"},
		"bad owner":       {request{method: "PUT", path: lockPath(groupScope, "x"), body: map[string]any{"properties": map[string]any{"level": "ReadOnly", "owners": []any{map[string]any{"applicationId": "x"}}}}}, 400, "InvalidLockOwners"},
		"tenant root":     {request{method: "PUT", path: "/providers/Microsoft.Authorization/locks/x?api-version=2016-09-01", body: map[string]any{"properties": map[string]any{"level": "ReadOnly"}}}, 400, "InvalidLockScope"},
		"no such account": {request{method: "PUT", path: lockPath(e.accountPath(group, "nope"), "x"), body: map[string]any{"properties": map[string]any{"level": "ReadOnly"}}}, 404, "ResourceNotFound"},
		"bad filter":      {request{method: "GET", path: groupScope + "/providers/Microsoft.Authorization/locks?api-version=2016-09-01&$filter=level%20eq%20'x'"}, 400, "InvalidFilter"},
		"no such lock":    {request{method: "GET", path: lockPath(groupScope, "nope")}, 404, "LockNotFound"},
		"old api-version": {request{method: "GET", path: groupScope + "/providers/Microsoft.Authorization/locks?api-version=2014-01-01"}, 400, "InvalidApiVersionParameter"},
	} {
		if r := e.do(t, rq.rq); r.status != rq.status || r.code() != rq.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, rq.status, rq.code)
		}
	}

	// Unlocked, the account goes.
	for _, l := range []struct{ scope, name string }{{acctScope, "frozen"}, {groupScope, "keep"}} {
		if r := e.do(t, request{method: "DELETE", path: lockPath(l.scope, l.name)}); r.status != 200 {
			t.Fatalf("delete lock %s: %d %s", l.name, r.status, r.body)
		}
	}
	if r := e.do(t, request{method: "DELETE", path: lockPath(groupScope, "keep")}); r.status != http.StatusNoContent {
		t.Fatalf("delete a deleted lock: %d %s", r.status, r.body)
	}
	poller, err := accts.BeginDelete(ctx, group, "locked-acct", nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, nil)
	}
	if err != nil {
		t.Fatalf("delete after unlocking: %v", err)
	}
}
