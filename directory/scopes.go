package directory

import (
	"context"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Delegated permission scopes: what a web API lets an application do on a
// person's behalf (Graph's api.oauth2PermissionScopes, the portal's
// "Expose an API → Add a scope"). A person's token for the API carries,
// in scp, the scopes the request named ({resource}/access_as_user), or
// every enabled one for {resource}/.default. Consent is implicit here —
// as in a tenant whose administrator consented for everyone — so an
// "Admin" scope is granted like a "User" one; the type is kept for the
// API's own documentation and for clients that read it.
//
// An API that defines no scopes offers one, user_impersonation, as
// Gatehouse did before scopes could be defined (and as Azure's own APIs
// do).

// Limits.
const (
	MaxPermissionScopes  = 100
	maxScopeValue        = 120
	maxScopeDescription  = 1024
	DefaultDelegatedName = "user_impersonation"
)

// PermissionScope is one delegated permission an application's API
// exposes.
type PermissionScope struct {
	ID    string `json:"id"`
	Value string `json:"value"`
	// Type is "User" or "Admin" (who may consent, in Entra).
	Type                    string `json:"type"`
	IsEnabled               bool   `json:"isEnabled"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName"`
	AdminConsentDescription string `json:"adminConsentDescription,omitempty"`
	UserConsentDisplayName  string `json:"userConsentDisplayName,omitempty"`
	UserConsentDescription  string `json:"userConsentDescription,omitempty"`
}

// validScopeValue: Graph's rule — no spaces or quotes, not starting with a
// dot, printable ASCII.
func validScopeValue(v string) bool {
	if v == "" || len(v) > maxScopeValue || v[0] == '.' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func validPermissionScopes(scopes, old []PermissionScope, roles []AppRole) ([]PermissionScope, error) {
	if len(scopes) > MaxPermissionScopes {
		return nil, invalid("api.oauth2PermissionScopes", "An application exposes at most %d delegated permission scopes.", MaxPermissionScopes)
	}
	out := make([]PermissionScope, 0, len(scopes))
	ids, values := map[string]bool{}, map[string]bool{}
	for _, s := range scopes {
		id, ok := gatehouse.NormalizeGUID(s.ID)
		if s.Type == "" {
			s.Type = "User"
		}
		switch {
		case !ok:
			return nil, invalid("api.oauth2PermissionScopes.id", "Permission scope id %q is not a GUID.", clip(s.ID))
		case !validScopeValue(s.Value):
			return nil, invalid("api.oauth2PermissionScopes.value", "Permission scope value %q must have 1 to %d printable characters, no spaces, quotes or backslashes, and not start with a dot.", clip(s.Value), maxScopeValue)
		case strings.EqualFold(s.Value, "openid") || strings.EqualFold(s.Value, "profile") || strings.EqualFold(s.Value, "email") || strings.EqualFold(s.Value, "offline_access"):
			return nil, invalid("api.oauth2PermissionScopes.value", "Permission scope value %q is an OpenID Connect scope; choose another.", clip(s.Value))
		case s.Type != "User" && s.Type != "Admin":
			return nil, invalid("api.oauth2PermissionScopes.type", "Permission scope %q: type is User or Admin, not %q.", clip(s.Value), clip(s.Type))
		case validDisplayName(s.AdminConsentDisplayName) != nil:
			return nil, invalid("api.oauth2PermissionScopes.adminConsentDisplayName", "Permission scope %q needs an adminConsentDisplayName (printable, at most %d characters).", clip(s.Value), maxDisplayName)
		case s.UserConsentDisplayName != "" && validDisplayName(s.UserConsentDisplayName) != nil:
			return nil, invalid("api.oauth2PermissionScopes.userConsentDisplayName", "Permission scope %q: userConsentDisplayName must be printable, at most %d characters.", clip(s.Value), maxDisplayName)
		case len(s.AdminConsentDescription) > maxScopeDescription || len(s.UserConsentDescription) > maxScopeDescription:
			return nil, invalid("api.oauth2PermissionScopes", "A permission scope's descriptions have at most %d characters.", maxScopeDescription)
		case ids[id]:
			return nil, invalid("api.oauth2PermissionScopes.id", "Permission scope id %s is listed twice.", id)
		case slices.ContainsFunc(roles, func(r AppRole) bool { return r.ID == id }):
			return nil, invalid("api.oauth2PermissionScopes.id", "Permission scope id %s is the id of one of the application's app roles; ids are unique across both.", id)
		case values[strings.ToLower(s.Value)]:
			return nil, invalid("api.oauth2PermissionScopes.value", "Permission scope value %q is listed twice.", clip(s.Value))
		}
		ids[id], values[strings.ToLower(s.Value)] = true, true
		s.ID = id
		out = append(out, s)
	}
	// As Graph: an enabled scope is disabled before it is removed, so no
	// client loses a permission in one step.
	for _, o := range old {
		if o.IsEnabled && !ids[o.ID] {
			return nil, invalid("api.oauth2PermissionScopes", "Permission scope %q is enabled: disable it (isEnabled false) before removing it.", clip(o.Value))
		}
	}
	return out, nil
}

// SetPermissionScopes replaces the delegated permission scopes the API of
// the application whose id is id exposes. ErrNotFound, ErrInvalid.
func (d *Directory) SetPermissionScopes(ctx context.Context, id string, scopes []PermissionScope) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		out, err := validPermissionScopes(scopes, r.PermissionScopes, r.AppRoles)
		if err != nil {
			return err
		}
		if slices.Equal(out, r.PermissionScopes) {
			return errNoChange
		}
		r.PermissionScopes = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// SetAccessTokenVersion keeps the application API's
// requestedAccessTokenVersion (1 or 2, or 0 for none). ErrNotFound,
// ErrInvalid.
func (d *Directory) SetAccessTokenVersion(ctx context.Context, id string, v int) (*Application, error) {
	if v < 0 || v > 2 {
		return nil, invalid("api.requestedAccessTokenVersion", "The access token version is 1 or 2.")
	}
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if r.AccessTokenVersion == v {
			return errNoChange
		}
		r.AccessTokenVersion = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// DelegatedScopes are the scope values a person's token for the
// application's API may carry: its enabled permission scopes, in the order
// it defines them, or user_impersonation when it defines none.
func (a *Application) DelegatedScopes() []string {
	if len(a.PermissionScopes) == 0 {
		return []string{DefaultDelegatedName}
	}
	var out []string
	for _, s := range a.PermissionScopes {
		if s.IsEnabled {
			out = append(out, s.Value)
		}
	}
	return out
}

// Required resource access: the permissions an application declares it
// needs from other APIs (Graph's requiredResourceAccess, the portal's "API
// permissions", az ad app permission add|list|delete). Consent is
// implicit here, so the declaration is kept and shown, and tokens do not
// depend on it.

// MaxRequiredResources bounds an application's declared APIs.
const MaxRequiredResources = 50

// RequiredResourceAccess is the access an application declares to one API.
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// ResourceAccess is one declared permission: a delegated scope ("Scope")
// or an app role ("Role") of the API, by id.
type ResourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func validRequiredAccess(list []RequiredResourceAccess) ([]RequiredResourceAccess, error) {
	if len(list) > MaxRequiredResources {
		return nil, invalid("requiredResourceAccess", "An application declares access to at most %d APIs.", MaxRequiredResources)
	}
	out := make([]RequiredResourceAccess, 0, len(list))
	seen := map[string]bool{}
	for _, r := range list {
		app, ok := gatehouse.NormalizeGUID(r.ResourceAppID)
		switch {
		case !ok:
			return nil, invalid("requiredResourceAccess.resourceAppId", "resourceAppId %q is not a GUID.", clip(r.ResourceAppID))
		case seen[app]:
			return nil, invalid("requiredResourceAccess.resourceAppId", "The API %s is listed twice: list its permissions once.", app)
		case len(r.ResourceAccess) > MaxPermissionScopes+MaxAppRoles:
			return nil, invalid("requiredResourceAccess.resourceAccess", "At most %d permissions per API.", MaxPermissionScopes+MaxAppRoles)
		}
		seen[app] = true
		entry := RequiredResourceAccess{ResourceAppID: app, ResourceAccess: []ResourceAccess{}}
		for _, a := range r.ResourceAccess {
			id, ok := gatehouse.NormalizeGUID(a.ID)
			switch {
			case !ok:
				return nil, invalid("requiredResourceAccess.resourceAccess.id", "Permission id %q is not a GUID.", clip(a.ID))
			case a.Type != "Scope" && a.Type != "Role":
				return nil, invalid("requiredResourceAccess.resourceAccess.type", "A permission's type is Scope or Role, not %q.", clip(a.Type))
			}
			a.ID = id
			if !slices.Contains(entry.ResourceAccess, a) { // az ad app permission add may repeat one
				entry.ResourceAccess = append(entry.ResourceAccess, a)
			}
		}
		out = append(out, entry)
	}
	return out, nil
}

// SetRequiredResourceAccess replaces the application's declared access to
// other APIs. ErrNotFound, ErrInvalid.
func (d *Directory) SetRequiredResourceAccess(ctx context.Context, id string, list []RequiredResourceAccess) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	out, err := validRequiredAccess(list)
	if err != nil {
		return nil, err
	}
	e, err = d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		r.RequiredAccess = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}
