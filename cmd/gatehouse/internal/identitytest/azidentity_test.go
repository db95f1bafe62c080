package identitytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/gatehouse/gatehouse/authority"
)

func (f *fixture) getJSON(t testing.TB, path string) (int, map[string]any) {
	t.Helper()
	resp, err := f.s.Client.Get(f.s.URL + path)
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("GET %s: non-JSON %d answer %q", path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

func (f *fixture) testDiscovery(t *testing.T) {
	base := f.s.URL
	tests := []struct {
		name, path               string
		issuer, token, jwks, aut string
	}{
		{"guid-tenant", "/" + f.tenant + "/v2.0/.well-known/openid-configuration", base + "/" + f.tenant + "/v2.0",
			base + "/" + f.tenant + "/oauth2/v2.0/token", base + "/" + f.tenant + "/discovery/v2.0/keys", base + "/" + f.tenant + "/oauth2/v2.0/authorize"},
		// Where v1-era middleware (an authority without "/v2.0") looks: the
		// same document.
		{"guid-tenant-v1-path", "/" + f.tenant + "/.well-known/openid-configuration", base + "/" + f.tenant + "/v2.0",
			base + "/" + f.tenant + "/oauth2/v2.0/token", base + "/" + f.tenant + "/discovery/v2.0/keys", base + "/" + f.tenant + "/oauth2/v2.0/authorize"},
		{"adfs", "/adfs/.well-known/openid-configuration", base + "/adfs", base + "/adfs/oauth2/token",
			base + "/adfs/discovery/keys", base + "/adfs/oauth2/authorize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, doc := f.getJSON(t, tt.path+"?")
			if status != 200 || doc["issuer"] != tt.issuer || doc["token_endpoint"] != tt.token ||
				doc["jwks_uri"] != tt.jwks || doc["authorization_endpoint"] != tt.aut {
				t.Fatalf("%d %v", status, doc)
			}
			// The endpoints it advertises are served: the authorization
			// endpoint answers a bare GET with its error page, the device
			// authorization endpoint a bare POST with invalid_request.
			dev, _ := doc["device_authorization_endpoint"].(string)
			if status, _ := f.httpDo(t, "GET", strings.TrimPrefix(tt.aut, base), "", nil); status != 400 {
				t.Errorf("GET %s: %d", tt.aut, status)
			}
			if status, body := f.httpDo(t, "POST", strings.TrimPrefix(dev, base), "", strings.NewReader("")); dev == "" || status != 400 ||
				!strings.Contains(string(body), "invalid_request") {
				t.Errorf("POST %q: %d %s", dev, status, body)
			}
			jwksPath := strings.TrimPrefix(tt.jwks, base)
			status, keys := f.getJSON(t, jwksPath)
			if status != 200 || len(keys["keys"].([]any)) < 2 {
				t.Fatalf("JWKS %d %v: want the active and the next key", status, keys)
			}
			for _, k := range keys["keys"].([]any) {
				if _, private := k.(map[string]any)["d"]; private {
					t.Fatal("the JWKS publishes a private key")
				}
			}
		})
	}
	// MSAL's user-realm lookup before a password sign-in: "Managed" for
	// every name, existing or not, in both spellings MSALs use.
	t.Run("user-realm", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/common/UserRealm/" + url.PathEscape(f.s.Bootstrap.ClientID+"@suite.test") + "?api-version=1.0",
			"/common/userrealm/nobody@elsewhere.test?api-version=1.0"} {
			status, doc := f.getJSON(t, path)
			if status != 200 || doc["account_type"] != "Managed" || doc["domain_name"] == "" || doc["cloud_instance_name"] == "" ||
				doc["cloud_audience_urn"] == "" {
				t.Fatalf("%s: %d %v", path, status, doc)
			}
		}
	})
	t.Run("unknown-tenant", func(t *testing.T) {
		t.Parallel()
		// Entra's answer: 400 invalid_tenant, AADSTS90002, in OAuth's shape.
		for _, path := range []string{"/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration",
			"/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys"} {
			status, doc := f.getJSON(t, path)
			if desc, _ := doc["error_description"].(string); status != 400 || doc["error"] != "invalid_tenant" ||
				!strings.HasPrefix(desc, "AADSTS90002: Tenant '00000000-0000-0000-0000-000000000000' not found") {
				t.Fatalf("%s: %d %v", path, status, doc)
			}
		}
		// Other methods and paths under an unknown first segment stay the
		// router's JSON 404.
		if status, doc := f.getJSON(t, "/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token"); status != 405 && status != 404 || doc["error"] == nil {
			t.Fatalf("GET token: %d %v", status, doc)
		}
		// A known tenant id in upper case is the tenant (Entra takes any
		// case): discovery names the tenant as registered, azidentity gets
		// a token for it.
		upper := strings.ToUpper(f.tenant)
		if status, doc := f.getJSON(t, "/"+upper+"/v2.0/.well-known/openid-configuration"); status != 200 ||
			!strings.Contains(fmt.Sprint(doc["issuer"]), f.tenant) {
			t.Fatalf("upper-case tenant discovery: %d %v", status, doc)
		}
		upperCred, err := azidentity.NewClientSecretCredential(upper, f.app.AppID, f.secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: f.s.ClientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		tok, err := upperCred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		if err != nil {
			t.Fatalf("azidentity with the tenant id in upper case: %v", err)
		}
		f.addSecret(tok.Token)
		if c := f.claims(t, tok.Token, "https://management.azure.com"); c.Principal.TenantID != f.tenant {
			t.Fatalf("token tenant %q", c.Principal.TenantID)
		}
		// azidentity with a wrong tenant id reports Entra's error.
		cred, err := azidentity.NewClientSecretCredential("0b0b0b0b-1111-4222-8333-444444444444", f.app.AppID, f.secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: f.s.ClientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		if err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
			t.Fatalf("azidentity with an unknown tenant: %v", err)
		}
	})
}

