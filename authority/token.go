package authority

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
	"golang.org/x/time/rate"
)

// maxFormBytes bounds a token request body (assertions are at most
// MaxTokenSize; the rest is small).
const maxFormBytes = 64 << 10

const assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// publicClients are first-party public client ids people sign in with (the
// password grant) without registering an application: the Azure CLI's and
// Azure PowerShell's, which `gatehouse login` uses too.
var publicClients = map[string]bool{
	"04b07795-8ddb-461a-bbee-02f9e1bf7b46": true, // Azure CLI
	"1950a258-227b-4e31-a9cf-717495945fc2": true, // Azure PowerShell
}

// publicClientNames are what the device sign-in page calls them.
var publicClientNames = map[string]string{
	"04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
	"1950a258-227b-4e31-a9cf-717495945fc2": "Microsoft Azure PowerShell",
}

// CLIClientID is the public client id `gatehouse login` uses for people.
const CLIClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

// tokenRequest is a parsed token request.
type tokenRequest struct {
	tenantSeg string // the tenant as the path named it ("adfs" or a GUID)
	tenantID  string
	adfs      bool // the ADFS-shaped endpoint (its issuer is https://H/adfs)
	form      url.Values
	clientID  string
	secret    string
	grant     string
}

// singleParams must appear at most once (RFC 6749 §3.2).
var singleParams = []string{"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type",
	"scope", "resource", "username", "password", "refresh_token", "device_code", "code", "code_verifier", "redirect_uri",
	"assertion", "requested_token_use"}

