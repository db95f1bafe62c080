package graphapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (g *API) listServicePrincipals(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "appId", "displayName", "servicePrincipalType", "servicePrincipalNames")
	if err != nil {
		return err
	}
	out := []servicePrincipalView{}
	all := g.mayRead(c)
	for _, a := range g.dir.Applications(c.Principal.TenantID) {
		if a.ServicePrincipal && (all || g.owns(c, a, directory.OwnedServicePrincipal)) {
			out = append(out, spView(a))
		}
	}
	mis, err := g.dir.ListManagedIdentities(r.Context(), "")
	if err != nil {
		return err
	}
	for _, mi := range mis {
		if mi.TenantID == c.Principal.TenantID && all { // owned by no one here
			out = append(out, miView(mi))
		}
	}
	out = slices.DeleteFunc(out, func(v servicePrincipalView) bool {
		return !f.keeps("appId", v.AppID) || !f.keeps("displayName", v.DisplayName) ||
			!f.keeps("servicePrincipalType", v.ServicePrincipalType) || !f.keeps("servicePrincipalNames", v.ServicePrincipalNames...)
	})
	return list(w, r, "servicePrincipals", out)
}

// servicePrincipal finds an application's service principal (by its object
// id or appId) or a managed identity.
func (g *API) servicePrincipal(id string) (*directory.Application, *directory.ManagedIdentity, error) {
	if a, err := g.dir.Application(id); err == nil && a.ServicePrincipal && (strings.EqualFold(id, a.ObjectID) || strings.EqualFold(id, a.AppID)) {
		return a, nil, nil
	}
	if mi, err := g.dir.ManagedIdentityByID(id); err == nil && gatehouse.IsGUID(id) {
		return nil, mi, nil
	}
	return nil, nil, notFound(id)
}

func (g *API) getServicePrincipal(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, mi, err := g.servicePrincipal(r.PathValue("id"))
	if err != nil {
		return err
	}
	var v servicePrincipalView
	if a != nil {
		v = spView(a)
	} else {
		v = miView(mi)
	}
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity"
	return entity(w, r, "servicePrincipals", v)
}

