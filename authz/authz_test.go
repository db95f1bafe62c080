package authz_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

const (
	sub   = "11111111-2222-3333-4444-555555555555"
	alice = "aaaaaaaa-0000-0000-0000-000000000001"
	bob   = "bbbbbbbb-0000-0000-0000-000000000002"
)

func id(t testing.TB, s string) *gatehouse.ResourceID {
	t.Helper()
	r, err := gatehouse.ParseResourceID(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	subScope  = "/subscriptions/" + sub
	groupA    = subScope + "/resourceGroups/a"
	groupAB   = subScope + "/resourceGroups/ab"
	accountA1 = groupA + "/providers/Microsoft.CognitiveServices/accounts/a1"
	deployA1  = accountA1 + "/deployments/d1"
	accountB1 = groupAB + "/providers/Microsoft.CognitiveServices/accounts/b1"
)

// newService starts a service on s with a running watcher (one "node").
func newService(t testing.TB, s storage.Store, opts authz.Options) *authz.Service {
	t.Helper()
	w := teststore.NewWatcher(s)
	svc := authz.New(context.Background(), s, w, opts)
	teststore.StartWatcher(t, w, svc.Load)
	return svc
}

func mustAssign(t testing.TB, svc *authz.Service, scope, role, principal string) *authz.Assignment {
	t.Helper()
	a, _, err := svc.CreateAssignment(context.Background(), id(t, scope), gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.DefinitionID(id(t, scope), role), PrincipalID: principal}, alice)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBuiltInRoles(t *testing.T) {
	tests := []struct {
		name, role string
		op         authz.Operation
		allowed    bool
	}{
		{"owner-writes", authz.RoleOwner, authz.Action("Microsoft.CognitiveServices/accounts/write"), true},
		{"owner-assigns-roles", authz.RoleOwner, authz.Action("Microsoft.Authorization/roleAssignments/write"), true},
		{"owner-no-data", authz.RoleOwner, authz.DataAction("Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"), false},
		{"contributor-writes", authz.RoleContributor, authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action"), true},
		{"contributor-no-assign", authz.RoleContributor, authz.Action("Microsoft.Authorization/roleAssignments/write"), false},
		{"contributor-no-assign-any-case", authz.RoleContributor, authz.Action("microsoft.authorization/ROLEASSIGNMENTS/WRITE"), false},
		{"contributor-reads-assignments", authz.RoleContributor, authz.Action("Microsoft.Authorization/roleAssignments/read"), true},
		{"reader-reads", authz.RoleReader, authz.Action("Microsoft.CognitiveServices/accounts/read"), true},
		{"reader-no-listkeys", authz.RoleReader, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), false},
		{"uaa-assigns", authz.RoleUserAccessAdministrator, authz.Action("Microsoft.Authorization/roleAssignments/write"), true},
		{"uaa-no-write", authz.RoleUserAccessAdministrator, authz.Action("Microsoft.CognitiveServices/accounts/write"), false},
		{"cs-contributor-regenerates", authz.RoleCognitiveServicesContributor, authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action"), true},
		{"cs-contributor-lists-keys", authz.RoleCognitiveServicesContributor, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), true},
		{"cs-contributor-no-data", authz.RoleCognitiveServicesContributor, authz.DataAction("Microsoft.CognitiveServices/accounts/Language/analyze-text/action"), false},
		// As in Azure: Cognitive Services User may list keys.
		{"cs-user-lists-keys", authz.RoleCognitiveServicesUser, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), true},
		{"cs-user-no-regenerate", authz.RoleCognitiveServicesUser, authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action"), false},
		{"cs-user-data", authz.RoleCognitiveServicesUser, authz.DataAction("Microsoft.CognitiveServices/accounts/Language/analyze-text/action"), true},
		{"usages-reader-reads-usages", authz.RoleCognitiveServicesUsagesReader, authz.Action("Microsoft.CognitiveServices/locations/usages/read"), true},
		{"usages-reader-no-accounts", authz.RoleCognitiveServicesUsagesReader, authz.Action("Microsoft.CognitiveServices/accounts/read"), false},
		{"openai-user-no-listkeys", authz.RoleCognitiveServicesOpenAIUser, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), false},
		{"openai-user-reads", authz.RoleCognitiveServicesOpenAIUser, authz.Action("Microsoft.CognitiveServices/accounts/read"), true},
		{"openai-user-chats", authz.RoleCognitiveServicesOpenAIUser, authz.DataAction("Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"), true},
		{"openai-user-no-stored-completions", authz.RoleCognitiveServicesOpenAIUser, authz.DataAction("Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read"), false},
		{"openai-user-no-language", authz.RoleCognitiveServicesOpenAIUser, authz.DataAction("Microsoft.CognitiveServices/accounts/Language/analyze-text/action"), false},
		{"openai-contributor-deploys", authz.RoleCognitiveServicesOpenAIContributor, authz.Action("Microsoft.CognitiveServices/accounts/deployments/write"), true},
		{"kv-secrets-user-gets", authz.RoleKeyVaultSecretsUser, authz.DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action"), true},
		{"kv-secrets-user-no-set", authz.RoleKeyVaultSecretsUser, authz.DataAction("Microsoft.KeyVault/vaults/secrets/setSecret/action"), false},
		{"kv-officer-sets", authz.RoleKeyVaultSecretsOfficer, authz.DataAction("Microsoft.KeyVault/vaults/secrets/setSecret/action"), true},
		{"kv-admin-purges", authz.RoleKeyVaultAdministrator, authz.DataAction("Microsoft.KeyVault/vaults/secrets/purge/action"), true},
		{"kv-reader-no-get", authz.RoleKeyVaultReader, authz.DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action"), false},
		{"kv-reader-metadata", authz.RoleKeyVaultReader, authz.DataAction("Microsoft.KeyVault/vaults/secrets/readMetadata/action"), true},
		{"tag-contributor-tags", authz.RoleTagContributor, authz.Action("Microsoft.Resources/tags/write"), true},
		{"tag-contributor-no-write", authz.RoleTagContributor, authz.Action("Microsoft.CognitiveServices/accounts/write"), false},
		{"tag-contributor-no-listkeys", authz.RoleTagContributor, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), false},
		{"mi-operator-assigns", authz.RoleManagedIdentityOperator, authz.Action("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"), false},
		{"mi-operator-reads", authz.RoleManagedIdentityOperator, authz.Action("Microsoft.ManagedIdentity/userAssignedIdentities/read"), false},
		{"mi-operator-reads-child", authz.RoleManagedIdentityOperator, authz.Action("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read"), true},
	}
	svc := newService(t, teststore.SQLite(t), authz.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gatehouse.NewGUID()
			mustAssign(t, svc, subScope, tt.role, p)
			d := svc.Decide(p, tt.op, id(t, accountA1))
			if d.Allowed != tt.allowed {
				t.Fatalf("Decide = %v, want %v", d.Allowed, tt.allowed)
			}
			if d.Allowed && (d.Role.ID != tt.role || d.Assignment == nil) {
				t.Fatalf("allowed by %+v / %+v", d.Role, d.Assignment)
			}
		})
	}
	if got := len(authz.BuiltInRoles()); got != 16 {
		t.Errorf("%d built-in roles", got)
	}
}

