package identitytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

const graphScope = "https://graph.microsoft.com/.default"

// graph calls the Graph subset and decodes the answer.
func (f *fixture) graph(t *testing.T, token, method, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	var rd *strings.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	var status int
	var data []byte
	if rd != nil {
		status, data = f.httpDo(t, method, path, token, rd)
	} else {
		status, data = f.httpDo(t, method, path, token, nil)
	}
	if status != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, wantStatus)
	}
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s %s: non-JSON answer %q", method, path, data)
		}
	}
	return m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// testGraph drives the Graph subset: applications, service principals,
// credentials, federated credentials, people, directory roles; and its
// authentication, authorization and bad-input behaviour.
func (f *fixture) testGraph(t *testing.T) {
	admin := f.s.Token(t, f.s.Credential(t), graphScope)
	f.addSecret(admin)

	t.Run("application-lifecycle", func(t *testing.T) {
		app := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "graph-app"}, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)
		list := f.graph(t, admin, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+appID+"'"), nil, 200)
		if n := len(list["value"].([]any)); n != 1 {
			t.Fatalf("filter by appId: %d results", n)
		}
		// No service principal yet: no token.
		pw := f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "ci"}}, 200)
		secret := pw["secretText"].(string)
		f.addSecret(secret)
		if len(secret) < 43 || pw["hint"] != secret[:3] {
			t.Fatalf("secret %d chars, hint %v", len(secret), pw["hint"])
		}
		if tr := f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {"https://management.azure.com/.default"}}); tr.status != 401 {
			t.Fatalf("token without a service principal: %d", tr.status)
		}
		sp := f.graph(t, admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}, 201)
		spID := sp["id"].(string)
		f.graph(t, admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}, 409)
		cred := f.s.SecretCredential(t, appID, secret)
		tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		must(t, err)
		f.addSecret(tok.Token)
		if f.claims(t, tok.Token).Principal.ObjectID != spID {
			t.Fatal("the token's oid is not the service principal's id")
		}
		// Secrets never come back.
		got := f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)
		if strings.Contains(mustJSON(got), secret) || got["passwordCredentials"].([]any)[0].(map[string]any)["secretText"] != nil {
			t.Fatal("GET returns the secret")
		}
		// Certificates through keyCredentials.
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"keyCredentials": []any{map[string]any{
			"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(f.otherCert.Raw)}}}, 204)
		got = f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)
		kc := got["keyCredentials"].([]any)
		if len(kc) != 1 || kc[0].(map[string]any)["customKeyIdentifier"] == nil {
			t.Fatalf("keyCredentials: %v", kc)
		}
		// Federated credentials.
		fic := f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/federatedIdentityCredentials", map[string]any{
			"name": "gh-actions", "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main",
			"audiences": []string{"api://AzureADTokenExchange"}}, 201)
		f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/federatedIdentityCredentials", map[string]any{
			"name": "gh-actions", "issuer": "https://x.example", "subject": "s"}, 409)
		f.graph(t, admin, "GET", "/v1.0/applications/"+id+"/federatedIdentityCredentials/"+fic["id"].(string), nil, 200)
		if l := f.graph(t, admin, "GET", "/v1.0/applications/"+id+"/federatedIdentityCredentials", nil, 200); len(l["value"].([]any)) != 1 {
			t.Fatalf("federated list: %v", l)
		}
		f.graph(t, admin, "DELETE", "/v1.0/applications/"+id+"/federatedIdentityCredentials/gh-actions", nil, 204)
		// Disable the service principal: no more tokens.
		f.graph(t, admin, "PATCH", "/v1.0/servicePrincipals/"+spID, map[string]any{"accountEnabled": false}, 204)
		if tr := f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {"https://management.azure.com/.default"}}); tr.Error != "unauthorized_client" {
			t.Fatalf("disabled: %s", tr.raw)
		}
		f.graph(t, admin, "PATCH", "/v1.0/servicePrincipals/"+spID, map[string]any{"accountEnabled": true}, 204)
		f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/removePassword", map[string]any{"keyId": pw["keyId"]}, 204)
		if tr := f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {"https://management.azure.com/.default"}}); tr.status != 401 {
			t.Fatalf("removed secret: %d", tr.status)
		}
		f.graph(t, admin, "DELETE", "/v1.0/applications/"+id, nil, 204)
		f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 404)
		f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+spID, nil, 404)
	})

	// An application exposes an API: identifierUris through Graph (create
	// and PATCH, as az ad app create/update send them), unique in the
	// tenant, never the server's own resources; tokens for the API by each
	// of its names.
	t.Run("application-exposes-api", func(t *testing.T) {
		uri := "api://graph-orders-" + gatehouse.NewGUID()[:8]
		app := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "graph-api", "identifierUris": []string{uri},
			"gatehouseCreateServicePrincipal": true}, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		if got := app["identifierUris"].([]any); len(got) != 1 || got[0] != uri {
			t.Fatalf("identifierUris as created: %v", app["identifierUris"])
		}
		sp := f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+appID, nil, 200)
		if names := sp["servicePrincipalNames"].([]any); len(names) != 2 || names[1] != uri {
			t.Fatalf("servicePrincipalNames: %v", names)
		}
		// Another application may not take the name, nor anyone the server's resources.
		other := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "graph-api-2"}, 201)
		for _, bad := range [][]string{{strings.ToUpper(uri)}, {"https://management.azure.com/"}, {f.s.Authority.VaultResource()},
			{"http://insecure.example.test"}, {"api://has?query"}} {
			if m := f.graph(t, admin, "PATCH", "/v1.0/applications/"+other["id"].(string), map[string]any{"identifierUris": bad}, 400); errCode(m) != "Request_BadRequest" {
				t.Fatalf("identifierUris %v: %v", bad, m)
			}
		}
		f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "graph-api-3", "identifierUris": []string{uri}}, 400)
		// A property Gatehouse does not take is named in the refusal.
		m := f.graph(t, admin, "PATCH", "/v1.0/applications/"+other["id"].(string), map[string]any{"notes": "n"}, 400)
		if e, _ := m["error"].(map[string]any); errCode(m) != "Request_BadRequest" || !strings.Contains(fmt.Sprint(e["message"]), "'notes'") {
			t.Fatalf("an unsupported property: %v", m)
		}
		// Tokens for the API, for an application by its name.
		for _, scope := range []string{uri + "/.default", "api://" + appID + "/.default", appID + "/.default"} {
			tok, err := f.s.Credential(t).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
			must(t, err)
			f.addSecret(tok.Token)
			if c, err := f.s.Authority.Verify(t.Context(), tok.Token, strings.TrimSuffix(scope, "/.default")); err != nil || c.Principal.ObjectID == "" {
				t.Fatalf("token for %s: %v", scope, err)
			}
		}
		// App roles: defined with a PATCH, granted to the suite's app, in its tokens' roles claim.
		roleID := gatehouse.NewGUID()
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"appRoles": []any{map[string]any{
			"id": roleID, "value": "Orders.Read", "displayName": "Read orders", "description": "Read every order",
			"allowedMemberTypes": []string{"Application"}, "isEnabled": true}}}, 204)
		spID := sp["id"].(string)
		granted := f.graph(t, admin, "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo", map[string]any{
			"principalId": f.app.ObjectID, "resourceId": spID, "appRoleId": roleID}, 201)
		if granted["principalType"] != "ServicePrincipal" || granted["resourceDisplayName"] != "graph-api" || granted["principalDisplayName"] != "suite-app" {
			t.Fatalf("assignment: %v", granted)
		}
		f.graph(t, admin, "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo", map[string]any{
			"principalId": f.app.ObjectID, "resourceId": spID, "appRoleId": roleID}, 409)
		f.graph(t, admin, "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo", map[string]any{
			"principalId": f.app.ObjectID, "resourceId": spID, "appRoleId": gatehouse.NewGUID()}, 400)
		held := f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+f.app.AppID+"/appRoleAssignments", nil, 200)["value"].([]any)
		if len(held) != 1 || held[0].(map[string]any)["appRoleId"] != roleID {
			t.Fatalf("the suite app's assignments: %v", held)
		}
		suiteTok, err := f.s.SecretCredential(t, f.app.AppID, f.secret).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{uri + "/.default"}})
		must(t, err)
		f.addSecret(suiteTok.Token)
		if c, err := f.s.Authority.Verify(t.Context(), suiteTok.Token, uri); err != nil || len(c.Roles) != 1 || c.Roles[0] != "Orders.Read" {
			t.Fatalf("roles in the suite app's token: %+v %v", c, err)
		}
		f.graph(t, admin, "DELETE", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo/"+granted["id"].(string), nil, 204)
		if l := f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo", nil, 200)["value"].([]any); len(l) != 0 {
			t.Fatalf("after delete: %v", l)
		}
		// An enabled role is disabled before it is removed, as Graph asks.
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"appRoles": []any{}}, 400)

		// Delegated scopes (Expose an API → Add a scope): a person's token names them in scp.
		view, edit := gatehouse.NewGUID(), gatehouse.NewGUID()
		scopes := []any{
			map[string]any{"id": view, "value": "Orders.View", "type": "User", "isEnabled": true,
				"adminConsentDisplayName": "View orders", "adminConsentDescription": "Lets the app read your orders",
				"userConsentDisplayName": "View your orders", "userConsentDescription": "Lets the app read your orders"},
			map[string]any{"id": edit, "value": "Orders.Edit", "type": "Admin", "adminConsentDisplayName": "Edit orders"}}
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"api": map[string]any{"oauth2PermissionScopes": scopes,
			"requestedAccessTokenVersion": 2, "preAuthorizedApplications": []any{}}}, 204)
		api := f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)["api"].(map[string]any)
		if api["requestedAccessTokenVersion"] != float64(2) {
			t.Errorf("requestedAccessTokenVersion reads back %v", api["requestedAccessTokenVersion"])
		}
		got := api["oauth2PermissionScopes"].([]any)
		if len(got) != 2 || got[1].(map[string]any)["isEnabled"] != true || got[1].(map[string]any)["type"] != "Admin" || got[0].(map[string]any)["userConsentDisplayName"] != "View your orders" {
			t.Fatalf("api.oauth2PermissionScopes: %v", got)
		}
		if sp := f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+appID, nil, 200); len(sp["oauth2PermissionScopes"].([]any)) != 2 || len(sp["appRoles"].([]any)) != 1 {
			t.Fatalf("the service principal's scopes and roles: %v %v", sp["oauth2PermissionScopes"], sp["appRoles"])
		}
		for _, bad := range []map[string]any{
			{"oauth2PermissionScopes": []any{}}, // enabled scopes are disabled before removal
			{"oauth2PermissionScopes": []any{map[string]any{"id": view, "value": "Orders View", "adminConsentDisplayName": "x"}}},
			{"oauth2PermissionScopes": []any{map[string]any{"id": roleID, "value": "Orders.Role", "adminConsentDisplayName": "x"}}},
			{"preAuthorizedApplications": []any{map[string]any{"appId": f.app.AppID, "delegatedPermissionIds": []string{view}}}},
			{"oauth2PermissionScopes": scopes, "unknownProperty": true},
			{"requestedAccessTokenVersion": 3},
		} {
			if m := f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"api": bad}, 400); errCode(m) != "Request_BadRequest" {
				t.Fatalf("api %v: %v", bad, m)
			}
		}
		const password = "a scopes test password"
		person, err := f.s.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "scoped@suite.test", Password: password})
		must(t, err)
		f.addSecret(password)
		prompts := 0
		cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{ClientOptions: f.s.ClientOptions(),
			TenantID: f.tenant, DisableInstanceDiscovery: true, UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
				prompts++
				// The person sees what the app asks to do as them.
				f.approveDevice(t, m.VerificationURL, m.UserCode, person.UserName, password, true,
					`<strong>View your orders</strong> <code>Orders.View</code>`, "Lets the app read your orders", "act as you in <strong>graph-api</strong>")
				return nil
			}})
		must(t, err)
		for _, sc := range []struct{ scope, scp string }{
			{uri + "/Orders.View", "Orders.View"}, // signs in
			{uri + "/orders.edit", "Orders.Edit"}, // silently, with the refresh token
			{uri + "/.default", "Orders.View Orders.Edit"},
		} {
			tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{sc.scope}})
			if err != nil {
				t.Fatalf("%s: %v", sc.scope, err)
			}
			f.addSecret(tok.Token)
			if c := f.claims(t, tok.Token, uri); c.Scope != sc.scp || c.Principal.ObjectID != person.ObjectID {
				t.Fatalf("%s: scp %q of %s, want %q of the person", sc.scope, c.Scope, c.Principal.ObjectID, sc.scp)
			}
		}
		if prompts != 1 {
			t.Fatalf("the person was asked %d times, want once", prompts)
		}
		if _, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{uri + "/Orders.Delete"}}); err == nil || !strings.Contains(err.Error(), "AADSTS70011") {
			t.Fatalf("a scope the API does not expose: %v", err)
		}

		// Group claims: the person's groups in the API's tokens; the overage
		// endpoint (getMemberObjects) answers a person about themselves.
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"groupMembershipClaims": "Everything"}, 400)
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"groupMembershipClaims": "SecurityGroup"}, 204)
		if v := f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)["groupMembershipClaims"]; v != "SecurityGroup" {
			t.Fatalf("groupMembershipClaims: %v", v)
		}
		team := f.graph(t, admin, "POST", "/v1.0/groups", map[string]any{"displayName": "Order clerks", "mailNickname": "order-clerks",
			"securityEnabled": true, "mailEnabled": false}, 201)
		f.graph(t, admin, "POST", "/v1.0/groups/"+team["id"].(string)+"/members/$ref", map[string]any{
			"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + person.ObjectID}, 204)
		// An app role granted to the group reaches its members.
		clerkRole := gatehouse.NewGUID()
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"appRoles": []any{
			map[string]any{"id": roleID, "value": "Orders.Read", "displayName": "Read orders", "allowedMemberTypes": []string{"Application"}, "isEnabled": true},
			map[string]any{"id": clerkRole, "value": "Orders.Clerk", "displayName": "Clerk", "allowedMemberTypes": []string{"User"}, "isEnabled": true}}}, 204)
		grant := f.graph(t, admin, "POST", "/v1.0/groups/"+team["id"].(string)+"/appRoleAssignments", map[string]any{
			"principalId": team["id"], "resourceId": spID, "appRoleId": clerkRole}, 201)
		if grant["principalType"] != "Group" || grant["principalDisplayName"] != "Order clerks" {
			t.Fatalf("a group's assignment: %v", grant)
		}
		f.graph(t, admin, "POST", "/v1.0/groups/"+team["id"].(string)+"/appRoleAssignments", map[string]any{
			"principalId": team["id"], "resourceId": spID, "appRoleId": roleID}, 400) // Application-only
		if l := f.graph(t, admin, "GET", "/v1.0/groups/"+team["id"].(string)+"/appRoleAssignments", nil, 200)["value"].([]any); len(l) != 1 {
			t.Fatalf("the group's assignments: %v", l)
		}
		// EnableCAE: a cache of its own in MSAL, so the token is asked for again.
		tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{uri + "/Orders.View"}, EnableCAE: true})
		must(t, err)
		f.addSecret(tok.Token)
		if c := f.claims(t, tok.Token, uri); len(c.Groups) != 1 || c.Groups[0] != team["id"] || len(c.Roles) != 1 || c.Roles[0] != "Orders.Clerk" {
			t.Fatalf("groups and roles claims: %+v %+v", c.Groups, c.Roles)
		}
		personGraph, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
		must(t, err)
		f.addSecret(personGraph.Token)
		for _, path := range []string{"/v1.0/me/getMemberObjects", "/v1.0/users/" + person.ObjectID + "/getMemberObjects"} {
			if v := f.graph(t, personGraph.Token, "POST", path, map[string]any{"securityEnabledOnly": true}, 200)["value"].([]any); len(v) != 1 || v[0] != team["id"] {
				t.Fatalf("%s: %v", path, v)
			}
		}
		f.graph(t, personGraph.Token, "POST", "/v1.0/servicePrincipals/"+f.app.ObjectID+"/getMemberObjects", map[string]any{"securityEnabledOnly": true}, 403)
		f.graph(t, admin, "POST", "/v1.0/users/"+person.ObjectID+"/getMemberObjects", map[string]any{"securityEnabledOnly": false}, 200)
		f.graph(t, admin, "DELETE", "/v1.0/groups/"+team["id"].(string), nil, 204)

		// Replaced: the old name is free and gets no token.
		uri2 := uri + "-v2"
		f.graph(t, admin, "PATCH", "/v1.0/applications/"+id, map[string]any{"identifierUris": []string{uri2}}, 204)
		if got := f.graph(t, admin, "GET", "/v1.0/applications/"+id, nil, 200)["identifierUris"].([]any); len(got) != 1 || got[0] != uri2 {
			t.Fatalf("identifierUris after PATCH: %v", got)
		}
		if _, err := f.s.Credential(t).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{uri + "/.default"}}); err == nil || !strings.Contains(err.Error(), "AADSTS500011") {
			t.Fatalf("token for a released name: %v", err)
		}
		f.graph(t, admin, "DELETE", "/v1.0/applications/"+id, nil, 204)
		f.graph(t, admin, "DELETE", "/v1.0/applications/"+other["id"].(string), nil, 204)
	})

	t.Run("service-principals-include-managed-identities", func(t *testing.T) {
		// A resource's system-assigned identity, beside the user-assigned one.
		system, err := f.s.Directory.CreateManagedIdentity(t.Context(), directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/suite/providers/Microsoft.CognitiveServices/accounts/suite-acct"})
		must(t, err)
		l := f.graph(t, admin, "GET", "/v1.0/servicePrincipals?$filter="+url.QueryEscape("servicePrincipalType eq 'ManagedIdentity'"), nil, 200)
		// alternativeNames tell the kinds apart as Entra's do.
		want := map[string]string{f.mi.PrincipalID: "isExplicit=True", system.PrincipalID: "isExplicit=False"}
		for _, v := range l["value"].([]any) {
			sp := v.(map[string]any)
			if w, ok := want[sp["id"].(string)]; ok {
				if names := sp["alternativeNames"].([]any); len(names) != 2 || names[0] != w {
					t.Errorf("%s: alternativeNames %v, want %s first", sp["id"], names, w)
				}
				delete(want, sp["id"].(string))
			}
		}
		if len(want) > 0 {
			t.Fatalf("managed identities not listed: %v in %v", want, l)
		}
		f.graph(t, admin, "DELETE", "/v1.0/servicePrincipals/"+f.mi.PrincipalID, nil, 400)
	})

	// Deleting a service principal takes its directory roles, group
	// memberships and Azure role assignments; created again (same object
	// id here), it signs in with the application's secret and holds none
	// of them. Its old token's directory powers end with the deletion.
	t.Run("service-principal-deletion", func(t *testing.T) {
		app := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "sp-deletion"}, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		pw := f.graph(t, admin, "POST", "/v1.0/applications/"+id+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "ci"}}, 200)
		secret := pw["secretText"].(string)
		f.addSecret(secret)
		spID := f.graph(t, admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}, 201)["id"].(string)
		f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleUserAdministrator, "principalId": spID, "directoryScopeId": "/"}, 201)
		grp := f.graph(t, admin, "POST", "/v1.0/groups", map[string]any{"displayName": "sp-deletion", "mailNickname": "spdel",
			"securityEnabled": true, "mailEnabled": false}, 201)
		f.graph(t, admin, "POST", "/v1.0/groups/"+grp["id"].(string)+"/members/$ref",
			map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + spID}, 204)
		scope, err := gatehouse.ParseResourceID("/subscriptions/" + gatehouse.NewGUID())
		must(t, err)
		_, _, err = f.s.Authz.CreateAssignment(t.Context(), scope, gatehouse.NewGUID(), authz.AssignmentSpec{
			RoleDefinitionID: authz.DefinitionID(scope, authz.RoleReader), PrincipalID: spID, PrincipalType: "ServicePrincipal"}, f.s.Bootstrap.ClientID)
		must(t, err)
		spToken := func() string {
			tr := f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {graphScope}})
			if tr.status != 200 {
				t.Fatalf("client credentials: %s", tr.raw)
			}
			f.addSecret(tr.AccessToken)
			return tr.AccessToken
		}
		person := func(n int) map[string]any {
			return map[string]any{"userPrincipalName": fmt.Sprintf("sp-made-%d@suite.test", n), "displayName": "made",
				"accountEnabled": true, "passwordProfile": map[string]any{"password": "made by the sp 1"}}
		}
		old := spToken()
		f.graph(t, old, "POST", "/v1.0/users", person(1), 201) // a User Administrator

		f.graph(t, admin, "DELETE", "/v1.0/servicePrincipals/"+spID, nil, 204)
		f.graph(t, old, "POST", "/v1.0/users", person(2), 403)
		f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleUserAdministrator, "principalId": spID, "directoryScopeId": "/"}, 400)
		if as := f.s.Authz.Assignments(authz.AssignmentFilter{PrincipalID: spID}); len(as) != 0 {
			t.Fatalf("Azure role assignments of the deleted service principal: %v", as)
		}

		again := f.graph(t, admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}, 201)
		tok := spToken() // the application's secret, as in Entra
		f.graph(t, tok, "POST", "/v1.0/users", person(3), 403)
		if l := f.graph(t, admin, "GET", "/v1.0/groups/"+grp["id"].(string)+"/members", nil, 200); len(l["value"].([]any)) != 0 {
			t.Fatalf("the service principal made again is still a member: %v", l)
		}
		if as := f.s.Authz.Assignments(authz.AssignmentFilter{PrincipalID: again["id"].(string)}); len(as) != 0 {
			t.Fatalf("made again, it has Azure role assignments: %v", as)
		}
		// Deleting the application deletes its service principal, and so
		// its Azure role assignments (gatehouse ad sp delete does this).
		_, _, err = f.s.Authz.CreateAssignment(t.Context(), scope, gatehouse.NewGUID(), authz.AssignmentSpec{
			RoleDefinitionID: authz.DefinitionID(scope, authz.RoleReader), PrincipalID: spID, PrincipalType: "ServicePrincipal"}, f.s.Bootstrap.ClientID)
		must(t, err)
		f.graph(t, admin, "DELETE", "/v1.0/applications/"+id, nil, 204)
		if as := f.s.Authz.Assignments(authz.AssignmentFilter{PrincipalID: spID}); len(as) != 0 {
			t.Fatalf("Azure role assignments of a deleted application's service principal: %v", as)
		}
	})

	// Graph's error shape: an innerError with the date and the request
	// ids, which also come as headers (client-request-id echoed).
	t.Run("error-shape", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", f.s.URL+"/v1.0/applications/"+gatehouse.NewGUID(), nil)
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+admin)
		cid := gatehouse.NewGUID()
		req.Header.Set("client-request-id", cid)
		resp, err := f.s.Client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var body struct {
			Error struct {
				Code       string
				InnerError map[string]string `json:"innerError"`
			}
		}
		must(t, json.NewDecoder(resp.Body).Decode(&body))
		in := body.Error.InnerError
		if resp.StatusCode != 404 || body.Error.Code != "Request_ResourceNotFound" || in["request-id"] == "" || in["request-id"] != resp.Header.Get("request-id") ||
			in["client-request-id"] != cid || resp.Header.Get("client-request-id") != cid || len(in["date"]) != len("2006-01-02T15:04:05") {
			t.Fatalf("%d %+v %v", resp.StatusCode, body, resp.Header)
		}
	})

	// $search (with Graph's ConsistencyLevel: eventual) and $count, as the
	// Graph SDKs send them.
	t.Run("search-and-count", func(t *testing.T) {
		for _, name := range []string{"Contoso Search App", "contoso-searchable", "Other"} {
			id := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": name}, 201)["id"].(string)
			defer f.graph(t, admin, "DELETE", "/v1.0/applications/"+id, nil, 204)
		}
		get := func(query string, eventual bool) (int, map[string]any) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", f.s.URL+"/v1.0/applications?"+query, nil)
			must(t, err)
			req.Header.Set("Authorization", "Bearer "+admin)
			if eventual {
				req.Header.Set("ConsistencyLevel", "eventual")
			}
			resp, err := f.s.Client.Do(req)
			must(t, err)
			defer resp.Body.Close()
			var m map[string]any
			must(t, json.NewDecoder(resp.Body).Decode(&m))
			return resp.StatusCode, m
		}
		q := url.Values{"$search": {`"displayName:search"`}, "$count": {"true"}}.Encode()
		status, m := get(q, true)
		var names []string
		for _, v := range m["value"].([]any) {
			names = append(names, v.(map[string]any)["displayName"].(string))
		}
		slices.Sort(names)
		if status != 200 || !slices.Equal(names, []string{"Contoso Search App", "contoso-searchable"}) || m["@odata.count"] != float64(2) {
			t.Fatalf("$search: %d %v (count %v)", status, names, m["@odata.count"])
		}
		if status, m := get(q, false); status != 400 || errCode(m) != "Request_UnsupportedQuery" {
			t.Fatalf("$search without ConsistencyLevel: %d %v", status, m)
		}
	})

	// Graph's alternate key (servicePrincipals(appId='…'), as
	// Get-MgServicePrincipalByAppId sends it), $top with nextLink paging,
	// and $select, through the server's router.
	t.Run("alternate-key-top-select", func(t *testing.T) {
		app := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "graph-keyed", "gatehouseCreateServicePrincipal": true}, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		defer f.graph(t, admin, "DELETE", "/v1.0/applications/"+id, nil, 204)
		spKey := "/v1.0/servicePrincipals(appId=%27" + appID + "%27)"
		sp := f.graph(t, admin, "GET", spKey+"?$select=id,appId", nil, 200)
		if len(sp) != 3 || sp["appId"] != appID || sp["@odata.context"] != "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals(id,appId)/$entity" {
			t.Fatalf("service principal by appId: %v", sp)
		}
		f.graph(t, admin, "PATCH", spKey, map[string]any{"displayName": "graph-keyed-sp"}, 204)
		if got := f.graph(t, admin, "GET", "/v1.0/servicePrincipals/"+sp["id"].(string), nil, 200); got["displayName"] != "graph-keyed-sp" {
			t.Fatalf("PATCH by appId: %v", got)
		}
		if got := f.graph(t, admin, "GET", "/v1.0/applications(appId='"+appID+"')/owners", nil, 200); len(got["value"].([]any)) != 1 {
			t.Fatalf("owners by appId: %v", got)
		}
		f.graph(t, admin, "PUT", spKey, `{}`, 405)
		f.graph(t, "", "GET", spKey, nil, 401)
		f.graph(t, admin, "GET", "/v1.0/servicePrincipals(appId='"+gatehouse.NewGUID()+"')", nil, 404)

		// Every application, a page of two at a time, by following nextLink.
		whole := f.graph(t, admin, "GET", "/v1.0/applications?$select=id", nil, 200)["value"].([]any)
		var seen []string
		for path := "/v1.0/applications?$top=2&$select=id,displayName&$count=true"; path != ""; {
			m := f.graph(t, admin, "GET", path, nil, 200)
			page := m["value"].([]any)
			if len(page) == 0 || len(page) > 2 || m["@odata.count"] != float64(len(whole)) {
				t.Fatalf("%s: %d items, count %v", path, len(page), m["@odata.count"])
			}
			for _, v := range page {
				o := v.(map[string]any)
				if len(o) != 2 {
					t.Fatalf("selected %v", o)
				}
				seen = append(seen, o["id"].(string))
			}
			next, _ := m["@odata.nextLink"].(string)
			if next != "" {
				rest, ok := strings.CutPrefix(next, f.s.URL)
				if !ok {
					t.Fatalf("nextLink %q is not at %s", next, f.s.URL)
				}
				next = rest
			}
			path = next
		}
		if len(seen) != len(whole) || len(whole) < 3 {
			t.Fatalf("paged %d applications, the list has %d", len(seen), len(whole))
		}
		slices.Sort(seen)
		if len(slices.Compact(seen)) != len(whole) {
			t.Fatal("a page repeats an application")
		}
	})

	// A temporary password (forceChangePasswordNextSignIn) gets no token
	// (AADSTS50055: the person changes it in the portal first); the flag
	// is set and cleared alone, as az ad user update sends it; a person
	// changes their own password with /me/changePassword.
	t.Run("temporary-password", func(t *testing.T) {
		const temp, chosen = "temporary password 1", "chosen password 22"
		f.addSecret(temp, chosen)
		u := f.graph(t, admin, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "temp@suite.test", "accountEnabled": true,
			"passwordProfile": map[string]any{"password": temp, "forceChangePasswordNextSignIn": true}}, 201)
		signIn := func(pw string) *tokenResponse {
			return f.token(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
				"username": {"temp@suite.test"}, "password": {pw}, "scope": {graphScope}})
		}
		if tr := signIn(temp); tr.Error != "invalid_grant" || !strings.Contains(tr.raw, "AADSTS50055") {
			t.Fatalf("temporary password: %s", tr.raw)
		}
		if tr := signIn("wrong password 12"); !strings.Contains(tr.raw, "AADSTS50126") {
			t.Fatalf("wrong password of a person with a temporary one: %s", tr.raw)
		}
		set := func(force bool) {
			f.graph(t, admin, "PATCH", "/v1.0/users/"+u["id"].(string), map[string]any{"passwordProfile": map[string]any{"forceChangePasswordNextSignIn": force}}, 204)
		}
		set(false)
		tr := signIn(temp)
		if tr.status != 200 {
			t.Fatalf("unmarked: %s", tr.raw)
		}
		f.addSecret(tr.AccessToken)
		f.graph(t, tr.AccessToken, "POST", "/v1.0/me/changePassword", map[string]any{"currentPassword": "wrong password 12", "newPassword": chosen}, 400)
		f.graph(t, tr.AccessToken, "POST", "/v1.0/me/changePassword", map[string]any{"currentPassword": temp, "newPassword": chosen}, 204)
		if tr := signIn(temp); !strings.Contains(tr.raw, "AADSTS50126") {
			t.Fatalf("the old password after a change: %s", tr.raw)
		}
		if tr := signIn(chosen); tr.status != 200 {
			t.Fatalf("the chosen password: %s", tr.raw)
		}
		set(true)
		if tr := signIn(chosen); !strings.Contains(tr.raw, "AADSTS50055") {
			t.Fatalf("marked again: %s", tr.raw)
		}
		f.graph(t, admin, "PATCH", "/v1.0/users/"+u["id"].(string), map[string]any{"passwordProfile": map[string]any{}}, 400)
		f.graph(t, admin, "POST", "/v1.0/me/changePassword", map[string]any{"currentPassword": "x", "newPassword": chosen}, 400) // an app has no "me"
		f.graph(t, admin, "DELETE", "/v1.0/users/"+u["id"].(string), nil, 204)
	})

	// An Application Administrator manages applications, but not one whose
	// service principal holds an administrator role (the bootstrap
	// application is a Global Administrator): a secret added to it would
	// be that role.
	t.Run("application-administrator-and-privileged-apps", func(t *testing.T) {
		const pw = "app admin password 1"
		f.addSecret(pw)
		u := f.graph(t, admin, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "appadmin@suite.test", "accountEnabled": true,
			"passwordProfile": map[string]any{"password": pw}}, 201)
		defer f.graph(t, admin, "DELETE", "/v1.0/users/"+u["id"].(string), nil, 204)
		f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleApplicationAdministrator, "principalId": u["id"], "directoryScopeId": "/"}, 201)
		tr := f.token(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
			"username": {"appadmin@suite.test"}, "password": {pw}, "scope": {graphScope}})
		if tr.status != 200 {
			t.Fatalf("sign-in: %s", tr.raw)
		}
		f.addSecret(tr.AccessToken)
		tok := tr.AccessToken
		boot, err := f.s.Directory.Application(f.s.Bootstrap.ClientID)
		must(t, err)
		pwBody := map[string]any{"passwordCredential": map[string]any{"displayName": "x"}}
		for _, call := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1.0/applications/" + boot.AppObjectID + "/addPassword", pwBody},
			{"POST", "/v1.0/servicePrincipals/" + boot.ObjectID + "/addPassword", pwBody},
			{"POST", "/v1.0/applications/" + boot.AppObjectID + "/federatedIdentityCredentials", map[string]any{
				"name": "x", "issuer": "https://x.example", "subject": "s", "audiences": []string{"api://AzureADTokenExchange"}}},
			{"POST", "/v1.0/applications/" + boot.AppObjectID + "/owners/$ref", map[string]any{
				"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + u["id"].(string)}},
			{"PATCH", "/v1.0/applications/" + boot.AppObjectID, map[string]any{"displayName": "mine now"}},
			{"DELETE", "/v1.0/applications/" + boot.AppObjectID, nil},
		} {
			if code := errCode(f.graph(t, tok, call.method, call.path, call.body, 403)); code != "Authorization_RequestDenied" {
				t.Errorf("%s %s: %s", call.method, call.path, code)
			}
		}
		// An ordinary application is the Application Administrator's to manage.
		app := f.graph(t, admin, "POST", "/v1.0/applications", map[string]any{"displayName": "ordinary"}, 201)
		defer f.graph(t, admin, "DELETE", "/v1.0/applications/"+app["id"].(string), nil, 204)
		f.addSecret(f.graph(t, tok, "POST", "/v1.0/applications/"+app["id"].(string)+"/addPassword", pwBody, 200)["secretText"].(string))
		// A Global Administrator manages the privileged one.
		added := f.graph(t, admin, "POST", "/v1.0/applications/"+boot.AppObjectID+"/addPassword", pwBody, 200)
		f.addSecret(added["secretText"].(string))
		f.graph(t, admin, "POST", "/v1.0/applications/"+boot.AppObjectID+"/removePassword", map[string]any{"keyId": added["keyId"]}, 204)
	})

	t.Run("people-and-roles", func(t *testing.T) {
		u := f.graph(t, admin, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "reader@suite.test", "displayName": "Reader",
			"accountEnabled": true, "passwordProfile": map[string]any{"password": "reader password 1"}}, 201)
		f.addSecret("reader password 1")
		f.graph(t, admin, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "READER@suite.test",
			"passwordProfile": map[string]any{"password": "reader password 1"}}, 409)
		userToken := func() string {
			tr := f.token(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
				"username": {"reader@suite.test"}, "password": {"reader password 1"}, "scope": {graphScope}})
			if tr.status != 200 {
				t.Fatalf("password sign-in: %s", tr.raw)
			}
			return tr.AccessToken
		}
		tok := userToken()
		// Without a role, a person sees only what they own: nothing here.
		if l := f.graph(t, tok, "GET", "/v1.0/applications", nil, 200); len(l["value"].([]any)) != 0 {
			t.Fatalf("no role: listed %v", l["value"])
		}
		if code := errCode(f.graph(t, tok, "GET", "/v1.0/applications/"+f.app.AppObjectID, nil, 403)); code != "Authorization_RequestDenied" {
			t.Fatalf("no role: %s", code)
		}
		ra := f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleDirectoryReaders, "principalId": u["id"], "directoryScopeId": "/"}, 201)
		if l := f.graph(t, tok, "GET", "/v1.0/applications", nil, 200); len(l["value"].([]any)) == 0 {
			t.Fatal("a Directory Reader lists no applications")
		}
		f.graph(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "nope"}, 403)
		f.graph(t, admin, "DELETE", "/v1.0/roleManagement/directory/roleAssignments/"+ra["id"].(string), nil, 204)
		f.graph(t, tok, "GET", "/v1.0/applications/"+f.app.AppObjectID, nil, 403)
		// A User Administrator manages people, but not an administrator:
		// resetting a Global Administrator's password would hand over the
		// directory.
		f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleUserAdministrator, "principalId": u["id"], "directoryScopeId": "/"}, 201)
		tok = userToken()
		ga := f.graph(t, admin, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "ga@suite.test", "displayName": "GA",
			"accountEnabled": true, "passwordProfile": map[string]any{"password": "ga password 12345"}}, 201)
		f.addSecret("ga password 12345")
		f.graph(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{
			"roleDefinitionId": directory.RoleGlobalAdministrator, "principalId": ga["id"], "directoryScopeId": "/"}, 201)
		plain := f.graph(t, tok, "POST", "/v1.0/users", map[string]any{"userPrincipalName": "plain@suite.test", "displayName": "Plain",
			"accountEnabled": true, "passwordProfile": map[string]any{"password": "plain password 1"}}, 201)
		f.addSecret("plain password 1", "taken over 12345")
		f.graph(t, tok, "PATCH", "/v1.0/users/"+plain["id"].(string), map[string]any{"accountEnabled": false}, 204)
		for _, w := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "/v1.0/users/" + ga["id"].(string), map[string]any{"passwordProfile": map[string]any{"password": "taken over 12345"}}},
			{"PATCH", "/v1.0/users/ga@suite.test", map[string]any{"accountEnabled": false}},
			{"POST", "/v1.0/users/" + ga["id"].(string) + "/revokeSignInSessions", nil},
			{"DELETE", "/v1.0/users/" + ga["id"].(string), nil},
		} {
			if code := errCode(f.graph(t, tok, w.method, w.path, w.body, 403)); code != "Authorization_RequestDenied" {
				t.Fatalf("a User Administrator's %s %s on a Global Administrator: %s", w.method, w.path, code)
			}
		}
		f.graph(t, admin, "DELETE", "/v1.0/users/ga@suite.test", nil, 204)
		f.graph(t, admin, "DELETE", "/v1.0/users/plain@suite.test", nil, 204)
		f.graph(t, admin, "DELETE", "/v1.0/users/reader@suite.test", nil, 204)
		f.graph(t, admin, "GET", "/v1.0/users/"+u["id"].(string), nil, 404)
	})

	t.Run("authentication", func(t *testing.T) {
		mgmt := f.s.Token(t, f.s.Credential(t), "https://management.azure.com/.default")
		tests := []struct{ name, token, code string }{
			{"no-token", "", "AuthenticationFailed"},
			{"management-audience", mgmt, "InvalidAuthenticationTokenAudience"},
			{"garbage", "abc.def.ghi", "InvalidAuthenticationToken"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if code := errCode(f.graph(t, tt.token, "GET", "/v1.0/applications", nil, 401)); code != tt.code {
					t.Fatalf("code %s, want %s", code, tt.code)
				}
			})
		}
	})

	t.Run("bad-input", func(t *testing.T) {
		before := len(f.s.Directory.Applications(""))
		app := f.app.AppObjectID
		tests := []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"bad-json", "POST", "/v1.0/applications", `{"displayName":`, 400},
			{"not-an-object", "POST", "/v1.0/applications", `["x"]`, 400},
			{"unknown-field", "POST", "/v1.0/applications", `{"displayName":"x","evil":1}`, 400},
			{"wrong-type", "POST", "/v1.0/applications", `{"displayName":5}`, 400},
			{"missing-name", "POST", "/v1.0/applications", `{}`, 400},
			{"empty-name", "POST", "/v1.0/applications", `{"displayName":"  "}`, 400},
			{"control-chars", "POST", "/v1.0/applications", `{"displayName":"a\u0000b"}`, 400},
			{"huge-body", "POST", "/v1.0/applications", `{"displayName":"` + strings.Repeat("a", 300<<10) + `"}`, 413},
			{"bad-filter", "GET", "/v1.0/applications?$filter=" + url.QueryEscape("endswith(displayName,'a')"), nil, 400},
			{"filter-unknown-property", "GET", "/v1.0/applications?$filter=" + url.QueryEscape("secret eq 'a'"), nil, 400},
			{"unknown-app", "GET", "/v1.0/applications/00000000-0000-0000-0000-000000000000", nil, 404},
			{"unknown-app-password", "POST", "/v1.0/applications/nope/addPassword", `{}`, 404},
			{"end-before-start", "POST", "/v1.0/applications/" + app + "/addPassword", `{"passwordCredential":{"startDateTime":"2030-01-02T00:00:00Z","endDateTime":"2030-01-01T00:00:00Z"}}`, 400},
			{"bad-date", "POST", "/v1.0/applications/" + app + "/addPassword", `{"passwordCredential":{"endDateTime":"tomorrow"}}`, 400},
			{"remove-unknown-password", "POST", "/v1.0/applications/" + app + "/removePassword", `{"keyId":"00000000-0000-0000-0000-000000000000"}`, 404},
			{"bad-certificate", "PATCH", "/v1.0/applications/" + app, `{"keyCredentials":[{"type":"AsymmetricX509Cert","usage":"Verify","key":"bm90IGEgY2VydA=="}]}`, 400},
			{"private-key-upload", "POST", "/v1.0/applications/" + app + "/addKey", `{"keyCredential":{"key":"` + base64.StdEncoding.EncodeToString([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")) + `"},"proof":""}`, 400},
			{"federated-http-issuer", "POST", "/v1.0/applications/" + app + "/federatedIdentityCredentials", `{"name":"abc","issuer":"http://x.example","subject":"s"}`, 400},
			{"federated-bad-name", "POST", "/v1.0/applications/" + app + "/federatedIdentityCredentials", `{"name":"a b","issuer":"https://x.example","subject":"s"}`, 400},
			{"federated-bad-jwks", "POST", "/v1.0/applications/" + app + "/federatedIdentityCredentials", `{"name":"abc","issuer":"https://x.example","subject":"s","gatehouseJwks":{"keys":[]}}`, 400},
			{"user-short-password", "POST", "/v1.0/users", `{"userPrincipalName":"p@x.test","passwordProfile":{"password":"short"}}`, 400},
			{"user-bad-name", "POST", "/v1.0/users", `{"userPrincipalName":"p q","passwordProfile":{"password":"long enough password"}}`, 400},
			{"user-name-without-domain", "POST", "/v1.0/users", `{"userPrincipalName":"alice","passwordProfile":{"password":"long enough password"}}`, 400},
			{"user-name-two-ats", "POST", "/v1.0/users", `{"userPrincipalName":"a@b@c.test","passwordProfile":{"password":"long enough password"}}`, 400},
			{"role-unknown", "POST", "/v1.0/roleManagement/directory/roleAssignments", `{"roleDefinitionId":"x","principalId":"` + f.app.ObjectID + `"}`, 400},
			{"sp-unknown-app", "POST", "/v1.0/servicePrincipals", `{"appId":"00000000-0000-0000-0000-000000000000"}`, 400},
			{"wrong-method", "PUT", "/v1.0/applications", `{}`, 405},
			{"group-mail-enabled", "POST", "/v1.0/groups", `{"displayName":"g","mailNickname":"g","mailEnabled":true}`, 400},
			{"group-unified", "POST", "/v1.0/groups", `{"displayName":"g","mailNickname":"g","groupTypes":["Unified"]}`, 400},
			{"group-no-nickname", "POST", "/v1.0/groups", `{"displayName":"g"}`, 400},
			{"group-unknown", "GET", "/v1.0/groups/00000000-0000-0000-0000-000000000000", nil, 404},
			{"group-member-bad-ref", "POST", "/v1.0/groups/00000000-0000-0000-0000-000000000000/members/$ref", `{"@odata.id":"x"}`, 404},
			{"check-member-groups-empty", "POST", "/v1.0/directoryObjects/" + f.app.ObjectID + "/checkMemberGroups", `{"groupIds":[]}`, 400},
			{"alternate-key-unquoted", "GET", "/v1.0/servicePrincipals(appId=" + f.app.AppID + ")", nil, 400},
			{"alternate-key-not-a-guid", "PATCH", "/v1.0/applications(appId='nope')", `{"displayName":"x"}`, 400},
			{"alternate-key-unknown-property", "GET", "/v1.0/applications(uniqueName='x')", nil, 400},
			{"top-zero", "GET", "/v1.0/users?$top=0", nil, 400},
			{"top-too-big", "GET", "/v1.0/groups?$top=1000", nil, 400},
			{"top-not-a-number", "GET", "/v1.0/servicePrincipals?$top=many", nil, 400},
			{"skiptoken-forged", "GET", "/v1.0/applications?$top=1&$skiptoken=abc", nil, 400},
			{"select-unknown", "GET", "/v1.0/users?$select=id,password", nil, 400},
			{"select-unknown-on-object", "GET", "/v1.0/applications/" + app + "?$select=secretText", nil, 400},
			{"approle-unknown-resource", "POST", "/v1.0/servicePrincipals/00000000-0000-0000-0000-000000000000/appRoleAssignedTo", `{"principalId":"x","resourceId":"y","appRoleId":"z"}`, 404},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				m := f.graph(t, admin, tt.method, tt.path, tt.body, tt.status)
				if errCode(m) == "" {
					t.Fatalf("no error code: %v", m)
				}
			})
		}
		t.Cleanup(func() {
			if after := len(f.s.Directory.Applications("")); after != before {
				t.Errorf("bad input changed state: %d applications, was %d", after, before)
			}
		})
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
