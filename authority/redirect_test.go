package authority

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestRegisteredRedirects: applications' registered redirect URIs — a web
// app's code goes to its https address and is redeemed only with its
// secret (PKCE optional); a native app's own scheme works with PKCE; any
// other address gets the error page, on both backends.
func TestRegisteredRedirects(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		me := e.person()
		path := "/" + e.tenant + "/oauth2/v2.0/authorize"
		web := e.newApp(t, "web-app")
		other := e.newApp(t, "other-app")
		const webURI, nativeURI = "https://app.example.test/signin-oidc", "myapp://auth"
		webList, publicList := []string{webURI, "http://localhost:5000/signin-oidc"}, []string{nativeURI}
		if _, err := e.n.d.SetRedirectURIs(ctx, web.app.AppID, &webList, &publicList); err != nil {
			t.Fatal(err)
		}
		otherList := []string{"https://other.example.test/cb"}
		if _, err := e.n.d.SetRedirectURIs(ctx, other.app.AppID, &otherList, nil); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://app.example.test/cb", "https://app.example.test/#f", "https://*.example.test/cb",
			"relative/cb", "https://a;b.example.test/", "", "https:///nohost"} {
			list := []string{bad}
			if _, err := e.n.d.SetRedirectURIs(ctx, web.app.AppID, &list, nil); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("redirect URI %q: %v, want ErrInvalid", bad, err)
			}
		}
		for _, bad := range []string{"javascript:alert(1)", "JavaScript://x/%0aalert(1)", "data:text/html,x", "file:///etc/passwd", "vbscript:x"} {
			list := []string{bad}
			if _, err := e.n.d.SetRedirectURIs(ctx, web.app.AppID, nil, &list); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("public client redirect URI %q: %v, want ErrInvalid", bad, err)
			}
		}
		e.n.sync(t)

		webQuery := func(mod func(url.Values)) url.Values {
			return authQuery(webURI, func(q url.Values) {
				q.Set("client_id", web.app.AppID)
				q.Del("code_challenge")
				q.Del("code_challenge_method")
				if mod != nil {
					mod(q)
				}
			})
		}
		approve := func(q url.Values) string {
			t.Helper()
			resp, err := e.n.a.DecideAuthorization(ctx, nil, requestID(t, e.authorize(t, path, q)), &me, true)
			if err != nil || resp.Params.Get("code") == "" {
				t.Fatalf("approve: %+v %v", resp, err)
			}
			if resp.URI != q.Get("redirect_uri") {
				t.Fatalf("the code goes to %s, not %s", resp.URI, q.Get("redirect_uri"))
			}
			return resp.Params.Get("code")
		}
		redeem := func(code, redirect string, form url.Values) tokenAnswer {
			t.Helper()
			f := url.Values{"grant_type": {"authorization_code"}, "client_id": {web.app.AppID}, "code": {code},
				"redirect_uri": {redirect}, "scope": {scopeARM}}
			for k, v := range form {
				f[k] = v
			}
			return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", f)
		}

		// A web app: no PKCE, the secret at the token endpoint.
		code := approve(webQuery(nil))
		for _, tc := range []struct {
			name     string
			form     url.Values
			err, sts string
		}{
			{"no credential", nil, "invalid_client", "7000218"},
			{"wrong secret", url.Values{"client_secret": {"nope"}}, "invalid_client", "7000215"},
			{"another app's secret", url.Values{"client_id": {other.app.AppID}, "client_secret": {other.secret}}, "invalid_grant", "70000"},
			{"a verifier without a challenge", url.Values{"client_secret": {web.secret}, "code_verifier": {testVerifier}}, "invalid_grant", "501481"},
		} {
			if a := redeem(code, webURI, tc.form); a.str("error") != tc.err || a.aadsts() != tc.sts {
				t.Errorf("%s: %d %v", tc.name, a.status, a.body)
			}
		}
		tok := redeem(code, webURI, url.Values{"client_secret": {web.secret}})
		if tok.status != 200 || tok.str("refresh_token") == "" {
			t.Fatalf("web app redeeming with its secret: %d %v", tok.status, tok.body)
		}
		c, err := e.n.a.Verify(ctx, tok.str("access_token"), ManagementAudiences...)
		if err != nil || c.Principal.ObjectID != e.user.ObjectID || c.AppIDACR != "1" || jwtPayload(t, tok.str("access_token"))["appid"] != web.app.AppID {
			t.Fatalf("web app's token: %+v %v", c, err)
		}
		if a := redeem(code, webURI, url.Values{"client_secret": {web.secret}}); a.aadsts() != "54005" {
			t.Fatalf("redeemed twice: %d %v", a.status, a.body)
		}
		// Its refresh token, too, is redeemed only with the app's
		// credential: one taken from the app's session store is no use
		// alone, and a sent credential is checked. A refusal spends
		// nothing.
		refresh := func(form url.Values) tokenAnswer {
			t.Helper()
			f := url.Values{"grant_type": {"refresh_token"}, "client_id": {web.app.AppID},
				"refresh_token": {tok.str("refresh_token")}, "scope": {scopeARM}}
			for k, v := range form {
				f[k] = v
			}
			return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", f)
		}
		for _, tc := range []struct {
			name     string
			form     url.Values
			err, sts string
		}{
			{"refresh without a credential", nil, "invalid_client", "7000218"},
			{"refresh with a wrong secret", url.Values{"client_secret": {"nope"}}, "invalid_client", "7000215"},
			{"refresh with a garbage assertion", url.Values{"client_assertion": {"garbage.not.valid"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}, "invalid_client", "50027"},
		} {
			if a := refresh(tc.form); a.str("error") != tc.err || a.aadsts() != tc.sts {
				t.Errorf("%s: %d %v", tc.name, a.status, a.body)
			}
		}
		rt := refresh(url.Values{"client_secret": {web.secret}})
		if rt.status != 200 || rt.str("refresh_token") == "" {
			t.Fatalf("refresh with the app's secret: %d %v", rt.status, rt.body)
		}
		if c, err := e.n.a.Verify(ctx, rt.str("access_token"), ManagementAudiences...); err != nil || c.AppIDACR != "1" {
			t.Fatalf("refreshed token: %+v %v", c, err)
		}
		// With PKCE too, if the web app sends it; form_post goes to its https origin.
		q := webQuery(func(q url.Values) {
			q.Set("code_challenge", testChallenge())
			q.Set("code_challenge_method", "S256")
		})
		code = approve(q)
		if a := redeem(code, webURI, url.Values{"client_secret": {web.secret}}); a.aadsts() != "9002313" {
			t.Fatalf("PKCE request redeemed without its verifier: %d %v", a.status, a.body)
		}
		if a := redeem(code, webURI, url.Values{"client_secret": {web.secret}, "code_verifier": {testVerifier}}); a.status != 200 {
			t.Fatalf("web app with PKCE: %d %v", a.status, a.body)
		}
		// A native app's own scheme: PKCE, no secret; form_post falls back to the query.
		nq := authQuery(nativeURI, func(q url.Values) { q.Set("client_id", web.app.AppID); q.Set("response_mode", "form_post") })
		resp, err := e.n.a.DecideAuthorization(ctx, nil, requestID(t, e.authorize(t, path, nq)), &me, true)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.Location(), nativeURI+"?") {
			t.Fatalf("native redirect: %s", resp.Location())
		}
		if a := redeem(resp.Params.Get("code"), nativeURI, url.Values{"client_secret": {web.secret}, "code_verifier": {testVerifier}}); a.aadsts() != "700025" {
			t.Fatalf("a native app's code with a secret: %d %v", a.status, a.body)
		}
		if a := redeem(resp.Params.Get("code"), nativeURI, url.Values{"code_verifier": {testVerifier}}); a.status != 200 {
			t.Fatalf("native app: %d %v", a.status, a.body)
		}
		w := e.authorize(t, path, authQuery(nativeURI, func(q url.Values) { q.Set("client_id", web.app.AppID); q.Del("code_challenge") }))
		if loc, _ := url.Parse(w.Header().Get("Location")); loc == nil || !strings.HasPrefix(loc.String(), nativeURI+"?") || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("a native app without PKCE: %d %q", w.Code, w.Header().Get("Location"))
		}

		// Not registered for this app: the error page, never a redirect.
		for _, tc := range []struct{ client, uri string }{
			{web.app.AppID, "https://evil.example.test/signin-oidc"},
			{web.app.AppID, "https://other.example.test/cb"},
			{web.app.AppID, webURI + "/"},
			{CLIClientID, webURI},
		} {
			w := e.authorize(t, path, authQuery(tc.uri, func(q url.Values) { q.Set("client_id", tc.client) }))
			if w.Code != 400 || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "AADSTS50011") {
				t.Errorf("%s for %s: %d %q", tc.uri, tc.client, w.Code, w.Header().Get("Location"))
			}
		}
	})
}