func TestInheritance(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		svc := newService(t, s, authz.Options{})
		listKeys := authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action")
		at := map[string]string{
			"subscription": subScope, "group": groupA, "resource": accountA1, "child": deployA1,
		}
		// For an assignment at each level: where does it apply?
		want := map[string]map[string]bool{
			"subscription": {subScope: true, groupA: true, accountA1: true, deployA1: true, accountB1: true},
			"group":        {subScope: false, groupA: true, accountA1: true, deployA1: true, groupAB: false, accountB1: false},
			"resource":     {subScope: false, groupA: false, accountA1: true, deployA1: true, accountB1: false},
			"child":        {groupA: false, accountA1: false, deployA1: true},
		}
		for level, scope := range at {
			t.Run(level, func(t *testing.T) {
				p := gatehouse.NewGUID()
				a := mustAssign(t, svc, scope, authz.RoleCognitiveServicesContributor, p)
				for target, allowed := range want[level] {
					d := svc.Decide(p, listKeys, id(t, target))
					if d.Allowed != allowed {
						t.Errorf("assignment at %s, target %s: %v, want %v", level, target, d.Allowed, allowed)
					}
					if d.Allowed && d.Assignment.Name != a.Name {
						t.Errorf("allowed by %s, want %s", d.Assignment.Name, a.Name)
					}
				}
			})
		}
	})
}

