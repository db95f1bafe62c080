package accounts_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

const sub = "11111111-2222-3333-4444-555555555555"

func sealer(t testing.TB) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Generate(rand.Reader, 1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func endpoint(name string) string { return "https://gatehouse.test/ai/" + name + "/" }

// fakeIdentities is a hand-written Identities.
type fakeIdentities struct {
	mu     sync.Mutex
	system map[string]accounts.IdentityRef
	user   map[string]accounts.IdentityRef
}

func (f *fakeIdentities) EnsureSystemIdentity(_ context.Context, id, _ string) (accounts.IdentityRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := strings.ToLower(id)
	if r, ok := f.system[k]; ok {
		return r, nil
	}
	r := accounts.IdentityRef{PrincipalID: gatehouse.NewGUID(), ClientID: gatehouse.NewGUID(), TenantID: "t"}
	f.system[k] = r
	return r, nil
}

func (f *fakeIdentities) DeleteSystemIdentity(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.system, strings.ToLower(id))
	return nil
}

func (f *fakeIdentities) UserIdentity(_ context.Context, id string) (accounts.IdentityRef, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.user[strings.ToLower(id)]
	return r, ok, nil
}

type node struct {
	*accounts.Service
	w   *storage.Watcher
	ids *fakeIdentities
}

func newNode(t testing.TB, s storage.Store, kr *keyring.Keyring, now func() time.Time) *node {
	t.Helper()
	ids := &fakeIdentities{system: map[string]accounts.IdentityRef{}, user: map[string]accounts.IdentityRef{}}
	w := teststore.NewWatcher(s)
	svc := accounts.New(context.Background(), s, w, accounts.Options{Sealer: kr, Identities: ids, Endpoint: endpoint, Now: now})
	teststore.StartWatcher(t, w, svc.Load)
	return &node{Service: svc, w: w, ids: ids}
}

func acctID(t testing.TB, group, name string) *gatehouse.ResourceID {
	t.Helper()
	id, ok := accounts.ParseID("/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.CognitiveServices/accounts/" + name)
	if !ok {
		t.Fatalf("bad id %s/%s", group, name)
	}
	return id
}

var me = accounts.Actor{ObjectID: "00000000-0000-0000-0000-0000000000aa", Type: "Application"}

// s0 is a SKU every kind has.
func s0() *accounts.SKU { return &accounts.SKU{Name: "S0"} }