// handleToken is POST /{tenant}/oauth2/v2.0/token and /adfs/oauth2/token.
func (a *Authority) handleToken(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error {
	tr := &tokenRequest{tenantSeg: seg, adfs: adfs}
	err := a.token(w, r, tr)
	if err != nil {
		code := "other"
		if e, ok := gatehouse.AsError(err); ok && e.Status < 500 {
			code = e.Code
		}
		a.metrics.grants.WithLabelValues(grantLabel(tr.grant), code).Inc()
	}
	return err
}

func grantLabel(g string) string {
	switch g {
	case "client_credentials", "password", "refresh_token":
		return g
	case GrantDeviceCode, "device_code":
		return "device_code"
	case "authorization_code":
		return g
	case GrantJWTBearer:
		return "on_behalf_of"
	}
	return "other"
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request, tr *tokenRequest) error {
	tid, err := a.dir.ResolveTenant(tr.tenantSeg)
	if err != nil {
		return oauthErr(oauthInvalidTenant, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(tr.tenantSeg))
	}
	tr.tenantID = tid
	if err := readForm(r, tr, "grant_type"); err != nil {
		return err
	}
	tr.grant = tr.form.Get("grant_type")
	var spec mintSpec
	scope, nonce := tr.form.Get("scope"), ""
	switch tr.grant {
	case "":
		return oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'grant_type'.")
	case "client_credentials":
		if err := appScope(tr.form.Get("scope")); err != nil {
			return err
		}
		spec, err = a.clientCredentials(r, tr)
	case "password":
		spec, err = a.passwordGrant(r, tr)
		if err == nil && wantsRefreshToken(tr.form.Get("scope")) {
			spec.session = a.newSession() // refresh.go
		}
	case "refresh_token":
		spec, err = a.refreshGrant(r, tr) // refresh.go
	case GrantDeviceCode, "device_code": // MSAL Go sends the short form, as Entra accepts
		spec, scope, err = a.deviceCodeGrant(r, tr) // device.go: the audience the person approved
	case GrantJWTBearer:
		spec, err = a.onBehalfOfGrant(r, tr) // obo.go
	case "authorization_code":
		var ar authRecord
		spec, ar, err = a.authCodeGrant(r, tr) // authcode.go
		scope, nonce = withOIDCScopes(ar.Scope, tr.form.Get("scope")), ar.Nonce
	default:
		return oauthErr(oauthUnsupportedGrantType, 70003, "The app requested an unsupported grant type '%s'.", clip(tr.grant))
	}
	if err != nil {
		return err
	}
	if spec.audience == "" {
		if spec.audience, err = a.requestedResource(tr); err != nil {
			return err
		}
	}
	if spec.principal.Type == gatehouse.PrincipalUser {
		// scp names what the person lets the client do at the resource.
		if spec.scope, err = a.personScope(tid, spec.audience, scope); err != nil {
			return err
		}
	}
	token, exp, err := a.mint(spec)
	if err != nil {
		return err
	}
	server.SetPrincipal(r.Context(), spec.principal.ObjectID)
	if spec.principal.Type != gatehouse.PrincipalUser {
		a.metrics.grants.WithLabelValues(grantLabel(tr.grant), "").Inc()
		writeTokenResponse(w, token, exp.Unix()-a.now().Unix())
		return nil
	}
	resp := userTokenResponse{TokenType: "Bearer", ExpiresIn: max(1, exp.Unix()-a.now().Unix()), AccessToken: token}
	resp.ExtExpiresIn = resp.ExpiresIn
	if spec.session != nil {
		if resp.RefreshToken, err = a.issueRefreshToken(r.Context(), &spec, tid); err != nil {
			return err
		}
		resp.Scope = grantedScope(scope)
	}
	if tr.form.Get("client_info") == "1" {
		resp.ClientInfo = clientInfo(spec.principal, tid)
	}
	if hasScope(scope, "openid") {
		if resp.IDToken, err = a.idToken(tr, spec, tid, nonce, exp); err != nil {
			return err
		}
	}
	a.metrics.grants.WithLabelValues(grantLabel(tr.grant), "").Inc()
	writeUserTokenResponse(w, &resp)
	return nil
}

// requestedResource is the token's audience: the resource of the scope
// parameter (v2), else the resource parameter (v1), known to this
// authority or the API of an application of the request's tenant.
func (a *Authority) requestedResource(tr *tokenRequest) (string, error) {
	resource, ok := resourceFromScopes(tr.form.Get("scope"))
	if !ok {
		if resource = tr.form.Get("resource"); resource == "" {
			return "", oauthErr(oauthInvalidScope, 70011, "The provided request must include a 'scope' input parameter.")
		}
	}
	if err := a.resourceAllowed(tr.tenantID, resource, tr.form.Get("scope")); err != nil {
		return "", err
	}
	return resource, nil
}

// personResource is requestedResource for a grant whose token is a
// person's: it also checks that the scp such a token would carry can be
// made, before anything is stored or spent.
func (a *Authority) personResource(tr *tokenRequest) (string, error) {
	resource, err := a.requestedResource(tr)
	if err != nil {
		return "", err
	}
	if _, err := a.personScope(tr.tenantID, resource, tr.form.Get("scope")); err != nil {
		return "", err
	}
	return resource, nil
}

// resourceAllowed reports whether tokens of tenantID may name resource:
// one of the server's own, or the API of an enabled application with a
// service principal in the tenant (api.go in directory). Of an
// application's API, scope may name .default or scopes the API exposes
// (apiScopes), and no other resource.
func (a *Authority) resourceAllowed(tenantID, resource, scope string) error {
	if a.KnownResource(resource) {
		// Of the server's own resources, too, one at a time (Entra's
		// AADSTS28000 for "https://management.azure.com/.default
		// https://vault.azure.net/.default").
		for _, s := range strings.Fields(scope) {
			if !oidcScopes[s] && !scopeOf(resource, s) {
				return errTwoResources(s, resource)
			}
		}
		return nil
	}
	app, err := a.api(tenantID, resource)
	if err != nil {
		return err
	}
	_, err = apiScopes(app, resource, scope)
	return err
}

// api is the enabled application whose API resource names, with Entra's
// errors when there is none.
func (a *Authority) api(tenantID, resource string) (*directory.Application, error) {
	app, err := a.dir.API(tenantID, resource)
	switch {
	case err == nil:
		return app, nil
	case errors.Is(err, directory.ErrDisabled):
		return nil, oauthErr(oauthInvalidResource, 7000112, "Application '%s' is disabled.", clip(resource))
	}
	return nil, oauthErr(oauthInvalidResource, 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clip(resource), tenantID)
}

// oidcScopes are the OpenID Connect scopes, which name no resource.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

// scopeOf reports whether scope s is one of resource's ({resource}/{name}).
func scopeOf(resource, s string) bool {
	prefix := strings.TrimRight(resource, "/") + "/"
	return len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// errTwoResources is Entra's answer for a scope of a second resource.
func errTwoResources(s, resource string) error {
	return oauthErr(oauthInvalidScope, 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource: '%s' is not a scope of '%s'. Request a token for each resource separately.", clip(s), clip(resource))
}

// apiScopes are the delegated scopes of app's API that scope names
// ({resource}/{value}), each once, in the API's spelling; nil when it
// names none or .default (every enabled scope, for a person). The OpenID
// Connect scopes pass; a scope of another resource, one the API does not
// expose (or has disabled), or .default beside named scopes is
// invalid_scope, as Entra answers.
func apiScopes(app *directory.Application, resource, scope string) ([]string, error) {
	prefix := strings.TrimRight(resource, "/") + "/"
	offered := app.DelegatedScopes()
	var names []string
	all := false
	for _, s := range strings.Fields(scope) {
		if oidcScopes[s] {
			continue
		}
		if !scopeOf(resource, s) {
			return nil, errTwoResources(s, resource)
		}
		name := strings.TrimLeft(s[len(prefix):], "/")
		if name == ".default" {
			all = true
			continue
		}
		i := slices.IndexFunc(offered, func(o string) bool { return strings.EqualFold(o, name) })
		if i < 0 {
			return nil, oauthErr(oauthInvalidScope, 70011, "The provided value for the input parameter 'scope' is not valid. The scope '%s' does not exist on the resource '%s' or is disabled; it offers .default and %s.", clip(s), clip(resource), clip(strings.Join(offered, ", ")))
		}
		if !slices.Contains(names, offered[i]) {
			names = append(names, offered[i])
		}
	}
	if all && len(names) > 0 {
		return nil, oauthErr(oauthInvalidScope, 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s/.default cannot be combined with other scopes of the resource.", clip(strings.TrimRight(resource, "/")))
	}
	return names, nil
}

// personScope is the scp of a person's token for resource: user_impersonation
// for the server's own resources; for an application's API the scopes the
// request names, or for .default (or none) every scope the API exposes —
// consent is implicit here.
func (a *Authority) personScope(tenantID, resource, scope string) (string, error) {
	if a.KnownResource(resource) {
		return directory.DefaultDelegatedName, nil
	}
	app, err := a.api(tenantID, resource)
	if err != nil {
		return "", err
	}
	names, err := apiScopes(app, resource, scope)
	if err != nil {
		return "", err
	}
	if names == nil {
		if names = app.DelegatedScopes(); len(names) == 0 {
			return "", oauthErr(oauthInvalidScope, 70011, "The application '%s' exposes no enabled delegated permission scope (api.oauth2PermissionScopes): a person's token for it would grant nothing.", clip(resource))
		}
	}
	return strings.Join(names, " "), nil
}

// writeTokenResponse writes §2.4's success body: expires_in is a JSON
// number (az crashes on a string), no id_token, no client_info. The token
// is base64url and dots only, so it needs no escaping.
func writeTokenResponse(w http.ResponseWriter, token string, expiresIn int64) {
	if expiresIn < 1 {
		expiresIn = 1
	}
	n := strconv.FormatInt(expiresIn, 10)
	b := make([]byte, 0, len(token)+110)
	b = append(b, `{"token_type":"Bearer","expires_in":`...)
	b = append(b, n...)
	b = append(b, `,"ext_expires_in":`...)
	b = append(b, n...)
	b = append(b, `,"access_token":"`...)
	b = append(b, token...)
	b = append(b, `"}`...)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.Write(b)
}

// readForm reads the url-encoded body (never the query string: Node adds
// client-request-id there, and secrets do not belong in URLs) and the
// client's credentials from the form or HTTP Basic authentication. first
// is the parameter a body of another type is said to lack (the endpoint's
// first required one, as Entra names it).
func readForm(r *http.Request, tr *tokenRequest, first string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: '%s'. The body must be application/x-www-form-urlencoded.", first)
	}
	buf, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxFormBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return oauthErr(oauthInvalidRequest, 900144, "The request body is too large.").WithTarget("body")
		}
		return oauthErr(oauthInvalidRequest, 900144, "The request body could not be read.")
	}
	tr.form, err = url.ParseQuery(string(buf))
	if err != nil {
		return oauthErr(oauthInvalidRequest, 900144, "The request body is not valid application/x-www-form-urlencoded data.")
	}
	for _, p := range singleParams {
		if len(tr.form[p]) > 1 {
			return oauthErr(oauthInvalidRequest, 90011, "The parameter '%s' was given more than once.", p)
		}
	}
	tr.clientID = tr.form.Get("client_id")
	tr.secret = tr.form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		// client_secret_basic: both parts are form-url-encoded (RFC 6749
		// §2.3.1).
		id, err1 := url.QueryUnescape(user)
		sec, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return oauthErr(oauthInvalidClient, 7000215, "The Authorization header is not valid client_secret_basic.")
		}
		if tr.secret != "" || (tr.clientID != "" && !strings.EqualFold(tr.clientID, id)) {
			return oauthErr(oauthInvalidRequest, 90011, "The client credentials were given both in the Authorization header and in the body.")
		}
		tr.clientID, tr.secret = id, sec
	}
	return nil
}

