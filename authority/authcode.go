package authority

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
)

// The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636), as
// Entra ID serves it to public clients on the person's own machine: `az
// login` in a browser, azidentity's and @azure/identity's
// InteractiveBrowserCredential.
//
//	app:     starts a loopback listener and opens the browser at
//	         GET {tenant}/oauth2/v2.0/authorize (or /adfs/oauth2/authorize)
//	         ?client_id&response_type=code&redirect_uri=http://localhost:P/…
//	         &scope&state&code_challenge&code_challenge_method=S256
//	         [&response_mode=query|form_post][&nonce][&prompt]
//	authority: checks client and redirect URI (a bad one gets an error
//	         page, never a redirect), then everything else (errors go back
//	         to the redirect URI with state), stores the request and sends
//	         the browser to the portal: /portal/authorize?request=…
//	portal:  the person signs in if need be and sees which app asks for
//	         which resource: Continue or Cancel (prompt=none: no page, a
//	         session or error=login_required)
//	browser: back at the redirect URI with code and state (a 303 for
//	         query, a self-submitting form for form_post, which MSAL Go
//	         asks for), or error=access_denied
//	app:     POST token grant_type=authorization_code, code, redirect_uri,
//	         code_verifier → the person's token (and session, ID token with
//	         the nonce) once
//
// Redirect URIs: loopback ones (http://localhost, 127.0.0.1 or [::1], any
// port and path; RFC 8252 §7.3) for any client, and exactly the URIs an
// application registered (directory's web.redirectUris and
// publicClient.redirectUris); a code sent anywhere else could be taken by
// whoever runs that address. PKCE with S256 is required, except for a web
// app's registered URI: that code is redeemed only with the app's own
// secret, certificate or federated credential (and PKCE if it sent one). The
// request id and the code are 256 random bits stored only as SHA-256; a
// request can be decided once and its code redeemed once, within
// authCodeLifetime of the approval, by the client, redirect URI and
// verifier of the request. The person's state is checked again at
// redemption, as for device codes.

const (
	kindAuthRequest = "authority.authrequest"
	// authRequestLifetime bounds the time from the app's request to the
	// person's decision; authCodeLifetime from the decision to redemption
	// (Entra's codes last about 10 minutes).
	authRequestLifetime = 15 * time.Minute
	authCodeLifetime    = 10 * time.Minute
	// AuthorizePagePath is the portal's page for a request.
	AuthorizePagePath = "/portal/authorize"
)

type authRecord struct {
	TenantID      string `json:"tenantId"`
	ClientID      string `json:"clientId"`
	ClientName    string `json:"clientName"`
	RedirectURI   string `json:"redirectUri"`
	ResponseMode  string `json:"responseMode"`
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	Scope         string `json:"scope"`
	Resource      string `json:"resource"`
	CodeChallenge string `json:"codeChallenge"` // "": none (a confidential client's choice)
	// Confidential: the redirect URI is a registered web one; the code is
	// redeemed with the client's credential.
	Confidential bool      `json:"confidential,omitempty"`
	Prompt       string    `json:"prompt,omitempty"`
	LoginHint    string    `json:"loginHint,omitempty"`
	ADFS         bool      `json:"adfs,omitempty"`
	Expires      time.Time `json:"expires"`
	Status       string    `json:"status"` // DevicePending, DeviceApproved, DeviceDeclined, deviceRedeemed
	ObjectID     string    `json:"objectId,omitempty"`
	AuthTime     time.Time `json:"authTime,omitzero"`
}

// AuthRequest is an app's pending sign-in as the portal shows it.
type AuthRequest struct {
	ID         string
	TenantID   string
	ClientID   string
	ClientName string
	Resource   string
	// RedirectURI is where the browser goes back to (a loopback address
	// or one the application registered).
	RedirectURI   string
	OfflineAccess bool
	// PromptNone: the app asked not to show anything (prompt=none);
	// PromptLogin: to have the person sign in again (prompt=login).
	PromptNone, PromptLogin bool
	// LoginHint is the person the app expects (login_hint), if it said.
	LoginHint string
	// APIName and Permissions: when Resource is an application's API, its
	// name and the delegated scopes the app asks for.
	APIName     string
	Permissions []Permission
	// Created is when the app asked.
	Created, Expires time.Time
}

