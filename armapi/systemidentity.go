package armapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// A resource's system-assigned identity as Microsoft.ManagedIdentity shows
// it (armmsi's SystemAssignedIdentitiesClient.GetByScope, azure-mgmt-msi's
// system_assigned_identities.get_by_scope):
//
//	GET {scope}/providers/Microsoft.ManagedIdentity/identities/default
//
// Of the resources Gatehouse serves, only AI accounts have one (identity
// type SystemAssigned, or "SystemAssigned, UserAssigned"): vaults and
// user-assigned identities have none, as in Azure, and neither do groups
// and subscriptions. A resource without one is 404 ResourceNotFound.
//
// properties.clientSecretUrl is left out: on Azure it is where the
// resource's host fetches the identity's credentials, and a Gatehouse
// managed identity has none — its tokens come from the node's loopback
// managed-identity endpoint, to a process holding an identity header
// (gatehouse run), which no URL here could stand for.

const (
	// actSystemIdentityRead is Azure's action for reading a system-assigned
	// identity ("Gets an existing system assigned identity"), checked at
	// the resource: Reader, Contributor and Owner have it (*/read, *).
	actSystemIdentityRead = "Microsoft.ManagedIdentity/identities/read"
	systemIdentityType    = "Microsoft.ManagedIdentity/identities"
)

var systemIdentityRoutes = []route{
	{method: "GET", pattern: "{scope*}/providers/Microsoft.ManagedIdentity/identities/default", family: famMSI, handle: getSystemIdentity},
}

type systemIdentityJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties struct {
		TenantID    string `json:"tenantId"`
		PrincipalID string `json:"principalId"`
		ClientID    string `json:"clientId"`
	} `json:"properties"`
}

func getSystemIdentity(c *call) error {
	scope := c.scope
	if err := c.authorize(actSystemIdentityRead, scope); err != nil {
		return err
	}
	// The scope must exist (404 SubscriptionNotFound, ResourceGroupNotFound,
	// ResourceNotFound) before "it has no identity" means anything.
	if err := c.checkScope(scope); err != nil {
		return err
	}
	none := gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource '%s/default' under scope '%s' was not found: the resource has no system-assigned identity.",
		systemIdentityType, clip(scope.String()))
	if scope.Scope != nil || len(scope.Types) != 1 || !strings.EqualFold(scope.Type(), "Microsoft.CognitiveServices/accounts") {
		return none
	}
	a, err := c.api.opts.Accounts.Get(c.ctx(), scope)
	if err != nil {
		return err
	}
	if a.Identity == nil || a.Identity.System == nil {
		return none
	}
	v := systemIdentityJSON{ID: a.ID + "/providers/" + systemIdentityType + "/default", Name: "default",
		Type: systemIdentityType, Location: a.Location, Tags: map[string]string{}}
	p := &v.Properties
	p.TenantID, p.PrincipalID, p.ClientID = a.Identity.System.TenantID, a.Identity.System.PrincipalID, a.Identity.System.ClientID
	// The directory's record is the identity itself (the account keeps a
	// reference to it); its tags are the identity's own.
	if ids := c.api.opts.Identities; ids != nil {
		mi, ok, err := ids.GetIdentity(c.ctx(), a.ID)
		if err != nil {
			return err
		}
		if ok {
			p.TenantID, p.PrincipalID, p.ClientID = mi.TenantID, mi.PrincipalID, mi.ClientID
			if mi.Tags != nil {
				v.Tags = mi.Tags
			}
		}
	}
	return c.reply(http.StatusOK, v)
}
