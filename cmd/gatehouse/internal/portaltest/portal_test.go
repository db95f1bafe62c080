// Package portaltest drives the web portal of a real node: over HTTP for
// its defences (sessions, cookies, cross-origin protection, throttling,
// authorization, audit) on both storage backends, and in headless Chromium
// for what a person does (browser_test.go).
package portaltest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/portal"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

const password = "correct horse battery staple"

// env is a node with one AI account and people holding different roles.
type env struct {
	*testenv.Server
	account *gatehouse.ResourceID
	// owner holds Owner on the subscription; reader Reader on the account;
	// nobody holds nothing.
	owner, reader, nobody *directory.User
	// up serves the node's model catalog (nil when it has none).
	up *testenv.Upstream
}

func newEnv(t *testing.T, opts ...testenv.Option) *env {
	s := testenv.Start(t, opts...)
	ctx := t.Context()
	e := &env{Server: s}
	sub := &gatehouse.ResourceID{Subscription: s.Bootstrap.SubscriptionID}
	e.account = (&gatehouse.ResourceID{Subscription: sub.Subscription, ResourceGroup: s.Bootstrap.ResourceGroup}).
		Child(accounts.Namespace, "accounts", "lang")
	if _, _, err := s.Accounts.Put(ctx, e.account, accounts.Spec{SKU: &accounts.SKU{Name: "S0"}, Kind: "TextAnalytics", Location: "westus"},
		accounts.Actor{ObjectID: s.Bootstrap.ClientID, Type: "Application"}); err != nil {
		t.Fatal(err)
	}
	person := func(name string) *directory.User {
		u, err := s.Directory.CreateUser(ctx, directory.UserSpec{UserName: name + "@example.test", DisplayName: name, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	e.owner, e.reader, e.nobody = person("olivia"), person("ravi"), person("nadia")
	assign := func(scope *gatehouse.ResourceID, role string, u *directory.User) {
		if _, _, err := s.Authz.CreateAssignment(ctx, scope, gatehouse.NewGUID(),
			authz.AssignmentSpec{RoleDefinitionID: role, PrincipalID: u.ObjectID}, s.Bootstrap.ClientID); err != nil {
			t.Fatal(err)
		}
	}
	assign(sub, authz.RoleOwner, e.owner)
	assign(e.account, authz.RoleReader, e.reader)
	return e
}

// browser is a cookie-keeping HTTP client that does not follow redirects
// and sends what a browser sends on a same-origin form post.
type browser struct {
	t      *testing.T
	e      *env
	client *http.Client
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, client: &http.Client{Transport: e.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.e.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.e.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil, nil) }
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do("POST", path, form, nil)
}

func (b *browser) signIn(u *directory.User) {
	b.t.Helper()
	p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}, "next": {"/portal/"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/" {
		b.t.Fatalf("sign in %s: %d %s\n%s", u.UserName, p.status, p.body, b.e.Logs.String())
	}
}

func (e *env) accountPath() string {
	return "/portal/accounts/" + e.account.Subscription + "/" + e.account.ResourceGroup + "/" + e.account.Name()
}

func TestPortal(t *testing.T) {
	for _, b := range testenv.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			up := testenv.NewUpstream(t, "portal-upstream-key")
			e := newEnv(t, append(b.Opts(t), testenv.WithConfig(func(c *app.Config) { c.Models = up.CatalogFile(t) }))...)
			e.up = up
			if b.HTTP1 {
				e.HTTP1()
				e.AssertFastPathServed(t, 50)
			}
			t.Run("sign-in-and-cookie", func(t *testing.T) { testSignIn(t, e) })
			t.Run("sign-out-ends-session", func(t *testing.T) { testSignOut(t, e) })
			t.Run("temporary-password", func(t *testing.T) { testTemporaryPassword(t, e) })
			t.Run("sign-in-replaces-session", func(t *testing.T) { testSignInAgain(t, e) })
			t.Run("revoked-and-disabled", func(t *testing.T) { testRevoked(t, e) })
			t.Run("headers-and-errors", func(t *testing.T) { testHeaders(t, e) })
			t.Run("cross-origin", func(t *testing.T) { testCrossOrigin(t, e) })
			t.Run("throttle", func(t *testing.T) { testThrottle(t, e) })
			t.Run("rbac", func(t *testing.T) { testRBAC(t, e) })
			t.Run("keys-and-rotation", func(t *testing.T) { testKeys(t, e) })
			t.Run("vault", func(t *testing.T) { testVault(t, e) })
			t.Run("tags", func(t *testing.T) { testTags(t, e) })
			t.Run("role-assignments", func(t *testing.T) { testRoles(t, e) })
			t.Run("activity", func(t *testing.T) { testActivity(t, e) })
			t.Run("form-sweep", func(t *testing.T) { testFormSweep(t, e) })
			t.Run("network-access", func(t *testing.T) { testNetworkAccess(t, e) })
			t.Run("deployment-capacity", func(t *testing.T) { testDeploymentCapacity(t, e) })
			t.Run("deleted-accounts", func(t *testing.T) { testDeletedAccounts(t, e) })
			t.Run("deploy-model", func(t *testing.T) { testDeployModel(t, e) })
			t.Run("device-sign-in", func(t *testing.T) { testDeviceSignIn(t, e) })
			t.Run("authorize-sign-in", func(t *testing.T) { testAuthorizeSignIn(t, e) })
			t.Run("sign-out-everywhere", func(t *testing.T) { testSignOutEverywhere(t, e) })
		})
	}
}

