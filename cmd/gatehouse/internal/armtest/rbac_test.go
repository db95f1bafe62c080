package armtest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
)

func roleDefID(sub, role string) string {
	return "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role
}

// assign creates a role assignment with the bootstrap principal's SDK
// client and returns its name.
func assign(t *testing.T, e *env, scope, role, principal string) string {
	t.Helper()
	name := gatehouse.NewGUID()
	_, err := e.assign.Create(t.Context(), scope, name, armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: ptr(roleDefID(e.sub, role)), PrincipalID: ptr(principal),
			PrincipalType: ptr(armauthorization.PrincipalTypeServicePrincipal),
		}}, nil)
	if err != nil {
		t.Fatalf("assign %s at %s: %v", role, scope, err)
	}
	return name
}

func testSDKRoleAssignments(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-rbac")
	createAccount(t, e, group, "rbac-acct", "AIServices")
	oid, _ := e.principal(t, "rbac-assignee")
	subScope := "subscriptions/" + e.sub // inserted unescaped, no leading slash, as the SDK examples do
	groupScope := subScope + "/resourceGroups/" + group
	acctScope := groupScope + "/providers/Microsoft.CognitiveServices/accounts/rbac-acct"
	childScope := acctScope + "/deployments/chat"
	scopes := map[string]string{"subscription": subScope, "group": groupScope, "resource": acctScope, "child-resource": childScope}
	for level, scope := range scopes {
		t.Run(level, func(t *testing.T) {
			name := gatehouse.NewGUID()
			created, err := e.assign.Create(ctx, scope, name, armauthorization.RoleAssignmentCreateParameters{
				Properties: &armauthorization.RoleAssignmentProperties{
					RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleReader)), PrincipalID: ptr(oid),
					PrincipalType: ptr(armauthorization.PrincipalTypeServicePrincipal), Description: ptr("level " + level),
				}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantID := "/" + scope + "/providers/Microsoft.Authorization/roleAssignments/" + name
			p := created.Properties
			if *created.ID != wantID || *created.Name != name || *created.Type != "Microsoft.Authorization/roleAssignments" ||
				*p.PrincipalID != oid || *p.Scope != "/"+scope || !strings.EqualFold(*p.RoleDefinitionID, roleDefID(e.sub, authz.RoleReader)) ||
				*p.Description != "level "+level || p.CreatedOn == nil || *p.PrincipalType != armauthorization.PrincipalTypeServicePrincipal {
				t.Fatalf("created: %+v %+v", created.RoleAssignment, p)
			}
			// Creating it again is idempotent.
			if _, err := e.assign.Create(ctx, scope, name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
				RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleReader)), PrincipalID: ptr(oid), Description: ptr("level " + level)}}, nil); err != nil {
				t.Fatalf("repeat: %v", err)
			}
			got, err := e.assign.Get(ctx, scope, name, nil)
			if err != nil || *got.ID != wantID {
				t.Fatalf("Get: %+v %v", got, err)
			}
			byID, err := e.assign.GetByID(ctx, wantID, nil)
			if err != nil || *byID.Name != name {
				t.Fatalf("GetByID: %+v %v", byID, err)
			}
			found := false
			pager := e.assign.NewListForScopePager(scope, &armauthorization.RoleAssignmentsClientListForScopeOptions{
				Filter: ptr("atScope() and principalId eq '" + oid + "'")})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range page.Value {
					found = found || *a.Name == name
					if *a.Properties.PrincipalID != oid {
						t.Fatalf("filter let through %s", *a.Properties.PrincipalID)
					}
				}
			}
			if !found {
				t.Fatal("ListForScope(atScope() and principalId eq) misses the assignment")
			}
			del, err := e.assign.Delete(ctx, scope, name, nil)
			if err != nil || *del.Name != name {
				t.Fatalf("Delete: %+v %v", del, err)
			}
			if _, err := e.assign.Get(ctx, scope, name, nil); !isCode(err, 404, "RoleAssignmentNotFound") {
				t.Fatalf("Get after delete: %v", err)
			}
			if _, err := e.assign.Delete(ctx, scope, name, nil); err != nil {
				t.Fatalf("second delete (204): %v", err)
			}
		})
	}
	// The per-subscription, per-group and per-resource list routes.
	keep := assign(t, e, acctScope, authz.RoleCognitiveServicesUser, oid)
	count := func(next func() ([]*armauthorization.RoleAssignment, bool, error)) (n int) {
		for {
			page, more, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				if *a.Name == keep {
					n++
				}
			}
			if !more {
				return n
			}
		}
	}
	subPager := e.assign.NewListForSubscriptionPager(nil)
	rgPager := e.assign.NewListForResourceGroupPager(group, nil)
	resPager := e.assign.NewListForResourcePager(group, "Microsoft.CognitiveServices", "accounts", "rbac-acct", nil)
	for name, next := range map[string]func() ([]*armauthorization.RoleAssignment, bool, error){
		"subscription": func() ([]*armauthorization.RoleAssignment, bool, error) {
			p, err := subPager.NextPage(ctx)
			return p.Value, subPager.More(), err
		},
		"group": func() ([]*armauthorization.RoleAssignment, bool, error) {
			p, err := rgPager.NextPage(ctx)
			return p.Value, rgPager.More(), err
		},
		"resource": func() ([]*armauthorization.RoleAssignment, bool, error) {
			p, err := resPager.NextPage(ctx)
			return p.Value, resPager.More(), err
		},
	} {
		if count(next) != 1 {
			t.Errorf("list for %s misses the account's assignment", name)
		}
	}
	// ARM's conflicts.
	_, err := e.assign.Create(ctx, acctScope, gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleCognitiveServicesUser)), PrincipalID: ptr(oid)}}, nil)
	if !isCode(err, 409, "RoleAssignmentExists") {
		t.Fatalf("duplicate grant: %v", err)
	}
	_, err = e.assign.Create(ctx, acctScope, gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleReader)), PrincipalID: ptr(gatehouse.NewGUID())}}, nil)
	if !isCode(err, 400, "PrincipalNotFound") {
		t.Fatalf("unknown principal: %v", err)
	}
	// A principalType that is not the directory's (azure-mgmt-authorization
	// sends User unless told) is refused, as ARM refuses it.
	_, err = e.assign.Create(ctx, acctScope, gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleReader)), PrincipalID: ptr(oid),
			PrincipalType: ptr(armauthorization.PrincipalTypeUser)}}, nil)
	if !isCode(err, 400, "UnmatchedPrincipalType") || !strings.Contains(err.Error(), "has type 'ServicePrincipal' , which is different from specified PrincipalType 'User'") {
		t.Fatalf("a service principal as a User: %v", err)
	}
}

