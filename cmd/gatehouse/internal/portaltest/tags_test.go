package portaltest

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/vault"
)

// testTags: an account's and a vault's page list their tags; whoever may
// write tags there sets one (a name in another case replaces it) and
// removes one, and the resource itself holds the result. A Reader sees
// the tags without the form and is refused (audited); a ReadOnly lock
// refuses; bad names and values are 400 and change nothing.
func testTags(t *testing.T, e *env) {
	ctx := t.Context()
	acct, _ := e.newAccount(t, "tagged", "TextAnalytics")
	acctPath := "/portal/accounts/" + acct.Subscription + "/" + acct.ResourceGroup + "/tagged"
	kv := (&gatehouse.ResourceID{Subscription: acct.Subscription, ResourceGroup: acct.ResourceGroup}).Child("Microsoft.KeyVault", "vaults", "tagged-kv")
	rbac := true
	if _, _, err := e.Vaults.PutVault(ctx, kv, vault.Spec{Location: "westus", TenantID: e.Directory.DefaultTenant(), EnableRbacAuthorization: &rbac},
		vault.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"}); err != nil {
		t.Fatal(err)
	}
	kvPath := "/portal/vaults/" + kv.Subscription + "/" + kv.ResourceGroup + "/tagged-kv"
	accountTags := func() map[string]string {
		a, err := e.Accounts.Get(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		return a.Tags
	}
	vaultTags := func() map[string]string {
		v, err := e.Vaults.GetVault(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		return v.Tags
	}

	o := e.browser(t)
	o.signIn(e.owner)
	for _, r := range []struct {
		path string
		tags func() map[string]string
	}{{acctPath, accountTags}, {kvPath, vaultTags}} {
		if p := o.get(r.path); p.status != 200 || !strings.Contains(p.body, `id="no-tags"`) || !strings.Contains(p.body, `id="tag-form"`) {
			t.Fatalf("%s before tagging: %d %s", r.path, p.status, p.body)
		}
		set := func(name, value string) {
			t.Helper()
			if p := o.post(r.path+"/tags", url.Values{"name": {name}, "value": {value}}); p.status != http.StatusSeeOther || p.header.Get("Location") != r.path+"#tags" {
				t.Fatalf("set tag %s on %s: %d %s", name, r.path, p.status, p.body)
			}
		}
		set("env", "prod")
		set("cost-center", "42")
		set("ENV", "test")
		if got := r.tags(); !maps.Equal(got, map[string]string{"ENV": "test", "cost-center": "42"}) {
			t.Fatalf("%s tags: %v", r.path, got)
		}
		if p := o.get(r.path); !strings.Contains(p.body, "<td>ENV</td><td>test</td>") || !strings.Contains(p.body, `aria-label="Remove the tag cost-center"`) {
			t.Fatalf("%s does not list its tags: %s", r.path, p.body)
		}
		if p := o.post(r.path+"/tags/remove", url.Values{"name": {"Cost-Center"}}); p.status != http.StatusSeeOther {
			t.Fatalf("remove tag on %s: %d %s", r.path, p.status, p.body)
		}
		if got := r.tags(); !maps.Equal(got, map[string]string{"ENV": "test"}) {
			t.Fatalf("%s tags after removing: %v", r.path, got)
		}
	}

	// Bad input changes nothing.
	for name, form := range map[string]url.Values{
		"no-name":    {"value": {"x"}},
		"blank-name": {"name": {"  "}, "value": {"x"}},
		"bad-name":   {"name": {"a<b"}, "value": {"x"}},
		"long-value": {"name": {"a"}, "value": {strings.Repeat("v", 257)}},
		"long-name":  {"name": {strings.Repeat("n", 513)}, "value": {"x"}},
	} {
		if p := o.post(acctPath+"/tags", form); p.status != http.StatusBadRequest || !strings.Contains(p.body, "tag") {
			t.Errorf("%s: %d %s", name, p.status, p.body)
		}
	}
	if got := accountTags(); !maps.Equal(got, map[string]string{"ENV": "test"}) {
		t.Fatalf("tags after bad input: %v", got)
	}

	// The form suggests the subscription's predefined tags (az tag create
	// --name, add-value) to whoever may read them.
	if _, _, err := e.Resources.PutTagName(ctx, acct.Subscription, "PortalCostCenter", e.owner.ObjectID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Resources.PutTagValue(ctx, acct.Subscription, "PortalCostCenter", "1001"); err != nil {
		t.Fatal(err)
	}
	if p := o.get(acctPath); !strings.Contains(p.body, `list="tag-names"`) || !strings.Contains(p.body, `<option value="PortalCostCenter">`) ||
		!strings.Contains(p.body, `<option value="1001" label="PortalCostCenter">`) {
		t.Fatalf("the owner's tag form does not suggest the predefined tags: %s", p.body)
	}

	// A Reader sees the tags, not the form, and is refused.
	if _, _, err := e.Authz.CreateAssignment(ctx, acct, gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.RoleReader, PrincipalID: e.nobody.ObjectID}, e.Bootstrap.ClientID); err != nil {
		t.Fatal(err)
	}
	r := e.browser(t)
	r.signIn(e.nobody)
	if p := r.get(acctPath); p.status != 200 || !strings.Contains(p.body, "<td>ENV</td>") || strings.Contains(p.body, `id="tag-form"`) || strings.Contains(p.body, "Remove the tag") {
		t.Fatalf("a Reader's page: %d %s", p.status, p.body)
	}
	if p := r.post(acctPath+"/tags", url.Values{"name": {"x"}, "value": {"y"}}); p.status != http.StatusForbidden {
		t.Fatalf("a Reader's tag: %d", p.status)
	}
	// Tag Contributor beside Reader tags it.
	if _, _, err := e.Authz.CreateAssignment(ctx, acct, gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.RoleTagContributor, PrincipalID: e.nobody.ObjectID}, e.Bootstrap.ClientID); err != nil {
		t.Fatal(err)
	}
	if p := r.post(acctPath+"/tags", url.Values{"name": {"by"}, "value": {"tagger"}}); p.status != http.StatusSeeOther {
		t.Fatalf("a Tag Contributor's tag: %d %s", p.status, p.body)
	}
	// It may not read the subscription's predefined tags: the form, without suggestions.
	if p := r.get(acctPath); !strings.Contains(p.body, `id="tag-form"`) || strings.Contains(p.body, "PortalCostCenter") {
		t.Fatalf("a Tag Contributor's tag form: %s", p.body)
	}

	// A ReadOnly lock refuses.
	if _, _, err := e.Resources.PutLock(ctx, acct, "frozen-tags", resources.LockSpec{Level: resources.LockReadOnly}, e.owner.ObjectID); err != nil {
		t.Fatal(err)
	}
	if p := o.post(acctPath+"/tags", url.Values{"name": {"x"}, "value": {"y"}}); p.status != http.StatusConflict || !strings.Contains(p.body, "ScopeLocked") {
		t.Fatalf("tag under a ReadOnly lock: %d", p.status)
	}
	if _, err := e.Resources.DeleteLock(ctx, acct, "frozen-tags"); err != nil {
		t.Fatal(err)
	}
	if got := accountTags(); !maps.Equal(got, map[string]string{"ENV": "test", "by": "tagger"}) {
		t.Fatalf("tags at the end: %v", got)
	}

	// Audited: the owner's changes, the Reader's refusal, the lock's.
	results := map[audit.Result]int{}
	e.Audit.Each(ctx, 0, func(rec *audit.Record) error {
		if rec.Entry.Action == "Microsoft.Resources/tags/write" && rec.Entry.Surface == "portal" {
			results[rec.Entry.Result]++
		}
		return nil
	})
	if results[audit.Succeeded] < 9 || results[audit.Denied] < 1 || results[audit.Failed] < 1 {
		t.Fatalf("tag changes audited: %v", results)
	}
}