// azEnv sets the environment azidentity reads; empty values unset.
func azEnv(t *testing.T, vars map[string]string) {
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_USERNAME", "AZURE_PASSWORD", "IDENTITY_ENDPOINT",
		"IDENTITY_HEADER", "MSI_ENDPOINT", "AZURE_TOKEN_CREDENTIALS", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"} {
		t.Setenv(k, vars[k])
		if vars[k] == "" {
			os.Unsetenv(k)
		}
	}
}

// testAzidentity drives the official azidentity credentials: configured only
// by environment with tenant adfs, and in code with the GUID tenant and
// instance discovery disabled. Each must obtain a token for the app.
func (f *fixture) testAzidentity(t *testing.T) {
	tokenFile := filepath.Join(f.dir, "federated-token")
	fedTok := f.federatedToken(t, nil)
	must(t, os.WriteFile(tokenFile, []byte(fedTok), 0o600))
	f.addSecret(fedTok)
	// Only the transport is set in code for the environment cases: it
	// trusts the node's CA and dials the node. The authority comes from
	// AZURE_AUTHORITY_HOST.
	transport := azcore.ClientOptions{Transport: f.s.Client}
	code := f.s.ClientOptions()
	adfs := map[string]string{"AZURE_AUTHORITY_HOST": f.s.URL, "AZURE_TENANT_ID": "adfs", "AZURE_CLIENT_ID": f.app.AppID}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for kk, vv := range m {
			out[kk] = vv
		}
		return out
	}
	secretEnv := with(adfs, "AZURE_CLIENT_SECRET", f.secret)
	certEnv := with(adfs, "AZURE_CLIENT_CERTIFICATE_PATH", f.certFile)
	fedEnv := with(adfs, "AZURE_FEDERATED_TOKEN_FILE", tokenFile)
	certs, key, err := azidentity.ParseCertificates([]byte(f.certPEM), nil)
	must(t, err)

	tests := []struct {
		name string
		env  map[string]string
		cred func() (azcore.TokenCredential, error)
	}{
		{"adfs-env-default-credential-secret", secretEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-env-environment-credential-secret", secretEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-env-environment-credential-certificate", certEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-env-default-credential-certificate", certEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-env-workload-identity", fedEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-env-default-credential-workload", fedEnv, func() (azcore.TokenCredential, error) {
			return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-client-secret-credential", map[string]string{"AZURE_AUTHORITY_HOST": f.s.URL}, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential("adfs", f.app.AppID, f.secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: transport})
		}},
		{"adfs-client-certificate-credential", map[string]string{"AZURE_AUTHORITY_HOST": f.s.URL}, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential("adfs", f.app.AppID, certs, key, &azidentity.ClientCertificateCredentialOptions{ClientOptions: transport})
		}},
		{"guid-client-secret-credential", nil, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(f.tenant, f.app.AppID, f.secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: code, DisableInstanceDiscovery: true})
		}},
		{"guid-client-certificate-credential", nil, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(f.tenant, f.app.AppID, certs, key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: code, DisableInstanceDiscovery: true})
		}},
		{"guid-client-certificate-credential-x5c", nil, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(f.tenant, f.app.AppID, certs, key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: code, DisableInstanceDiscovery: true, SendCertificateChain: true})
		}},
		{"guid-workload-identity", nil, func() (azcore.TokenCredential, error) {
			return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: code,
				TenantID: f.tenant, ClientID: f.app.AppID, TokenFilePath: tokenFile, DisableInstanceDiscovery: true})
		}},
		{"guid-env-default-credential", map[string]string{"AZURE_TENANT_ID": f.tenant, "AZURE_CLIENT_ID": f.app.AppID, "AZURE_CLIENT_SECRET": f.secret},
			func() (azcore.TokenCredential, error) {
				return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: code, DisableInstanceDiscovery: true})
			}},
		{"guid-client-assertion-credential", nil, func() (azcore.TokenCredential, error) {
			return azidentity.NewClientAssertionCredential(f.tenant, f.app.AppID, func(ctx context.Context) (string, error) {
				return f.assertion(t, "RS256", f.certKey, f.cert, nil), nil
			}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: code, DisableInstanceDiscovery: true})
		}},
	}
	scopes := []struct{ scope, aud string }{
		{"https://management.azure.com/.default", "https://management.azure.com"},
		{"https://cognitiveservices.azure.com/.default", "https://cognitiveservices.azure.com"},
		{f.s.Authority.VaultResource() + "/.default", f.s.Authority.VaultResource()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			azEnv(t, tt.env)
			cred, err := tt.cred()
			must(t, err)
			for _, sc := range scopes {
				tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{sc.scope}, EnableCAE: true})
				if err != nil {
					t.Fatalf("%s: %v", sc.scope, err)
				}
				f.addSecret(tok.Token)
				c := f.claims(t, tok.Token, sc.aud)
				if c.Principal.ObjectID != f.app.ObjectID || c.Principal.ClientID != f.app.AppID || c.Principal.TenantID != f.tenant {
					t.Fatalf("token principal %+v, want the app %s", c.Principal, f.app.ObjectID)
				}
				if left := c.Expires.Sub(c.IssuedAt); left < authority.DefaultTokenLifetime {
					t.Fatalf("lifetime %s, want ≥ 60 minutes", left)
				}
			}
		})
	}
}

// httpDo is a small helper for raw requests with a bearer token.
func (f *fixture) httpDo(t testing.TB, method, path, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.s.URL+path, body)
	must(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.s.Client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}
