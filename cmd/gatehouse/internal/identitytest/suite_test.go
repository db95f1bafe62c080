package identitytest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// TestIdentity runs the whole identity suite against a real node, on
// SQLite and PostgreSQL, and on SQLite once more with the clients on
// HTTP/1.1. Groups that set process environment
// variables (azidentity reads them) run sequentially; the others run their
// cases in parallel.
func TestIdentity(t *testing.T) {
	for _, b := range testenv.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := testenv.Start(t, b.Opts(t)...)
			if b.HTTP1 {
				s.HTTP1()
				s.AssertFastPathServed(t, 50)
			}
			f := newFixture(t, s)
			t.Run("discovery", f.testDiscovery)
			t.Run("azidentity", f.testAzidentity)
			t.Run("token-errors", f.testTokenErrors)
			t.Run("managed-identity", f.testManagedIdentity)
			t.Run("graph", f.testGraph)
			t.Run("cli", f.testCLI)
			t.Run("device-code", f.testDeviceCode)
			t.Run("interactive-browser", f.testInteractiveBrowser)
			t.Run("web-app", f.testWebApp)
			t.Run("workload-identity-managed", f.testWorkloadIdentityMI)
			t.Run("audit", f.testAudit)
			f.assertNoSecretsLogged(t)
		})
	}
}

// fixture is the directory content the suite works with, created through
// the directory API (the Graph API has its own tests).
type fixture struct {
	s      *testenv.Server
	tenant string

	// app: a service principal with a secret and a certificate.
	app        *directory.Application
	secret     string
	certPEM    string // certificate + key, for AZURE_CLIENT_CERTIFICATE_PATH
	certFile   string
	certKey    *rsa.PrivateKey
	cert       *x509.Certificate
	otherKey   *rsa.PrivateKey // not registered anywhere
	otherCert  *x509.Certificate
	fedIssuer  string
	fedSubject string
	fedKey     *rsa.PrivateKey // the external issuer's key (static JWKS)
	mi         *directory.ManagedIdentity
	dir        string

	mu      sync.Mutex
	secrets []string // everything that must never reach a log
}

func newFixture(t *testing.T, s *testenv.Server) *fixture {
	t.Helper()
	ctx := t.Context()
	d := s.Directory
	f := &fixture{s: s, tenant: d.DefaultTenant(), dir: t.TempDir(),
		fedIssuer: "https://issuer.example.test/" + gatehouse.NewGUID(), fedSubject: "system:serviceaccount:apps:web"}
	var err error
	f.app, err = d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "suite-app", ServicePrincipal: true})
	must(t, err)
	_, f.secret, err = d.AddSecret(ctx, f.app.AppID, directory.SecretSpec{End: time.Now().Add(time.Hour)})
	must(t, err)
	f.certKey, f.cert = newCert(t, "suite-app")
	f.otherKey, f.otherCert = newCert(t, "stranger")
	_, err = d.AddCertificate(ctx, f.app.AppID, directory.CertificateSpec{Data: pemCert(f.cert)})
	must(t, err)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(f.certKey)
	f.certPEM = string(pemCert(f.cert)) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	f.certFile = filepath.Join(f.dir, "sp.pem")
	must(t, os.WriteFile(f.certFile, []byte(f.certPEM), 0o600))

	f.fedKey, err = rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(f.fedKey.N.Bytes()), "e": "AQAB"}}})
	_, err = d.AddFederated(ctx, f.app.AppID, directory.FederatedCredential{Name: "k8s", Issuer: f.fedIssuer,
		Subject: f.fedSubject, JWKS: jwks})
	must(t, err)
	f.app, err = d.Application(f.app.AppID)
	must(t, err)

	f.mi, err = d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
		ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/suite/providers/Microsoft.ManagedIdentity/userAssignedIdentities/suite-web"})
	must(t, err)
	f.addSecret(f.secret, s.Bootstrap.ClientSecret)
	return f
}

func (f *fixture) addSecret(s ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, s...)
}

// auditActions returns the audit log's entries as "action result" counts,
// failing the test if any record holds a secret the suite saw.
func (f *fixture) auditActions(t *testing.T) map[string]int {
	var after int64
	actions := map[string]int{}
	for {
		recs, err := f.s.Store.ListAudit(context.Background(), after, 1000)
		must(t, err)
		if len(recs) == 0 {
			return actions
		}
		for _, r := range recs {
			after = r.Seq
			for _, sec := range f.secrets {
				if sec != "" && strings.Contains(string(r.Data), sec) {
					t.Errorf("audit record %d holds a secret (%.4s…)", r.Seq, sec)
				}
			}
			var e struct{ Action, Result string }
			json.Unmarshal(r.Data, &e)
			actions[e.Action+" "+e.Result]++
		}
	}
}

