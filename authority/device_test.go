package authority

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

func (e *sessionEnv) deviceCode(t *testing.T, path, clientID, scope string) tokenAnswer {
	t.Helper()
	return e.post(t, path, url.Values{"client_id": {clientID}, "scope": {scope}})
}

func (e *sessionEnv) pollDevice(t *testing.T, clientID, code string) tokenAnswer {
	t.Helper()
	return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {GrantDeviceCode},
		"client_id": {clientID}, "device_code": {code}, "client_info": {"1"}, "scope": {scopeARM}})
}

func (e *sessionEnv) person() gatehouse.Principal {
	return gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: e.user.ObjectID, TenantID: e.user.TenantID, Name: e.user.UserName}
}

// jwtPayload decodes a compact JWS's payload without checking it.
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("JWS payload: %v", err)
	}
	return m
}

// TestDeviceCode: the device authorization grant from the code to the
// token, the decisions, expiry and bad input, on both backends.
func TestDeviceCode(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		dcPath := "/" + e.tenant + "/oauth2/v2.0/devicecode"

		start := e.deviceCode(t, dcPath, CLIClientID, scopeARM)
		code, uc := start.str("device_code"), start.str("user_code")
		if start.status != 200 || len(code) != 43 || NormalizeUserCode(uc) != uc ||
			start.str("verification_uri") != "https://localhost:8443/portal/device" ||
			start.body["expires_in"] != 900.0 || start.body["interval"] != 5.0 ||
			!strings.Contains(start.str("message"), uc) || !strings.Contains(start.str("message"), "https://localhost:8443/portal/device") {
			t.Fatalf("devicecode: %d %v", start.status, start.body)
		}
		// Stored hashed: the record holds neither code's secret half.
		page, err := s.List(ctx, storage.ListOptions{Kind: kindDeviceCode})
		if err != nil || len(page.Objects) != 1 {
			t.Fatalf("stored device codes: %v %v", page, err)
		}
		if o := page.Objects[0]; o.Key != deviceKey(code) || strings.Contains(string(o.Data), code) || o.Alt != uc || o.Expires.IsZero() {
			t.Fatalf("stored record: key %s alt %s data %s", o.Key, o.Alt, o.Data)
		}

		if a := e.pollDevice(t, CLIClientID, code); a.status != 400 || a.str("error") != "authorization_pending" || a.aadsts() != "70016" {
			t.Fatalf("pending: %d %v", a.status, a.body)
		}
		// The page finds it as typed: lower case, with a dash.
		typed := strings.ToLower(uc[:4] + "-" + uc[4:])
		req, err := e.n.a.DeviceRequest(ctx, typed)
		if err != nil || req.UserCode != uc || req.ClientName != "Microsoft Azure CLI" || req.Resource != "https://management.azure.com" ||
			!req.OfflineAccess || req.State != DevicePending {
			t.Fatalf("DeviceRequest: %+v %v", req, err)
		}
		if _, err := e.n.a.DecideDevice(ctx, nil, uc, gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: e.user.ObjectID}, true); gatehouse.ErrorStatus(err) != 403 {
			t.Fatalf("an application approving: %v", err)
		}
		if _, err := e.n.a.DecideDevice(ctx, nil, typed, e.person(), true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.a.DecideDevice(ctx, nil, uc, e.person(), false); !errors.Is(err, ErrDeviceCodeDecided) {
			t.Fatalf("deciding twice: %v", err)
		}
		// Another client cannot redeem it, and trying does not spend it.
		if a := e.pollDevice(t, "1950a258-227b-4e31-a9cf-717495945fc2", code); a.status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("other client: %d %v", a.status, a.body)
		}
		tok := e.pollDevice(t, CLIClientID, code)
		if tok.status != 200 || tok.str("refresh_token") == "" || tok.str("scope") != "https://management.azure.com/.default" {
			t.Fatalf("approved: %d %v", tok.status, tok.body)
		}
		claims, err := e.n.a.Verify(ctx, tok.str("access_token"), ManagementAudiences...)
		if err != nil || claims.Principal.ObjectID != e.user.ObjectID || claims.AppIDACR != "0" || claims.Scope != "user_impersonation" {
			t.Fatalf("access token: %+v %v", claims, err)
		}
		idt := jwtPayload(t, tok.str("id_token"))
		if idt["aud"] != CLIClientID || idt["oid"] != e.user.ObjectID || idt["tid"] != e.user.TenantID ||
			idt["preferred_username"] != "pat@x.test" || idt["iss"] != e.n.a.Issuer(e.user.TenantID) || idt["ver"] != "2.0" {
			t.Fatalf("id_token: %v", idt)
		}
		ci, err := base64.RawURLEncoding.DecodeString(tok.str("client_info"))
		if err != nil || string(ci) != `{"uid":"`+e.user.ObjectID+`","utid":"`+e.user.TenantID+`"}` {
			t.Fatalf("client_info: %s %v", ci, err)
		}
		// The session refreshes like a password sign-in's.
		if a := e.refresh(t, tok.str("refresh_token"), scopeGraph); a.status != 200 || a.str("refresh_token") == "" {
			t.Fatalf("refreshing the device session: %d %v", a.status, a.body)
		}
		// Redeemed once.
		if a := e.pollDevice(t, CLIClientID, code); a.status != 400 || a.str("error") != "invalid_grant" || a.aadsts() != "54005" {
			t.Fatalf("second redemption: %d %v", a.status, a.body)
		}

		// Declined (on the ADFS endpoint, as az asks): the app is told so.
		d := e.deviceCode(t, "/adfs/oauth2/devicecode", CLIClientID, "https://management.core.windows.net//.default")
		if d.status != 200 {
			t.Fatalf("ADFS devicecode: %d %v", d.status, d.body)
		}
		if _, err := e.n.a.DecideDevice(ctx, nil, d.str("user_code"), e.person(), false); err != nil {
			t.Fatal(err)
		}
		if a := e.pollDevice(t, CLIClientID, d.str("device_code")); a.status != 400 || a.str("error") != "authorization_declined" {
			t.Fatalf("declined: %d %v", a.status, a.body)
		}

		// Approved, then the person's sessions are revoked: refused.
		r := e.deviceCode(t, dcPath, CLIClientID, "https://management.azure.com/.default")
		if _, err := e.n.a.DecideDevice(ctx, nil, r.str("user_code"), e.person(), true); err != nil {
			t.Fatal(err)
		}
		e.c.Advance(time.Second)
		if _, err := e.n.d.RevokeSignInSessions(ctx, e.user.ObjectID); err != nil {
			t.Fatal(err)
		}
		if a := e.pollDevice(t, CLIClientID, r.str("device_code")); a.status != 400 || a.aadsts() != "50173" {
			t.Fatalf("approved before a revocation: %d %v", a.status, a.body)
		}

		// Without offline_access or openid: a token alone.
		p := e.deviceCode(t, dcPath, CLIClientID, "https://management.azure.com/.default")
		if _, err := e.n.a.DecideDevice(ctx, nil, p.str("user_code"), e.person(), true); err != nil {
			t.Fatal(err)
		}
		if a := e.pollDevice(t, CLIClientID, p.str("device_code")); a.status != 200 || a.body["refresh_token"] != nil || a.body["id_token"] != nil {
			t.Fatalf("plain: %d %v", a.status, a.body)
		}

		// Expiry: neither the page nor the app can use it after 15 minutes.
		x := e.deviceCode(t, dcPath, CLIClientID, scopeARM)
		e.c.Advance(DeviceCodeLifetime + time.Second)
		if _, err := e.n.a.DeviceRequest(ctx, x.str("user_code")); !errors.Is(err, ErrDeviceCodeUnknown) {
			t.Fatalf("expired on the page: %v", err)
		}
		if _, err := e.n.a.DecideDevice(ctx, nil, x.str("user_code"), e.person(), true); !errors.Is(err, ErrDeviceCodeUnknown) {
			t.Fatalf("approving an expired code: %v", err)
		}
		if a := e.pollDevice(t, CLIClientID, x.str("device_code")); a.status != 400 || a.str("error") != "expired_token" || a.aadsts() != "70020" {
			t.Fatalf("expired: %d %v", a.status, a.body)
		}

		// Bad input: the OAuth error, never a 500, nothing stored.
		before, _ := s.List(ctx, storage.ListOptions{Kind: kindDeviceCode})
		for _, c := range []struct {
			path  string
			form  url.Values
			code  string
			inner string
		}{
			{dcPath, url.Values{"scope": {scopeARM}}, "invalid_request", "900144"},
			{dcPath, url.Values{"client_id": {CLIClientID}, "scope": {"openid offline_access"}}, "invalid_scope", "70011"},
			{dcPath, url.Values{"client_id": {CLIClientID}, "scope": {"https://nowhere.example/.default"}}, "invalid_resource", "500011"},
			{dcPath, url.Values{"client_id": {CLIClientID}, "client_secret": {"x"}, "scope": {scopeARM}}, "invalid_client", "700025"},
			{dcPath, url.Values{"client_id": {"00000000-0000-0000-0000-000000000001"}, "scope": {scopeARM}}, "unauthorized_client", "700016"},
			{dcPath, url.Values{"client_id": {CLIClientID, CLIClientID}, "scope": {scopeARM}}, "invalid_request", "90011"},
		} {
			if a := e.post(t, c.path, c.form); a.status >= 500 || a.str("error") != c.code || a.aadsts() != c.inner {
				t.Errorf("devicecode %s %v: %d %v", c.path, c.form, a.status, a.body)
			}
		}
		// An unknown tenant (the node's NotFound handler answers it).
		req2 := httptest.NewRequest("POST", "/00000000-0000-0000-0000-0000000000ff/oauth2/v2.0/devicecode",
			strings.NewReader(url.Values{"client_id": {CLIClientID}, "scope": {scopeARM}}.Encode()))
		req2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if !e.n.a.UnknownTenant(w, req2) || w.Code != 400 || !strings.Contains(w.Body.String(), `"invalid_tenant"`) {
			t.Errorf("unknown tenant: %d %s", w.Code, w.Body)
		}
		// Its known tenant in upper case is served.
		req2 = httptest.NewRequest("POST", "/"+strings.ToUpper(e.tenant)+"/oauth2/v2.0/devicecode",
			strings.NewReader(url.Values{"client_id": {CLIClientID}, "scope": {scopeARM}}.Encode()))
		req2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w = httptest.NewRecorder()
		if !e.n.a.UnknownTenant(w, req2) || w.Code != 200 {
			t.Errorf("upper-case tenant: %d %s", w.Code, w.Body)
		}
		tokenPath := "/" + e.tenant + "/oauth2/v2.0/token"
		for _, c := range []struct {
			form  url.Values
			code  string
			inner string
		}{
			{url.Values{"grant_type": {GrantDeviceCode}, "client_id": {CLIClientID}}, "invalid_request", "900144"},
			{url.Values{"grant_type": {GrantDeviceCode}, "device_code": {code}}, "invalid_request", "900144"},
			{url.Values{"grant_type": {GrantDeviceCode}, "client_id": {CLIClientID}, "device_code": {"not-a-code"}}, "invalid_grant", "70000"},
			{url.Values{"grant_type": {GrantDeviceCode}, "client_id": {CLIClientID}, "device_code": {code}, "client_secret": {"s"}}, "invalid_client", "700025"},
		} {
			if a := e.post(t, tokenPath, c.form); a.status >= 500 || a.str("error") != c.code || a.aadsts() != c.inner {
				t.Errorf("token %v: %d %v", c.form, a.status, a.body)
			}
		}
		after, _ := s.List(ctx, storage.ListOptions{Kind: kindDeviceCode})
		if len(after.Objects) != len(before.Objects)+1 { // the upper-case tenant's
			t.Errorf("bad requests stored device codes: %d → %d", len(before.Objects), len(after.Objects))
		}

		// New codes are limited per client address.
		limited := false
		for range deviceCodesPerMinute + 1 {
			if a := e.deviceCode(t, dcPath, CLIClientID, scopeARM); a.status == 429 {
				limited = a.str("error") == "slow_down"
				break
			}
		}
		if !limited {
			t.Errorf("%d device codes a minute from one address were not limited", deviceCodesPerMinute+1)
		}
	})
}

