package armtest

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// testSDKPermissions drives armauthorization's PermissionsClient: a caller
// reads its own permissions at a resource group and at a resource — a block
// per role it holds there, the closest assignment's first; nothing where it
// holds none (and then nothing about what exists); 404 for a resource that
// does not exist where it holds a role.
func testSDKPermissions(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-permissions")
	createAccount(t, e, group, "perm-acct", "TextAnalytics")
	oid, cred := e.principal(t, "perm-reader")
	perms, err := armauthorization.NewPermissionsClient(e.sub, cred, e.armOptions())
	must(t, err)
	list := func(p interface{ More() bool }, next func() ([]*armauthorization.Permission, error)) ([]*armauthorization.Permission, error) {
		var out []*armauthorization.Permission
		for p.More() {
			page, err := next()
			if err != nil {
				return nil, err
			}
			out = append(out, page...)
		}
		return out, nil
	}
	atGroup := func(g string) ([]*armauthorization.Permission, error) {
		p := perms.NewListForResourceGroupPager(g, nil)
		return list(p, func() ([]*armauthorization.Permission, error) {
			page, err := p.NextPage(ctx)
			return page.Value, err
		})
	}
	atAccount := func(name string) ([]*armauthorization.Permission, error) {
		p := perms.NewListForResourcePager(group, "Microsoft.CognitiveServices", "", "accounts", name, nil)
		return list(p, func() ([]*armauthorization.Permission, error) {
			page, err := p.NextPage(ctx)
			return page.Value, err
		})
	}

	// No role: an empty list, for a group that exists and one that does not.
	for _, g := range []string{group, "sdk-no-such-group"} {
		if got, err := atGroup(g); err != nil || len(got) != 0 {
			t.Fatalf("without a role, at %s: %v %v", g, got, err)
		}
	}

	assign := func(scope, role, principal string, typ armauthorization.PrincipalType) {
		t.Helper()
		_, err := e.assign.Create(ctx, scope, gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
			Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: to.Ptr(roleDefID(e.sub, role)), PrincipalID: to.Ptr(principal),
				PrincipalType: to.Ptr(typ)}}, nil)
		must(t, err)
	}
	sp := armauthorization.PrincipalTypeServicePrincipal
	groupScope := "subscriptions/" + e.sub + "/resourceGroups/" + group
	assign(groupScope, authz.RoleReader, oid, sp)
	assign(groupScope+"/providers/Microsoft.CognitiveServices/accounts/perm-acct", authz.RoleCognitiveServicesUser, oid, sp)

	got, err := atGroup(group)
	if err != nil || len(got) != 1 || !slices.Equal(vals(got[0].Actions), []string{"*/read"}) || len(got[0].DataActions) != 0 {
		t.Fatalf("Reader at the group: %v %v", got, err)
	}
	got, err = atAccount("perm-acct")
	if err != nil || len(got) != 2 || len(got[0].DataActions) == 0 || !slices.Contains(vals(got[0].DataActions), "Microsoft.CognitiveServices/*") ||
		!slices.Equal(vals(got[1].Actions), []string{"*/read"}) {
		t.Fatalf("at the account (Cognitive Services User, then Reader): %v %v", got, err)
	}
	// A role held through a directory group counts too.
	g, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "perm-taggers", MailNickname: "perm-taggers"})
	must(t, err)
	_, err = e.Directory.AddGroupMember(ctx, g.ObjectID, oid)
	must(t, err)
	assign(groupScope, authz.RoleTagContributor, g.ObjectID, armauthorization.PrincipalTypeGroup)
	if got, err := atGroup(group); err != nil || len(got) != 2 {
		t.Fatalf("Reader and, through a group, Tag Contributor: %v %v", got, err)
	}
	// A role at the group, a resource that does not exist: ARM's 404.
	_, err = atAccount("perm-no-such-acct")
	if re, ok := errors.AsType[*azcore.ResponseError](err); !ok || re.StatusCode != http.StatusNotFound {
		t.Fatalf("a missing resource: %v", err)
	}
	// A role that cannot read (Key Vault Secrets User: data actions only)
	// learns nothing about names: its permissions for any name, no 404.
	dataOID, dataCred := e.principal(t, "perm-data-only")
	assign(groupScope, authz.RoleKeyVaultSecretsUser, dataOID, sp)
	dataPerms, err := armauthorization.NewPermissionsClient(e.sub, dataCred, e.armOptions())
	must(t, err)
	for _, name := range []string{"perm-acct", "perm-no-such-acct"} {
		page, err := dataPerms.NewListForResourcePager(group, "Microsoft.CognitiveServices", "", "accounts", name, nil).NextPage(ctx)
		if err != nil || len(page.Value) != 1 || len(page.Value[0].Actions) != 0 || len(page.Value[0].DataActions) == 0 {
			t.Fatalf("a data-only role at %s: %v %v", name, page.Value, err)
		}
	}
	// The subscription's Owner (the bootstrap principal): everything.
	owner, err := armauthorization.NewPermissionsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	page, err := owner.NewListForResourceGroupPager(group, nil).NextPage(ctx)
	if err != nil || len(page.Value) == 0 || !slices.Contains(vals(page.Value[0].Actions), "*") {
		t.Fatalf("the Owner's permissions: %v %v", page.Value, err)
	}
}

// vals are the strings a slice of pointers points to.
func vals(ps []*string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, *p)
	}
	return out
}
