package directory_test

import (
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestPermissionGrants: a grant is kept on its client and listed with
// both service principals' object ids; its consent type, principal and
// scope are checked; one grant per client, API and consent; the scope can
// be replaced and the grant removed; a grant on a deleted API is not
// listed.
func TestPermissionGrants(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		d, _ := newDirectory(t, store)
		ctx := t.Context()
		client, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "client", ServicePrincipal: true})
		must(t, err)
		api, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "api", ServicePrincipal: true})
		must(t, err)
		person, err := d.CreateUser(ctx, directory.UserSpec{UserName: "grant@example.test", Password: "a long password"})
		must(t, err)

		g, err := d.GrantPermission(ctx, directory.GrantSpec{ClientID: client.AppID, ResourceID: api.ObjectID,
			ConsentType: "allprincipals", Scope: "  Orders.View   openid "})
		must(t, err)
		if g.ID == "" || g.ClientID != client.ObjectID || g.ResourceID != api.ObjectID || g.ConsentType != directory.ConsentAllPrincipals ||
			g.Scope != "Orders.View openid" {
			t.Fatalf("grant %+v", g)
		}
		if _, err := d.GrantPermission(ctx, directory.GrantSpec{ClientID: client.ObjectID, ResourceID: api.AppID,
			ConsentType: "AllPrincipals", Scope: "x"}); !errors.Is(err, directory.ErrAlreadyExists) {
			t.Errorf("a second AllPrincipals grant: %v", err)
		}
		p, err := d.GrantPermission(ctx, directory.GrantSpec{ClientID: client.ObjectID, ResourceID: api.ObjectID,
			ConsentType: "Principal", PrincipalID: person.ObjectID, Scope: "Orders.View"})
		must(t, err)
		for _, bad := range []directory.GrantSpec{
			{ClientID: "nobody", ResourceID: api.ObjectID, ConsentType: "AllPrincipals"},
			{ClientID: client.ObjectID, ResourceID: "nothing", ConsentType: "AllPrincipals"},
			{ClientID: client.ObjectID, ResourceID: api.ObjectID, ConsentType: "Everyone"},
			{ClientID: client.ObjectID, ResourceID: api.ObjectID, ConsentType: "AllPrincipals", PrincipalID: person.ObjectID},
			{ClientID: client.ObjectID, ResourceID: api.ObjectID, ConsentType: "Principal", PrincipalID: client.ObjectID},
			{ClientID: client.ObjectID, ResourceID: api.ObjectID, ConsentType: "Principal", PrincipalID: person.ObjectID, Scope: "a\x00b"},
		} {
			if _, err := d.GrantPermission(ctx, bad); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		if got := d.PermissionGrants(""); len(got) != 2 || got[0].ID != g.ID || got[1].ID != p.ID || got[1].PrincipalID != person.ObjectID {
			t.Fatalf("grants %+v", got)
		}
		must(t, d.UpdatePermissionGrant(ctx, g.ID, "Orders.Edit"))
		must(t, d.RemovePermissionGrant(ctx, p.ID))
		if got := d.PermissionGrants(client.TenantID); len(got) != 1 || got[0].Scope != "Orders.Edit" {
			t.Fatalf("after update and remove: %+v", got)
		}
		if err := d.RemovePermissionGrant(ctx, p.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("removing it again: %v", err)
		}
		must(t, d.DeleteApplication(ctx, api.ObjectID))
		if got := d.PermissionGrants(""); len(got) != 0 {
			t.Errorf("a grant on a deleted API: %+v", got)
		}
	})
}