// AuthResponse is where the browser goes after the decision: to URI with
// Params, by a redirect (FormPost false) or a self-submitting form.
type AuthResponse struct {
	URI      string
	Params   url.Values
	FormPost bool
}

// Location is the redirect for a query response.
func (r *AuthResponse) Location() string {
	sep := "?"
	if strings.Contains(r.URI, "?") {
		sep = "&"
	}
	return r.URI + sep + r.Params.Encode()
}

// ErrAuthRequestUnknown: no such request, it expired or was decided.
var ErrAuthRequestUnknown = gatehouse.NotFoundf("AuthorizationRequestNotFound",
	"This sign-in request is not valid, has expired or was already used. Start the sign-in in the app again.")

func authKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// loopbackRedirect reports whether u is a loopback redirect URI a public
// client may use: http, host localhost or a loopback address, no user
// info or fragment.
func loopbackRedirect(raw string) bool {
	if len(raw) > 2048 {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	return directory.LoopbackHost(u.Hostname())
}

var authErrorPage = template.Must(template.New("autherror").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in error · Gatehouse</title></head>
<body><h1>Sign-in error</h1><p>{{.}}</p><p>Close this window and check the app's configuration.</p></body></html>
`))

// handleAuthorize is GET (and POST) {tenant}/oauth2/v2.0/authorize and
// /adfs/oauth2/authorize. It answers with redirects and HTML, not JSON.
func (a *Authority) handleAuthorize(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error {
	page := func(status int, msg string) error {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.WriteHeader(status)
		return authErrorPage.Execute(w, msg)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return page(http.StatusBadRequest, "The request could not be read.")
	}
	q := r.Form
	for _, p := range []string{"client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge",
		"code_challenge_method", "response_mode", "nonce", "prompt", "login_hint"} {
		if len(q[p]) > 1 {
			return page(http.StatusBadRequest, fmt.Sprintf("The parameter '%s' was given more than once.", p))
		}
	}
	tid, err := a.dir.ResolveTenant(seg)
	if err != nil {
		return page(http.StatusBadRequest, fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", clip(seg)))
	}
	tr := &tokenRequest{tenantSeg: seg, tenantID: tid, adfs: adfs, form: q, clientID: q.Get("client_id")}
	if tr.clientID == "" {
		return page(http.StatusBadRequest, "AADSTS900144: The request must contain the parameter 'client_id'.")
	}
	clientID, name := strings.ToLower(tr.clientID), publicClientNames[strings.ToLower(tr.clientID)]
	if !publicClients[clientID] {
		client, err := a.client(tr)
		if err != nil {
			e, _ := gatehouse.AsError(err)
			return page(http.StatusBadRequest, "AADSTS"+e.InnerCode+": "+e.Message)
		}
		if client.Principal().ManagedIdentity {
			return page(http.StatusBadRequest, "AADSTS700016: '"+clip(tr.clientID)+"' is a managed identity: people do not sign in to it.")
		}
		clientID, name = client.Principal().ClientID, client.Principal().Name
	}
	redirect := q.Get("redirect_uri")
	kind := directory.RedirectUnregistered
	if app, err := a.dir.Application(clientID); err == nil {
		kind = app.Redirect(redirect)
	}
	if kind == directory.RedirectUnregistered && !loopbackRedirect(redirect) {
		return page(http.StatusBadRequest, "AADSTS50011: The redirect URI '"+clip(redirect)+
			"' specified in the request does not match the redirect URIs configured for the application '"+clip(clientID)+
			"'. Register it (web.redirectUris or publicClient.redirectUris), or use a loopback address (http://localhost:PORT).")
	}
	// A code sent to a web app's registered address is redeemed with the
	// app's credential; PKCE is then the app's choice.
	confidential := kind == directory.RedirectWeb
	mode := q.Get("response_mode")
	resp := &AuthResponse{URI: redirect, Params: url.Values{}, FormPost: mode == "form_post"}
	if st := q.Get("state"); st != "" {
		resp.Params.Set("state", st)
	}
	fail := func(code, desc string) error {
		resp.Params.Set("error", code)
		resp.Params.Set("error_description", desc)
		return a.writeAuthResponse(w, r, resp)
	}
	switch {
	case mode != "" && mode != "query" && mode != "form_post":
		resp.FormPost = false
		return fail("invalid_request", "AADSTS900144: response_mode must be query or form_post.")
	case q.Get("response_type") != "code":
		return fail("unsupported_response_type", "AADSTS700054: response_type must be 'code'.")
	case q.Get("code_challenge") == "" && !confidential || len(q.Get("code_challenge")) > 128:
		return fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange is required: send code_challenge.")
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		return fail("invalid_request", "AADSTS50129: code_challenge_method must be S256.")
	case len(q.Get("state")) > 2048 || len(q.Get("nonce")) > 1024 || len(q.Get("scope")) > 4096 || len(q.Get("login_hint")) > 256:
		return fail("invalid_request", "AADSTS90011: A parameter is too long.")
	}
	resource, err := a.personResource(tr)
	if err != nil {
		e, _ := gatehouse.AsError(err)
		return fail(e.Code, "AADSTS"+e.InnerCode+": "+e.Message)
	}
	if !a.deviceLimiter(r).Allow() {
		return fail("temporarily_unavailable", "Too many sign-in requests from this address. Try again in a minute.")
	}
	var raw [32]byte
	if _, err := io.ReadFull(a.rand, raw[:]); err != nil {
		return fmt.Errorf("authority: authorize: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := storage.Now(a.now())
	rec := authRecord{TenantID: tid, ClientID: clientID, ClientName: name, RedirectURI: redirect, ResponseMode: mode,
		State: q.Get("state"), Nonce: q.Get("nonce"), Scope: q.Get("scope"), Resource: resource,
		CodeChallenge: q.Get("code_challenge"), Confidential: confidential, Prompt: q.Get("prompt"), LoginHint: q.Get("login_hint"), ADFS: adfs,
		Expires: now.Add(authRequestLifetime), Status: DevicePending}
	if _, err := a.authRequests.Create(r.Context(), &storage.Record[authRecord]{Key: authKey(id), Value: rec, Expires: rec.Expires}); err != nil {
		return fail("temporarily_unavailable", "The sign-in service is busy; try again.")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, AuthorizePagePath+"?request="+id, http.StatusFound)
	return nil
}

// The form_post page's script, /portal/static/autopost.js, submits its
// form (the page's CSP allows no inline script).
var formPostPage = template.Must(template.New("formpost").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in · Gatehouse</title></head>
<body><form id="autopost" method="post" action="{{.URI}}">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<noscript><p>Script is off: continue to the app.</p></noscript><button type="submit">Continue</button>
</form><script src="/portal/static/autopost.js"></script></body></html>
`))

