package authority

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestGroupClaims: an application's groupMembershipClaims puts the
// subject's security groups (groups) and directory roles (wids) in tokens
// for its API and in the ID tokens it receives, follows membership
// changes, and switches to Entra's overage claims above MaxGroupsClaim
// groups; on both backends.
func TestGroupClaims(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		api := e.newApp(t, "reports-api", "api://reports")
		daemon := e.newApp(t, "reports-daemon")
		reader, err := e.n.d.CreateUser(ctx, directory.UserSpec{UserName: "rita@x.test", Password: sessionPassword,
			Roles: []string{directory.RoleDirectoryReaders}})
		if err != nil {
			t.Fatal(err)
		}
		group := func(name string, members ...string) *directory.Group {
			t.Helper()
			g, err := e.n.d.CreateGroup(ctx, directory.GroupSpec{DisplayName: name, MailNickname: name})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				if g, err = e.n.d.AddGroupMember(ctx, g.ObjectID, m); err != nil {
					t.Fatal(err)
				}
			}
			return g
		}
		g1 := group("analysts", e.user.ObjectID, daemon.app.ObjectID, reader.ObjectID)
		g2 := group("auditors", e.user.ObjectID)
		setClaims := func(v string) {
			t.Helper()
			if _, err := e.n.d.SetGroupMembershipClaims(ctx, api.app.AppID, v); err != nil {
				t.Fatal(err)
			}
			e.n.sync(t)
		}
		person := func(user string) *Claims {
			t.Helper()
			tok := e.post(t, "/adfs/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {CLIClientID},
				"username": {user}, "password": {sessionPassword}, "scope": {"api://reports/.default"}})
			c, err := e.n.a.Verify(ctx, tok.str("access_token"), "api://reports")
			if err != nil {
				t.Fatalf("%s's token: %d %v %v", user, tok.status, tok.body, err)
			}
			return c
		}
		app := func() (*Claims, map[string]any) {
			t.Helper()
			tok := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
				"client_id": {daemon.app.AppID}, "client_secret": {daemon.secret}, "scope": {"api://reports/.default"}})
			c, err := e.n.a.Verify(ctx, tok.str("access_token"), "api://reports")
			if err != nil {
				t.Fatalf("the daemon's token: %d %v %v", tok.status, tok.body, err)
			}
			return c, jwtPayload(t, tok.str("access_token"))
		}
		sorted := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

		// None (the default): no group claims.
		if c := person("pat@x.test"); c.Groups != nil || c.DirectoryRoles != nil {
			t.Fatalf("without groupMembershipClaims: %+v", c)
		}
		for _, bad := range []string{"Everything", "SecurityGroup,All", "Application Group"} {
			if _, err := e.n.d.SetGroupMembershipClaims(ctx, api.app.AppID, bad); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("groupMembershipClaims %q: %v, want ErrInvalid", bad, err)
			}
		}

		setClaims("securitygroup")
		if c := person("pat@x.test"); !slices.Equal(c.Groups, sorted(g1.ObjectID, g2.ObjectID)) || c.DirectoryRoles != nil {
			t.Fatalf("SecurityGroup, a person: %+v", c)
		}
		if c, p := app(); !slices.Equal(c.Groups, []string{g1.ObjectID}) || p["groups"] == nil || p["wids"] != nil {
			t.Fatalf("SecurityGroup, an application: %+v %v", c, p)
		}
		// Tokens for the server's own resources never carry them.
		tok := e.signIn(t, "https://management.azure.com/.default")
		if p := jwtPayload(t, tok.str("access_token")); p["groups"] != nil {
			t.Fatalf("ARM token with groups: %v", p)
		}

		setClaims("DirectoryRole")
		if c := person("rita@x.test"); c.Groups != nil || !slices.Equal(c.DirectoryRoles, []string{directory.RoleDirectoryReaders}) {
			t.Fatalf("DirectoryRole: %+v", c)
		}
		setClaims("All")
		if c := person("rita@x.test"); !slices.Equal(c.Groups, []string{g1.ObjectID}) || !slices.Equal(c.DirectoryRoles, []string{directory.RoleDirectoryReaders}) {
			t.Fatalf("All: %+v", c)
		}

		// Membership changes show in the next token.
		if _, err := e.n.d.RemoveGroupMember(ctx, g2.ObjectID, e.user.ObjectID); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if c := person("pat@x.test"); !slices.Equal(c.Groups, []string{g1.ObjectID}) {
			t.Fatalf("after leaving a group: %+v", c)
		}

		// The ID token of a client that asks for group claims names them too.
		webApp := e.newApp(t, "reports-web")
		if _, err := e.n.d.SetGroupMembershipClaims(ctx, webApp.app.AppID, "SecurityGroup"); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		signed := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "client_id": {webApp.app.AppID},
			"client_secret": {webApp.secret}, "username": {"pat@x.test"}, "password": {sessionPassword},
			"scope": {"openid profile https://management.azure.com/.default"}})
		if id := jwtPayload(t, signed.str("id_token")); fmt.Sprint(id["groups"]) != fmt.Sprint([]any{g1.ObjectID}) || id["aud"] != webApp.app.AppID {
			t.Fatalf("ID token groups: %d %v", signed.status, id)
		}
		plain := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "client_id": {CLIClientID},
			"username": {"pat@x.test"}, "password": {sessionPassword}, "scope": {"openid https://management.azure.com/.default"}})
		if id := jwtPayload(t, plain.str("id_token")); id["groups"] != nil {
			t.Fatalf("az's ID token with groups: %v", id)
		}

		// App roles granted to a group reach its members (and only while
		// they are members); ApplicationGroup names only such groups.
		roles := []directory.AppRole{
			{ID: "5a1f0c2e-1d3b-4c5a-8e7f-0a1b2c3d4e01", Value: "Reports.Read", DisplayName: "Read", AllowedMemberTypes: []string{"User"}, IsEnabled: true},
			{ID: "5a1f0c2e-1d3b-4c5a-8e7f-0a1b2c3d4e02", Value: "Reports.Export", DisplayName: "Export", AllowedMemberTypes: []string{"Application"}, IsEnabled: true}}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, roles); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.d.AssignAppRole(ctx, api.app.AppID, g1.ObjectID, roles[1].ID); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("an Application-only role to a group: %v", err)
		}
		if _, err := e.n.d.AssignAppRole(ctx, api.app.AppID, g2.ObjectID, roles[0].ID); err != nil {
			t.Fatal(err)
		}
		setClaims("ApplicationGroup")
		if c := person("pat@x.test"); c.Roles != nil || c.Groups != nil {
			t.Fatalf("not a member of the assigned group: %+v", c)
		}
		if _, err := e.n.d.AddGroupMember(ctx, g2.ObjectID, e.user.ObjectID); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if c := person("pat@x.test"); !slices.Equal(c.Roles, []string{"Reports.Read"}) || !slices.Equal(c.Groups, []string{g2.ObjectID}) {
			t.Fatalf("a member of the assigned group: roles %v groups %v", c.Roles, c.Groups)
		}
		if c := person("rita@x.test"); c.Roles != nil || c.Groups != nil {
			t.Fatalf("a member of other groups only: %+v", c)
		}
		// Through a member group: the groups claim follows nesting, app
		// roles (and ApplicationGroup) do not, as in Entra.
		sub := group("sub-auditors", reader.ObjectID)
		if _, err := e.n.d.AddGroupMember(ctx, g2.ObjectID, sub.ObjectID); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if c := person("rita@x.test"); c.Roles != nil || c.Groups != nil {
			t.Fatalf("ApplicationGroup through a member group: %+v", c)
		}
		setClaims("SecurityGroup")
		if c := person("rita@x.test"); !slices.Equal(c.Groups, sorted(g1.ObjectID, g2.ObjectID, sub.ObjectID)) || c.Roles != nil {
			t.Fatalf("SecurityGroup through a member group: groups %v roles %v", c.Groups, c.Roles)
		}

		// Above MaxGroupsClaim groups: the overage claims instead.
		for i := range MaxGroupsClaim {
			group(fmt.Sprintf("bulk-%03d", i), daemon.app.ObjectID)
		}
		e.n.sync(t)
		c, p := app()
		want := "https://localhost:8443/v1.0/servicePrincipals/" + daemon.app.ObjectID + "/getMemberObjects"
		if c.Groups != nil || c.GroupsOverage != want || p["groups"] != nil || fmt.Sprint(p["_claim_names"]) != "map[groups:src1]" {
			t.Fatalf("overage: %+v %v", c, p)
		}
		if len(e.n.d.GroupsOf(daemon.app.ObjectID)) != MaxGroupsClaim+1 {
			t.Fatal("the daemon should be in MaxGroupsClaim+1 groups")
		}
	})
}
