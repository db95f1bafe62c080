package resources_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

const tenant = "72f988bf-0000-0000-0000-000000000000"

func TestEnsureDefaults(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		// Several nodes start at once on one store.
		var calls atomic.Int32
		var wg sync.WaitGroup
		got := make([]*resources.Defaults, 4)
		for i := range got {
			wg.Go(func() {
				svc := resources.New(s, resources.Options{})
				d, err := svc.EnsureDefaults(ctx, tenant, func(ctx context.Context, sub *resources.Subscription, g *resources.Group) error {
					calls.Add(1)
					if sub.TenantID != tenant || g.Name != resources.DefaultGroup {
						t.Errorf("bootstrap got %+v %+v", sub, g)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = d
			})
		}
		wg.Wait()
		for _, d := range got[1:] {
			if d == nil || got[0] == nil || d.Subscription != got[0].Subscription {
				t.Fatalf("nodes disagree on the default subscription: %+v", got)
			}
		}
		if calls.Load() < 1 {
			t.Fatal("bootstrap never ran")
		}
		svc := resources.New(s, resources.Options{})
		subs, err := svc.Subscriptions(ctx)
		if err != nil || len(subs) != 1 || subs[0].ID != got[0].Subscription || subs[0].State != "Enabled" {
			t.Fatalf("subscriptions %+v %v", subs, err)
		}
		// Once bootstrapped, a deleted default group stays deleted.
		if ok, err := svc.DeleteGroup(ctx, subs[0].ID, "default"); !ok || err != nil {
			t.Fatal(ok, err)
		}
		calls.Store(0)
		if _, err := svc.EnsureDefaults(ctx, tenant, func(context.Context, *resources.Subscription, *resources.Group) error {
			calls.Add(1)
			return nil
		}); err != nil || calls.Load() != 0 {
			t.Fatalf("second start: %v, bootstrap calls %d", err, calls.Load())
		}
		if _, err := svc.Group(ctx, subs[0].ID, "default"); gatehouse.ErrorStatus(err) != 404 {
			t.Fatalf("default group recreated: %v", err)
		}
	})
}

func TestGroups(t *testing.T) {
	st := teststore.SQLite(t)
	svc := resources.New(st, resources.Options{})
	ctx := t.Context()
	d, err := svc.EnsureDefaults(ctx, tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := d.Subscription
	g, created, err := svc.PutGroup(ctx, sub, "Team-A", resources.GroupSpec{Location: "West US", Tags: map[string]string{"env": "dev"}}, "me")
	if err != nil || !created || g.Location != "westus" || g.Name != "Team-A" {
		t.Fatalf("put: %+v %v %v", g, created, err)
	}
	// Names are case-insensitive; updating keeps the original spelling.
	g, created, err = svc.PutGroup(ctx, strings.ToUpper(sub), "team-a", resources.GroupSpec{Location: "westus", Tags: map[string]string{"env": "prod"}}, "me")
	if err != nil || created || g.Name != "Team-A" || g.Tags["env"] != "prod" {
		t.Fatalf("update: %+v %v %v", g, created, err)
	}
	if _, _, err := svc.PutGroup(ctx, sub, "team-a", resources.GroupSpec{Location: "eastus"}, "me"); gatehouse.ErrorStatus(err) != 409 {
		t.Fatalf("location change: %v", err)
	}
	if g, err := svc.PatchGroup(ctx, sub, "TEAM-A", map[string]string{}, "me"); err != nil || len(g.Tags) != 0 {
		t.Fatalf("patch: %+v %v", g, err)
	}
	groups, err := svc.Groups(ctx, sub)
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups %+v %v", groups, err)
	}
	if other, err := svc.Groups(ctx, gatehouse.NewGUID()); err != nil || len(other) != 0 {
		t.Fatalf("other subscription: %+v %v", other, err)
	}
	tests := []struct {
		name, group, location string
		tags                  map[string]string
		code                  string
	}{
		{"bad-char", "a!b", "westus", nil, "InvalidResourceGroup"},
		{"trailing-dot", "ab.", "westus", nil, "InvalidResourceGroup"},
		{"too-long", strings.Repeat("a", 91), "westus", nil, "InvalidResourceGroup"},
		{"empty", "", "westus", nil, "InvalidResourceGroup"},
		{"no-location", "ok", "", nil, "LocationRequired"},
		{"bad-location", "ok", "west/us", nil, "InvalidLocation"},
		{"unknown-location", "ok", "mars", nil, "LocationNotAvailableForResourceGroup"},
		{"bad-tag-name", "ok", "westus", map[string]string{"a/b": "x"}, "InvalidTag"},
		{"long-tag-value", "ok", "westus", map[string]string{"a": strings.Repeat("x", 257)}, "InvalidTag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := svc.PutGroup(ctx, sub, tt.group, resources.GroupSpec{Location: tt.location, Tags: tt.tags}, "me")
			if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 || e.Code != tt.code {
				t.Fatalf("err = %v, want 400 %s", err, tt.code)
			}
		})
	}
	// A group stored in a location the list no longer has keeps working.
	legacy := resources.Group{Subscription: sub, Name: "legacy", Location: "mars"}
	if _, err := storage.NewTable[resources.Group](st, resources.KindGroup).Create(ctx, &storage.Record[resources.Group]{
		Key: "/subscriptions/" + sub + "/resourcegroups/legacy", Ref: sub, Value: legacy}); err != nil {
		t.Fatal(err)
	}
	if g, created, err := svc.PutGroup(ctx, sub, "legacy", resources.GroupSpec{Location: "Mars", Tags: map[string]string{"a": "b"}}, "me"); err != nil || created || g.Tags["a"] != "b" {
		t.Fatalf("update of a group in an unlisted location: %+v %v %v", g, created, err)
	}
	if _, err := svc.DeleteGroup(ctx, sub, "legacy"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Subscription(ctx, "not-a-guid"); gatehouse.ErrorStatus(err) != 400 {
		t.Fatalf("malformed subscription: %v", err)
	}
	if _, err := svc.Subscription(ctx, gatehouse.NewGUID()); gatehouse.ErrorStatus(err) != 404 {
		t.Fatalf("unknown subscription: %v", err)
	}
	if ok, err := svc.DeleteGroup(ctx, sub, "team-a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := svc.DeleteGroup(ctx, sub, "team-a"); ok || err != nil {
		t.Fatal(ok, err)
	}
}

// TestLocks: management locks on both backends — stored per subscription,
// found case-insensitively, and CheckLocks refusing what each level
// forbids at, below and (for deletes) above the locked scope.
func TestLocks(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		svc := resources.New(s, resources.Options{})
		const sub = "00000000-0000-0000-0000-00000000000a"
		id := func(s string) *gatehouse.ResourceID {
			t.Helper()
			r, err := gatehouse.ParseResourceID(s)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		rg := id("/subscriptions/" + sub + "/resourceGroups/Prod")
		acct := id("/subscriptions/" + sub + "/resourceGroups/Prod/providers/Microsoft.CognitiveServices/accounts/ai")
		other := id("/subscriptions/" + sub + "/resourceGroups/Dev/providers/Microsoft.CognitiveServices/accounts/ai")
		for name, spec := range map[string]resources.LockSpec{
			"":        {Level: "ReadOnly"},
			"a:b":     {Level: "ReadOnly"},
			"level":   {Level: "Sometimes"},
			"notes":   {Level: "ReadOnly", Notes: strings.Repeat("x", 513)},
			"control": {Level: "ReadOnly", Notes: "a\x00b"},
			"owner":   {Level: "ReadOnly", Owners: []string{"not-a-guid"}},
		} {
			if _, _, err := svc.PutLock(ctx, rg, name, spec, "me"); gatehouse.ErrorStatus(err) != 400 {
				t.Errorf("lock %q %+v: %v", name, spec, err)
			}
		}
		l, created, err := svc.PutLock(ctx, rg, "keep", resources.LockSpec{Level: "cannotdelete", Notes: "prod"}, "me")
		if err != nil || !created || l.Level != resources.LockCanNotDelete {
			t.Fatalf("put: %+v %v %v", l, created, err)
		}
		if _, created, err := svc.PutLock(ctx, id(strings.ToLower(rg.String())), "KEEP", resources.LockSpec{Level: "CanNotDelete", Notes: "still prod"}, "me"); err != nil || created {
			t.Fatalf("put again (another case): %v %v", created, err)
		}
		if got, err := svc.GetLock(ctx, rg, "keep"); err != nil || got.Notes != "still prod" {
			t.Fatalf("get: %+v %v", got, err)
		}
		locked := func(target *gatehouse.ResourceID, action string) bool {
			t.Helper()
			err := svc.CheckLocks(ctx, target, action)
			if err != nil && gatehouse.ErrorStatus(err) != 409 {
				t.Fatalf("CheckLocks: %v", err)
			}
			return err != nil
		}
		const (
			acctWrite     = "Microsoft.CognitiveServices/accounts/write"
			acctDelete    = "Microsoft.CognitiveServices/accounts/delete"
			groupWrite    = "Microsoft.Resources/subscriptions/resourceGroups/write"
			groupDelete   = "Microsoft.Resources/subscriptions/resourceGroups/delete"
			tagsDelete    = "Microsoft.Resources/tags/delete"
			tagNameDelete = "Microsoft.Resources/subscriptions/tagNames/delete"
		)
		subID := id("/subscriptions/" + sub)
		for _, c := range []struct {
			target *gatehouse.ResourceID
			action string
			want   bool
		}{
			{acct, acctDelete, true}, {acct, acctWrite, false}, {rg, groupDelete, true}, {rg, groupWrite, false},
			{other, acctDelete, false},
			// A delete of something the scope holds, not of the scope: the
			// lock above counts, a lock below does not.
			{acct, tagsDelete, true}, {subID, tagNameDelete, false},
			{acct, "Microsoft.CognitiveServices/accounts/read", false},
			{acct, "Microsoft.Authorization/roleAssignments/delete", false},
		} {
			if got := locked(c.target, c.action); got != c.want {
				t.Errorf("CanNotDelete on the group: %s %s locked=%v", c.target, c.action, got)
			}
		}
		if _, _, err := svc.PutLock(ctx, acct, "frozen", resources.LockSpec{Level: "ReadOnly"}, "me"); err != nil {
			t.Fatal(err)
		}
		// ReadOnly on the account: its writes; a delete of the subscription's group above it.
		if !locked(acct, acctWrite) || locked(rg, groupWrite) || !locked(id("/subscriptions/"+sub+"/resourceGroups/prod"), groupDelete) {
			t.Error("ReadOnly on the account")
		}
		// Deleting the subscription's tags is a change to it, not to the
		// account below it.
		if locked(subID, tagsDelete) || !locked(acct, tagsDelete) {
			t.Error("ReadOnly on the account: tags")
		}
		if l, err := svc.Locks(ctx, strings.ToUpper(sub)); err != nil || len(l) != 2 {
			t.Fatalf("locks: %v %v", l, err)
		}
		for _, name := range []string{"keep", "frozen"} {
			scope := rg
			if name == "frozen" {
				scope = acct
			}
			if existed, err := svc.DeleteLock(ctx, scope, name); err != nil || !existed {
				t.Fatalf("delete %s: %v %v", name, existed, err)
			}
		}
		if locked(acct, acctDelete) {
			t.Error("locked after every lock was deleted")
		}
	})
}
