package authority

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// oboApp is a registered application with a secret.
type oboApp struct {
	app    *directory.Application
	secret string
}

func (e *sessionEnv) newApp(t *testing.T, name string, uris ...string) oboApp {
	t.Helper()
	ctx := t.Context()
	app, err := e.n.d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.n.d.AddSecret(ctx, app.AppID, directory.SecretSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if len(uris) > 0 {
		if app, err = e.n.d.SetIdentifierURIs(ctx, app.AppID, uris, e.n.a.ReservedResource); err != nil {
			t.Fatal(err)
		}
	}
	return oboApp{app, secret}
}

func (e *sessionEnv) obo(t *testing.T, app oboApp, assertion, scope string) tokenAnswer {
	t.Helper()
	return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {GrantJWTBearer},
		"requested_token_use": {"on_behalf_of"}, "assertion": {assertion}, "scope": {scope},
		"client_id": {app.app.AppID}, "client_secret": {app.secret}, "client_info": {"1"}})
}

// TestOnBehalfOf: applications expose APIs (tokens for their application
// id and identifier URIs), and a web API trades a person's token for
// itself for the same person's token for another resource, on both
// backends.
func TestOnBehalfOf(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		api := e.newApp(t, "orders-api", "api://orders", "https://orders.example.test")
		other := e.newApp(t, "other-api")

		// Identifier URIs: unique in the tenant, well-formed, not the server's own.
		for _, bad := range [][]string{
			{"api://orders"}, {"API://Orders/"}, {"api://" + api.app.AppID}, {"http://plain.example.test"},
			{"api://x?y=1"}, {"api://x#f"}, {"api://*"}, {"orders"}, {"api://x", "api://X/"}, {"https://management.azure.com"},
			{"https://vault.localhost"}, {"api://AzureADTokenExchange"}, {"https://acct.cognitiveservices.localhost/"}, {"api://x/.default"}, {""},
		} {
			if _, err := e.n.d.SetIdentifierURIs(ctx, other.app.AppID, bad, e.n.a.ReservedResource); !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("identifier URIs %q: %v, want ErrInvalid", bad, err)
			}
		}

		// People and apps get tokens for an API by any of its names.
		for _, resource := range []string{"api://orders", "API://ORDERS/", api.app.AppID, "api://" + api.app.AppID, "https://orders.example.test"} {
			tok := e.signIn(t, resource+"/.default openid")
			if tok.status != 200 {
				t.Fatalf("person's token for %s: %d %v", resource, tok.status, tok.body)
			}
			if c, err := e.n.a.Verify(ctx, tok.str("access_token"), resource); err != nil || c.Principal.ObjectID != e.user.ObjectID || c.Scope != "user_impersonation" {
				t.Fatalf("token for %s: %+v %v", resource, c, err)
			}
		}
		if tok := e.signIn(t, "api://orders/user_impersonation"); tok.status != 200 {
			t.Fatalf("named scope user_impersonation: %d %v", tok.status, tok.body)
		}
		if tok := e.signIn(t, "api://orders/Orders.Delete.All"); tok.status != 400 || tok.str("error") != "invalid_scope" {
			t.Fatalf("a scope the API does not offer: %d %v", tok.status, tok.body)
		}
		if tok := e.signIn(t, "api://nobody/.default"); tok.status != 400 || tok.aadsts() != "500011" {
			t.Fatalf("an API nobody exposes: %d %v", tok.status, tok.body)
		}
		appTok := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {other.app.AppID}, "client_secret": {other.secret}, "scope": {"api://orders/.default"}})
		if appTok.status != 200 {
			t.Fatalf("app token for the API: %d %v", appTok.status, appTok.body)
		}

		userTok := e.signIn(t, "api://orders/.default").str("access_token")
		// The API trades the person's token for a vault token of the person.
		vault := e.n.a.VaultResource() + "/.default openid offline_access profile"
		got := e.obo(t, api, userTok, vault)
		if got.status != 200 || got.str("refresh_token") != "" || got.str("client_info") == "" || got.str("id_token") == "" {
			t.Fatalf("on-behalf-of: %d %v", got.status, got.body)
		}
		c, err := e.n.a.Verify(ctx, got.str("access_token"), e.n.a.VaultAudiences()...)
		if err != nil || c.Principal.ObjectID != e.user.ObjectID || c.Principal.Name != "pat@x.test" || c.Scope != "user_impersonation" || c.AppIDACR != "1" {
			t.Fatalf("on-behalf-of token: %+v %v", c, err)
		}
		if p := jwtPayload(t, got.str("access_token")); p["appid"] != api.app.AppID || p["idtyp"] != "user" {
			t.Fatalf("on-behalf-of token's app: %v", p)
		}
		// Chained: the token for another API can be traded on by that API.
		hop := e.obo(t, api, userTok, other.app.AppID+"/.default")
		if hop.status != 200 {
			t.Fatalf("on-behalf-of for another API: %d %v", hop.status, hop.body)
		}
		if a := e.obo(t, other, hop.str("access_token"), "https://management.azure.com/.default"); a.status != 200 {
			t.Fatalf("second hop: %d %v", a.status, a.body)
		}

		bad := func(name string, app oboApp, form url.Values, wantErr, wantCode string) {
			t.Helper()
			f := url.Values{"grant_type": {GrantJWTBearer}, "requested_token_use": {"on_behalf_of"}, "assertion": {userTok},
				"scope": {vault}, "client_id": {app.app.AppID}, "client_secret": {app.secret}}
			for k, v := range form {
				if v == nil {
					f.Del(k)
				} else {
					f[k] = v
				}
			}
			a := e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", f)
			if a.status != 400 && a.status != 401 || a.str("error") != wantErr || a.aadsts() != wantCode {
				t.Errorf("%s: %d %v, want %s %s", name, a.status, a.body, wantErr, wantCode)
			}
		}
		bad("another API presenting it", other, nil, "invalid_grant", "500131")
		bad("no requested_token_use", api, url.Values{"requested_token_use": nil}, "invalid_request", "900144")
		bad("wrong requested_token_use", api, url.Values{"requested_token_use": {"x"}}, "invalid_request", "50034")
		bad("no assertion", api, url.Values{"assertion": nil}, "invalid_request", "900144")
		bad("tampered assertion", api, url.Values{"assertion": {userTok[:len(userTok)-4] + "AAAA"}}, "invalid_grant", "50013")
		bad("not a token", api, url.Values{"assertion": {"x.y.z"}}, "invalid_grant", "50013")
		bad("an application's token", api, url.Values{"assertion": {appTok.str("access_token")}}, "invalid_grant", "50013")
		bad("wrong secret", api, url.Values{"client_secret": {"nope"}}, "invalid_client", "7000215")
		bad("no client credential", api, url.Values{"client_secret": nil}, "invalid_client", "7000218")
		bad("unknown downstream", api, url.Values{"scope": {"api://nobody/.default"}}, "invalid_resource", "500011")

		// Revoking the person's sessions ends what their old tokens can be traded for.
		e.c.Advance(2 * time.Second)
		if _, err := e.n.d.RevokeSignInSessions(ctx, e.user.ObjectID); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		bad("revoked person", api, nil, "invalid_grant", "50173")
		// Expired assertions are refused.
		fresh := e.signIn(t, "api://orders/.default").str("access_token")
		if a := e.obo(t, api, fresh, vault); a.status != 200 {
			t.Fatalf("after signing in again: %d %v", a.status, a.body)
		}
		e.c.Advance(3 * time.Hour)
		bad("expired assertion", api, url.Values{"assertion": {fresh}}, "invalid_grant", "500133")

		// A disabled API gets no tokens.
		enabled := false
		if _, err := e.n.d.UpdateApplication(ctx, api.app.AppID, directory.ApplicationUpdate{Enabled: &enabled}); err != nil {
			t.Fatal(err)
		}
		e.n.sync(t)
		if tok := e.signIn(t, "api://orders/.default"); tok.status != 400 || tok.aadsts() != "7000112" {
			t.Fatalf("token for a disabled API: %d %v", tok.status, tok.body)
		}
	})
}