func testSDKRoleDefinitions(t *testing.T, e *env) {
	ctx := t.Context()
	scope := "/subscriptions/" + e.sub
	pager := e.roles.NewListPager(scope, &armauthorization.RoleDefinitionsClientListOptions{Filter: ptr("roleName eq 'Cognitive Services User'")})
	var found []*armauthorization.RoleDefinition
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, page.Value...)
	}
	if len(found) != 1 || *found[0].Name != authz.RoleCognitiveServicesUser || *found[0].Properties.RoleType != "BuiltInRole" ||
		*found[0].ID != roleDefID(e.sub, authz.RoleCognitiveServicesUser) || len(found[0].Properties.Permissions[0].DataActions) != 1 {
		t.Fatalf("by name: %+v", found)
	}
	// Other scenarios create and delete custom roles in this subscription
	// while this one lists, so the lists are compared on the built-in
	// roles, which no one can change.
	builtIn := func(opts *armauthorization.RoleDefinitionsClientListOptions) []string {
		t.Helper()
		var names []string
		for pager := e.roles.NewListPager(scope, opts); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Value {
				if *d.Properties.RoleType == "BuiltInRole" {
					names = append(names, *d.Name)
				}
			}
		}
		slices.Sort(names)
		return names
	}
	all := builtIn(nil)
	if len(all) < 14 {
		t.Fatalf("%d built-in role definitions", len(all))
	}
	// Get-AzRoleDefinition -AtScopeAndBelow's filter.
	if below := builtIn(&armauthorization.RoleDefinitionsClientListOptions{Filter: ptr("atScopeAndBelow()")}); !slices.Equal(below, all) {
		t.Fatalf("atScopeAndBelow(): built-in roles %v, %v without it", below, all)
	}
	for _, role := range []string{authz.RoleOwner, authz.RoleCognitiveServicesOpenAIUser, authz.RoleKeyVaultSecretsUser, strings.ToUpper(authz.RoleReader)} {
		got, err := e.roles.Get(ctx, scope, role, nil)
		if err != nil || !strings.EqualFold(*got.Name, role) {
			t.Fatalf("Get %s: %+v %v", role, got, err)
		}
		byID, err := e.roles.GetByID(ctx, "/providers/Microsoft.Authorization/roleDefinitions/"+role, nil)
		if err != nil || *byID.Properties.RoleName != *got.Properties.RoleName {
			t.Fatalf("GetByID %s: %+v %v", role, byID, err)
		}
	}
	if _, err := e.roles.Get(ctx, scope, gatehouse.NewGUID(), nil); !isCode(err, 404, "RoleDefinitionDoesNotExist") {
		t.Fatalf("unknown role: %v", err)
	}
	// A custom role, assigned and enforced.
	custom := gatehouse.NewGUID()
	def, err := e.roles.CreateOrUpdate(ctx, scope, custom, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
		RoleName: ptr("Key Reader " + custom[:8]), RoleType: ptr("CustomRole"), AssignableScopes: []*string{ptr(scope)},
		Permissions: []*armauthorization.Permission{{Actions: []*string{ptr("Microsoft.CognitiveServices/accounts/listKeys/action"), ptr("Microsoft.Resources/subscriptions/resourceGroups/read")}}},
	}}, nil)
	if err != nil || *def.Name != custom || *def.Properties.RoleType != "CustomRole" {
		t.Fatalf("custom role: %+v %v", def, err)
	}
	group := e.createGroup(t, "custom-role")
	createAccount(t, e, group, "custom-role-acct", "OpenAI")
	oid, cred := e.principal(t, "key-reader")
	assign(t, e, "subscriptions/"+e.sub+"/resourceGroups/"+group, custom, oid)
	accts, _, _, _ := e.clients(t, cred)
	if _, err := accts.ListKeys(ctx, group, "custom-role-acct", nil); err != nil {
		t.Fatalf("custom role does not grant listKeys: %v", err)
	}
	if _, err := accts.RegenerateKey(ctx, group, "custom-role-acct", armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("custom role grants regenerateKey: %v", err)
	}
	if _, err := e.roles.Delete(ctx, scope, custom, nil); !isCode(err, 409, "RoleDefinitionHasAssignments") {
		t.Fatalf("delete role in use: %v", err)
	}
	// A data action among the actions, or a management action among the
	// data actions, would grant nothing: refused, as ARM refuses it.
	for code, perm := range map[string]*armauthorization.Permission{
		"InvalidActionOrNotAction":         {Actions: []*string{ptr("Microsoft.KeyVault/vaults/secrets/getSecret/action")}},
		"InvalidDataActionOrNotDataAction": {DataActions: []*string{ptr("Microsoft.CognitiveServices/accounts/read")}},
	} {
		id := gatehouse.NewGUID()
		_, err := e.roles.CreateOrUpdate(ctx, scope, id, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
			RoleName: ptr("Misplaced " + id[:8]), RoleType: ptr("CustomRole"), AssignableScopes: []*string{ptr(scope)},
			Permissions: []*armauthorization.Permission{perm}}}, nil)
		if !isCode(err, 400, code) {
			t.Errorf("want 400 %s: %v", code, err)
		}
	}
}