func TestCreateKeysAndIndex(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		kr := sealer(t)
		a, b := newNode(t, s, kr, nil), newNode(t, s, kr, nil)
		id := acctID(t, "rg", "Lang1")
		acct, created, err := a.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "textanalytics", Location: "West US",
			Properties: accounts.Properties{RateLimits: &[]accounts.ThrottlingRule{{Key: "account", RenewalPeriod: 60, Count: 120}}}}, me)
		if err != nil || !created {
			t.Fatalf("Put: %v %v", created, err)
		}
		if acct.Kind != "TextAnalytics" || acct.Location != "westus" || acct.SKU.Name != "S0" || acct.DataPlaneName != "lang1" ||
			acct.Endpoint != "https://gatehouse.test/ai/lang1/" || acct.Keys[0].Generation != 1 || acct.Keys[1].Generation != 1 ||
			!rateIs(acct, accounts.RateLimitAccount, 120, time.Minute) || acct.PublicNetworkAccess != "Enabled" {
			t.Fatalf("account %+v", acct)
		}
		keys, err := a.ListKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys.Key1) != 64 || len(keys.Key2) != 64 || keys.Key1 == keys.Key2 {
			t.Fatalf("keys are not two distinct 256-bit values")
		}
		// The key index answers on the writing node at once, and on the
		// other node after the feed catches up.
		if m, ok := a.LookupKey(keys.Key2); !ok || m.Slot != accounts.Key2 || m.Generation != 1 || m.Account.Key() != id.Key() {
			t.Fatalf("node A LookupKey: %+v %v", m, ok)
		}
		if err := b.w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if m, ok := b.LookupKey(keys.Key1); !ok || m.Slot != accounts.Key1 {
			t.Fatalf("node B LookupKey: %+v %v", m, ok)
		}
		if got, ok := b.ByDataPlaneName("lang1"); !ok || got.Name != "Lang1" {
			t.Fatalf("ByDataPlaneName: %+v %v", got, ok)
		}
		if _, ok := b.LookupKey(strings.ToUpper(keys.Key1)); ok {
			t.Fatal("a different string matched a key")
		}

		// Regenerating Key1 changes key1 only, on every node.
		k2, after, err := a.RegenerateKey(ctx, id, accounts.Key1, me)
		if err != nil {
			t.Fatal(err)
		}
		if k2.Key1 == keys.Key1 || k2.Key2 != keys.Key2 || after.Keys[0].Generation != 2 || after.Keys[1].Generation != 1 {
			t.Fatalf("regenerate Key1: key1 changed %v, key2 kept %v, generations %+v",
				k2.Key1 != keys.Key1, k2.Key2 == keys.Key2, after.Keys)
		}
		if _, ok := a.LookupKey(keys.Key1); ok {
			t.Fatal("node A still accepts the old key1 after its own regeneration")
		}
		if m, ok := a.LookupKey(k2.Key1); !ok || m.Generation != 2 {
			t.Fatalf("new key1: %+v %v", m, ok)
		}
		if err := b.w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.LookupKey(keys.Key1); ok {
			t.Fatal("node B still accepts the old key1")
		}
		if _, ok := b.LookupKey(k2.Key2); !ok {
			t.Fatal("node B refuses key2, which was not regenerated")
		}

		// Delete: keys stop working.
		if ok, err := a.Delete(ctx, id); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if _, ok := a.LookupKey(k2.Key2); ok {
			t.Fatal("deleted account's key still accepted")
		}
		if _, err := a.Get(ctx, id); gatehouse.ErrorStatus(err) != 404 {
			t.Fatalf("Get after delete: %v", err)
		}
		if ok, err := a.Delete(ctx, id); ok || err != nil {
			t.Fatalf("second delete: %v %v", ok, err)
		}
	})
}

func TestConcurrentRegenerate(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		n := newNode(t, s, sealer(t), nil)
		id := acctID(t, "rg", "busy")
		if _, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				if _, _, err := n.RegenerateKey(ctx, id, i%2, me); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		a, err := n.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Keys[0].Generation != 26 || a.Keys[1].Generation != 26 {
			t.Fatalf("generations %+v, want 26 and 26 (no regeneration lost)", a.Keys)
		}
		keys, err := n.ListKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if keys.Key1 == keys.Key2 {
			t.Fatal("slots hold the same key")
		}
		for slot, k := range []string{keys.Key1, keys.Key2} {
			if m, ok := n.LookupKey(k); !ok || m.Slot != slot || m.Generation != 26 {
				t.Fatalf("slot %d: %+v %v", slot, m, ok)
			}
		}
	})
}