// testAudit: the directory's writes and identity-header use were audited
// (allowed and denied).
func (f *fixture) testAudit(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	actions := f.auditActions(t)
	for _, want := range []string{"POST /v1.0/applications/{id}/addPassword Succeeded", "POST /v1.0/applications Succeeded",
		"Gatehouse/identityHeaders/create Succeeded", "Gatehouse/identityHeaders/create Denied",
		"Gatehouse/identityHeaders/delete Succeeded", "POST /v1.0/applications Denied"} {
		if actions[want] == 0 {
			t.Errorf("no audit entry %q (have %v)", want, actions)
		}
	}
}

// assertNoSecretsLogged checks the logs, the banner and the audit log for
// every secret, token and identity header the suite saw.
func (f *fixture) assertNoSecretsLogged(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.AssertNotLogged(t, f.secrets...)
	f.auditActions(t)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newCert makes a self-signed RSA certificate valid for a day.
func newCert(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	return testenv.SelfSignedRSA(t, cn)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// signJWT signs claims with header fields and an RSA key (RS256 or PS256).
func signJWT(t testing.TB, alg string, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	}
	must(t, err)
	return input + "." + enc.EncodeToString(sig)
}

// assertion builds a certificate client assertion for the app.
func (f *fixture) assertion(t testing.TB, alg string, key *rsa.PrivateKey, cert *x509.Certificate, mod func(h, c map[string]any)) string {
	t.Helper()
	sum := sha256.Sum256(cert.Raw)
	h := map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(sum[:])}
	now := time.Now()
	c := map[string]any{"aud": f.s.URL + "/" + f.tenant + "/oauth2/v2.0/token", "iss": f.app.AppID, "sub": f.app.AppID,
		"jti": gatehouse.NewGUID(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	if mod != nil {
		mod(h, c)
	}
	return signJWT(t, alg, key, h, c)
}

// federatedToken is a token of the external issuer for the app's
// federated credential.
func (f *fixture) federatedToken(t testing.TB, mod func(h, c map[string]any)) string {
	t.Helper()
	now := time.Now()
	h := map[string]any{"kid": "k1"}
	c := map[string]any{"iss": f.fedIssuer, "sub": f.fedSubject, "aud": []string{directory.DefaultFederatedAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mod != nil {
		mod(h, c)
	}
	return signJWT(t, "RS256", f.fedKey, h, c)
}

// tokenResponse is the token endpoint's answer, success or error.
type tokenResponse struct {
	status        int
	contentType   string
	AccessToken   string `json:"access_token"`
	TokenType     string `json:"token_type"`
	ExpiresIn     any    `json:"expires_in"`
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	raw           string
}

// postForm posts a raw body to path on the node.
func (f *fixture) postForm(t testing.TB, path, contentType, body string, hdr http.Header) *tokenResponse {
	t.Helper()
	return f.sendForm(t, http.MethodPost, path, contentType, body, hdr)
}

func (f *fixture) sendForm(t testing.TB, method, path, contentType, body string, hdr http.Header) *tokenResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.s.URL+path, strings.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := f.s.Client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	tr := &tokenResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(data)}
	if err := json.Unmarshal(data, tr); err != nil {
		t.Fatalf("token endpoint answered non-JSON (%d): %q", resp.StatusCode, data)
	}
	if tr.AccessToken != "" {
		f.addSecret(tr.AccessToken)
	}
	return tr
}

func (f *fixture) token(t testing.TB, form url.Values) *tokenResponse {
	t.Helper()
	return f.postForm(t, "/"+f.tenant+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", form.Encode(), nil)
}

// claims verifies tok with the node's verifier for aud.
func (f *fixture) claims(t testing.TB, tok string, aud ...string) *authority.Claims {
	t.Helper()
	if len(aud) == 0 {
		aud = authority.ManagementAudiences
	}
	c, err := f.s.Authority.Verify(t.Context(), tok, aud...)
	if err != nil {
		t.Fatalf("the token does not verify: %v", err)
	}
	return c
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
