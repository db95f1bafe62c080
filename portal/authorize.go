package portal

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
)

// SignIns is the identity authority's browser sign-ins: the device
// authorization grant's requests (DeviceRequest, DecideDevice) and the
// authorization code grant's (authority.AuthorizePagePath), which people
// approve on the portal's pages.
type SignIns interface {
	// DeviceRequest: authority.ErrDeviceCodeUnknown.
	DeviceRequest(ctx context.Context, userCode string) (*authority.DeviceRequest, error)
	// DecideDevice: ErrDeviceCodeUnknown, ErrDeviceCodeDecided, 403.
	DecideDevice(ctx context.Context, r *http.Request, userCode string, person gatehouse.Principal, approve bool) (*authority.DeviceRequest, error)
	// AuthorizationRequest: authority.ErrAuthRequestUnknown.
	AuthorizationRequest(ctx context.Context, id string) (*authority.AuthRequest, error)
	// DecideAuthorization: ErrAuthRequestUnknown, 403.
	DecideAuthorization(ctx context.Context, r *http.Request, id string, person *gatehouse.Principal, approve bool) (*authority.AuthResponse, error)
	// WriteAuthResponse sends the browser back to the app.
	WriteAuthResponse(w http.ResponseWriter, r *http.Request, resp *authority.AuthResponse) error
	// LogoutTarget is where an app's sign-out sends the browser after the
	// portal session ends ("" none): authority.ErrLogoutRedirect.
	LogoutTarget(clientID, idTokenHint, uri, state string) (string, error)
}

// authorizeView is authorize.html.
type authorizeView struct {
	Request *authority.AuthRequest
	// AppHost is the redirect URI's host: where the browser goes next.
	AppHost string
	// Self is this page (to come back to as someone else).
	Self string
}

// authorizePage is GET /portal/authorize?request=…, where the authority
// sends the browser of an app's sign-in: signed in, the person sees which
// app asks for which resource (Continue or Cancel); not signed in, they
// sign in first and come back. prompt=none shows nothing: a session
// approves at once, none answers login_required; prompt=login asks for the
// password again when the session began before the request; a login_hint
// naming someone else than the signed-in person asks that person to sign
// in (and fills in the name).
func (p *Portal) authorizePage(q *req) error {
	if p.opts.SignIns == nil {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server does not sign apps in.")
	}
	id := q.r.URL.Query().Get("request")
	ar, err := p.opts.SignIns.AuthorizationRequest(q.ctx(), id)
	if err != nil {
		return err
	}
	u, since, err := p.sessionSince(q.r)
	switch {
	case errors.Is(err, errNoSession) && ar.PromptNone:
		resp, err := p.opts.SignIns.DecideAuthorization(q.ctx(), q.r, id, nil, false)
		if err != nil {
			return err
		}
		return p.opts.SignIns.WriteAuthResponse(q.w, q.r, resp)
	case errors.Is(err, errNoSession):
		if ar.LoginHint != "" {
			// The sign-in page, with the name the app expects filled in.
			return p.render(q, http.StatusOK, "signin", "Sign in", signInView{Next: q.r.URL.RequestURI(),
				Context: appWaiting(q.r.URL.RequestURI()), UserName: ar.LoginHint})
		}
		http.Redirect(q.w, q.r, "/portal/signin?next="+url.QueryEscape(q.r.URL.RequestURI()), http.StatusSeeOther)
		return nil
	case err != nil:
		return err
	}
	switch {
	case ar.PromptLogin && since.Before(ar.Created):
		// prompt=login: the person signs in again, whatever their session.
		return p.render(q, http.StatusOK, "signin", "Sign in", signInView{Next: q.r.URL.RequestURI(),
			Context: ar.ClientName + " asks you to sign in again to continue.", UserName: cmp.Or(ar.LoginHint, u.UserName)})
	case ar.LoginHint != "" && !strings.EqualFold(ar.LoginHint, u.UserName) && !ar.PromptNone:
		// login_hint names someone else: that person signs in (this
		// browser's session becomes theirs), as Entra's account picker
		// would offer.
		return p.render(q, http.StatusOK, "signin", "Sign in", signInView{Next: q.r.URL.RequestURI(),
			Context: ar.ClientName + " asks you to sign in as " + ar.LoginHint + " (you are signed in as " + u.UserName + ").", UserName: ar.LoginHint})
	}
	q.user = u
	if ar.PromptNone {
		person := gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: u.ObjectID, TenantID: u.TenantID, Name: u.UserName}
		resp, err := p.opts.SignIns.DecideAuthorization(q.ctx(), q.r, id, &person, true)
		if err != nil {
			return err
		}
		return p.opts.SignIns.WriteAuthResponse(q.w, q.r, resp)
	}
	host := ar.RedirectURI
	if ru, err := url.Parse(ar.RedirectURI); err == nil {
		host = ru.Host
	}
	allowFormRedirect(q.w, ar.RedirectURI)
	return p.render(q, http.StatusOK, "authorize", "Sign in to "+ar.ClientName, authorizeView{Request: ar, AppHost: host, Self: q.r.URL.RequestURI()})
}

// authorizeDecide is POST /portal/authorize: Continue (decision=approve)
// or Cancel, for the signed-in person; the browser goes back to the app.
func (p *Portal) authorizeDecide(q *req) error {
	if p.opts.SignIns == nil {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server does not sign apps in.")
	}
	if err := q.form(); err != nil {
		return err
	}
	u := q.user
	person := gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: u.ObjectID, TenantID: u.TenantID, Name: u.UserName}
	resp, err := p.opts.SignIns.DecideAuthorization(q.ctx(), q.r, q.r.PostForm.Get("request"), &person, q.r.PostForm.Get("decision") == "approve")
	if err != nil {
		return err
	}
	return p.opts.SignIns.WriteAuthResponse(q.w, q.r, resp)
}

// allowFormRedirect lets this page's forms end at target: browsers apply
// the page's CSP form-action to the redirects that follow a form's POST
// (Chromium refuses "form-action 'self'" a 303 to the app), so a page
// whose decision sends the browser on to an app names the app's origin —
// a checked loopback or registered address.
func allowFormRedirect(w http.ResponseWriter, target string) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" {
		return
	}
	source := u.Scheme + ":" // a native app's own scheme
	if u.Scheme == "http" || u.Scheme == "https" {
		source = u.Scheme + "://" + u.Host
	}
	if strings.ContainsAny(source, " ;,'\"") {
		return
	}
	w.Header().Set("Content-Security-Policy", strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action 'self' "+source, 1))
}