func TestPutPatchValidation(t *testing.T) {
	ctx := t.Context()
	st := teststore.SQLite(t)
	n := newNode(t, st, sealer(t), nil)
	ua := "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"
	n.ids.user[strings.ToLower(ua)] = accounts.IdentityRef{PrincipalID: gatehouse.NewGUID(), ClientID: gatehouse.NewGUID()}
	sd := "my-sub"
	if _, _, err := n.Put(ctx, acctID(t, "rg", "first"), accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus",
		Properties: accounts.Properties{CustomSubDomainName: &sd}}, me); err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name   string
		acct   string
		spec   accounts.Spec
		status int
		code   string
	}{
		{"bad-name", "-x", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, 400, "InvalidResourceName"},
		{"long-name", strings.Repeat("a", 65), accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, 400, "InvalidResourceName"},
		{"no-kind", "a1", accounts.Spec{Location: "eastus"}, 400, "KindRequired"},
		{"bad-kind", "a1", accounts.Spec{SKU: s0(), Kind: "Bogus", Location: "eastus"}, 400, "InvalidApiSetId"},
		{"no-location", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI"}, 400, "LocationRequired"},
		{"bad-sku", "a1", accounts.Spec{Kind: "OpenAI", Location: "eastus", SKU: &accounts.SKU{Name: "S 0"}}, 400, "InvalidSkuId"},
		{"sku-not-of-kind", "a1", accounts.Spec{Kind: "OpenAI", Location: "eastus", SKU: &accounts.SKU{Name: "F0"}}, 400, "InvalidSkuId"},
		{"sku-unknown", "a1", accounts.Spec{Kind: "TextAnalytics", Location: "eastus", SKU: &accounts.SKU{Name: "ZZ9"}}, 400, "InvalidSkuId"},
		{"no-sku", "a1", accounts.Spec{Kind: "OpenAI", Location: "eastus"}, 400, "InvalidSkuId"},
		{"unknown-location", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "mars"}, 400, "LocationNotAvailableForResourceType"},
		{"unknown-location-existing", "first", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "mars"}, 400, "LocationNotAvailableForResourceType"},
		{"sku-not-of-kind-existing", "first", accounts.Spec{Kind: "OpenAI", Location: "eastus", SKU: &accounts.SKU{Name: "S1"}}, 400, "InvalidSkuId"},
		{"bad-subdomain", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Properties: accounts.Properties{CustomSubDomainName: str("a_b")}}, 400, "InvalidCustomSubDomainName"},
		{"bad-network", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Properties: accounts.Properties{PublicNetworkAccess: str("maybe")}}, 400, "InvalidPublicNetworkAccess"},
		{"bad-rate", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Properties: accounts.Properties{RateLimits: &[]accounts.ThrottlingRule{{Key: "x", RenewalPeriod: -1, Count: 1}}}}, 400, "InvalidRateLimits"},
		{"bad-identity-type", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Identity: &accounts.IdentitySpec{Type: "Both"}}, 400, "InvalidIdentityType"},
		{"unknown-user-identity", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Identity: &accounts.IdentitySpec{Type: "UserAssigned", UserAssigned: []string{ua + "x"}}}, 400, "InvalidUserAssignedIdentity"},
		{"subdomain-taken", "a1", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Properties: accounts.Properties{CustomSubDomainName: str("MY-SUB")}}, 409, "CustomDomainInUse"},
		{"name-taken-as-subdomain", "my-sub", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, 409, "CustomDomainInUse"},
		{"kind-change", "first", accounts.Spec{SKU: s0(), Kind: "TextAnalytics", Location: "eastus"}, 409, "KindCannotBeChanged"},
		{"location-change", "first", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "westus"}, 409, "InvalidResourceLocation"},
		{"subdomain-change", "first", accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus", Properties: accounts.Properties{CustomSubDomainName: str("other")}}, 400, "CustomSubDomainNameCannotBeChanged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := n.Put(ctx, acctID(t, "rg", tt.acct), tt.spec, me)
			e, ok := gatehouse.AsError(err)
			if !ok || e.Status != tt.status || e.Code != tt.code {
				t.Fatalf("err = %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	list, err := n.List(ctx, &gatehouse.ResourceID{Subscription: sub})
	if err != nil || len(list) != 1 {
		t.Fatalf("failed requests changed state: %d accounts, %v", len(list), err)
	}

	// Identities: system-assigned is created, user-assigned attached,
	// None removes the system identity.
	id := acctID(t, "rg", "with-id")
	a, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "AIServices", Location: "eastus",
		Identity: &accounts.IdentitySpec{Type: "SystemAssigned, UserAssigned", UserAssigned: []string{ua}}}, me)
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity == nil || a.Identity.System == nil || len(a.Identity.UserAssigned) != 1 {
		t.Fatalf("identity %+v", a.Identity)
	}
	if _, ok := n.ids.system[id.Key()]; !ok {
		t.Fatal("system identity not created")
	}
	// PATCH changes only what it names.
	dis := true
	a, err = n.Patch(ctx, id, accounts.Spec{Properties: accounts.Properties{DisableLocalAuth: &dis}, Tags: map[string]string{"team": "x"}}, me)
	if err != nil || !a.DisableLocalAuth || a.Tags["team"] != "x" || a.Identity == nil || a.Kind != "AIServices" {
		t.Fatalf("patch: %+v %v", a, err)
	}
	if got, _ := n.ByDataPlaneName("with-id"); got == nil || !got.DisableLocalAuth {
		t.Fatal("index does not reflect disableLocalAuth")
	}
	a, err = n.Patch(ctx, id, accounts.Spec{Identity: &accounts.IdentitySpec{Type: "None"}}, me)
	if err != nil || a.Identity != nil {
		t.Fatalf("identity None: %+v %v", a, err)
	}
	if _, ok := n.ids.system[id.Key()]; ok {
		t.Fatal("system identity not deleted")
	}
	// A PUT resets what it leaves out (but not the subdomain, nor the SKU).
	a, created, err := n.Put(ctx, acctID(t, "rg", "first"), accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me)
	if err != nil || created || a.CustomSubDomainName != "my-sub" || a.DataPlaneName != "my-sub" {
		t.Fatalf("re-put: %+v %v %v", a, created, err)
	}
	// SKUs and locations compare as Azure's do: any case, spaces in a
	// location ignored; what is kept is the canonical form, with the SKU's
	// own tier when one was given.
	lang := acctID(t, "rg", "lang")
	a, _, err = n.Put(ctx, lang, accounts.Spec{SKU: &accounts.SKU{Name: "f0"}, Kind: "TextAnalytics", Location: "West US 2"}, me)
	if err != nil || a.SKU != (accounts.SKU{Name: "F0"}) || a.Location != "westus2" {
		t.Fatalf("lowercase SKU, display-name location: %+v %v", a, err)
	}
	a, err = n.Patch(ctx, lang, accounts.Spec{SKU: &accounts.SKU{Name: "s", Tier: "Premium"}}, me)
	if err != nil || a.SKU != (accounts.SKU{Name: "S", Tier: "Standard"}) {
		t.Fatalf("patch SKU: %+v %v", a, err)
	}
	if _, err := n.Patch(ctx, lang, accounts.Spec{SKU: &accounts.SKU{Name: "P1"}}, me); gatehouse.ErrorStatus(err) != 400 {
		t.Fatalf("patch to a SKU the kind does not have: %v", err)
	}
	if _, err := n.Patch(ctx, lang, accounts.Spec{Location: "Mars"}, me); gatehouse.ErrorStatus(err) != 400 {
		t.Fatalf("patch to an unknown location: %v", err)
	}
	a, created, err = n.Put(ctx, lang, accounts.Spec{Kind: "TextAnalytics", Location: "westus2"}, me)
	if err != nil || created || a.SKU.Name != "S" {
		t.Fatalf("a PUT without a SKU keeps the account's: %+v %v", a, err)
	}
	// An account made where the list does not reach (before it was
	// checked) keeps its location; it cannot move there, nor be made there.
	if _, err := storage.NewTable[map[string]any](st, accounts.KindAccount).Update(ctx, lang.Key(), func(r *storage.Record[map[string]any]) error {
		r.Value["location"] = "dc1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if a, _, err = n.Put(ctx, lang, accounts.Spec{Kind: "TextAnalytics", Location: "DC1", Tags: map[string]string{"a": "b"}}, me); err != nil || a.Location != "dc1" {
		t.Fatalf("PUT of an account in an unlisted location: %+v %v", a, err)
	}
	if a, err = n.Patch(ctx, lang, accounts.Spec{Location: "dc1", Tags: map[string]string{}}, me); err != nil || a.Location != "dc1" {
		t.Fatalf("PATCH of an account in an unlisted location: %+v %v", a, err)
	}
	if _, err := n.Patch(ctx, acctID(t, "rg", "first"), accounts.Spec{Location: "dc1"}, me); gatehouse.ErrorStatus(err) != 400 {
		t.Fatalf("PATCH to an unlisted location: %v", err)
	}
	if _, _, err := n.Put(ctx, acctID(t, "rg", "other"), accounts.Spec{SKU: s0(), Kind: "TextAnalytics", Location: "dc1"}, me); gatehouse.ErrorStatus(err) != 400 {
		t.Fatalf("create in an unlisted location: %v", err)
	}
	if _, err := n.Delete(ctx, lang); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Patch(ctx, acctID(t, "rg", "nope"), accounts.Spec{}, me); gatehouse.ErrorStatus(err) != 404 {
		t.Fatalf("patch missing: %v", err)
	}
	if _, _, err := n.RegenerateKey(ctx, acctID(t, "rg", "nope"), accounts.Key1, me); gatehouse.ErrorStatus(err) != 404 {
		t.Fatalf("regenerate missing: %v", err)
	}
	deleted, err := n.DeleteWithin(ctx, &gatehouse.ResourceID{Subscription: sub, ResourceGroup: "RG"})
	if err != nil || len(deleted) != 2 {
		t.Fatalf("DeleteWithin: %v %v", deleted, err)
	}
}

func TestUsageEvidence(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		n := newNode(t, s, sealer(t), func() time.Time { return now })
		id := acctID(t, "rg", "used")
		if _, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me); err != nil {
			t.Fatal(err)
		}
		pid := gatehouse.NewGUID()
		batch := []accounts.Usage{
			{AccountID: strings.ToUpper(id.String()), Slot: accounts.Key1, Requests: 7, LastUsed: now.Add(-2 * time.Hour),
				ClientAddresses: []string{"10.0.0.1"}, UserAgents: []string{"old-app/1"}},
			{AccountID: id.String(), Slot: accounts.Key1, Requests: 3, LastUsed: now.Add(-10 * time.Minute),
				ClientAddresses: []string{"10.0.0.2", "10.0.0.1"}, UserAgents: []string{"app/2"}, PromptTokens: 100, CompletionTokens: 20},
			{AccountID: id.String(), Slot: -1, PrincipalID: pid, Requests: 5, LastUsed: now.Add(-time.Minute), PromptTokens: 4, CompletionTokens: 1},
			// Tokens of a session still open (a realtime WebSocket): no
			// request yet.
			{AccountID: id.String(), Slot: accounts.Key2, PromptTokens: 7, CompletionTokens: 5, LastUsed: now.Add(-time.Minute)},
			{AccountID: id.String(), Slot: accounts.Key2, Requests: -1, LastUsed: now}, // dropped
			{AccountID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/gone", Slot: 0, Requests: 1, LastUsed: now},
		}
		// Two flushes (two nodes) add up.
		for range 2 {
			if err := n.RecordUsage(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		ev, err := n.KeyUsage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		k1, k2 := ev.Keys[0], ev.Keys[1]
		if k1.RequestsTotal != 20 || k1.RequestsLastHour != 6 || k1.RequestsLast24Hours != 20 || !k1.LastUsed.Equal(now.Add(-10*time.Minute)) {
			t.Fatalf("key1 evidence %+v", k1)
		}
		if strings.Join(k1.ClientAddresses, ",") != "10.0.0.2,10.0.0.1" || strings.Join(k1.UserAgents, ",") != "app/2,old-app/1" {
			t.Fatalf("recent clients %v %v", k1.ClientAddresses, k1.UserAgents)
		}
		if k1.PromptTokensTotal != 200 || k1.CompletionTokensTotal != 40 || k1.TokensLast24Hours != 240 {
			t.Fatalf("key1 tokens %+v", k1)
		}
		if k2.RequestsTotal != 0 || k2.TokensLast24Hours != 24 || k2.PromptTokensTotal != 14 || k2.KeyName != "key2" {
			t.Fatalf("key2 evidence %+v", k2)
		}
		if len(ev.Principals) != 1 || ev.Principals[0].PrincipalID != pid || ev.Principals[0].RequestsLastHour != 10 ||
			ev.Principals[0].TokensLast24Hours != 10 {
			t.Fatalf("principals %+v", ev.Principals)
		}
		// Regenerating key1 starts its evidence afresh.
		if _, _, err := n.RegenerateKey(ctx, id, accounts.Key1, me); err != nil {
			t.Fatal(err)
		}
		ev, err = n.KeyUsage(ctx, id)
		if err != nil || ev.Keys[0].RequestsTotal != 0 || ev.Keys[0].PromptTokensTotal != 0 || ev.Keys[0].TokensLast24Hours != 0 || ev.Keys[0].Generation != 2 {
			t.Fatalf("after regenerate: %+v %v", ev.Keys[0], err)
		}
		// Uses of the old key1 counted before the regeneration and flushed
		// after it (a node's next flush) are not the new key's: they reach
		// the account's series only. The new key's own uses count.
		late := []accounts.Usage{
			{AccountID: id.String(), Slot: accounts.Key1, Generation: 1, Requests: 4, LastUsed: now.Add(-time.Second), UserAgents: []string{"old-key-app"}},
			{AccountID: id.String(), Slot: accounts.Key1, Generation: 2, Requests: 2, LastUsed: now, UserAgents: []string{"new-key-app"}},
		}
		if err := n.RecordUsage(ctx, late); err != nil {
			t.Fatal(err)
		}
		ev, err = n.KeyUsage(ctx, id)
		if k := ev.Keys[0]; err != nil || k.RequestsTotal != 2 || !k.LastUsed.Equal(now) || strings.Join(k.UserAgents, ",") != "new-key-app" {
			t.Fatalf("old key's late uses: %+v %v", k, err)
		}
		// KeyUsage first stores what the node has not flushed yet.
		flushed := 0
		n.SetUsageFlusher(func(ctx context.Context) error {
			flushed++
			return n.RecordUsage(ctx, []accounts.Usage{{AccountID: id.String(), Slot: accounts.Key2, Generation: 1, Requests: 1, LastUsed: now}})
		})
		ev, err = n.KeyUsage(ctx, id)
		if err != nil || flushed != 1 || ev.Keys[1].RequestsTotal != 1 || !ev.Keys[1].LastUsed.Equal(now) {
			t.Fatalf("unflushed use: %d flushes, %+v %v", flushed, ev.Keys[1], err)
		}
		n.SetUsageFlusher(func(context.Context) error { return errors.New("store down") })
		if _, err := n.KeyUsage(ctx, id); err != nil {
			t.Fatalf("a failed flush fails the read: %v", err)
		}
		// The account's series (Azure Monitor's metrics) keeps every
		// credential's use through the regeneration, in 5-minute windows.
		series, err := n.Series(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var req, prompt, completion int64
		for i, p := range series {
			req, prompt, completion = req+p.Requests, prompt+p.PromptTokens, completion+p.CompletionTokens
			if !p.Start.Equal(p.Start.Truncate(accounts.UsageGrain)) || (i > 0 && !p.Start.After(series[i-1].Start)) {
				t.Fatalf("series out of order or off the grain: %+v", series)
			}
		}
		if len(series) != 4 || req != 30+4+2+1 || prompt != 2*(100+4+7) || completion != 2*(20+1+5) {
			t.Fatalf("series %+v: %d requests, %d prompt, %d completion tokens", series, req, prompt, completion)
		}
		// A day later it has aged out.
		now = now.Add(25 * time.Hour)
		if series, err := n.Series(ctx, id); err != nil || len(series) != 0 {
			t.Fatalf("series a day later: %+v %v", series, err)
		}
	})
}

func BenchmarkLookupKey(b *testing.B) {
	n := newNode(b, teststore.SQLite(b), sealer(b), nil)
	for i := range 100 {
		if _, _, err := n.Put(b.Context(), acctID(b, "rg", fmt.Sprintf("acct%03d", i)), accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me); err != nil {
			b.Fatal(err)
		}
	}
	list, _ := n.List(b.Context(), &gatehouse.ResourceID{Subscription: sub})
	id, _ := accounts.ParseID(list[0].ID)
	keys, err := n.ListKeys(b.Context(), id)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := n.LookupKey(keys.Key1); !ok {
			b.Fatal("miss")
		}
	}
}

// rateIs reports whether acct's rate-limit rule key is count per period.
func rateIs(acct *accounts.Account, key string, count float64, period time.Duration) bool {
	c, p := acct.RateLimit(key)
	return c == count && p == period
}