// testRBACListKeys: a data-only role at the account cannot list keys; a
// Cognitive Services Contributor assignment at the group can; removing it
// takes the right away again. (Azure's own Cognitive Services User role
// includes listKeys; the data-only roles are the OpenAI ones.)
func testRBACListKeys(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "rbac-keys")
	createAccount(t, e, group, "keys-acct", "OpenAI")
	oid, cred := e.principal(t, "keys-caller")
	accts, _, _, _ := e.clients(t, cred)
	acctScope := "/subscriptions/" + e.sub + "/resourceGroups/" + group + "/providers/Microsoft.CognitiveServices/accounts/keys-acct"
	listKeys := func() error {
		_, err := accts.ListKeys(ctx, group, "keys-acct", nil)
		return err
	}
	if err := listKeys(); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("no role: %v", err)
	}
	assign(t, e, acctScope, authz.RoleCognitiveServicesOpenAIUser, oid)
	err := listKeys()
	if !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("OpenAI User at the account: %v", err)
	}
	msg := err.(*azcore.ResponseError).Error()
	for _, want := range []string{"with object id '" + oid + "'", "Microsoft.CognitiveServices/accounts/listKeys/action", acctScope} {
		if !strings.Contains(msg, want) {
			t.Errorf("403 does not name %q: %s", want, msg)
		}
	}
	// The client is named as Azure names it: an application by its
	// client id.
	if strings.Contains(msg, "The client '"+oid+"'") {
		t.Errorf("403 names the application by its object id, not its client id: %s", msg)
	}
	// The denial is in the audit log, with who, what and where.
	denied := 0
	e.Audit.Each(ctx, 0, func(r *audit.Record) error {
		if r.Entry.Result == audit.Denied && r.Entry.Principal.ObjectID == oid && r.Entry.Status == 403 &&
			r.Entry.Action == "Microsoft.CognitiveServices/accounts/listKeys/action" && strings.EqualFold(r.Entry.Scope, acctScope) {
			denied++
		}
		return nil
	})
	if denied != 2 {
		t.Errorf("%d denied listKeys audit entries, want 2", denied)
	}
	// The data role still reads the account.
	if _, err := accts.Get(ctx, group, "keys-acct", nil); err != nil {
		t.Fatalf("OpenAI User cannot read the account: %v", err)
	}
	contributor := assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+group, authz.RoleCognitiveServicesContributor, oid)
	if err := listKeys(); err != nil {
		t.Fatalf("after Cognitive Services Contributor at the group: %v", err)
	}
	if _, err := e.assign.Delete(ctx, "/subscriptions/"+e.sub+"/resourceGroups/"+group, contributor, nil); err != nil {
		t.Fatal(err)
	}
	if err := listKeys(); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("after removing the assignment: %v", err)
	}
	// Azure's Cognitive Services User does include listKeys.
	cuOID, cuCred := e.principal(t, "cs-user")
	assign(t, e, acctScope, authz.RoleCognitiveServicesUser, cuOID)
	cuAccts, _, _, _ := e.clients(t, cuCred)
	if _, err := cuAccts.ListKeys(ctx, group, "keys-acct", nil); err != nil {
		t.Fatalf("Cognitive Services User cannot list keys (Azure allows it): %v", err)
	}
	if _, err := cuAccts.RegenerateKey(ctx, group, "keys-acct", armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("Cognitive Services User regenerated a key: %v", err)
	}
	// A principal with no role at all does not even see the subscription.
	_, noneCred := e.principal(t, "nobody")
	tok := e.Token(t, noneCred, mgmtScope)
	r := e.do(t, request{method: "GET", path: "/subscriptions?api-version=2019-11-01", token: tok})
	var subs struct {
		Value []any `json:"value"`
	}
	r.json(t, &subs)
	if r.status != 200 || len(subs.Value) != 0 {
		t.Fatalf("subscriptions of a principal without roles: %d %s", r.status, r.body)
	}
}

