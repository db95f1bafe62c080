package gatewaytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/gateway"
)

// testRefusals is the negative table: every refusal has Azure's status and
// code, none is a 500.
func testRefusals(t *testing.T, e *env) {
	a := e.createAccount(t, "refuse-a", "AIServices", nil)
	b := e.createAccount(t, "refuse-b", "AIServices", nil)
	off := e.createAccount(t, "refuse-nolocal", "AIServices", &armcognitiveservices.AccountProperties{DisableLocalAuth: ptr(true)})
	e.deploy(t, a, "chat", "m")
	_, noRole := e.principal(t, "refuse-norole", a, "")
	noRoleTok := e.Token(t, noRole, "https://cognitiveservices.azure.com/.default")
	mgmtTok := e.Token(t, noRole, "https://management.azure.com/.default")
	sts := e.sts(t, a.endpoint, a.key1)

	chatURL := a.endpoint + "openai/deployments/chat/chat/completions?api-version=" + openAIVersion
	langURL := a.endpoint + languagePath
	chatBody := `{"messages":[{"role":"user","content":"hi"}]}`
	langBody := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello"}]}}`
	k := keyHeader(a.key1)
	tests := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"missing-credential", call{url: langURL, body: langBody}, 401, "401"},
		{"wrong-key", call{url: langURL, header: keyHeader(strings.Repeat("0", 64)), body: langBody}, 401, "401"},
		{"other-accounts-key", call{url: langURL, header: keyHeader(b.key1), body: langBody}, 401, "401"},
		{"other-accounts-sts-token", call{url: b.endpoint + languagePath, header: bearer(sts), body: langBody}, 401, "401"},
		{"disabled-local-auth-key", call{url: off.endpoint + languagePath, header: keyHeader(off.key1), body: langBody}, 403, "AuthenticationTypeDisabled"},
		{"disabled-local-auth-sts", call{url: off.endpoint + "sts/v1.0/issueToken", header: keyHeader(off.key2)}, 403, "AuthenticationTypeDisabled"},
		{"expired-sts-token", call{url: langURL, header: bearer(pastToken(t, e, a)), body: langBody}, 401, "401"},
		{"foreign-token-unknown-kid", call{url: langURL, header: bearer(foreignToken(t, e, a, "")), body: langBody}, 401, "401"},
		{"foreign-token-real-kid", call{url: langURL, header: bearer(foreignToken(t, e, a, activeKid(t, e))), body: langBody}, 401, "401"},
		{"tampered-sts-token", call{url: langURL, header: bearer(tamper(t, sts)), body: langBody}, 401, "401"},
		{"management-token", call{url: langURL, header: bearer(mgmtTok), body: langBody}, 401, "401"},
		{"identity-without-data-role", call{url: langURL, header: bearer(noRoleTok), body: langBody}, 401, "PermissionDenied"},
		{"unknown-account", call{url: e.URL + "/ai/nosuchaccount/" + languagePath, header: k, body: langBody}, 401, "401"},
		{"unknown-deployment", call{url: a.endpoint + "openai/deployments/nope/chat/completions?api-version=" + openAIVersion, header: k, body: chatBody}, 404, "DeploymentNotFound"},
		{"missing-api-version", call{url: a.endpoint + "openai/deployments/chat/chat/completions", header: k, body: chatBody}, 404, "404"},
		{"oversized-body", call{url: chatURL, header: k, body: `{"messages":[],"x":"` + strings.Repeat("x", 17<<20) + `"}`}, 413, "RequestEntityTooLarge"},
		{"malformed-json", call{url: chatURL, header: k, body: `{"messages":[`}, 400, "BadRequest"},
		{"json-array", call{url: chatURL, header: k, body: `[]`}, 400, "BadRequest"},
		{"language-malformed-json", call{url: langURL, header: k, body: `{"kind":`}, 400, "InvalidRequest"},
		{"language-old-api-version", call{url: a.endpoint + "language/:analyze-text?api-version=2021-01-01", header: k, body: langBody}, 400, "InvalidRequest"},
		{"sts-wrong-key", call{url: a.endpoint + "sts/v1.0/issueToken", header: keyHeader("nope")}, 401, "401"},
		{"unknown-route", call{url: a.endpoint + "openai/fine_tuning/jobs", header: k, method: "GET"}, 404, "NotFound"},
		// The dated API wants an api-version, as Azure OpenAI does.
		{"models-without-api-version", call{url: a.endpoint + "openai/models", header: k, method: "GET"}, 404, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.c)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tt.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
		})
	}
	e.AssertNotLogged(t, a.key1, a.key2, b.key1, sts, noRoleTok)
}

// pastToken is a genuine STS token of the node's signing keys, minted an
// hour ago: an authority over the same store whose clock is an hour slow.
func pastToken(t *testing.T, e *env, a *account) string {
	t.Helper()
	past, err := authority.New(authority.Options{Store: e.Store, Sealer: e.Sealer, Directory: e.Directory, Host: e.Host,
		Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := past.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, _, err := past.Issue(t.Context(), gatehouse.Principal{}, gateway.STSAudience, 10*time.Minute,
		map[string]any{gateway.ClaimAccount: a.id, gateway.ClaimSlot: "key1", gateway.ClaimGeneration: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// activeKid reads the node's current signing key id from its JWKS.
func activeKid(t *testing.T, e *env) string {
	t.Helper()
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(e.Authority.JWKS(), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v", err)
	}
	return set.Keys[0].Kid
}

// foreignToken is an STS-shaped token with the node's issuer, signed by a
// key of its own (under kid, or a made-up one).
func foreignToken(t *testing.T, e *env, a *account, kid string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if kid == "" {
		kid = "not-a-gatehouse-key"
	}
	tid := e.Directory.DefaultTenant()
	now := time.Now().Unix()
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": kid})
	payload, _ := json.Marshal(map[string]any{"aud": gateway.STSAudience, "iss": e.URL + "/" + tid + "/v2.0", "tid": tid,
		"iat": now, "nbf": now, "exp": now + 600, "ver": "1.0", gateway.ClaimAccount: a.id, gateway.ClaimSlot: "key1", gateway.ClaimGeneration: 1})
	input := b64(hdr) + "." + b64(payload)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// tamper changes the generation claim of a genuine token, keeping its
// signature.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(payload, &m)
	m[gateway.ClaimGeneration] = 2
	changed, _ := json.Marshal(m)
	return parts[0] + "." + b64(changed) + "." + parts[2]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
