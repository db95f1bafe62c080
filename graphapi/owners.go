package graphapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
)

// Owners of applications and service principals, as Entra serves them —
// what az ad app owner add|list|remove and az ad sp owner list send:
//
//	GET    /v1.0/{applications|servicePrincipals}/{id}/owners
//	POST   /v1.0/{applications|servicePrincipals}/{id}/owners/$ref  {"@odata.id": "https://…/v1.0/directoryObjects/{oid}"}
//	DELETE /v1.0/{applications|servicePrincipals}/{id}/owners/{oid}/$ref
//	GET    /v1.0/me/ownedObjects                                     (az ad app|sp list --show-mine)
//
// What owning grants: an owner manages the object without a directory
// role — reads it, updates it, adds and removes its credentials and
// federated credentials, deletes it, and adds and removes its owners (so
// only an owner or an administrator makes someone an owner). A caller
// without a reader role sees, in the lists, only what it owns. Owning
// never reaches further than the object: an object that holds a directory
// role (the bootstrap application, any administrator application) is
// written only by administrators, whoever owns it — its credentials would
// be the role. Whoever creates an application or service principal becomes
// its first owner; creating one still takes Global or Application
// Administrator (Gatehouse has no "users can register applications"
// setting: a principal without a directory role has no directory access).

// authorizeOwner lets the caller through when it owns the application (or,
// obj OwnedServicePrincipal, the service principal) id. A write is refused
// on an object that holds a directory role. Unknown and not-owned objects
// are refused alike, so a caller without a role learns nothing of what
// exists.
func (g *API) authorizeOwner(r *http.Request, c *authority.Claims, id string, obj directory.OwnedObject, write bool) error {
	a, err := g.ownable(id, obj)
	if err != nil || !g.dir.IsOwner(a.AppObjectID, obj, c.Principal.ObjectID) {
		return errDenied()
	}
	if write && len(a.Roles) > 0 {
		return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied",
			"Insufficient privileges to complete the operation: the %s holds a directory role, so only an administrator may change it.", objName(obj))
	}
	if write {
		noteOf(r).detail("grantedBy", "owner")
	}
	return nil
}

// mayChangePrivileged refuses a write to an application or service
// principal (its credentials, owners, settings) whose service principal
// holds an administrator role, unless the caller is a Global
// Administrator: its credentials are that role, so an Application
// Administrator who could add a secret to the bootstrap application would
// make itself Global Administrator (as mayManageUser keeps a User
// Administrator from resetting an administrator's password). An unknown
// id passes: the handler answers 404.
func (g *API) mayChangePrivileged(c *authority.Claims, id string, obj directory.OwnedObject) error {
	a, err := g.ownable(id, obj)
	if err != nil || !slices.ContainsFunc(a.Roles, func(r string) bool { return slices.Contains(privilegedRoles, r) }) ||
		g.dir.HasRole(c.Principal.ObjectID, directory.RoleGlobalAdministrator) {
		return nil
	}
	return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied",
		"Insufficient privileges to complete the operation: the %s holds an administrator role only a Global Administrator may manage.", objName(obj))
}

// ownable finds the object an owner route names: an application (by any
// of its ids, as the other /applications routes) or an application's
// service principal (its object id or appId). A managed identity's service
// principal has no owners here: it is managed through its Azure resource.
func (g *API) ownable(id string, obj directory.OwnedObject) (*directory.Application, error) {
	if obj == directory.OwnedApplication {
		return g.application(id)
	}
	a, _, err := g.servicePrincipal(id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, badRequest("A managed identity's service principal is managed through its Azure resource; it has no owners here.")
	}
	return a, nil
}

func objName(obj directory.OwnedObject) string {
	if obj == directory.OwnedServicePrincipal {
		return "service principal"
	}
	return "application"
}

// mayRead reports whether the caller may read the whole directory (a
// reader role); others see only what they own.
func (g *API) mayRead(c *authority.Claims) bool {
	return g.dir.HasRole(c.Principal.ObjectID, rolesFor[readAccess]...)
}

