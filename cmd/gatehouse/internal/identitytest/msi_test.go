package identitytest

import (
	"bytes"
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
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/directory"
)

// TestHelperProcess is not a test: it is the program `gatehouse run` starts
// in the managed-identity tests (the test binary re-executed). It gets a
// token with the credential GATEHOUSE_TEST_HELPER names and prints what it
// saw as one JSON line prefixed with HELPER:.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("GATEHOUSE_TEST_HELPER")
	if mode == "" {
		return
	}
	out := map[string]string{
		"header": os.Getenv("IDENTITY_HEADER"), "endpoint": os.Getenv("IDENTITY_ENDPOINT"),
		"ssl": os.Getenv("SSL_CERT_FILE"), "authority": os.Getenv("AZURE_AUTHORITY_HOST"),
		"clientIdEnv": os.Getenv("AZURE_CLIENT_ID"), "msiEndpoint": os.Getenv("MSI_ENDPOINT"),
	}
	var cred azcore.TokenCredential
	var err error
	id := os.Getenv("GATEHOUSE_TEST_MI_ID")
	switch mode {
	case "mi":
		cred, err = azidentity.NewManagedIdentityCredential(nil)
	case "mi-client-id":
		cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(id)})
	case "mi-resource-id":
		cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ResourceID(id)})
	case "mi-object-id":
		cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ObjectID(id)})
	case "dac":
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	case "exit":
		os.Exit(7)
	}
	if err == nil {
		var tok azcore.AccessToken
		tok, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		out["token"] = tok.Token
		out["expiresOn"] = tok.ExpiresOn.String()
	}
	if err != nil {
		out["error"] = err.Error()
	}
	b, _ := json.Marshal(out)
	fmt.Printf("HELPER:%s\n", b)
	os.Exit(0)
}

// cliEnv runs the gatehouse CLI in process with its own config directory.
type cliEnv struct {
	dir string
	// stdin is what the next command reads on standard input.
	stdin string
}

func newCLI(t *testing.T) *cliEnv { return &cliEnv{dir: t.TempDir()} }

func (c *cliEnv) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	stdin := c.stdin
	c.stdin = ""
	code := cli.Main(t.Context(), args, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		LookupEnv: func(k string) (string, bool) {
			if k == "GATEHOUSE_CONFIG_DIR" {
				return c.dir, true
			}
			return "", false
		}})
	return code, out.String(), errb.String()
}

func (c *cliEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := c.run(t, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// helperResult parses the helper's line from the output of `run`.
func helperResult(t *testing.T, out string) map[string]string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "HELPER:"); ok {
			var m map[string]string
			must(t, json.Unmarshal([]byte(rest), &m))
			return m
		}
	}
	t.Fatalf("the helper printed no result: %q", out)
	return nil
}