// TestLogout: the end-session endpoint sends the browser to the portal's
// sign-out page only with an address the app registered (or a loopback
// one), and LogoutTarget adds the state.
func TestLogout(t *testing.T) {
	e := newSessionEnv(t, teststore.SQLite(t))
	web := e.newApp(t, "web-app")
	list := []string{"https://app.example.test/signed-out"}
	if _, err := e.n.d.SetRedirectURIs(t.Context(), web.app.AppID, &list, nil); err != nil {
		t.Fatal(err)
	}
	e.n.sync(t)
	hint := e.signIn(t, scopeARM).str("id_token") // aud: the CLI's client id
	for _, tc := range []struct {
		name      string
		q         url.Values
		to        string // "" = error page
		wantState bool
	}{
		{"nothing asked", url.Values{}, LogoutPagePath, false},
		{"registered", url.Values{"client_id": {web.app.AppID}, "post_logout_redirect_uri": list, "state": {"s1"}}, LogoutPagePath + "?", true},
		{"loopback", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://localhost:7000/bye"}}, LogoutPagePath + "?", false},
		{"not registered", url.Values{"client_id": {web.app.AppID}, "post_logout_redirect_uri": {"https://evil.example.test/"}}, "", false},
		{"another app's", url.Values{"client_id": {CLIClientID}, "post_logout_redirect_uri": list}, "", false},
		{"no app named", url.Values{"post_logout_redirect_uri": list}, "", false},
	} {
		w := e.authorize(t, "/"+e.tenant+"/oauth2/v2.0/logout", tc.q)
		loc := w.Header().Get("Location")
		switch {
		case tc.to == "" && (w.Code != 400 || loc != ""):
			t.Errorf("%s: %d %q, want the error page", tc.name, w.Code, loc)
		case tc.to != "" && (w.Code != 302 || !strings.HasPrefix(loc, tc.to)):
			t.Errorf("%s: %d %q", tc.name, w.Code, loc)
		case tc.wantState && !strings.Contains(loc, "state=s1"):
			t.Errorf("%s: state lost: %q", tc.name, loc)
		}
	}
	if to, err := e.n.a.LogoutTarget(web.app.AppID, "", list[0], "a b"); err != nil || to != list[0]+"?state=a+b" {
		t.Fatalf("LogoutTarget: %q %v", to, err)
	}
	if _, err := e.n.a.LogoutTarget(web.app.AppID, "", "javascript:alert(1)", ""); !errors.Is(err, ErrLogoutRedirect) {
		t.Fatalf("a script URL: %v", err)
	}
}
