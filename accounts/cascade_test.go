package accounts_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestDeleteCascades: purging a deleted account deletes its deployments
// (sealed upstream keys included) and its usage evidence; an account
// created again under the same id starts with neither; PurgeOrphans
// removes what an interrupted purge left.
func TestDeleteCascades(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		kr := sealer(t)
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		n := newNode(t, s, kr, func() time.Time { return now })
		w := teststore.NewWatcher(s)
		deps := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: kr})
		teststore.StartWatcher(t, w, deps.Load)

		id := acctID(t, "rg", "chat")
		acct, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me)
		if err != nil {
			t.Fatal(err)
		}
		key := "sk-upstream-cascade"
		for _, name := range []string{"gpt-4o", "embed"} {
			if _, _, err := deps.PutDeployment(ctx, acct, name, accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: name},
				Endpoint: "http://127.0.0.1:9", Key: &key}, me); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.RecordUsage(ctx, []accounts.Usage{{AccountID: acct.ID, Slot: accounts.Key1, Requests: 4, LastUsed: now}}); err != nil {
			t.Fatal(err)
		}

		if ok, err := n.Delete(ctx, id); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if err := n.Purge(ctx, id, "eastus"); err != nil {
			t.Fatalf("purge: %v", err)
		}
		for _, kind := range []string{accounts.KindDeployment, accounts.KindUsage} {
			if objs := listKind(t, s, kind); len(objs) != 0 {
				t.Errorf("%d %s records survive the account", len(objs), kind)
			}
		}
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := deps.Lookup(acct.InternalID, "gpt-4o"); ok {
			t.Error("the gateway's index still serves a deployment of the deleted account")
		}

		// Created again under the same id: nothing of the old instance.
		again, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: "OpenAI", Location: "eastus"}, me)
		if err != nil {
			t.Fatal(err)
		}
		if list, _ := deps.ListDeployments(ctx, again); len(list) != 0 {
			t.Errorf("the new account has %d deployments", len(list))
		}
		ev, err := n.KeyUsage(ctx, id)
		if err != nil || ev.Keys[0].RequestsTotal != 0 {
			t.Errorf("the new account inherits evidence: %+v %v", ev, err)
		}

		// Evidence written for the old instance after it was deleted (a
		// late flush from a node whose index lagged) is not the new one's.
		stale := &storage.Object{Kind: accounts.KindUsage, Key: id.Key(),
			Data: []byte(`{"internalId":"` + acct.InternalID + `","slots":[{"generation":1,"total":99},{"total":0}]}`)}
		if _, err := s.Create(ctx, stale); err != nil {
			t.Fatal(err)
		}
		if ev, err := n.KeyUsage(ctx, id); err != nil || ev.Keys[0].RequestsTotal != 0 {
			t.Errorf("the old instance's evidence shows: %+v %v", ev.Keys[0], err)
		}
		// Counts a node took for the old instance and flushes now (under
		// the same id, the new instance's generation 1) are dropped; the new
		// instance's own are kept.
		if err := n.RecordUsage(ctx, []accounts.Usage{
			{AccountID: again.ID, Instance: acct.InternalID, Slot: accounts.Key1, Generation: 1, Requests: 7, LastUsed: now},
			{AccountID: again.ID, Instance: again.InternalID, Slot: accounts.Key1, Generation: 1, Requests: 2, LastUsed: now},
		}); err != nil {
			t.Fatal(err)
		}
		if ev, err := n.KeyUsage(ctx, id); err != nil || ev.Keys[0].RequestsTotal != 2 {
			t.Errorf("after a flush for the new instance: %+v %v", ev.Keys[0], err)
		}

		// Orphans (an interrupted delete) are purged; live records stay.
		if _, _, err := deps.PutDeployment(ctx, again, "live", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"},
			Endpoint: "http://127.0.0.1:9"}, me); err != nil {
			t.Fatal(err)
		}
		ghost := *again
		ghost.InternalID = "0123456789abcdef0123456789abcdef"
		if _, _, err := deps.PutDeployment(ctx, &ghost, "orphan", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"},
			Endpoint: "http://127.0.0.1:9", Key: &key}, me); err != nil {
			t.Fatal(err)
		}
		gone := acctID(t, "rg", "gone")
		if _, err := s.Create(ctx, &storage.Object{Kind: accounts.KindUsage, Key: gone.Key(), Data: []byte(`{"slots":[{},{}]}`)}); err != nil {
			t.Fatal(err)
		}
		purged, err := n.PurgeOrphans(ctx)
		if err != nil || purged != 2 {
			t.Fatalf("PurgeOrphans: %d %v, want 2", purged, err)
		}
		if list, _ := deps.ListDeployments(ctx, again); len(list) != 1 || list[0].Name != "live" {
			t.Errorf("live deployments after the purge: %v", list)
		}
		if objs := listKind(t, s, accounts.KindUsage); len(objs) != 1 || objs[0].Key != id.Key() {
			t.Errorf("usage records after the purge: %d", len(objs))
		}
	})
}

func listKind(t *testing.T, s storage.Store, kind string) []*storage.Object {
	t.Helper()
	page, err := s.List(t.Context(), storage.ListOptions{Kind: kind, Limit: storage.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return page.Objects
}