func TestDecisionFollowsChanges(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		// Two nodes on one store: writes on A reach B through the feed.
		nodeA := newService(t, s, authz.Options{})
		wB := teststore.NewWatcher(s)
		nodeB := authz.New(context.Background(), s, wB, authz.Options{})
		teststore.StartWatcher(t, wB, nodeB.Load)

		regen := authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action")
		target := id(t, accountA1)
		if nodeA.Decide(bob, regen, target).Allowed || nodeB.Decide(bob, regen, target).Allowed {
			t.Fatal("allowed before any assignment")
		}
		a := mustAssign(t, nodeA, groupA, authz.RoleCognitiveServicesContributor, bob)
		if !nodeA.Decide(bob, regen, target).Allowed {
			t.Fatal("node A: not allowed right after its own write")
		}
		if err := wB.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !nodeB.Decide(bob, regen, target).Allowed {
			t.Fatal("node B: not allowed after the feed delivered the assignment")
		}
		if _, err := nodeA.DeleteAssignment(t.Context(), id(t, groupA), a.Name); err != nil {
			t.Fatal(err)
		}
		if nodeA.Decide(bob, regen, target).Allowed {
			t.Fatal("node A: still allowed after deleting the assignment")
		}
		if err := wB.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if nodeB.Decide(bob, regen, target).Allowed {
			t.Fatal("node B: still allowed after the deletion reached it")
		}
	})
}

type directory map[string]gatehouse.PrincipalType

func (d directory) LookupPrincipal(_ context.Context, oid string) (gatehouse.Principal, bool, error) {
	t, ok := d[oid]
	return gatehouse.Principal{ObjectID: oid, Type: t}, ok, nil
}

