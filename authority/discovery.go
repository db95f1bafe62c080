package authority

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// Mount adds the authority's routes to mux (the root host H), for the
// ADFS form and for every tenant of the directory:
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration   discovery (GUID tenant)
//	GET  /{tenant}/.well-known/openid-configuration        the same, where v1-era middleware looks
//	GET  /adfs/.well-known/openid-configuration            discovery, ADFS shape
//	GET  /{tenant}/discovery/v2.0/keys, /adfs/discovery/keys  JWKS
//	POST /{tenant}/oauth2/v2.0/token, /adfs/oauth2/token    token endpoint
//	POST /{tenant}/oauth2/v2.0/devicecode, /adfs/oauth2/devicecode  device authorization (device.go)
//	GET  /{tenant}/oauth2/v2.0/authorize, /adfs/oauth2/authorize    authorization code + PKCE (authcode.go)
//	POST /gatehouse/v1/identityHeaders                     issue an identity header (management token)
//	DELETE /gatehouse/v1/identityHeaders/{id}              revoke it
//
// {tenant} is registered literally per tenant (lower-case GUID), not as a
// wildcard: a first-segment wildcard would collide with the management
// API's /subscriptions/ prefix in ServeMux. An unknown tenant's paths are
// answered by UnknownTenant, which the node sets as the router's NotFound.
// The managed-identity endpoint itself is MSIHandler, served on the
// loopback listener.
func (a *Authority) Mount(mux *http.ServeMux) {
	for _, t := range a.dir.Tenants() {
		a.mountTenant(mux, t.ID)
	}
	a.mountTenant(mux, directory.TenantADFS)
	arm := func(fn server.HandlerFunc) http.Handler {
		return server.WithSurface(server.SurfaceAuthority, server.Handle(server.RenderAzure, fn))
	}
	mux.Handle("POST /gatehouse/v1/identityHeaders", arm(a.handleCreateHeader))
	mux.Handle("DELETE /gatehouse/v1/identityHeaders/{id}", arm(a.handleRevokeHeader))
	realm := server.WithSurface(server.SurfaceAuthority, http.HandlerFunc(a.handleUserRealm))
	mux.Handle("GET /common/UserRealm/{user}", realm) // MSAL Go and Node
	mux.Handle("GET /common/userrealm/{user}", realm) // MSAL Python
}

// handleUserRealm is GET /common/UserRealm/{user}?api-version=1.0, which
// MSAL asks before a password sign-in (azidentity's
// UsernamePasswordCredential with a tenant id) to learn whether the
// person's domain is federated. Every account here is managed (the
// authority itself checks the password), and the answer is the same for
// every name, so it tells nobody which people exist.
func (a *Authority) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	domain := a.host
	if _, d, ok := strings.Cut(r.PathValue("user"), "@"); ok && d != "" && len(d) <= 255 {
		domain = d
	}
	server.WriteJSON(w, http.StatusOK, map[string]string{"ver": "1.0", "account_type": "Managed", "domain_name": domain,
		"cloud_instance_name": a.host, "cloud_audience_urn": "urn:federation:MicrosoftOnline"})
}

