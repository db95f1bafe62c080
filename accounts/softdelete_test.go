package accounts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func wantCode(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	e, ok := gatehouse.AsError(err)
	if !ok || e.Status != status || e.Code != code {
		t.Errorf("%s: %v, want %d %s", what, err, status, code)
	}
}

// TestSoftDelete: a deleted account leaves the data plane and the
// management views at once, on every node, keeps its name and subdomain
// reserved, and comes back by restore with the same keys, deployments and
// evidence (and a new system identity); it is purged on request or once
// its 48 hours have passed, and then its name is free.
func TestSoftDelete(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		kr := sealer(t)
		clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
		a, b := newNode(t, s, kr, clk.now), newNode(t, s, kr, clk.now)
		w := teststore.NewWatcher(s)
		deps := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: kr})
		teststore.StartWatcher(t, w, deps.Load)

		id := acctID(t, "rg", "Soft1")
		acct, _, err := a.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus",
			Identity:   &accounts.IdentitySpec{Type: accounts.IdentitySystemAssigned},
			Properties: accounts.Properties{CustomSubDomainName: new("soft-sub")}}, me)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := a.ListKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := deps.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"},
			Endpoint: "http://127.0.0.1:9"}, me); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordUsage(ctx, []accounts.Usage{{AccountID: acct.ID, Slot: accounts.Key1, Requests: 3, LastUsed: clk.now()}}); err != nil {
			t.Fatal(err)
		}
		oldPrincipal := acct.Identity.System.PrincipalID

		if ok, err := a.Delete(ctx, id); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, err := a.Delete(ctx, id); ok || err != nil {
			t.Fatalf("deleting a deleted account: %v %v, want false", ok, err)
		}
		if err := b.w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for i, n := range []*node{a, b} {
			if _, ok := n.LookupKey(keys.Key1); ok {
				t.Errorf("node %d: key1 of a deleted account still unlocks it", i)
			}
			if _, ok := n.ByDataPlaneName("soft-sub"); ok {
				t.Errorf("node %d: the data-plane name still resolves", i)
			}
			if _, ok := n.ByID(id.String()); ok {
				t.Errorf("node %d: the id still resolves", i)
			}
		}
		_, err = a.Get(ctx, id)
		wantCode(t, "get", err, 404, "ResourceNotFound")
		if list, _ := a.List(ctx, &gatehouse.ResourceID{Subscription: sub}); len(list) != 0 {
			t.Errorf("list shows %d accounts", len(list))
		}
		_, err = a.ListKeys(ctx, id)
		wantCode(t, "listKeys", err, 404, "ResourceNotFound")
		_, _, err = a.RegenerateKey(ctx, id, accounts.Key1, me)
		wantCode(t, "regenerateKey", err, 404, "ResourceNotFound")
		_, err = a.Patch(ctx, id, accounts.Spec{Tags: map[string]string{"x": "y"}}, me)
		wantCode(t, "patch", err, 404, "ResourceNotFound")
		_, err = a.KeyUsage(ctx, id)
		wantCode(t, "keyUsage", err, 404, "ResourceNotFound")
		a.ids.mu.Lock()
		_, kept := a.ids.system[strings.ToLower(id.String())]
		a.ids.mu.Unlock()
		if kept {
			t.Error("the system identity of a deleted account still exists")
		}

		deleted, err := a.ListDeleted(ctx, sub)
		if err != nil || len(deleted) != 1 || deleted[0].Name != "Soft1" ||
			!deleted[0].DeletedAt.Equal(clk.now()) || !deleted[0].ScheduledPurge.Equal(clk.now().Add(48*time.Hour)) {
			t.Fatalf("deleted accounts: %+v %v", deleted, err)
		}
		if got, err := a.ListDeleted(ctx, "99999999-2222-3333-4444-555555555555"); err != nil || len(got) != 0 {
			t.Errorf("another subscription's deleted accounts: %d %v", len(got), err)
		}
		if d, err := a.GetDeleted(ctx, id, "East US"); err != nil || d.InternalID != acct.InternalID ||
			d.Identity == nil || d.Identity.Type != accounts.IdentitySystemAssigned || d.Identity.System != nil {
			t.Errorf("get deleted: %+v %v (the deleted identity must not be shown)", d, err)
		}
		_, err = a.GetDeleted(ctx, id, "westus")
		wantCode(t, "get deleted in another location", err, 404, "ResourceNotFound")
		_, err = a.GetDeleted(ctx, acctID(t, "rg", "never"), "eastus")
		wantCode(t, "get deleted that never was", err, 404, "ResourceNotFound")

		// The name and the subdomain stay reserved.
		_, _, err = a.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me)
		wantCode(t, "create over a deleted account", err, 409, "FlagMustBeSetForRestore")
		_, _, err = a.Put(ctx, acctID(t, "rg", "other"), accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus",
			Properties: accounts.Properties{CustomSubDomainName: new("soft-sub")}}, me)
		wantCode(t, "another account with the subdomain", err, 409, "CustomDomainInUse")

		// Restore: wrong location refused, nothing to restore refused.
		_, _, err = a.Put(ctx, id, accounts.Spec{Location: "westus", Restore: true}, me)
		wantCode(t, "restore elsewhere", err, 409, "InvalidResourceLocation")
		_, _, err = a.Put(ctx, acctID(t, "rg", "never"), accounts.Spec{Location: "eastus", Restore: true}, me)
		wantCode(t, "restore what never was", err, 404, "ResourceNotFound")

		clk.add(time.Hour)
		back, created, err := a.Put(ctx, id, accounts.Spec{Location: "eastus", Restore: true}, me)
		if err != nil || created {
			t.Fatalf("restore: %v created=%v", err, created)
		}
		if back.InternalID != acct.InternalID || back.DataPlaneName != "soft-sub" || !back.DeletedAt.IsZero() {
			t.Errorf("restored: %+v", back)
		}
		if back.Identity == nil || back.Identity.System == nil || back.Identity.System.PrincipalID == oldPrincipal {
			t.Errorf("restored identity %+v: want a new system identity", back.Identity)
		}
		again, err := a.ListKeys(ctx, id)
		if err != nil || again != keys {
			t.Errorf("restored keys differ: %v", err)
		}
		if err := b.w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for i, n := range []*node{a, b} {
			if m, ok := n.LookupKey(keys.Key2); !ok || m.Slot != accounts.Key2 || m.Generation != 1 {
				t.Errorf("node %d: key2 after restore: %+v %v", i, m, ok)
			}
		}
		if list, _ := deps.ListDeployments(ctx, back); len(list) != 1 {
			t.Errorf("restored deployments: %d", len(list))
		}
		if ev, err := a.KeyUsage(ctx, id); err != nil || ev.Keys[0].RequestsTotal != 3 {
			t.Errorf("restored evidence: %+v %v", ev, err)
		}
		if got, _, err := a.Put(ctx, id, accounts.Spec{Location: "eastus", Restore: true}, me); err != nil || got.InternalID != acct.InternalID {
			t.Errorf("a retried restore: %v", err)
		}
		if d, _ := a.ListDeleted(ctx, sub); len(d) != 0 {
			t.Errorf("still listed as deleted: %d", len(d))
		}

		// Purge: only a deleted account, in its location.
		err = a.Purge(ctx, id, "eastus")
		wantCode(t, "purge an active account", err, 404, "ResourceNotFound")
		if _, err := a.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		err = a.Purge(ctx, id, "westus")
		wantCode(t, "purge in another location", err, 404, "ResourceNotFound")

		// Expiry: not before the scheduled date, then purged by the loop.
		clk.add(47 * time.Hour)
		if ids, err := a.PurgeExpired(ctx); err != nil || len(ids) != 0 {
			t.Fatalf("purged before the date: %v %v", ids, err)
		}
		clk.add(2 * time.Hour)
		ids, err := b.PurgeExpired(ctx)
		if err != nil || len(ids) != 1 || ids[0] != acct.ID {
			t.Fatalf("PurgeExpired: %v %v", ids, err)
		}
		for _, kind := range []string{accounts.KindAccount, accounts.KindDeployment, accounts.KindUsage} {
			if objs := listKind(t, s, kind); len(objs) != 0 {
				t.Errorf("%d %s records survive the purge", len(objs), kind)
			}
		}
		err = a.Purge(ctx, id, "eastus")
		wantCode(t, "purge a purged account", err, 404, "ResourceNotFound")
		fresh, created, err := a.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus",
			Properties: accounts.Properties{CustomSubDomainName: new("soft-sub")}}, me)
		if err != nil || !created || fresh.InternalID == acct.InternalID {
			t.Fatalf("create after the purge: %v created=%v", err, created)
		}
	})
}

