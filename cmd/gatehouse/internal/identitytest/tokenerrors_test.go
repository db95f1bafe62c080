package identitytest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/directory"
)

// testTokenErrors is the negative table of the token endpoint: each request
// gets the right OAuth error and AADSTS code, in Entra's shape, and no
// token; none is a 500.
func (f *fixture) testTokenErrors(t *testing.T) {
	ctx := t.Context()
	d := f.s.Directory
	mgmt := "https://management.azure.com/.default"

	// Principals in the states the table needs.
	expired, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "expired-secret", ServicePrincipal: true})
	must(t, err)
	_, expiredSecret, err := d.AddSecret(ctx, expired.AppID, directory.SecretSpec{Start: time.Now().Add(-2 * time.Hour), End: time.Now().Add(-time.Hour)})
	must(t, err)
	removed, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "removed-secret", ServicePrincipal: true})
	must(t, err)
	info, removedSecret, err := d.AddSecret(ctx, removed.AppID, directory.SecretSpec{})
	must(t, err)
	must(t, d.RemoveSecret(ctx, removed.AppID, info.KeyID, false))
	disabled, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "disabled", ServicePrincipal: true})
	must(t, err)
	_, disabledSecret, err := d.AddSecret(ctx, disabled.AppID, directory.SecretSpec{})
	must(t, err)
	no := false
	_, err = d.UpdateApplication(ctx, disabled.AppID, directory.ApplicationUpdate{Enabled: &no})
	must(t, err)
	noSP, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "no-service-principal"})
	must(t, err)
	_, noSPSecret, err := d.AddSecret(ctx, noSP.AppID, directory.SecretSpec{})
	must(t, err)
	person, err := d.CreateUser(ctx, directory.UserSpec{UserName: "nora@suite.test", Password: "correct horse battery"})
	must(t, err)
	gone, err := d.CreateUser(ctx, directory.UserSpec{UserName: "gone@suite.test", Password: "correct horse battery"})
	must(t, err)
	_, err = d.UpdateUser(ctx, gone.ObjectID, directory.UserUpdate{Enabled: &no})
	must(t, err)
	f.addSecret(expiredSecret, removedSecret, disabledSecret, noSPSecret, "correct horse battery")

	app := f.app.AppID
	secretForm := func(client, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {mgmt}}
	}
	assertionForm := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {app}, "scope": {mgmt},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	// An assertion is accepted again, for the same scope and for another
	// (MSAL Node and MSAL Python send the same one until it expires).
	reused := f.assertion(t, "PS256", f.certKey, f.cert, nil)
	for range 2 {
		if tr := f.token(t, assertionForm(reused)); tr.status != 200 {
			t.Fatalf("the assertion for the same scope: %d %s", tr.status, tr.raw)
		}
	}
	other := assertionForm(reused)
	other.Set("scope", "https://cognitiveservices.azure.com/.default")
	if tr := f.token(t, other); tr.status != 200 {
		t.Fatalf("the assertion for another scope: %d %s", tr.status, tr.raw)
	}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		path        string // "" = the GUID tenant's token endpoint
		contentType string
		body        string
		header      http.Header
		status      int
		oauth       string
		aadsts      int
		method      string // "" = POST
		says        string // in the error_description
	}{
		{name: "wrong-secret", body: secretForm(app, "not-the-secret").Encode(), status: 401, oauth: "invalid_client", aadsts: 7000215},
		{name: "secret-of-another-app", body: secretForm(app, disabledSecret).Encode(), status: 401, oauth: "invalid_client", aadsts: 7000215},
		{name: "expired-secret", body: secretForm(expired.AppID, expiredSecret).Encode(), status: 401, oauth: "invalid_client", aadsts: 7000222},
		{name: "removed-secret", body: secretForm(removed.AppID, removedSecret).Encode(), status: 401, oauth: "invalid_client", aadsts: 7000215},
		{name: "disabled-principal", body: secretForm(disabled.AppID, disabledSecret).Encode(), status: 400, oauth: "unauthorized_client", aadsts: 7000112},
		{name: "no-service-principal", body: secretForm(noSP.AppID, noSPSecret).Encode(), status: 401, oauth: "invalid_client", aadsts: 7000229},
		{name: "unknown-client", body: secretForm("00000000-0000-0000-0000-000000000001", "x").Encode(), status: 400, oauth: "unauthorized_client", aadsts: 700016},
		{name: "managed-identity-as-client", body: secretForm(f.mi.ClientID, "x").Encode(), status: 401, oauth: "invalid_client", aadsts: 7000215},
		{name: "no-credential", body: url.Values{"grant_type": {"client_credentials"}, "client_id": {app}, "scope": {mgmt}}.Encode(), status: 401, oauth: "invalid_client", aadsts: 7000218},
		{name: "delegated-scope", body: func() string {
			v := secretForm(app, f.secret)
			v.Set("scope", "https://management.azure.com/user_impersonation")
			return v.Encode()
		}(), status: 400, oauth: "invalid_scope", aadsts: 1002012},
		{name: "default-and-delegated-scope", body: func() string {
			v := secretForm(app, f.secret)
			v.Set("scope", mgmt+" https://management.azure.com/user_impersonation openid")
			return v.Encode()
		}(), status: 400, oauth: "invalid_scope", aadsts: 1002012},
		{name: "no-client-id", body: url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}, "scope": {mgmt}}.Encode(), status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "basic-and-body-secret", body: secretForm(app, f.secret).Encode(), header: http.Header{"Authorization": {"Basic YTpi"}}, status: 400, oauth: "invalid_request", aadsts: 90011},
		{name: "assertion-wrong-signature", body: assertionForm(f.assertion(t, "PS256", f.otherKey, f.cert, nil)).Encode(), status: 401, oauth: "invalid_client", aadsts: 700027},
		{name: "assertion-unregistered-certificate", body: assertionForm(f.assertion(t, "RS256", f.otherKey, f.otherCert, nil)).Encode(), status: 401, oauth: "invalid_client", aadsts: 700027},
		{name: "assertion-wrong-audience", body: assertionForm(f.assertion(t, "PS256", f.certKey, f.cert, func(h, c map[string]any) {
			c["aud"] = "https://login.microsoftonline.com/" + f.tenant + "/oauth2/v2.0/token"
		})).Encode(), status: 401, oauth: "invalid_client", aadsts: 700023},
		{name: "assertion-expired", body: assertionForm(f.assertion(t, "PS256", f.certKey, f.cert, func(h, c map[string]any) {
			c["exp"], c["nbf"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-30*time.Minute).Unix()
		})).Encode(), status: 401, oauth: "invalid_client", aadsts: 700024},
		{name: "assertion-not-yet-valid", body: assertionForm(f.assertion(t, "PS256", f.certKey, f.cert, func(h, c map[string]any) {
			c["nbf"] = time.Now().Add(20 * time.Minute).Unix()
		})).Encode(), status: 401, oauth: "invalid_client", aadsts: 700024},
		{name: "assertion-of-another-client", body: assertionForm(f.assertion(t, "PS256", f.certKey, f.cert, func(h, c map[string]any) {
			c["iss"], c["sub"] = expired.AppID, expired.AppID
		})).Encode(), status: 401, oauth: "invalid_client", aadsts: 700021},
		{name: "assertion-hs256", body: assertionForm(strings.Replace(f.assertion(t, "PS256", f.certKey, f.cert, nil), "eyJhbGciOiJQUzI1NiI", "eyJhbGciOiJIUzI1NiI", 1)).Encode(), status: 401, oauth: "invalid_client", aadsts: 5002738},
		{name: "assertion-malformed", body: assertionForm("a.b").Encode(), status: 401, oauth: "invalid_client", aadsts: 50027},
		{name: "assertion-wrong-type", body: func() string {
			v := assertionForm(f.assertion(t, "PS256", f.certKey, f.cert, nil))
			v.Set("client_assertion_type", "urn:other")
			return v.Encode()
		}(), status: 400, oauth: "invalid_request", aadsts: 700025},
		{name: "federated-untrusted-issuer", body: assertionForm(f.federatedToken(t, func(h, c map[string]any) { c["iss"] = "https://evil.example.test" })).Encode(), status: 401, oauth: "invalid_client", aadsts: 700211},
		{name: "federated-wrong-subject", body: assertionForm(f.federatedToken(t, func(h, c map[string]any) { c["sub"] = "system:serviceaccount:apps:other" })).Encode(), status: 401, oauth: "invalid_client", aadsts: 700213},
		{name: "federated-wrong-audience", body: assertionForm(f.federatedToken(t, func(h, c map[string]any) { c["aud"] = "api://other" })).Encode(), status: 401, oauth: "invalid_client", aadsts: 700212},
		{name: "federated-wrong-signature", body: assertionForm(strings.Join(append(strings.Split(f.federatedToken(t, nil), ".")[:2], strings.Split(f.federatedToken(t, func(h, c map[string]any) { c["sub"] = "x" }), ".")[2]), ".")).Encode(), status: 401, oauth: "invalid_client", aadsts: 700027},
		{name: "federated-expired", body: assertionForm(f.federatedToken(t, func(h, c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })).Encode(), status: 401, oauth: "invalid_client", aadsts: 700024},
		{name: "federated-unknown-kid", body: assertionForm(f.federatedToken(t, func(h, c map[string]any) { h["kid"] = "k2" })).Encode(), status: 401, oauth: "invalid_client", aadsts: 50166},
		{name: "unknown-resource", body: url.Values{"grant_type": {"client_credentials"}, "client_id": {app}, "client_secret": {f.secret}, "scope": {"https://evil.example.test/.default"}}.Encode(), status: 400, oauth: "invalid_resource", aadsts: 500011},
		{name: "no-scope", body: url.Values{"grant_type": {"client_credentials"}, "client_id": {app}, "client_secret": {f.secret}, "scope": {"openid profile"}}.Encode(), status: 400, oauth: "invalid_scope", aadsts: 70011},
		{name: "missing-grant-type", body: "client_id=" + app, status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "unsupported-grant", body: "grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&assertion=x", status: 400, oauth: "unsupported_grant_type", aadsts: 70003},
		{name: "authorization-code-unknown", body: "grant_type=authorization_code&client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&code=x&redirect_uri=http%3A%2F%2Flocalhost%3A1%2F&code_verifier=v", status: 400, oauth: "invalid_grant", aadsts: 70000},
		{name: "device-code-unknown", body: "grant_type=device_code&client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&device_code=x", status: 400, oauth: "invalid_grant", aadsts: 70000},
		{name: "malformed-form", body: "grant_type=%zz&client_id=" + app, status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "json-body", contentType: "application/json", body: `{"grant_type":"client_credentials"}`, status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "no-content-type", contentType: "-", body: secretForm(app, f.secret).Encode(), status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "duplicate-secret", body: secretForm(app, f.secret).Encode() + "&client_secret=x", status: 400, oauth: "invalid_request", aadsts: 90011},
		{name: "oversized-body", body: "grant_type=client_credentials&x=" + strings.Repeat("a", 70<<10), status: 400, oauth: "invalid_request", aadsts: 900144},
		{name: "wrong-password", body: url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}, "username": {person.UserName}, "password": {"wrong password!"}, "scope": {mgmt}}.Encode(), status: 400, oauth: "invalid_grant", aadsts: 50126},
		{name: "unknown-user", body: url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}, "username": {"nobody@suite.test"}, "password": {"correct horse battery"}, "scope": {mgmt}}.Encode(), status: 400, oauth: "invalid_grant", aadsts: 50126},
		{name: "disabled-user", body: url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}, "username": {gone.UserName}, "password": {"correct horse battery"}, "scope": {mgmt}}.Encode(), status: 400, oauth: "invalid_grant", aadsts: 50057},
		{name: "public-client-with-secret", body: url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}, "client_secret": {"x"}, "username": {person.UserName}, "password": {"correct horse battery"}, "scope": {mgmt}}.Encode(), status: 401, oauth: "invalid_client", aadsts: 700025},
		{name: "adfs-wrong-secret", path: "/adfs/oauth2/token", body: secretForm(app, "nope").Encode(), status: 401, oauth: "invalid_client", aadsts: 7000215},
		// A tenant the directory does not have: Entra's "Tenant not found",
		// not a bare 404 (the router's NotFound, see authority.UnknownTenant).
		{name: "unknown-tenant", path: "/0b0b0b0b-1111-4222-8333-444444444444/oauth2/v2.0/token", body: secretForm(app, f.secret).Encode(), status: 400, oauth: "invalid_tenant", aadsts: 90002},
		{name: "unknown-tenant-name", path: "/contoso.onmicrosoft.com/oauth2/v2.0/token", body: secretForm(app, f.secret).Encode(), status: 400, oauth: "invalid_tenant", aadsts: 90002},
		// Another method than POST: Entra's 400 in OAuth's shape, not a 405.
		{name: "get-token", method: http.MethodGet, status: 400, oauth: "invalid_request", aadsts: 900561},
		{name: "put-adfs-token", method: http.MethodPut, path: "/adfs/oauth2/token", status: 400, oauth: "invalid_request", aadsts: 900561},
		{name: "get-devicecode", method: http.MethodGet, path: "/" + f.tenant + "/oauth2/v2.0/devicecode", status: 400, oauth: "invalid_request", aadsts: 900561},
		// A device code request of another type lacks client_id, not grant_type.
		{name: "devicecode-json", path: "/" + f.tenant + "/oauth2/v2.0/devicecode", contentType: "application/json", body: `{}`, status: 400, oauth: "invalid_request", aadsts: 900144, says: "'client_id'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path
			if path == "" {
				path = "/" + f.tenant + "/oauth2/v2.0/token"
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = form
			case "-":
				ct = ""
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			tr := f.sendForm(t, method, path, ct, tt.body, tt.header)
			if !strings.Contains(tr.Description, tt.says) {
				t.Errorf("error_description %q does not say %s", tr.Description, tt.says)
			}
			if tr.status != tt.status || tr.Error != tt.oauth || len(tr.ErrorCodes) != 1 || tr.ErrorCodes[0] != tt.aadsts {
				t.Fatalf("got %d %s %v, want %d %s [%d]: %s", tr.status, tr.Error, tr.ErrorCodes, tt.status, tt.oauth, tt.aadsts, tr.raw)
			}
			if tr.AccessToken != "" {
				t.Fatal("an error response carries a token")
			}
			if !strings.HasPrefix(tr.Description, "AADSTS") || tr.TraceID == "" || tr.CorrelationID == "" ||
				!strings.HasPrefix(tr.contentType, "application/json") {
				t.Fatalf("not Entra's error shape: %s", tr.raw)
			}
		})
	}
	t.Run("successes", func(t *testing.T) {
		t.Parallel()
		for name, form := range map[string]url.Values{
			"secret":      secretForm(app, f.secret),
			"certificate": assertionForm(f.assertion(t, "RS256", f.certKey, f.cert, nil)),
			"federated":   assertionForm(f.federatedToken(t, nil)),
			"password": {"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
				"username": {"NORA@suite.test"}, "password": {"correct horse battery"}, "scope": {"https://management.core.windows.net//.default"},
				"claims": {`{"access_token":{"xms_cc":{"values":["CP1"]}}}`}, "client_info": {"1"}},
		} {
			tr := f.token(t, form)
			if tr.status != 200 || tr.TokenType != "Bearer" || tr.AccessToken == "" {
				t.Fatalf("%s: %d %s", name, tr.status, tr.raw)
			}
			if n, ok := tr.ExpiresIn.(float64); !ok || n < 3500 {
				t.Fatalf("%s: expires_in %#v, want a JSON number ≥ 3500", name, tr.ExpiresIn)
			}
			// No openid scope: no ID token. client_info (asked for with
			// client_info=1) is a person's only, and well-formed.
			if strings.Contains(tr.raw, "id_token") || (name != "password") == strings.Contains(tr.raw, "client_info") {
				t.Fatalf("%s: id_token or client_info: %s", name, tr.raw)
			}
			if name == "password" {
				var r struct {
					ClientInfo string `json:"client_info"`
				}
				must(t, json.Unmarshal([]byte(tr.raw), &r))
				ci, err := base64.RawURLEncoding.DecodeString(r.ClientInfo)
				if err != nil || string(ci) != `{"uid":"`+person.ObjectID+`","utid":"`+f.tenant+`"}` {
					t.Fatalf("client_info %q: %s %v", r.ClientInfo, ci, err)
				}
			}
		}
		// client_secret_basic works too.
		tr := f.postForm(t, "/adfs/oauth2/token", form, url.Values{"grant_type": {"client_credentials"}, "scope": {mgmt}}.Encode(),
			http.Header{"Authorization": {"Basic " + basic(app, f.secret)}})
		if tr.status != 200 {
			t.Fatalf("basic: %d %s", tr.status, tr.raw)
		}
		c := f.claims(t, tr.AccessToken)
		if c.AppIDACR != "1" || c.Principal.ObjectID != f.app.ObjectID {
			t.Fatalf("basic: claims %+v", c)
		}
		// The person's token: a user principal, aud as requested (with az's
		// double slash reduced to one).
		tr = f.token(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
			"username": {person.UserName}, "password": {"correct horse battery"}, "scope": {"https://management.core.windows.net//.default"}})
		c = f.claims(t, tr.AccessToken, "https://management.core.windows.net/")
		if c.Principal.ObjectID != person.ObjectID || c.Principal.Type != "User" || c.AppIDACR != "0" {
			t.Fatalf("password: claims %+v", c)
		}
	})
}

func basic(user, pass string) string {
	return base64Std(url.QueryEscape(user) + ":" + url.QueryEscape(pass))
}
