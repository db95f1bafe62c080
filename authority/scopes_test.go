package authority

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestDelegatedScopes: an API's own delegated scopes (Graph's
// api.oauth2PermissionScopes) — named scopes go into a person's scp,
// .default grants every enabled one, unknown, disabled and mixed scopes
// are invalid_scope — through the password, refresh, device code and
// on-behalf-of grants, on both backends.
func TestDelegatedScopes(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		api := e.newApp(t, "files-api", "api://files")
		client := e.newApp(t, "files-web")
		const (
			readID  = "0b4c21a7-7f1d-4a5e-9b71-2f0c6a1e3d01"
			writeID = "0b4c21a7-7f1d-4a5e-9b71-2f0c6a1e3d02"
			adminID = "0b4c21a7-7f1d-4a5e-9b71-2f0c6a1e3d03"
		)
		scope := func(id, value string, enabled bool) directory.PermissionScope {
			return directory.PermissionScope{ID: id, Value: value, IsEnabled: enabled, AdminConsentDisplayName: "Lets the app " + value}
		}

		// Without scopes of its own, an API offers user_impersonation.
		if tok := e.signIn(t, "api://files/.default"); tok.status != 200 || e.scp(t, tok, "api://files") != "user_impersonation" {
			t.Fatalf("API without scopes: %d %v", tok.status, tok.body)
		}

		// Bad definitions are refused and change nothing.
		role := directory.AppRole{ID: readID, Value: "Files.Admin", DisplayName: "Admin", AllowedMemberTypes: []string{"User"}, IsEnabled: true}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, []directory.AppRole{role}); err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string][]directory.PermissionScope{
			"not a GUID":         {scope("x", "Files.Read", true)},
			"empty value":        {scope(writeID, "", true)},
			"space":              {scope(writeID, "Files Read", true)},
			"quote":              {scope(writeID, `Files"Read`, true)},
			"leading dot":        {scope(writeID, ".default", true)},
			"openid":             {scope(writeID, "openid", true)},
			"no display name":    {{ID: writeID, Value: "Files.Read", IsEnabled: true}},
			"bad type":           {{ID: writeID, Value: "Files.Read", Type: "Everyone", IsEnabled: true, AdminConsentDisplayName: "x"}},
			"duplicate id":       {scope(writeID, "a", true), scope(writeID, "b", true)},
			"duplicate value":    {scope(writeID, "Files.Read", true), scope(adminID, "files.read", true)},
			"an app role's id":   {scope(readID, "Files.Read", true)},
			"too long":           {scope(writeID, string(make([]byte, 121)), true)},
			"control in display": {{ID: writeID, Value: "Files.Read", IsEnabled: true, AdminConsentDisplayName: "a\nb"}},
		} {
			if _, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, bad); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, []directory.AppRole{{ID: readID, Value: "Files.Admin", DisplayName: "Admin", AllowedMemberTypes: []string{"User"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, nil); err != nil {
			t.Fatal(err)
		}

		app, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, []directory.PermissionScope{
			scope(readID, "Files.Read", true), scope(writeID, "Files.Write", true),
			{ID: adminID, Value: "Files.Purge", Type: "Admin", IsEnabled: true, AdminConsentDisplayName: "Purge files"}})
		if err != nil || len(app.PermissionScopes) != 3 || app.PermissionScopes[0].Type != "User" {
			t.Fatalf("set scopes: %+v %v", app, err)
		}
		// An app role may not take a scope's id.
		if _, err := e.n.d.SetAppRoles(ctx, api.app.AppID, []directory.AppRole{{ID: writeID, Value: "R", DisplayName: "R", AllowedMemberTypes: []string{"User"}, IsEnabled: true}}); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("app role with a scope's id: %v", err)
		}
		e.n.sync(t)

		// Named scopes, in the API's spelling, once each; .default: all enabled.
		for req, want := range map[string]string{
			"api://files/Files.Read":                                    "Files.Read",
			"api://files/files.write api://FILES/Files.Read openid":     "Files.Write Files.Read",
			"api://files/Files.Read api://files/Files.Read":             "Files.Read",
			"api://files/.default":                                      "Files.Read Files.Write Files.Purge",
			"api://files//.default offline_access":                      "Files.Read Files.Write Files.Purge",
			api.app.AppID + "/Files.Purge " + api.app.AppID + "/openid": "",
		} {
			tok := e.signIn(t, req)
			if want == "" { // openid is a scope of the resource here: not one the API offers
				if tok.status != 400 || tok.str("error") != "invalid_scope" {
					t.Errorf("%q: %d %v, want invalid_scope", req, tok.status, tok.body)
				}
				continue
			}
			if tok.status != 200 {
				t.Errorf("%q: %d %v", req, tok.status, tok.body)
				continue
			}
			if got := e.scp(t, tok, "api://files"); got != want {
				t.Errorf("%q: scp %q, want %q", req, got, want)
			}
		}
		for _, req := range []string{
			"api://files/user_impersonation",                                         // the API defines its own scopes now
			"api://files/Files.Delete",                                               // not defined
			"api://files/.default api://files/Files.Read",                            // .default beside a named scope
			"api://files/Files.Read https://management.azure.com/user_impersonation", // two resources
			"api://files/Files.Read User.Read",
		} {
			if tok := e.signIn(t, req); tok.status != 400 || tok.str("error") != "invalid_scope" {
				t.Errorf("%q: %d %v, want invalid_scope", req, tok.status, tok.body)
			}
		}
		// The server's own resources, too, one at a time: Entra's AADSTS28000.
		for _, req := range []string{
			"https://management.azure.com/.default https://graph.microsoft.com/.default",
			"https://cognitiveservices.azure.com/.default offline_access https://management.azure.com/user_impersonation",
		} {
			if tok := e.signIn(t, req); tok.status != 400 || tok.str("error") != "invalid_scope" || tok.aadsts() != "28000" {
				t.Errorf("%q: %d %v, want invalid_scope 28000", req, tok.status, tok.body)
			}
		}
		if tok := e.signIn(t, "https://management.core.windows.net//.default openid profile offline_access"); tok.status != 200 {
			t.Errorf("az's own scope: %d %v", tok.status, tok.body)
		}
		// The portal shows a sign-in's scopes with their consent text.
		w := e.authorize(t, "/"+e.tenant+"/oauth2/v2.0/authorize", authQuery("http://localhost:7777/cb", func(q url.Values) {
			q.Set("scope", "api://files/Files.Write openid offline_access")
		}))
		ar, err := e.n.a.AuthorizationRequest(ctx, requestID(t, w))
		if err != nil || ar.APIName != "files-api" || len(ar.Permissions) != 1 || ar.Permissions[0] != (Permission{Value: "Files.Write", Name: "Lets the app Files.Write"}) {
			t.Fatalf("authorization request's permissions: %+v %v", ar, err)
		}
		if w := e.authorize(t, "/"+e.tenant+"/oauth2/v2.0/authorize", authQuery("http://localhost:7777/cb", func(q url.Values) {
			q.Set("scope", "api://files/Files.Nope")
		})); w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "error=invalid_scope") {
			t.Fatalf("authorize for a missing scope: %d %s", w.Code, w.Header().Get("Location"))
		}

		// Applications' own tokens carry no scp, whatever the API exposes.
		appTok := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {client.app.AppID}, "client_secret": {client.secret}, "scope": {"api://files/.default"}})
		if appTok.status != 200 || jwtPayload(t, appTok.str("access_token"))["scp"] != nil {
			t.Fatalf("app token: %d %v", appTok.status, appTok.body)
		}

		// A refresh token asks for other scopes of the API, or for another resource.
		rt := e.signIn(t, "api://files/Files.Read offline_access").str("refresh_token")
		r1 := e.refresh(t, rt, "api://files/Files.Write offline_access")
		if r1.status != 200 || e.scp(t, r1, "api://files") != "Files.Write" {
			t.Fatalf("refresh for another scope: %d %v", r1.status, r1.body)
		}
		// A bad scope is refused before the refresh token is spent.
		if r := e.refresh(t, r1.str("refresh_token"), "api://files/Nope offline_access"); r.status != 400 || r.str("error") != "invalid_scope" {
			t.Fatalf("refresh for a missing scope: %d %v", r.status, r.body)
		}
		if r := e.refresh(t, r1.str("refresh_token"), "https://management.azure.com/.default offline_access"); r.status != 200 || e.scp(t, r, "https://management.azure.com") != "user_impersonation" {
			t.Fatalf("refresh token still good after a refused scope: %d %v", r.status, r.body)
		}

		// On-behalf-of: a web API trades the person's token for a named scope of another API.
		mid := e.newApp(t, "middle-api", "api://middle")
		userTok := e.signIn(t, "api://middle/.default").str("access_token")
		if got := e.obo(t, mid, userTok, "api://files/Files.Read"); got.status != 200 || e.scp(t, got, "api://files") != "Files.Read" {
			t.Fatalf("on-behalf-of for a named scope: %d %v", got.status, got.body)
		}
		if got := e.obo(t, mid, userTok, "api://files/Files.Nope"); got.status != 400 || got.str("error") != "invalid_scope" {
			t.Fatalf("on-behalf-of for a missing scope: %d %v", got.status, got.body)
		}

		// The device code flow checks the scope when the code is asked for.
		if dc := e.deviceCode(t, "/"+e.tenant+"/oauth2/v2.0/devicecode", CLIClientID, "api://files/Files.Nope"); dc.status != 400 || dc.str("error") != "invalid_scope" {
			t.Fatalf("device code for a missing scope: %d %v", dc.status, dc.body)
		}

		// Disabling a scope withdraws it; an enabled scope cannot be removed in one step.
		if _, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, []directory.PermissionScope{scope(readID, "Files.Read", true)}); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("removing enabled scopes: %v", err)
		}
		if _, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, []directory.PermissionScope{
			scope(readID, "Files.Read", true), scope(writeID, "Files.Write", false), {ID: adminID, Value: "Files.Purge", Type: "Admin", AdminConsentDisplayName: "Purge files"}}); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if tok := e.signIn(t, "api://files/Files.Write"); tok.status != 400 || tok.str("error") != "invalid_scope" {
			t.Fatalf("disabled scope: %d %v", tok.status, tok.body)
		}
		if tok := e.signIn(t, "api://files/.default"); tok.status != 200 || e.scp(t, tok, "api://files") != "Files.Read" {
			t.Fatalf(".default after disabling: %d %v", tok.status, tok.body)
		}
		if _, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, []directory.PermissionScope{scope(readID, "Files.Read", false)}); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		// Every scope disabled: a person's token would grant nothing.
		if tok := e.signIn(t, "api://files/.default"); tok.status != 400 || tok.str("error") != "invalid_scope" {
			t.Fatalf("no enabled scope: %d %v", tok.status, tok.body)
		}
		// Removing the last one brings back user_impersonation.
		if _, err := e.n.d.SetPermissionScopes(ctx, api.app.AppID, nil); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if tok := e.signIn(t, "api://files/user_impersonation"); tok.status != 200 || e.scp(t, tok, "api://files") != "user_impersonation" {
			t.Fatalf("after removing every scope: %d %v", tok.status, tok.body)
		}
	})
}