// msiGet calls the managed-identity endpoint directly.
func (f *fixture) msiGet(t *testing.T, header string, q url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.s.Authority.MSIEndpoint()+"?"+q.Encode(), nil)
	must(t, err)
	if header != "" {
		req.Header.Set("X-IDENTITY-HEADER", header)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testManagedIdentity: ManagedIdentityCredential and DefaultAzureCredential
// inside `gatehouse run --identity` get tokens whose oid is the identity;
// the header dies with the command; wrong or revoked headers are refused.
func (f *fixture) testManagedIdentity(t *testing.T) {
	c := newCLI(t)
	bootstrap := filepath.Join(f.s.DataDir, "bootstrap.json")
	if code, _, errOut := c.run(t, "login", "--bootstrap-file", bootstrap, "-u", "someone", "-p", "x"); code == 0 || !strings.Contains(errOut, "the file has the credentials") {
		t.Fatalf("login --bootstrap-file with -u: exit %d %s", code, errOut)
	}
	c.mustRun(t, "login", "--bootstrap-file", bootstrap, "-o", "none")
	// A client id in the caller's environment must not leak into the
	// command (DefaultAzureCredential would ask for that identity).
	t.Setenv("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111")
	helper := []string{"--", os.Args[0], "-test.run=^TestHelperProcess$"}
	runAs := func(t *testing.T, mode, id, identity string) (int, map[string]string, string) {
		t.Setenv("GATEHOUSE_TEST_HELPER", mode)
		t.Setenv("GATEHOUSE_TEST_MI_ID", id)
		code, out, errOut := c.run(t, append([]string{"run", "--identity", identity}, helper...)...)
		if mode == "exit" {
			return code, nil, errOut
		}
		return code, helperResult(t, out), errOut
	}
	mgmt := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}}
	var headers []string
	for _, tt := range []struct{ name, mode, id, identity string }{
		{"managed-identity-credential", "mi", "", f.mi.Name},
		{"by-client-id", "mi-client-id", f.mi.ClientID, f.mi.ClientID},
		{"by-resource-id", "mi-resource-id", f.mi.ResourceID, f.mi.ResourceID},
		{"by-object-id", "mi-object-id", f.mi.PrincipalID, f.mi.Name},
		{"default-azure-credential", "dac", "", f.mi.Name},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, res, errOut := runAs(t, tt.mode, tt.id, tt.identity)
			if code != 0 || res["error"] != "" {
				t.Fatalf("exit %d, helper error %q, stderr %q", code, res["error"], errOut)
			}
			f.addSecret(res["token"], res["header"])
			cl := f.claims(t, res["token"])
			if cl.Principal.ObjectID != f.mi.PrincipalID || cl.Principal.ClientID != f.mi.ClientID || !cl.Principal.ManagedIdentity {
				t.Fatalf("token principal %+v, want the identity %s", cl.Principal, f.mi.PrincipalID)
			}
			if res["ssl"] != f.s.CAFile || res["authority"] != f.s.URL || res["clientIdEnv"] != "" || res["endpoint"] != f.s.Authority.MSIEndpoint() {
				t.Fatalf("the command's environment: %v", res)
			}
			// MSI_ENDPOINT (for az login --identity) is the same endpoint
			// with the header in its query.
			want := res["endpoint"] + "?" + url.Values{"identity-header": {res["header"]}}.Encode()
			if res["msiEndpoint"] != want {
				t.Fatalf("MSI_ENDPOINT is not the endpoint with the header: %v", res)
			}
			// The header died with the command.
			if status, body := f.msiGet(t, res["header"], mgmt); status != http.StatusUnauthorized {
				t.Fatalf("revoked header: %d %s", status, body)
			}
			headers = append(headers, res["header"])
		})
	}
	t.Run("wrong-selector", func(t *testing.T) {
		code, res, _ := runAs(t, "mi-client-id", "22222222-2222-2222-2222-222222222222", f.mi.Name)
		if code != 0 || res["token"] != "" || !strings.Contains(res["error"], "400") {
			t.Fatalf("another identity's client id: exit %d, %v", code, res)
		}
	})
	t.Run("exit-code-and-revocation", func(t *testing.T) {
		code, _, _ := runAs(t, "exit", "", f.mi.Name)
		if code != 7 {
			t.Fatalf("exit code %d, want the command's 7", code)
		}
	})
	t.Run("unknown-identity", func(t *testing.T) {
		code, _, errOut := c.run(t, append([]string{"run", "--identity", "no-such-identity"}, helper...)...)
		if code == 0 || !strings.Contains(errOut, "ResourceNotFound") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("not-allowed", func(t *testing.T) {
		ctx := t.Context()
		app, err := f.s.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "no-roles", ServicePrincipal: true})
		must(t, err)
		_, secret, err := f.s.Directory.AddSecret(ctx, app.AppID, directory.SecretSpec{})
		must(t, err)
		f.addSecret(secret)
		other := newCLI(t)
		other.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "--tenant", f.tenant,
			"--service-principal", "-u", app.AppID, "-p", secret, "-o", "none")
		code, _, errOut := other.run(t, append([]string{"run", "--identity", f.mi.Name}, helper...)...)
		if code == 0 || !strings.Contains(errOut, "AuthorizationFailed") {
			t.Fatalf("a principal without rights got a header: exit %d: %s", code, errOut)
		}
		// Named as ARM names a client: by its client id.
		if !strings.Contains(errOut, "The client '"+app.AppID+"' with object id '") {
			t.Errorf("the refusal names the client otherwise: %s", errOut)
		}
	})
	t.Run("endpoint-errors", func(t *testing.T) {
		h, secret, err := f.s.Authority.CreateIdentityHeader(t.Context(), "test", f.mi, 0)
		must(t, err)
		f.addSecret(secret)
		tests := []struct {
			name, header string
			q            url.Values
			status       int
		}{
			{"ok", secret, mgmt, 200},
			{"no-header", "", mgmt, 401},
			{"wrong-header", "not-a-header", mgmt, 401},
			{"revoked-header", headers[0], mgmt, 401},
			{"wrong-api-version", secret, url.Values{"api-version": {"2017-09-01"}, "resource": {"https://management.azure.com"}}, 400},
			{"no-resource", secret, url.Values{"api-version": {"2019-08-01"}}, 400},
			{"unknown-resource", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://evil.example.test"}}, 400},
			{"other-identity", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}, "mi_res_id": {"/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z"}}, 400},
			{"two-selectors", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}, "client_id": {f.mi.ClientID}, "object_id": {f.mi.PrincipalID}}, 400},
			// principal_id is object_id's other name: the same id under both is one selector.
			{"principal-id", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}, "principal_id": {f.mi.PrincipalID}}, 200},
			{"object-and-principal-id", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}, "object_id": {f.mi.PrincipalID}, "principal_id": {f.mi.PrincipalID}}, 200},
			{"object-and-other-principal-id", secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com"}, "object_id": {f.mi.PrincipalID}, "principal_id": {"00000000-0000-0000-0000-000000000001"}}, 400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, body := f.msiGet(t, tt.header, tt.q)
				if status != tt.status || !strings.Contains(body, `"`) {
					t.Fatalf("%d %s, want %d", status, body, tt.status)
				}
				if status == 200 {
					var r map[string]any
					must(t, json.Unmarshal([]byte(body), &r))
					exp, _ := r["expires_on"].(string)
					if r["token_type"] != "Bearer" || r["client_id"] != f.mi.ClientID || len(exp) != 10 || r["resource"] != "https://management.azure.com" {
						t.Fatalf("response shape: %s", body)
					}
					f.addSecret(r["access_token"].(string))
				}
			})
		}
		must(t, f.s.Authority.RevokeIdentityHeader(t.Context(), nil, h.ID))
		if status, _ := f.msiGet(t, secret, mgmt); status != 401 {
			t.Fatalf("revoked: %d", status)
		}
	})
	// Entra's "application trusts a managed identity": the identity's
	// token for api://AzureADTokenExchange is the client assertion of an
	// application whose federated credential names this server's issuer
	// and the identity's object id — verified with the server's own keys.
	t.Run("application-trusts-managed-identity", func(t *testing.T) {
		_, secret, err := f.s.Authority.CreateIdentityHeader(t.Context(), "test", f.mi, 0)
		must(t, err)
		f.addSecret(secret)
		status, body := f.msiGet(t, secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"api://AzureADTokenExchange"}})
		if status != 200 {
			t.Fatalf("a token for api://AzureADTokenExchange: %d %s", status, body)
		}
		var r struct {
			AccessToken string `json:"access_token"`
		}
		must(t, json.Unmarshal([]byte(body), &r))
		f.addSecret(r.AccessToken)
		app, err := f.s.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "trusts-mi", ServicePrincipal: true})
		must(t, err)
		issuer := f.s.Authority.Issuer(f.tenant)
		_, err = f.s.Directory.AddFederated(t.Context(), app.AppID, directory.FederatedCredential{Name: "from-mi", Issuer: issuer,
			Subject: f.mi.PrincipalID, Audiences: []string{"api://AzureADTokenExchange"}})
		must(t, err)
		exchange := func(assertion string) *tokenResponse {
			return f.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion}, "scope": {"https://management.azure.com/.default"}})
		}
		tr := exchange(r.AccessToken)
		if tr.status != 200 {
			t.Fatalf("the identity's token as the application's assertion: %d %s %s", tr.status, tr.Error, tr.Description)
		}
		if c := f.claims(t, tr.AccessToken, authority.ManagementAudiences...); c.Principal.ClientID != app.AppID {
			t.Fatalf("the token is %s's, want the application's", c.Principal.ClientID)
		}
		f.addSecret(tr.AccessToken)
		// A token of the same issuer for another audience, or tampered, is refused.
		mgmtStatus, mgmtBody := f.msiGet(t, secret, mgmt)
		must(t, json.Unmarshal([]byte(mgmtBody), &r))
		if mgmtStatus != 200 {
			t.Fatalf("%d %s", mgmtStatus, mgmtBody)
		}
		if tr := exchange(r.AccessToken); tr.status != 400 && tr.status != 401 {
			t.Fatalf("an ARM token as the assertion: %d", tr.status)
		}
		status, body = f.msiGet(t, secret, url.Values{"api-version": {"2019-08-01"}, "resource": {"api://AzureADTokenExchange"}})
		must(t, json.Unmarshal([]byte(body), &r))
		tampered := r.AccessToken[:len(r.AccessToken)-6] + "AAAAAA"
		if tr := exchange(tampered); status != 200 || tr.status != 400 && tr.status != 401 || !strings.Contains(tr.Description, "AADSTS700027") {
			t.Fatalf("a tampered assertion: %d %s", tr.status, tr.Description)
		}
	})
}