// appScope refuses a client-credentials scope that is not a resource's
// .default: an application's own token carries roles, never a delegated
// scope (MSAL adds the OIDC scopes, which Entra lets by), and a daemon
// that asked for …/user_impersonation here would fail against Entra.
func appScope(scope string) error {
	for _, s := range strings.Fields(scope) {
		switch s {
		case "openid", "offline_access", "profile", "email":
			continue
		}
		if !strings.HasSuffix(s, "/.default") {
			return oauthErr(oauthInvalidScope, 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", clip(s))
		}
	}
	return nil
}

// clientCredentials authenticates a confidential client by secret,
// certificate assertion or federated assertion.
func (a *Authority) clientCredentials(r *http.Request, tr *tokenRequest) (mintSpec, error) {
	if tr.clientID == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	assertion := tr.form.Get("client_assertion")
	if tr.secret == "" && assertion == "" {
		return mintSpec{}, oauthErr(oauthInvalidClient, 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	if tr.secret != "" && assertion != "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 90011, "Give either 'client_secret' or 'client_assertion', not both.")
	}
	client, err := a.client(tr)
	if err != nil {
		return mintSpec{}, err
	}
	p := client.Principal()
	if tr.secret != "" {
		switch err := client.CheckSecret(tr.secret, a.now()); {
		case errors.Is(err, directory.ErrSecretExpired):
			return mintSpec{}, oauthErr(oauthInvalidClient, 7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app.", p.ClientID)
		case err != nil:
			return mintSpec{}, oauthErr(oauthInvalidClient, 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", p.ClientID)
		}
		return mintSpec{principal: p, acr: "1"}, nil
	}
	if t := tr.form.Get("client_assertion_type"); t != assertionTypeJWTBearer {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 700025, "The client_assertion_type must be '%s'.", assertionTypeJWTBearer)
	}
	if err := a.checkAssertion(r.Context(), tr, client, assertion); err != nil {
		return mintSpec{}, err
	}
	spec := mintSpec{principal: p, acr: "2"}
	if p.ManagedIdentity {
		// A user-assigned identity's federated credential (workload
		// identity): its tokens name the identity's resource, as the
		// managed-identity endpoint's do.
		if mi, err := a.dir.ManagedIdentityByID(p.ClientID); err == nil {
			spec.miResourceID = mi.ResourceID
		}
	}
	return spec, nil
}

// client looks up the confidential client of the request's tenant.
func (a *Authority) client(tr *tokenRequest) (*directory.Client, error) {
	client, err := a.dir.Client(tr.tenantID, tr.clientID)
	switch {
	case errors.Is(err, directory.ErrDisabled):
		return nil, oauthErr(oauthUnauthorizedClient, 7000112, "Application '%s' is disabled.", clip(tr.clientID))
	case errors.Is(err, directory.ErrNoServicePrincipal):
		return nil, oauthErr(oauthInvalidClient, 7000229, "The client application %s is missing service principal in the tenant %s.", clip(tr.clientID), tr.tenantID)
	case err != nil:
		return nil, oauthErr(oauthUnauthorizedClient, 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clip(tr.clientID), tr.tenantID)
	}
	return client, nil
}

// passwordGrant signs a person in (resource owner password credentials),
// for `gatehouse login` and scripts. The client is a first-party public
// client, or a registered application (then its secret, if sent, must be
// right).
func (a *Authority) passwordGrant(r *http.Request, tr *tokenRequest) (mintSpec, error) {
	user, pass := tr.form.Get("username"), tr.form.Get("password")
	if tr.clientID == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if user == "" || pass == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameters: 'username' and 'password'.")
	}
	clientID := strings.ToLower(tr.clientID)
	acr := "0"
	if !publicClients[clientID] {
		client, err := a.client(tr)
		if err != nil {
			return mintSpec{}, err
		}
		if client.Principal().ManagedIdentity {
			return mintSpec{}, oauthErr(oauthUnauthorizedClient, 700016, "'%s' is a managed identity: people do not sign in to it.", clip(tr.clientID))
		}
		if tr.secret != "" {
			if err := client.CheckSecret(tr.secret, a.now()); err != nil {
				return mintSpec{}, oauthErr(oauthInvalidClient, 7000215, "Invalid client secret provided.")
			}
			acr = "1"
		}
		clientID = client.Principal().ClientID
	} else if tr.secret != "" || tr.form.Get("client_assertion") != "" {
		return mintSpec{}, oauthErr(oauthInvalidClient, 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	}
	// Smart-lockout, per user name and node: after lockoutBurst failures,
	// one attempt per lockoutEvery. Checked before the (slow) hash.
	lim := a.lockout(user)
	if lim.TokensAt(a.now()) < 1 {
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50053, "The account is locked because of too many sign-in attempts with a wrong password. Try again later.")
	}
	p, err := a.dir.CheckPassword(r.Context(), tr.tenantID, user, pass)
	if errors.Is(err, directory.ErrInvalidPassword) {
		lim.AllowN(a.now(), 1)
	}
	switch {
	case errors.Is(err, directory.ErrDisabled):
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50057, "The user account is disabled.")
	case errors.Is(err, directory.ErrPasswordExpired):
		// Entra's answer to a temporary password: the person changes it in
		// a browser (the portal's sign-in) first.
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50055, "The password is expired. Sign in to the portal to choose a new one.")
	case errors.Is(err, directory.ErrInvalidPassword):
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50126, "Error validating credentials due to invalid username or password.")
	case err != nil:
		return mintSpec{}, gatehouse.ErrUnavailable.WithCause(err)
	}
	return mintSpec{principal: p, acr: acr, clientID: clientID, scope: "user_impersonation"}, nil
}

// Lockout of people's password sign-ins.
const (
	lockoutBurst = 10
	lockoutEvery = time.Minute
)

func (a *Authority) lockout(user string) *rate.Limiter {
	key := strings.ToLower(user)
	if lim, ok := a.lockouts.Get(key); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Every(lockoutEvery), lockoutBurst)
	if prev, ok, _ := a.lockouts.PeekOrAdd(key, lim); ok {
		return prev
	}
	return lim
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
