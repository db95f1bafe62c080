package graphapi

import (
	"encoding/json"

	"github.com/gatehouse/gatehouse/directory"
)

// The api property of an application: the delegated permission scopes
// its API exposes (oauth2PermissionScopes; directory/scopes.go), which a
// person's token for the API carries in scp. The rest of Graph's api
// object is shown with its defaults and accepted only as those defaults:
// consent is implicit here, so there is nothing to pre-authorize
// (preAuthorizedApplications, knownClientApplications). Its
// requestedAccessTokenVersion (1 or 2) is kept and shown, so a tool that
// set it reads back what it wrote, though tokens here have one format.

type permissionScopeView struct {
	ID                      string `json:"id"`
	Value                   string `json:"value"`
	Type                    string `json:"type"`
	IsEnabled               bool   `json:"isEnabled"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName"`
	AdminConsentDescription string `json:"adminConsentDescription"`
	UserConsentDisplayName  string `json:"userConsentDisplayName"`
	UserConsentDescription  string `json:"userConsentDescription"`
}

type apiView struct {
	AcceptMappedClaims          *bool                 `json:"acceptMappedClaims"`
	KnownClientApplications     []string              `json:"knownClientApplications"`
	OAuth2PermissionScopes      []permissionScopeView `json:"oauth2PermissionScopes"`
	PreAuthorizedApplications   []any                 `json:"preAuthorizedApplications"`
	RequestedAccessTokenVersion *int                  `json:"requestedAccessTokenVersion"`
}

func scopeViews(a *directory.Application) []permissionScopeView {
	out := []permissionScopeView{}
	for _, s := range a.PermissionScopes {
		out = append(out, permissionScopeView{ID: s.ID, Value: s.Value, Type: s.Type, IsEnabled: s.IsEnabled,
			AdminConsentDisplayName: s.AdminConsentDisplayName, AdminConsentDescription: s.AdminConsentDescription,
			UserConsentDisplayName: s.UserConsentDisplayName, UserConsentDescription: s.UserConsentDescription})
	}
	return out
}

func appAPIView(a *directory.Application) apiView {
	v := apiView{KnownClientApplications: []string{}, OAuth2PermissionScopes: scopeViews(a), PreAuthorizedApplications: []any{}}
	if a.AccessTokenVersion != 0 {
		v.RequestedAccessTokenVersion = &a.AccessTokenVersion
	}
	return v
}

// accessTokenVersion is the requestedAccessTokenVersion b sets (0: null,
// which clears it), and whether it sets one; scopes has checked it.
func (b *applicationBody) accessTokenVersion() (int, bool) {
	if b.API == nil || b.API.RequestedAccessTokenVersion == nil {
		return 0, false
	}
	v, _ := b.API.tokenVersion()
	return v, true
}

// tokenVersion parses requestedAccessTokenVersion: null is 0; else 1 or 2.
func (b *apiBody) tokenVersion() (int, bool) {
	switch string(b.RequestedAccessTokenVersion) {
	case "", "null":
		return 0, true
	case "1":
		return 1, true
	case "2":
		return 2, true
	}
	return 0, false
}

// apiBody is the api property as a create or PATCH sends it.
type apiBody struct {
	OAuth2PermissionScopes    *[]permissionScopeBody `json:"oauth2PermissionScopes"`
	AcceptMappedClaims        *bool                  `json:"acceptMappedClaims"`
	KnownClientApplications   []string               `json:"knownClientApplications"`
	PreAuthorizedApplications []json.RawMessage      `json:"preAuthorizedApplications"`
	// RequestedAccessTokenVersion: absent (keep), null (clear), 1 or 2.
	RequestedAccessTokenVersion json.RawMessage `json:"requestedAccessTokenVersion"`
}

// permissionScopeBody is a scope as a create or PATCH sends it; isEnabled
// and type default to true and User, as the portal's do.
type permissionScopeBody struct {
	ID                      string `json:"id"`
	Value                   string `json:"value"`
	Type                    string `json:"type"`
	IsEnabled               *bool  `json:"isEnabled"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName"`
	AdminConsentDescription string `json:"adminConsentDescription"`
	UserConsentDisplayName  string `json:"userConsentDisplayName"`
	UserConsentDescription  string `json:"userConsentDescription"`
	Origin                  string `json:"origin"`
}

// apiScopes checks the body's api property and returns the scopes it
// sets; set is false when it leaves them alone.
func (b *applicationBody) apiScopes() (scopes []directory.PermissionScope, set bool, err error) {
	if b.API == nil {
		return nil, false, nil
	}
	return b.API.scopes()
}

func validVersion(b *apiBody) bool {
	_, ok := b.tokenVersion()
	return ok
}

func (b *apiBody) scopes() ([]directory.PermissionScope, bool, error) {
	switch {
	case b.AcceptMappedClaims != nil && *b.AcceptMappedClaims:
		return nil, false, gatehouse400("api.acceptMappedClaims", "Claims mapping policies do not exist here; leave acceptMappedClaims false.")
	case len(b.KnownClientApplications) > 0, len(b.PreAuthorizedApplications) > 0:
		return nil, false, gatehouse400("api", "Consent is implicit here — every application of the tenant may ask for the API's scopes — so knownClientApplications and preAuthorizedApplications stay empty.")
	case !validVersion(b):
		return nil, false, gatehouse400("api.requestedAccessTokenVersion", "The access token version is 1 or 2 (tokens here have one format either way).")
	}
	if b.OAuth2PermissionScopes == nil {
		return nil, false, nil
	}
	out := make([]directory.PermissionScope, 0, len(*b.OAuth2PermissionScopes))
	for _, s := range *b.OAuth2PermissionScopes {
		out = append(out, directory.PermissionScope{ID: s.ID, Value: s.Value, Type: s.Type, IsEnabled: s.IsEnabled == nil || *s.IsEnabled,
			AdminConsentDisplayName: s.AdminConsentDisplayName, AdminConsentDescription: s.AdminConsentDescription,
			UserConsentDisplayName: s.UserConsentDisplayName, UserConsentDescription: s.UserConsentDescription})
	}
	return out, true, nil
}
