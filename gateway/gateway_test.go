package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/netacl"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	chatPath  = "/openai/deployments/chat/chat/completions?api-version=2024-10-21"
	chatBody  = `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	langPath  = "/language/:analyze-text?api-version=2023-04-01"
	rgPrefix  = "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/"
	upstreamK = "upstream-secret-credential"
)

// world is the standard fixture: accounts, keys, deployments, an upstream.
type world struct {
	*fixture
	up   *testUpstream
	keys map[string][2]string // account name → key1, key2
}

func acctID(name string) string { return rgPrefix + name }

func newWorld(t testing.TB, adjust ...func(*Options)) *world {
	t.Helper()
	adjust = append([]func(*Options){func(o *Options) { o.UpstreamTimeout = 300 * time.Millisecond }}, adjust...)
	w := &world{fixture: newFixture(t, adjust...), up: newTestUpstream(t), keys: map[string][2]string{}}
	for _, a := range []Account{
		{ID: acctID("acct1"), Name: "acct1", Kind: "AIServices"},
		{ID: acctID("acct2"), Name: "acct2", Kind: "AIServices"},
		{ID: acctID("nolocal"), Name: "nolocal", Kind: "AIServices", DisableLocalAuth: true},
		{ID: acctID("oai"), Name: "oai", Kind: "OpenAI"},
		{ID: acctID("limited"), Name: "limited", Kind: "AIServices", Limits: RateLimits{Credential: Rate{2, time.Minute}, Account: Rate{3, time.Minute}}},
		// Rules of other periods than a minute (ARM's renewalPeriod).
		{ID: acctID("slow"), Name: "slow", Kind: "AIServices", Limits: RateLimits{Account: Rate{1, 2 * time.Minute}}},
		{ID: acctID("short"), Name: "short", Kind: "AIServices", Limits: RateLimits{Credential: Rate{2, 10 * time.Second}}},
	} {
		w.keys[a.Name] = w.accounts.add(a)
	}
	down := closedURL(t)
	for _, d := range []struct{ name, model, url string }{
		{"chat", "upstream-model", w.up.srv.URL},
		{"stream", "stream", w.up.srv.URL + "/v1/"},
		{"fail-400", "fail-400", w.up.srv.URL},
		{"fail-400-long", "fail-400-long", w.up.srv.URL},
		{"fail-401", "fail-401", w.up.srv.URL},
		{"fail-429", "fail-429", w.up.srv.URL},
		{"fail-500", "fail-500", w.up.srv.URL},
		{"fail-503", "fail-503", w.up.srv.URL},
		{"hang", "hang", w.up.srv.URL},
		{"cut", "cut", w.up.srv.URL},
		{"down", "x", down},
	} {
		w.deps.put(acctID("acct1"), &Deployment{Name: d.name, Upstream: mustURL(t, d.url), Model: d.model, Credential: upstreamK})
	}
	w.deps.put(acctID("acct2"), &Deployment{Name: "chat", Upstream: mustURL(t, w.up.srv.URL), Model: "m2", Credential: "k2", AuthHeader: "api-key"})
	return w
}

func key1(w *world, acct string) map[string]string {
	return map[string]string{"Ocp-Apim-Subscription-Key": w.keys[acct][0]}
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// azureErr decodes {"error":{"code","message"}} and checks x-ms-error-code.
func azureErr(t testing.TB, resp *http.Response) (code, msg string) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("status %d: body is not an Azure error: %s", resp.StatusCode, b)
	}
	if h := resp.Header.Get("x-ms-error-code"); h != e.Error.Code {
		t.Errorf("x-ms-error-code %q, body code %q", h, e.Error.Code)
	}
	return e.Error.Code, e.Error.Message
}

func TestAuthentication(t *testing.T) {
	w := newWorld(t)
	tokSTS := func(acct string, slot int) string {
		tok, _ := w.tokens.IssueSTSToken(context.Background(), STSGrant{Account: Account{ID: acctID(acct)}, Slot: slot, Generation: 1, Lifetime: 10 * time.Minute})
		return tok
	}
	w.authz.grant("reader-oid", routes[0].dataAction, acctID("acct1"))
	w.authz.grant("chat-oid", routes[1].dataAction, acctID("acct1"))
	tests := []struct {
		name   string
		rq     req
		status int
		code   string
	}{
		{"key1-ocp-path-form", req{url: "/ai/acct1" + langPath, header: key1(w, "acct1")}, 200, ""},
		{"key2-api-key-host-form", req{url: "acct1.cognitiveservices.gw.test" + langPath, header: map[string]string{"api-key": w.keys["acct1"][1]}}, 200, ""},
		{"key-Api-Key-openai-host", req{url: "acct1.openai.gw.test" + langPath, header: map[string]string{"Api-Key": w.keys["acct1"][0]}}, 200, ""},
		{"path-account-any-case", req{url: "/ai/ACCT1" + langPath, header: key1(w, "acct1")}, 200, ""},
		{"key-header-lower-case", req{url: "/ai/acct1" + langPath, header: map[string]string{"ocp-apim-subscription-key": w.keys["acct1"][0]}}, 200, ""},
		{"missing-credential", req{url: "/ai/acct1" + langPath}, 401, "401"},
		{"empty-key", req{url: "/ai/acct1" + langPath, header: map[string]string{"api-key": " "}}, 401, "401"},
		{"wrong-key", req{url: "/ai/acct1" + langPath, header: map[string]string{"api-key": "nope"}}, 401, "401"},
		{"other-accounts-key", req{url: "/ai/acct1" + langPath, header: key1(w, "acct2")}, 401, "401"},
		{"unknown-account", req{url: "/ai/nosuch" + langPath, header: key1(w, "acct1")}, 401, "401"},
		{"local-auth-disabled-key", req{url: "/ai/nolocal" + langPath, header: key1(w, "nolocal")}, 403, "AuthenticationTypeDisabled"},
		{"local-auth-disabled-sts", req{url: "/ai/nolocal" + langPath, header: bearerHdr(tokSTS("nolocal", 0))}, 403, "AuthenticationTypeDisabled"},
		{"sts-token", req{url: "/ai/acct1" + langPath, header: bearerHdr(tokSTS("acct1", 0))}, 200, ""},
		{"sts-token-other-account", req{url: "/ai/acct1" + langPath, header: bearerHdr(tokSTS("acct2", 0))}, 401, "401"},
		{"sts-token-bad-slot", req{url: "/ai/acct1" + langPath, header: bearerHdr(tokSTS("acct1", 7))}, 401, "401"},
		{"tampered-token", req{url: "/ai/acct1" + langPath, header: bearerHdr(tokSTS("acct1", 0) + "x")}, 401, "401"},
		{"basic-auth", req{url: "/ai/acct1" + langPath, header: map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}}, 401, "401"},
		{"identity-with-role", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", CognitiveAudience))}, 200, ""},
		{"identity-audience-slash", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", CognitiveAudience+"/"))}, 200, ""},
		{"identity-audience-ai", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", AIAudience))}, 200, ""},
		{"identity-audience-ai-slash", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", AIAudience+"/"))}, 200, ""},
		{"identity-audience-ai-without-role", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("nobody-oid", AIAudience))}, 401, "PermissionDenied"},
		{"identity-wrong-audience", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", "https://management.azure.com"))}, 401, "401"},
		{"identity-without-role", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("nobody-oid", CognitiveAudience))}, 401, "PermissionDenied"},
		{"identity-role-for-other-action", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("chat-oid", CognitiveAudience))}, 401, "PermissionDenied"},
		{"identity-role-on-other-account", req{url: "/ai/acct2" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", CognitiveAudience))}, 401, "PermissionDenied"},
		{"identity-ignores-disable-local-auth", req{url: "/ai/nolocal" + langPath, header: bearerHdr(w.tokens.identity("nobody-oid", CognitiveAudience))}, 401, "PermissionDenied"},
		{"sts-audience-without-sts-claims", req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.mint(&VerifiedToken{Audience: STSAudience, Expires: w.clock.Now().Add(time.Hour)}))}, 401, "401"},
		{"language-on-openai-kind", req{url: "/ai/oai" + langPath, header: key1(w, "oai")}, 404, "404"},
		{"unknown-path", req{url: "/ai/acct1/nothing/here", header: key1(w, "acct1")}, 404, "NotFound"},
		{"wrong-method", req{method: "GET", url: "/ai/acct1" + langPath, header: key1(w, "acct1")}, 405, "MethodNotAllowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := w.do(t, tt.rq)
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.code == "" {
				resp.Body.Close()
				return
			}
			code, msg := azureErr(t, resp)
			if code != tt.code {
				t.Errorf("code %q, want %q (%s)", code, tt.code, msg)
			}
			if code == "401" && msg != msgAccessDenied {
				t.Errorf("message %q", msg)
			}
			if code == "PermissionDenied" && !strings.Contains(msg, "Language/analyze-text/action") {
				t.Errorf("PermissionDenied does not name the data action: %s", msg)
			}
		})
	}
	t.Run("expired-sts-token", func(t *testing.T) {
		tok := tokSTS("acct1", 0)
		w.clock.Advance(11 * time.Minute)
		defer w.clock.Advance(-11 * time.Minute)
		if code, _ := azureErr(t, w.do(t, req{url: "/ai/acct1" + langPath, header: bearerHdr(tok)})); code != "401" {
			t.Errorf("code %q", code)
		}
	})
	t.Run("authorizer-down-is-not-allow", func(t *testing.T) {
		w.authz.mu.Lock()
		w.authz.fail = true
		w.authz.mu.Unlock()
		defer func() { w.authz.mu.Lock(); w.authz.fail = false; w.authz.mu.Unlock() }()
		resp := w.do(t, req{url: "/ai/acct1" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", CognitiveAudience))})
		if resp.StatusCode != 500 {
			t.Errorf("status %d, want 500", resp.StatusCode)
		}
		resp.Body.Close()
	})
}

func TestSTS(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.STSFailuresPerMinute = 3 })
	issue := func(t *testing.T, url string, hdr map[string]string) (int, string) {
		t.Helper()
		resp := w.do(t, req{url: url, header: hdr})
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/jwt") {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct{ name, url string }{
		{"root", "/sts/v1.0/issueToken"},
		{"path-form", "/ai/acct1/sts/v1.0/issueToken"},
		{"host-form", "acct1.cognitiveservices.gw.test/sts/v1.0/issueToken"},
		// The spelling the Azure portal shows.
		{"root-lower-case", "/sts/v1.0/issuetoken"},
		{"path-form-lower-case", "/ai/acct1/sts/v1.0/issuetoken"},
		{"host-form-lower-case", "acct1.cognitiveservices.gw.test/sts/v1.0/issuetoken"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, tok := issue(t, tt.url, key1(w, "acct1"))
			if status != 200 {
				t.Fatalf("status %d: %s", status, tok)
			}
			resp := w.do(t, req{url: "/ai/acct1" + langPath, header: bearerHdr(tok)})
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("token refused: %d", resp.StatusCode)
			}
			v, err := w.tokens.VerifyToken(context.Background(), tok, STSAudience)
			if err != nil || v.Expires.Sub(w.clock.Now()) != 10*time.Minute || v.Slot != 0 || v.Generation != 1 {
				t.Errorf("token claims %+v", v)
			}
		})
	}
	t.Run("key-of-other-account-at-account-endpoint", func(t *testing.T) {
		if status, _ := issue(t, "/ai/acct1/sts/v1.0/issueToken", key1(w, "acct2")); status != 401 {
			t.Errorf("status %d", status)
		}
	})
	t.Run("disabled-local-auth", func(t *testing.T) {
		if status, _ := issue(t, "/sts/v1.0/issueToken", key1(w, "nolocal")); status != 403 {
			t.Errorf("status %d", status)
		}
	})
	t.Run("failures-limited-per-address", func(t *testing.T) {
		w.clock.Advance(time.Minute) // refill after the failures above
		for i := range 3 {
			if status, _ := issue(t, "/sts/v1.0/issueToken", map[string]string{"api-key": "guess"}); status != 401 {
				t.Fatalf("attempt %d: status %d", i, status)
			}
		}
		resp := w.do(t, req{url: "/sts/v1.0/issueToken", header: key1(w, "acct1")})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "failed token requests") {
			t.Fatalf("status %d, Retry-After %q, want 429 even for a good key: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		resp.Body.Close()
		w.clock.Advance(time.Minute)
		if status, _ := issue(t, "/sts/v1.0/issueToken", key1(w, "acct1")); status != 200 {
			t.Errorf("after a minute: status %d", status)
		}
	})
}

// TestRotation is the rotation rule: regenerating key1 stops key1 and the
// STS tokens minted from it at once, and nothing of key2.
func TestRotation(t *testing.T) {
	w := newWorld(t)
	w.accounts.update("acct1", func(a *Account) { a.InternalID = "first-instance" })
	stsFrom := func(slot int) string {
		resp := w.do(t, req{url: "/sts/v1.0/issueToken", header: map[string]string{"api-key": w.keys["acct1"][slot]}})
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tok1, tok2 := stsFrom(0), stsFrom(1)
	old1 := w.keys["acct1"][0]
	w.accounts.regenerate("acct1", 0)
	for _, tt := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"old-key1", map[string]string{"api-key": old1}, 401},
		{"sts-from-old-key1", bearerHdr(tok1), 401},
		{"key2", map[string]string{"api-key": w.keys["acct1"][1]}, 200},
		{"sts-from-key2", bearerHdr(tok2), 200},
		{"new-key1", map[string]string{"api-key": w.accounts.plain[acctID("acct1")][0]}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := w.do(t, req{url: "/ai/acct1" + langPath, header: tt.hdr})
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	// An STS token of the account does not work on a new account at the
	// same id (deleted, purged and created again), whose generations
	// start over.
	w.accounts.update("acct1", func(a *Account) { a.InternalID = "another-instance" })
	if resp := w.do(t, req{url: "/ai/acct1" + langPath, header: bearerHdr(tok2)}); resp.StatusCode != 401 {
		t.Errorf("a token of the account's previous instance: status %d", resp.StatusCode)
	}
	if got := w.audit.reasons(); got[reasonRevokedToken] == 0 || got[reasonInvalidKey] == 0 {
		w.gw.Flush(context.Background())
		if got := w.audit.reasons(); got[reasonRevokedToken] == 0 || got[reasonInvalidKey] == 0 {
			t.Errorf("audited denials %v", got)
		}
	}
}

func TestRateLimits(t *testing.T) {
	w := newWorld(t)
	call := func(slot int) *http.Response {
		return w.do(t, req{url: "/ai/limited" + langPath, header: map[string]string{"api-key": w.keys["limited"][slot]}})
	}
	for i := range 2 {
		if r := call(0); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	r := call(0) // key1 has used its 2 per minute
	if r.StatusCode != 429 {
		t.Fatalf("status %d, want 429", r.StatusCode)
	}
	if ra := r.Header.Get("Retry-After"); ra != "30" || r.Header.Get("retry-after-ms") == "" {
		t.Errorf("Retry-After %q retry-after-ms %q", ra, r.Header.Get("retry-after-ms"))
	}
	if code, msg := azureErr(t, r); code != "429" || !strings.Contains(msg, "the rate limit of 2 requests per minute. Please retry after 30 seconds.") {
		t.Errorf("code %q: %s", code, msg)
	}
	if r := call(1); r.StatusCode != 200 { // key2 has its own bucket; the account's third
		t.Fatalf("key2: %d", r.StatusCode)
	}
	if r := call(1); r.StatusCode != 429 { // the account's 3 per minute are used
		t.Fatalf("account limit: %d", r.StatusCode)
	}
	w.clock.Advance(time.Minute)
	if r := call(0); r.StatusCode != 200 {
		t.Errorf("after a minute: %d", r.StatusCode)
	}
}

// TestRateLimitPeriods: a rule is Count requests per its own period, in
// bursts of Count — one request per 2 minutes is a limit (not rounded
// down to none a minute), two per 10 seconds admit two at once (not the
// twelve a minute they come to).
func TestRateLimitPeriods(t *testing.T) {
	w := newWorld(t)
	call := func(acct string) *http.Response {
		return w.do(t, req{url: "/ai/" + acct + langPath, header: map[string]string{"api-key": w.keys[acct][0]}})
	}
	statuses := func(acct string, n int) string {
		var out []string
		for range n {
			out = append(out, strconv.Itoa(call(acct).StatusCode))
		}
		return strings.Join(out, " ")
	}
	if got := statuses("slow", 2); got != "200 429" {
		t.Errorf("1 per 2 minutes: %s", got)
	}
	r := call("slow")
	if code, msg := azureErr(t, r); code != "429" || r.Header.Get("Retry-After") != "120" ||
		!strings.Contains(msg, "the rate limit of 1 request per 120 seconds.") {
		t.Errorf("%s %q: %s", code, r.Header.Get("Retry-After"), msg)
	}
	w.clock.Advance(time.Minute)
	if got := statuses("slow", 1); got != "429" {
		t.Errorf("after a minute: %s", got)
	}
	w.clock.Advance(time.Minute)
	if got := statuses("slow", 2); got != "200 429" {
		t.Errorf("after two minutes: %s", got)
	}

	if got := statuses("short", 3); got != "200 200 429" {
		t.Errorf("2 per 10 seconds: %s", got)
	}
	w.clock.Advance(5 * time.Second)
	if got := statuses("short", 2); got != "200 429" {
		t.Errorf("after 5 seconds: %s", got)
	}
	w.clock.Advance(10 * time.Second)
	if got := statuses("short", 3); got != "200 200 429" {
		t.Errorf("after 10 more seconds: %s", got)
	}
}

func TestRateString(t *testing.T) {
	for _, tt := range []struct {
		r    Rate
		want string
	}{
		{Rate{120, time.Minute}, "120 requests per minute"},
		{Rate{1, time.Second}, "1 request per second"},
		{Rate{2, 10 * time.Second}, "2 requests per 10 seconds"},
		{Rate{0.5, 1500 * time.Millisecond}, "0.5 requests per 1.5 seconds"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestProxy(t *testing.T) {
	w := newWorld(t)
	t.Run("forwards-with-upstream-credential", func(t *testing.T) {
		hdr := key1(w, "acct1")
		hdr["Cookie"] = "session=1"
		hdr["X-Ms-Client-Request-Id"] = "abc"
		resp := w.do(t, req{url: "/ai/acct1" + chatPath, header: hdr, body: chatBody})
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hi from /v1/chat/completions") {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		got := w.up.last()
		if got.path != "/v1/chat/completions" || got.body["model"] != "upstream-model" {
			t.Errorf("upstream got %s model %v", got.path, got.body["model"])
		}
		if a := got.header.Get("Authorization"); a != "Bearer "+upstreamK {
			t.Errorf("upstream Authorization %q", a)
		}
		for _, h := range []string{"Ocp-Apim-Subscription-Key", "Api-Key", "Cookie", "X-Ms-Client-Request-Id"} {
			if got.header.Get(h) != "" {
				t.Errorf("upstream got the client's %s", h)
			}
		}
		for _, v := range got.header {
			for _, s := range v {
				if strings.Contains(s, w.keys["acct1"][0]) {
					t.Error("the client's key reached the upstream")
				}
			}
		}
		if got.header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id upstream")
		}
		// The answer carries the request id as Azure's data planes do.
		id := resp.Header.Get("X-Ms-Request-Id")
		if id == "" || resp.Header.Get("Apim-Request-Id") != id || resp.Header.Get("X-Request-Id") != id {
			t.Errorf("request ids: %q %q %q", id, resp.Header.Get("Apim-Request-Id"), resp.Header.Get("X-Request-Id"))
		}
	})
	t.Run("host-form-and-api-key-header-upstream", func(t *testing.T) {
		resp := w.do(t, req{url: "acct2.openai.gw.test" + chatPath, header: map[string]string{"api-key": w.keys["acct2"][1]}, body: chatBody})
		resp.Body.Close()
		got := w.up.last()
		if resp.StatusCode != 200 || got.header.Get("Api-Key") != "k2" || got.header.Get("Authorization") != "" || got.body["model"] != "m2" {
			t.Errorf("status %d, upstream headers %v body %v", resp.StatusCode, got.header, got.body)
		}
	})
	t.Run("streaming-is-unbuffered", func(t *testing.T) {
		resp := w.do(t, req{url: "/ai/acct1/openai/deployments/stream/chat/completions?api-version=2024-10-21", header: key1(w, "acct1"),
			body: `{"messages":[],"stream":true}`})
		defer resp.Body.Close()
		// The upstream has sent its head and no event yet: the client has
		// the head now (an SDK's timeout counts to the head, so a held-back
		// head would make a slow first token a timeout).
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("status %d Content-Type %q", resp.StatusCode, ct)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			// The upstream sends event i only after this step: reading it
			// before the next step proves it was not held back.
			w.up.step <- struct{}{}
			line, err := br.ReadString('\n')
			if err != nil || !strings.Contains(line, `"content":"t`) {
				t.Fatalf("event %d: %q %v", i, line, err)
			}
			br.ReadString('\n')
		}
		rest, _ := io.ReadAll(br)
		if !strings.Contains(string(rest), "[DONE]") {
			t.Errorf("stream end %q", rest)
		}
	})
	tests := []struct {
		name, url, body string
		hdr             map[string]string
		status          int
		code            string
	}{
		{"unknown-deployment", "/ai/acct1/openai/deployments/nope/chat/completions?api-version=2024-10-21", chatBody, nil, 404, "DeploymentNotFound"},
		{"deployment-of-other-account", "/ai/acct2/openai/deployments/stream/chat/completions?api-version=2024-10-21", chatBody, key1(w, "acct2"), 404, "DeploymentNotFound"},
		{"missing-api-version", "/ai/acct1/openai/deployments/chat/chat/completions", chatBody, nil, 404, "404"},
		{"bad-api-version", "/ai/acct1/openai/deployments/chat/chat/completions?api-version=yesterday", chatBody, nil, 400, "BadRequest"},
		{"impossible-api-version", "/ai/acct1/openai/deployments/chat/chat/completions?api-version=2024-13-45", chatBody, nil, 400, "BadRequest"},
		{"preview-api-version", "/ai/acct1/openai/deployments/chat/chat/completions?api-version=2025-04-01-preview", chatBody, nil, 200, ""},
		{"encoded-api-version", "/ai/acct1/openai/deployments/chat/chat/completions?api%2Dversion=2024-10-21", chatBody, nil, 200, ""},
		{"malformed-json", "/ai/acct1" + chatPath, `{"messages":`, nil, 400, "BadRequest"},
		{"json-not-object", "/ai/acct1" + chatPath, `[1,2]`, nil, 400, "BadRequest"},
		{"empty-body", "/ai/acct1" + chatPath, ``, nil, 400, "BadRequest"},
		{"oversized-body", "/ai/acct1" + chatPath, `{"x":"` + strings.Repeat("a", 16<<20) + `"}`, nil, 413, "RequestEntityTooLarge"},
		{"upstream-400-passes", "/ai/acct1/openai/deployments/fail-400/chat/completions?api-version=2024-10-21", chatBody, nil, 400, "invalid_request_error"},
		{"upstream-400-long-message", "/ai/acct1/openai/deployments/fail-400-long/chat/completions?api-version=2024-10-21", chatBody, nil, 400, "invalid_request_error"},
		{"upstream-401-is-502", "/ai/acct1/openai/deployments/fail-401/chat/completions?api-version=2024-10-21", chatBody, nil, 502, "BadGateway"},
		{"upstream-429-passes", "/ai/acct1/openai/deployments/fail-429/chat/completions?api-version=2024-10-21", chatBody, nil, 429, "invalid_request_error"},
		{"upstream-500-is-502", "/ai/acct1/openai/deployments/fail-500/chat/completions?api-version=2024-10-21", chatBody, nil, 502, "invalid_request_error"},
		{"upstream-503-passes", "/ai/acct1/openai/deployments/fail-503/chat/completions?api-version=2024-10-21", chatBody, nil, 503, "invalid_request_error"},
		{"upstream-timeout", "/ai/acct1/openai/deployments/hang/chat/completions?api-version=2024-10-21", chatBody, nil, 504, "GatewayTimeout"},
		{"upstream-down", "/ai/acct1/openai/deployments/down/chat/completions?api-version=2024-10-21", chatBody, nil, 502, "BadGateway"},
		{"embeddings", "/ai/acct1/openai/deployments/chat/embeddings?api-version=2024-10-21", `{"input":"x"}`, nil, 200, ""},
		{"completions", "/ai/acct1/openai/deployments/chat/completions?api-version=2024-10-21", `{"prompt":"x"}`, nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := tt.hdr
			if hdr == nil {
				hdr = key1(w, "acct1")
			}
			resp := w.do(t, req{url: tt.url, header: hdr, body: tt.body})
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tt.status, b)
			}
			if tt.code == "" {
				resp.Body.Close()
				return
			}
			if tt.status == 429 && resp.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			code, msg := azureErr(t, resp)
			if code != tt.code || msg == "" {
				t.Errorf("code %q (%s), want %q", code, msg, tt.code)
			}
			// An upstream's 4xx message is passed on with the deployment's
			// credential cut out; a 5xx's is not passed on at all.
			if strings.Contains(msg, upstreamK[:len(upstreamK)/2]) {
				t.Errorf("the upstream's credential reached the client: %s", msg)
			}
			if s := tt.status; s >= 400 && s < 500 && strings.HasPrefix(tt.name, "upstream-4") && !strings.Contains(msg, "upstream says") && !strings.HasSuffix(tt.name, "-long-message") {
				t.Errorf("the upstream's own message was lost: %s", msg)
			}
			if tt.status >= 500 && strings.Contains(msg, "upstream says") {
				t.Errorf("an upstream 5xx's message was passed on: %s", msg)
			}
		})
	}
	t.Run("upstream-cut-aborts-client", func(t *testing.T) {
		r, _ := http.NewRequest("POST", w.srv.URL+"/ai/acct1/openai/deployments/cut/chat/completions?api-version=2024-10-21", strings.NewReader(chatBody))
		r.Host = w.host
		r.Header.Set("api-key", w.keys["acct1"][0])
		resp, err := w.srv.Client().Do(r)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Error("a truncated upstream body reached the client as complete")
		}
	})
}