func TestCreateAssignment(t *testing.T) {
	dir := directory{alice: gatehouse.PrincipalUser, bob: gatehouse.PrincipalServicePrincipal}
	svc := newService(t, teststore.SQLite(t), authz.Options{Directory: dir})
	ctx := t.Context()
	scope := id(t, groupA)
	owner := authz.DefinitionID(scope, authz.RoleOwner)
	name := gatehouse.NewGUID()
	a, created, err := svc.CreateAssignment(ctx, scope, name, authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: bob}, alice)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if a.PrincipalType != "ServicePrincipal" || a.Scope != groupA || a.RoleDefinitionID != authz.RoleOwner || a.CreatedBy != alice {
		t.Fatalf("assignment %+v", a)
	}
	if a.ID() != groupA+"/providers/Microsoft.Authorization/roleAssignments/"+name {
		t.Fatalf("ID %s", a.ID())
	}
	// The same PUT again is idempotent.
	if _, created, err := svc.CreateAssignment(ctx, scope, name, authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: bob}, alice); err != nil || created {
		t.Fatalf("repeat: %v %v", created, err)
	}
	tests := []struct {
		name     string
		scope    string
		asgName  string
		spec     authz.AssignmentSpec
		status   int
		code     string
		ptypeOut string
	}{
		{"not-a-guid-name", groupA, "owner-of-a", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: alice}, 400, "InvalidRoleAssignmentId", ""},
		{"unknown-role", groupA, "", authz.AssignmentSpec{RoleDefinitionID: authz.DefinitionID(scope, gatehouse.NewGUID()), PrincipalID: alice}, 400, "RoleDefinitionDoesNotExist", ""},
		{"malformed-role-id", groupA, "", authz.AssignmentSpec{RoleDefinitionID: "/subscriptions/x/providers/Microsoft.Foo/bar/baz", PrincipalID: alice}, 400, "InvalidRoleDefinitionId", ""},
		{"principal-not-guid", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: "alice"}, 400, "InvalidPrincipalId", ""},
		{"unknown-principal", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: gatehouse.NewGUID()}, 400, "PrincipalNotFound", ""},
		{"bad-principal-type", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: alice, PrincipalType: "Robot"}, 400, "InvalidPrincipalType", ""},
		// azure-mgmt-authorization sends User unless told otherwise: for a
		// service principal ARM refuses it.
		{"unmatched-principal-type", groupAB, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: bob, PrincipalType: "User"}, 400, "UnmatchedPrincipalType", ""},
		{"group-for-user", groupAB, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: alice, PrincipalType: "ForeignGroup"}, 400, "UnmatchedPrincipalType", ""},
		{"condition", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: alice, Condition: "true", ConditionVersion: "2.0"}, 400, "RoleAssignmentConditionNotSupported", ""},
		{"same-grant-other-name", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: bob}, 409, "RoleAssignmentExists", ""},
		{"name-reused", groupAB, name, authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: bob}, 409, "RoleAssignmentUpdateNotPermitted", ""},
		{"type-from-directory", groupA, "", authz.AssignmentSpec{RoleDefinitionID: owner, PrincipalID: alice}, 0, "", "User"},
		{"bare-role-guid", groupAB, "", authz.AssignmentSpec{RoleDefinitionID: authz.RoleReader, PrincipalID: alice, PrincipalType: "user"}, 0, "", "User"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.asgName
			if n == "" {
				n = gatehouse.NewGUID()
			}
			a, _, err := svc.CreateAssignment(ctx, id(t, tt.scope), n, tt.spec, alice)
			if tt.status == 0 {
				if err != nil || a.PrincipalType != tt.ptypeOut {
					t.Fatalf("got %+v, %v", a, err)
				}
				return
			}
			e, ok := gatehouse.AsError(err)
			if !ok || e.Status != tt.status || e.Code != tt.code {
				t.Fatalf("err = %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	if got := len(svc.Assignments(authz.AssignmentFilter{})); got != 3 {
		t.Errorf("%d assignments stored, want 3", got)
	}
}

func TestListAssignments(t *testing.T) {
	svc := newService(t, teststore.SQLite(t), authz.Options{})
	mustAssign(t, svc, subScope, authz.RoleReader, alice)
	mustAssign(t, svc, groupA, authz.RoleContributor, bob)
	mustAssign(t, svc, accountA1, authz.RoleCognitiveServicesUser, alice)
	mustAssign(t, svc, accountB1, authz.RoleCognitiveServicesUser, bob)
	tests := []struct {
		name string
		f    authz.AssignmentFilter
		want int
	}{
		{"all", authz.AssignmentFilter{}, 4},
		{"subscription-and-below", authz.AssignmentFilter{Scope: id(t, subScope)}, 4},
		{"group-above-and-below", authz.AssignmentFilter{Scope: id(t, groupA)}, 3},
		{"group-at-scope", authz.AssignmentFilter{Scope: id(t, groupA), AtScope: true}, 2},
		{"account-at-scope", authz.AssignmentFilter{Scope: id(t, accountA1), AtScope: true}, 3},
		{"principal", authz.AssignmentFilter{PrincipalID: alice}, 2},
		{"principal-upper-case", authz.AssignmentFilter{PrincipalID: "AAAAAAAA-0000-0000-0000-000000000001"}, 2},
		{"role", authz.AssignmentFilter{RoleID: authz.RoleCognitiveServicesUser}, 2},
		{"scope-and-principal", authz.AssignmentFilter{Scope: id(t, groupAB), PrincipalID: bob}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := svc.Assignments(tt.f); len(got) != tt.want {
				t.Fatalf("%d assignments, want %d: %+v", len(got), tt.want, got)
			}
		})
	}
	if !svc.HasAssignmentWithin(bob, id(t, subScope)) || svc.HasAssignmentWithin(gatehouse.NewGUID(), id(t, subScope)) {
		t.Error("HasAssignmentWithin")
	}
	n, err := svc.DeleteAssignmentsWithin(t.Context(), id(t, groupA))
	if err != nil || n != 2 {
		t.Fatalf("DeleteAssignmentsWithin = %d, %v", n, err)
	}
	if got := len(svc.Assignments(authz.AssignmentFilter{})); got != 2 {
		t.Fatalf("%d left", got)
	}
}