// owns reports whether the caller owns obj of a.
func (g *API) owns(c *authority.Claims, a *directory.Application, obj directory.OwnedObject) bool {
	return g.dir.IsOwner(a.AppObjectID, obj, c.Principal.ObjectID)
}

func (g *API) listOwners(obj directory.OwnedObject) handler {
	return func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
		id := r.PathValue("id")
		var owners []string
		if obj == directory.OwnedServicePrincipal {
			a, _, err := g.servicePrincipal(id)
			if err != nil {
				return err
			}
			if a != nil { // a managed identity has none
				owners = a.SPOwners
			}
		} else {
			a, err := g.application(id)
			if err != nil {
				return err
			}
			owners = a.Owners
		}
		out := []memberView{}
		for _, oid := range owners {
			if v, ok := g.member(oid); ok { // a principal deleted a moment ago is left out
				out = append(out, v)
			}
		}
		return list(w, r, "directoryObjects", out)
	}
}

// refObjectID reads the object id an @odata.id names
// ("https://graph.microsoft.com/v1.0/directoryObjects/{id}", or the same at
// this server, which az sends; Graph takes /users/{id} and the like too).
func refObjectID(ref string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	path := strings.TrimSuffix(u.Path, "/")
	return gatehouse.NormalizeGUID(path[strings.LastIndexByte(path, '/')+1:])
}

func (g *API) addOwner(obj directory.OwnedObject) handler {
	return func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
		a, err := g.ownable(r.PathValue("id"), obj)
		if err != nil {
			return err
		}
		var body struct {
			ODataID *string `json:"@odata.id"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.ODataID == nil {
			return badRequest("The property '@odata.id' is required: https://graph.microsoft.com/v1.0/directoryObjects/{id}.")
		}
		oid, ok := refObjectID(*body.ODataID)
		if !ok {
			return badRequest("Invalid object identifier '%s'.", clip(*body.ODataID))
		}
		noteOf(r).detail("principalId", oid)
		if _, err := g.dir.Group(oid); err == nil {
			return badRequest("A group cannot own an %s: owners are users and service principals.", objName(obj))
		}
		if _, err := g.dir.AddOwner(r.Context(), a.AppObjectID, obj, oid); err != nil {
			switch {
			case errors.Is(err, directory.ErrAlreadyExists):
				// Graph answers 400 here (az ad app owner add checks first).
				return badRequest("One or more added object references already exist for the following modified properties: 'owners'.")
			case errors.Is(err, directory.ErrNotFound):
				return notFound(oid)
			}
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (g *API) removeOwner(obj directory.OwnedObject) handler {
	return func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
		a, err := g.ownable(r.PathValue("id"), obj)
		if err != nil {
			return err
		}
		oid := r.PathValue("oid")
		noteOf(r).detail("principalId", clip(oid))
		if _, err := g.dir.RemoveOwner(r.Context(), a.AppObjectID, obj, oid); err != nil {
			if errors.Is(err, directory.ErrNotFound) {
				return notFound(oid)
			}
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// listOwnedObjects is GET /v1.0/me/ownedObjects: the applications and
// service principals the signed-in person owns (az ad app list
// --show-mine and az ad sp list --show-mine filter it by @odata.type).
func (g *API) listOwnedObjects(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	if c.Principal.Type != gatehouse.PrincipalUser {
		return gatehouse.BadRequestf(codeBadRequest, "/me request is only valid with delegated authentication flow.")
	}
	out := []any{}
	for _, a := range g.dir.OwnedBy(c.Principal.ObjectID, directory.OwnedApplication) {
		v := appView(a)
		v.ODataType = "#microsoft.graph.application"
		out = append(out, v)
	}
	for _, a := range g.dir.OwnedBy(c.Principal.ObjectID, directory.OwnedServicePrincipal) {
		v := spView(a)
		v.ODataType = "#microsoft.graph.servicePrincipal"
		out = append(out, v)
	}
	return list(w, r, "directoryObjects", out)
}
