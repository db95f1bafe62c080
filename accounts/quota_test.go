package accounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/resources"
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

		// What is left of each quota, by location and sku.
		capacities := func(location, format, name, version string) map[string]int {
			t.Helper()
			cs, err := d.ModelCapacities(ctx, sub, location, format, name, version)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]int{}
			for _, c := range cs {
				out[c.Location+"/"+c.SKU] = c.Available
			}
			return out
		}
		all := capacities("", "openai", "GPT-4o", "")
		if len(all) != len(resources.LocationNames())*len(accounts.ModelSKUs) || all["westus/Standard"] != 0 || all["westus/GlobalStandard"] != 5 ||
			all["eastus/Standard"] != 0 || all["eastus/GlobalStandard"] != 10 || all["northeurope/Standard"] != 10 {
			t.Errorf("every location: %v", all)
		}
		if got := capacities("West US", "OpenAI", "gpt-4o", ""); len(got) != 2 || got["westus/GlobalStandard"] != 5 {
			t.Errorf("westus: %v", got)
		}
		if cs, err := d.ModelCapacities(ctx, sub, "eastus", "openai", "GPT-4O", "2024-05-13"); err != nil || len(cs) == 0 ||
			cs[0] != (accounts.ModelCapacity{Location: "eastus", SKU: "Standard", Format: "OpenAI", Name: "gpt-4o", Version: "2024-05-13"}) {
			t.Errorf("in the catalog's spelling: %+v %v", cs, err)
		}
		if got := capacities("westus", "Meta", "Llama-3", "1"); got["westus/Standard"] != accounts.UnlimitedQuota {
			t.Errorf("a model without a quota: %v", got)
		}
		for _, q := range [][4]string{{"westus", "OpenAI", "gpt-5", ""}, {"nowhere", "OpenAI", "gpt-4o", ""}, {"", "Meta", "gpt-4o", ""}} {
			if got := capacities(q[0], q[1], q[2], q[3]); len(got) != 0 {
				t.Errorf("%v: %v", q, got)
			}
		}
		if _, err := d.ModelCapacities(ctx, sub, "west/us", "OpenAI", "gpt-4o", ""); err == nil {
			t.Error("a malformed location was taken")
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

// TestEstimateCapacity: a workload's capacity is the units of its tokens
// a minute (1,000 a unit) or of its requests a minute (6 a unit),
// whichever is more; what the catalog does not offer, a sku the model is
// not offered in and workloads out of bounds are refused with 400s.
func TestEstimateCapacity(t *testing.T) {
	cat, err := accounts.NewCatalog([]accounts.CatalogModel{{Name: "gpt-4o", Versions: []string{"2024-08-06"}, Endpoint: "http://10.0.0.1:8000"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := teststore.SQLite(t)
	d := accounts.NewDeployments(t.Context(), s, teststore.NewWatcher(s), accounts.DeploymentOptions{Sealer: sealer(t), Catalog: cat})
	w := func(rpm, prompt, gen int64) accounts.CapacityWorkload {
		return accounts.CapacityWorkload{RequestsPerMinute: rpm, PromptTokens: prompt, GeneratedTokens: gen}
	}
	for _, tt := range []struct {
		ws                []accounts.CapacityWorkload
		value, deployable int
	}{
		{[]accounts.CapacityWorkload{w(10, 30, 50), w(20, 60, 20)}, 5, 5}, // 2,400 tokens and 30 requests: 3 and 5 units
		{[]accounts.CapacityWorkload{w(600, 1, 0)}, 100, 100},             // 600 tokens and 600 requests: 1 and 100
		{[]accounts.CapacityWorkload{w(1, 1000, 1000)}, 2, 2},             // 2,000 tokens and 1 request: 2 and 1
		{[]accounts.CapacityWorkload{w(0, 100, 100)}, 0, 1},
	} {
		est, err := d.EstimateCapacity("", "GPT-4o", "", "standard", tt.ws)
		if err != nil {
			t.Fatal(err)
		}
		if est.Value != tt.value || est.Deployable != tt.deployable || est.Name != "gpt-4o" || est.Version != "2024-08-06" || est.SKU != "Standard" {
			t.Errorf("%+v: %+v", tt.ws, est)
		}
	}
	for _, tt := range []struct {
		name, version, sku string
		ws                 []accounts.CapacityWorkload
		code               string
	}{
		{"gpt-5", "", "Standard", []accounts.CapacityWorkload{w(1, 1, 1)}, "DeploymentModelNotSupported"},
		{"gpt-4o", "0613", "Standard", []accounts.CapacityWorkload{w(1, 1, 1)}, "DeploymentModelNotSupported"},
		{"gpt-4o", "", "ProvisionedManaged", []accounts.CapacityWorkload{w(1, 1, 1)}, "InvalidResourceProperties"},
		{"gpt-4o", "", "Standard", nil, "InvalidRequestContent"},
		{"gpt-4o", "", "Standard", []accounts.CapacityWorkload{w(-1, 1, 1)}, "InvalidRequestContent"},
		{"gpt-4o", "", "Standard", []accounts.CapacityWorkload{w(1, 1<<40, 1)}, "InvalidRequestContent"},
		{"gpt-4o", "", "Standard", make([]accounts.CapacityWorkload, 101), "InvalidRequestContent"},
	} {
		_, err := d.EstimateCapacity("OpenAI", tt.name, tt.version, tt.sku, tt.ws)
		var ge *gatehouse.Error
		if !errors.As(err, &ge) || ge.Status != 400 || ge.Code != tt.code {
			t.Errorf("%s %s %s %d workloads: %v, want 400 %s", tt.name, tt.version, tt.sku, len(tt.ws), err, tt.code)
		}
	}
}
