package graphapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// passwordCredential is Graph's view of a client secret. SecretText is set
// only in addPassword's response.
type passwordCredential struct {
	ODataType           string  `json:"@odata.type,omitempty"` // as keyCredential's
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         *string `json:"endDateTime"`
	Hint                string  `json:"hint"`
	KeyID               string  `json:"keyId"`
	SecretText          *string `json:"secretText"`
	StartDateTime       *string `json:"startDateTime"`
}

// keyCredential is Graph's view of a certificate. Key is returned only when
// $select=keyCredentials asks for it in Graph; here it is always null on
// output and base64 DER (or PEM) on input.
type keyCredential struct {
	// ODataType is the annotation az puts on every entry it sends
	// ("#microsoft.graph.keyCredential"); never written.
	ODataType           string  `json:"@odata.type,omitempty"`
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         *string `json:"endDateTime"`
	Key                 *string `json:"key"`
	KeyID               string  `json:"keyId"`
	StartDateTime       *string `json:"startDateTime"`
	Type                string  `json:"type"`
	Usage               string  `json:"usage"`
}

type applicationView struct {
	Context string `json:"@odata.context,omitempty"`
	// ODataType is set where a list mixes kinds of object (/me/ownedObjects).
	ODataType       string        `json:"@odata.type,omitempty"`
	ID              string        `json:"id"`
	AppID           string        `json:"appId"`
	DisplayName     string        `json:"displayName"`
	CreatedDateTime *string       `json:"createdDateTime"`
	SignInAudience  string        `json:"signInAudience"`
	PublisherDomain string        `json:"publisherDomain"`
	IdentifierURIs  []string      `json:"identifierUris"`
	Web             webView       `json:"web"`
	PublicClient    redirectsView `json:"publicClient"`
	Spa             redirectsView `json:"spa"`
	AppRoles        []appRoleView `json:"appRoles"`
	API             apiView       `json:"api"`
	// GroupMembershipClaims: null (None), SecurityGroup, DirectoryRole or All.
	GroupMembershipClaims *string `json:"groupMembershipClaims"`
	// RequiredResourceAccess: the permissions it declares on other APIs.
	RequiredResourceAccess []directory.RequiredResourceAccess `json:"requiredResourceAccess"`
	PasswordCredentials    []passwordCredential               `json:"passwordCredentials"`
	KeyCredentials         []keyCredential                    `json:"keyCredentials"`
}

// webView is Graph's web application settings: where the authorization
// endpoint may send a confidential web app's codes.
type webView struct {
	RedirectURIs          []string `json:"redirectUris"`
	HomePageURL           *string  `json:"homePageUrl"`
	LogoutURL             *string  `json:"logoutUrl"`
	ImplicitGrantSettings struct {
		EnableIDTokenIssuance     bool `json:"enableIdTokenIssuance"`
		EnableAccessTokenIssuance bool `json:"enableAccessTokenIssuance"`
	} `json:"implicitGrantSettings"`
}

type redirectsView struct {
	RedirectURIs []string `json:"redirectUris"`
}

// webBody and redirectsBody are what a create or PATCH may set: redirect
// URIs. The rest of Graph's web settings is accepted only as "off" (no
// implicit grant, no home page or logout URL is kept), so nothing sent is
// silently dropped.
type webBody struct {
	RedirectURIs          *[]string `json:"redirectUris"`
	HomePageURL           *string   `json:"homePageUrl"`
	LogoutURL             *string   `json:"logoutUrl"`
	ImplicitGrantSettings *struct {
		EnableIDTokenIssuance     *bool `json:"enableIdTokenIssuance"`
		EnableAccessTokenIssuance *bool `json:"enableAccessTokenIssuance"`
	} `json:"implicitGrantSettings"`
	RedirectURISettings *[]json.RawMessage `json:"redirectUriSettings"`
}

type redirectsBody struct {
	RedirectURIs *[]string `json:"redirectUris"`
}