// TestSoftDeleteOff: with a negative retention Delete purges at once.
func TestSoftDeleteOff(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		w := teststore.NewWatcher(s)
		svc := accounts.New(context.Background(), s, w, accounts.Options{Sealer: sealer(t), Endpoint: endpoint, Retention: -1})
		teststore.StartWatcher(t, w, svc.Load)
		if svc.SoftDelete() {
			t.Fatal("soft delete is on")
		}
		id := acctID(t, "rg", "hard")
		first, _, err := svc.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "TextAnalytics", Location: "eastus"}, me)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := svc.Delete(ctx, id); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if d, _ := svc.ListDeleted(ctx, sub); len(d) != 0 {
			t.Errorf("deleted accounts kept: %d", len(d))
		}
		second, created, err := svc.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "TextAnalytics", Location: "eastus"}, me)
		if err != nil || !created || second.InternalID == first.InternalID {
			t.Fatalf("create again: %v %v", err, created)
		}
	})
}

// TestPurgeHook: OnPurge runs before an account is deleted for good, and a
// failing hook leaves the deleted account in place for the next
// PurgeExpired, so no role assignment can outlive its account.
func TestPurgeHook(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
		var purged []string
		fail := true
		w := teststore.NewWatcher(s)
		svc := accounts.New(context.Background(), s, w, accounts.Options{Sealer: sealer(t), Endpoint: endpoint, Now: clk.now,
			OnPurge: func(_ context.Context, id string) error {
				if fail {
					return errors.New("authz store down")
				}
				purged = append(purged, id)
				return nil
			}})
		teststore.StartWatcher(t, w, svc.Load)
		id := acctID(t, "rg", "Hooked")
		if _, _, err := svc.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "TextAnalytics", Location: "eastus"}, me); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if len(purged) != 0 {
			t.Fatal("a soft delete ran the purge hook")
		}
		wantCode(t, "purge while the hook fails", svc.Purge(ctx, id, "eastus"), 503, "ServiceUnavailable")
		clk.add(49 * time.Hour)
		if ids, err := svc.PurgeExpired(ctx); err == nil || len(ids) != 0 {
			t.Fatalf("PurgeExpired with a failing hook: %v %v", ids, err)
		}
		if objs := listKind(t, s, accounts.KindAccount); len(objs) != 1 {
			t.Fatalf("%d account records after failed purges, want the deleted one kept", len(objs))
		}
		fail = false
		if ids, err := svc.PurgeExpired(ctx); err != nil || len(ids) != 1 {
			t.Fatalf("PurgeExpired: %v %v", ids, err)
		}
		if len(purged) != 1 || purged[0] != id.String() || len(listKind(t, s, accounts.KindAccount)) != 0 {
			t.Fatalf("hook calls %v", purged)
		}
	})
}
