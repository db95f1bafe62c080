package directory_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestOwners: the creator is the first owner of an application and its
// service principal; owners are added and removed on one node and seen on
// another; a principal's deletion (or its service principal's) takes it
// off every owner list, and an application's deletion takes its lists.
func TestOwners(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		a, _ := newDirectory(t, store)
		b, wb := newDirectory(t, store)
		ctx := t.Context()
		alice, err := a.CreateUser(ctx, directory.UserSpec{UserName: "alice@owners.test", Password: "a long enough password"})
		must(t, err)
		bob, err := a.CreateUser(ctx, directory.UserSpec{UserName: "bob@owners.test", Password: "a long enough password"})
		must(t, err)
		ci, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "ci", ServicePrincipal: true})
		must(t, err)
		mi, err := a.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/owner-mi"})
		must(t, err)

		app, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "owned", ServicePrincipal: true, Owner: strings.ToUpper(alice.ObjectID)})
		must(t, err)
		if !slices.Equal(app.Owners, []string{alice.ObjectID}) || !slices.Equal(app.SPOwners, []string{alice.ObjectID}) {
			t.Fatalf("creator as owner: %v %v", app.Owners, app.SPOwners)
		}
		appOnly, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "app-only", Owner: ci.ObjectID})
		must(t, err)
		if !slices.Equal(appOnly.Owners, []string{ci.ObjectID}) || len(appOnly.SPOwners) != 0 {
			t.Fatalf("creator of an application without a service principal: %v %v", appOnly.Owners, appOnly.SPOwners)
		}
		if _, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "x", Owner: gatehouse.NewGUID()}); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("an unknown creator: %v", err)
		}

		_, err = a.AddOwner(ctx, app.AppID, directory.OwnedApplication, bob.ObjectID)
		must(t, err)
		_, err = a.AddOwner(ctx, app.ObjectID, directory.OwnedServicePrincipal, mi.PrincipalID)
		must(t, err)
		for name, tt := range map[string]struct {
			id    string
			obj   directory.OwnedObject
			owner string
			want  error
		}{
			"twice":                   {app.AppObjectID, directory.OwnedApplication, bob.ObjectID, directory.ErrAlreadyExists},
			"twice-other-case":        {app.AppObjectID, directory.OwnedApplication, strings.ToUpper(bob.ObjectID), directory.ErrAlreadyExists},
			"unknown-owner":           {app.AppObjectID, directory.OwnedApplication, gatehouse.NewGUID(), directory.ErrNotFound},
			"not-a-guid":              {app.AppObjectID, directory.OwnedApplication, "bob", directory.ErrNotFound},
			"application-object":      {app.AppObjectID, directory.OwnedApplication, appOnly.AppObjectID, directory.ErrNotFound},
			"no-service-principal":    {app.AppObjectID, directory.OwnedApplication, appOnly.ObjectID, directory.ErrNotFound},
			"unknown-object":          {gatehouse.NewGUID(), directory.OwnedApplication, bob.ObjectID, directory.ErrNotFound},
			"service-principal-of-no": {appOnly.AppID, directory.OwnedServicePrincipal, bob.ObjectID, directory.ErrNotFound},
		} {
			if _, err := a.AddOwner(ctx, tt.id, tt.obj, tt.owner); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", name, err, tt.want)
			}
		}
		must(t, wb.Sync(ctx))
		got, err := b.Application(app.AppID)
		must(t, err)
		if !slices.Equal(got.Owners, []string{alice.ObjectID, bob.ObjectID}) || !slices.Equal(got.SPOwners, []string{alice.ObjectID, mi.PrincipalID}) {
			t.Fatalf("node b: owners %v, service principal owners %v", got.Owners, got.SPOwners)
		}
		if !b.IsOwner(app.AppObjectID, directory.OwnedApplication, bob.ObjectID) || b.IsOwner(app.AppObjectID, directory.OwnedServicePrincipal, bob.ObjectID) ||
			!b.IsOwner(app.AppID, directory.OwnedServicePrincipal, mi.PrincipalID) || b.IsOwner(app.AppID, directory.OwnedApplication, ci.ObjectID) {
			t.Fatal("node b: IsOwner mixes up the two objects' owners")
		}
		if owned := b.OwnedBy(bob.ObjectID, directory.OwnedApplication); len(owned) != 1 || owned[0].AppID != app.AppID {
			t.Fatalf("node b: OwnedBy(bob) = %v", owned)
		}
		// A disabled owner owns nothing while disabled.
		no, yes := false, true
		_, err = a.UpdateUser(ctx, bob.ObjectID, directory.UserUpdate{Enabled: &no})
		must(t, err)
		if a.IsOwner(app.AppID, directory.OwnedApplication, bob.ObjectID) {
			t.Fatal("a disabled person counts as an owner")
		}
		_, err = a.UpdateUser(ctx, bob.ObjectID, directory.UserUpdate{Enabled: &yes})
		must(t, err)

		_, err = a.RemoveOwner(ctx, app.AppID, directory.OwnedApplication, alice.ObjectID)
		must(t, err)
		if _, err := a.RemoveOwner(ctx, app.AppID, directory.OwnedApplication, alice.ObjectID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("removing a non-owner: %v", err)
		}
		if _, err := a.RemoveOwner(ctx, app.AppID, directory.OwnedApplication, "nope"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("removing a malformed id: %v", err)
		}

		// Deleting a person takes them off every list.
		must(t, a.DeleteUser(ctx, bob.ObjectID))
		// Deleting a service principal ends its owners and what it owned;
		// made again, it has the same object id and neither.
		_, err = a.UpdateApplication(ctx, ci.AppID, directory.ApplicationUpdate{ServicePrincipal: &no})
		must(t, err)
		must(t, wb.Sync(ctx))
		if got, _ := b.Application(app.AppID); len(got.Owners) != 0 {
			t.Fatalf("node b: owners after the person's deletion: %v", got.Owners)
		}
		if got, _ := b.Application(appOnly.AppID); len(got.Owners) != 0 {
			t.Fatalf("node b: owners after the owning service principal's deletion: %v", got.Owners)
		}
		ci2, err := a.UpdateApplication(ctx, ci.AppID, directory.ApplicationUpdate{ServicePrincipal: &yes, ServicePrincipalOwner: alice.ObjectID})
		must(t, err)
		if ci2.ObjectID != ci.ObjectID || !slices.Equal(ci2.SPOwners, []string{alice.ObjectID}) || a.IsOwner(appOnly.AppID, directory.OwnedApplication, ci.ObjectID) {
			t.Fatalf("the service principal made again: %+v", ci2)
		}
		_, err = a.UpdateApplication(ctx, ci.AppID, directory.ApplicationUpdate{ServicePrincipal: &no})
		must(t, err)
		if got, _ := a.Application(ci.AppID); len(got.SPOwners) != 0 {
			t.Fatalf("owners of a deleted service principal: %v", got.SPOwners)
		}
		must(t, a.DeleteManagedIdentity(ctx, mi.ResourceID))
		if got, _ := a.Application(app.AppID); len(got.SPOwners) != 1 {
			t.Fatalf("service principal owners after the identity's deletion: %v", got.SPOwners)
		}
		// Deleting the application deletes its lists with it.
		must(t, a.DeleteApplication(ctx, app.AppID))
		must(t, wb.Sync(ctx))
		if owned := b.OwnedBy(alice.ObjectID, directory.OwnedServicePrincipal); len(owned) != 0 {
			t.Fatalf("node b: alice still owns %v", owned)
		}
		if b.IsOwner(app.AppID, directory.OwnedApplication, alice.ObjectID) {
			t.Fatal("node b: owner of a deleted application")
		}
	})
}

