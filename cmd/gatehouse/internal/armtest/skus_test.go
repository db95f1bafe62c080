package armtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// testSKUsAndLocations: what the server lists is what a create accepts.
// Every SKU the SKU list offers for a kind is available by
// checkSkuAvailability and creates an account, in every location the
// subscription's location list names (any case, spaces ignored, as ARM
// compares them); a SKU the kind does not have is refused with Azure's 400
// InvalidSkuId, on create and on update, and so is a create without one; a
// location outside the list is 400 LocationNotAvailableForResourceType
// (for a group: LocationNotAvailableForResourceGroup). An account's own
// SKU list is its kind's.
func testSKUsAndLocations(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "skus")
	var locations struct {
		Value []struct{ Name, DisplayName, RegionalDisplayName string }
	}
	r := e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "/locations?api-version=2022-12-01"})
	r.json(t, &locations)
	var names []string
	for _, l := range locations.Value {
		names = append(names, l.Name)
	}
	if r.status != 200 || !slices.Contains(names, "westus") || !slices.Contains(names, "local") || locations.Value[0].DisplayName == "" {
		t.Fatalf("locations: %d %+v", r.status, locations)
	}

	skusClient, err := armcognitiveservices.NewResourceSKUsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	offered := map[string][]string{} // kind → SKU names
	for pager := skusClient.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, s := range page.Value {
			offered[*s.Kind] = append(offered[*s.Kind], *s.Name)
			var locs []string
			for _, l := range s.Locations {
				locs = append(locs, strings.ToLower(*l))
			}
			if !slices.Equal(locs, names) {
				t.Errorf("SKU %s of %s is offered in %v, the subscription's locations are %v", *s.Name, *s.Kind, locs, names)
			}
		}
	}
	if !slices.Equal(offered["TextAnalytics"], []string{"F0", "S", "S0", "S1", "S2", "S3", "S4"}) || !slices.Equal(offered["OpenAI"], []string{"S0"}) {
		t.Fatalf("the SKU list: %v", offered)
	}
	mgmt, err := armcognitiveservices.NewManagementClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	check := func(kind, location string, skus ...string) []bool {
		t.Helper()
		var ps []*string
		for _, s := range skus {
			ps = append(ps, ptr(s))
		}
		r, err := mgmt.CheckSKUAvailability(ctx, location, armcognitiveservices.CheckSKUAvailabilityParameter{
			Kind: ptr(kind), SKUs: ps, Type: ptr("Microsoft.CognitiveServices/accounts")}, nil)
		must(t, err)
		var out []bool
		for _, v := range r.Value {
			out = append(out, *v.SKUAvailable)
		}
		return out
	}
	create := func(name, kind, location string, sku *armcognitiveservices.SKU) (*armcognitiveservices.Account, error) {
		t.Helper()
		poller, err := e.accounts.BeginCreate(ctx, group, name, armcognitiveservices.Account{Kind: ptr(kind), Location: ptr(location), SKU: sku}, nil)
		if err != nil {
			return nil, err
		}
		resp, err := poller.PollUntilDone(ctx, nil)
		return &resp.Account, err
	}
	for kind, skus := range offered {
		if got := check(kind, "westus", skus...); slices.Contains(got, false) {
			t.Errorf("checkSkuAvailability of the listed SKUs of %s: %v", kind, got)
		}
		if got := check(kind, "mars", skus[0]); !slices.Equal(got, []bool{false}) {
			t.Errorf("checkSkuAvailability of %s in an unlisted location: %v", kind, got)
		}
	}
	if got := check("OpenAI", "westus", "S0", "F0", "ZZ9"); !slices.Equal(got, []bool{true, false, false}) {
		t.Errorf("checkSkuAvailability of OpenAI S0, F0, ZZ9: %v", got)
	}
	// Each SKU of Language creates an account, in a location given as its
	// display name; each is then gone again.
	for i, s := range offered["TextAnalytics"] {
		loc := locations.Value[i%len(locations.Value)]
		a, err := create("lang-"+strings.ToLower(s), "TextAnalytics", loc.DisplayName, &armcognitiveservices.SKU{Name: ptr(s)})
		if err != nil || *a.SKU.Name != s || *a.Location != loc.Name {
			t.Fatalf("create TextAnalytics %s in %q: %+v %v", s, loc.DisplayName, a, err)
		}
		if i == 0 {
			continue // kept for the updates below
		}
		del, err := e.accounts.BeginDelete(ctx, group, "lang-"+strings.ToLower(s), nil)
		if err == nil {
			_, err = del.PollUntilDone(ctx, nil)
		}
		must(t, err)
	}
	for _, tt := range []struct {
		name, kind, location string
		sku                  *armcognitiveservices.SKU
		status               int
		code                 string
	}{
		{"sku-unknown", "TextAnalytics", "westus", &armcognitiveservices.SKU{Name: ptr("ZZ9")}, 400, "InvalidSkuId"},
		{"sku-of-another-kind", "OpenAI", "westus", &armcognitiveservices.SKU{Name: ptr("F0")}, 400, "InvalidSkuId"},
		{"sku-missing", "OpenAI", "westus", nil, 400, "InvalidSkuId"},
		{"location-unknown", "TextAnalytics", "mars", &armcognitiveservices.SKU{Name: ptr("S0")}, 400, "LocationNotAvailableForResourceType"},
		{"location-unknown-display-form", "TextAnalytics", "West Mars", &armcognitiveservices.SKU{Name: ptr("S0")}, 400, "LocationNotAvailableForResourceType"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := create("refused", tt.kind, tt.location, tt.sku); !isCode(err, tt.status, tt.code) {
				t.Fatalf("%v, want %d %s", err, tt.status, tt.code)
			}
			if _, err := e.accounts.Get(ctx, group, "refused", nil); !isStatus(err, 404) {
				t.Fatalf("a refused create left an account: %v", err)
			}
		})
	}

	// Updates: to another SKU of the kind (any case), not to one it lacks.
	kept := "lang-f0"
	upd := func(sku string) (*armcognitiveservices.Account, error) {
		poller, err := e.accounts.BeginUpdate(ctx, group, kept, armcognitiveservices.Account{SKU: &armcognitiveservices.SKU{Name: ptr(sku)}}, nil)
		if err != nil {
			return nil, err
		}
		resp, err := poller.PollUntilDone(ctx, nil)
		return &resp.Account, err
	}
	if a, err := upd("s1"); err != nil || *a.SKU.Name != "S1" {
		t.Fatalf("update to S1: %+v %v", a, err)
	}
	if _, err := upd("P1"); !isCode(err, 400, "InvalidSkuId") {
		t.Fatalf("update to P1: %v", err)
	}
	// A PUT without a SKU keeps the account's.
	if a, err := create(kept, "TextAnalytics", locations.Value[0].Name, nil); err != nil || *a.SKU.Name != "S1" {
		t.Fatalf("PUT without a SKU: %+v %v", a, err)
	}
	own, err := e.accounts.ListSKUs(ctx, group, kept, nil)
	must(t, err)
	var ownNames []string
	for _, s := range own.Value {
		ownNames = append(ownNames, *s.SKU.Name)
	}
	if !slices.Equal(ownNames, offered["TextAnalytics"]) {
		t.Errorf("the account's SKUs: %v", ownNames)
	}

	// Resource groups: the same locations.
	groups, err := armresources.NewResourceGroupsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	if g, err := groups.CreateOrUpdate(ctx, "skus-display-location", armresources.ResourceGroup{Location: ptr("West US 2")}, nil); err != nil || *g.Location != "westus2" {
		t.Fatalf("group in West US 2: %+v %v", g, err)
	}
	if _, err := groups.CreateOrUpdate(ctx, "skus-mars", armresources.ResourceGroup{Location: ptr("mars")}, nil); !isCode(err, 400, "LocationNotAvailableForResourceGroup") {
		t.Fatalf("group on mars: %v", err)
	}
	if _, err := groups.Get(ctx, "skus-mars", nil); !isStatus(err, 404) {
		t.Fatalf("the refused group exists: %v", err)
	}
}