// writeAuthResponse sends the browser back to the app: a 303 with the
// parameters in the query, or (form_post) a page whose form posts them.
// Authorization responses are never cached.
func (a *Authority) writeAuthResponse(w http.ResponseWriter, _ *http.Request, resp *AuthResponse) error {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	u, _ := url.Parse(resp.URI) // a loopback or registered URI, checked
	if !resp.FormPost || u.Scheme != "http" && u.Scheme != "https" {
		// A native app's own scheme (myapp://auth) takes the query form.
		h.Set("Location", resp.Location())
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; form-action "+u.Scheme+"://"+u.Host+"; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	return formPostPage.Execute(w, resp)
}

// WriteAuthResponse is writeAuthResponse for the portal.
func (a *Authority) WriteAuthResponse(w http.ResponseWriter, r *http.Request, resp *AuthResponse) error {
	return a.writeAuthResponse(w, r, resp)
}

// AuthorizationRequest returns the pending request id names.
// ErrAuthRequestUnknown.
func (a *Authority) AuthorizationRequest(ctx context.Context, id string) (*AuthRequest, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrAuthRequestUnknown
	}
	rec, err := a.authRequests.Get(ctx, authKey(id))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, ErrAuthRequestUnknown
	case err != nil:
		return nil, gatehouse.ErrUnavailable.WithCause(err)
	case !rec.Value.Expires.After(a.now()) || rec.Value.Status != DevicePending:
		return nil, ErrAuthRequestUnknown
	}
	v := rec.Value
	ar := &AuthRequest{ID: id, TenantID: v.TenantID, ClientID: v.ClientID, ClientName: v.ClientName, Resource: v.Resource,
		RedirectURI: v.RedirectURI, OfflineAccess: wantsRefreshToken(v.Scope), PromptNone: v.Prompt == "none",
		PromptLogin: v.Prompt == "login", LoginHint: v.LoginHint, Created: v.Expires.Add(-authRequestLifetime), Expires: v.Expires}
	ar.APIName, ar.Permissions = a.requestedPermissions(v.TenantID, v.Resource, v.Scope)
	return ar, nil
}

