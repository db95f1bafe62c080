package portaltest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
)

// deviceFlow is an app's side of a device sign-in: the code it got and a
// way to poll with it.
type deviceFlow struct {
	UserCode   string `json:"user_code"`
	DeviceCode string `json:"device_code"`
	URI        string `json:"verification_uri"`
}

func (e *env) oauthPost(t *testing.T, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func (e *env) startDevice(t *testing.T) deviceFlow {
	t.Helper()
	status, m := e.oauthPost(t, "/adfs/oauth2/devicecode", url.Values{"client_id": {authority.CLIClientID},
		"scope": {"https://management.core.windows.net//.default offline_access openid"}})
	if status != 200 {
		t.Fatalf("devicecode: %d %v", status, m)
	}
	raw, _ := json.Marshal(m)
	var f deviceFlow
	_ = json.Unmarshal(raw, &f)
	return f
}

func (e *env) pollDevice(t *testing.T, f deviceFlow) (int, map[string]any) {
	t.Helper()
	return e.oauthPost(t, "/adfs/oauth2/token", url.Values{"grant_type": {authority.GrantDeviceCode},
		"client_id": {authority.CLIClientID}, "device_code": {f.DeviceCode}})
}

// testDeviceSignIn: the device page — reached before signing in (the code
// in its link survives the sign-in), the code typed, what asks for what
// shown, approved or declined; wrong codes are throttled like wrong
// passwords, a decided code cannot be decided again, and the app gets the
// person's token only after the approval.
func testDeviceSignIn(t *testing.T, e *env) {
	ctx := context.WithoutCancel(t.Context())
	u, err := e.Directory.CreateUser(ctx, directory.UserSpec{UserName: "dev@example.test", DisplayName: "Dev", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	f := e.startDevice(t)
	if f.URI != e.URL+"/portal/device" {
		t.Fatalf("verification_uri %q", f.URI)
	}
	b := e.browser(t)
	link := "/portal/device?code=" + f.UserCode
	if p := b.get(link); p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin?next="+url.QueryEscape(link) {
		t.Fatalf("before signing in: %d %s", p.status, p.header.Get("Location"))
	}
	p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}, "next": {link}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != link {
		t.Fatalf("sign-in back to the code: %d %s", p.status, p.header.Get("Location"))
	}
	if p := b.get(link); p.status != 200 || !strings.Contains(p.body, `value="`+f.UserCode+`"`) ||
		!strings.Contains(p.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("the code's form: %d %s", p.status, p.body)
	}
	if status, m := e.pollDevice(t, f); status != 400 || m["error"] != "authorization_pending" {
		t.Fatalf("before the approval: %d %v", status, m)
	}
	p = b.post("/portal/device", url.Values{"code": {strings.ToLower(f.UserCode)}})
	if p.status != 200 || !strings.Contains(p.body, "Microsoft Azure CLI") ||
		!strings.Contains(p.body, html.EscapeString("https://management.core.windows.net/")) ||
		!strings.Contains(p.body, "stay signed in") || !strings.Contains(p.body, `id="device-approve"`) {
		t.Fatalf("the request: %d %s", p.status, p.body)
	}
	if p := b.post("/portal/device/approve", url.Values{"code": {f.UserCode}}); p.status != 200 || !strings.Contains(p.body, `id="device-done"`) {
		t.Fatalf("approve: %d %s", p.status, p.body)
	}
	status, m := e.pollDevice(t, f)
	if status != 200 || m["refresh_token"] == nil || m["id_token"] == nil {
		t.Fatalf("after the approval: %d %v", status, m)
	}
	claims, err := e.Authority.Verify(ctx, m["access_token"].(string), authority.ManagementAudiences...)
	if err != nil || claims.Principal.ObjectID != u.ObjectID {
		t.Fatalf("the app's token: %+v %v", claims, err)
	}
	// Decided once: neither the page nor a second approval reopens it.
	if p := b.post("/portal/device", url.Values{"code": {f.UserCode}}); p.status != http.StatusConflict {
		t.Fatalf("a used code on the page: %d", p.status)
	}
	if p := b.post("/portal/device/decline", url.Values{"code": {f.UserCode}}); p.status != http.StatusConflict {
		t.Fatalf("declining a used code: %d", p.status)
	}
	if recs, err := e.Audit.List(ctx, 0, 1000); err == nil {
		found := false
		for _, r := range recs {
			found = found || (r.Entry.Action == "Gatehouse/deviceCodes/approve/action" && r.Entry.Principal.ObjectID == u.ObjectID)
		}
		if !found {
			t.Error("the approval is not in the audit log")
		}
	}

	// Declined: the app is told so.
	d := e.startDevice(t)
	if p := b.post("/portal/device/decline", url.Values{"code": {d.UserCode}}); p.status != 200 || !strings.Contains(p.body, "Declined") {
		t.Fatalf("decline: %d %s", p.status, p.body)
	}
	if status, m := e.pollDevice(t, d); status != 400 || m["error"] != "authorization_declined" {
		t.Fatalf("declined: %d %v", status, m)
	}

	// Wrong codes are throttled like wrong passwords (per address and
	// person), and a guess never reaches another tenant's or a used code.
	var last page
	for range 12 {
		last = b.post("/portal/device", url.Values{"code": {"AAAAAAAAA"}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("after 12 wrong codes: %d", last.status)
	}
	g := e.startDevice(t)
	if p := b.post("/portal/device", url.Values{"code": {g.UserCode}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("a right code while throttled: %d", p.status)
	}
	e.browser(t).signIn(u) // wrong codes do not lock the person out of signing in
	// Without a session the decisions are refused, not redirected.
	if p := e.browser(t).post("/portal/device/approve", url.Values{"code": {g.UserCode}}); p.status != http.StatusUnauthorized {
		t.Fatalf("approving without a session: %d", p.status)
	}
	if status, m := e.pollDevice(t, g); status != 400 || m["error"] != "authorization_pending" {
		t.Fatalf("the refused approval changed the request: %d %v", status, m)
	}
	// Neither half of a code, nor the tokens, reach the node's logs.
	e.AssertNotLogged(t, f.DeviceCode, f.UserCode, d.DeviceCode, g.DeviceCode, g.UserCode,
		m["access_token"].(string), m["refresh_token"].(string))
}

// startAuthorize makes an app's authorize request (as the browser the app
// opened does) and returns the portal page it leads to.
func (e *env) startAuthorize(t *testing.T, b *browser, mode, prompt string, extra ...string) string {
	t.Helper()
	sum := sha256.Sum256([]byte("portal-test-verifier-portal-test-verifier-0123"))
	q := url.Values{"client_id": {authority.CLIClientID}, "response_type": {"code"}, "redirect_uri": {"http://localhost:8765/"},
		"scope": {"https://management.core.windows.net//.default offline_access openid"}, "state": {"s-42"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if mode != "" {
		q.Set("response_mode", mode)
	}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	p := b.get("/" + e.Directory.DefaultTenant() + "/oauth2/v2.0/authorize?" + q.Encode())
	loc := p.header.Get("Location")
	if p.status != http.StatusFound || !strings.HasPrefix(loc, authority.AuthorizePagePath+"?request=") {
		t.Fatalf("authorize: %d %q %s", p.status, loc, p.body)
	}
	return loc
}

// testAuthorizeSignIn: the page an app's browser sign-in lands on — sign
// in first (and come back), then Continue or Cancel; prompt=none answers
// without a page; the code goes back as a redirect or a form_post page
// whose policy lets its form post only to the app.
func testAuthorizeSignIn(t *testing.T, e *env) {
	u, err := e.Directory.CreateUser(context.WithoutCancel(t.Context()), directory.UserSpec{UserName: "web@example.test", DisplayName: "Web", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	// Not signed in, prompt=none: back to the app with login_required.
	if p := b.get(e.startAuthorize(t, b, "", "none")); p.status != http.StatusSeeOther ||
		!strings.Contains(p.header.Get("Location"), "error=login_required") || !strings.Contains(p.header.Get("Location"), "state=s-42") {
		t.Fatalf("prompt=none without a session: %d %q", p.status, p.header.Get("Location"))
	}
	page := e.startAuthorize(t, b, "", "")
	p := b.get(page)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin?next="+url.QueryEscape(page) {
		t.Fatalf("not signed in: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get(p.header.Get("Location")); p.status != 200 || !strings.Contains(p.body, `id="signin-context"`) {
		t.Fatalf("the sign-in page does not say an app waits: %d %s", p.status, p.body)
	}
	if p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}, "next": {page}}); p.status != http.StatusSeeOther || p.header.Get("Location") != page {
		t.Fatalf("sign-in back to the request: %d %q", p.status, p.header.Get("Location"))
	}
	p = b.get(page)
	if p.status != 200 || !strings.Contains(p.body, `id="authorize-approve"`) || !strings.Contains(p.body, "Microsoft Azure CLI") ||
		!strings.Contains(p.body, "localhost:8765") {
		t.Fatalf("the app's page: %d %s", p.status, p.body)
	}
	id := strings.TrimPrefix(page, authority.AuthorizePagePath+"?request=")
	p = b.post("/portal/authorize", url.Values{"request": {id}, "decision": {"approve"}})
	loc, _ := url.Parse(p.header.Get("Location"))
	if p.status != http.StatusSeeOther || loc == nil || loc.Host != "localhost:8765" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s-42" {
		t.Fatalf("continue: %d %q", p.status, p.header.Get("Location"))
	}
	defer func() { e.AssertNotLogged(t, id, loc.Query().Get("code")) }()
	// Used: the page and a second decision are refused.
	if p := b.get(page); p.status != http.StatusNotFound {
		t.Fatalf("a decided request's page: %d", p.status)
	}
	if p := b.post("/portal/authorize", url.Values{"request": {id}, "decision": {"decline"}}); p.status != http.StatusNotFound {
		t.Fatalf("deciding twice: %d", p.status)
	}
	// Cancel, in form_post: the page posts the error to the app, and its
	// policy allows posting only there.
	page = e.startAuthorize(t, b, "form_post", "")
	id = strings.TrimPrefix(page, authority.AuthorizePagePath+"?request=")
	p = b.post("/portal/authorize", url.Values{"request": {id}, "decision": {"decline"}})
	if p.status != 200 || !strings.Contains(p.body, `action="http://localhost:8765/"`) || !strings.Contains(p.body, `value="access_denied"`) ||
		!strings.Contains(p.header.Get("Content-Security-Policy"), "form-action http://localhost:8765") {
		t.Fatalf("cancel (form_post): %d %s %s", p.status, p.header, p.body)
	}
	// Signed in, prompt=none: approved without a page.
	p = b.get(e.startAuthorize(t, b, "", "none"))
	if loc, _ := url.Parse(p.header.Get("Location")); p.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with a session: %d %q", p.status, p.header.Get("Location"))
	}
	// Someone else: signing out from the page leads back to it after the
	// next sign-in.
	page = e.startAuthorize(t, b, "", "")
	if p := b.get(page); !strings.Contains(p.body, `id="authorize-switch"`) {
		t.Fatalf("no way to sign in as someone else: %s", p.body)
	}
	if p := b.post("/portal/signout", url.Values{"next": {page}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin?next="+url.QueryEscape(page) {
		t.Fatalf("sign out to switch: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.post("/portal/signout", url.Values{"next": {"https://evil.example/"}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin" {
		t.Fatalf("sign out with a foreign next: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}, "next": {page}}); p.status != http.StatusSeeOther || p.header.Get("Location") != page {
		t.Fatalf("signing in as the other person: %d %q", p.status, p.header.Get("Location"))
	}
	// prompt=login: the password again, although signed in; then the page.
	page = e.startAuthorize(t, b, "", "login")
	p = b.get(page)
	if p.status != 200 || !strings.Contains(p.body, `id="password"`) || !strings.Contains(p.body, "sign in again") {
		t.Fatalf("prompt=login with a session: %d %s", p.status, p.body)
	}
	if p := b.post("/portal/signin", url.Values{"username": {u.UserName}, "password": {password}, "next": {page}}); p.status != http.StatusSeeOther || p.header.Get("Location") != page {
		t.Fatalf("signing in again: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get(page); p.status != 200 || !strings.Contains(p.body, `id="authorize-approve"`) {
		t.Fatalf("prompt=login after signing in again: %d %s", p.status, p.body)
	}
	// login_hint naming someone else: that person is asked to sign in,
	// with the name filled in; naming the signed-in person: the page.
	other, err := e.Directory.CreateUser(context.WithoutCancel(t.Context()), directory.UserSpec{UserName: "hinted@example.test", DisplayName: "Hinted", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.get(e.startAuthorize(t, b, "", "", "login_hint", strings.ToUpper(u.UserName))); p.status != 200 || !strings.Contains(p.body, `id="authorize-approve"`) {
		t.Fatalf("login_hint of the signed-in person: %d %s", p.status, p.body)
	}
	page = e.startAuthorize(t, b, "", "", "login_hint", other.UserName)
	p = b.get(page)
	if p.status != 200 || !strings.Contains(p.body, `value="`+other.UserName+`"`) || !strings.Contains(p.body, "sign in as "+other.UserName) {
		t.Fatalf("login_hint of someone else: %d %s", p.status, p.body)
	}
	if p := b.post("/portal/signin", url.Values{"username": {other.UserName}, "password": {password}, "next": {page}}); p.status != http.StatusSeeOther || p.header.Get("Location") != page {
		t.Fatalf("signing in as the hinted person: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get(page); p.status != 200 || !strings.Contains(p.body, `id="authorize-approve"`) || !strings.Contains(p.body, other.UserName) {
		t.Fatalf("the page as the hinted person: %d %s", p.status, p.body)
	}
	// Not signed in: the sign-in page comes with the hinted name.
	if p := e.browser(t).get(e.startAuthorize(t, e.browser(t), "", "", "login_hint", other.UserName)); p.status != 200 || !strings.Contains(p.body, `value="`+other.UserName+`"`) {
		t.Fatalf("login_hint without a session: %d %s", p.status, p.body)
	}
	// Bad ids; the auto-post script is served.
	for _, bad := range []string{"", "nope", strings.Repeat("x", 500)} {
		if p := b.get(authority.AuthorizePagePath + "?request=" + url.QueryEscape(bad)); p.status != http.StatusNotFound {
			t.Errorf("request %.20q: %d", bad, p.status)
		}
	}
	if p := b.get("/portal/static/autopost.js"); p.status != 200 || !strings.Contains(p.body, "autopost") {
		t.Fatalf("autopost.js: %d", p.status)
	}
}

// testSignOutEverywhere: after a confirmation page, a person ends every
// session of theirs — this browser, another browser, and a session an app
// holds (a refresh token) — and it is audited.
func testSignOutEverywhere(t *testing.T, e *env) {
	u, err := e.Directory.CreateUser(context.WithoutCancel(t.Context()), directory.UserSpec{UserName: "leaver@example.test", DisplayName: "Leaver", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	here, there := e.browser(t), e.browser(t)
	here.signIn(u)
	there.signIn(u)
	status, m := e.oauthPost(t, "/adfs/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {authority.CLIClientID},
		"username": {u.UserName}, "password": {password}, "scope": {"https://management.core.windows.net//.default offline_access"}})
	if status != 200 || m["refresh_token"] == nil {
		t.Fatalf("an app's session: %d %v", status, m)
	}
	if p := here.get("/portal/"); !strings.Contains(p.body, `id="signout-everywhere"`) {
		t.Fatalf("no way to sign out everywhere on the home page: %s", p.body)
	}
	// Asking changes nothing.
	if p := here.get("/portal/signout-everywhere"); p.status != 200 || !strings.Contains(p.body, `id="confirm"`) || !strings.Contains(p.body, u.UserName) {
		t.Fatalf("confirmation: %d %s", p.status, p.body)
	}
	if p := there.get("/portal/"); p.status != 200 {
		t.Fatalf("the other browser after asking: %d", p.status)
	}
	if p := here.post("/portal/signout-everywhere", url.Values{}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/signin" {
		t.Fatalf("sign out everywhere: %d %q", p.status, p.header.Get("Location"))
	}
	for name, b := range map[string]*browser{"this": here, "the other": there} {
		if p := b.get("/portal/"); p.status != http.StatusSeeOther {
			t.Errorf("%s browser after signing out everywhere: %d", name, p.status)
		}
	}
	if status, m := e.oauthPost(t, "/adfs/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {authority.CLIClientID},
		"refresh_token": {m["refresh_token"].(string)}, "scope": {"https://management.core.windows.net//.default offline_access"}}); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("the app's session after signing out everywhere: %d %v", status, m)
	}
	if n := countAudit(t, e, u.ObjectID, audit.Succeeded); n < 3 { // two sign-ins and the sign-out
		t.Errorf("audited successes: %d", n)
	}
	e.AssertNotLogged(t, m["refresh_token"].(string))
}
