package armapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// actElevateAccess is the action elevateAccess is refused and audited as.
const actElevateAccess = "Microsoft.Authorization/elevateAccess/action"

// Directory answers whether a principal holds a directory role (the
// elevation below is for Global Administrators).
type Directory interface {
	HasRole(objectID string, roles ...string) bool
}

// POST /providers/Microsoft.Authorization/elevateAccess: a directory Global
// Administrator gives themselves User Access Administrator at the root
// scope "/" — Azure's way back into subscriptions whose owners are gone
// (armauthorization's GlobalAdministratorClient.ElevateAccess; az rest).
// 200 with no body, also when the assignment already exists. Anyone else
// gets 403 AuthorizationFailed. The assignment is an ordinary one at "/":
// listed with atScope() at "/", removed with DELETE
// /providers/Microsoft.Authorization/roleAssignments/{name}, as in Azure.
func elevateAccess(c *call) error {
	root := &gatehouse.ResourceID{}
	c.action, c.auditScope = actElevateAccess, root.String()
	d := c.api.opts.Directory
	if c.principal.ObjectID == "" || d == nil || !d.HasRole(c.principal.ObjectID, directory.RoleGlobalAdministrator) {
		c.denied = true
		return errAuthorizationFailed(c.principal, actElevateAccess, root)
	}
	c.detail("principalId", c.principal.ObjectID)
	c.detail("roleDefinitionId", authz.RoleUserAccessAdministrator)
	existing := c.api.opts.Authz.Assignments(authz.AssignmentFilter{Scope: root, AtScope: true,
		PrincipalID: c.principal.ObjectID, RoleID: authz.RoleUserAccessAdministrator})
	if len(existing) > 0 {
		c.detail("name", existing[0].Name)
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	spec := authz.AssignmentSpec{
		RoleDefinitionID: "/providers/Microsoft.Authorization/roleDefinitions/" + authz.RoleUserAccessAdministrator,
		PrincipalID:      c.principal.ObjectID,
	}
	a, _, err := c.api.opts.Authz.CreateAssignment(c.ctx(), root, gatehouse.NewGUID(), spec, c.principal.ObjectID)
	if e, ok := gatehouse.AsError(err); ok && e.Code == "RoleAssignmentExists" {
		// A concurrent elevation of the same administrator got there first.
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	if err != nil {
		return err
	}
	c.detail("name", a.Name)
	c.w.WriteHeader(http.StatusOK)
	return nil
}
