package compattest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// createPrincipal creates a service principal with a secret.
func (e *env) createPrincipal(t *testing.T, name string) principal {
	t.Helper()
	app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	must(t, err)
	_, secret, err := e.Directory.AddSecret(t.Context(), app.AppID, directory.SecretSpec{DisplayName: "compat"})
	must(t, err)
	return principal{clientID: app.AppID, objectID: app.ObjectID, secret: secret}
}

// createCertPrincipal creates a service principal with a certificate and
// writes the certificate and its key (PKCS#8) to one PEM file, the form
// AZURE_CLIENT_CERTIFICATE_PATH takes.
func (e *env) createCertPrincipal(t *testing.T, name string) (principal, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	must(t, err)
	_, err = e.Directory.AddCertificate(t.Context(), app.AppID, directory.CertificateSpec{Data: certPEM})
	must(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	file := filepath.Join(e.work, name+".pem")
	must(t, os.WriteFile(file, append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), 0o600))
	return principal{clientID: app.AppID, objectID: app.ObjectID}, file
}

// createFederatedPrincipal creates a service principal that trusts tokens
// of an external issuer (a Kubernetes-style service-account token, the
// key set given with the credential) and writes one such token to the
// file AZURE_FEDERATED_TOKEN_FILE names.
func (e *env) createFederatedPrincipal(t *testing.T, name string) (principal, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": "AQAB"}}})
	must(t, err)
	issuer, subject := "https://issuer.example.test/"+name, "system:serviceaccount:apps:"+name
	app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: name, ServicePrincipal: true})
	must(t, err)
	_, err = e.Directory.AddFederated(t.Context(), app.AppID, directory.FederatedCredential{Name: "k8s", Issuer: issuer,
		Subject: subject, JWKS: jwks})
	must(t, err)
	now := time.Now()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		must(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}) + "." + enc(map[string]any{"iss": issuer, "sub": subject,
		"aud": []string{directory.DefaultFederatedAudience}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	must(t, err)
	file := filepath.Join(e.work, name+".jwt")
	must(t, os.WriteFile(file, []byte(input+"."+base64.RawURLEncoding.EncodeToString(sig)), 0o600))
	return principal{clientID: app.AppID, objectID: app.ObjectID}, file
}

// scopes every identity scenario asks tokens for, and the audiences the
// tokens must verify against.
func (e *env) tokenScopes() map[string][]string {
	return map[string][]string{
		"https://management.azure.com/.default":        authority.ManagementAudiences,
		"https://cognitiveservices.azure.com/.default": authority.CognitiveServicesAudiences,
		"https://ai.azure.com/.default":                authority.AIAudiences,
		e.Authority.VaultResource() + "/.default":      e.Authority.VaultAudiences(),
	}
}

type tokenResult struct {
	Token              string `json:"token"`
	ExpiresOnTimestamp int64  `json:"expiresOnTimestamp"`
	Cached             bool   `json:"cached"`
	TokenType          string `json:"tokenType"`
}

// checkTokens asserts that every scope got a cached, verifiable token for
// the principal with object id oid, living about the configured hour.
func (e *env) checkTokens(t *testing.T, s steps, oid string) {
	t.Helper()
	s.value(t, "credential", nil)
	for scope, auds := range e.tokenScopes() {
		var tok tokenResult
		s.value(t, scope, &tok)
		c := e.verify(t, tok.Token, auds...)
		if c.Principal.ObjectID != oid {
			t.Errorf("%s: token for %s, want %s", scope, c.Principal.ObjectID, oid)
		}
		if c.Principal.TenantID != e.Directory.DefaultTenant() {
			t.Errorf("%s: tid %s", scope, c.Principal.TenantID)
		}
		if !tok.Cached {
			t.Errorf("%s: the second getToken did not come from the cache", scope)
		}
		// expiresOnTimestamp is what the SDK computed from expires_in.
		if left := time.Until(time.UnixMilli(tok.ExpiresOnTimestamp)); left < 50*time.Minute || left > 70*time.Minute {
			t.Errorf("%s: expiresOnTimestamp is %v away", scope, left)
		}
		if d := time.UnixMilli(tok.ExpiresOnTimestamp).Sub(c.Expires); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: expiresOnTimestamp %v, token exp %v", scope, time.UnixMilli(tok.ExpiresOnTimestamp), c.Expires)
		}
	}
}

func (e *env) scopeArgs() []string {
	var out []string
	for s := range e.tokenScopes() {
		out = append(out, s)
	}
	return out
}

