package authority

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestAppRoles: an API's app roles reach the roles claim of the tokens of
// the principals they are assigned to — apps (client credentials) and
// people — and nobody else's, on both backends.
func TestAppRoles(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		api := e.newApp(t, "orders-api", "api://orders")
		daemon := e.newApp(t, "daemon")
		stranger := e.newApp(t, "stranger")
		read, admin, people := gatehouse.NewGUID(), gatehouse.NewGUID(), gatehouse.NewGUID()
		roles := []directory.AppRole{
			{ID: read, Value: "Orders.Read", DisplayName: "Read orders", AllowedMemberTypes: []string{"Application"}, IsEnabled: true},
			{ID: admin, Value: "Orders.Admin", DisplayName: "Administer orders", AllowedMemberTypes: []string{"Application", "User"}, IsEnabled: true},
			{ID: people, Value: "Orders.Approve", DisplayName: "Approve orders", AllowedMemberTypes: []string{"User"}, IsEnabled: true},
		}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, roles); err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string][]directory.AppRole{
			"no GUID":         {{ID: "x", Value: "A", DisplayName: "A", AllowedMemberTypes: []string{"User"}}},
			"space in value":  {{ID: gatehouse.NewGUID(), Value: "A B", DisplayName: "A", AllowedMemberTypes: []string{"User"}}},
			"no member type":  {{ID: gatehouse.NewGUID(), Value: "A", DisplayName: "A"}},
			"bad type":        {{ID: gatehouse.NewGUID(), Value: "A", DisplayName: "A", AllowedMemberTypes: []string{"Group"}}},
			"same value":      append(slices.Clone(roles), directory.AppRole{ID: gatehouse.NewGUID(), Value: "orders.read", DisplayName: "x", AllowedMemberTypes: []string{"User"}}),
			"enabled removed": roles[:2],
		} {
			if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, bad); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		assign := func(principal, role string) error {
			_, err := e.n.d.AssignAppRole(ctx, api.app.ObjectID, principal, role)
			return err
		}
		if err := assign(daemon.app.ObjectID, read); err != nil {
			t.Fatal(err)
		}
		if err := assign(daemon.app.ObjectID, admin); err != nil {
			t.Fatal(err)
		}
		if err := assign(e.user.ObjectID, people); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"twice":             assign(daemon.app.ObjectID, read),
			"user-only to app":  assign(daemon.app.ObjectID, people),
			"app-only to user":  assign(e.user.ObjectID, read),
			"unknown role":      assign(daemon.app.ObjectID, gatehouse.NewGUID()),
			"unknown principal": assign(gatehouse.NewGUID(), read),
		} {
			if err == nil {
				t.Errorf("%s: assigned", name)
			}
		}
		e.n.sync(t)

		appToken := func(app oboApp) *Claims {
			t.Helper()
			a := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
				"client_id": {app.app.AppID}, "client_secret": {app.secret}, "scope": {"api://orders/.default"}})
			c, err := e.n.a.Verify(ctx, a.str("access_token"), "api://orders")
			if err != nil {
				t.Fatalf("%s: %d %v %v", app.app.DisplayName, a.status, a.body, err)
			}
			return c
		}
		if c := appToken(daemon); !slices.Equal(c.Roles, []string{"Orders.Read", "Orders.Admin"}) {
			t.Fatalf("daemon's roles: %v", c.Roles)
		}
		if c := appToken(stranger); len(c.Roles) != 0 {
			t.Fatalf("stranger's roles: %v", c.Roles)
		}
		tok := e.signIn(t, "api://orders/.default")
		if c, err := e.n.a.Verify(ctx, tok.str("access_token"), "api://orders"); err != nil || !slices.Equal(c.Roles, []string{"Orders.Approve"}) {
			t.Fatalf("person's roles: %+v %v", c, err)
		}
		// Roles belong to the API: a token for another resource has none.
		if c, err := e.n.a.Verify(ctx, e.signIn(t, scopeARM).str("access_token"), ManagementAudiences...); err != nil || len(c.Roles) != 0 {
			t.Fatalf("ARM token's roles: %+v %v", c, err)
		}

		// A managed identity asks the identity endpoint for the API, with the
		// role granted to it.
		mi, err := e.n.d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker"})
		if err != nil {
			t.Fatal(err)
		}
		if err := assign(mi.PrincipalID, read); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		e.n.a.SetMSIEndpoint("http://127.0.0.1:1/msi/token")
		_, header, err := e.n.a.CreateIdentityHeader(ctx, "test", mi, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, resource := range []string{"api://orders", "api://nobody"} {
			req := httptest.NewRequest("GET", "/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(resource), nil)
			req.Header.Set("X-IDENTITY-HEADER", header)
			w := httptest.NewRecorder()
			e.n.a.MSIHandler().ServeHTTP(w, req)
			var body struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if resource == "api://nobody" {
				if w.Code != 400 {
					t.Fatalf("identity endpoint, unknown API: %d %s", w.Code, w.Body)
				}
				continue
			}
			c, err := e.n.a.Verify(ctx, body.AccessToken, resource)
			if w.Code != 200 || err != nil || !c.Principal.ManagedIdentity || !slices.Equal(c.Roles, []string{"Orders.Read"}) {
				t.Fatalf("identity endpoint for the API: %d %+v %v", w.Code, c, err)
			}
		}

		// Disabled roles leave the tokens; removing a role removes its assignments.
		roles[1].IsEnabled = false
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, roles); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if c := appToken(daemon); !slices.Equal(c.Roles, []string{"Orders.Read"}) {
			t.Fatalf("daemon's roles with Orders.Admin disabled: %v", c.Roles)
		}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, []directory.AppRole{roles[0], roles[2]}); err != nil {
			t.Fatal(err)
		}
		got, err := e.n.d.Application(api.app.AppID)
		if err != nil || len(got.AppRoleAssignments) != 3 {
			t.Fatalf("assignments after removing a role: %+v %v", got, err)
		}
		// Removing an assignment.
		held := e.n.d.AppRoleAssignmentsOf(daemon.app.ObjectID)
		if len(held) != 1 || held[0].ResourceID != api.app.ObjectID {
			t.Fatalf("daemon's assignments: %+v", held)
		}
		if err := e.n.d.RemoveAppRoleAssignment(ctx, api.app.ObjectID, held[0].ID); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if c := appToken(daemon); len(c.Roles) != 0 {
			t.Fatalf("daemon's roles after removal: %v", c.Roles)
		}
	})
}