// scp verifies a token answer's access token for resource and returns its
// scp claim.
func (e *sessionEnv) scp(t *testing.T, a tokenAnswer, resource string) string {
	t.Helper()
	c, err := e.n.a.Verify(t.Context(), a.str("access_token"), resource, resource+"/")
	if err != nil {
		t.Fatalf("token for %s: %v", resource, err)
	}
	return c.Scope
}

// FuzzAPIScopes: any scope string against any resource name gives either
// invalid_scope or scopes the API offers, each once — never a panic.
func FuzzAPIScopes(f *testing.F) {
	app := &directory.Application{PermissionScopes: []directory.PermissionScope{
		{ID: "1", Value: "Files.Read", IsEnabled: true}, {ID: "2", Value: "Files.Write", IsEnabled: true}, {ID: "3", Value: "Off"}}}
	for _, seed := range [][2]string{
		{"api://files", "api://files/Files.Read openid"}, {"api://files/", "api://files//.default"}, {"api://files", "api://FILES/files.write api://files/Files.Read"},
		{"", "/"}, {"a", "a/ a// a/.default"}, {"api://files", "api://files/Off"}, {"api://f\u00e9", "API://F\u00c9/files.read"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, resource, scope string) {
		names, err := apiScopes(app, resource, scope)
		if err != nil {
			if e, ok := gatehouse.AsError(err); !ok || e.Code != "invalid_scope" {
				t.Fatalf("%q %q: %v", resource, scope, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n != "Files.Read" && n != "Files.Write" || seen[n] {
				t.Fatalf("%q %q: %v", resource, scope, names)
			}
			seen[n] = true
		}
	})
}
