package identitytest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/gatehouse/gatehouse/directory"
)

// testWebApp: a confidential web app signs people in — its redirect URI
// registered through Graph (web.redirectUris), MSAL Go's confidential
// client builds the authorize URL, the person signs in on the portal, the
// browser brings the code to the app, and the app redeems it with its
// secret for the person's token. (authority's TestRegisteredRedirects has
// the refusals: a code without the secret, unregistered addresses.)
func (f *fixture) testWebApp(t *testing.T) {
	ctx := t.Context()
	admin := f.s.Token(t, f.s.Credential(t), graphScope)
	const password = "a web app test password"
	person, err := f.s.Directory.CreateUser(ctx, directory.UserSpec{UserName: "webby@suite.test", Password: password})
	must(t, err)
	f.addSecret(admin, password)

	// The web app: a loopback listener stands in for its https address.
	type result struct {
		token, oid string
		account    confidential.Account
		err        error
	}
	results := make(chan result, 4)
	var client confidential.Client
	var clientOnce sync.WaitGroup
	clientOnce.Add(1)
	var redirectURI string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/signin-oidc" {
			http.NotFound(w, r)
			return
		}
		clientOnce.Wait()
		code := r.FormValue("code")
		if code == "" {
			results <- result{err: fmt.Errorf("no code: %s %s", r.FormValue("error"), r.FormValue("error_description"))}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := client.AcquireTokenByAuthCode(ctx, code, redirectURI, []string{f.s.Authority.VaultResource() + "/.default"})
		results <- result{token: res.AccessToken, oid: res.IDToken.Oid, account: res.Account, err: err}
		w.Write([]byte("signed in"))
	}))
	t.Cleanup(app.Close)
	redirectURI = app.URL + "/signin-oidc"

	created := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "suite-web-app",
		"web": map[string]any{"redirectUris": []string{redirectURI}}, "gatehouseCreateServicePrincipal": true}, 201)
	id, appID := created["id"].(string), created["appId"].(string)
	if got := created["web"].(map[string]any)["redirectUris"].([]any); len(got) != 1 || got[0] != redirectURI {
		t.Fatalf("web.redirectUris as created: %v", created["web"])
	}
	pw := f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "web"}}, 200)
	secret := pw["secretText"].(string)
	f.addSecret(secret)
	for name, body := range map[string]map[string]any{
		"http-remote":    {"web": map[string]any{"redirectUris": []string{"http://webapp.example.test/cb"}}},
		"implicit-grant": {"web": map[string]any{"implicitGrantSettings": map[string]any{"enableIdTokenIssuance": true}}},
		"spa":            {"spa": map[string]any{"redirectUris": []string{"https://spa.example.test/"}}},
		"fragment":       {"publicClient": map[string]any{"redirectUris": []string{"myapp://auth#x"}}},
		"multi-tenant":   {"signInAudience": "AzureADMultipleOrgs"},
	} {
		if m := f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, body, 400); errCode(m) == "" {
			t.Errorf("%s: %v", name, m)
		}
	}
	f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"publicClient": map[string]any{"redirectUris": []string{"myapp://auth"}}}, 204)
	got := f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)
	if pc := got["publicClient"].(map[string]any)["redirectUris"].([]any); len(pc) != 1 || len(got["web"].(map[string]any)["redirectUris"].([]any)) != 1 {
		t.Fatalf("after PATCH: %v %v", got["web"], got["publicClient"])
	}

	cred, err := confidential.NewCredFromSecret(secret)
	must(t, err)
	client, err = confidential.New(f.s.URL+"/"+f.tenant, appID, cred, confidential.WithHTTPClient(f.s.Client),
		confidential.WithInstanceDiscovery(false))
	must(t, err)
	clientOnce.Done()
	authURL, err := client.AuthCodeURL(ctx, appID, redirectURI, []string{f.s.Authority.VaultResource() + "/.default"})
	must(t, err)
	if strings.Contains(authURL, "code_challenge") {
		t.Fatalf("MSAL's confidential client sent PKCE unasked: %s", authURL)
	}
	f.s.BrowserSignIn(t, authURL, person.UserName, password, true)
	res := <-results
	if res.err != nil {
		t.Fatalf("the web app redeeming its code: %v", res.err)
	}
	f.addSecret(res.token)
	c := f.claims(t, res.token, f.s.Authority.VaultAudiences()...)
	if c.Principal.ObjectID != person.ObjectID || c.AppIDACR != "1" || res.oid != person.ObjectID {
		t.Fatalf("the web app's token: %+v (id token oid %s)", c, res.oid)
	}

	// The app keeps the person signed in: a token for another resource
	// from its cache's refresh token, without the browser.
	silent, err := client.AcquireTokenSilent(ctx, []string{"https://management.azure.com/.default"}, confidential.WithSilentAccount(res.account))
	if err != nil {
		t.Fatalf("silent token for the person: %v", err)
	}
	f.addSecret(silent.AccessToken)
	if c := f.claims(t, silent.AccessToken); c.Principal.ObjectID != person.ObjectID {
		t.Fatalf("silent token: %+v", c)
	}
	f.s.AssertNotLogged(t, secret, password)
}