func testSignIn(t *testing.T, e *env) {
	b := e.browser(t)
	// A page without a session sends the person to sign in, and back.
	p := b.get(e.accountPath())
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin?next="+url.QueryEscape(e.accountPath()) {
		t.Fatalf("unauthenticated page: %d %q", p.status, p.header.Get("Location"))
	}
	if p = b.get("/portal/signin"); p.status != 200 || !strings.Contains(p.body, `id="signin"`) {
		t.Fatalf("sign-in page: %d", p.status)
	}
	// Wrong password and unknown user: the same answer.
	wrong := b.post("/portal/signin", url.Values{"username": {e.owner.UserName}, "password": {"not the password!"}})
	unknown := b.post("/portal/signin", url.Values{"username": {"nobody@example.test"}, "password": {"not the password!"}})
	for _, p := range []page{wrong, unknown} {
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "The user name or password is incorrect.") ||
			p.header.Get("Set-Cookie") != "" {
			t.Fatalf("bad credentials: %d %v %s", p.status, p.header, p.body)
		}
	}
	// Success: the cookie is __Host-, Secure, HttpOnly, SameSite=Strict;
	// an off-site next is ignored (no open redirect).
	p = b.post("/portal/signin", url.Values{"username": {strings.ToUpper(e.owner.UserName)}, "password": {password}, "next": {"https://evil.example/"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/" {
		t.Fatalf("sign in: %d %q %s", p.status, p.header.Get("Location"), p.body)
	}
	c := p.header.Get("Set-Cookie")
	for _, want := range []string{"__Host-gatehouse-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
	token := strings.TrimPrefix(strings.SplitN(c, ";", 2)[0], "__Host-gatehouse-session=")
	home := b.get("/portal/")
	if home.status != 200 || !strings.Contains(home.body, "olivia") || !strings.Contains(home.body, ">lang</a>") {
		t.Fatalf("home: %d %s", home.status, home.body)
	}
	// The store keeps only the token's hash.
	objs, err := e.Store.List(t.Context(), storage.ListOptions{Kind: portal.KindSession})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.Objects {
		if strings.Contains(o.Key, token) || strings.Contains(string(o.Data), token) {
			t.Fatal("the session token is stored as is")
		}
	}
	e.AssertNotLogged(t, token, password)
}

// testSignInAgain: signing in with a session already in the browser (say,
// another person's) ends that session; the old cookie no longer works.
func testSignInAgain(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.nobody)
	u, _ := url.Parse(e.URL + "/portal/")
	old := b.client.Jar.Cookies(u)
	b.signIn(e.owner)
	if p := b.get("/portal/"); p.status != 200 || !strings.Contains(p.body, "olivia") {
		t.Fatalf("after the second sign-in: %d", p.status)
	}
	c := e.browser(t)
	c.client.Jar.SetCookies(u, old)
	if p := c.get("/portal/"); p.status != http.StatusSeeOther {
		t.Fatalf("the replaced session still works: %d", p.status)
	}
}

func testSignOut(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	u, _ := url.Parse(e.URL + "/portal/")
	saved := b.client.Jar.Cookies(u)
	if p := b.post("/portal/signout", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	// The old cookie, replayed, no longer works: the session is gone from
	// the store, not only from the browser.
	b.client.Jar.SetCookies(u, saved)
	if p := b.get("/portal/"); p.status != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", p.status)
	}
}

func testRevoked(t *testing.T, e *env) {
	ctx := t.Context()
	u, err := e.Directory.CreateUser(ctx, directory.UserSpec{UserName: "temp@example.test", DisplayName: "temp", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(u)
	if _, err := e.Directory.RevokeSignInSessions(ctx, u.ObjectID); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/portal/"); p.status != http.StatusSeeOther {
		t.Fatalf("after revokeSignInSessions: %d", p.status)
	}
	b.signIn(u)
	if _, err := e.Directory.UpdateUser(ctx, u.ObjectID, directory.UserUpdate{Enabled: new(false)}); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/portal/"); p.status != http.StatusSeeOther {
		t.Fatalf("disabled person: %d", p.status)
	}
	if p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}}); p.status != http.StatusUnauthorized {
		t.Fatalf("disabled person signs in: %d", p.status)
	}
}

func testHeaders(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	for _, path := range []string{"/portal/", "/portal/signin", "/portal/no/such/page", e.accountPath()} {
		p := b.get(path)
		csp := p.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, p.header)
		}
		if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: content type %q", path, p.header.Get("Content-Type"))
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, " onclick=") {
			t.Errorf("%s: inline script or style, which the CSP would block", path)
		}
	}
	if p := b.get("/portal/no/such/page"); p.status != 404 || !strings.Contains(p.body, "There is no such page.") {
		t.Errorf("unknown page: %d", p.status)
	}
	// Paths that are not valid ARM names, and a resource that does not exist.
	for path, status := range map[string]int{
		"/portal/accounts/not-a-guid/default/lang":                                           404,
		"/portal/accounts/" + e.account.Subscription + "/default/no-such-account":            404,
		"/portal/accounts/" + e.account.Subscription + "/default/bad%00name":                 404,
		"/portal/vaults/" + e.account.Subscription + "/default/no-such-vault":                404,
		"/portal/accounts/" + e.account.Subscription + "/" + strings.Repeat("g", 200) + "/x": 404,
	} {
		if p := b.get(path); p.status != status || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want %d", path, p.status, p.header.Get("Content-Type"), status)
		}
	}
	// An oversized form is refused before it is read.
	big := url.Values{"keyName": {strings.Repeat("k", 64<<10)}}
	if p := b.post(e.accountPath()+"/regenerate", big); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", p.status)
	}
	if p := b.post(e.accountPath()+"/regenerate", url.Values{"keyName": {"Key3"}}); p.status != 400 {
		t.Errorf("bad key name: %d", p.status)
	}
	// Static assets are served with their types.
	if p := b.get("/portal/static/htmx.min.js"); p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), "javascript") {
		t.Errorf("htmx: %d %s", p.status, p.header.Get("Content-Type"))
	}
	if p := b.get("/portal/static/"); p.status != 404 {
		t.Errorf("static directory listing: %d", p.status)
	}
	// The management API ignores the portal's cookie: it wants a token.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.URL+"/subscriptions?api-version=2022-12-01", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ARM with only a portal cookie: %d", resp.StatusCode)
	}
	if strings.Contains(e.Logs.String(), `"status":500`) {
		t.Error("a request was answered 500")
	}
}

func testCrossOrigin(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	before, err := e.Accounts.ListKeys(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
	} {
		hdr["Content-Type"] = "application/x-www-form-urlencoded"
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.URL+e.accountPath()+"/regenerate", strings.NewReader("keyName=Key1"))
		for k, v := range hdr {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin %v: %d", hdr, resp.StatusCode)
		}
	}
	if after, _ := e.Accounts.ListKeys(t.Context(), e.account); after != before {
		t.Fatal("a cross-origin form regenerated a key")
	}
}

func testThrottle(t *testing.T, e *env) {
	// The person exists first: the throttle refills one attempt every 6 s,
	// so nothing slow (creating a person hashes a password) may come
	// between the refusal and the right password on a loaded machine.
	u, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "mallory@example.test", DisplayName: "m", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	var last page
	for range 12 {
		last = b.post("/portal/signin", url.Values{"username": {"mallory@example.test"}, "password": {"wrong wrong wrong"}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("after 12 failures: %d", last.status)
	}
	// Throttled means throttled: even the right password waits...
	if p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d", p.status)
	}
	// ...but only for that name: others at the same address sign in.
	b.signIn(e.nobody)
}

func testRBAC(t *testing.T, e *env) {
	// Nobody sees no accounts and cannot open one.
	b := e.browser(t)
	b.signIn(e.nobody)
	if p := b.get("/portal/"); !strings.Contains(p.body, `id="no-accounts"`) || strings.Contains(p.body, ">lang</a>") {
		t.Fatalf("nobody's home lists accounts: %s", p.body)
	}
	if p := b.get(e.accountPath()); p.status != http.StatusForbidden {
		t.Fatalf("nobody opens the account: %d", p.status)
	}
	// A reader sees the account but neither keys nor regeneration.
	r := e.browser(t)
	r.signIn(e.reader)
	p := r.get(e.accountPath())
	if p.status != 200 || strings.Contains(p.body, `id="show-keys"`) || strings.Contains(p.body, `id="regenerate-key1"`) {
		t.Fatalf("reader's account page: %d %s", p.status, p.body)
	}
	before, _ := e.Accounts.ListKeys(t.Context(), e.account)
	if p := r.post(e.accountPath()+"/keys", url.Values{}); p.status != http.StatusForbidden || strings.Contains(p.body, before.Key1) {
		t.Fatalf("reader shows keys: %d", p.status)
	}
	if p := r.post(e.accountPath()+"/regenerate", url.Values{"keyName": {"Key1"}}); p.status != http.StatusForbidden {
		t.Fatalf("reader regenerates: %d", p.status)
	}
	// From htmx the refusal is a keys-panel fragment saying why, not a page.
	p = r.do("POST", e.accountPath()+"/keys", url.Values{}, map[string]string{"HX-Request": "true"})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `id="keys-error"`) || strings.Contains(p.body, "<html") ||
		!strings.Contains(p.body, "listKeys/action") {
		t.Fatalf("htmx refusal: %d %s", p.status, p.body)
	}
	if after, _ := e.Accounts.ListKeys(t.Context(), e.account); after != before {
		t.Fatal("a reader regenerated a key")
	}
	// Both refusals are in the audit log as denied, under the reader.
	if n := countAudit(t, e, e.reader.ObjectID, audit.Denied); n < 2 {
		t.Fatalf("denied portal actions audited: %d", n)
	}
}