// TestUserTokenResponse: a person's password sign-in carries client_info
// and an ID token when asked (as MSAL asks), and not otherwise; an
// application's token never does.
func TestUserTokenResponse(t *testing.T) {
	e := newSessionEnv(t, teststore.SQLite(t))
	a := e.post(t, "/adfs/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {CLIClientID},
		"username": {"pat@x.test"}, "password": {sessionPassword}, "scope": {scopeARM}, "client_info": {"1"}})
	if a.status != 200 || a.str("client_info") == "" {
		t.Fatalf("with client_info=1 and openid: %d %v", a.status, a.body)
	}
	if idt := jwtPayload(t, a.str("id_token")); idt["iss"] != "https://localhost:8443/adfs" || idt["aud"] != CLIClientID {
		t.Fatalf("ADFS id_token: %v", idt)
	}
	if a := e.signIn(t, "https://management.azure.com/.default"); a.status != 200 || a.body["client_info"] != nil || a.body["id_token"] != nil {
		t.Fatalf("without: %d %v", a.status, a.body)
	}
}

// TestPrune: the upkeep removes device codes, authorization requests and
// refresh tokens once expired, and nothing before, on both backends.
func TestPrune(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		count := func() int {
			n := 0
			for _, kind := range []string{kindDeviceCode, kindAuthRequest, kindRefreshToken} {
				page, err := s.List(ctx, storage.ListOptions{Kind: kind})
				if err != nil {
					t.Fatal(err)
				}
				n += len(page.Objects)
			}
			return n
		}
		e.deviceCode(t, "/"+e.tenant+"/oauth2/v2.0/devicecode", CLIClientID, scopeARM)
		requestID(t, e.authorize(t, "/"+e.tenant+"/oauth2/v2.0/authorize", authQuery("http://localhost:1/", nil)))
		if a := e.signIn(t, scopeARM); a.status != 200 {
			t.Fatalf("sign-in: %d %v", a.status, a.body)
		}
		if n := count(); n != 3 {
			t.Fatalf("%d records, want 3", n)
		}
		if n := e.n.a.Prune(ctx); n != 0 || count() != 3 {
			t.Fatalf("pruned %d before anything expired", n)
		}
		e.c.Advance(authRequestLifetime + time.Second) // device codes and requests: 15 minutes
		if n := e.n.a.Prune(ctx); n != 2 || count() != 1 {
			t.Fatalf("after 15 minutes: pruned %d, %d left", n, count())
		}
		e.c.Advance(DefaultRefreshTokenLifetime)
		if n := e.n.a.Prune(ctx); n != 1 || count() != 0 {
			t.Fatalf("after the refresh token's lifetime: pruned %d, %d left", n, count())
		}
	})
}
