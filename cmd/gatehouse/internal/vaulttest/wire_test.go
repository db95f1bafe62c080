package vaulttest

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/vault"
)

// recorder is a transport that records what the client sent and got.
type recorder struct {
	next policy.Transporter
	mu   sync.Mutex
	seen []exchange
}

type exchange struct {
	method, path string
	auth         bool
	bodyLen      int64
	status       int
	challenge    string
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.seen = append(r.seen, exchange{method: req.Method, path: req.URL.Path, auth: req.Header.Get("Authorization") != "",
		bodyLen: req.ContentLength, status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate")})
	r.mu.Unlock()
	return resp, nil
}

// testChallenge: the SDK's first request carries no token and no body and
// is answered 401 with the challenge before any validation; the replay
// succeeds. Raw: the header's exact shape, invalid tokens, and the GUID
// tenant form on a node configured for it.
func testChallenge(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "challenge", nil)
	rec := &recorder{next: e.Client}
	opts := e.ClientOptions()
	opts.Transport = rec
	c, err := azsecrets.NewClient(e.vaultURL("challenge"), e.cred, &azsecrets.ClientOptions{ClientOptions: opts})
	must(t, err)
	if _, err := c.SetSecret(ctx, "first", azsecrets.SetSecretParameters{Value: ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	wantChallenge := `Bearer authorization="` + e.URL + `/adfs", resource="https://vault.` + e.Host + `"`
	var vaultCalls []exchange
	for _, x := range rec.seen {
		if strings.HasPrefix(x.path, "/secrets") {
			vaultCalls = append(vaultCalls, x)
		}
	}
	if len(vaultCalls) != 2 || vaultCalls[0].auth || vaultCalls[0].bodyLen != 0 || vaultCalls[0].status != 401 ||
		vaultCalls[0].challenge != wantChallenge || !vaultCalls[1].auth || vaultCalls[1].status != 200 {
		t.Fatalf("exchanges: %+v\nwant challenge %s", vaultCalls, wantChallenge)
	}

	// Raw: a body that would be invalid still gets the challenge first.
	for _, tt := range []struct {
		name, method, path string
		body               any
		token              string
		invalid            bool
	}{
		{"no-token-no-body", "PUT", "/secrets/x?api-version=7.6", nil, "-", false},
		{"no-token-bad-body", "PUT", "/secrets/x?api-version=7.6", "{not json", "-", false},
		{"no-token-bad-api-version", "GET", "/secrets?api-version=1.0", nil, "-", false},
		{"garbage-token", "GET", "/secrets?api-version=7.6", nil, "not.a.token", true},
		{"management-token", "GET", "/secrets?api-version=7.6", nil, e.mgmtToken, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.data(t, tt.method, "challenge", tt.path, tt.body, tt.token, nil)
			want := wantChallenge
			if tt.invalid {
				want += `, error="invalid_token"`
			}
			if code, _ := r.code(); r.status != 401 || code != "Unauthorized" || r.header.Get("WWW-Authenticate") != want {
				t.Fatalf("%d %s %s\n%s", r.status, code, r.header.Get("WWW-Authenticate"), r.body)
			}
		})
	}
	r := e.data(t, "GET", "challenge", "/secrets?api-version=7.6", nil, "-", nil)
	if !strings.Contains(string(r.body), "AKV10000") {
		t.Fatalf("missing-token body: %s", r.body)
	}

	// The GUID form, for code that sets DisableInstanceDiscovery: a node
	// configured for it, and the testenv credential (GUID tenant).
	t.Run("guid-tenant", func(t *testing.T) {
		s := testenv.Start(t, testenv.WithConfig(func(c *app.Config) { c.KeyVaultChallengeTenant = app.ChallengeTenantDefault }))
		cred := s.Credential(t)
		tok := s.Token(t, cred, "https://management.azure.com/.default")
		claims, err := s.Authority.Verify(ctx, tok, "https://management.azure.com")
		must(t, err)
		id, _ := vault.ParseID("/subscriptions/" + s.Bootstrap.SubscriptionID + "/resourceGroups/" + s.Bootstrap.ResourceGroup + "/providers/Microsoft.KeyVault/vaults/guid-kv")
		_, _, err = s.Vaults.PutVault(ctx, id, vault.Spec{Location: "westus", TenantID: s.Directory.DefaultTenant()}, vault.Actor{})
		must(t, err)
		_, _, err = s.Authz.CreateAssignment(ctx, id, gatehouse.NewGUID(), authz.AssignmentSpec{
			RoleDefinitionID: authz.DefinitionID(&gatehouse.ResourceID{Subscription: s.Bootstrap.SubscriptionID}, authz.RoleKeyVaultSecretsOfficer),
			PrincipalID:      claims.Principal.ObjectID, PrincipalType: "ServicePrincipal"}, "test")
		must(t, err)
		c, err := azsecrets.NewClient("https://guid-kv.vault."+s.Host+"/", cred, &azsecrets.ClientOptions{ClientOptions: s.ClientOptions()})
		must(t, err)
		if _, err := c.SetSecret(ctx, "guid", azsecrets.SetSecretParameters{Value: ptr("v")}, nil); err != nil {
			t.Fatal(err)
		}
		// An adfs credential is refused by the client itself: the challenge
		// names another tenant (azure-wire.md §2.5).
		adfs := (&env{Server: s}).adfsCredential(t, s.Bootstrap.ClientID, s.Bootstrap.ClientSecret)
		c2, err := azsecrets.NewClient("https://guid-kv.vault."+s.Host+"/", adfs, &azsecrets.ClientOptions{ClientOptions: s.ClientOptions()})
		must(t, err)
		if _, err := c2.GetSecret(ctx, "guid", "", nil); err == nil {
			t.Fatal("an adfs credential accepted a GUID-tenant challenge")
		}
	})
}

// testWire checks the details the clients depend on with raw requests.
func testWire(t *testing.T, e *env) {
	e.createVault(t, "wire", nil)
	tok := e.vaultToken(t, e.cred)
	put := func(name, value string) map[string]any {
		r := e.data(t, "PUT", "wire", "/secrets/"+name+"?api-version=7.6", map[string]any{"value": value}, tok, nil)
		if r.status != 200 {
			t.Fatalf("set %s: %d %s", name, r.status, r.body)
		}
		var m map[string]any
		r.json(t, &m)
		return m
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		put(n, "value-"+n)
	}
	for _, tt := range []struct{ name, query string }{
		{"trailing-slash", "/secrets/a/?api-version=2026-04-01"},
		{"no-trailing-slash", "/secrets/a?api-version=2025-07-01"},
		{"percent-encoded-name", "/secrets/a/?api%2Dversion=2025-07-01"},
		{"api-7.0", "/secrets/a/?api-version=7.0"},
		{"api-7.5-preview", "/secrets/a/?api-version=7.5-preview"},
		{"api-any-date", "/secrets/a/?api-version=2030-01-15"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.data(t, "GET", "wire", tt.query, nil, tok, nil)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
				!bytes.Contains(r.body, []byte(`"value":"value-a"`)) {
				t.Fatalf("%d %s", r.status, r.body)
			}
			// Integer timestamps.
			if bytes.Contains(r.body, []byte(`"created":1`)) == false || bytes.Contains(r.body, []byte(`.`+`0,`)) {
				t.Fatalf("timestamps: %s", r.body)
			}
		})
	}

	// Paging: maxresults and nextLinks that carry api-version and $skiptoken.
	var names []string
	next := "/secrets?api-version=7.6&maxresults=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := e.data(t, "GET", "wire", next, nil, tok, nil)
		var page struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink *string `json:"nextLink"`
		}
		r.json(t, &page)
		if page.Value == nil {
			t.Fatalf("no value array: %s", r.body)
		}
		for _, v := range page.Value {
			names = append(names, v.ID[strings.LastIndex(v.ID, "/")+1:])
		}
		next = ""
		if page.NextLink != nil {
			u, err := url.Parse(*page.NextLink)
			must(t, err)
			q := u.Query()
			if u.Host != "wire.vault."+e.Host || q.Get("api-version") != "7.6" || q.Get("$skiptoken") == "" || q.Get("maxresults") != "2" {
				t.Fatalf("nextLink %s", *page.NextLink)
			}
			next = u.RequestURI()
		}
	}
	if strings.Join(names, ",") != "a,b,c,d,e" {
		t.Fatalf("paged names %v", names)
	}
	// An empty list still has a value array.
	r := e.data(t, "GET", "wire", "/deletedsecrets?api-version=7.6", nil, tok, nil)
	if r.status != 200 || string(r.body) != `{"value":[],"nextLink":null}` {
		t.Fatalf("empty list: %d %s", r.status, r.body)
	}

	// Backup: unpadded base64url.
	r = e.data(t, "POST", "wire", "/secrets/a/backup?api-version=7.6", nil, tok, nil)
	var b struct{ Value string }
	r.json(t, &b)
	if r.status != 200 || strings.ContainsAny(b.Value, "=+/") {
		t.Fatalf("backup: %d %.80s", r.status, r.body)
	}
	if _, err := base64.RawURLEncoding.DecodeString(b.Value); err != nil {
		t.Fatal(err)
	}
	// Delete 200 with recoveryId; purge 204 without a body.
	r = e.data(t, "DELETE", "wire", "/secrets/b?api-version=7.6", nil, tok, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"recoveryId":"https://wire.vault.`+e.Host+`/deletedsecrets/b"`)) ||
		bytes.Contains(r.body, []byte(`"value"`)) {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r = e.data(t, "DELETE", "wire", "/deletedsecrets/b?api-version=7.6", nil, tok, nil)
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("purge: %d %q", r.status, r.body)
	}
	// Methods the path does not have: 405 with Allow.
	r = e.data(t, "POST", "wire", "/secrets/a?api-version=7.6", nil, tok, nil)
	if r.status != 405 || r.header.Get("Allow") == "" {
		t.Fatalf("POST /secrets/a: %d %s", r.status, r.body)
	}
	// An unknown vault (valid token): 404, not a 500.
	r = e.data(t, "GET", "no-such-vault", "/secrets?api-version=7.6", nil, tok, nil)
	if code, _ := r.code(); r.status != 404 || code != "VaultNotFound" {
		t.Fatalf("unknown vault: %d %s", r.status, r.body)
	}
}
