package authority

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

const testVerifier = "a-code-verifier-of-forty-three-or-more-characters-0123456789"

func testChallenge() string {
	sum := sha256.Sum256([]byte(testVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize calls the authorize endpoint as a browser does and returns the
// response.
func (e *sessionEnv) authorize(t *testing.T, path string, q url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path+"?"+q.Encode(), nil)
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, req)
	return w
}

func authQuery(redirect string, mod func(url.Values)) url.Values {
	q := url.Values{"client_id": {CLIClientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {scopeARM}, "state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {testChallenge()},
		"code_challenge_method": {"S256"}, "prompt": {"select_account"}}
	if mod != nil {
		mod(q)
	}
	return q
}

// requestID is the request id of an authorize redirect to the portal.
func requestID(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || err != nil || loc.Path != AuthorizePagePath || loc.Query().Get("request") == "" {
		t.Fatalf("authorize: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	return loc.Query().Get("request")
}

func (e *sessionEnv) redeem(t *testing.T, code, redirect, verifier string) tokenAnswer {
	t.Helper()
	return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"authorization_code"},
		"client_id": {CLIClientID}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier},
		"client_info": {"1"}, "scope": {scopeARM}})
}

// TestAuthorizationCode: the authorization code grant with PKCE from the
// authorize request to the token, the decisions, and bad input, on both
// backends.
func TestAuthorizationCode(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		me := e.person()
		path := "/" + e.tenant + "/oauth2/v2.0/authorize"
		const redirect = "http://localhost:8400/callback"

		id := requestID(t, e.authorize(t, path, authQuery(redirect, nil)))
		ar, err := e.n.a.AuthorizationRequest(ctx, id)
		if err != nil || ar.ClientName != "Microsoft Azure CLI" || ar.Resource != "https://management.azure.com" ||
			ar.RedirectURI != redirect || !ar.OfflineAccess || ar.PromptNone {
			t.Fatalf("AuthorizationRequest: %+v %v", ar, err)
		}
		// Stored hashed.
		page, _ := s.List(ctx, storage.ListOptions{Kind: kindAuthRequest})
		if len(page.Objects) != 1 || page.Objects[0].Key != authKey(id) || strings.Contains(string(page.Objects[0].Data), id) {
			t.Fatalf("stored: %+v", page.Objects)
		}
		resp, err := e.n.a.DecideAuthorization(ctx, nil, id, &me, true)
		if err != nil || resp.FormPost || resp.Params.Get("state") != "st-1" || resp.Params.Get("code") == "" ||
			!strings.HasPrefix(resp.Location(), redirect+"?") {
			t.Fatalf("approve: %+v %v", resp, err)
		}
		code := resp.Params.Get("code")
		if _, err := e.n.a.DecideAuthorization(ctx, nil, id, &me, true); !errors.Is(err, ErrAuthRequestUnknown) {
			t.Fatalf("deciding twice: %v", err)
		}
		if _, err := e.n.a.AuthorizationRequest(ctx, id); !errors.Is(err, ErrAuthRequestUnknown) {
			t.Fatalf("a decided request on the page: %v", err)
		}
		// Redeemed only with the request's redirect URI and verifier, and
		// the failures do not spend the code.
		if a := e.redeem(t, code, "http://localhost:8401/callback", testVerifier); a.status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("other redirect: %d %v", a.status, a.body)
		}
		if a := e.redeem(t, code, redirect, testVerifier+"x"); a.status != 400 || a.aadsts() != "501481" {
			t.Fatalf("wrong verifier: %d %v", a.status, a.body)
		}
		tok := e.redeem(t, code, redirect, testVerifier)
		if tok.status != 200 || tok.str("refresh_token") == "" || tok.str("client_info") == "" {
			t.Fatalf("redeem: %d %v", tok.status, tok.body)
		}
		claims, err := e.n.a.Verify(ctx, tok.str("access_token"), ManagementAudiences...)
		if err != nil || claims.Principal.ObjectID != e.user.ObjectID {
			t.Fatalf("access token: %+v %v", claims, err)
		}
		if idt := jwtPayload(t, tok.str("id_token")); idt["nonce"] != "n-1" || idt["aud"] != CLIClientID {
			t.Fatalf("id_token: %v", idt)
		}
		if a := e.redeem(t, code, redirect, testVerifier); a.status != 400 || a.aadsts() != "54005" {
			t.Fatalf("second redemption: %d %v", a.status, a.body)
		}

		// form_post on the ADFS endpoint: a page whose form posts the code.
		id = requestID(t, e.authorize(t, "/adfs/oauth2/authorize", authQuery("http://127.0.0.1:9000/", func(q url.Values) {
			q.Set("response_mode", "form_post")
		})))
		resp, err = e.n.a.DecideAuthorization(ctx, nil, id, &me, true)
		if err != nil || !resp.FormPost {
			t.Fatalf("form_post approve: %+v %v", resp, err)
		}
		w := httptest.NewRecorder()
		if err := e.n.a.WriteAuthResponse(w, nil, resp); err != nil || w.Code != 200 ||
			!strings.Contains(w.Body.String(), `action="http://127.0.0.1:9000/"`) ||
			!strings.Contains(w.Body.String(), `name="code" value="`+resp.Params.Get("code")+`"`) ||
			!strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action http://127.0.0.1:9000") {
			t.Fatalf("form_post page: %d %v %s %s", w.Code, err, w.Header(), w.Body)
		}

		// Declined, and prompt=none without a session.
		id = requestID(t, e.authorize(t, path, authQuery(redirect, nil)))
		if resp, err := e.n.a.DecideAuthorization(ctx, nil, id, &me, false); err != nil || resp.Params.Get("error") != "access_denied" || resp.Params.Get("code") != "" {
			t.Fatalf("decline: %+v %v", resp, err)
		}
		id = requestID(t, e.authorize(t, path, authQuery(redirect, func(q url.Values) { q.Set("prompt", "none") })))
		if ar, err := e.n.a.AuthorizationRequest(ctx, id); err != nil || !ar.PromptNone {
			t.Fatalf("prompt=none: %+v %v", ar, err)
		}
		if resp, err := e.n.a.DecideAuthorization(ctx, nil, id, nil, false); err != nil || resp.Params.Get("error") != "login_required" {
			t.Fatalf("no session: %+v %v", resp, err)
		}

		// A code expires 10 minutes after the approval.
		id = requestID(t, e.authorize(t, path, authQuery(redirect, nil)))
		resp, _ = e.n.a.DecideAuthorization(ctx, nil, id, &me, true)
		e.c.Advance(authCodeLifetime + time.Second)
		if a := e.redeem(t, resp.Params.Get("code"), redirect, testVerifier); a.status != 400 || a.aadsts() != "70008" {
			t.Fatalf("expired code: %d %v", a.status, a.body)
		}
		// Another tenant's person cannot approve.
		id = requestID(t, e.authorize(t, path, authQuery(redirect, nil)))
		other := me
		other.TenantID = gatehouse.NewGUID()
		if _, err := e.n.a.DecideAuthorization(ctx, nil, id, &other, true); gatehouse.ErrorStatus(err) != 403 {
			t.Fatalf("another tenant's person: %v", err)
		}

		// Bad client or redirect URI: an error page, never a redirect.
		for name, q := range map[string]url.Values{
			"https redirect":      authQuery("https://evil.example/cb", nil),
			"remote redirect":     authQuery("http://evil.example/cb", nil),
			"userinfo redirect":   authQuery("http://x@localhost:1/", nil),
			"no redirect":         authQuery("", nil),
			"unknown client":      authQuery(redirect, func(q url.Values) { q.Set("client_id", gatehouse.NewGUID()) }),
			"no client":           authQuery(redirect, func(q url.Values) { q.Del("client_id") }),
			"two redirect values": authQuery(redirect, func(q url.Values) { q.Add("redirect_uri", redirect) }),
		} {
			w := e.authorize(t, path, q)
			if w.Code != 400 || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "Sign-in error") {
				t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("Location"))
			}
		}
		// A POSTed request larger than a form: refused, not read whole.
		big := httptest.NewRequest("POST", path, strings.NewReader("client_id="+strings.Repeat("a", 1<<20)))
		big.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w = httptest.NewRecorder()
		if e.mux.ServeHTTP(w, big); w.Code != 400 || w.Header().Get("Location") != "" {
			t.Errorf("1 MiB form: %d", w.Code)
		}
		// Anything else: back to the app with the error and the state.
		for name, c := range map[string]struct {
			q    url.Values
			code string
		}{
			"no PKCE":        {authQuery(redirect, func(q url.Values) { q.Del("code_challenge") }), "invalid_request"},
			"plain PKCE":     {authQuery(redirect, func(q url.Values) { q.Set("code_challenge_method", "plain") }), "invalid_request"},
			"token response": {authQuery(redirect, func(q url.Values) { q.Set("response_type", "token") }), "unsupported_response_type"},
			"bad mode":       {authQuery(redirect, func(q url.Values) { q.Set("response_mode", "fragment") }), "invalid_request"},
			"unknown scope":  {authQuery(redirect, func(q url.Values) { q.Set("scope", "https://nowhere.example/.default") }), "invalid_resource"},
		} {
			w := e.authorize(t, path, c.q)
			loc, _ := url.Parse(w.Header().Get("Location"))
			if w.Code != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), redirect) ||
				loc.Query().Get("error") != c.code || loc.Query().Get("state") != "st-1" {
				t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("Location"))
			}
		}
		// Token requests missing a part.
		for _, f := range []url.Values{
			{"grant_type": {"authorization_code"}, "client_id": {CLIClientID}, "redirect_uri": {redirect}, "code_verifier": {testVerifier}},
			{"grant_type": {"authorization_code"}, "client_id": {CLIClientID}, "code": {"x"}, "code_verifier": {testVerifier}},
		} {
			if a := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", f); a.status != 400 || a.str("error") != "invalid_request" {
				t.Errorf("%v: %d %v", f, a.status, a.body)
			}
		}
		// Without a verifier: the code is looked at first (a PKCE request's
		// code then needs it, TestRegisteredRedirects).
		if a := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {CLIClientID},
			"code": {"x"}, "redirect_uri": {redirect}}); a.status != 400 || a.aadsts() != "70000" {
			t.Errorf("no verifier, unknown code: %d %v", a.status, a.body)
		}
		if a := e.redeem(t, "no-such-code", redirect, testVerifier); a.status != 400 || a.aadsts() != "70000" {
			t.Errorf("unknown code: %d %v", a.status, a.body)
		}
	})
}

