package armtest

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// testSDKGroupsAndVaults drives resource groups, the generic resource list,
// the Tags resource and vaults with armresources and armkeyvault: what a Go
// program provisioning its own resources calls, long-running operations
// (a group's delete, a vault's create and purge) included.
func testSDKGroupsAndVaults(t *testing.T, e *env) {
	ctx := t.Context()
	groups, err := armresources.NewResourceGroupsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	const group = "sdk-resources"
	g, err := groups.CreateOrUpdate(ctx, group, armresources.ResourceGroup{Location: ptr("westus"),
		Tags: map[string]*string{"env": ptr("sdk")}}, nil)
	if err != nil || *g.Name != group || *g.Location != "westus" || *g.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("ResourceGroups.CreateOrUpdate: %+v %v", g, err)
	}
	if ex, err := groups.CheckExistence(ctx, group, nil); err != nil || !ex.Success {
		t.Fatalf("CheckExistence: %+v %v", ex, err)
	}
	if ex, err := groups.CheckExistence(ctx, "sdk-no-such-group", nil); err != nil || ex.Success {
		t.Fatalf("CheckExistence of a missing group: %+v %v", ex, err)
	}
	upd, err := groups.Update(ctx, group, armresources.ResourceGroupPatchable{Tags: map[string]*string{"env": ptr("sdk"), "team": ptr("go")}}, nil)
	if err != nil || len(upd.Tags) != 2 || *upd.Tags["team"] != "go" {
		t.Fatalf("ResourceGroups.Update: %+v %v", upd.Tags, err)
	}
	var names []string
	for pager := groups.NewListPager(&armresources.ResourceGroupsClientListOptions{Filter: ptr("tagName eq 'team' and tagValue eq 'go'")}); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, rg := range page.Value {
			names = append(names, *rg.Name)
		}
	}
	if !slices.Equal(names, []string{group}) {
		t.Fatalf("ResourceGroups.NewListPager with a tag filter: %v", names)
	}

	// A vault: created through the long-running operation's poller.
	vaults, err := armkeyvault.NewVaultsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	const kv = "sdk-vault-1"
	avail, err := vaults.CheckNameAvailability(ctx, armkeyvault.VaultCheckNameAvailabilityParameters{Name: ptr(kv), Type: ptr("Microsoft.KeyVault/vaults")}, nil)
	if err != nil || avail.NameAvailable == nil || !*avail.NameAvailable {
		t.Fatalf("Vaults.CheckNameAvailability: %+v %v", avail, err)
	}
	poller, err := vaults.BeginCreateOrUpdate(ctx, group, kv, armkeyvault.VaultCreateOrUpdateParameters{Location: ptr("westus"),
		Properties: &armkeyvault.VaultProperties{TenantID: ptr(e.Directory.DefaultTenant()),
			SKU:                     &armkeyvault.SKU{Family: ptr(armkeyvault.SKUFamilyA), Name: ptr(armkeyvault.SKUNameStandard)},
			EnableRbacAuthorization: ptr(true), SoftDeleteRetentionInDays: ptr[int32](7)}}, nil)
	must(t, err)
	created, err := poller.PollUntilDone(ctx, nil)
	if err != nil || *created.Name != kv || created.Properties.VaultURI == nil || *created.Properties.VaultURI != "https://"+kv+".vault."+e.Host+"/" {
		t.Fatalf("Vaults.BeginCreateOrUpdate: %+v %v", created.Vault, err)
	}
	got, err := vaults.Get(ctx, group, kv, nil)
	if err != nil || *got.Properties.SoftDeleteRetentionInDays != 7 || !*got.Properties.EnableRbacAuthorization {
		t.Fatalf("Vaults.Get: %+v %v", got.Properties, err)
	}
	patched, err := vaults.Update(ctx, group, kv, armkeyvault.VaultPatchParameters{Tags: map[string]*string{"app": ptr("web")},
		Properties: &armkeyvault.VaultPatchProperties{PublicNetworkAccess: ptr("Disabled")}}, nil)
	if err != nil || *patched.Tags["app"] != "web" || *patched.Properties.PublicNetworkAccess != "Disabled" {
		t.Fatalf("Vaults.Update: %+v %v", patched.Vault, err)
	}
	// What the server does not do is refused, not dropped.
	_, err = vaults.Update(ctx, group, kv, armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{EnabledForDeployment: ptr(true)}}, nil)
	if !isCode(err, http.StatusBadRequest, "BadRequest") {
		t.Fatalf("Vaults.Update enabledForDeployment: %v", err)
	}
	if avail, err := vaults.CheckNameAvailability(ctx, armkeyvault.VaultCheckNameAvailabilityParameters{Name: ptr(kv), Type: ptr("Microsoft.KeyVault/vaults")}, nil); err != nil || *avail.NameAvailable {
		t.Fatalf("CheckNameAvailability of a taken name: %+v %v", avail, err)
	}
	var listed []string
	for pager := vaults.NewListByResourceGroupPager(group, nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, v := range page.Value {
			listed = append(listed, *v.Name)
		}
	}
	if !slices.Equal(listed, []string{kv}) {
		t.Fatalf("Vaults.NewListByResourceGroupPager: %v", listed)
	}
	// The subscription-wide list goes through the generic resource list
	// (api-version 2015-11-01, a resourceType filter).
	listed = nil
	for pager := vaults.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, v := range page.Value {
			listed = append(listed, *v.Name)
		}
	}
	if !slices.Contains(listed, kv) {
		t.Fatalf("Vaults.NewListPager: %v", listed)
	}

	// The generic list and the Tags resource see the vault.
	resources, err := armresources.NewClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	var types []string
	for pager := resources.NewListByResourceGroupPager(group, nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, r := range page.Value {
			types = append(types, *r.Type)
		}
	}
	if !slices.Equal(types, []string{"Microsoft.KeyVault/vaults"}) {
		t.Fatalf("Client.NewListByResourceGroupPager: %v", types)
	}
	// $top is a page size: the pager follows the nextLinks to the end, each
	// page at most $top long, with the $filter kept.
	ids, err := armmsi.NewUserAssignedIdentitiesClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	for _, name := range []string{"sdk-id-a", "sdk-id-b", "sdk-id-c"} {
		_, err := ids.CreateOrUpdate(ctx, group, name, armmsi.Identity{Location: ptr("westus")}, nil)
		must(t, err)
	}
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"sdk-id-a", "sdk-id-b", "sdk-id-c", kv}},
		{"resourceType eq 'Microsoft.ManagedIdentity/userAssignedIdentities'", []string{"sdk-id-a", "sdk-id-b", "sdk-id-c"}},
	} {
		var got []string
		pages := 0
		opts := &armresources.ClientListByResourceGroupOptions{Top: ptr[int32](2)}
		if tt.filter != "" {
			opts.Filter = &tt.filter
		}
		for pager := resources.NewListByResourceGroupPager(group, opts); pager.More(); pages++ {
			page, err := pager.NextPage(ctx)
			must(t, err)
			if len(page.Value) > 2 {
				t.Fatalf("a page of %d with $top 2", len(page.Value))
			}
			for _, r := range page.Value {
				got = append(got, *r.Name)
			}
		}
		if slices.Sort(got); !slices.Equal(got, tt.want) || pages != 2 {
			t.Fatalf("$top 2, $filter %q: %v in %d pages", tt.filter, got, pages)
		}
	}
	for _, name := range []string{"sdk-id-a", "sdk-id-b", "sdk-id-c"} {
		_, err := ids.Delete(ctx, group, name, nil)
		must(t, err)
	}
	for _, top := range []int32{0, 1001} {
		_, err := resources.NewListByResourceGroupPager(group, &armresources.ClientListByResourceGroupOptions{Top: &top}).NextPage(ctx)
		if re, ok := errors.AsType[*azcore.ResponseError](err); !ok || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "InvalidTopInQueryString" {
			t.Fatalf("$top %d: %v", top, err)
		}
	}

	// HEAD on a resource (CheckExistence*): 204 when it exists, 404 when not.
	if ex, err := resources.CheckExistenceByID(ctx, *created.ID, "2023-07-01", nil); err != nil || !ex.Success {
		t.Fatalf("Client.CheckExistenceByID: %+v %v", ex, err)
	}
	if ex, err := resources.CheckExistence(ctx, group, "Microsoft.KeyVault", "", "vaults", "sdk-no-such-vault", "2023-07-01", nil); err != nil || ex.Success {
		t.Fatalf("Client.CheckExistence of a missing vault: %+v %v", ex, err)
	}
	tags, err := armresources.NewTagsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	tr, err := tags.GetAtScope(ctx, *created.ID, nil)
	if err != nil || tr.Properties == nil || *tr.Properties.Tags["app"] != "web" {
		t.Fatalf("Tags.GetAtScope: %+v %v", tr, err)
	}

	// Delete is a soft delete; the deleted vault is found by name and
	// location, and purged through its poller.
	if _, err := vaults.Delete(ctx, group, kv, nil); err != nil {
		t.Fatalf("Vaults.Delete: %v", err)
	}
	if ex, err := resources.CheckExistenceByID(ctx, *created.ID, "2023-07-01", nil); err != nil || ex.Success {
		t.Fatalf("Client.CheckExistenceByID of a deleted vault: %+v %v", ex, err)
	}
	deleted, err := vaults.GetDeleted(ctx, kv, "westus", nil)
	if err != nil || *deleted.Name != kv || deleted.Properties.ScheduledPurgeDate == nil {
		t.Fatalf("Vaults.GetDeleted: %+v %v", deleted, err)
	}
	purge, err := vaults.BeginPurgeDeleted(ctx, kv, "westus", nil)
	must(t, err)
	if _, err := purge.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("Vaults.BeginPurgeDeleted: %v", err)
	}
	var re *azcore.ResponseError
	if _, err := vaults.GetDeleted(ctx, kv, "westus", nil); !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("GetDeleted after the purge: %v", err)
	}

	// The group goes with its long-running delete.
	del, err := groups.BeginDelete(ctx, group, nil)
	must(t, err)
	if _, err := del.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("ResourceGroups.BeginDelete: %v", err)
	}
	_, err = groups.Get(ctx, group, nil)
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("Get after the delete: %v", err)
	}
}
