package crosstest

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/storage"
)

// stored returns the records of kind in the node's store whose key starts
// with prefix (lower-cased), read directly, not through a service.
func (e *env) stored(t *testing.T, kind, prefix string) []*storage.Object {
	t.Helper()
	var out []*storage.Object
	opts := storage.ListOptions{Kind: kind, Prefix: strings.ToLower(prefix), Limit: storage.MaxPageSize}
	for {
		page, err := e.Store.List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Objects...)
		if page.Next == "" {
			return out
		}
		opts.After = page.Next
	}
}

// useKey makes one gateway request with a's key (a deployment that has
// no reachable upstream still counts as a use) and flushes usage.
func (e *env) useKey(t *testing.T, a *account) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", strings.TrimSuffix(a.endpoint, "/")+"/sts/v1.0/issueToken", nil)
	req.Header.Set("Ocp-Apim-Subscription-Key", a.key1)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("STS with key1: %d", resp.StatusCode)
	}
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// purge purges the soft-deleted account group/name (westus, as
// createAccount makes them).
func (e *env) purge(t *testing.T, group, name string) {
	t.Helper()
	p := "/subscriptions/" + e.sub + "/providers/Microsoft.CognitiveServices/locations/westus/resourceGroups/" + group +
		"/deletedAccounts/" + name + "?api-version=2025-06-01"
	if r := e.arm(t, "DELETE", p, nil, ""); r.status != http.StatusOK {
		t.Fatalf("purge %s: %d %s", name, r.status, r.body)
	}
}

