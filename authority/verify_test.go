package authority

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
)

// forge signs an arbitrary header and payload with the node's active key.
func forge(t *testing.T, n *node, header map[string]any, claims map[string]any) string {
	t.Helper()
	st := n.a.keys.Load()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sig, err := st.signer.sign(rand.Reader, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func validClaims(n *node, now time.Time) map[string]any {
	tid := n.d.DefaultTenant()
	return map[string]any{"aud": "https://management.azure.com/", "iss": n.a.Issuer(tid), "tid": tid,
		"oid": gatehouse.NewGUID(), "idtyp": "app", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "uti": "x", "ver": "1.0"}
}

// TestVerifyAttacks is the JWT attack table: every token is rejected as
// invalid (or expired, where that is the truth), cold and after a valid
// token warmed the cache.
func TestVerifyAttacks(t *testing.T) {
	c := newClock()
	n := newNode(t, teststore.SQLite(t), testSealer(t), c, Options{})
	ctx := t.Context()
	now := c.Now()
	kid, _ := n.a.SigningKeyIDs()
	valid, _, err := n.a.Issue(ctx, gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: gatehouse.NewGUID()},
		"https://management.azure.com/", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	enc := func(v any) string { b, _ := json.Marshal(v); return b64.EncodeToString(b) }
	pub, _ := x509.MarshalPKIXPublicKey(n.a.keys.Load().verifiers[kid].pub)
	hs := func(key []byte) string {
		input := enc(map[string]string{"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + parts[1]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return input + "." + b64.EncodeToString(m.Sum(nil))
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := func() string {
		input := enc(map[string]string{"alg": "ES256", "kid": "not-ours", "typ": "JWT"}) + "." + parts[1]
		sk := &signingKey{alg: AlgES256, ec: otherKey}
		sig, _ := sk.sign(rand.Reader, []byte(input))
		return input + "." + b64.EncodeToString(sig)
	}
	foreignSameKid := func() string {
		input := parts[0] + "." + parts[1]
		sk := &signingKey{alg: AlgES256, ec: otherKey}
		sig, _ := sk.sign(rand.Reader, []byte(input))
		return input + "." + b64.EncodeToString(sig)
	}
	tampered := func() string {
		var claims map[string]any
		raw, _ := b64.DecodeString(parts[1])
		json.Unmarshal(raw, &claims)
		claims["oid"] = gatehouse.NewGUID()
		return parts[0] + "." + enc(claims) + "." + parts[2]
	}
	with := func(k string, v any) map[string]any {
		cl := validClaims(n, now)
		if v == nil {
			delete(cl, k)
		} else {
			cl[k] = v
		}
		return cl
	}
	hdr := map[string]any{"alg": AlgES256, "kid": kid, "typ": "JWT"}
	tests := []struct {
		name    string
		token   string
		aud     []string
		expired bool
	}{
		{"alg-none", enc(map[string]string{"alg": "none", "kid": kid}) + "." + parts[1] + ".", nil, false},
		{"alg-none-no-kid", enc(map[string]string{"alg": "none"}) + "." + parts[1] + ".", nil, false},
		{"hs256-with-public-key-der", hs(pub), nil, false},
		{"hs256-with-public-jwks", hs(n.a.JWKS()), nil, false},
		{"alg-rs256-on-es256-key", enc(map[string]string{"alg": "RS256", "kid": kid}) + "." + parts[1] + "." + parts[2], nil, false},
		{"unknown-kid", foreign(), nil, false},
		{"known-kid-wrong-key", foreignSameKid(), nil, false},
		{"missing-kid", enc(map[string]string{"alg": "ES256"}) + "." + parts[1] + "." + parts[2], nil, false},
		{"tampered-payload", tampered(), nil, false},
		{"truncated-signature", parts[0] + "." + parts[1] + "." + parts[2][:20], nil, false},
		{"no-signature", parts[0] + "." + parts[1], nil, false},
		{"four-parts", valid + ".x", nil, false},
		{"crit-header", forge(t, n, map[string]any{"alg": AlgES256, "kid": kid, "crit": []string{"exp"}}, validClaims(n, now)), nil, false},
		{"payload-not-json", forge(t, n, hdr, nil)[:0] + parts[0] + "." + b64.EncodeToString([]byte("not json")) + "." + parts[2], nil, false},
		{"expired", forge(t, n, hdr, with("exp", now.Add(-10*time.Minute).Unix())), nil, true},
		{"not-yet-valid", forge(t, n, hdr, with("nbf", now.Add(10*time.Minute).Unix())), nil, false},
		{"missing-exp", forge(t, n, hdr, with("exp", nil)), nil, false},
		{"exp-as-string", forge(t, n, hdr, with("exp", "9999999999")), nil, false},
		{"wrong-issuer", forge(t, n, hdr, with("iss", "https://evil.example/"+n.d.DefaultTenant()+"/v2.0")), nil, false},
		{"issuer-of-other-tenant", forge(t, n, hdr, with("iss", n.a.Issuer(gatehouse.NewGUID()))), nil, false},
		{"tenant-not-guid", forge(t, n, hdr, with("tid", "adfs")), nil, false},
		{"wrong-audience", valid, []string{"https://cognitiveservices.azure.com"}, false},
		{"missing-audience", forge(t, n, hdr, with("aud", nil)), nil, false},
		{"oversized", parts[0] + "." + strings.Repeat("A", MaxTokenSize) + "." + parts[2], nil, false},
		{"empty", "", nil, false},
		{"garbage", "not.a.jwt", nil, false},
	}
	for _, warm := range []bool{false, true} {
		if warm {
			if _, err := n.a.Verify(ctx, valid, ManagementAudiences...); err != nil {
				t.Fatalf("the valid token does not verify: %v", err)
			}
		}
		for _, tt := range tests {
			name := tt.name
			if warm {
				name += "-warm-cache"
			}
			t.Run(name, func(t *testing.T) {
				aud := tt.aud
				if aud == nil {
					aud = ManagementAudiences
				}
				c, err := n.a.Verify(ctx, tt.token, aud...)
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				want := ErrTokenInvalid
				if tt.expired {
					want = ErrTokenExpired
				}
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			})
		}
	}
}

// TestVerifyCacheAndExpiry: a cached token is still checked for expiry and
// audience on every call, and the expired/invalid distinction holds there
// too.
func TestVerifyCacheAndExpiry(t *testing.T) {
	c := newClock()
	n := newNode(t, teststore.SQLite(t), testSealer(t), c, Options{})
	ctx := t.Context()
	p := gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: gatehouse.NewGUID(), ClientID: gatehouse.NewGUID(), Name: "app"}
	tok, exp, err := n.a.Issue(ctx, p, "sts-audience", 10*time.Minute, map[string]any{"acct": "a1", "slot": 1, "gen": int64(1) << 40})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Sub(c.Now()) != 10*time.Minute {
		t.Fatalf("expiry %v, want 10 minutes from now", exp.Sub(c.Now()))
	}
	for range 2 { // cold, then cached
		cl, err := n.a.Verify(ctx, tok, "STS-Audience")
		if err != nil {
			t.Fatal(err)
		}
		if cl.Principal.ObjectID != p.ObjectID || cl.Principal.ClientID != p.ClientID || cl.Principal.Type != p.Type {
			t.Fatalf("principal %+v, want %+v", cl.Principal, p)
		}
		if cl.String("acct") != "a1" {
			t.Fatalf("extra acct = %v", cl.Extra["acct"])
		}
		if g, ok := cl.Int64("gen"); !ok || g != 1<<40 {
			t.Fatalf("extra gen = %v", cl.Extra["gen"])
		}
	}
	if n.a.cache.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", n.a.cache.Len())
	}
	if _, err := n.a.Verify(ctx, tok, "other"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("cached token, wrong audience: %v", err)
	} else if te, _ := errors.AsType[*TokenError](err); te == nil || te.Audience != "sts-audience" {
		t.Fatalf("audience error does not name the token's audience: %v", err)
	}
	c.Advance(10*time.Minute + DefaultClockSkew)
	if _, err := n.a.Verify(ctx, tok, "sts-audience"); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	c.Advance(time.Second)
	_, err = n.a.Verify(ctx, tok, "sts-audience")
	if !errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("after expiry: %v, want expired only", err)
	}
	if te, _ := errors.AsType[*TokenError](err); te == nil || !te.Expires.Equal(exp) {
		t.Fatalf("expired error does not carry the expiry: %v", err)
	}
	if _, _, err := n.a.Issue(ctx, p, "aud", 0, map[string]any{"oid": "x"}); err == nil {
		t.Fatal("Issue accepted a reserved claim in extra")
	}
	if _, _, err := n.a.Issue(ctx, p, "aud", 25*time.Hour, nil); err == nil {
		t.Fatal("Issue accepted a lifetime beyond the maximum")
	}
	if _, err := n.a.Verify(ctx, tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatal("Verify without audiences must refuse")
	}
}

// TestScopeNormalisation is azure-wire.md §2.4's scope handling.
func TestScopeNormalisation(t *testing.T) {
	tests := []struct{ name, scope, resource string }{
		{"go-sdk", "https://management.azure.com/.default openid offline_access profile", "https://management.azure.com"},
		{"node", "https://cognitiveservices.azure.com/.default", "https://cognitiveservices.azure.com"},
		{"az-double-slash", "https://management.core.windows.net//.default", "https://management.core.windows.net/"},
		{"openid-first", "openid profile https://vault.localhost:8443/.default", "https://vault.localhost:8443"},
		{"first-default-wins", "https://a.example/.default https://b.example/.default", "https://a.example"},
		{"delegated-scope", "https://management.azure.com/user_impersonation", "https://management.azure.com"},
		{"only-openid", "openid offline_access profile", ""},
		{"empty", "", ""},
		{"bare-default", "/.default", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := resourceFromScopes(tt.scope)
			if r != tt.resource || ok != (tt.resource != "") {
				t.Fatalf("resourceFromScopes(%q) = %q, %v; want %q", tt.scope, r, ok, tt.resource)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	c := newClock()
	n := newNode(f, teststore.SQLite(f), testSealer(f), c, Options{})
	tok, _, _ := n.a.Issue(f.Context(), gatehouse.Principal{}, "aud", 0, nil)
	f.Add(tok)
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, raw string) {
		cl, err := n.a.Verify(t.Context(), raw, "aud")
		if err == nil && raw != tok {
			t.Fatalf("accepted a token the authority did not issue: %+v", cl)
		}
	})
}

func FuzzResourceFromScopes(f *testing.F) {
	for _, s := range []string{"https://management.azure.com//.default openid", "a/.default", " ", "https:///x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := resourceFromScopes(s)
		if ok && (r == "" || !strings.Contains(s, r)) {
			t.Fatalf("resource %q not in scope %q", r, s)
		}
	})
}

// TestPasswordLockout: after lockoutBurst wrong passwords a user is locked
// out (even with the right password) until the limiter refills.
func TestPasswordLockout(t *testing.T) {
	c := newClock()
	n := newNode(t, teststore.SQLite(t), testSealer(t), c, Options{})
	if _, err := n.d.CreateUser(t.Context(), directory.UserSpec{UserName: "lock@x.test", Password: "the right password"}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	n.a.Mount(mux)
	try := func(pw string) (int, string) {
		form := url.Values{"grant_type": {"password"}, "client_id": {CLIClientID}, "username": {"LOCK@x.test"}, "password": {pw},
			"scope": {"https://management.azure.com/.default"}}
		req := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	for range lockoutBurst {
		if _, body := try("wrong"); !strings.Contains(body, "AADSTS50126") {
			t.Fatalf("wrong password: %s", body)
		}
	}
	if _, body := try("the right password"); !strings.Contains(body, "AADSTS50053") {
		t.Fatalf("locked account: %s", body)
	}
	c.Advance(lockoutEvery)
	if code, body := try("the right password"); code != 200 {
		t.Fatalf("after the lockout: %d %s", code, body)
	}
}

// TestClaimsJSON: the hand-written encoder produces exactly what
// encoding/json does for accessClaims.
func TestClaimsJSON(t *testing.T) {
	overage := accessClaims{Aud: "api://x", Iss: "i", TID: "t", UTI: "u", Ver: "1.0", WIDs: []string{"w"}}
	overage.ClaimNames, overage.ClaimSources = overageClaims(`https://h/v1.0/users/"o"/getMemberObjects`)
	for _, ac := range []accessClaims{
		{Aud: "https://management.azure.com/", Iss: "https://h/t/v2.0", Iat: 1, Nbf: 2, Exp: 3, TID: "t", UTI: "u", Ver: "1.0"},
		{Aud: `a"b\c`, Iss: "<i>&", AppDisplayName: "na\u2028me\x01\xff", AppID: "x", AppIDACR: "1", IDP: "p", IDTyp: "app",
			Name: "ü€😀", OID: "o", Scp: "s", Sub: "o", TID: "t", UniqueName: "u", UPN: "u", UTI: "x", Ver: "1.0", MIRID: "/subscriptions/x"},
		{Aud: "api://x", Iss: "i", TID: "t", UTI: "u", Ver: "1.0", Roles: []string{"Orders.Read", `q"<`}},
		{Aud: "api://x", Iss: "i", TID: "t", UTI: "u", Ver: "1.0", Roles: []string{}},
		{Aud: "api://x", Iss: "i", TID: "t", UTI: "u", Ver: "1.0", Roles: []string{"r"}, Groups: []string{"g1", "g2"}, WIDs: []string{"w"}},
		{Aud: "api://x", Iss: "i", TID: "t", UTI: "u", Ver: "1.0", Groups: []string{}, WIDs: []string{"w"}},
		overage,
	} {
		want, _ := json.Marshal(&ac)
		if got := ac.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzClaimsJSON(f *testing.F) {
	f.Add("a", "<\u2029\xff\"")
	f.Fuzz(func(t *testing.T, aud, name string) {
		ac := accessClaims{Aud: aud, AppDisplayName: name, Exp: -5, Roles: []string{name, aud}, Groups: []string{aud}, WIDs: []string{name}}
		if len(name)%2 == 1 {
			ac.ClaimNames, ac.ClaimSources = overageClaims(name)
		}
		want, _ := json.Marshal(&ac)
		if got := ac.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON\n got %s\nwant %s", got, want)
		}
	})
}

// TestVerifyCacheComparesText: the verified-token cache is found by a
// 64-bit hash, so an entry under a token's hash that holds another
// token's signature (a collision) is never taken: the token is verified
// on its own.
func TestVerifyCacheComparesText(t *testing.T) {
	c := newClock()
	n := newNode(t, teststore.SQLite(t), testSealer(t), c, Options{})
	ctx := t.Context()
	oid := gatehouse.NewGUID()
	tok, _, err := n.a.Issue(ctx, gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: oid}, "https://management.azure.com/", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	planted := &Claims{Audience: "https://management.azure.com/", Expires: c.Now().Add(time.Hour),
		Principal: gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: "planted"}}
	n.a.cache.Add(maphash.String(n.a.cacheSeed, tok), verifiedToken{sig: "x" + tok[strings.LastIndexByte(tok, '.')+1:], claims: planted})
	got, err := n.a.Verify(ctx, tok, ManagementAudiences...)
	if err != nil || got.Principal.ObjectID != oid {
		t.Fatalf("verified %+v, %v; want the token's own principal %s", got, err, oid)
	}
	// An entry holding a valid token's signature, planted under a forged
	// text's hash, does not vouch for the forged text: its signature
	// differs.
	bad := tok[:len(tok)-4] + "AAAA"
	n.a.cache.Add(maphash.String(n.a.cacheSeed, bad), verifiedToken{sig: tok[strings.LastIndexByte(tok, '.')+1:], claims: planted})
	if _, err := n.a.Verify(ctx, bad, ManagementAudiences...); err == nil {
		t.Fatal("a token with a bad signature verified through another token's cache entry")
	}
}