func (g *API) createServicePrincipal(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		AppID          string `json:"appId"`
		AccountEnabled *bool  `json:"accountEnabled"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	a, err := g.dir.Application(body.AppID)
	admin := g.dir.HasRole(c.Principal.ObjectID, rolesFor[appWrite]...)
	if err != nil || !strings.EqualFold(a.AppID, body.AppID) {
		if !admin {
			return errDenied()
		}
		return gatehouse.BadRequestf(codeBadRequest, "The appId '%s' of the service principal does not reference a valid application object.", clip(body.AppID))
	}
	// The application's owners may create its service principal (owners.go).
	if !admin {
		if err := g.authorizeOwner(r, c, a.AppObjectID, directory.OwnedApplication, true); err != nil {
			return err
		}
	}
	if a.ServicePrincipal {
		return gatehouse.Errorf(http.StatusConflict, codeAlreadyExists, "The service principal for application %s already exists.", a.AppID)
	}
	// The creator is its first owner, as in Entra.
	yes := true
	u := directory.ApplicationUpdate{ServicePrincipal: &yes, Enabled: body.AccountEnabled, ServicePrincipalOwner: c.Principal.ObjectID}
	if a, err = g.dir.UpdateApplication(r.Context(), a.AppObjectID, u); err != nil {
		return err
	}
	v := spView(a)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity"
	server.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func (g *API) patchServicePrincipal(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, mi, err := g.servicePrincipal(r.PathValue("id"))
	if err != nil {
		return err
	}
	if mi != nil {
		return badRequest("A managed identity's service principal is managed through its Azure resource.")
	}
	var body struct {
		AccountEnabled *bool   `json:"accountEnabled"`
		DisplayName    *string `json:"displayName"`
		// KeyCredentials replaces the service principal's own
		// certificates (az ad sp credential reset --create-cert).
		KeyCredentials *[]keyCredential `json:"keyCredentials"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if err := g.setCertificates(r, a, body.KeyCredentials, true); err != nil {
		return err
	}
	if _, err := g.dir.UpdateApplication(r.Context(), a.AppObjectID, directory.ApplicationUpdate{Enabled: body.AccountEnabled, DisplayName: body.DisplayName}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteServicePrincipal(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, mi, err := g.servicePrincipal(r.PathValue("id"))
	if err != nil {
		return err
	}
	if mi != nil {
		return badRequest("A managed identity's service principal is deleted with its Azure resource.")
	}
	no := false
	if _, err := g.dir.UpdateApplication(r.Context(), a.AppObjectID, directory.ApplicationUpdate{ServicePrincipal: &no}); err != nil {
		return err
	}
	if g.ServicePrincipalDeleted != nil {
		if err := g.ServicePrincipalDeleted(r.Context(), a.ObjectID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type userView struct {
	Context           string  `json:"@odata.context,omitempty"`
	ID                string  `json:"id"`
	UserPrincipalName string  `json:"userPrincipalName"`
	DisplayName       string  `json:"displayName"`
	AccountEnabled    bool    `json:"accountEnabled"`
	CreatedDateTime   *string `json:"createdDateTime"`
	// SignInSessionsValidFromDateTime: refresh tokens issued before it
	// are revoked.
	SignInSessionsValidFromDateTime *string `json:"signInSessionsValidFromDateTime"`
}

func toUserView(u *directory.User) userView {
	return userView{ID: u.ObjectID, UserPrincipalName: u.UserName, DisplayName: u.DisplayName,
		AccountEnabled: u.Enabled, CreatedDateTime: graphTime(u.Created),
		SignInSessionsValidFromDateTime: graphTime(u.SignInSessionsValidFrom)}
}

func (g *API) listUsers(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "userPrincipalName", "displayName")
	if err != nil {
		return err
	}
	out := []userView{}
	for _, u := range g.dir.Users(c.Principal.TenantID) {
		if !f.keeps("userPrincipalName", u.UserName) || !f.keeps("displayName", u.DisplayName) {
			continue
		}
		out = append(out, toUserView(u))
	}
	return list(w, r, "users", out)
}

func (g *API) getUser(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	u, err := g.dir.User(r.PathValue("id"))
	if err != nil {
		return notFound(r.PathValue("id"))
	}
	v := toUserView(u)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	return entity(w, r, "users", v)
}

// changeOwnPassword is POST /v1.0/me/changePassword: a person changes
// their own password, giving the current one (Graph's user: changePassword).
func (g *API) changeOwnPassword(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	if c.Principal.Type != gatehouse.PrincipalUser {
		return gatehouse.BadRequestf(codeBadRequest, "/me request is only valid with delegated authentication flow.")
	}
	var body struct {
		CurrentPassword string `json:"currentPassword"`
		NewPassword     string `json:"newPassword"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	u, err := g.dir.User(c.Principal.ObjectID)
	if err != nil {
		return notFound(c.Principal.ObjectID)
	}
	_, err = g.dir.ChangePassword(r.Context(), u.TenantID, u.UserName, body.CurrentPassword, body.NewPassword)
	switch {
	case errors.Is(err, directory.ErrInvalidPassword):
		return badRequest("Invalid currentPassword.")
	case errors.Is(err, directory.ErrDisabled):
		return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied", "The account is disabled.")
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getMe is GET /v1.0/me: the signed-in person (`az ad signed-in-user
// show`, which scripts use for their own object id). Needs no directory
// role; an application's token has no "me".
func (g *API) getMe(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	if c.Principal.Type != gatehouse.PrincipalUser {
		return gatehouse.BadRequestf(codeBadRequest, "/me request is only valid with delegated authentication flow.")
	}
	u, err := g.dir.User(c.Principal.ObjectID)
	if err != nil {
		return notFound(c.Principal.ObjectID)
	}
	v := toUserView(u)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	return entity(w, r, "users", v)
}

// passwordProfile is Graph's: a password (when setting one) and whether
// it is temporary. az ad user update --force-change-password-next-sign-in
// sends the flag alone.
type passwordProfile struct {
	Password                      string `json:"password"`
	ForceChangePasswordNextSignIn *bool  `json:"forceChangePasswordNextSignIn"`
}

func (g *API) createUser(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		UserPrincipalName string           `json:"userPrincipalName"`
		DisplayName       string           `json:"displayName"`
		AccountEnabled    *bool            `json:"accountEnabled"`
		MailNickname      string           `json:"mailNickname"`
		PasswordProfile   *passwordProfile `json:"passwordProfile"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.PasswordProfile == nil {
		return badRequest("The property 'passwordProfile' is required.")
	}
	u, err := g.dir.CreateUser(r.Context(), directory.UserSpec{UserName: body.UserPrincipalName,
		DisplayName: body.DisplayName, Password: body.PasswordProfile.Password, TenantID: c.Principal.TenantID,
		ForceChangePassword: body.PasswordProfile.ForceChangePasswordNextSignIn != nil && *body.PasswordProfile.ForceChangePasswordNextSignIn})
	if err != nil {
		return err
	}
	if body.AccountEnabled != nil && !*body.AccountEnabled {
		if u, err = g.dir.UpdateUser(r.Context(), u.ObjectID, directory.UserUpdate{Enabled: body.AccountEnabled}); err != nil {
			return err
		}
	}
	v := toUserView(u)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	server.WriteJSON(w, http.StatusCreated, v)
	return nil
}

// privilegedRoles are the directory roles whose holders only a Global
// Administrator may change, disable, delete or sign out: a User
// Administrator who could reset a Global Administrator's password would
// hold the directory (Entra protects administrators the same way).
var privilegedRoles = []string{directory.RoleGlobalAdministrator, directory.RoleApplicationAdministrator}

// mayManageUser refuses a write to u unless the caller may manage such a
// user: anyone with userWrite for a person without a privileged role, a
// Global Administrator for the others.
func (g *API) mayManageUser(c *authority.Claims, u *directory.User) error {
	if !slices.ContainsFunc(u.Roles, func(r string) bool { return slices.Contains(privilegedRoles, r) }) ||
		g.dir.HasRole(c.Principal.ObjectID, directory.RoleGlobalAdministrator) {
		return nil
	}
	return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied",
		"Insufficient privileges to complete the operation: the user holds an administrator role only a Global Administrator may manage.")
}

func (g *API) patchUser(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	u, err := g.dir.User(r.PathValue("id"))
	if err != nil {
		return notFound(r.PathValue("id"))
	}
	if err := g.mayManageUser(c, u); err != nil {
		return err
	}
	var body struct {
		DisplayName     *string          `json:"displayName"`
		AccountEnabled  *bool            `json:"accountEnabled"`
		PasswordProfile *passwordProfile `json:"passwordProfile"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	upd := directory.UserUpdate{DisplayName: body.DisplayName, Enabled: body.AccountEnabled}
	if pp := body.PasswordProfile; pp != nil {
		if pp.Password != "" {
			upd.Password = &pp.Password
		}
		// A new password without the flag is a permanent one, as in Graph
		// (the flag defaults to false); the flag alone marks the current
		// password temporary or not.
		force := pp.ForceChangePasswordNextSignIn != nil && *pp.ForceChangePasswordNextSignIn
		if pp.Password != "" || pp.ForceChangePasswordNextSignIn != nil {
			upd.ForceChangePassword = &force
		}
		if pp.Password == "" && pp.ForceChangePasswordNextSignIn == nil {
			return badRequest("The passwordProfile has neither a password nor forceChangePasswordNextSignIn.")
		}
	}
	if _, err := g.dir.UpdateUser(r.Context(), u.ObjectID, upd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteUser(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	u, err := g.dir.User(r.PathValue("id"))
	if err != nil {
		return notFound(r.PathValue("id"))
	}
	if err := g.mayManageUser(c, u); err != nil {
		return err
	}
	if err := g.dir.DeleteUser(r.Context(), u.ObjectID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Directory role assignments. Graph's unifiedRoleAssignment; the id is
// "{roleDefinitionId}_{principalId}" and the scope is always "/".
type roleAssignmentView struct {
	ID               string `json:"id"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

// rolePrincipal is whatever can hold a directory role: an application's
// service principal or a person.
type rolePrincipal struct {
	objectID string
	roles    []string
	setApp   string // app object id, for applications
	setUser  string // user object id, for people
}

func (g *API) rolePrincipal(id string) (*rolePrincipal, error) {
	if a, err := g.dir.Application(id); err == nil && a.ServicePrincipal && strings.EqualFold(a.ObjectID, id) {
		return &rolePrincipal{objectID: a.ObjectID, roles: a.Roles, setApp: a.AppObjectID}, nil
	}
	if u, err := g.dir.User(id); err == nil && strings.EqualFold(u.ObjectID, id) {
		return &rolePrincipal{objectID: u.ObjectID, roles: u.Roles, setUser: u.ObjectID}, nil
	}
	return nil, badRequest("The principal '%s' does not exist or cannot hold directory roles.", clip(id))
}

func (g *API) setRoles(r *http.Request, p *rolePrincipal, roles []string) error {
	if p.setApp != "" {
		_, err := g.dir.UpdateApplication(r.Context(), p.setApp, directory.ApplicationUpdate{Roles: &roles})
		return err
	}
	_, err := g.dir.UpdateUser(r.Context(), p.setUser, directory.UserUpdate{Roles: &roles})
	return err
}

func (g *API) listRoleAssignments(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "principalId", "roleDefinitionId")
	if err != nil {
		return err
	}
	out := []roleAssignmentView{}
	add := func(oid string, roles []string) {
		for _, role := range roles {
			v := roleAssignmentView{ID: role + "_" + oid, RoleDefinitionID: role, PrincipalID: oid, DirectoryScopeID: "/"}
			if !f.keeps("principalId", oid) || !f.keeps("roleDefinitionId", role) {
				continue
			}
			out = append(out, v)
		}
	}
	for _, a := range g.dir.Applications(c.Principal.TenantID) {
		add(a.ObjectID, a.Roles)
	}
	for _, u := range g.dir.Users(c.Principal.TenantID) {
		add(u.ObjectID, u.Roles)
	}
	return list(w, r, "roleManagement/directory/roleAssignments", out)
}

func (g *API) createRoleAssignment(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		DirectoryScopeID string `json:"directoryScopeId"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if _, ok := directory.RoleNames[strings.ToLower(body.RoleDefinitionID)]; !ok {
		return badRequest("The role definition '%s' is not supported.", clip(body.RoleDefinitionID))
	}
	if body.DirectoryScopeID != "" && body.DirectoryScopeID != "/" {
		return badRequest("Only the directory scope '/' is supported.")
	}
	p, err := g.rolePrincipal(body.PrincipalID)
	if err != nil {
		return err
	}
	role := strings.ToLower(body.RoleDefinitionID)
	if !slices.Contains(p.roles, role) {
		if err := g.setRoles(r, p, append(slices.Clone(p.roles), role)); err != nil {
			return err
		}
	}
	server.WriteJSON(w, http.StatusCreated, roleAssignmentView{ID: role + "_" + p.objectID, RoleDefinitionID: role,
		PrincipalID: p.objectID, DirectoryScopeID: "/"})
	return nil
}

func (g *API) deleteRoleAssignment(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	id := r.PathValue("id")
	role, oid, ok := strings.Cut(id, "_")
	if !ok {
		return notFound(id)
	}
	p, err := g.rolePrincipal(oid)
	if err != nil || !slices.Contains(p.roles, strings.ToLower(role)) {
		return notFound(id)
	}
	if p.objectID == c.Principal.ObjectID && strings.EqualFold(role, directory.RoleGlobalAdministrator) {
		return badRequest("A principal cannot remove its own Global Administrator role.")
	}
	roles := slices.DeleteFunc(slices.Clone(p.roles), func(x string) bool { return strings.EqualFold(x, role) })
	if err := g.setRoles(r, p, roles); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