func countAudit(t *testing.T, e *env, oid string, result audit.Result) int {
	recs, err := e.Audit.List(context.WithoutCancel(t.Context()), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Entry.Principal.ObjectID == oid && r.Entry.Result == result && r.Entry.Surface == "portal" {
			n++
		}
	}
	return n
}

var keyValue = regexp.MustCompile(`id="value-(key[12])">([0-9a-f]{64})<`)

func shownKeys(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range keyValue.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func testKeys(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	p := b.get(e.accountPath())
	if p.status != 200 || !strings.Contains(p.body, `id="show-keys"`) || len(shownKeys(t, p.body)) != 0 {
		t.Fatalf("account page: %d (keys must stay hidden until asked)", p.status)
	}
	want, _ := e.Accounts.ListKeys(t.Context(), e.account)
	// Without JavaScript: the form post answers with the whole page.
	p = b.post(e.accountPath()+"/keys", url.Values{})
	if got := shownKeys(t, p.body); p.status != 200 || got["key1"] != want.Key1 || got["key2"] != want.Key2 {
		t.Fatalf("show keys: %d %v", p.status, got)
	}
	if !strings.Contains(p.header.Get("Cache-Control"), "no-store") {
		t.Error("keys are cacheable")
	}
	// With htmx: the keys panel alone.
	p = b.do("POST", e.accountPath()+"/regenerate", url.Values{"keyName": {"key2"}}, map[string]string{"HX-Request": "true"})
	after, _ := e.Accounts.ListKeys(t.Context(), e.account)
	got := shownKeys(t, p.body)
	if p.status != 200 || strings.Contains(p.body, "<html") || after.Key1 != want.Key1 || after.Key2 == want.Key2 ||
		got["key2"] != after.Key2 || !strings.Contains(p.body, "Key2 was regenerated") {
		t.Fatalf("regenerate key2: %d %v", p.status, got)
	}
	// Without JavaScript (no hx-confirm dialog) the button asks first, on
	// a page; only its own button regenerates.
	p = b.post(e.accountPath()+"/regenerate", url.Values{"keyName": {"key2"}})
	if again, _ := e.Accounts.ListKeys(t.Context(), e.account); p.status != 200 || again.Key2 != after.Key2 ||
		!strings.Contains(p.body, `id="confirm-question"`) || !strings.Contains(p.body, `name="confirm" value="yes"`) || !strings.Contains(p.body, `name="keyName" value="Key2"`) {
		t.Fatalf("regenerate without JavaScript: %d, key2 changed: %v", p.status, again.Key2 != after.Key2)
	}
	m := regexp.MustCompile(`name="generation" value="(\d+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("the confirm page carries no generation")
	}
	confirm := url.Values{"keyName": {"Key2"}, "confirm": {"yes"}, "generation": {m[1]}}
	p = b.post(e.accountPath()+"/regenerate", confirm)
	confirmed, _ := e.Accounts.ListKeys(t.Context(), e.account)
	if p.status != 200 || confirmed.Key2 == after.Key2 || confirmed.Key1 != want.Key1 || !strings.Contains(p.body, "Key2 was regenerated") {
		t.Fatalf("confirmed regeneration: %d", p.status)
	}
	// The same form again (a reload of that page) regenerates nothing.
	p = b.post(e.accountPath()+"/regenerate", confirm)
	if again, _ := e.Accounts.ListKeys(t.Context(), e.account); p.status != 200 || again.Key2 != confirmed.Key2 ||
		!strings.Contains(p.body, "Key2 was already regenerated") {
		t.Fatalf("the confirm form sent again: %d, key2 changed: %v", p.status, again.Key2 != confirmed.Key2)
	}
	after = confirmed
	// The old key2 fails on the data plane at once; key1 still works.
	for key, status := range map[string]int{want.Key2: 401, want.Key1: 200} {
		req, _ := newLanguageRequest(t, e, key)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("data plane after regeneration: %d, want %d", resp.StatusCode, status)
		}
	}
	// Usage evidence for key1 appears once the gateway flushes.
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	p = b.get(e.accountPath())
	if !strings.Contains(p.body, `class="in-use"`) || !strings.Contains(p.body, "127.0.0.1") {
		t.Fatalf("key usage not shown: %s", p.body)
	}
	// Tokens the upstreams reported (an OpenAI deployment's answers) are
	// part of the evidence.
	if err := e.Accounts.RecordUsage(t.Context(), []accounts.Usage{{AccountID: e.account.String(), Slot: accounts.Key1,
		Requests: 1, PromptTokens: 1200, CompletionTokens: 34, LastUsed: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if p = b.get(e.accountPath()); !strings.Contains(p.body, `<td id="tokens-key1">1234</td>`) {
		t.Fatalf("key1's tokens not shown: %s", p.body)
	}
	if n := countAudit(t, e, e.owner.ObjectID, audit.Succeeded); n < 2 {
		t.Fatalf("listKeys and regenerateKey from the portal audited: %d", n)
	}
	// A ReadOnly management lock stops the portal as it stops ARM: no
	// keys shown, none regenerated, until the lock is removed.
	if _, _, err := e.Resources.PutLock(t.Context(), e.account, "frozen", resources.LockSpec{Level: resources.LockReadOnly}, e.owner.ObjectID); err != nil {
		t.Fatal(err)
	}
	if p := b.post(e.accountPath()+"/keys", url.Values{}); p.status != http.StatusConflict || !strings.Contains(p.body, "ScopeLocked") || len(shownKeys(t, p.body)) != 0 {
		t.Fatalf("show keys under a ReadOnly lock: %d", p.status)
	}
	if p := b.post(e.accountPath()+"/regenerate", url.Values{"keyName": {"key1"}}); p.status != http.StatusConflict {
		t.Fatalf("regenerate under a ReadOnly lock: %d", p.status)
	}
	if p := b.get(e.accountPath()); !strings.Contains(p.body, `id="locks"`) || !strings.Contains(p.body, "<strong>ReadOnly</strong> frozen") ||
		strings.Contains(p.body, `id="show-keys"`) {
		t.Fatalf("the account page does not show the lock: %s", p.body)
	}
	if k, _ := e.Accounts.ListKeys(t.Context(), e.account); k.Key1 != after.Key1 {
		t.Fatal("a key changed under a ReadOnly lock")
	}
	if _, err := e.Resources.DeleteLock(t.Context(), e.account, "frozen"); err != nil {
		t.Fatal(err)
	}
	if p := b.post(e.accountPath()+"/keys", url.Values{}); p.status != 200 {
		t.Fatalf("show keys after unlocking: %d", p.status)
	}
	e.AssertNotLogged(t, want.Key1, want.Key2, after.Key2)
}

// newLanguageRequest is a language detection request to the account with key.
func newLanguageRequest(t *testing.T, e *env, key string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+"/ai/lang/language/:analyze-text?api-version=2023-04-01",
		strings.NewReader(`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello world"}]}}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", key)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// testVault: a vault's page lists its secrets' names and attributes to
// whoever may read their metadata, never a value; a person with only
// Reader on the vault sees the vault but not its secrets.
func testVault(t *testing.T, e *env) {
	ctx := t.Context()
	id := (&gatehouse.ResourceID{Subscription: e.account.Subscription, ResourceGroup: e.account.ResourceGroup}).
		Child("Microsoft.KeyVault", "vaults", "portal-kv")
	rbac := true
	v, _, err := e.Vaults.PutVault(ctx, id, vault.Spec{Location: "westus", TenantID: e.Directory.DefaultTenant(), EnableRbacAuthorization: &rbac},
		vault.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"})
	if err != nil {
		t.Fatal(err)
	}
	const value = "portal-secret-value-never-shown"
	if _, err := e.Vaults.SetSecret(ctx, v, "db-password", vault.SetInput{Value: []byte(value), ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	path := "/portal/vaults/" + id.Subscription + "/" + id.ResourceGroup + "/portal-kv"

	// The owner holds Owner, which has no data actions: the page says so.
	o := e.browser(t)
	o.signIn(e.owner)
	if p := o.get("/portal/"); !strings.Contains(p.body, `href="`+path+`"`) {
		t.Fatalf("home does not list the vault: %s", p.body)
	}
	if p := o.get(path); p.status != 200 || !strings.Contains(p.body, `id="secrets-denied"`) || strings.Contains(p.body, "db-password") {
		t.Fatalf("owner's vault page: %d %s", p.status, p.body)
	}
	// With Key Vault Reader (metadata, no values) the secret is listed.
	if _, _, err := e.Authz.CreateAssignment(ctx, id, gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.RoleKeyVaultReader, PrincipalID: e.owner.ObjectID}, e.Bootstrap.ClientID); err != nil {
		t.Fatal(err)
	}
	p := o.get(path)
	if p.status != 200 || !strings.Contains(p.body, `id="secrets"`) || !strings.Contains(p.body, "db-password") ||
		!strings.Contains(p.body, "text/plain") || strings.Contains(p.body, value) {
		t.Fatalf("vault page with Key Vault Reader: %d %s", p.status, p.body)
	}
	// The page says who may reach the vault's data plane.
	if !strings.Contains(p.body, `<dd id="network">all networks</dd>`) {
		t.Errorf("vault page without network rules: %s", p.body)
	}
	if _, err := e.Vaults.PatchVault(ctx, id, vault.Spec{NetworkACLs: &netacl.Rules{DefaultAction: "Deny", IPRules: []netacl.IPRule{{Value: "10.1.2.3"}}}},
		vault.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"}); err != nil {
		t.Fatal(err)
	}
	// The firewall holds here as on the data plane: the test's address is
	// not 10.1.2.3, so no secret is listed.
	if p := o.get(path); !strings.Contains(p.body, `<dd id="network">firewall: only 10.1.2.3</dd>`) ||
		!strings.Contains(p.body, `id="secrets-network-denied"`) || strings.Contains(p.body, "db-password") {
		t.Errorf("vault page with a firewall: %s", p.body)
	}
	// Nobody cannot open it.
	n := e.browser(t)
	n.signIn(e.nobody)
	if p := n.get(path); p.status != http.StatusForbidden || strings.Contains(p.body, "db-password") {
		t.Fatalf("nobody's vault page: %d", p.status)
	}
	e.AssertNotLogged(t, value)
}

// testRoles: whoever may write role assignments at the account grants a
// data role to an application from its page, and the application's
// identity token gets in at once; people are granted roles by user name;
// only grants made at the account can be removed there; a Reader sees
// the assignments but cannot change them; every change is audited.
func testRoles(t *testing.T, e *env) {
	ctx := t.Context()
	path := e.accountPath()

	// An application with no role: its identity token is refused.
	app, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "portal-granted-app", ServicePrincipal: true})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.Directory.AddSecret(ctx, app.AppID, directory.SecretSpec{DisplayName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	token := e.Token(t, e.SecretCredential(t, app.AppID, secret), "https://cognitiveservices.azure.com/.default")
	detect := func() int {
		req, err := newLanguageRequest(t, e, "")
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Del("Ocp-Apim-Subscription-Key")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := detect(); got == http.StatusOK {
		t.Fatal("an application without a role got in")
	}

	// A Reader sees the assignments, no form, and cannot post one.
	r := e.browser(t)
	r.signIn(e.reader)
	if p := r.get(path); p.status != 200 || !strings.Contains(p.body, `id="assignments"`) || strings.Contains(p.body, `id="add-role"`) ||
		strings.Contains(p.body, `id="remove-`) {
		t.Fatalf("reader's roles section: %d %s", p.status, p.body)
	}
	if p := r.post(path+"/roles", url.Values{"role": {authz.RoleCognitiveServicesUser}, "assignee": {app.AppID}}); p.status != http.StatusForbidden {
		t.Fatalf("reader adds a role: %d", p.status)
	}
	if detect() == http.StatusOK {
		t.Fatal("a reader's refused grant let the application in")
	}

	// The owner (Owner on the subscription) grants Cognitive Services User
	// to the application by its client id.
	o := e.browser(t)
	o.signIn(e.owner)
	p := o.get(path)
	if p.status != 200 || !strings.Contains(p.body, `id="add-role"`) || !strings.Contains(p.body, ">Cognitive Services User</option>") {
		t.Fatalf("owner's roles section: %d %s", p.status, p.body)
	}
	// Owner is inherited from the subscription: listed, not removable
	// here; the reader's Reader, made at the account, is.
	owners := e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: e.owner.ObjectID})
	readers := e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: e.reader.ObjectID})
	if len(owners) != 1 || len(readers) != 1 || !strings.Contains(p.body, `id="assignment-`+owners[0].Name+`"`) ||
		strings.Contains(p.body, `id="remove-`+owners[0].Name+`"`) || !strings.Contains(p.body, `id="remove-`+readers[0].Name+`"`) {
		t.Fatalf("removable assignments: owner %v, reader %v: %s", owners, readers, p.body)
	}
	p = o.post(path+"/roles", url.Values{"role": {authz.RoleCognitiveServicesUser}, "assignee": {app.AppID}})
	if p.status != 200 || !strings.Contains(p.body, "portal-granted-app now holds Cognitive Services User on lang.") {
		t.Fatalf("grant: %d %s", p.status, p.body)
	}
	if got := detect(); got != http.StatusOK {
		t.Fatalf("the granted application's token: %d, want 200", got)
	}
	granted := e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: app.ObjectID})
	if len(granted) != 1 || !strings.Contains(p.body, `id="remove-`+granted[0].Name+`"`) {
		t.Fatalf("assignments of the application: %v", granted)
	}
	// The same grant again, a stranger, a made-up role: the page says why
	// and keeps what was typed.
	for _, tc := range []struct {
		role, assignee string
		status         int
		says           string
	}{
		{authz.RoleCognitiveServicesUser, app.AppID, http.StatusConflict, "already holds Cognitive Services User here"},
		{authz.RoleCognitiveServicesUser, "someone@elsewhere.test", http.StatusBadRequest, "No person, service principal, managed identity or group"},
		{authz.RoleCognitiveServicesUser, "", http.StatusBadRequest, "Name who is to hold the role"},
		{"not-a-role", app.AppID, http.StatusBadRequest, "Choose one of the roles offered"},
	} {
		p := o.post(path+"/roles", url.Values{"role": {tc.role}, "assignee": {tc.assignee}})
		if p.status != tc.status || !strings.Contains(p.body, `id="roles-error"`) || !strings.Contains(p.body, tc.says) ||
			!strings.Contains(p.body, `value="`+tc.assignee+`"`) {
			t.Fatalf("grant %q to %q: %d %s", tc.role, tc.assignee, p.status, p.body)
		}
	}

	// A person by user name: nobody gets Reader and opens the account.
	p = o.post(path+"/roles", url.Values{"role": {authz.RoleReader}, "assignee": {e.nobody.UserName}})
	if p.status != 200 || !strings.Contains(p.body, e.nobody.UserName+" now holds Reader") {
		t.Fatalf("grant Reader to a person: %d %s", p.status, p.body)
	}
	n := e.browser(t)
	n.signIn(e.nobody)
	if p := n.get(path); p.status != 200 {
		t.Fatalf("nobody with Reader: %d", p.status)
	}
	// Removing both grants takes effect at once.
	for _, pid := range []string{e.nobody.ObjectID, app.ObjectID} {
		as := e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: pid})
		if len(as) != 1 {
			t.Fatalf("assignments of %s: %v", pid, as)
		}
		if p := r.post(path+"/roles/"+as[0].Name+"/delete", url.Values{}); p.status != http.StatusForbidden {
			t.Fatalf("reader removes a role: %d", p.status)
		}
		if p := r.get(path + "/roles/" + as[0].Name + "/delete"); p.status != http.StatusForbidden {
			t.Fatalf("reader is asked to confirm a removal: %d", p.status)
		}
		// Remove asks first (a page that changes nothing), then posts.
		if p := o.get(path + "/roles/" + as[0].Name + "/delete"); p.status != 200 || !strings.Contains(p.body, `id="confirm-question"`) ||
			!strings.Contains(p.body, " on lang?") || !strings.Contains(p.body, `<form method="post" action="`+path+`/roles/`+as[0].Name+`/delete"`) {
			t.Fatalf("confirmation page: %d %s", p.status, p.body)
		}
		if len(e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: pid})) != 1 {
			t.Fatal("asking removed the assignment")
		}
		if p := o.post(path+"/roles/"+as[0].Name+"/delete", url.Values{}); p.status != 200 || !strings.Contains(p.body, `id="roles-flash"`) ||
			strings.Contains(p.body, `id="assignment-`+as[0].Name+`"`) {
			t.Fatalf("remove: %d %s", p.status, p.body)
		}
	}
	if p := n.get(path); p.status != http.StatusForbidden {
		t.Fatalf("nobody after the removal: %d", p.status)
	}
	if got := detect(); got == http.StatusOK {
		t.Fatal("the application still gets in after its role was removed")
	}
	// An inherited grant (the owner's, at the subscription) cannot be
	// removed through the account; a made-up one is not there.
	for _, name := range []string{owners[0].Name, gatehouse.NewGUID(), "not-a-guid"} {
		if p := o.post(path+"/roles/"+name+"/delete", url.Values{}); p.status != http.StatusNotFound {
			t.Fatalf("remove %s through the account: %d", name, p.status)
		}
		if p := o.get(path + "/roles/" + name + "/delete"); p.status != http.StatusNotFound {
			t.Fatalf("confirm removing %s through the account: %d", name, p.status)
		}
	}
	if len(e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: e.owner.ObjectID})) != 1 {
		t.Fatal("the inherited Owner assignment is gone")
	}
	// The same on a vault page: Key Vault Secrets User for the application.
	vpath := "/portal/vaults/" + e.account.Subscription + "/" + e.account.ResourceGroup + "/portal-kv"
	if p := o.post(vpath+"/roles", url.Values{"role": {authz.RoleKeyVaultSecretsUser}, "assignee": {app.ObjectID}}); p.status != 200 ||
		!strings.Contains(p.body, "now holds Key Vault Secrets User on portal-kv.") {
		t.Fatalf("grant on the vault: %d %s", p.status, p.body)
	}
	if kv := e.Authz.Assignments(authz.AssignmentFilter{PrincipalID: app.ObjectID}); len(kv) != 1 {
		t.Fatalf("the application's assignments: %v", kv)
	} else if p := o.get(vpath + "/roles/" + kv[0].Name + "/delete"); p.status != 200 ||
		!strings.Contains(p.body, "Remove Key Vault Secrets User from portal-granted-app") || !strings.Contains(p.body, " on portal-kv?") {
		t.Fatalf("confirming a removal on the vault: %d %s", p.status, p.body)
	}
	// A vault that does not exist takes no role (it would hold for one
	// created under the name later).
	ghost := "/portal/vaults/" + e.account.Subscription + "/" + e.account.ResourceGroup + "/ghost-kv"
	if p := o.post(ghost+"/roles", url.Values{"role": {authz.RoleKeyVaultSecretsUser}, "assignee": {app.ObjectID}}); p.status != 404 {
		t.Fatalf("grant on a vault that does not exist: %d %s", p.status, p.body)
	}
	if kv := e.Authz.Assignments(authz.AssignmentFilter{PrincipalID: app.ObjectID}); len(kv) != 1 {
		t.Fatalf("the application's assignments after the ghost grant: %v", kv)
	}
	// A group by its object id: the grant names the group, the list shows it.
	grp, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "Portal Readers", MailNickname: "portal-readers"})
	if err != nil {
		t.Fatal(err)
	}
	if p := o.post(vpath+"/roles", url.Values{"role": {authz.RoleKeyVaultSecretsUser}, "assignee": {grp.ObjectID}}); p.status != 200 ||
		!strings.Contains(p.body, "the group Portal Readers now holds Key Vault Secrets User") || !strings.Contains(p.body, "Portal Readers ("+grp.ObjectID+")") {
		t.Fatalf("grant to a group: %d %s", p.status, p.body)
	}
	// Audited: two grants and two removals by the owner, and the reader's
	// three refusals.
	recs, err := e.Audit.List(context.WithoutCancel(ctx), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, rec := range recs {
		if rec.Entry.Surface == "portal" && strings.HasPrefix(rec.Entry.Action, "Microsoft.Authorization/roleAssignments/") {
			counts[rec.Entry.Principal.ObjectID+" "+rec.Entry.Action+" "+string(rec.Entry.Result)]++
		}
	}
	for key, want := range map[string]int{
		e.owner.ObjectID + " Microsoft.Authorization/roleAssignments/write " + string(audit.Succeeded):  4, // with the group's
		e.owner.ObjectID + " Microsoft.Authorization/roleAssignments/delete " + string(audit.Succeeded): 2,
		e.reader.ObjectID + " Microsoft.Authorization/roleAssignments/write " + string(audit.Denied):    1,
		e.reader.ObjectID + " Microsoft.Authorization/roleAssignments/delete " + string(audit.Denied):   2,
	} {
		if counts[key] != want {
			t.Errorf("audited %s: %d, want %d (all: %v)", key, counts[key], want, counts)
		}
	}
	e.AssertNotLogged(t, secret, token)
}

