package accounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestModelQuota: a catalog model's quota bounds the capacity a
// subscription deploys of it in a location, per sku, over all its
// accounts there (soft-deleted ones until purged); other locations, other
// subscriptions, other skus and deployments with an upstream of their own
// do not count; lowering a capacity is always allowed; the usage list
// shows every catalog model's quotas.
func TestModelQuota(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		kr := sealer(t)
		n := newNode(t, s, kr, nil)
		cat, err := accounts.NewCatalog([]accounts.CatalogModel{
			{Name: "gpt-4o", Quota: 10, Endpoint: "http://10.0.0.1:8000"},
			{Format: "Meta", Name: "Llama-3", Endpoint: "http://10.0.0.1:8000"},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := teststore.NewWatcher(s)
		d := accounts.NewDeployments(ctx, s, w, accounts.DeploymentOptions{Sealer: kr, Catalog: cat})
		teststore.StartWatcher(t, w, d.Load)

		create := func(subID, name, kind, location string) *accounts.Account {
			t.Helper()
			id, ok := accounts.ParseID("/subscriptions/" + subID + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/" + name)
			if !ok {
				t.Fatal(name)
			}
			a, _, err := n.Put(ctx, id, accounts.Spec{SKU: s0(), Kind: kind, Location: location}, me)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		const otherSub = "99999999-2222-3333-4444-555555555555"
		a := create(sub, "quota-a", "AIServices", "westus")
		b := create(sub, "quota-b", "OpenAI", "West US")
		east := create(sub, "quota-east", "OpenAI", "eastus")
		foreign := create(otherSub, "quota-foreign", "OpenAI", "westus")

		gpt := func(sku string, capacity int) accounts.DeploymentSpec {
			return accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, SKU: &accounts.DeploymentSKU{Name: sku, Capacity: capacity}}
		}
		put := func(acct *accounts.Account, name string, spec accounts.DeploymentSpec) error {
			_, _, err := d.PutDeployment(ctx, acct, name, spec, me)
			return err
		}
		refused := func(err error, want string) {
			t.Helper()
			var ge *gatehouse.Error
			if !errors.As(err, &ge) || ge.Status != 400 || ge.Code != "InsufficientQuota" {
				t.Fatalf("%v, want 400 InsufficientQuota", err)
			}
			if want != "" && ge.Message != want {
				t.Errorf("message %q\nwant    %q", ge.Message, want)
			}
		}
		for _, step := range []struct {
			acct *accounts.Account
			name string
			spec accounts.DeploymentSpec
		}{
			{a, "dx", gpt("Standard", 6)},
			{b, "dy", gpt("standard", 4)}, // 10: the whole quota
			{b, "dg", gpt("GlobalStandard", 5)},
			{east, "de", gpt("Standard", 10)},    // another location
			{foreign, "df", gpt("Standard", 10)}, // another subscription
			// An upstream of its own draws on no quota.
			{b, "own", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "http://10.0.0.9:8000",
				SKU: &accounts.DeploymentSKU{Name: "Standard", Capacity: 100}}},
		} {
			if err := put(step.acct, step.name, step.spec); err != nil {
				t.Fatalf("%s/%s: %v", step.acct.Name, step.name, err)
			}
		}
		refused(put(b, "dz", gpt("Standard", 1)),
			"This operation require 1 new capacity in quota Tokens Per Minute (thousands) - gpt-4o, which is bigger than the current available capacity 0. "+
				"The current quota usage is 10 and the quota limit is 10 for quota Tokens Per Minute (thousands) - gpt-4o.")
		if _, err := d.GetDeployment(ctx, b, "dz"); err == nil {
			t.Error("a refused deployment was stored")
		}
		// Replacing a deployment counts what it frees: 6 → 7 needs 1 more.
		refused(put(a, "dx", gpt("Standard", 7)),
			"This operation require 1 new capacity in quota Tokens Per Minute (thousands) - gpt-4o, which is bigger than the current available capacity 0. "+
				"The current quota usage is 10 and the quota limit is 10 for quota Tokens Per Minute (thousands) - gpt-4o.")
		if err := put(a, "dx", gpt("Standard", 3)); err != nil {
			t.Fatal(err)
		}
		// PATCH: the capacity alone, then into another sku's quota.
		if _, err := d.PatchDeployment(ctx, b, "dy", &accounts.DeploymentSKU{Capacity: 7}, nil, me); err != nil {
			t.Fatal(err)
		}
		_, err = d.PatchDeployment(ctx, b, "dy", &accounts.DeploymentSKU{Capacity: 8}, nil, me)
		refused(err, "")
		_, err = d.PatchDeployment(ctx, b, "dy", &accounts.DeploymentSKU{Name: "GlobalStandard", Capacity: 6}, nil, me)
		refused(err, "This operation require 6 new capacity in quota Tokens Per Minute (thousands) - gpt-4o - GlobalStandard, which is bigger than the current available capacity 5. "+
			"The current quota usage is 5 and the quota limit is 10 for quota Tokens Per Minute (thousands) - gpt-4o - GlobalStandard.")
		if dep, err := d.GetDeployment(ctx, b, "dy"); err != nil || dep.SKU != (accounts.DeploymentSKU{Name: "Standard", Capacity: 7}) {
			t.Errorf("after refused patches: %+v %v", dep, err)
		}

		usages := func(location string) map[string]accounts.QuotaUsage {
			t.Helper()
			us, err := d.QuotaUsages(ctx, sub, location)
			if err != nil {
				t.Fatal(err)
			}
			if len(us) != 2*len(accounts.ModelSKUs) {
				t.Errorf("%d usages: %+v", len(us), us)
			}
			out := map[string]accounts.QuotaUsage{}
			for _, u := range us {
				out[u.Name] = u
			}
			return out
		}
		us := usages("West US")
		if u := us["OpenAI.Standard.gpt-4o"]; u != (accounts.QuotaUsage{Name: "OpenAI.Standard.gpt-4o", Model: "gpt-4o", SKU: "Standard",
			LocalizedName: "Tokens Per Minute (thousands) - gpt-4o", Current: 10, Limit: 10}) {
			t.Errorf("standard: %+v", u)
		}
		if u := us["OpenAI.GlobalStandard.gpt-4o"]; u.Current != 5 || u.Limit != 10 ||
			u.LocalizedName != "Tokens Per Minute (thousands) - gpt-4o - GlobalStandard" {
			t.Errorf("global: %+v", u)
		}
		if u := us["Meta.Standard.Llama-3"]; u.Current != 0 || u.Limit != accounts.UnlimitedQuota {
			t.Errorf("a model without a quota: %+v", u)
		}
		if u := usages("eastus")["OpenAI.Standard.gpt-4o"]; u.Current != 10 {
			t.Errorf("east: %+v", u)
		}
		if _, err := d.QuotaUsages(ctx, sub, " "); err == nil {
			t.Error("a blank location was taken")
		}

		// A soft-deleted account's deployments count until it is purged.
		aid, _ := accounts.ParseID(a.ID)
		if _, err := n.Delete(ctx, aid); err != nil {
			t.Fatal(err)
		}
		if u := usages("westus")["OpenAI.Standard.gpt-4o"]; u.Current != 10 {
			t.Errorf("after a soft delete: %+v", u)
		}
		refused(put(b, "dz", gpt("Standard", 1)), "")
		if err := n.Purge(ctx, aid, "westus"); err != nil {
			t.Fatal(err)
		}
		if u := usages("westus")["OpenAI.Standard.gpt-4o"]; u.Current != 7 {
			t.Errorf("after the purge: %+v", u)
		}
		if err := put(b, "dz", gpt("Standard", 3)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNoQuotas: without a catalog, a location's usage list is empty.
func TestNoQuotas(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		w := teststore.NewWatcher(s)
		d := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: sealer(t)})
		teststore.StartWatcher(t, w, d.Load)
		if us, err := d.QuotaUsages(t.Context(), sub, "westus"); err != nil || us == nil || len(us) != 0 {
			t.Errorf("%+v %v", us, err)
		}
	})
}
