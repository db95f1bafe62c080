package authority

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// issuer is an external OIDC issuer on a TLS test server.
type issuer struct {
	srv        *httptest.Server
	key        *rsa.PrivateKey
	kid        atomic.Value
	docHits    atomic.Int32
	jwksHits   atomic.Int32
	wrongIssID bool
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	var err error
	if is.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	is.kid.Store("k1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.docHits.Add(1)
		iss := is.srv.URL
		if is.wrongIssID {
			iss = "https://other.example"
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": is.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": is.kid.Load(), "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(is.key.N.Bytes()), "e": "AQAB"}}})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) token(t *testing.T, kid string, now time.Time) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid})
	c, _ := json.Marshal(map[string]any{"iss": is.srv.URL, "sub": "workload", "aud": "api://AzureADTokenExchange",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()})
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sig, err := (&signingKey{alg: AlgRS256, rsa: is.key}).sign(rand.Reader, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// TestFederatedDiscovery: issuer keys come from the issuer's discovery
// document, are cached, and an unknown kid refetches at most once a minute.
func TestFederatedDiscovery(t *testing.T) {
	is := newIssuer(t)
	c := newClock()
	n := newNode(t, teststore.SQLite(t), testSealer(t), c, Options{HTTPClient: is.srv.Client()})
	ctx := t.Context()
	app, err := n.d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "wl", ServicePrincipal: true})
	must(t, err)
	_, err = n.d.AddFederated(ctx, app.AppID, directory.FederatedCredential{Name: "wl-1", Issuer: is.srv.URL, Subject: "workload"})
	must(t, err)
	grant := func(assertion string) int {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "scope": {"https://management.azure.com/.default"},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {assertion}}
		req := httptest.NewRequest("POST", "/"+n.d.DefaultTenant()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux := http.NewServeMux()
		n.a.Mount(mux)
		mux.ServeHTTP(w, req)
		return w.Code
	}
	for range 3 {
		if code := grant(is.token(t, "k1", c.Now())); code != 200 {
			t.Fatalf("federated grant: %d", code)
		}
	}
	if is.docHits.Load() != 1 || is.jwksHits.Load() != 1 {
		t.Fatalf("fetched the document %d and the keys %d times for 3 grants, want once each", is.docHits.Load(), is.jwksHits.Load())
	}
	// Unknown kids: one refetch, then none for a minute.
	c.Advance(61 * time.Second)
	for range 5 {
		if code := grant(is.token(t, "k9", c.Now())); code != 401 {
			t.Fatalf("unknown kid: %d", code)
		}
	}
	if is.jwksHits.Load() != 2 {
		t.Fatalf("unknown kids caused %d key fetches, want 1 more", is.jwksHits.Load()-1)
	}
	// The issuer rotates to k9; after the minute, the next grant refetches.
	is.kid.Store("k9")
	c.Advance(61 * time.Second)
	if code := grant(is.token(t, "k9", c.Now())); code != 200 {
		t.Fatalf("after the issuer's rotation: %d", code)
	}
	// The issuer goes away: cached keys keep working (static stability).
	is.srv.Close()
	c.Advance(2 * federationTTL)
	if code := grant(is.token(t, "k9", c.Now())); code != 200 {
		t.Fatalf("issuer unreachable, cached keys: %d", code)
	}
}

func TestFederatedIssuerMismatch(t *testing.T) {
	is := newIssuer(t)
	is.wrongIssID = true
	f := newFederation(is.srv.Client(), time.Now, nil)
	if _, err := f.fetch(t.Context(), is.srv.URL); err == nil {
		t.Fatal("a discovery document naming another issuer was accepted")
	}
}

// TestIdentityHeaderExpiry: a header stops working at its expiry.
func TestIdentityHeaderExpiry(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		c := newClock()
		n := newNode(t, store, testSealer(t), c, Options{})
		n.a.SetMSIEndpoint("http://127.0.0.1:1/msi/token")
		ctx := t.Context()
		mi, err := n.d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"})
		must(t, err)
		h, secret, err := n.a.CreateIdentityHeader(ctx, "me", mi, 10*time.Minute)
		must(t, err)
		if h.Endpoint != "http://127.0.0.1:1/msi/token" || h.ClientID != mi.ClientID {
			t.Fatalf("header %+v", h)
		}
		get := func() int {
			req := httptest.NewRequest("GET", "/msi/token?api-version=2019-08-01&resource=https://vault.localhost:8443", nil)
			req.Header.Set("X-IDENTITY-HEADER", secret)
			w := httptest.NewRecorder()
			n.a.MSIHandler().ServeHTTP(w, req)
			return w.Code
		}
		if code := get(); code != 200 {
			t.Fatalf("fresh header: %d", code)
		}
		c.Advance(10 * time.Minute)
		if code := get(); code != 401 {
			t.Fatalf("expired header: %d", code)
		}
		if _, _, err := n.a.CreateIdentityHeader(ctx, "me", mi, 30*24*time.Hour); err == nil {
			t.Fatal("a header lifetime beyond the maximum was accepted")
		}
		// Deleting the identity kills its headers.
		_, secret, err = n.a.CreateIdentityHeader(ctx, "me", mi, 0)
		must(t, err)
		must(t, n.d.DeleteManagedIdentity(ctx, mi.ResourceID))
		if code := get(); code != 401 {
			t.Fatalf("header of a deleted identity: %d", code)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAssertionReuseAcrossNodes: a certificate assertion is accepted again,
// on any node, for the same scope and for another — MSAL Node and MSAL
// Python reuse one signed assertion until it expires, as Entra allows —
// and refused once it has expired.
func TestAssertionReuseAcrossNodes(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		c := newClock()
		c.ns.Store(time.Now().UnixNano()) // the certificate's validity is real time
		sealer := testSealer(t)
		a, b := newNode(t, store, sealer, c, Options{}), newNode(t, store, sealer, c, Options{})
		ctx := t.Context()
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		must(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: c.Now().Add(-time.Hour), NotAfter: c.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(t, err)
		app, err := a.d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "replay", ServicePrincipal: true})
		must(t, err)
		_, err = a.d.AddCertificate(ctx, app.AppID, directory.CertificateSpec{Data: der})
		must(t, err)
		b.sync(t)
		// x5t (SHA-1) in base64url, as MSAL Python sends it, RS256.
		sum := sha1.Sum(der)
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "x5t": base64.RawURLEncoding.EncodeToString(sum[:])})
		cl, _ := json.Marshal(map[string]any{"aud": "https://localhost:8443/adfs/oauth2/token", "iss": app.AppID, "sub": app.AppID,
			"jti": gatehouse.NewGUID(), "exp": c.Now().Add(10 * time.Minute).Unix()})
		input := b64.EncodeToString(h) + "." + b64.EncodeToString(cl)
		sig, err := (&signingKey{alg: AlgRS256, rsa: key}).sign(rand.Reader, []byte(input))
		must(t, err)
		assertion := input + "." + b64.EncodeToString(sig)
		post := func(n *node, scope string) (int, string) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "scope": {scope},
				"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {assertion}}
			req := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			mux := http.NewServeMux()
			n.a.Mount(mux)
			mux.ServeHTTP(w, req)
			return w.Code, w.Body.String()
		}
		const cogs, mgmt = "https://cognitiveservices.azure.com/.default", "https://management.azure.com/.default"
		if code, body := post(a, cogs); code != 200 {
			t.Fatalf("first use on node a: %d %s", code, body)
		}
		for _, n := range []*node{a, b} {
			if code, body := post(n, cogs); code != 200 {
				t.Fatalf("the same assertion for the same scope again: %d %s", code, body)
			}
		}
		if code, body := post(b, mgmt); code != 200 {
			t.Fatalf("same assertion, another scope, node b: %d %s", code, body)
		}
		c.Advance(20 * time.Minute) // past exp and the clock skew
		if code, body := post(b, cogs); code != 401 || !strings.Contains(body, "AADSTS700024") {
			t.Fatalf("expired assertion: %d %s", code, body)
		}
	})
}

