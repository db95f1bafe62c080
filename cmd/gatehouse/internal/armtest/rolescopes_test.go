package armtest

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

// testCustomRoleScopes: a custom role is changed or deleted only by a
// caller who may write role definitions at every scope it is assignable at
// now — the Owner of one group cannot rewrite a role assigned at the
// subscription through the group's scope (and so make themselves Owner of
// the subscription) — and an update may not leave an assignment outside
// the role's assignable scopes.
func testCustomRoleScopes(t *testing.T, e *env) {
	ctx := t.Context()
	sub := "/subscriptions/" + e.sub
	group := e.createGroup(t, "role-scopes")
	groupScope := sub + "/resourceGroups/" + group
	oid, cred := e.principal(t, "role-scopes-owner")
	assign(t, e, groupScope, authz.RoleOwner, oid)
	role := gatehouse.NewGUID()
	def := func(name string, actions []string, scopes ...string) armauthorization.RoleDefinition {
		ps := make([]*string, len(scopes))
		for i := range scopes {
			ps[i] = &scopes[i]
		}
		as := make([]*string, len(actions))
		for i := range actions {
			as[i] = &actions[i]
		}
		return armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{RoleName: ptr(name),
			RoleType: ptr("CustomRole"), AssignableScopes: ps,
			Permissions: []*armauthorization.Permission{{Actions: as}}}}
	}
	viewer := def("Role Scopes Viewer "+role[:8], []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}, sub)
	if _, err := e.roles.CreateOrUpdate(ctx, sub, role, viewer, nil); err != nil {
		t.Fatal(err)
	}
	assign(t, e, sub, role, oid)

	_, _, roles, _ := e.clients(t, cred)
	wide := def("Role Scopes Viewer "+role[:8], []string{"*"}, groupScope)
	if _, err := roles.CreateOrUpdate(ctx, groupScope, role, wide, nil); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("the group's Owner rewrote a role assignable at the subscription: %v", err)
	}
	if _, err := roles.Delete(ctx, groupScope, role, nil); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("the group's Owner deleted a role assignable at the subscription: %v", err)
	}
	got, err := e.roles.Get(ctx, sub, role, nil)
	if err != nil || *got.Properties.Permissions[0].Actions[0] != "Microsoft.Resources/subscriptions/resourceGroups/read" {
		t.Fatalf("the role changed: %+v %v", got.Properties, err)
	}
	// Narrowing it past its assignment at the subscription is refused,
	// even to the subscription's Owner.
	narrow := def("Role Scopes Viewer "+role[:8], []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}, groupScope)
	if _, err := e.roles.CreateOrUpdate(ctx, sub, role, narrow, nil); !isCode(err, 400, "InvalidAssignableScopes") {
		t.Fatalf("narrowed past an assignment: %v", err)
	}
	// A role of the group's own is the group Owner's to change.
	own := gatehouse.NewGUID()
	if _, err := roles.CreateOrUpdate(ctx, groupScope, own, def("Role Scopes Own "+own[:8], []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}, groupScope), nil); err != nil {
		t.Fatalf("a role of the group's own: %v", err)
	}
	if _, err := roles.CreateOrUpdate(ctx, groupScope, own, def("Role Scopes Own "+own[:8], []string{"Microsoft.CognitiveServices/accounts/read"}, groupScope), nil); err != nil {
		t.Fatalf("changing a role of the group's own: %v", err)
	}
	if _, err := roles.Delete(ctx, groupScope, own, nil); err != nil {
		t.Fatalf("deleting a role of the group's own: %v", err)
	}
}
