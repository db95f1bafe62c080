package graphapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// App roles (an application's appRoles) and their assignments, as Graph
// serves them: from the resource's side
// (/servicePrincipals/{resource}/appRoleAssignedTo) and from the
// principal's (/servicePrincipals/{sp}/appRoleAssignments,
// /users/{id}/appRoleAssignments). Tokens for the application's API carry
// the assigned roles' values in their roles claim.

type appRoleView struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName"`
	Description        string   `json:"description"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	IsEnabled          bool     `json:"isEnabled"`
	Origin             string   `json:"origin"`
}

func appRoleViews(a *directory.Application) []appRoleView {
	out := []appRoleView{}
	for _, r := range a.AppRoles {
		out = append(out, appRoleView{ID: r.ID, Value: r.Value, DisplayName: r.DisplayName, Description: r.Description,
			AllowedMemberTypes: append([]string{}, r.AllowedMemberTypes...), IsEnabled: r.IsEnabled, Origin: "Application"})
	}
	return out
}

// appRoleBody is an app role as a create or PATCH sends it.
type appRoleBody struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName"`
	Description        string   `json:"description"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	IsEnabled          *bool    `json:"isEnabled"`
	Origin             string   `json:"origin"`
}

func appRoles(body []appRoleBody) []directory.AppRole {
	out := make([]directory.AppRole, 0, len(body))
	for _, b := range body {
		enabled := b.IsEnabled == nil || *b.IsEnabled
		out = append(out, directory.AppRole{ID: b.ID, Value: b.Value, DisplayName: b.DisplayName, Description: b.Description,
			AllowedMemberTypes: b.AllowedMemberTypes, IsEnabled: enabled})
	}
	return out
}

type appRoleAssignmentView struct {
	Context              string  `json:"@odata.context,omitempty"`
	ID                   string  `json:"id"`
	AppRoleID            string  `json:"appRoleId"`
	CreatedDateTime      *string `json:"createdDateTime"`
	PrincipalID          string  `json:"principalId"`
	PrincipalDisplayName string  `json:"principalDisplayName"`
	PrincipalType        string  `json:"principalType"`
	ResourceID           string  `json:"resourceId"`
	ResourceDisplayName  string  `json:"resourceDisplayName"`
}

func (g *API) assignmentView(a directory.AppRoleAssignment) appRoleAssignmentView {
	v := appRoleAssignmentView{ID: a.ID, AppRoleID: a.AppRoleID, CreatedDateTime: graphTime(a.Created), PrincipalID: a.PrincipalID,
		ResourceID: a.ResourceID, PrincipalType: "ServicePrincipal"}
	if res, err := g.dir.Application(a.ResourceID); err == nil {
		v.ResourceDisplayName = res.DisplayName
	}
	if u, err := g.dir.User(a.PrincipalID); err == nil {
		v.PrincipalType, v.PrincipalDisplayName = "User", u.DisplayName
	} else if p, err := g.dir.Application(a.PrincipalID); err == nil {
		v.PrincipalDisplayName = p.DisplayName
	} else if mi, err := g.dir.ManagedIdentityByID(a.PrincipalID); err == nil {
		v.PrincipalDisplayName = mi.Name
	} else if grp, err := g.dir.Group(a.PrincipalID); err == nil {
		v.PrincipalType, v.PrincipalDisplayName = "Group", grp.DisplayName
	}
	return v
}

type assignmentBody struct {
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	AppRoleID   string `json:"appRoleId"`
}

// resourceApp is the application whose service principal is id.
func (g *API) resourceApp(id string) (*directory.Application, error) {
	a, mi, err := g.servicePrincipal(id)
	if err != nil {
		return nil, err
	}
	if mi != nil {
		return nil, badRequest("A managed identity defines no app roles.")
	}
	return a, nil
}

// POST /servicePrincipals/{id}/appRoleAssignedTo (id: the resource) and
// POST /servicePrincipals/{id}/appRoleAssignments,
// /users/{id}/appRoleAssignments, /groups/{id}/appRoleAssignments (id: the
// principal; a group's members hold the role).
func (g *API) assignAppRole(resourceSide bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
		var body assignmentBody
		if err := decode(r, &body); err != nil {
			return err
		}
		id := r.PathValue("id")
		if body.PrincipalID == "" || body.ResourceID == "" || body.AppRoleID == "" {
			return badRequest("principalId, resourceId and appRoleId are required.")
		}
		if resourceSide {
			res, err := g.resourceApp(id)
			if err != nil {
				return err
			}
			if !strings.EqualFold(body.ResourceID, res.ObjectID) {
				return badRequest("The resourceId in the body must be the service principal the path names.")
			}
		} else {
			oid, err := g.directoryObjectID(id)
			if err != nil {
				return err
			}
			if !strings.EqualFold(body.PrincipalID, oid) {
				return badRequest("The principalId in the body must be the object the path names.")
			}
		}
		if _, err := g.resourceApp(body.ResourceID); err != nil {
			return err
		}
		a, err := g.dir.AssignAppRole(r.Context(), body.ResourceID, body.PrincipalID, body.AppRoleID)
		if err != nil {
			return err
		}
		v := g.assignmentView(a)
		v.Context = "https://graph.microsoft.com/v1.0/$metadata#appRoleAssignments/$entity"
		server.WriteJSON(w, http.StatusCreated, v)
		return nil
	}
}

// GET /servicePrincipals/{id}/appRoleAssignedTo: who holds the resource's roles.
func (g *API) listAppRoleAssignedTo(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	res, err := g.resourceApp(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []appRoleAssignmentView{}
	for _, a := range res.AppRoleAssignments {
		// An assignment outlives a deleted principal in the record (its
		// object id is never reused); it is not shown.
		if v := g.assignmentView(a); v.PrincipalDisplayName != "" || v.PrincipalType == "User" {
			out = append(out, v)
		}
	}
	return list(w, r, "appRoleAssignments", out)
}

// GET /servicePrincipals/{id}/appRoleAssignments, /users/{id}/appRoleAssignments:
// the roles a principal holds.
func (g *API) listAppRoleAssignments(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	oid, err := g.directoryObjectID(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []appRoleAssignmentView{}
	for _, a := range g.dir.AppRoleAssignmentsOf(oid) {
		out = append(out, g.assignmentView(a))
	}
	return list(w, r, "appRoleAssignments", out)
}

// DELETE …/appRoleAssignedTo/{aid} (resource side) or
// …/appRoleAssignments/{aid} (principal side).
func (g *API) deleteAppRoleAssignment(resourceSide bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
		aid := r.PathValue("aid")
		if resourceSide {
			if _, err := g.resourceApp(r.PathValue("id")); err != nil {
				return err
			}
			if err := g.dir.RemoveAppRoleAssignment(r.Context(), r.PathValue("id"), aid); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		oid, err := g.directoryObjectID(r.PathValue("id"))
		if err != nil {
			return err
		}
		for _, a := range g.dir.AppRoleAssignmentsOf(oid) {
			if strings.EqualFold(a.ID, aid) {
				if err := g.dir.RemoveAppRoleAssignment(r.Context(), a.ResourceID, a.ID); err != nil {
					return err
				}
				w.WriteHeader(http.StatusNoContent)
				return nil
			}
		}
		return notFound(aid)
	}
}

// principalObjectID resolves a user (object id or name) or service
// principal (object id or appId) to its object id.
func (g *API) principalObjectID(id string) (string, error) {
	if u, err := g.dir.User(id); err == nil {
		return u.ObjectID, nil
	}
	a, mi, err := g.servicePrincipal(id)
	if err != nil {
		return "", err
	}
	if mi != nil {
		return mi.PrincipalID, nil
	}
	return a.ObjectID, nil
}