// UnknownTenant answers, as Entra ID does, the token, discovery and keys
// paths of a tenant segment no route matched: a known tenant written in
// another case is served like the registered spelling; any other gets 400
// invalid_tenant, AADSTS90002 "Tenant '…' not found" in OAuth's shape, so
// that a client configured with a wrong tenant id is told so instead of
// getting a bare 404 (MSAL reports the AADSTS error). Any other request
// returns false.
func (a *Authority) UnknownTenant(w http.ResponseWriter, r *http.Request) bool {
	seg, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || seg == "" {
		return false
	}
	var serve func(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error
	switch {
	case r.Method == http.MethodPost && rest == "oauth2/v2.0/token":
		serve = a.handleToken
	case r.Method == http.MethodPost && rest == "oauth2/v2.0/devicecode":
		serve = a.handleDeviceCode
	case (r.Method == http.MethodGet || r.Method == http.MethodPost) && rest == "oauth2/v2.0/authorize":
		serve = a.handleAuthorize
	case (r.Method == http.MethodGet || r.Method == http.MethodPost) && rest == "oauth2/v2.0/logout":
		serve = a.handleLogout
	case r.Method == http.MethodGet && (rest == "v2.0/.well-known/openid-configuration" || rest == ".well-known/openid-configuration"):
		serve = a.handleDiscovery
	case r.Method == http.MethodGet && rest == "discovery/v2.0/keys":
		serve = a.handleKeys
	default:
		return false
	}
	if _, err := a.dir.ResolveTenant(seg); err == nil {
		// A tenant the routes spell otherwise (an upper-case GUID, ADFS):
		// Entra takes tenant ids in any case, and so is it served here.
		server.WithSurface(server.SurfaceAuthority, server.Handle(renderOAuth, func(w http.ResponseWriter, r *http.Request) error {
			return serve(w, r, seg, false)
		})).ServeHTTP(w, r)
		return true
	}
	server.WithSurface(server.SurfaceAuthority, server.Handle(renderOAuth, func(http.ResponseWriter, *http.Request) error {
		return oauthErr(oauthInvalidTenant, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(seg))
	})).ServeHTTP(w, r)
	return true
}

// mountTenant adds the routes of one tenant segment ("adfs" gets both the
// ADFS-shaped paths and the v2 ones).
func (a *Authority) mountTenant(mux *http.ServeMux, seg string) {
	oauth := func(fn func(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error, adfs bool) http.Handler {
		return server.WithSurface(server.SurfaceAuthority, server.Handle(renderOAuth, func(w http.ResponseWriter, r *http.Request) error {
			return fn(w, r, seg, adfs)
		}))
	}
	p := "/" + seg
	mux.Handle("GET "+p+"/v2.0/.well-known/openid-configuration", oauth(a.handleDiscovery, false))
	if seg != directory.TenantADFS {
		// The v1 metadata path, where web APIs configured with the
		// authority without "/v2.0" (JwtBearer's Authority, v1-era
		// middleware) look: the same document, whose issuer is the one the
		// tokens carry, so they validate.
		mux.Handle("GET "+p+"/.well-known/openid-configuration", oauth(a.handleDiscovery, false))
	}
	mux.Handle("GET "+p+"/discovery/v2.0/keys", oauth(a.handleKeys, false))
	mux.Handle("POST "+p+"/oauth2/v2.0/token", oauth(a.handleToken, false))
	mux.Handle("POST "+p+"/oauth2/v2.0/devicecode", oauth(a.handleDeviceCode, false))
	mux.Handle("GET "+p+"/oauth2/v2.0/authorize", oauth(a.handleAuthorize, false))
	mux.Handle("POST "+p+"/oauth2/v2.0/authorize", oauth(a.handleAuthorize, false))
	mux.Handle("GET "+p+"/oauth2/v2.0/logout", oauth(a.handleLogout, false))
	mux.Handle("POST "+p+"/oauth2/v2.0/logout", oauth(a.handleLogout, false))
	// The POST-only endpoints answer another method in OAuth's shape, as
	// Entra does, not with the router's 405.
	postOnly := oauth(func(_ http.ResponseWriter, r *http.Request, _ string, _ bool) error {
		return oauthErr(oauthInvalidRequest, 900561, "The endpoint only accepts POST requests. Received a %s request.", clip(r.Method))
	}, false)
	mux.Handle(p+"/oauth2/v2.0/token", postOnly)
	mux.Handle(p+"/oauth2/v2.0/devicecode", postOnly)
	if seg == directory.TenantADFS {
		mux.Handle("/adfs/oauth2/token", postOnly)
		mux.Handle("/adfs/oauth2/devicecode", postOnly)
		mux.Handle("GET /adfs/oauth2/logout", oauth(a.handleLogout, true))
		mux.Handle("POST /adfs/oauth2/logout", oauth(a.handleLogout, true))
		mux.Handle("GET /adfs/.well-known/openid-configuration", oauth(a.handleDiscovery, true))
		mux.Handle("GET /adfs/discovery/keys", oauth(a.handleKeys, true))
		mux.Handle("POST /adfs/oauth2/token", oauth(a.handleToken, true))
		mux.Handle("POST /adfs/oauth2/devicecode", oauth(a.handleDeviceCode, true))
		mux.Handle("GET /adfs/oauth2/authorize", oauth(a.handleAuthorize, true))
		mux.Handle("POST /adfs/oauth2/authorize", oauth(a.handleAuthorize, true))
	}
}

// openIDConfiguration is the discovery document (azure-wire.md §2.3). It
// names concrete tenant ids, never placeholders.
type openIDConfiguration struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint,omitempty"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
}

func (a *Authority) handleDiscovery(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error {
	tid, err := a.dir.ResolveTenant(seg)
	if err != nil {
		return oauthErr(oauthInvalidTenant, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(seg))
	}
	doc := openIDConfiguration{
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		ResponseModesSupported:            []string{"query", "form_post"},
		SubjectTypesSupported:             []string{"public"}, // sub is the object id

		IDTokenSigningAlgValuesSupported: []string{a.alg},
		ResponseTypesSupported:           []string{"code"},
		ScopesSupported:                  []string{"openid", "profile", "email", "offline_access"},
		GrantTypesSupported:              []string{"client_credentials", "password", "refresh_token", "authorization_code", GrantDeviceCode, GrantJWTBearer},
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "idtyp", "ver",
			"name", "preferred_username", "nonce"},
		CloudInstanceName:  a.host,
		CloudGraphHostName: a.host,
		MSGraphHost:        a.host,
	}
	if adfs {
		// ADFS shape: no /v2.0, tenant-less issuer on the same origin.
		base := a.base + "/adfs"
		doc.Issuer = base
		doc.TokenEndpoint = base + "/oauth2/token"
		doc.JWKSURI = base + "/discovery/keys"
		doc.AuthorizationEndpoint = base + "/oauth2/authorize"
		doc.DeviceAuthorizationEndpoint = base + "/oauth2/devicecode"
		doc.EndSessionEndpoint = base + "/oauth2/logout"
	} else {
		base := a.base + "/" + tid
		doc.Issuer = base + "/v2.0"
		doc.TokenEndpoint = base + "/oauth2/v2.0/token"
		doc.JWKSURI = base + "/discovery/v2.0/keys"
		doc.AuthorizationEndpoint = base + "/oauth2/v2.0/authorize"
		doc.DeviceAuthorizationEndpoint = base + "/oauth2/v2.0/devicecode"
		doc.EndSessionEndpoint = base + "/oauth2/v2.0/logout"
	}
	w.Header().Set("Cache-Control", "max-age=3600, private")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	server.WriteJSON(w, http.StatusOK, doc)
	return nil
}

func (a *Authority) handleKeys(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error {
	if _, err := a.dir.ResolveTenant(seg); err != nil {
		return oauthErr(oauthInvalidTenant, 90002, "Tenant '%s' not found.", clip(seg))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	// Short: keys rotate, and the next key must be seen before it signs.
	h.Set("Cache-Control", "max-age=300, private")
	h.Set("Access-Control-Allow-Origin", "*")
	w.Write(a.JWKS())
	return nil
}