// testDeleteAccountCascades: deleting an account (armcognitiveservices)
// soft-deletes it — its deployments, sealed upstream keys and usage
// evidence are kept for a recover — and purging it deletes them.
func testDeleteAccountCascades(t *testing.T, e *env) {
	a := e.createAccount(t, e.group, "cascade-acct", "OpenAI", false)
	for _, name := range []string{"one", "two"} {
		if r := e.deploy(t, a, name, map[string]any{"endpoint": "http://127.0.0.1:9", "key": "sk-sealed-" + name}); r.status != http.StatusCreated {
			t.Fatalf("deploy %s: %d %s", name, r.status, r.body)
		}
	}
	e.useKey(t, a)
	if n := len(e.stored(t, accounts.KindDeployment, a.internalID+"/")); n != 2 {
		t.Fatalf("%d deployments stored before the delete", n)
	}
	if n := len(e.stored(t, accounts.KindUsage, a.id)); n != 1 {
		t.Fatalf("%d usage records before the delete", n)
	}
	poller, err := e.accounts.BeginDelete(t.Context(), e.group, a.name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(e.stored(t, accounts.KindDeployment, a.internalID+"/")); n != 2 {
		t.Errorf("%d deployments kept for the deleted account, want 2", n)
	}
	e.purge(t, e.group, a.name)
	if n := len(e.stored(t, accounts.KindDeployment, a.internalID+"/")); n != 0 {
		t.Errorf("%d deployments (with sealed keys) survive their account", n)
	}
	if n := len(e.stored(t, accounts.KindUsage, a.id)); n != 0 {
		t.Errorf("%d usage records survive their account", n)
	}
	// Created again under the same name: a new instance, nothing old.
	again := e.createAccount(t, e.group, "cascade-acct", "OpenAI", false)
	if r := e.arm(t, "GET", again.id+"/deployments", nil, ""); r.status != 200 || len(r.json(t)["value"].([]any)) != 0 {
		t.Errorf("deployments of the new account: %d %s", r.status, r.body)
	}
	e.AssertNotLogged(t, "sk-sealed-one", "sk-sealed-two")
}

// testDeleteGroupCascades: deleting a resource group soft-deletes its
// accounts; purged, they go with their deployments and usage evidence.
func testDeleteGroupCascades(t *testing.T, e *env) {
	const group = "cascade-group"
	if r := e.arm(t, "PUT", e.groupPath(group)+"?api-version=2021-04-01", map[string]any{"location": "westus"}, ""); r.status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	var accts []*account
	for _, name := range []string{"cascade-g1", "cascade-g2"} {
		a := e.createAccount(t, group, name, "OpenAI", false)
		if r := e.deploy(t, a, "chat", map[string]any{"endpoint": "http://127.0.0.1:9", "key": "sk-group-sealed"}); r.status != http.StatusCreated {
			t.Fatalf("deploy: %d %s", r.status, r.body)
		}
		e.useKey(t, a)
		accts = append(accts, a)
	}
	if r := e.arm(t, "DELETE", e.groupPath(group)+"?api-version=2021-04-01", nil, ""); r.status != http.StatusOK {
		t.Fatalf("delete group: %d %s", r.status, r.body)
	}
	for _, a := range accts {
		if n := len(e.stored(t, accounts.KindAccount, a.id)); n != 1 {
			t.Errorf("%s: the deleted account is not kept for a recover", a.name)
		}
		e.purge(t, group, a.name)
		if n := len(e.stored(t, accounts.KindDeployment, a.internalID+"/")); n != 0 {
			t.Errorf("%s: %d deployments survive the group", a.name, n)
		}
		if n := len(e.stored(t, accounts.KindUsage, a.id)); n != 0 {
			t.Errorf("%s: %d usage records survive the group", a.name, n)
		}
		if n := len(e.stored(t, accounts.KindAccount, a.id)); n != 0 {
			t.Errorf("%s: the account survives the group", a.name)
		}
	}
}

// testSoftDeleteDataPlane: a deleted account's key and an STS token minted
// from it are refused at once on the data plane (the account's name is
// unknown there); recovered, both work again — the same key, the same slot
// generation — and a system-assigned identity is a new principal.
func testSoftDeleteDataPlane(t *testing.T, e *env) {
	a := e.createAccount(t, e.group, "soft-dp", "TextAnalytics", true)
	sts := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", strings.TrimSuffix(a.endpoint, "/")+"/sts/v1.0/issueToken", nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", key)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	language := func(auth, value string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", a.endpoint+"language/:analyze-text?api-version=2023-04-01",
			strings.NewReader(`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello world"}]}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(auth, value)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code, token := sts(a.key1)
	if code != http.StatusOK {
		t.Fatalf("STS: %d", code)
	}
	if language("Ocp-Apim-Subscription-Key", a.key1) != 200 || language("Authorization", "Bearer "+token) != 200 {
		t.Fatal("the account does not serve before the delete")
	}
	poller, err := e.accounts.BeginDelete(t.Context(), e.group, a.name, nil)
	if err == nil {
		_, err = poller.PollUntilDone(t.Context(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c := language("Ocp-Apim-Subscription-Key", a.key1); c != http.StatusUnauthorized {
		t.Errorf("key of a deleted account: %d", c)
	}
	if c := language("Authorization", "Bearer "+token); c != http.StatusUnauthorized {
		t.Errorf("STS token of a deleted account: %d", c)
	}
	if c, _ := sts(a.key1); c != http.StatusUnauthorized {
		t.Errorf("STS for a deleted account's key: %d", c)
	}
	resp, err := e.accounts.BeginCreate(t.Context(), e.group, a.name, armcognitiveservices.Account{Location: ptr("westus"),
		Properties: &armcognitiveservices.AccountProperties{Restore: ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := resp.PollUntilDone(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if language("Ocp-Apim-Subscription-Key", a.key1) != 200 || language("Authorization", "Bearer "+token) != 200 {
		t.Error("the recovered account does not take its key or the token minted before the delete")
	}
	if back.Identity == nil || back.Identity.PrincipalID == nil || *back.Identity.PrincipalID == a.identity {
		t.Errorf("recovered identity: %+v, want a new principal (was %s)", back.Identity, a.identity)
	}
	e.AssertNotLogged(t, a.key1, token)
}
