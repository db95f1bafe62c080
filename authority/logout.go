package authority

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
)

// The end-session endpoint (OpenID Connect RP-initiated logout, as Entra
// serves it): an app's "sign out" sends the browser to
//
//	GET|POST {tenant}/oauth2/v2.0/logout (or /adfs/oauth2/logout)
//	  [?post_logout_redirect_uri=…&client_id=…|id_token_hint=…&state=…]
//
// The authority checks where the browser may go afterwards — only an
// address the app registered as a redirect URI, or a loopback one — and
// sends it to the portal's sign-out page (/portal/signout), which asks the
// person, ends the portal session and goes there with state. A hint's
// token is read only for its aud (the app): it can only point the browser
// at that app's own registered addresses.

// LogoutPagePath is the portal's sign-out page.
const LogoutPagePath = "/portal/signout"

// ErrLogoutRedirect: the post-logout address is not one the app registered.
var ErrLogoutRedirect = gatehouse.BadRequestf("InvalidPostLogoutRedirectUri",
	"AADSTS50011: The post_logout_redirect_uri does not match the redirect URIs configured for the application, and is not a loopback address.")

// LogoutTarget is where the browser goes after the person signs out, for
// an app's logout request: uri with state added, when uri is registered
// for the app (client id clientID, or the aud of idTokenHint) or is a
// loopback address; "" when no uri was asked. ErrLogoutRedirect when uri
// may not be used.
func (a *Authority) LogoutTarget(clientID, idTokenHint, uri, state string) (string, error) {
	if uri == "" {
		return "", nil
	}
	if clientID == "" && idTokenHint != "" {
		clientID = hintAudience(idTokenHint)
	}
	ok := loopbackRedirect(uri)
	if !ok && clientID != "" {
		if app, err := a.dir.Application(clientID); err == nil && app.Redirect(uri) != directory.RedirectUnregistered {
			ok = true
		}
	}
	if !ok || len(state) > 2048 {
		return "", ErrLogoutRedirect
	}
	if state == "" {
		return uri, nil
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + url.Values{"state": {state}}.Encode(), nil
}

// hintAudience is the aud of a compact JWT, unverified ("" if none).
func hintAudience(tok string) string {
	if len(tok) > MaxTokenSize {
		return ""
	}
	t, err := parseCompact(tok)
	if err != nil {
		return ""
	}
	var c struct {
		Aud string `json:"aud"`
	}
	if json.Unmarshal(t.payload, &c) != nil {
		return ""
	}
	return c.Aud
}

// handleLogout is the end-session endpoint.
func (a *Authority) handleLogout(w http.ResponseWriter, r *http.Request, _ string, _ bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return a.logoutError(w, "The request could not be read.")
	}
	q := r.Form
	for _, p := range []string{"post_logout_redirect_uri", "client_id", "id_token_hint", "state"} {
		if len(q[p]) > 1 {
			return a.logoutError(w, fmt.Sprintf("The parameter '%s' was given more than once.", p))
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		clientID = hintAudience(q.Get("id_token_hint"))
	}
	if _, err := a.LogoutTarget(clientID, "", q.Get("post_logout_redirect_uri"), q.Get("state")); err != nil {
		var e *gatehouse.Error
		errors.As(err, &e)
		return a.logoutError(w, e.Message)
	}
	next := url.Values{}
	for k, v := range map[string]string{"post_logout_redirect_uri": q.Get("post_logout_redirect_uri"), "client_id": clientID, "state": q.Get("state")} {
		if v != "" {
			next.Set(k, v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	to := LogoutPagePath
	if len(next) > 0 {
		to += "?" + next.Encode()
	}
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

func (a *Authority) logoutError(w http.ResponseWriter, msg string) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusBadRequest)
	return authErrorPage.Execute(w, msg)
}