func TestUsageAndMetrics(t *testing.T) {
	w := newWorld(t)
	w.authz.grant("reader-oid", routes[0].dataAction, acctID("acct2"))
	for range 3 {
		w.do(t, req{url: "/ai/acct2" + langPath, header: key1(w, "acct2")}).Body.Close()
	}
	w.do(t, req{url: "/ai/acct2" + langPath, header: map[string]string{"api-key": w.keys["acct2"][1], "User-Agent": "other/2"}}).Body.Close()
	w.do(t, req{url: "/ai/acct2" + langPath, header: bearerHdr(w.tokens.identity("reader-oid", CognitiveAudience))}).Body.Close()
	w.do(t, req{url: "/ai/acct2" + langPath, header: map[string]string{"api-key": "wrong-key-value"}}).Body.Close()

	w.usage.fail = true
	if err := w.gw.Flush(context.Background()); err == nil {
		t.Fatal("flush into a failing sink succeeded")
	}
	w.usage.fail = false
	if err := w.gw.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, u := w.usage.total(acctID("acct2"), 0, ""); n != 3 || u.ClientAddresses[0] != "127.0.0.1" || u.UserAgents[0] != "fixture/1.0" || u.LastUsed.IsZero() {
		t.Errorf("key1 usage %d %+v (counts of a failed flush must survive)", n, u)
	}
	if n, u := w.usage.total(acctID("acct2"), 1, ""); n != 1 || u.UserAgents[0] != "other/2" {
		t.Errorf("key2 usage %d %+v", n, u)
	}
	if n, _ := w.usage.total(acctID("acct2"), -1, "reader-oid"); n != 1 {
		t.Errorf("identity usage %d", n)
	}
	if got := testutil.ToFloat64(w.gw.meter.requests.WithLabelValues("acct2", "key1", "200")); got != 3 {
		t.Errorf("requests{acct2,key1,200} = %v", got)
	}
	if got := testutil.ToFloat64(w.gw.meter.requests.WithLabelValues("acct2", "identity", "200")); got != 1 {
		t.Errorf("requests{acct2,identity,200} = %v", got)
	}
	if got := testutil.ToFloat64(w.gw.meter.denials.WithLabelValues("acct2", reasonInvalidKey)); got != 1 {
		t.Errorf("denials{acct2,invalid_key} = %v", got)
	}
	// Nothing secret in any label.
	mfs, _ := w.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, k := range w.keys["acct2"] {
					if strings.Contains(l.GetValue(), k) {
						t.Errorf("a key appears in metric %s", mf.GetName())
					}
				}
			}
		}
	}
	// The counts name the account instance they were made to: an account
	// deleted and created again under the same id (a new InternalID) starts
	// its own counters, and each flush says whose counts it carries.
	w.accounts.update("acct2", func(a *Account) { a.InternalID = "acct2-second" })
	w.do(t, req{url: "/ai/acct2" + langPath, header: key1(w, "acct2")}).Body.Close()
	if err := w.gw.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var instances []string
	w.usage.each(acctID("acct2"), 0, "", func(u Usage) { instances = append(instances, u.Instance) })
	if len(instances) < 2 || instances[len(instances)-1] != "acct2-second" || instances[len(instances)-2] == "acct2-second" {
		t.Errorf("flushed instances %q", instances)
	}
}