// DecideAuthorization approves (person set, approve true) or refuses the
// request id and returns where to send the browser: the code, or
// error=access_denied (declined) or login_required (approve false with no
// person: prompt=none without a session). Audited when a person decides.
// ErrAuthRequestUnknown; 403 for a person of another tenant.
func (a *Authority) DecideAuthorization(ctx context.Context, r *http.Request, id string, person *gatehouse.Principal, approve bool) (*AuthResponse, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrAuthRequestUnknown
	}
	if approve && (person == nil || person.Type != gatehouse.PrincipalUser) {
		return nil, gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed, "Only people can approve a sign-in.")
	}
	var code string
	if approve {
		var raw [32]byte
		if _, err := io.ReadFull(a.rand, raw[:]); err != nil {
			return nil, err
		}
		code = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	now := storage.Now(a.now())
	errTenant := gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed, "The sign-in request is for another tenant than yours.")
	rec, err := a.authRequests.Update(ctx, authKey(id), func(sr *storage.Record[authRecord]) error {
		v := &sr.Value
		switch {
		case !v.Expires.After(now) || v.Status != DevicePending:
			return ErrAuthRequestUnknown
		case person != nil && !strings.EqualFold(v.TenantID, person.TenantID):
			return errTenant
		}
		v.Status, v.AuthTime = DeviceDeclined, now
		if person != nil {
			v.ObjectID = person.ObjectID
		}
		if approve {
			v.Status, sr.Alt = DeviceApproved, authKey(code)
			v.Expires, sr.Expires = now.Add(authCodeLifetime), now.Add(authCodeLifetime)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = ErrAuthRequestUnknown
		}
		if _, ok := gatehouse.AsError(err); !ok {
			err = gatehouse.ErrUnavailable.WithCause(err)
		}
		return nil, err
	}
	v := rec.Value
	resp := &AuthResponse{URI: v.RedirectURI, Params: url.Values{}, FormPost: v.ResponseMode == "form_post"}
	switch {
	case approve:
		resp.Params.Set("code", code)
	case person == nil:
		resp.Params.Set("error", "login_required")
		resp.Params.Set("error_description", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
	default:
		resp.Params.Set("error", "access_denied")
		resp.Params.Set("error_description", "AADSTS65004: The user declined to sign in to the app.")
	}
	if v.State != "" {
		resp.Params.Set("state", v.State)
	}
	if person != nil && r != nil {
		action := actionApproveAuthCode
		if !approve {
			action = actionDeclineAuthCode
		}
		a.audit(r, *person, action, "/gatehouse/authorizations/"+v.ClientID, nil)
		server.SetPrincipal(ctx, person.ObjectID)
	}
	return resp, nil
}

// Audited sign-in decisions (the scope names the client).
const (
	actionApproveAuthCode = "Gatehouse/authorizations/approve/action"
	actionDeclineAuthCode = "Gatehouse/authorizations/decline/action"
)

// authCodeGrant redeems an approved code (grant_type authorization_code).
func (a *Authority) authCodeGrant(r *http.Request, tr *tokenRequest) (mintSpec, authRecord, error) {
	code, verifier, redirect := tr.form.Get("code"), tr.form.Get("code_verifier"), tr.form.Get("redirect_uri")
	switch {
	case tr.clientID == "":
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	case code == "":
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'code'.")
	case redirect == "":
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'redirect_uri'.")
	}
	invalid := oauthErr(oauthInvalidGrant, 70000, "The provided authorization code is not valid.")
	ctx := r.Context()
	cur, err := a.authRequests.GetByAlt(ctx, authKey(code))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return mintSpec{}, authRecord{}, invalid
	case err != nil:
		return mintSpec{}, authRecord{}, gatehouse.ErrUnavailable.WithCause(err)
	}
	// A web app's code needs the app's credential; a public client's must
	// come without one. Checked before the code is spent.
	acr := "0"
	if cur.Value.Confidential {
		if !strings.EqualFold(cur.Value.ClientID, tr.clientID) {
			return mintSpec{}, authRecord{}, invalid
		}
		app, err := a.clientCredentials(r, tr)
		if err != nil {
			return mintSpec{}, authRecord{}, err
		}
		acr = app.acr
	} else if tr.secret != "" || tr.form.Get("client_assertion") != "" {
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidClient, 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	}
	if verifier == "" && cur.Value.CodeChallenge != "" {
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidRequest, 9002313, "The request body must contain the following parameter: 'code_verifier'.")
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	now := storage.Now(a.now())
	errRedeemed, errClient, errRedirect, errVerifier := errors.New("redeemed"), errors.New("client"), errors.New("redirect"), errors.New("verifier")
	rec, err := a.authRequests.Update(ctx, cur.Key, func(sr *storage.Record[authRecord]) error {
		v := &sr.Value
		switch {
		case sr.Alt != authKey(code) || v.Status == deviceRedeemed:
			return errRedeemed
		case v.Status != DeviceApproved || !v.Expires.After(now):
			return storage.ErrNotFound
		case !strings.EqualFold(v.ClientID, tr.clientID) || !strings.EqualFold(v.TenantID, tr.tenantID):
			return errClient
		case v.RedirectURI != redirect:
			return errRedirect
		case v.CodeChallenge != "" && subtle.ConstantTimeCompare([]byte(want), []byte(v.CodeChallenge)) != 1,
			v.CodeChallenge == "" && verifier != "":
			return errVerifier
		}
		v.Status = deviceRedeemed
		return nil
	})
	switch {
	case errors.Is(err, errRedeemed):
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidGrant, 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case errors.Is(err, storage.ErrNotFound):
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidGrant, 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case errors.Is(err, errClient):
		return mintSpec{}, authRecord{}, invalid
	case errors.Is(err, errRedirect):
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidGrant, 70000, "The redirect_uri does not match the one of the authorization request.")
	case errors.Is(err, errVerifier):
		return mintSpec{}, authRecord{}, oauthErr(oauthInvalidGrant, 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	case err != nil:
		return mintSpec{}, authRecord{}, gatehouse.ErrUnavailable.WithCause(err)
	}
	v := rec.Value
	p, err := a.signedInPerson(v.ObjectID, v.AuthTime)
	if err != nil {
		return mintSpec{}, authRecord{}, err
	}
	spec := mintSpec{principal: p, acr: acr, clientID: v.ClientID, scope: "user_impersonation", audience: v.Resource}
	if wantsRefreshToken(withOIDCScopes(v.Scope, tr.form.Get("scope"))) {
		spec.session = &session{id: gatehouse.NewGUID(), authTime: v.AuthTime}
	}
	return spec, v, nil
}

// withOIDCScopes adds to the authorize request's scope the OpenID Connect
// scopes (openid, profile, email, offline_access) the redemption asks for,
// as Entra does: MSAL's confidential client builds its authorize URL with
// the resource's scope alone and asks for the ID token and the refresh
// token when it redeems the code. The resource stays the request's.
func withOIDCScopes(requested, redemption string) string {
	out := requested
	for _, s := range strings.Fields(redemption) {
		switch s {
		case "openid", "profile", "email", "offline_access":
			if !hasScope(out, s) {
				out += " " + s
			}
		}
	}
	return out
}