// testIdentity: each @azure/identity credential — client secret,
// certificate, workload identity, and EnvironmentCredential and
// DefaultAzureCredential over them — configured by the environment
// (tenant adfs) or with disableInstanceDiscovery and the tenant GUID, gets
// verifiable, cached tokens for the management API, the AI data plane and
// Key Vault; a wrong secret and an unknown resource fail with Entra's
// errors. (MSAL Node reuses one certificate assertion for every scope:
// the second scope used to fail with AADSTS700235.) People sign in with
// a device code and a browser, and a web API calls a vault on a person's
// behalf (testOnBehalfOf).
func testIdentity(t *testing.T, e *env) {
	tenant := e.Directory.DefaultTenant()
	secretEnv := e.identityEnv(e.app)
	guidEnv := e.identityEnv(e.app)
	guidEnv["AZURE_TENANT_ID"] = tenant
	certEnv := map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
		"AZURE_CLIENT_ID": e.certApp.clientID, "AZURE_CLIENT_CERTIFICATE_PATH": e.certFile}
	certGUIDEnv := map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": tenant,
		"AZURE_CLIENT_ID": e.certApp.clientID, "AZURE_CLIENT_CERTIFICATE_PATH": e.certFile}
	fedApp, fedFile := e.createFederatedPrincipal(t, "compat-js-workload")
	fedEnv := map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
		"AZURE_CLIENT_ID": fedApp.clientID, "AZURE_FEDERATED_TOKEN_FILE": fedFile}
	for _, tt := range []struct {
		name, mode string
		vars       map[string]string
		oid        string
	}{
		{"client-secret-adfs", "client-secret", secretEnv, e.app.objectID},
		{"client-secret-guid-tenant", "client-secret-guid", guidEnv, e.app.objectID},
		{"environment-secret", "environment", secretEnv, e.app.objectID},
		{"default-secret", "default", secretEnv, e.app.objectID},
		{"client-certificate-adfs", "client-certificate", certEnv, e.certApp.objectID},
		{"client-certificate-guid-tenant", "client-certificate-guid", certGUIDEnv, e.certApp.objectID},
		{"environment-certificate", "environment", certEnv, e.certApp.objectID},
		{"default-certificate", "default", certEnv, e.certApp.objectID},
		{"workload-identity", "workload-identity", fedEnv, fedApp.objectID},
		{"default-workload-identity", "default", fedEnv, fedApp.objectID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := e.node(t, tt.vars, "identity.mjs", append([]string{tt.mode}, e.scopeArgs()...)...)
			e.checkTokens(t, s, tt.oid)
		})
	}
	t.Run("wrong-secret", func(t *testing.T) {
		t.Parallel()
		vars := e.identityEnv(e.app)
		vars["AZURE_CLIENT_SECRET"] = "not-the-secret-" + strings.Repeat("x", 30)
		s := e.node(t, vars, "identity.mjs", "client-secret", "https://management.azure.com/.default")
		// @azure/identity turns MSAL's ServerError into an
		// AuthenticationRequiredError that keeps Entra's message.
		err := s.err(t, "https://management.azure.com/.default")
		if err.Name != "AuthenticationRequiredError" || !strings.Contains(err.Message, "invalid_client") ||
			!strings.Contains(err.Message, "AADSTS7000215") {
			t.Fatalf("wrong secret: %s", err)
		}
	})
	t.Run("unknown-resource", func(t *testing.T) {
		t.Parallel()
		s := e.node(t, e.identityEnv(e.app), "identity.mjs", "client-secret", "https://unknown.example.test/.default")
		err := s.err(t, "https://unknown.example.test/.default")
		if err.Name != "AuthenticationRequiredError" || !strings.Contains(err.Message, "invalid_resource") ||
			!strings.Contains(err.Message, "AADSTS500011") {
			t.Fatalf("unknown resource: %s", err)
		}
	})
	t.Run("device-code", func(t *testing.T) {
		// A person signs the app in from a browser (the script's prompt
		// callback approves the code on the portal's device page): one
		// prompt, then every resource's token from the session.
		t.Parallel()
		const pw = "js device-code password"
		person, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "jsdev@example.test", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		s := e.node(t, map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
			"DEVICE_USER": person.UserName, "DEVICE_PASSWORD": pw}, "identity.mjs", append([]string{"device-code"}, e.scopeArgs()...)...)
		e.checkTokens(t, s, person.ObjectID)
		var prompts int
		if s.value(t, "prompts", &prompts); prompts != 1 {
			t.Fatalf("the person was asked %d times, want once", prompts)
		}
		e.AssertNotLogged(t, pw)
	})
	t.Run("interactive-browser", func(t *testing.T) {
		// MSAL Node opens "the system browser" (the test's, through the
		// xdg-open that the open package bundles) at the authorize URL;
		// the person signs in to the portal there, once for every scope.
		t.Parallel()
		const pw = "js browser password"
		person, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "jsweb@example.test", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		urls, vars := testenv.FakeBrowserEnv(t)
		var opened atomic.Int32
		go func() {
			for u := range urls {
				opened.Add(1)
				e.BrowserSignIn(t, u, person.UserName, pw, true)
			}
		}()
		vars["AZURE_AUTHORITY_HOST"], vars["AZURE_TENANT_ID"] = e.URL, "adfs"
		s := e.node(t, vars, "identity.mjs", append([]string{"interactive-browser"}, e.scopeArgs()...)...)
		e.checkTokens(t, s, person.ObjectID)
		if n := opened.Load(); n != 1 {
			t.Fatalf("the browser opened %d times, want once", n)
		}
		e.AssertNotLogged(t, pw)
	})
	t.Run("on-behalf-of", func(t *testing.T) {
		t.Parallel()
		testOnBehalfOf(t, e)
	})
}