func TestDenialAuditIsRateLimited(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.AuditRate = 1 })
	for range 50 {
		w.do(t, req{url: "/ai/acct1" + langPath, header: map[string]string{"api-key": "guess"}}).Body.Close()
	}
	w.gw.Flush(context.Background())
	w.audit.mu.Lock()
	n := len(w.audit.denials)
	d := w.audit.denials[0]
	w.audit.mu.Unlock()
	if n > 21 || n == 0 {
		t.Errorf("%d denials audited for 50 attempts with burst 20", n)
	}
	if d.AccountID != acctID("acct1") || d.Reason != reasonInvalidKey || d.Status != 401 || d.ClientAddress != "127.0.0.1" || d.Action != routes[0].dataAction {
		t.Errorf("denial %+v", d)
	}
	if got := testutil.ToFloat64(w.gw.meter.auditLost); int(got) != 50-n {
		t.Errorf("unaudited %v, want %d", got, 50-n)
	}
}

// TestNetworkRules: an account's network rules (publicNetworkAccess and
// networkAcls) are applied to the client's address before its credential
// is looked at, on the data plane and at the STS; the server's private
// networks bypass them.
func TestNetworkRules(t *testing.T) {
	rules := func(action string, ips ...string) *netacl.Rules {
		r := netacl.Rules{DefaultAction: action}
		for _, ip := range ips {
			r.IPRules = append(r.IPRules, netacl.IPRule{Value: ip})
		}
		return &r
	}
	for _, private := range []string{"", "127.0.0.0/8"} {
		t.Run("private="+private, func(t *testing.T) {
			nets, err := netacl.ParsePrefixes(private)
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t, func(o *Options) { o.PrivateNetworks = nets })
			for _, a := range []Account{
				{ID: acctID("fw-allow"), Name: "fw-allow", Kind: "AIServices", Network: netacl.Compile("Enabled", rules("Deny", "10.0.0.0/8", "127.0.0.1"))},
				{ID: acctID("fw-deny"), Name: "fw-deny", Kind: "AIServices", Network: netacl.Compile("Enabled", rules("Deny", "10.0.0.0/8", "::2"))},
				{ID: acctID("closed"), Name: "closed", Kind: "AIServices", Network: netacl.Compile("Disabled", nil)},
			} {
				w.keys[a.Name] = w.accounts.add(a)
			}
			identity := bearerHdr(w.tokens.identity("user-oid", CognitiveAudience))
			w.authz.grant("user-oid", routes[0].dataAction, acctID("fw-deny"))
			denied := func(code string) (int, string) {
				if private != "" {
					return 200, "" // the private network bypasses the rules
				}
				return 403, code
			}
			fwStatus, _ := denied("")
			for _, c := range []struct {
				name   string
				rq     req
				status int
				msg    string
			}{
				{"listed-address", req{url: "/ai/fw-allow" + langPath, header: key1(w, "fw-allow")}, 200, ""},
				{"unlisted-address-key", req{url: "/ai/fw-deny" + langPath, header: key1(w, "fw-deny")}, fwStatus, "Access denied due to Virtual Network/Firewall rules."},
				{"unlisted-address-identity", req{url: "fw-deny.cognitiveservices.gw.test" + langPath, header: identity}, fwStatus, "Access denied due to Virtual Network/Firewall rules."},
				// The firewall answers before the credential is looked at.
				{"unlisted-address-no-key", req{url: "/ai/fw-deny" + langPath}, map[bool]int{true: 401, false: 403}[private != ""], ""},
				{"public-access-disabled", req{url: "/ai/closed" + langPath, header: key1(w, "closed")}, fwStatus, "Public access is disabled. Please configure private endpoint."},
				{"sts-at-account", req{url: "/ai/closed/sts/v1.0/issueToken", header: key1(w, "closed")}, fwStatus, "Public access is disabled. Please configure private endpoint."},
				{"sts-at-root", req{url: "/sts/v1.0/issueToken", header: key1(w, "fw-deny")}, fwStatus, "Access denied due to Virtual Network/Firewall rules."},
				{"sts-at-root-allowed", req{url: "/sts/v1.0/issueToken", header: key1(w, "fw-allow")}, 200, ""},
			} {
				resp := w.do(t, c.rq)
				if resp.StatusCode != c.status {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Errorf("%s: status %d %s, want %d", c.name, resp.StatusCode, b, c.status)
					continue
				}
				if c.status == 403 {
					code, msg := azureErr(t, resp)
					if code != "403" || c.msg != "" && msg != c.msg {
						t.Errorf("%s: %s %q, want 403 %q", c.name, code, msg, c.msg)
					}
					continue
				}
				resp.Body.Close()
			}
			if private == "" {
				w.gw.Flush(context.Background())
				w.audit.mu.Lock()
				for _, d := range w.audit.denials {
					if (d.Reason == reasonFirewall || d.Reason == reasonPublicAccess) && d.ClientAddress != "127.0.0.1" {
						t.Errorf("audited denial without the client's address: %+v", d)
					}
				}
				w.audit.mu.Unlock()
				reasons := w.audit.reasons()
				fw, closed := reasons[reasonFirewall], reasons[reasonPublicAccess]
				if fw != 4 || closed != 2 {
					t.Errorf("audited %d firewall and %d public-access denials, want 4 and 2", fw, closed)
				}
			}
		})
	}
}