func testSDKIdentities(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-msi")
	created, err := e.msi.CreateOrUpdate(ctx, group, "app-identity", armmsi.Identity{Location: ptr("westus"),
		Tags: map[string]*string{"app": ptr("web")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := created.Properties
	if *created.Name != "app-identity" || *created.Type != "Microsoft.ManagedIdentity/userAssignedIdentities" ||
		!gatehouse.IsGUID(*p.PrincipalID) || !gatehouse.IsGUID(*p.ClientID) || *p.TenantID != e.Directory.DefaultTenant() {
		t.Fatalf("created: %+v %+v", created.Identity, p)
	}
	// The identity is a real principal: roles can be assigned to it.
	assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+group, authz.RoleReader, *p.PrincipalID)
	got, err := e.msi.Get(ctx, group, "app-identity", nil)
	if err != nil || *got.Properties.ClientID != *p.ClientID || *got.Tags["app"] != "web" {
		t.Fatalf("Get: %+v %v", got, err)
	}
	again, err := e.msi.CreateOrUpdate(ctx, group, "app-identity", armmsi.Identity{Location: ptr("westus"), Tags: map[string]*string{"app": ptr("api")}}, nil)
	if err != nil || *again.Properties.PrincipalID != *p.PrincipalID || *again.Tags["app"] != "api" {
		t.Fatalf("update by PUT: %+v %v", again, err)
	}
	up, err := e.msi.Update(ctx, group, "app-identity", armmsi.IdentityUpdate{Tags: map[string]*string{"app": ptr("jobs")}}, nil)
	if err != nil || *up.Tags["app"] != "jobs" {
		t.Fatalf("Update: %+v %v", up, err)
	}
	n := 0
	pager := e.msi.NewListByResourceGroupPager(group, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	subPager := e.msi.NewListBySubscriptionPager(nil)
	inSub := 0
	for subPager.More() {
		page, err := subPager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, mi := range page.Value {
			if *mi.Name == "app-identity" {
				inSub++
			}
		}
	}
	if n != 1 || inSub != 1 {
		t.Fatalf("lists: group %d, subscription %d", n, inSub)
	}
	if _, err := e.msi.Delete(ctx, group, "app-identity", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.msi.Get(ctx, group, "app-identity", nil); !isCode(err, 404, "ResourceNotFound") {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, err := e.msi.Delete(ctx, group, "app-identity", nil); err != nil {
		t.Fatalf("second delete (204): %v", err)
	}
}

// testAccountIdentities: a system-assigned identity is created with the
// account and deleted with it; a user-assigned one is attached.
func testAccountIdentities(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "acct-identities")
	ua, err := e.msi.CreateOrUpdate(ctx, group, "shared-id", armmsi.Identity{Location: ptr("westus")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	poller, err := e.accounts.BeginCreate(ctx, group, "with-identity", armcognitiveservices.Account{
		Kind: ptr("OpenAI"), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")},
		Identity: &armcognitiveservices.Identity{
			Type:                   ptr(armcognitiveservices.ResourceIdentityTypeSystemAssignedUserAssigned),
			UserAssignedIdentities: map[string]*armcognitiveservices.UserAssignedIdentity{*ua.ID: {}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := poller.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := acct.Identity
	if id == nil || *id.Type != armcognitiveservices.ResourceIdentityTypeSystemAssignedUserAssigned || !gatehouse.IsGUID(*id.PrincipalID) ||
		len(id.UserAssignedIdentities) != 1 {
		t.Fatalf("identity %+v", id)
	}
	for _, u := range id.UserAssignedIdentities {
		if *u.PrincipalID != *ua.Properties.PrincipalID {
			t.Fatalf("user-assigned %+v", u)
		}
	}
	// The system identity is a principal of the directory, named by the
	// account's id.
	p, err := e.Directory.Principal(ctx, *id.PrincipalID)
	if err != nil || !p.ManagedIdentity {
		t.Fatalf("system identity principal: %+v %v", p, err)
	}
	// A PATCH's user-assigned identities join those attached; one named
	// with null leaves, the others stay (ARM's meaning).
	second, err := e.msi.CreateOrUpdate(ctx, group, "second-id", armmsi.Identity{Location: ptr("westus")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	patchIdentities := func(uas map[string]*armcognitiveservices.UserAssignedIdentity) []string {
		t.Helper()
		up, err := e.accounts.BeginUpdate(ctx, group, "with-identity", armcognitiveservices.Account{Identity: &armcognitiveservices.Identity{
			Type: ptr(armcognitiveservices.ResourceIdentityTypeSystemAssignedUserAssigned), UserAssignedIdentities: uas}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := up.PollUntilDone(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for k := range res.Identity.UserAssignedIdentities {
			names = append(names, k[strings.LastIndex(k, "/")+1:])
		}
		slices.Sort(names)
		return names
	}
	if got := patchIdentities(map[string]*armcognitiveservices.UserAssignedIdentity{*second.ID: {}}); !slices.Equal(got, []string{"second-id", "shared-id"}) {
		t.Fatalf("after attaching a second identity: %v", got)
	}
	if got := patchIdentities(map[string]*armcognitiveservices.UserAssignedIdentity{*ua.ID: nil}); !slices.Equal(got, []string{"second-id"}) {
		t.Fatalf("after detaching shared-id with null: %v", got)
	}
	del, err := e.accounts.BeginDelete(ctx, group, "with-identity", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Directory.Principal(ctx, *id.PrincipalID); err == nil {
		t.Fatal("system identity survived its account")
	}
	// Attaching an identity needs its assign action (403 LinkedAuthorizationFailed).
	oid, cred := e.principal(t, "no-assign")
	assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+group, authz.RoleCognitiveServicesContributor, oid)
	accts, _, _, _ := e.clients(t, cred)
	_, err = accts.BeginCreate(ctx, group, "linked", armcognitiveservices.Account{Kind: ptr("OpenAI"), Location: ptr("westus"),
		Identity: &armcognitiveservices.Identity{Type: ptr(armcognitiveservices.ResourceIdentityTypeUserAssigned),
			UserAssignedIdentities: map[string]*armcognitiveservices.UserAssignedIdentity{*ua.ID: {}}}}, nil)
	if !isCode(err, 403, "LinkedAuthorizationFailed") {
		t.Fatalf("attach without assign: %v", err)
	}
}

// testGroupDeleteCascade: deleting a group deletes its accounts (their keys
// stop working), identities and role assignments.
func testGroupDeleteCascade(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "doomed")
	createAccount(t, e, group, "doomed-acct", "OpenAI")
	keys, err := e.accounts.ListKeys(ctx, group, "doomed-acct", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.msi.CreateOrUpdate(ctx, group, "doomed-id", armmsi.Identity{Location: ptr("westus")}, nil); err != nil {
		t.Fatal(err)
	}
	oid, _ := e.principal(t, "doomed-user")
	name := assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+group, authz.RoleReader, oid)
	r := e.do(t, request{method: "DELETE", path: "/subscriptions/" + e.sub + "/resourceGroups/" + group + "?api-version=2021-04-01"})
	if r.status != http.StatusOK {
		t.Fatalf("delete group: %d %s", r.status, r.body)
	}
	if _, ok := e.Accounts.LookupKey(*keys.Key1); ok {
		t.Fatal("key of an account in a deleted group still accepted")
	}
	if a, ok := e.Authz.Assignment(name); ok {
		t.Fatalf("assignment in a deleted group survived: %+v", a)
	}
	if _, err := e.msi.Get(ctx, group, "doomed-id", nil); !isCode(err, 404, "ResourceGroupNotFound") {
		t.Fatalf("identity after group delete: %v", err)
	}
	if r := e.do(t, request{method: "HEAD", path: "/subscriptions/" + e.sub + "/resourceGroups/" + group + "?api-version=2021-04-01"}); r.status != 404 {
		t.Fatalf("HEAD deleted group: %d", r.status)
	}
}