func TestDecodeThumbprint(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(250 - i) // bytes that produce + and / in standard base64
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if got := decodeThumbprint(enc.EncodeToString(raw), 32); string(got) != string(raw) {
			t.Fatalf("%v: %x", enc, got)
		}
	}
	if decodeThumbprint(base64.StdEncoding.EncodeToString(raw[:20]), 32) != nil {
		t.Fatal("a 20-byte value passed as SHA-256")
	}
}

// TestCloudShellMSI: the Cloud Shell protocol (a form POST to MSI_ENDPOINT,
// as az login --identity sends it) with the identity header in the query.
func TestCloudShellMSI(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		c := newClock()
		n := newNode(t, store, testSealer(t), c, Options{})
		ctx := t.Context()
		mi, err := n.d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cs"})
		must(t, err)
		_, secret, err := n.a.CreateIdentityHeader(ctx, "me", mi, 10*time.Minute)
		must(t, err)
		post := func(query string, form url.Values, metadata bool) (int, map[string]any) {
			req := httptest.NewRequest("POST", "/msi/token"+query, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if metadata {
				req.Header.Set("Metadata", "true")
			}
			w := httptest.NewRecorder()
			n.a.MSIHandler().ServeHTTP(w, req)
			var body map[string]any
			json.Unmarshal(w.Body.Bytes(), &body)
			return w.Code, body
		}
		q := "?" + url.Values{"identity-header": {secret}}.Encode()
		mgmt := url.Values{"resource": {"https://management.core.windows.net/"}}
		code, body := post(q, mgmt, true)
		if code != 200 {
			t.Fatalf("token: %d %v", code, body)
		}
		for _, k := range []string{"access_token", "expires_on", "expires_in", "not_before", "resource", "client_id"} {
			if _, ok := body[k].(string); !ok {
				t.Errorf("%s is not a string: %v", k, body[k])
			}
		}
		claims, err := n.a.Verify(ctx, body["access_token"].(string), "https://management.core.windows.net/")
		must(t, err)
		if claims.Principal.ObjectID != mi.PrincipalID || body["client_id"] != mi.ClientID {
			t.Errorf("token of %s, want %s", claims.Principal.ObjectID, mi.PrincipalID)
		}
		for _, tt := range []struct {
			name   string
			query  string
			form   url.Values
			meta   bool
			status int
		}{
			{"no-metadata", q, mgmt, false, 400},
			{"no-header", "", mgmt, true, 401},
			{"wrong-header", "?identity-header=nope", mgmt, true, 401},
			{"no-resource", q, url.Values{}, true, 400},
			{"unknown-resource", q, url.Values{"resource": {"https://evil.example"}}, true, 400},
			{"other-client-id", q, url.Values{"resource": mgmt["resource"], "client_id": {gatehouse.NewGUID()}}, true, 400},
			{"own-client-id", q, url.Values{"resource": mgmt["resource"], "client_id": {mi.ClientID}}, true, 200},
			{"own-resource-id", q, url.Values{"resource": mgmt["resource"], "msi_res_id": {mi.ResourceID}}, true, 200},
		} {
			if code, body := post(tt.query, tt.form, tt.meta); code != tt.status {
				t.Errorf("%s: %d %v, want %d", tt.name, code, body, tt.status)
			}
		}
		c.Advance(10 * time.Minute)
		if code, _ := post(q, mgmt, true); code != 401 {
			t.Errorf("expired header: %d", code)
		}
	})
}

// TestIssuerClientStaysOut: the client that fetches federated issuers'
// documents never dials a link-local address (cloud metadata) and follows
// redirects only to https, at most three.
func TestIssuerClientStaysOut(t *testing.T) {
	c := issuerClient()
	for _, u := range []string{"https://169.254.169.254/.well-known/openid-configuration", "http://[fe80::1]:80/keys"} {
		_, err := c.Get(u)
		if !errors.Is(err, errIssuerNotAllowed) {
			t.Errorf("GET %s: %v, want errIssuerNotAllowed", u, err)
		}
	}
	req := func(u string) *http.Request {
		r, _ := http.NewRequest("GET", u, nil)
		return r
	}
	if issuerRedirect(req("http://127.0.0.1:19851/latest/meta-data/"), nil) == nil {
		t.Error("a redirect to http was followed")
	}
	if issuerRedirect(req("https://issuer.example/keys"), make([]*http.Request, 3)) == nil {
		t.Error("a fourth redirect was followed")
	}
	if err := issuerRedirect(req("https://issuer.example/keys"), make([]*http.Request, 1)); err != nil {
		t.Errorf("an https redirect: %v", err)
	}
}
