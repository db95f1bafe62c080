package armtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
)

func createAccount(t testing.TB, e *env, group, name, kind string) *armcognitiveservices.Account {
	t.Helper()
	poller, err := e.accounts.BeginCreate(t.Context(), group, name, armcognitiveservices.Account{
		Kind: ptr(kind), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")},
		Tags: map[string]*string{"team": ptr("a")},
	}, nil)
	if err != nil {
		t.Fatalf("BeginCreate %s: %v", name, err)
	}
	resp, err := poller.PollUntilDone(t.Context(), nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return &resp.Account
}

func testSDKAccounts(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-accounts")
	acct := createAccount(t, e, group, "lang-sdk", "TextAnalytics")
	p := acct.Properties
	if *acct.ID != e.accountPath(group, "lang-sdk") || *acct.Name != "lang-sdk" || *acct.Kind != "TextAnalytics" ||
		*acct.Type != "Microsoft.CognitiveServices/accounts" || *acct.Location != "westus" || *acct.SKU.Name != "S0" ||
		*p.ProvisioningState != armcognitiveservices.ProvisioningStateSucceeded || *p.Endpoint != e.URL+"/ai/lang-sdk/" ||
		*acct.Tags["team"] != "a" || acct.SystemData == nil || acct.SystemData.CreatedAt == nil || p.DateCreated == nil {
		t.Fatalf("created account: %+v %+v", acct, p)
	}
	// The same name in another group collides on the data-plane name.
	other := e.createGroup(t, "sdk-accounts-2")
	poller, err := e.accounts.BeginCreate(ctx, other, "lang-sdk", armcognitiveservices.Account{Kind: ptr("TextAnalytics"), Location: ptr("westus"),
		SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}, nil)
	if respErr, ok := err.(*azcore.ResponseError); !ok || respErr.StatusCode != 409 || respErr.ErrorCode != "CustomDomainInUse" {
		t.Fatalf("second lang-sdk: %v %v", poller, err)
	}
	createAccount(t, e, other, "openai-sdk", "OpenAI")

	got, err := e.accounts.Get(ctx, group, "LANG-SDK", nil)
	if err != nil || *got.Name != "lang-sdk" || *got.Etag == "" {
		t.Fatalf("Get: %+v %v", got, err)
	}
	// The account's SKUs, usages and models (az list-skus -n, list-usage,
	// list-models), and the subscription's soft-deleted accounts (none).
	skus, err := e.accounts.ListSKUs(ctx, group, "lang-sdk", nil)
	if err != nil || len(skus.Value) != len(accounts.SKUs("TextAnalytics")) || *skus.Value[2].SKU.Name != "S0" ||
		*skus.Value[0].ResourceType != "Microsoft.CognitiveServices/accounts" {
		t.Fatalf("ListSKUs: %+v %v", skus, err)
	}
	if usages, err := e.accounts.ListUsages(ctx, group, "lang-sdk", nil); err != nil || len(usages.Value) != 0 {
		t.Fatalf("ListUsages: %+v %v", usages, err)
	}
	if page, err := e.accounts.NewListModelsPager(group, "lang-sdk", nil).NextPage(ctx); err != nil || len(page.Value) != 0 {
		t.Fatalf("ListModels: %+v %v", page, err)
	}
	if _, err := e.accounts.ListSKUs(ctx, group, "no-such-account", nil); !isStatus(err, 404) {
		t.Fatalf("ListSKUs of a missing account: %v", err)
	}
	testAccountFeatures(t, e, group, "lang-sdk")
	deleted, err := armcognitiveservices.NewDeletedAccountsClient(e.sub, e.cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	if page, err := deleted.NewListPager(nil).NextPage(ctx); err != nil || deletedIn(page.Value, group) != nil {
		t.Fatalf("deleted accounts: %+v %v", page, err)
	}
	names := func(pager interface {
		More() bool
	}, next func() ([]*armcognitiveservices.Account, error)) []string {
		var out []string
		for pager.More() {
			page, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				out = append(out, *a.Name)
			}
		}
		return out
	}
	subPager := e.accounts.NewListPager(nil)
	all := names(subPager, func() ([]*armcognitiveservices.Account, error) {
		p, err := subPager.NextPage(ctx)
		return p.Value, err
	})
	rgPager := e.accounts.NewListByResourceGroupPager(group, nil)
	inGroup := names(rgPager, func() ([]*armcognitiveservices.Account, error) {
		p, err := rgPager.NextPage(ctx)
		return p.Value, err
	})
	if !contains(all, "lang-sdk") || !contains(all, "openai-sdk") || len(inGroup) != 1 || inGroup[0] != "lang-sdk" {
		t.Fatalf("list: subscription %v, group %v", all, inGroup)
	}

	keys, err := e.accounts.ListKeys(ctx, group, "lang-sdk", nil)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := *keys.Key1, *keys.Key2
	if len(k1) != 64 || len(k2) != 64 || k1 == k2 {
		t.Fatal("ListKeys: not two distinct 256-bit keys")
	}

	setLocalAuth := func(disable bool, tags map[string]*string) armcognitiveservices.Account {
		t.Helper()
		up, err := e.accounts.BeginUpdate(ctx, group, "lang-sdk", armcognitiveservices.Account{
			Tags: tags, Properties: &armcognitiveservices.AccountProperties{DisableLocalAuth: ptr(disable)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		updated, err := up.PollUntilDone(ctx, nil)
		if err != nil || *updated.Properties.DisableLocalAuth != disable || *updated.Kind != "TextAnalytics" {
			t.Fatalf("update: %+v %v", updated, err)
		}
		return updated.Account
	}
	if updated := setLocalAuth(true, map[string]*string{"team": ptr("b")}); *updated.Tags["team"] != "b" {
		t.Fatalf("update: tags %v", updated.Tags)
	}
	// Without local auth there are no keys to list, in Azure's words
	// (Terraform's azurerm provider reads them only when local auth is on).
	if _, err := e.accounts.ListKeys(ctx, group, "lang-sdk", nil); !isCode(err, 400, "BadRequest") ||
		!strings.Contains(err.Error(), "Failed to list key. disableLocalAuth is set to be true") {
		t.Fatalf("ListKeys with disableLocalAuth: %v", err)
	}
	// Regenerating still works (rotating keys that may have leaked before
	// enabling local auth again).
	r1, err := e.accounts.RegenerateKey(ctx, group, "lang-sdk", armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *r1.Key1 == k1 || *r1.Key2 != k2 {
		t.Fatalf("RegenerateKey Key1: key1 changed=%v key2 kept=%v", *r1.Key1 != k1, *r1.Key2 == k2)
	}
	r2, err := e.accounts.RegenerateKey(ctx, group, "lang-sdk", armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey2)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *r2.Key1 != *r1.Key1 || *r2.Key2 == k2 {
		t.Fatalf("RegenerateKey Key2: key1 kept=%v key2 changed=%v", *r2.Key1 == *r1.Key1, *r2.Key2 != k2)
	}
	// This node's key index already follows: the old keys are refused.
	for _, old := range []string{k1, k2} {
		if _, ok := e.Accounts.LookupKey(old); ok {
			t.Fatal("a regenerated key is still accepted")
		}
	}
	if m, ok := e.Accounts.LookupKey(*r2.Key2); !ok || m.Slot != accounts.Key2 || m.Generation != 2 {
		t.Fatalf("new key2: %+v %v", m, ok)
	}
	setLocalAuth(false, nil)
	if got, err := e.accounts.ListKeys(ctx, group, "lang-sdk", nil); err != nil || keysOf(got.APIKeys) != keysOf(r2.APIKeys) {
		t.Fatalf("ListKeys with local auth back on: %v", err)
	}

	del, err := e.accounts.BeginDelete(ctx, group, "lang-sdk", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.accounts.Get(ctx, group, "lang-sdk", nil); !isCode(err, 404, "ResourceNotFound") {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, ok := e.Accounts.LookupKey(*r2.Key1); ok {
		t.Fatal("a deleted account's key is still accepted")
	}
	testSDKSoftDelete(t, e, deleted, group, keysOf(r2.APIKeys))
	e.AssertNotLogged(t, k1, k2, *r1.Key1, *r2.Key2)
	assertNotAudited(t, e, k1, k2, *r1.Key1, *r2.Key2)
}

func keysOf(k armcognitiveservices.APIKeys) [2]string { return [2]string{*k.Key1, *k.Key2} }

// deletedIn returns the names of the deleted accounts of group.
func deletedIn(list []*armcognitiveservices.Account, group string) []string {
	var out []string
	for _, a := range list {
		if strings.Contains(strings.ToLower(*a.ID), "/resourcegroups/"+strings.ToLower(group)+"/") {
			out = append(out, *a.Name)
		}
	}
	return out
}

// testSDKSoftDelete: the deleted account lang-sdk (keys) is listed and
// read through DeletedAccountsClient, holds its name, comes back by
// BeginCreate with properties.restore with the same keys and its role
// assignments, and is purged by BeginPurge, after which the name is free.
func testSDKSoftDelete(t *testing.T, e *env, deleted *armcognitiveservices.DeletedAccountsClient, group string, keys [2]string) {
	ctx := t.Context()
	page, err := deleted.NewListPager(nil).NextPage(ctx)
	if err != nil || !slices.Equal(deletedIn(page.Value, group), []string{"lang-sdk"}) {
		t.Fatalf("deleted accounts after delete: %+v %v", page, err)
	}
	d, err := deleted.Get(ctx, "westus", group, "lang-sdk", nil)
	wantID := "/subscriptions/" + e.sub + "/providers/Microsoft.CognitiveServices/locations/westus/resourceGroups/" + group + "/deletedAccounts/lang-sdk"
	if err != nil || *d.ID != wantID || *d.Kind != "TextAnalytics" || d.Properties.DeletionDate == nil || d.Properties.ScheduledPurgeDate == nil {
		t.Fatalf("deleted account: %+v %v", d, err)
	}
	del, _ := time.Parse(time.RFC3339, *d.Properties.DeletionDate)
	purge, _ := time.Parse(time.RFC3339, *d.Properties.ScheduledPurgeDate)
	if purge.Sub(del) != 48*time.Hour {
		t.Errorf("deleted %s, purge %s: want 48 hours apart", *d.Properties.DeletionDate, *d.Properties.ScheduledPurgeDate)
	}
	if _, err := deleted.Get(ctx, "eastus", group, "lang-sdk", nil); !isCode(err, 404, "ResourceNotFound") {
		t.Errorf("deleted account in another location: %v", err)
	}
	// The name is held: a plain create is refused, a restore brings it back.
	if _, err := e.accounts.BeginCreate(ctx, group, "lang-sdk", armcognitiveservices.Account{Kind: ptr("TextAnalytics"),
		Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}, nil); !isCode(err, 409, "FlagMustBeSetForRestore") {
		t.Fatalf("create over a deleted account: %v", err)
	}
	poller, err := e.accounts.BeginCreate(ctx, group, "lang-sdk", armcognitiveservices.Account{Location: ptr("westus"),
		Properties: &armcognitiveservices.AccountProperties{Restore: ptr(true)}}, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	back, err := poller.PollUntilDone(ctx, nil)
	if err != nil || *back.Name != "lang-sdk" || *back.Kind != "TextAnalytics" || back.Tags["team"] == nil || *back.Tags["team"] != "b" {
		t.Fatalf("restored: %+v %v", back, err)
	}
	got, err := e.accounts.ListKeys(ctx, group, "lang-sdk", nil)
	if err != nil || keysOf(got.APIKeys) != keys {
		t.Fatalf("keys after restore: %v", err)
	}
	if m, ok := e.Accounts.LookupKey(keys[1]); !ok || m.Slot != accounts.Key2 {
		t.Fatal("the restored account's key2 is refused")
	}
	if page, err := deleted.NewListPager(nil).NextPage(ctx); err != nil || deletedIn(page.Value, group) != nil {
		t.Fatalf("deleted accounts after restore: %+v %v", page, err)
	}

	// Role assignments at the account stay with a deleted account, for its
	// recover; the purge deletes them.
	acctScope := e.accountPath(group, "lang-sdk")
	oid, _ := e.principal(t, "soft-delete-assignee")
	assign(t, e, strings.TrimPrefix(acctScope, "/"), authz.RoleCognitiveServicesUser, oid)
	del2, err := e.accounts.BeginDelete(ctx, group, "lang-sdk", nil)
	if err == nil {
		_, err = del2.PollUntilDone(ctx, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := e.assignmentsWithin(t, acctScope); n != 1 {
		t.Errorf("%d role assignments at the deleted account, want 1", n)
	}
	// Whether the name is free, and why not.
	mgmt, err := armcognitiveservices.NewManagementClient(e.sub, e.cred, e.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	domain := func() armcognitiveservices.DomainAvailability {
		t.Helper()
		r, err := mgmt.CheckDomainAvailability(ctx, armcognitiveservices.CheckDomainAvailabilityParameter{
			SubdomainName: ptr("LANG-SDK"), Type: ptr("Microsoft.CognitiveServices/accounts")}, nil)
		if err != nil {
			t.Fatalf("CheckDomainAvailability: %v", err)
		}
		return r.DomainAvailability
	}
	if d := domain(); d.IsSubdomainAvailable == nil || *d.IsSubdomainAvailable || d.Reason == nil || !strings.Contains(*d.Reason, "deleted account") {
		t.Errorf("domain held by a deleted account: %+v", d)
	}
	if _, err := mgmt.CheckDomainAvailability(ctx, armcognitiveservices.CheckDomainAvailabilityParameter{
		SubdomainName: ptr("no_underscores"), Type: ptr("Microsoft.CognitiveServices/accounts")}, nil); !isCode(err, 400, "InvalidCustomSubDomainName") {
		t.Errorf("CheckDomainAvailability of an invalid name: %v", err)
	}
	skus, err := mgmt.CheckSKUAvailability(ctx, "westus", armcognitiveservices.CheckSKUAvailabilityParameter{
		Kind: ptr("TextAnalytics"), SKUs: []*string{ptr("S0"), ptr("P9")}, Type: ptr("Microsoft.CognitiveServices/accounts")}, nil)
	if err != nil || len(skus.Value) != 2 || !*skus.Value[0].SKUAvailable || *skus.Value[1].SKUAvailable || *skus.Value[1].Reason != "SkuNotAvailable" {
		t.Errorf("CheckSKUAvailability: %+v %v", skus, err)
	}

	pp, err := deleted.BeginPurge(ctx, "westus", group, "lang-sdk", nil)
	if err == nil {
		_, err = pp.PollUntilDone(ctx, nil)
	}
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := deleted.Get(ctx, "westus", group, "lang-sdk", nil); !isCode(err, 404, "ResourceNotFound") {
		t.Errorf("deleted account after purge: %v", err)
	}
	if n := e.assignmentsWithin(t, acctScope); n != 0 {
		t.Errorf("%d role assignments survive the purge", n)
	}
	if _, err := deleted.BeginPurge(ctx, "westus", group, "lang-sdk", nil); !isCode(err, 404, "ResourceNotFound") {
		t.Errorf("purge twice: %v", err)
	}
	if d := domain(); d.IsSubdomainAvailable == nil || !*d.IsSubdomainAvailable {
		t.Errorf("domain after the purge: %+v", d)
	}
	fresh := createAccount(t, e, group, "lang-sdk", "TextAnalytics")
	if d := domain(); *d.IsSubdomainAvailable || !strings.Contains(*d.Reason, "already used") {
		t.Errorf("domain of an account: %+v", d)
	}
	if enc := fresh.Properties.Encryption; enc == nil || enc.KeySource == nil || *enc.KeySource != armcognitiveservices.KeySourceMicrosoftCognitiveServices {
		t.Errorf("encryption %+v, want the service's own keys", enc)
	}
	if fresh.Properties.DisableLocalAuth != nil && *fresh.Properties.DisableLocalAuth {
		t.Error("the account created after the purge inherits the old one's settings")
	}
	if _, ok := e.Accounts.LookupKey(keys[0]); ok {
		t.Error("the purged account's key unlocks the new one")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isCode(err error, status int, code string) bool {
	re, ok := err.(*azcore.ResponseError)
	return ok && re.StatusCode == status && re.ErrorCode == code
}

// assertNotAudited checks that no secret reached the audit log and that
// the chain verifies.
func assertNotAudited(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	if _, err := e.Audit.Verify(t.Context()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	err := e.Audit.Each(t.Context(), 0, func(r *audit.Record) error {
		text := fmt.Sprintf("%+v", r.Entry)
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				return fmt.Errorf("a secret (%.4s…) appears in audit entry %d", s, r.Seq)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testConcurrentRegenerate: 50 concurrent regenerations leave both slots
// valid and distinct, and 50 audit entries.
func testConcurrentRegenerate(t *testing.T, e *env) {
	group := e.createGroup(t, "concurrent")
	createAccount(t, e, group, "busy-acct", "OpenAI")
	path := e.accountPath(group, "busy-acct")
	var wg sync.WaitGroup
	statuses := make([]int, 50)
	for i := range 50 {
		wg.Go(func() {
			r := e.do(t, request{method: "POST", path: path + "/regenerateKey?api-version=2025-06-01",
				body: map[string]string{"keyName": []string{"Key1", "Key2"}[i%2]}})
			statuses[i] = r.status
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("regeneration %d: status %d", i, s)
		}
	}
	keys, err := e.accounts.ListKeys(t.Context(), group, "busy-acct", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *keys.Key1 == *keys.Key2 {
		t.Fatal("both slots hold the same key")
	}
	for slot, k := range []string{*keys.Key1, *keys.Key2} {
		m, ok := e.Accounts.LookupKey(k)
		if !ok || m.Slot != slot || m.Generation != 26 {
			t.Fatalf("slot %d: %+v %v (want generation 26)", slot, m, ok)
		}
	}
	n := 0
	id := e.accountID(t, group, "busy-acct")
	e.Audit.Each(t.Context(), 0, func(r *audit.Record) error {
		if r.Entry.Action == "Microsoft.CognitiveServices/accounts/regenerateKey/action" &&
			strings.EqualFold(r.Entry.Scope, id.String()) && r.Entry.Result == audit.Succeeded {
			n++
		}
		return nil
	})
	if n != 50 {
		t.Fatalf("%d regenerateKey audit entries, want 50", n)
	}
	assertNotAudited(t, e, *keys.Key1, *keys.Key2)
}

// testKeyUsage: the listKeyUsage extension shows flushed usage per slot.
func testKeyUsage(t *testing.T, e *env) {
	group := e.createGroup(t, "usage")
	createAccount(t, e, group, "used-acct", "OpenAI")
	id := e.accountID(t, group, "used-acct")
	err := e.Accounts.RecordUsage(t.Context(), []accounts.Usage{{AccountID: id.String(), Slot: accounts.Key2, Requests: 12,
		LastUsed: time.Now(), ClientAddresses: []string{"192.0.2.7"}, UserAgents: []string{"my-app/1.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(t, request{method: "POST", path: e.accountPath(group, "used-acct") + "/listKeyUsage?api-version=2025-06-01"})
	if r.status != 200 {
		t.Fatalf("listKeyUsage: %d %s", r.status, r.body)
	}
	var body struct {
		Value []struct {
			KeyName          string   `json:"keyName"`
			Generation       int64    `json:"generation"`
			LastUsed         *string  `json:"lastUsed"`
			RequestsLastHour int64    `json:"requestsLastHour"`
			Clients          []string `json:"recentClientAddresses"`
			UserAgents       []string `json:"recentUserAgents"`
		} `json:"value"`
	}
	r.json(t, &body)
	if len(body.Value) != 2 || body.Value[0].KeyName != "key1" || body.Value[0].LastUsed != nil ||
		body.Value[1].RequestsLastHour != 12 || body.Value[1].Clients[0] != "192.0.2.7" || body.Value[1].UserAgents[0] != "my-app/1.0" {
		t.Fatalf("usage: %s", r.body)
	}
}

func isStatus(err error, status int) bool {
	respErr, ok := err.(*azcore.ResponseError)
	return ok && respErr.StatusCode == status
}

// testAccountFeatures: what Gatehouse's accounts do not have is answered
// as Azure answers an account that uses none of it — private endpoints,
// RAI policies, encryption scopes, projects, content filters,
// subscription quota usages: empty lists, 404 NotFound for one item (and
// 404 for a missing account), never a 404 for the whole collection.
func testAccountFeatures(t *testing.T, e *env, group, name string) {
	ctx := t.Context()
	opts := e.armOptions()
	pec, err := armcognitiveservices.NewPrivateEndpointConnectionsClient(e.sub, e.cred, opts)
	must(t, err)
	if l, err := pec.List(ctx, group, name, nil); err != nil || len(l.Value) != 0 {
		t.Errorf("private endpoint connections: %+v %v", l, err)
	}
	if _, err := pec.Get(ctx, group, name, "pe1", nil); !isStatus(err, 404) {
		t.Errorf("a private endpoint connection: %v", err)
	}
	if _, err := pec.List(ctx, group, "no-such-account", nil); !isStatus(err, 404) {
		t.Errorf("private endpoint connections of no account: %v", err)
	}
	plr, err := armcognitiveservices.NewPrivateLinkResourcesClient(e.sub, e.cred, opts)
	must(t, err)
	if l, err := plr.List(ctx, group, name, nil); err != nil || len(l.Value) != 0 {
		t.Errorf("private link resources: %+v %v", l, err)
	}
	rai, err := armcognitiveservices.NewRaiPoliciesClient(e.sub, e.cred, opts)
	must(t, err)
	if p, err := rai.NewListPager(group, name, nil).NextPage(ctx); err != nil || len(p.Value) != 0 {
		t.Errorf("RAI policies: %+v %v", p, err)
	}
	if _, err := rai.Get(ctx, group, name, "custom", nil); !isStatus(err, 404) {
		t.Errorf("an RAI policy: %v", err)
	}
	// Writing one is refused by name, not with a 405; deleting one finds none.
	if _, err := rai.CreateOrUpdate(ctx, group, name, "custom", armcognitiveservices.RaiPolicy{}, nil); !isCode(err, 400, "FeatureNotSupported") {
		t.Errorf("creating an RAI policy: %v", err)
	}
	if del, err := rai.BeginDelete(ctx, group, name, "custom", nil); err != nil {
		t.Errorf("deleting an RAI policy: %v", err)
	} else if _, err := del.PollUntilDone(ctx, nil); err != nil {
		t.Errorf("deleting an RAI policy: %v", err)
	}
	scopes, err := armcognitiveservices.NewEncryptionScopesClient(e.sub, e.cred, opts)
	must(t, err)
	if p, err := scopes.NewListPager(group, name, nil).NextPage(ctx); err != nil || len(p.Value) != 0 {
		t.Errorf("encryption scopes: %+v %v", p, err)
	}
	projects, err := armcognitiveservices.NewProjectsClient(e.sub, e.cred, opts)
	must(t, err)
	if p, err := projects.NewListPager(group, name, nil).NextPage(ctx); err != nil || len(p.Value) != 0 {
		t.Errorf("projects: %+v %v", p, err)
	}
	filters, err := armcognitiveservices.NewRaiContentFiltersClient(e.sub, e.cred, opts)
	must(t, err)
	if p, err := filters.NewListPager("westus", nil).NextPage(ctx); err != nil || len(p.Value) != 0 {
		t.Errorf("content filters: %+v %v", p, err)
	}
	usages, err := armcognitiveservices.NewUsagesClient(e.sub, e.cred, opts)
	must(t, err)
	if p, err := usages.NewListPager("westus", nil).NextPage(ctx); err != nil || len(p.Value) != 0 {
		t.Errorf("location usages: %+v %v", p, err)
	}
	if _, err := usages.NewListPager("not a location!", nil).NextPage(ctx); !isStatus(err, 400) {
		t.Errorf("usages of a bad location: %v", err)
	}
}
