package portaltest

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
	// Without a session the decisions are refused, not redirected.
	if p := e.browser(t).post("/portal/device/approve", url.Values{"code": {g.UserCode}}); p.status != http.StatusUnauthorized {
		t.Fatalf("approving without a session: %d", p.status)
	}
	if status, m := e.pollDevice(t, g); status != 400 || m["error"] != "authorization_pending" {
		t.Fatalf("the refused approval changed the request: %d %v", status, m)
	}
}