func TestCustomRoles(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		svc := newService(t, s, authz.Options{})
		ctx := t.Context()
		roleID := gatehouse.NewGUID()
		spec := authz.RoleSpec{RoleName: "Key Rotator", Description: "rotates keys",
			Permissions: []authz.Permission{{
				Actions:    []string{"Microsoft.CognitiveServices/accounts/*/action"},
				NotActions: []string{"Microsoft.CognitiveServices/accounts/listKeys/action"},
			}},
			AssignableScopes: []string{subScope}}
		def, created, err := svc.PutRole(ctx, roleID, spec, alice)
		if err != nil || !created || def.Type != authz.CustomRole {
			t.Fatalf("PutRole: %+v %v %v", def, created, err)
		}
		mustAssign(t, svc, groupA, roleID, bob)
		acct := id(t, accountA1)
		if !svc.Decide(bob, authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action"), acct).Allowed {
			t.Error("custom role does not grant regenerateKey")
		}
		if svc.Decide(bob, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), acct).Allowed {
			t.Error("custom role's notActions not applied")
		}
		// Narrowing the role takes effect at once.
		spec.Permissions[0].Actions = []string{"Microsoft.CognitiveServices/accounts/read"}
		if _, created, err := svc.PutRole(ctx, roleID, spec, alice); err != nil || created {
			t.Fatalf("update: %v %v", created, err)
		}
		if svc.Decide(bob, authz.Action("Microsoft.CognitiveServices/accounts/regenerateKey/action"), acct).Allowed {
			t.Error("narrowed role still grants regenerateKey")
		}
		if got := svc.Roles(authz.RoleFilter{Name: "key rotator"}); len(got) != 1 || got[0].ID != roleID {
			t.Errorf("Roles by name: %+v", got)
		}
		if got := svc.Roles(authz.RoleFilter{Type: authz.CustomRole, Scope: id(t, "/subscriptions/"+gatehouse.NewGUID())}); len(got) != 0 {
			t.Errorf("custom role listed in another subscription: %+v", got)
		}
		tests := []struct {
			name   string
			id     string
			spec   authz.RoleSpec
			status int
			code   string
		}{
			{"builtin-id", authz.RoleOwner, spec, 400, "BuiltInRoleCannotBeModified"},
			{"builtin-name", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "owner", Permissions: spec.Permissions, AssignableScopes: []string{subScope}}, 409, "RoleDefinitionWithSameNameExists"},
			{"custom-name", gatehouse.NewGUID(), spec, 409, "RoleDefinitionWithSameNameExists"},
			{"no-name", gatehouse.NewGUID(), authz.RoleSpec{Permissions: spec.Permissions, AssignableScopes: []string{subScope}}, 400, "RoleDefinitionNameRequired"},
			{"nul-in-name", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "a\x00b", Permissions: spec.Permissions, AssignableScopes: []string{subScope}}, 400, "InvalidRoleDefinition"},
			{"not-utf8-name", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "a\xffb", Permissions: spec.Permissions, AssignableScopes: []string{subScope}}, 400, "InvalidRoleDefinition"},
			{"newline-in-name", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "a\nb", Permissions: spec.Permissions, AssignableScopes: []string{subScope}}, 400, "InvalidRoleDefinition"},
			{"bad-pattern", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "x", Permissions: []authz.Permission{{Actions: []string{"a b"}}}, AssignableScopes: []string{subScope}}, 400, "InvalidActionOrNotAction"},
			{"root-scope", gatehouse.NewGUID(), authz.RoleSpec{RoleName: "y", Permissions: spec.Permissions, AssignableScopes: []string{"/"}}, 400, "InvalidAssignableScopes"},
			{"not-guid", "rotator", spec, 400, "InvalidRoleDefinitionId"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := svc.PutRole(ctx, tt.id, tt.spec, alice)
				e, ok := gatehouse.AsError(err)
				if !ok || e.Status != tt.status || e.Code != tt.code {
					t.Fatalf("err = %v, want %d %s", err, tt.status, tt.code)
				}
			})
		}
		if _, err := svc.DeleteRole(ctx, roleID); gatehouse.ErrorStatus(err) != http.StatusConflict {
			t.Fatalf("delete with assignments: %v", err)
		}
		for _, a := range svc.Assignments(authz.AssignmentFilter{RoleID: roleID}) {
			if _, err := svc.DeleteAssignment(ctx, nil, a.Name); err != nil {
				t.Fatal(err)
			}
		}
		if def, err := svc.DeleteRole(ctx, roleID); err != nil || def == nil {
			t.Fatalf("delete: %v %v", def, err)
		}
		if _, ok := svc.Role(roleID); ok {
			t.Fatal("deleted role still known")
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	svc := newService(b, teststore.SQLite(b), authz.Options{})
	for range 20 {
		mustAssign(b, svc, "/subscriptions/"+gatehouse.NewGUID(), authz.RoleReader, alice)
	}
	mustAssign(b, svc, groupA, authz.RoleCognitiveServicesUser, alice)
	op := authz.DataAction("Microsoft.CognitiveServices/accounts/Language/analyze-text/action")
	target := id(b, accountA1)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if !svc.Decide(alice, op, target).Allowed {
				b.Fatal("denied")
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		small := newService(b, teststore.SQLite(b), authz.Options{CacheSize: 1})
		mustAssign(b, small, groupA, authz.RoleCognitiveServicesUser, alice)
		other := id(b, accountB1)
		for b.Loop() {
			// Alternating targets evict each other from a one-entry cache.
			small.Decide(alice, op, target)
			small.Decide(alice, op, other)
		}
	})
}

