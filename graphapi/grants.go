package graphapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// Delegated permission grants (directory/grants.go: kept and listed;
// consent is implicit here):
//
//	GET|POST /v1.0/oauth2PermissionGrants   ($filter clientId|resourceId|consentType|principalId eq '…', joined by and)
//	GET|PATCH|DELETE /v1.0/oauth2PermissionGrants/{id}   (PATCH: scope)
//
// What az ad app permission grant and list-grants send.

type grantView struct {
	Context     string  `json:"@odata.context,omitempty"`
	ID          string  `json:"id"`
	ClientID    string  `json:"clientId"`
	ConsentType string  `json:"consentType"`
	PrincipalID *string `json:"principalId"`
	ResourceID  string  `json:"resourceId"`
	Scope       string  `json:"scope"`
}

func grantJSON(g directory.PermissionGrant) grantView {
	return grantView{ID: g.ID, ClientID: g.ClientID, ConsentType: g.ConsentType, PrincipalID: strp(g.PrincipalID),
		ResourceID: g.ResourceID, Scope: g.Scope}
}

// grantEntity is one grant as Graph answers for it alone.
func grantEntity(pg directory.PermissionGrant) grantView {
	v := grantJSON(pg)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#oauth2PermissionGrants/$entity"
	return v
}

func (g *API) listGrants(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "clientId", "resourceId", "consentType", "principalId")
	if err != nil {
		return err
	}
	out := []grantView{}
	for _, pg := range g.dir.PermissionGrants(c.Principal.TenantID) {
		if f.keeps("clientId", pg.ClientID) && f.keeps("resourceId", pg.ResourceID) && f.keeps("consentType", pg.ConsentType) &&
			f.keeps("principalId", pg.PrincipalID) {
			out = append(out, grantJSON(pg))
		}
	}
	return list(w, r, "oauth2PermissionGrants", out)
}

func (g *API) grant(id string) (directory.PermissionGrant, error) {
	for _, pg := range g.dir.PermissionGrants("") {
		if pg.ID == id {
			return pg, nil
		}
	}
	return directory.PermissionGrant{}, notFound(id)
}

func (g *API) getGrant(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	pg, err := g.grant(r.PathValue("id"))
	if err != nil {
		return err
	}
	return entity(w, r, "oauth2PermissionGrants", grantEntity(pg))
}

func (g *API) createGrant(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		ClientID    string  `json:"clientId"`
		ConsentType string  `json:"consentType"`
		PrincipalID *string `json:"principalId"`
		ResourceID  string  `json:"resourceId"`
		Scope       string  `json:"scope"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.ClientID == "" || body.ResourceID == "" || body.ConsentType == "" {
		return badRequest("The properties 'clientId', 'consentType' and 'resourceId' are required.")
	}
	spec := directory.GrantSpec{ClientID: body.ClientID, ResourceID: body.ResourceID, ConsentType: body.ConsentType, Scope: body.Scope}
	if body.PrincipalID != nil {
		spec.PrincipalID = *body.PrincipalID
	}
	pg, err := g.dir.GrantPermission(r.Context(), spec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "https://graph.microsoft.com/v1.0/oauth2PermissionGrants/"+pg.ID)
	server.WriteJSON(w, http.StatusCreated, grantEntity(pg))
	return nil
}

func (g *API) patchGrant(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		Scope *string `json:"scope"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if _, err := g.grant(r.PathValue("id")); err != nil {
		return err
	}
	if body.Scope != nil {
		if err := g.dir.UpdatePermissionGrant(r.Context(), r.PathValue("id"), *body.Scope); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteGrant(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	if _, err := g.grant(r.PathValue("id")); err != nil {
		return err
	}
	if err := g.dir.RemovePermissionGrant(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
