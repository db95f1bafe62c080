package authority

import (
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