// TestFeedReset: a node that fell behind the feed's retained history
// reloads everything and decides with the current assignments.
func TestFeedReset(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		nodeA := newService(t, s, authz.Options{})
		wB := teststore.NewWatcher(s)
		nodeB := authz.New(context.Background(), s, wB, authz.Options{})
		if err := wB.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := nodeB.Load(ctx); err != nil {
			t.Fatal(err)
		}
		// Node B is not running while node A writes and the history is
		// pruned.
		p := gatehouse.NewGUID()
		mustAssign(t, nodeA, groupA, authz.RoleCognitiveServicesUser, p)
		mustAssign(t, nodeA, groupAB, authz.RoleReader, p)
		if n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil || n == 0 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); wB.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })
		if err := wB.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if !nodeB.Decide(p, authz.Action("Microsoft.CognitiveServices/accounts/listKeys/action"), id(t, accountA1)).Allowed {
			t.Fatal("node B missed an assignment made while it was behind")
		}
		if got := len(nodeB.Assignments(authz.AssignmentFilter{PrincipalID: p})); got != 2 {
			t.Fatalf("node B has %d assignments, want 2", got)
		}
	})
}

// fakeGroups is a membership table with a generation.
type fakeGroups struct {
	mu  sync.Mutex
	of  map[string][]string
	gen uint64
}

func (f *fakeGroups) GroupsOf(oid string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.of[oid])
}

func (f *fakeGroups) GroupGeneration() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

func (f *fakeGroups) set(oid string, groups ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.of[oid] = groups
	f.gen++
}

// TestGroupAssignments: an assignment to a group grants its members, and a
// cached decision follows membership changes (the generation moves).
func TestGroupAssignments(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		groups := &fakeGroups{of: map[string][]string{}}
		svc := newService(t, s, authz.Options{Groups: groups})
		const member, group = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
		scope := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v"
		mustAssign(t, svc, scope, authz.RoleKeyVaultSecretsUser, group)
		get := authz.DataAction("Microsoft.KeyVault/vaults/secrets/getSecret/action")
		if svc.Decide(member, get, id(t, scope+"/secrets/x")).Allowed {
			t.Fatal("allowed before joining the group")
		}
		gen := svc.Generation()
		groups.set(member, group)
		if svc.Generation() == gen {
			t.Fatal("membership changed, Generation did not")
		}
		d := svc.Decide(member, get, id(t, scope+"/secrets/x"))
		if !d.Allowed || d.Assignment.PrincipalID != group {
			t.Fatalf("a member: %+v", d)
		}
		if !svc.HasAssignmentWithin(member, id(t, "/subscriptions/00000000-0000-0000-0000-000000000000")) {
			t.Fatal("a member does not see the subscription")
		}
		// assignedTo lists what the member holds through the group;
		// principalId eq only what it holds itself.
		if got := svc.Assignments(authz.AssignmentFilter{AssignedTo: member}); len(got) != 1 || got[0].PrincipalID != group {
			t.Fatalf("assigned to a member: %v", got)
		}
		if got := svc.Assignments(authz.AssignmentFilter{PrincipalID: member}); len(got) != 0 {
			t.Fatalf("a member's own: %v", got)
		}
		groups.set(member)
		if got := svc.Assignments(authz.AssignmentFilter{AssignedTo: member}); len(got) != 0 {
			t.Fatalf("assigned to a former member: %v", got)
		}
		if svc.Decide(member, get, id(t, scope+"/secrets/x")).Allowed {
			t.Fatal("allowed after leaving the group (a stale cached decision)")
		}
	})
}