// redirects checks the body's signInAudience, web, publicClient and spa
// settings (what decides where tokens may go: create and PATCH check them
// first) and returns the redirect URI lists to set (nil: unchanged).
func (b *applicationBody) redirects() (web, public *[]string, err error) {
	// Every application is single-tenant: the one signInAudience kept.
	if b.SignInAudience != nil && *b.SignInAudience != "AzureADMyOrg" {
		return nil, nil, gatehouse400("signInAudience", "Only 'AzureADMyOrg' is supported.")
	}
	if b.Web != nil {
		w := b.Web
		switch {
		case w.HomePageURL != nil && *w.HomePageURL != "", w.LogoutURL != nil && *w.LogoutURL != "":
			return nil, nil, gatehouse400("web", "homePageUrl and logoutUrl are not kept here; leave them out.")
		case w.ImplicitGrantSettings != nil && (w.ImplicitGrantSettings.EnableIDTokenIssuance != nil && *w.ImplicitGrantSettings.EnableIDTokenIssuance ||
			w.ImplicitGrantSettings.EnableAccessTokenIssuance != nil && *w.ImplicitGrantSettings.EnableAccessTokenIssuance):
			return nil, nil, gatehouse400("web.implicitGrantSettings", "The implicit grant is not offered: use the authorization code grant.")
		case w.RedirectURISettings != nil && len(*w.RedirectURISettings) > 0:
			return nil, nil, gatehouse400("web.redirectUriSettings", "Set web.redirectUris instead.")
		}
		web = w.RedirectURIs
	}
	if b.PublicClient != nil {
		public = b.PublicClient.RedirectURIs
	}
	if b.Spa != nil && b.Spa.RedirectURIs != nil && len(*b.Spa.RedirectURIs) > 0 {
		return nil, nil, gatehouse400("spa.redirectUris", "Single-page applications are not supported: register the URI as a web (confidential) or public client redirect URI.")
	}
	return web, public, nil
}

