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
// (preAuthorizedApplications, knownClientApplications), and tokens have
// one format (requestedAccessTokenVersion).

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
	return apiView{KnownClientApplications: []string{}, OAuth2PermissionScopes: scopeViews(a), PreAuthorizedApplications: []any{}}
}

// apiBody is the api property as a create or PATCH sends it.
type apiBody struct {
	OAuth2PermissionScopes      *[]permissionScopeBody `json:"oauth2PermissionScopes"`
	AcceptMappedClaims          *bool                  `json:"acceptMappedClaims"`
	KnownClientApplications     []string               `json:"knownClientApplications"`
	PreAuthorizedApplications   []json.RawMessage      `json:"preAuthorizedApplications"`
	RequestedAccessTokenVersion *int                   `json:"requestedAccessTokenVersion"`
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

func (b *apiBody) scopes() ([]directory.PermissionScope, bool, error) {
	switch {
	case b.AcceptMappedClaims != nil && *b.AcceptMappedClaims:
		return nil, false, gatehouse400("api.acceptMappedClaims", "Claims mapping policies do not exist here; leave acceptMappedClaims false.")
	case len(b.KnownClientApplications) > 0, len(b.PreAuthorizedApplications) > 0:
		return nil, false, gatehouse400("api", "Consent is implicit here — every application of the tenant may ask for the API's scopes — so knownClientApplications and preAuthorizedApplications stay empty.")
	case b.RequestedAccessTokenVersion != nil && *b.RequestedAccessTokenVersion != 1 && *b.RequestedAccessTokenVersion != 2:
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
