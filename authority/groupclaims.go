package authority

import (
	"cmp"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
)

// groupClaims are the group claims app asks its tokens to carry
// (groupMembershipClaims, directory/groupclaims.go) for principal p: its
// security groups (sorted object ids) and its directory roles. A principal
// in more than MaxGroupsClaim groups gets, instead of groups, the Graph
// endpoint that lists them (overage), as Entra does.
func (a *Authority) groupClaims(app *directory.Application, p gatehouse.Principal) (groups, wids []string, overage string) {
	wantGroups, wantWIDs := app.GroupClaims()
	if wantGroups {
		if app.GroupMembershipClaims == directory.GroupClaimsApplication {
			groups = app.AssignedGroups(a.dir.DirectGroupsOf(p.ObjectID))
		} else {
			groups = a.dir.GroupsOf(p.ObjectID)
		}
		slices.Sort(groups)
		if len(groups) > MaxGroupsClaim {
			kind := "servicePrincipals"
			if p.Type == gatehouse.PrincipalUser {
				kind = "users"
			}
			groups, overage = nil, a.base+"/v1.0/"+kind+"/"+p.ObjectID+"/getMemberObjects"
		}
	}
	if wantWIDs {
		wids = a.dir.DirectoryRolesOf(p.ObjectID)
	}
	return groups, wids, overage
}

// Permission is one delegated scope an app's sign-in asks for, as the
// portal shows it to the person.
type Permission struct {
	// Value is the scope (Orders.View); Name and Description its consent
	// text (the user consent text, else the admin's).
	Value, Name, Description string
}

// requestedPermissions are the delegated scopes a person's token for
// resource would carry for scope (personScope), with their consent text;
// none for the server's own resources, whose names say what they are.
// apiName is the API's display name.
func (a *Authority) requestedPermissions(tenantID, resource, scope string) (apiName string, out []Permission) {
	if a.KnownResource(resource) {
		return "", nil
	}
	app, err := a.dir.API(tenantID, resource)
	if err != nil {
		return "", nil
	}
	names, err := apiScopes(app, resource, scope)
	if err != nil {
		return app.DisplayName, nil
	}
	if names == nil {
		names = app.DelegatedScopes()
	}
	for _, n := range names {
		p := Permission{Value: n, Name: "Access " + app.DisplayName + " as you"}
		for _, s := range app.PermissionScopes {
			if s.Value == n {
				p.Name, p.Description = cmp.Or(s.UserConsentDisplayName, s.AdminConsentDisplayName), cmp.Or(s.UserConsentDescription, s.AdminConsentDescription)
			}
		}
		out = append(out, p)
	}
	return app.DisplayName, out
}