// testActivity: the account's activity page shows, to whoever administers
// access there, what the earlier scenarios did and were refused on the
// account, newest first, with names; a Reader gets no link and a 403;
// both reads are audited; no key value appears.
func testActivity(t *testing.T, e *env) {
	path := e.accountPath()
	o := e.browser(t)
	o.signIn(e.owner)
	if p := o.get(path); !strings.Contains(p.body, `href="`+path+`/activity" id="activity-link"`) {
		t.Fatalf("no activity link for the owner: %s", p.body)
	}
	p := o.get(path + "/activity")
	if p.status != 200 || !strings.Contains(p.body, `id="activity"`) {
		t.Fatalf("activity page: %d %s", p.status, p.body)
	}
	for _, want := range []string{
		"Microsoft.CognitiveServices/accounts/regenerateKey/action", "keyName=Key2", // testKeys
		"Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", // testRoles
		e.owner.UserName, e.reader.UserName, "Denied", "portal",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("activity page lacks %q", want)
		}
	}
	// Newest first: the role removals came after the key regeneration.
	if strings.Index(p.body, "roleAssignments/delete") > strings.Index(p.body, "regenerateKey/action") {
		t.Error("activity is not newest first")
	}
	keys, _ := e.Accounts.ListKeys(t.Context(), e.account)
	if strings.Contains(p.body, keys.Key1) || strings.Contains(p.body, keys.Key2) {
		t.Fatal("a key value on the activity page")
	}
	vpath := "/portal/vaults/" + e.account.Subscription + "/" + e.account.ResourceGroup + "/portal-kv"
	if p := o.get(vpath + "/activity"); p.status != 200 || !strings.Contains(p.body, "roleAssignments/write") {
		t.Fatalf("vault activity: %d %s", p.status, p.body)
	}

	r := e.browser(t)
	r.signIn(e.reader)
	if p := r.get(path); strings.Contains(p.body, `id="activity-link"`) {
		t.Fatal("a reader sees the activity link")
	}
	if p := r.get(path + "/activity"); p.status != http.StatusForbidden || strings.Contains(p.body, `id="activity"`) {
		t.Fatalf("reader's activity page: %d", p.status)
	}
	// Reading the activity is audited, and so is the refusal.
	recs, err := e.Audit.List(context.WithoutCancel(t.Context()), 0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]int{}
	for _, rec := range recs {
		if rec.Entry.Action == "Microsoft.Authorization/auditLogs/read" && rec.Entry.Surface == "portal" {
			reads[rec.Entry.Principal.ObjectID+" "+string(rec.Entry.Result)]++
		}
	}
	if reads[e.owner.ObjectID+" "+string(audit.Succeeded)] != 2 || reads[e.reader.ObjectID+" "+string(audit.Denied)] != 1 {
		t.Errorf("audited activity reads: %v", reads)
	}
}