type servicePrincipalView struct {
	Context                string               `json:"@odata.context,omitempty"`
	ODataType              string               `json:"@odata.type,omitempty"` // as applicationView's
	ID                     string               `json:"id"`
	AppID                  string               `json:"appId"`
	DisplayName            string               `json:"displayName"`
	AccountEnabled         bool                 `json:"accountEnabled"`
	ServicePrincipalType   string               `json:"servicePrincipalType"`
	AppOwnerOrganizationID string               `json:"appOwnerOrganizationId"`
	AlternativeNames       []string             `json:"alternativeNames"`
	ServicePrincipalNames  []string             `json:"servicePrincipalNames"`
	PasswordCredentials    []passwordCredential `json:"passwordCredentials"`
	KeyCredentials         []keyCredential      `json:"keyCredentials"`
	// AppRoles and OAuth2PermissionScopes are the application's, as Graph
	// shows them on its service principal.
	AppRoles               []appRoleView         `json:"appRoles"`
	OAuth2PermissionScopes []permissionScopeView `json:"oauth2PermissionScopes"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// secretViews are the application object's secrets, or with sp its
// service principal's: Graph keeps and lists the two apart.
func secretViews(a *directory.Application, sp bool) []passwordCredential {
	out := []passwordCredential{}
	for _, s := range a.Secrets {
		if s.ServicePrincipal != sp {
			continue
		}
		out = append(out, passwordCredential{DisplayName: strp(s.DisplayName), EndDateTime: graphTime(s.End),
			Hint: s.Hint, KeyID: s.KeyID, StartDateTime: graphTime(s.Start)})
	}
	return out
}

func certViews(a *directory.Application, sp bool) []keyCredential {
	out := []keyCredential{}
	for _, c := range a.Certificates {
		if c.ServicePrincipal != sp {
			continue
		}
		out = append(out, keyCredential{CustomKeyIdentifier: strp(c.Thumbprint), DisplayName: strp(c.DisplayName),
			EndDateTime: graphTime(c.End), KeyID: c.KeyID, StartDateTime: graphTime(c.Start),
			Type: "AsymmetricX509Cert", Usage: "Verify"})
	}
	return out
}

func appView(a *directory.Application) applicationView {
	return applicationView{ID: a.AppObjectID, AppID: a.AppID, DisplayName: a.DisplayName,
		CreatedDateTime: graphTime(a.Created), SignInAudience: "AzureADMyOrg", PublisherDomain: "gatehouse",
		IdentifierURIs: append([]string{}, a.IdentifierURIs...),
		Web:            webView{RedirectURIs: append([]string{}, a.WebRedirectURIs...)},
		PublicClient:   redirectsView{RedirectURIs: append([]string{}, a.PublicRedirectURIs...)},
		Spa:            redirectsView{RedirectURIs: []string{}}, AppRoles: appRoleViews(a), API: appAPIView(a), GroupMembershipClaims: strp(a.GroupMembershipClaims),
		RequiredResourceAccess: append([]directory.RequiredResourceAccess{}, a.RequiredAccess...),
		PasswordCredentials:    secretViews(a, false), KeyCredentials: certViews(a, false)}
}

func spView(a *directory.Application) servicePrincipalView {
	return servicePrincipalView{ID: a.ObjectID, AppID: a.AppID, DisplayName: a.DisplayName, AccountEnabled: a.Enabled,
		ServicePrincipalType: "Application", AppOwnerOrganizationID: a.TenantID, AlternativeNames: []string{},
		ServicePrincipalNames: append([]string{a.AppID}, a.IdentifierURIs...), PasswordCredentials: secretViews(a, true), KeyCredentials: certViews(a, true),
		AppRoles: appRoleViews(a), OAuth2PermissionScopes: scopeViews(a)}
}

// miView is a managed identity's service principal. alternativeNames
// start with isExplicit=True for a user-assigned identity (a resource of
// its own) and isExplicit=False for a resource's system-assigned one, as
// Entra's do (what tools filter the two kinds by).
func miView(mi *directory.ManagedIdentity) servicePrincipalView {
	explicit := "isExplicit=False"
	if strings.Contains(strings.ToLower(mi.ResourceID), "/providers/microsoft.managedidentity/userassignedidentities/") {
		explicit = "isExplicit=True"
	}
	return servicePrincipalView{ID: mi.PrincipalID, AppID: mi.ClientID, DisplayName: mi.Name, AccountEnabled: true,
		ServicePrincipalType: "ManagedIdentity", AppOwnerOrganizationID: mi.TenantID,
		AlternativeNames: []string{explicit, mi.ResourceID}, ServicePrincipalNames: []string{mi.ClientID},
		PasswordCredentials: []passwordCredential{}, KeyCredentials: []keyCredential{},
		AppRoles: []appRoleView{}, OAuth2PermissionScopes: []permissionScopeView{}}
}

func (g *API) organization(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var out []map[string]any
	for _, t := range g.dir.Tenants() {
		out = append(out, map[string]any{"id": t.ID, "displayName": t.DisplayName, "createdDateTime": graphTime(t.Created),
			"verifiedDomains": []any{}})
	}
	return list(w, r, "organization", out)
}

// application finds an application by its application object id (Graph's
// id), its service principal's object id or its appId.
func (g *API) application(id string) (*directory.Application, error) {
	a, err := g.dir.Application(id)
	if err != nil {
		return nil, notFound(id)
	}
	return a, nil
}

func (g *API) listApplications(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "appId", "displayName", "identifierUris")
	if err != nil {
		return err
	}
	out := []applicationView{}
	all := g.mayRead(c)
	for _, a := range g.dir.Applications(c.Principal.TenantID) {
		if !f.keeps("appId", a.AppID) || !f.keeps("displayName", a.DisplayName) || !f.keeps("identifierUris", a.IdentifierURIs...) ||
			!all && !g.owns(c, a, directory.OwnedApplication) {
			continue
		}
		out = append(out, appView(a))
	}
	return list(w, r, "applications", out)
}

func (g *API) getApplication(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	v := appView(a)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#applications/$entity"
	return entity(w, r, "applications", v)
}

type applicationBody struct {
	DisplayName    *string          `json:"displayName"`
	SignInAudience *string          `json:"signInAudience"`
	KeyCredentials *[]keyCredential `json:"keyCredentials"`
	// IdentifierURIs name the application's API ("Application ID URI"):
	// tokens for {uri}/.default have it as their audience.
	IdentifierURIs *[]string `json:"identifierUris"`
	// Web and PublicClient carry redirect URIs for the authorization code
	// grant (az ad app create --web-redirect-uris / --public-client-redirect-uris).
	Web          *webBody       `json:"web"`
	PublicClient *redirectsBody `json:"publicClient"`
	Spa          *redirectsBody `json:"spa"`
	// AppRoles replaces the roles the application's API defines (approles.go).
	AppRoles *[]appRoleBody `json:"appRoles"`
	// API carries the delegated scopes the application's API exposes (scopes.go).
	API *apiBody `json:"api"`
	// GroupMembershipClaims: which group claims its tokens carry (groupclaims.go).
	GroupMembershipClaims *string `json:"groupMembershipClaims"`
	// RequiredResourceAccess declares the permissions it needs from other
	// APIs (az ad app permission add; informational: consent is implicit).
	RequiredResourceAccess *[]directory.RequiredResourceAccess `json:"requiredResourceAccess"`
	// Gatehouse extension: create the service principal in the same call
	// (what `gatehouse ad sp create` wants).
	CreateServicePrincipal bool `json:"gatehouseCreateServicePrincipal"`
}

func (g *API) createApplication(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body applicationBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.DisplayName == nil {
		return badRequest("The property 'displayName' is required.")
	}
	web, public, err := body.redirects()
	if err != nil {
		return err
	}
	scopes, setScopes, err := body.apiScopes()
	if err != nil {
		return err
	}
	// The creator is the first owner, as in Entra.
	a, err := g.dir.CreateApplication(r.Context(), directory.ApplicationSpec{DisplayName: *body.DisplayName,
		TenantID: c.Principal.TenantID, ServicePrincipal: body.CreateServicePrincipal, Owner: c.Principal.ObjectID})
	if err != nil {
		return err
	}
	version, setVersion := body.accessTokenVersion()
	if body.KeyCredentials != nil || body.IdentifierURIs != nil || web != nil || public != nil || body.AppRoles != nil || setScopes ||
		body.GroupMembershipClaims != nil || body.RequiredResourceAccess != nil || setVersion {
		if body.KeyCredentials != nil {
			var specs []directory.CertificateSpec
			if specs, err = certSpecs(*body.KeyCredentials); err == nil {
				err = g.dir.SetCertificates(r.Context(), a.AppObjectID, specs, false)
			}
		}
		if err == nil && body.IdentifierURIs != nil {
			_, err = g.dir.SetIdentifierURIs(r.Context(), a.AppObjectID, *body.IdentifierURIs, g.auth.ReservedResource)
		}
		if err == nil && (web != nil || public != nil) {
			_, err = g.dir.SetRedirectURIs(r.Context(), a.AppObjectID, web, public)
		}
		if err == nil && body.AppRoles != nil {
			_, err = g.dir.SetAppRoles(r.Context(), a.AppObjectID, appRoles(*body.AppRoles))
		}
		if err == nil && setScopes {
			_, err = g.dir.SetPermissionScopes(r.Context(), a.AppObjectID, scopes)
		}
		if err == nil && body.GroupMembershipClaims != nil {
			_, err = g.dir.SetGroupMembershipClaims(r.Context(), a.AppObjectID, *body.GroupMembershipClaims)
		}
		if err == nil && body.RequiredResourceAccess != nil {
			_, err = g.dir.SetRequiredResourceAccess(r.Context(), a.AppObjectID, *body.RequiredResourceAccess)
		}
		if err == nil && setVersion {
			_, err = g.dir.SetAccessTokenVersion(r.Context(), a.AppObjectID, version)
		}
		if err != nil {
			// Do not leave a half-made application behind.
			g.dir.DeleteApplication(r.Context(), a.AppObjectID)
			return err
		}
		if a, err = g.dir.Application(a.AppObjectID); err != nil {
			return err
		}
	}
	v := appView(a)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#applications/$entity"
	w.Header().Set("Location", "https://graph.microsoft.com/v1.0/applications/"+a.AppObjectID)
	server.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func gatehouse400(target, msg string) error {
	return badRequest("Invalid value specified for property '%s'. %s", target, msg)
}

func certSpecs(creds []keyCredential) ([]directory.CertificateSpec, error) {
	var specs []directory.CertificateSpec
	for _, k := range creds {
		if k.ODataType != "" && !strings.EqualFold(k.ODataType, "#microsoft.graph.keyCredential") {
			return nil, gatehouse400("keyCredentials.@odata.type", "Only '#microsoft.graph.keyCredential' is valid here.")
		}
		if k.Type != "" && k.Type != "AsymmetricX509Cert" {
			return nil, gatehouse400("keyCredentials.type", "Only 'AsymmetricX509Cert' is supported.")
		}
		if k.Usage != "" && k.Usage != "Verify" {
			return nil, gatehouse400("keyCredentials.usage", "Only 'Verify' is supported.")
		}
		start, err := parseTime(k.StartDateTime, "startDateTime")
		if err != nil {
			return nil, err
		}
		end, err := parseTime(k.EndDateTime, "endDateTime")
		if err != nil {
			return nil, err
		}
		s := directory.CertificateSpec{KeyID: k.KeyID, Start: start, End: end}
		if k.DisplayName != nil {
			s.DisplayName = *k.DisplayName
		}
		if k.Key != nil {
			data, err := base64.StdEncoding.DecodeString(*k.Key)
			if err != nil {
				return nil, gatehouse400("keyCredentials.key", "The key must be base64.")
			}
			s.Data = data
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// setCertificates replaces the certificates of a's application object,
// or with sp of its service principal, with creds (nil: keeps them).
func (g *API) setCertificates(r *http.Request, a *directory.Application, creds *[]keyCredential, sp bool) error {
	if creds == nil {
		return nil
	}
	specs, err := certSpecs(*creds)
	if err != nil {
		return err
	}
	return g.dir.SetCertificates(r.Context(), a.AppObjectID, specs, sp)
}

func (g *API) patchApplication(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body applicationBody
	if err := decode(r, &body); err != nil {
		return err
	}
	web, public, err := body.redirects()
	if err != nil {
		return err
	}
	scopes, setScopes, err := body.apiScopes()
	if err != nil {
		return err
	}
	if err := g.setCertificates(r, a, body.KeyCredentials, false); err != nil {
		return err
	}
	if body.IdentifierURIs != nil {
		if _, err := g.dir.SetIdentifierURIs(r.Context(), a.AppObjectID, *body.IdentifierURIs, g.auth.ReservedResource); err != nil {
			return err
		}
	}
	if web != nil || public != nil {
		if _, err := g.dir.SetRedirectURIs(r.Context(), a.AppObjectID, web, public); err != nil {
			return err
		}
	}
	if body.AppRoles != nil {
		if _, err := g.dir.SetAppRoles(r.Context(), a.AppObjectID, appRoles(*body.AppRoles)); err != nil {
			return err
		}
	}
	if setScopes {
		if _, err := g.dir.SetPermissionScopes(r.Context(), a.AppObjectID, scopes); err != nil {
			return err
		}
	}
	if body.GroupMembershipClaims != nil {
		if _, err := g.dir.SetGroupMembershipClaims(r.Context(), a.AppObjectID, *body.GroupMembershipClaims); err != nil {
			return err
		}
	}
	if body.RequiredResourceAccess != nil {
		if _, err := g.dir.SetRequiredResourceAccess(r.Context(), a.AppObjectID, *body.RequiredResourceAccess); err != nil {
			return err
		}
	}
	if version, ok := body.accessTokenVersion(); ok {
		if _, err := g.dir.SetAccessTokenVersion(r.Context(), a.AppObjectID, version); err != nil {
			return err
		}
	}
	if body.DisplayName != nil {
		if _, err := g.dir.UpdateApplication(r.Context(), a.AppObjectID, directory.ApplicationUpdate{DisplayName: body.DisplayName}); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteApplication(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := g.dir.DeleteApplication(r.Context(), a.AppObjectID); err != nil {
		return err
	}
	if a.ServicePrincipal && g.ServicePrincipalDeleted != nil {
		// Its service principal went with it: its access ends now, as
		// when the service principal alone is deleted, not when its
		// tokens expire.
		if err := g.ServicePrincipalDeleted(r.Context(), a.ObjectID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type addPasswordBody struct {
	PasswordCredential *struct {
		DisplayName   *string `json:"displayName"`
		StartDateTime *string `json:"startDateTime"`
		EndDateTime   *string `json:"endDateTime"`
	} `json:"passwordCredential"`
}

// DefaultSecretLifetime is Graph's default for addPassword without an
// endDateTime.
const DefaultSecretLifetime = 2 * 365 * 24 * time.Hour

// onServicePrincipal reports whether r addresses a service principal's
// credentials (/v1.0/servicePrincipals/{id}/…) rather than its
// application object's: Graph keeps the two sets apart, and az ad sp
// credential reset replaces the service principal's alone.
func onServicePrincipal(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.URL.Path), "/v1.0/serviceprincipals/")
}

func (g *API) addPassword(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body addPasswordBody
	if err := decode(r, &body); err != nil {
		return err
	}
	spec := directory.SecretSpec{ServicePrincipal: onServicePrincipal(r)}
	if pc := body.PasswordCredential; pc != nil {
		if pc.DisplayName != nil {
			spec.DisplayName = *pc.DisplayName
		}
		if spec.Start, err = parseTime(pc.StartDateTime, "startDateTime"); err != nil {
			return err
		}
		if spec.End, err = parseTime(pc.EndDateTime, "endDateTime"); err != nil {
			return err
		}
	}
	if spec.End.IsZero() {
		start := spec.Start
		if start.IsZero() {
			start = time.Now()
		}
		spec.End = start.Add(DefaultSecretLifetime)
	}
	info, secret, err := g.dir.AddSecret(r.Context(), a.AppObjectID, spec)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, struct {
		Context string `json:"@odata.context"`
		passwordCredential
	}{"https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordCredential",
		passwordCredential{DisplayName: strp(info.DisplayName), EndDateTime: graphTime(info.End), Hint: info.Hint,
			KeyID: info.KeyID, SecretText: &secret, StartDateTime: graphTime(info.Start)}})
	return nil
}

func (g *API) removePassword(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		KeyID string `json:"keyId"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.KeyID == "" {
		return badRequest("The property 'keyId' is required.")
	}
	if err := g.dir.RemoveSecret(r.Context(), a.AppObjectID, body.KeyID, onServicePrincipal(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addKey adds one certificate. Graph requires a proof-of-possession JWT
// signed by an existing key; Gatehouse accepts the caller's directory role
// instead and ignores proof.
func (g *API) addKey(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		KeyCredential *keyCredential `json:"keyCredential"`
		Proof         string         `json:"proof"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.KeyCredential == nil || body.KeyCredential.Key == nil {
		return badRequest("The property 'keyCredential' with a 'key' is required.")
	}
	specs, err := certSpecs([]keyCredential{*body.KeyCredential})
	if err != nil {
		return err
	}
	info, err := g.dir.AddCertificate(r.Context(), a.AppObjectID, specs[0])
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, keyCredential{CustomKeyIdentifier: strp(info.Thumbprint), DisplayName: strp(info.DisplayName),
		EndDateTime: graphTime(info.End), KeyID: info.KeyID, StartDateTime: graphTime(info.Start),
		Type: "AsymmetricX509Cert", Usage: "Verify"})
	return nil
}

func (g *API) removeKey(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		KeyID string `json:"keyId"`
		Proof string `json:"proof"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if err := g.dir.RemoveCertificate(r.Context(), a.AppObjectID, body.KeyID, onServicePrincipal(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type federatedView struct {
	Context     string   `json:"@odata.context,omitempty"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description *string  `json:"description"`
}

func ficView(f directory.FederatedCredential) federatedView {
	return federatedView{ID: f.ID, Name: f.Name, Issuer: f.Issuer, Subject: f.Subject, Audiences: f.Audiences,
		Description: strp(f.Description)}
}

func (g *API) listFederated(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []federatedView{}
	for _, f := range a.Federated {
		out = append(out, ficView(f))
	}
	return list(w, r, "applications('"+a.AppObjectID+"')/federatedIdentityCredentials", out)
}

func (g *API) getFederated(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	fid := r.PathValue("fid")
	for _, f := range a.Federated {
		if f.Is(fid) {
			return entity(w, r, "federatedIdentityCredentials", ficView(f))
		}
	}
	return notFound(fid)
}

func (g *API) createFederated(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		Name        string   `json:"name"`
		Issuer      string   `json:"issuer"`
		Subject     string   `json:"subject"`
		Audiences   []string `json:"audiences"`
		Description string   `json:"description"`
		// Gatehouse extension: the issuer's JWKS, for issuers Gatehouse
		// cannot reach.
		JWKS map[string]any `json:"gatehouseJwks"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	f := directory.FederatedCredential{Name: body.Name, Issuer: body.Issuer, Subject: body.Subject,
		Audiences: body.Audiences, Description: body.Description}
	if body.JWKS != nil {
		f.JWKS = mustJSON(body.JWKS)
	}
	f, err = g.dir.AddFederated(r.Context(), a.AppObjectID, f)
	if err != nil {
		return err
	}
	v := ficView(f)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#applications('" + a.AppObjectID + "')/federatedIdentityCredentials/$entity"
	server.WriteJSON(w, http.StatusCreated, v)
	return nil
}

// patchFederated is PATCH …/federatedIdentityCredentials/{id or name}: 204.
func (g *API) patchFederated(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		ID          *string        `json:"id"`
		Name        *string        `json:"name"`
		Issuer      *string        `json:"issuer"`
		Subject     *string        `json:"subject"`
		Audiences   *[]string      `json:"audiences"`
		Description *string        `json:"description"`
		JWKS        map[string]any `json:"gatehouseJwks"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.ID != nil {
		fid := r.PathValue("fid")
		i := slices.IndexFunc(a.Federated, func(f directory.FederatedCredential) bool { return f.Is(fid) })
		if i >= 0 && !strings.EqualFold(*body.ID, a.Federated[i].ID) {
			return badRequest("The property 'id' cannot be changed.")
		}
	}
	p := directory.FederatedPatch{Name: body.Name, Issuer: body.Issuer, Subject: body.Subject,
		Audiences: body.Audiences, Description: body.Description}
	if body.JWKS != nil {
		p.JWKS = mustJSON(body.JWKS)
	}
	if _, err := g.dir.UpdateFederated(r.Context(), a.AppObjectID, r.PathValue("fid"), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteFederated(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	a, err := g.application(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := g.dir.RemoveFederated(r.Context(), a.AppObjectID, r.PathValue("fid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