// TestOwnersLimit: at most MaxOwners per list.
func TestOwnersLimit(t *testing.T) {
	d, _ := newDirectory(t, teststore.SQLite(t))
	ctx := t.Context()
	app, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "many-owners"})
	must(t, err)
	for i := range directory.MaxOwners + 1 {
		sp, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "owner", ServicePrincipal: true})
		must(t, err)
		_, err = d.AddOwner(ctx, app.AppID, directory.OwnedApplication, sp.ObjectID)
		if i < directory.MaxOwners && err != nil || i == directory.MaxOwners && !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("owner %d: %v", i+1, err)
		}
	}
}

// TestServicePrincipalDeletion: deleting a service principal takes what
// belongs to that object — its directory roles, its own credentials, group
// memberships, app role assignments to it and by it, delegated grants —
// so that, created again with the same object id, it comes back with the
// application's credentials only, as a new service principal in Entra
// does. While deleted it holds no role and cannot join a group.
func TestServicePrincipalDeletion(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		a, _ := newDirectory(t, store)
		b, wb := newDirectory(t, store)
		ctx := t.Context()
		sp, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "doomed", ServicePrincipal: true,
			Roles: []string{directory.RoleUserAdministrator}})
		must(t, err)
		api, err := a.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "api", ServicePrincipal: true})
		must(t, err)
		role := directory.AppRole{ID: gatehouse.NewGUID(), Value: "Data.Read", DisplayName: "Read", AllowedMemberTypes: []string{"Application"}, IsEnabled: true}
		_, err = a.SetAppRoles(ctx, api.AppID, []directory.AppRole{role})
		must(t, err)
		_, err = a.SetAppRoles(ctx, sp.AppID, []directory.AppRole{role})
		must(t, err)
		_, err = a.AssignAppRole(ctx, api.ObjectID, sp.ObjectID, role.ID) // held by it
		must(t, err)
		_, err = a.AssignAppRole(ctx, sp.ObjectID, api.ObjectID, role.ID) // granted on it
		must(t, err)
		_, err = a.GrantPermission(ctx, directory.GrantSpec{ClientID: sp.ObjectID, ResourceID: api.ObjectID, ConsentType: directory.ConsentAllPrincipals, Scope: "x"})
		must(t, err)
		_, err = a.GrantPermission(ctx, directory.GrantSpec{ClientID: api.ObjectID, ResourceID: sp.ObjectID, ConsentType: directory.ConsentAllPrincipals, Scope: "y"})
		must(t, err)
		grp, err := a.CreateGroup(ctx, directory.GroupSpec{DisplayName: "ops", MailNickname: "ops"})
		must(t, err)
		_, err = a.AddGroupMember(ctx, grp.ObjectID, sp.ObjectID)
		must(t, err)
		_, appSecret, err := a.AddSecret(ctx, sp.AppID, directory.SecretSpec{DisplayName: "app's"})
		must(t, err)
		_, spSecret, err := a.AddSecret(ctx, sp.AppID, directory.SecretSpec{DisplayName: "sp's", ServicePrincipal: true})
		must(t, err)

		no, yes := false, true
		_, err = a.UpdateApplication(ctx, sp.AppID, directory.ApplicationUpdate{ServicePrincipal: &no})
		must(t, err)
		must(t, wb.Sync(ctx))
		for name, d := range map[string]*directory.Directory{"a": a, "b": b} {
			if d.HasRole(sp.ObjectID, directory.RoleUserAdministrator) || len(d.DirectoryRolesOf(sp.ObjectID)) != 0 {
				t.Errorf("node %s: a deleted service principal holds its directory role", name)
			}
			if len(d.GroupsOf(sp.ObjectID)) != 0 || len(d.AppRoleAssignmentsOf(sp.ObjectID)) != 0 {
				t.Errorf("node %s: memberships %v, app role assignments %v", name, d.GroupsOf(sp.ObjectID), d.AppRoleAssignmentsOf(sp.ObjectID))
			}
			if len(d.AppRoleAssignmentsOf(api.ObjectID)) != 0 || len(d.PermissionGrants(sp.TenantID)) != 0 {
				t.Errorf("node %s: assignments to its API %v, grants %v", name, d.AppRoleAssignmentsOf(api.ObjectID), d.PermissionGrants(sp.TenantID))
			}
		}
		if _, err := a.AddGroupMember(ctx, grp.ObjectID, sp.ObjectID); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("a deleted service principal joined a group: %v", err)
		}

		_, err = a.UpdateApplication(ctx, sp.AppID, directory.ApplicationUpdate{ServicePrincipal: &yes})
		must(t, err)
		must(t, wb.Sync(ctx))
		again, err := b.Application(sp.AppID)
		must(t, err)
		if len(again.Roles) != 0 || b.HasRole(sp.ObjectID, directory.RoleUserAdministrator) || len(b.GroupsOf(sp.ObjectID)) != 0 ||
			len(b.AppRoleAssignmentsOf(sp.ObjectID)) != 0 || len(b.AppRoleAssignmentsOf(api.ObjectID)) != 0 || len(b.PermissionGrants(sp.TenantID)) != 0 {
			t.Fatalf("created again, it has its old roles or links: %+v", again)
		}
		c, err := b.Client(again.TenantID, sp.AppID)
		must(t, err)
		now := time.Now()
		if err := c.CheckSecret(appSecret, now); err != nil {
			t.Errorf("the application's secret after the service principal came back: %v", err)
		}
		if err := c.CheckSecret(spSecret, now); err == nil {
			t.Error("the deleted service principal's own secret works again")
		}
	})
}