// testNetworkAccess: the account page says who may reach the data plane,
// as the account's network rules decide it.
func testNetworkAccess(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	network := func() string {
		t.Helper()
		p := b.get(e.accountPath())
		_, rest, ok := strings.Cut(p.body, `<dd id="network">`)
		text, _, _ := strings.Cut(rest, "</dd>")
		if p.status != 200 || !ok {
			t.Fatalf("account page: %d %s", p.status, p.body)
		}
		return text
	}
	if got := network(); got != "all networks" {
		t.Errorf("without rules: %q", got)
	}
	by := accounts.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"}
	set := func(p accounts.Properties) {
		t.Helper()
		if _, err := e.Accounts.Patch(t.Context(), e.account, accounts.Spec{Properties: p}, by); err != nil {
			t.Fatal(err)
		}
	}
	set(accounts.Properties{NetworkACLs: &netacl.Rules{DefaultAction: "Deny", IPRules: []netacl.IPRule{{Value: "10.0.0.0/8"}, {Value: "2001:db8::1"}}}})
	if got := network(); got != "firewall: only 10.0.0.0/8, 2001:db8::1" {
		t.Errorf("firewall: %q", got)
	}
	set(accounts.Properties{PublicNetworkAccess: ptr("Disabled")})
	if got := network(); got != "public access disabled: only the server's private networks" {
		t.Errorf("public access disabled: %q", got)
	}
	set(accounts.Properties{PublicNetworkAccess: ptr("Enabled"), NetworkACLs: &netacl.Rules{DefaultAction: "Allow"}})
	if got := network(); got != "all networks" {
		t.Errorf("rules lifted: %q", got)
	}

	// The outbound restriction (data loss prevention) is shown too.
	outbound := func() string {
		t.Helper()
		_, rest, _ := strings.Cut(b.get(e.accountPath()).body, `<dd id="outbound">`)
		text, _, _ := strings.Cut(rest, "</dd>")
		return text
	}
	if got := outbound(); got != "any upstream" {
		t.Errorf("unrestricted: %q", got)
	}
	set(accounts.Properties{RestrictOutboundNetworkAccess: ptr(true), AllowedFQDNList: &[]string{"vllm.internal", "10.0.0.5"}})
	if got := outbound(); got != "restricted: its own upstreams only at vllm.internal, 10.0.0.5" {
		t.Errorf("restricted: %q", got)
	}
	set(accounts.Properties{RestrictOutboundNetworkAccess: ptr(false), AllowedFQDNList: &[]string{}})
	if got := outbound(); got != "any upstream" {
		t.Errorf("lifted: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

// newAccount creates an account of kind in the test's resource group, as
// the bootstrap principal.
func (e *env) newAccount(t testing.TB, name, kind string) (*gatehouse.ResourceID, *accounts.Account) {
	t.Helper()
	id := (&gatehouse.ResourceID{Subscription: e.account.Subscription, ResourceGroup: e.account.ResourceGroup}).
		Child("Microsoft.CognitiveServices", "accounts", name)
	a, _, err := e.Accounts.Put(t.Context(), id, accounts.Spec{SKU: &accounts.SKU{Name: "S0"}, Kind: kind, Location: "westus"},
		accounts.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"})
	if err != nil {
		t.Fatal(err)
	}
	return id, a
}

// testDeletedAccounts: a deleted account is listed on the home page, with
// a Recover button for whoever may write it; recovering brings it back
// with its keys. Someone without a role sees nothing and cannot recover.
func testDeletedAccounts(t *testing.T, e *env) {
	ctx := t.Context()
	id, _ := e.newAccount(t, "portal-del", "TextAnalytics")
	keys, _ := e.Accounts.ListKeys(ctx, id)
	if _, err := e.Accounts.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	recoverPath := "/portal/accounts/" + id.Subscription + "/" + id.ResourceGroup + "/portal-del/recover"

	nb := e.browser(t)
	nb.signIn(e.nobody)
	if p := nb.get("/portal/"); strings.Contains(p.body, "portal-del") {
		t.Error("someone without a role sees the deleted account")
	}
	if p := nb.post(recoverPath, url.Values{"location": {"westus"}}); p.status != http.StatusForbidden {
		t.Errorf("recover without a role: %d", p.status)
	}
	if _, err := e.Accounts.Get(ctx, id); err == nil {
		t.Fatal("recovered by someone without a role")
	}

	b := e.browser(t)
	b.signIn(e.owner)
	p := b.get("/portal/")
	if p.status != 200 || !strings.Contains(p.body, `id="deleted-accounts"`) || !strings.Contains(p.body, `id="recover-portal-del"`) {
		t.Fatalf("home page: %d %s", p.status, p.body)
	}
	p = b.post(recoverPath, url.Values{"location": {"westus"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != strings.TrimSuffix(recoverPath, "/recover") {
		t.Fatalf("recover: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	if got, err := e.Accounts.ListKeys(ctx, id); err != nil || got != keys {
		t.Fatalf("keys after recover: %v", err)
	}
	if m, ok := e.Accounts.LookupKey(keys.Key1); !ok || m.Account.Name != "portal-del" {
		t.Fatal("the recovered account's key is refused")
	}
	if p := b.get("/portal/"); strings.Contains(p.body, `id="recover-portal-del"`) {
		t.Error("the recovered account is still listed as deleted")
	}
	refused := 0
	if err := e.Audit.Each(ctx, 0, func(r *audit.Record) error {
		if r.Entry.Principal.ObjectID == e.nobody.ObjectID && r.Entry.Result == audit.Denied && r.Entry.Scope == id.String() {
			refused++
		}
		return nil
	}); err != nil || refused != 1 {
		t.Errorf("refused recovers audited: %d %v", refused, err)
	}
	e.AssertNotLogged(t, keys.Key1, keys.Key2)
}

// testDeploymentCapacity: the account page lists the deployments with
// what their capacity allows, and says the server does not enforce it
// (the node runs without --deployment-quotas).
func testDeploymentCapacity(t *testing.T, e *env) {
	ctx := t.Context()
	by := accounts.Actor{ObjectID: e.Bootstrap.ClientID, Type: "Application"}
	id, acct := e.newAccount(t, "portal-oai", "OpenAI")
	if _, _, err := e.Deployments.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{
		Model: accounts.DeploymentModel{Format: "OpenAI", Name: "gpt-4o"}, SKU: &accounts.DeploymentSKU{Name: "Standard", Capacity: 3},
		Endpoint: "http://127.0.0.1:9"}, by); err != nil {
		t.Fatal(err)
	}
	// A deployment of the catalog's model: the page does not show the
	// operator's upstream.
	if _, _, err := e.Deployments.PutDeployment(ctx, acct, "mini", accounts.DeploymentSpec{
		Model: accounts.DeploymentModel{Name: "gpt-4o-mini"}}, by); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.owner)
	p := b.get("/portal/accounts/" + id.Subscription + "/" + id.ResourceGroup + "/portal-oai")
	if p.status != 200 || !strings.Contains(p.body, `<td>3: 3000 tokens, 18 requests a minute (not enforced)</td>`) {
		t.Errorf("account page: %d %s", p.status, p.body)
	}
	if !strings.Contains(p.body, `<td>mini</td><td>gpt-4o-mini (2024-07-18)</td><td><code>the server&#39;s model catalog</code></td>`) ||
		strings.Contains(p.body, e.up.URL) {
		t.Errorf("the catalog deployment's row: %s", p.body)
	}
	// How OpenAI's clients reach it: the v1 base URL and the Realtime URL.
	for _, want := range []string{
		`<code id="openai-base">` + acct.Endpoint + `openai/v1/</code>`,
		`<code id="realtime-url">wss://` + strings.TrimPrefix(acct.Endpoint, "https://") + `openai/v1/realtime?model={deployment}</code>`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("account page lacks %s", want)
		}
	}
}

// testDeployModel: an account's page offers the server's model catalog to
// whoever may write deployments there; deploying one and deleting it
// work, are audited, and are refused (and audited) to others.
func testDeployModel(t *testing.T, e *env) {
	ctx := t.Context()
	id, acct := e.newAccount(t, "portal-deploy", "AIServices")
	path := "/portal/accounts/" + id.Subscription + "/" + id.ResourceGroup + "/portal-deploy"

	// The owner sees the form with every catalog model.
	b := e.browser(t)
	b.signIn(e.owner)
	p := b.get(path)
	for _, want := range []string{`id="deploy-form"`, `<option value="OpenAI|gpt-4o-mini|2024-07-18">gpt-4o-mini (2024-07-18)</option>`,
		`<option value="OpenAI|text-embedding-3-small|">text-embedding-3-small</option>`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("account page lacks %s: %s", want, p.body)
		}
	}
	p = b.post(path+"/deployments", url.Values{"deploymentName": {"web-mini"}, "model": {"OpenAI|gpt-4o-mini|2024-05-13"}, "capacity": {"3"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != path+"#deployments" {
		t.Fatalf("deploy: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	d, err := e.Deployments.GetDeployment(ctx, acct, "web-mini")
	if err != nil || !d.Catalog || d.Model.Version != "2024-05-13" || d.SKU.Capacity != 3 || d.CreatedBy.ObjectID != e.owner.ObjectID {
		t.Fatalf("deployed: %+v %v", d, err)
	}
	if dp, ok := e.Deployments.Lookup(acct.InternalID, "web-mini"); !ok || dp.Key != e.up.Key {
		t.Error("the gateway does not serve the deployment")
	}
	if p := b.get(path); !strings.Contains(p.body, `<td>web-mini</td><td>gpt-4o-mini (2024-05-13)</td>`) ||
		!strings.Contains(p.body, `id="delete-deployment-web-mini"`) {
		t.Errorf("the page does not list it: %s", p.body)
	} else if !regexp.MustCompile(`id="deploy-quotas">Quota in westus [^<]*gpt-4o-mini: [1-9][0-9]* of 50 `).MatchString(p.body) ||
		strings.Contains(p.body, "text-embedding-3-small: ") {
		// The catalog's quota of gpt-4o-mini (50), with what is deployed;
		// a model without a quota is not shown.
		t.Errorf("the deploy form does not show the quota: %s", p.body)
	}
	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"not-in-catalog", url.Values{"deploymentName": {"x1"}, "model": {"OpenAI|gpt-5|"}, "capacity": {"1"}}, 400, "is not offered by this server"},
		{"over-capacity", url.Values{"deploymentName": {"x1"}, "model": {"OpenAI|gpt-4o-mini|"}, "capacity": {"21"}}, 400, "more than the model"},
		{"bad-name", url.Values{"deploymentName": {"-x"}, "model": {"OpenAI|gpt-4o-mini|"}, "capacity": {"1"}}, 400, "is invalid"},
		{"no-model", url.Values{"deploymentName": {"x1"}, "capacity": {"1"}}, 400, "Choose a model"},
		{"bad-capacity", url.Values{"deploymentName": {"x1"}, "model": {"OpenAI|gpt-4o-mini|"}, "capacity": {"many"}}, 400, "whole number"},
		// The form makes new deployments; it does not replace one.
		{"name-taken", url.Values{"deploymentName": {"web-mini"}, "model": {"OpenAI|gpt-4o-mini|"}, "capacity": {"1"}}, 409, "has a deployment named web-mini already"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := b.post(path+"/deployments", tt.form)
			if p.status != tt.status || !strings.Contains(p.body, tt.want) {
				t.Errorf("%d, want %d with %q: %s", p.status, tt.status, tt.want, p.body)
			}
		})
	}
	if _, err := e.Deployments.GetDeployment(ctx, acct, "x1"); err == nil {
		t.Error("a refused deployment was stored")
	}
	if d, err := e.Deployments.GetDeployment(ctx, acct, "web-mini"); err != nil || d.SKU.Capacity != 3 {
		t.Errorf("the deployment the name-taken form named changed: %+v %v", d, err)
	}

	// A reader sees neither the form nor a delete button, and is refused.
	if _, _, err := e.Authz.CreateAssignment(ctx, id, gatehouse.NewGUID(),
		authz.AssignmentSpec{RoleDefinitionID: authz.RoleReader, PrincipalID: e.reader.ObjectID}, e.Bootstrap.ClientID); err != nil {
		t.Fatal(err)
	}
	r := e.browser(t)
	r.signIn(e.reader)
	if p := r.get(path); p.status != 200 || strings.Contains(p.body, `id="deploy-form"`) || strings.Contains(p.body, `delete-deployment-`) ||
		!strings.Contains(p.body, `<td>web-mini</td>`) {
		t.Errorf("reader's page: %d %s", p.status, p.body)
	}
	denied := countAudit(t, e, e.reader.ObjectID, audit.Denied)
	if p := r.post(path+"/deployments", url.Values{"deploymentName": {"r1"}, "model": {"OpenAI|gpt-4o-mini|"}, "capacity": {"1"}}); p.status != http.StatusForbidden {
		t.Errorf("reader deploys: %d", p.status)
	}
	if p := r.post(path+"/deployments/web-mini/delete", nil); p.status != http.StatusForbidden {
		t.Errorf("reader deletes: %d", p.status)
	}
	if p := r.get(path + "/deployments/web-mini/delete"); p.status != http.StatusForbidden || strings.Contains(p.body, `id="confirm"`) {
		t.Errorf("reader is asked to confirm a delete: %d", p.status)
	}
	if n := countAudit(t, e, e.reader.ObjectID, audit.Denied); n != denied+2 {
		t.Errorf("reader's refusals audited: %d, want %d", n, denied+2)
	}
	if _, err := e.Deployments.GetDeployment(ctx, acct, "web-mini"); err != nil {
		t.Fatal("the reader deleted the deployment")
	}

	// The owner deletes it: the Delete button leads to a page that asks
	// (and deletes nothing), whose own button posts the deletion.
	succeeded := countAudit(t, e, e.owner.ObjectID, audit.Succeeded)
	p = b.get(path + "/deployments/web-mini/delete")
	if p.status != http.StatusOK || !strings.Contains(p.body, `Delete the deployment web-mini of the account `+acct.Name+`?`) ||
		!strings.Contains(p.body, `<form method="post" action="`+path+`/deployments/web-mini/delete"`) ||
		!strings.Contains(p.body, `id="confirm"`) || !strings.Contains(p.body, `href="`+path+`#deployments" id="cancel"`) {
		t.Fatalf("confirmation page: %d %s", p.status, p.body)
	}
	if _, err := e.Deployments.GetDeployment(ctx, acct, "web-mini"); err != nil {
		t.Fatal("asking deleted the deployment")
	}
	for target, want := range map[string]int{
		path + "/deployments/no-such/delete": http.StatusNotFound,
		path + "/deployments/-x/delete":      http.StatusBadRequest,
	} {
		if p := b.get(target); p.status != want {
			t.Errorf("GET %s: %d, want %d", target, p.status, want)
		}
	}
	if p := b.post(path+"/deployments/web-mini/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", p.status, p.body)
	}
	if _, err := e.Deployments.GetDeployment(ctx, acct, "web-mini"); err == nil {
		t.Error("still there after delete")
	}
	if _, ok := e.Deployments.Lookup(acct.InternalID, "web-mini"); ok {
		t.Error("the gateway still serves it")
	}
	if n := countAudit(t, e, e.owner.ObjectID, audit.Succeeded); n != succeeded+1 {
		t.Errorf("the delete was not audited: %d, want %d", n, succeeded+1)
	}

	// A Language account has no deployments: no form.
	if p := b.get(e.accountPath()); strings.Contains(p.body, `id="deploy-form"`) {
		t.Error("a Language account offers deployments")
	}
}

// testTemporaryPassword: a person whose password an administrator set as
// temporary (forceChangePasswordNextSignIn) signs in by choosing a new
// one on the sign-in page: the right temporary password brings the change
// form (no session yet), mismatched or unchanged passwords are refused,
// and the change signs them in; the temporary password is dead after.
func testTemporaryPassword(t *testing.T, e *env) {
	const temp, chosen = "temporary password 1", "chosen password 22"
	u, err := e.Directory.CreateUser(context.WithoutCancel(t.Context()), directory.UserSpec{UserName: "temporary@example.test", DisplayName: "Temporary",
		Password: temp, ForceChangePassword: true})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {temp}, "next": {"/portal/"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="newpassword"`) || p.header.Get("Set-Cookie") != "" {
		t.Fatalf("temporary password: %d %v %s", p.status, p.header, p.body)
	}
	change := func(current, next, confirm string) page {
		return b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {current}, "newpassword": {next},
			"confirmpassword": {confirm}, "next": {"/portal/"}})
	}
	for name, tt := range map[string]struct {
		p      page
		status int
		says   string
	}{
		"mismatch":      {change(temp, chosen, chosen+"x"), http.StatusBadRequest, "do not match"},
		"same":          {change(temp, temp, temp), http.StatusBadRequest, "must differ"},
		"short":         {change(temp, "short", "short"), http.StatusBadRequest, "12 to 256"},
		"wrong-current": {change("wrong password 12", chosen, chosen), http.StatusUnauthorized, "incorrect"},
	} {
		if tt.p.status != tt.status || !strings.Contains(tt.p.body, tt.says) || !strings.Contains(tt.p.body, `id="newpassword"`) || tt.p.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %s", name, tt.p.status, tt.p.body)
		}
	}
	p = change(temp, chosen, chosen)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/" || !strings.Contains(p.header.Get("Set-Cookie"), "__Host-gatehouse-session=") {
		t.Fatalf("change: %d %v %s", p.status, p.header, p.body)
	}
	if home := b.get("/portal/"); home.status != 200 || !strings.Contains(home.body, "temporary@example.test") {
		t.Fatalf("home after the change: %d", home.status)
	}
	if p := e.browser(t).post("/portal/signin", url.Values{"username": {u.UserName}, "password": {temp}}); p.status != http.StatusUnauthorized {
		t.Fatalf("the temporary password after the change: %d", p.status)
	}
	if p := e.browser(t).post("/portal/signin", url.Values{"username": {u.UserName}, "password": {chosen}, "next": {"/portal/"}}); p.status != http.StatusSeeOther {
		t.Fatalf("the chosen password: %d %s", p.status, p.body)
	}
}