// TestUpstreamNetworks: with UpstreamNetworks named, an upstream whose
// address is outside them is never connected to (502 naming the cause);
// by default a link-local upstream (cloud metadata) is refused the same way.
func TestUpstreamNetworks(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.UpstreamNetworks = netacl.Networks{netip.MustParsePrefix("10.0.0.0/8")} })
	resp := w.do(t, req{url: "/ai/acct1" + chatPath, body: chatBody, header: key1(w, "acct1")})
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("an upstream outside the networks: %d", resp.StatusCode)
	}
	if code, msg := azureErr(t, resp); code != "BadGateway" || !strings.Contains(msg, "not in the networks this server may reach") {
		t.Errorf("%s %q", code, msg)
	}
	w.up.mu.Lock()
	if n := len(w.up.got); n != 0 {
		t.Errorf("the upstream saw %d requests", n)
	}
	w.up.mu.Unlock()

	d := newWorld(t)
	d.deps.put(acctID("acct1"), &Deployment{Name: "imds", Upstream: mustURL(t, "http://169.254.169.254/"), Model: "m"})
	resp = d.do(t, req{url: "/ai/acct1/openai/deployments/imds/chat/completions?api-version=2024-10-21", body: chatBody, header: key1(d, "acct1")})
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("a link-local upstream: %d", resp.StatusCode)
	}
	if _, msg := azureErr(t, resp); !strings.Contains(msg, "not in the networks") {
		t.Errorf("link-local: %q", msg)
	}
}