// testAzureCLICredential: after `az login` to the node (a developer's
// machine), AzureCliCredential and DefaultAzureCredential — which falls
// through to it — get tokens from az. Needs az (skips without it, except
// under CI=true).
func testAzureCLICredential(t *testing.T, e *env) {
	azPath, err := exec.LookPath("az")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("az is not installed; CI=true: the suite must run")
		}
		t.Skip("az is not installed")
	}
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{"endpoints": map[string]string{
		"resourceManager": e.URL + "/", "activeDirectory": e.URL + "/adfs",
		"activeDirectoryResourceId": "https://management.core.windows.net/", "activeDirectoryGraphResourceId": "https://graph.windows.net/"}})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "cloud.json"), cfg, 0o600))
	azEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AZURE_CONFIG_DIR=" + dir, "REQUESTS_CA_BUNDLE=" + e.CAFile,
		"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_ONLY_SHOW_ERRORS=true"}
	for _, args := range [][]string{
		{"cloud", "register", "-n", "Gatehouse", "--cloud-config", "@" + filepath.Join(dir, "cloud.json")},
		{"cloud", "set", "-n", "Gatehouse"},
		{"login", "--service-principal", "-u", e.app.clientID, "-p", e.app.secret, "--tenant", e.Directory.DefaultTenant(), "--allow-no-subscriptions"},
	} {
		cmd := exec.CommandContext(t.Context(), azPath, args...)
		cmd.Env = azEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("az %s: %v: %s", args[0], err, e.redact(string(out)))
		}
	}
	for _, mode := range []string{"azure-cli", "default"} {
		t.Run(mode, func(t *testing.T) {
			s := e.runScript(t, nil, append(azEnv, "NODE_EXTRA_CA_CERTS="+e.CAFile), "identity.mjs", append([]string{mode}, e.scopeArgs()...)...)
			e.checkTokens(t, s, e.app.objectID)
		})
	}
}

// gatehouseRun returns a prefix that runs a command inside `gatehouse run
// --identity identity`, with the CLI signed in as the bootstrap principal.
func (e *env) gatehouseRun(t *testing.T, identity string) func(argv []string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	env := cli.Env{Stdin: strings.NewReader(""), LookupEnv: func(k string) (string, bool) {
		if k == "GATEHOUSE_CONFIG_DIR" {
			return dir, true
		}
		return "", false
	}}
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	if code := cli.Main(t.Context(), []string{"login", "--bootstrap-file", filepath.Join(e.DataDir, "bootstrap.json"), "-o", "none"}, env); code != 0 {
		t.Fatalf("gatehouse login: exit %d: %s", code, errb.String())
	}
	return func(argv []string) (string, string, error) {
		var out, errb bytes.Buffer
		env.Stdout, env.Stderr = &out, &errb
		if code := cli.Main(t.Context(), append([]string{"run", "--identity", identity, "--"}, argv...), env); code != 0 {
			return out.String(), errb.String(), &exitError{code}
		}
		return out.String(), errb.String(), nil
	}
}

type exitError struct{ code int }

func (e *exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }

// testManagedIdentity: inside `gatehouse run --identity`, which sets only
// IDENTITY_ENDPOINT, IDENTITY_HEADER, the authority host and the CA
// variables, ManagedIdentityCredential (system-assigned form, by client
// id, by resource id) and DefaultAzureCredential get tokens for the
// identity, and an app reads a Key Vault secret with
// DefaultAzureCredential (the vault's challenge names tenant adfs).
func testManagedIdentity(t *testing.T, e *env) {
	oid := *e.mi.Properties.PrincipalID
	run := e.gatehouseRun(t, *e.mi.Name)
	base := []string{"HOME=" + t.TempDir()}
	for _, tt := range []struct {
		name, mode string
		vars       []string
	}{
		{"managed-identity-credential", "managed-identity", nil},
		{"by-client-id", "managed-identity-client-id", []string{"APP_IDENTITY_CLIENT_ID=" + *e.mi.Properties.ClientID}},
		{"by-resource-id", "managed-identity-resource-id", []string{"APP_IDENTITY_RESOURCE_ID=" + *e.mi.ID}},
		{"default-azure-credential", "default", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := e.runScript(t, run, append(base, tt.vars...), "identity.mjs", append([]string{tt.mode}, e.scopeArgs()...)...)
			e.checkTokens(t, s, oid)
		})
	}
	t.Run("keyvault-read", func(t *testing.T) {
		vars := e.identityEnv(e.app)
		vars["KEYVAULT_URL"] = e.vaultURL
		writer := e.node(t, vars, "keyvault.mjs", "set", "mi-readable", "read-by-the-identity")
		writer.value(t, "set", nil)
		s := e.runScript(t, run, append(base, "KEYVAULT_URL="+e.vaultURL, "SECRET_NAME=mi-readable"), "keyvault.mjs", "read")
		var got secretResult
		s.value(t, "get", &got)
		if got.Value != "read-by-the-identity" {
			t.Fatalf("managed identity read %q", got.Value)
		}
	})
}