// TestManagedIdentityIsNoAppForPeople: a managed identity's client id is
// not an app people sign in to, by device code, in a browser or with a
// password.
func TestManagedIdentityIsNoAppForPeople(t *testing.T) {
	e := newSessionEnv(t, teststore.SQLite(t))
	mi, err := e.n.d.CreateManagedIdentity(t.Context(), directory.ManagedIdentitySpec{
		ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web"})
	if err != nil {
		t.Fatal(err)
	}
	e.n.sync(t)
	if a := e.deviceCode(t, "/"+e.tenant+"/oauth2/v2.0/devicecode", mi.ClientID, scopeARM); a.status != 400 || a.str("error") != "unauthorized_client" {
		t.Errorf("device code for a managed identity: %d %v", a.status, a.body)
	}
	if a := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "client_id": {mi.ClientID},
		"username": {e.user.UserName}, "password": {sessionPassword}, "scope": {scopeARM}}); a.status != 400 || a.str("error") != "unauthorized_client" {
		t.Errorf("password sign-in to a managed identity: %d %v", a.status, a.body)
	}
	w := e.authorize(t, "/"+e.tenant+"/oauth2/v2.0/authorize", authQuery("http://localhost:1/", func(q url.Values) { q.Set("client_id", mi.ClientID) }))
	if w.Code != 400 || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "managed identity") {
		t.Errorf("authorize for a managed identity: %d %q", w.Code, w.Header().Get("Location"))
	}
}