// TestProxyUpstreamAnswers: what of an upstream's answer reaches the
// client, through the gateway's own upstream client and through a plain
// http.Transport. A redirect never does (502: a client following it would
// carry its key and prompt where the upstream points); nor do URLs of the
// upstream's own (Location on a 200); a 204 goes without Content-Length
// (HTTP/2 clients reset a stream that has one); a 4xx keeps OpenAI's
// param and type and Azure's innererror, unless that echoes the
// deployment's credential; and the upstream is asked for an uncompressed
// answer, so its usage can be metered.
func TestProxyUpstreamAnswers(t *testing.T) {
	filtered := `{"error":{"message":"The response was filtered","type":"invalid_request_error","param":"prompt","code":"content_filter",` +
		`"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`
	echoed := `{"error":{"message":"no","type":"invalid_request_error","param":null,"code":"bad","innererror":{"got":"Bearer ` + upstreamK + `"}}}`
	answer := func(status string, fields []string, body string) string {
		return "HTTP/1.1 " + status + "\r\n" + strings.Join(append(fields, "Content-Length: "+strconv.Itoa(len(body))), "\r\n") + "\r\n\r\n" + body
	}
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			w := newWorld(t, onTransport(transport))
			for name, script := range map[string]string{
				"redirect": answer("307 Temporary Redirect", []string{"Location: http://elsewhere.example/v1/chat/completions"}, ""),
				"located": answer("200 OK", []string{"Content-Type: application/json", "Location: http://upstream.internal/x",
					"Content-Location: /v1/x", "X-Upstream-Thing: kept"}, `{"id":"1"}`),
				"no-content": "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
				"filtered":   answer("400 Bad Request", []string{"Content-Type: application/json"}, filtered),
				"echoed":     answer("400 Bad Request", []string{"Content-Type: application/json"}, echoed),
			} {
				url, _ := rawServer(t, script)
				w.deps.put(acctID("acct1"), &Deployment{Name: name, Upstream: mustURL(t, url), Model: "m", Credential: upstreamK})
			}
			call := func(deployment string) *http.Response {
				hdr := key1(w, "acct1")
				hdr["Accept-Encoding"] = "gzip, br"
				return w.do(t, req{url: "/ai/acct1/openai/deployments/" + deployment + "/chat/completions?api-version=2024-10-21", header: hdr, body: chatBody})
			}

			resp := call("redirect")
			if resp.StatusCode != 502 || resp.Header.Get("Location") != "" {
				t.Errorf("redirect: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if code, msg := azureErr(t, resp); code != "BadGateway" || !strings.Contains(msg, "redirect") {
				t.Errorf("redirect: %s %s", code, msg)
			}

			resp = call("located")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || resp.Header.Get("Content-Location") != "" ||
				resp.Header.Get("X-Upstream-Thing") != "kept" {
				t.Errorf("located: %d %v", resp.StatusCode, resp.Header)
			}

			resp = call("no-content")
			resp.Body.Close()
			if resp.StatusCode != 204 || resp.Header.Get("Content-Length") != "" {
				t.Errorf("no content: %d %v", resp.StatusCode, resp.Header)
			}

			resp = call("filtered")
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct {
					Code, Message, Param, Type string
					Inner                      struct {
						Code   string
						Result map[string]map[string]any `json:"content_filter_result"`
					} `json:"innererror"`
				}
			}
			if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 400 || e.Error.Code != "content_filter" || e.Error.Param != "prompt" ||
				e.Error.Type != "invalid_request_error" || e.Error.Inner.Code != "ResponsibleAIPolicyViolation" || e.Error.Inner.Result["hate"]["filtered"] != true {
				t.Errorf("filtered: %d %s", resp.StatusCode, b)
			}

			resp = call("echoed")
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || strings.Contains(string(b), upstreamK) || strings.Contains(string(b), "innererror") || !strings.Contains(string(b), `"code":"bad"`) {
				t.Errorf("echoed credential: %d %s", resp.StatusCode, b)
			}

			resp = call("chat")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := w.up.last().header.Values("Accept-Encoding"); resp.StatusCode != 200 || len(got) != 1 || got[0] != "identity" {
				t.Errorf("the upstream was asked for Accept-Encoding %q", got)
			}
		})
	}
}
