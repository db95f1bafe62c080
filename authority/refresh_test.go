package authority

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// sessionEnv is one node with a person and a way to call its token
// endpoint.
type sessionEnv struct {
	n      *node
	c      *clock
	s      storage.Store
	mux    *http.ServeMux
	user   *directory.User
	tenant string
}

const (
	sessionPassword = "a long enough password"
	scopeARM        = "https://management.azure.com/.default offline_access openid profile"
	scopeGraph      = "https://graph.microsoft.com/.default offline_access"
)

func newSessionEnv(t *testing.T, s storage.Store) *sessionEnv {
	t.Helper()
	c := newClock()
	e := &sessionEnv{n: newNode(t, s, testSealer(t), c, Options{}), c: c, s: s, mux: http.NewServeMux()}
	e.n.a.Mount(e.mux)
	e.tenant = e.n.d.DefaultTenant()
	var err error
	if e.user, err = e.n.d.CreateUser(t.Context(), directory.UserSpec{UserName: "pat@x.test", Password: sessionPassword}); err != nil {
		t.Fatal(err)
	}
	return e
}

type tokenAnswer struct {
	status int
	body   map[string]any
}

func (a tokenAnswer) str(k string) string { s, _ := a.body[k].(string); return s }

// aadsts is the AADSTS number of an error answer.
func (a tokenAnswer) aadsts() string {
	codes, _ := a.body["error_codes"].([]any)
	if len(codes) != 1 {
		return ""
	}
	n, _ := codes[0].(float64)
	return strconv.Itoa(int(n))
}

func (e *sessionEnv) post(t *testing.T, path string, form url.Values) tokenAnswer {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, req)
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Errorf("status %d, not JSON: %s", w.Code, w.Body) // also called from goroutines
	}
	return tokenAnswer{w.Code, m}
}

func (e *sessionEnv) signIn(t *testing.T, scope string) tokenAnswer {
	t.Helper()
	return e.post(t, "/adfs/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {CLIClientID},
		"username": {"pat@x.test"}, "password": {sessionPassword}, "scope": {scope}})
}

func (e *sessionEnv) refresh(t *testing.T, token, scope string) tokenAnswer {
	t.Helper()
	return e.post(t, "/"+e.tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {CLIClientID},
		"refresh_token": {token}, "scope": {scope}})
}

// TestRefreshTokens: the session flow, rotation, replay, revocation and
// lifetimes, on both backends.
func TestRefreshTokens(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()

		// Without offline_access, no refresh token.
		if a := e.signIn(t, "https://management.azure.com/.default"); a.status != 200 || a.body["refresh_token"] != nil {
			t.Fatalf("plain password grant: %d %v", a.status, a.body)
		}
		first := e.signIn(t, scopeARM)
		rt1 := first.str("refresh_token")
		if first.status != 200 || len(rt1) != 43 || first.str("access_token") == "" || first.str("scope") != "https://management.azure.com/.default" {
			t.Fatalf("sign-in: %d %v", first.status, first.body)
		}

		// Stored hashed: nothing in storage contains the token.
		page, err := s.List(ctx, storage.ListOptions{Kind: kindRefreshToken})
		if err != nil || len(page.Objects) != 1 {
			t.Fatalf("stored refresh tokens: %v %v", page, err)
		}
		if o := page.Objects[0]; o.Key != refreshKey(rt1) || strings.Contains(string(o.Data), rt1) || o.Expires.IsZero() {
			t.Fatalf("stored record: key %s data %s", o.Key, o.Data)
		}

		// Redeemed for another resource: a token for it, a new refresh token.
		second := e.refresh(t, rt1, scopeGraph)
		rt2 := second.str("refresh_token")
		if second.status != 200 || rt2 == "" || rt2 == rt1 {
			t.Fatalf("refresh: %d %v", second.status, second.body)
		}
		claims, err := e.n.a.Verify(ctx, second.str("access_token"), GraphAudiences...)
		if err != nil || claims.Principal.ObjectID != e.user.ObjectID || claims.AppIDACR != "0" || claims.Scope != "user_impersonation" {
			t.Fatalf("refreshed access token: %+v %v", claims, err)
		}

		// A bad scope does not spend the token.
		if a := e.refresh(t, rt2, "offline_access"); a.status != 400 || a.str("error") != "invalid_scope" {
			t.Fatalf("no resource: %d %v", a.status, a.body)
		}
		third := e.refresh(t, rt2, scopeARM)
		rt3 := third.str("refresh_token")
		if third.status != 200 {
			t.Fatalf("refresh after a bad scope: %d %v", third.status, third.body)
		}

		// Within a minute of its first use a token is served again (clients
		// sharing one cache redeem it at once, as parallel az commands do).
		if a := e.refresh(t, rt1, scopeARM); a.status != 200 || a.str("refresh_token") == "" {
			t.Fatalf("a second redemption within the reuse window: %d %v", a.status, a.body)
		}
		// Presented again after that, it is a replay and ends the session:
		// the newest token too.
		e.c.Advance(reuseWindow + time.Second)
		if a := e.refresh(t, rt1, scopeARM); a.status != 400 || a.str("error") != "invalid_grant" || a.aadsts() != "50173" {
			t.Fatalf("replay: %d %v", a.status, a.body)
		}
		if a := e.refresh(t, rt3, scopeARM); a.status != 400 || a.aadsts() != "70000" {
			t.Fatalf("the session's newest token after a replay: %d %v", a.status, a.body)
		}

		for _, tt := range []struct {
			name, token, client, aadsts string
		}{
			{"unknown", strings.Repeat("A", 43), CLIClientID, "70000"},
			{"malformed", "not-a-token", CLIClientID, "9002313"},
			{"other-client", "", "1950a258-227b-4e31-a9cf-717495945fc2", "70000"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tok := tt.token
				if tok == "" {
					tok = e.signIn(t, scopeARM).str("refresh_token")
				}
				a := e.post(t, "/adfs/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {tt.client},
					"refresh_token": {tok}, "scope": {scopeARM}})
				if a.status != 400 || a.str("error") != "invalid_grant" || a.aadsts() != tt.aadsts {
					t.Fatalf("%d %v", a.status, a.body)
				}
			})
		}

		// A refused redemption spends nothing: after another client's try
		// and one while the person was disabled, the owner's token still
		// works, past the reuse window too.
		off, on := false, true
		rt := e.signIn(t, scopeARM).str("refresh_token")
		if a := e.post(t, "/adfs/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"1950a258-227b-4e31-a9cf-717495945fc2"},
			"refresh_token": {rt}, "scope": {scopeARM}}); a.aadsts() != "70000" {
			t.Fatalf("another client: %d %v", a.status, a.body)
		}
		if _, err := e.n.d.UpdateUser(ctx, e.user.ObjectID, directory.UserUpdate{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		if a := e.refresh(t, rt, scopeARM); a.aadsts() != "50057" {
			t.Fatalf("disabled: %d %v", a.status, a.body)
		}
		if _, err := e.n.d.UpdateUser(ctx, e.user.ObjectID, directory.UserUpdate{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		e.c.Advance(reuseWindow + time.Second)
		if a := e.refresh(t, rt, scopeARM); a.status != 200 {
			t.Fatalf("the owner after refused redemptions: %d %v", a.status, a.body)
		}
		rt = e.signIn(t, scopeARM).str("refresh_token")
		e.c.Advance(time.Second)
		pw := "another long password"
		if _, err := e.n.d.UpdateUser(ctx, e.user.ObjectID, directory.UserUpdate{Password: &pw}); err != nil {
			t.Fatal(err)
		}
		if a := e.refresh(t, rt, scopeARM); a.aadsts() != "50173" {
			t.Fatalf("after a password change: %d %v", a.status, a.body)
		}
		pw2 := sessionPassword
		if _, err := e.n.d.UpdateUser(ctx, e.user.ObjectID, directory.UserUpdate{Password: &pw2}); err != nil {
			t.Fatal(err)
		}
		e.c.Advance(time.Second)
		rt = e.signIn(t, scopeARM).str("refresh_token")
		e.c.Advance(time.Second)
		if _, err := e.n.d.RevokeSignInSessions(ctx, "pat@x.test"); err != nil {
			t.Fatal(err)
		}
		if a := e.refresh(t, rt, scopeARM); a.aadsts() != "50173" {
			t.Fatalf("after revokeSignInSessions: %d %v", a.status, a.body)
		}

		// Lifetimes: 14 days unused; each use renews; 90 days at most.
		e.c.Advance(time.Second)
		rt = e.signIn(t, scopeARM).str("refresh_token")
		for day := 13; day <= 13*6; day += 13 {
			e.c.Advance(13 * 24 * time.Hour)
			a := e.refresh(t, rt, scopeARM)
			if a.status != 200 {
				t.Fatalf("day %d: %d %v", day, a.status, a.body)
			}
			rt = a.str("refresh_token")
		}
		e.c.Advance(13 * 24 * time.Hour) // day 91
		if a := e.refresh(t, rt, scopeARM); a.aadsts() != "700082" {
			t.Fatalf("past 90 days: %d %v", a.status, a.body)
		}
		rt = e.signIn(t, scopeARM).str("refresh_token")
		e.c.Advance(DefaultRefreshTokenLifetime)
		if a := e.refresh(t, rt, scopeARM); a.aadsts() != "700082" {
			t.Fatalf("unused for 14 days: %d %v", a.status, a.body)
		}
	})
}

// TestRefreshTokenRace: redemptions of one token at once (az commands run
// in parallel on one cache) all succeed, and every token they got works;
// the token presented again after the reuse window is a replay that ends
// the session, those tokens included (no lost update on either backend).
func TestRefreshTokenRace(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		for range 3 {
			rt := e.signIn(t, scopeARM).str("refresh_token")
			var wg sync.WaitGroup
			results := make([]tokenAnswer, 4)
			for i := range results {
				wg.Go(func() { results[i] = e.refresh(t, rt, scopeARM) })
			}
			wg.Wait()
			var got []string
			for _, r := range results {
				if r.status != 200 {
					t.Fatalf("a concurrent redemption: %d %v", r.status, r.body)
				}
				got = append(got, r.str("refresh_token"))
			}
			for _, tok := range got[1:] {
				if a := e.refresh(t, tok, scopeARM); a.status != 200 {
					t.Fatalf("a concurrent redemption's token: %d %v", a.status, a.body)
				}
			}
			e.c.Advance(reuseWindow + time.Second)
			if a := e.refresh(t, rt, scopeARM); a.status != 400 || a.aadsts() != "50173" {
				t.Fatalf("a replay after the window: %d %v", a.status, a.body)
			}
			if a := e.refresh(t, got[0], scopeARM); a.status != 400 || a.aadsts() != "50173" && a.aadsts() != "70000" {
				t.Fatalf("a token outlived its session: %d %v", a.status, a.body)
			}
		}
	})
}

// TestEndedSessionIssuesNothing: the two halves of the race between a
// replay on one node and a redemption on another, in the order that used
// to lose. A token issued for a session after it ended is withdrawn, and a
// token of an ended session that is still stored is refused.
func TestEndedSessionIssuesNothing(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		e := newSessionEnv(t, s)
		ctx := t.Context()
		a := e.n.a
		rt := e.signIn(t, scopeARM).str("refresh_token")
		rec, err := a.refreshTokens.Get(ctx, refreshKey(rt))
		if err != nil {
			t.Fatal(err)
		}
		v := rec.Value
		a.endSession(ctx, v) // the replay's node
		spec := &mintSpec{principal: gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: v.ObjectID, TenantID: v.TenantID},
			clientID: v.ClientID, acr: "0", session: &session{id: v.Session, authTime: v.AuthTime}}
		tok, err := a.issueRefreshToken(ctx, spec, v.TenantID) // the winner's node, a moment later
		if ge, ok := errors.AsType[*gatehouse.Error](err); tok != "" || !ok || ge.InnerCode != "50173" {
			t.Fatalf("a token for an ended session: %q %v", tok, err)
		}
		left, err := a.refreshTokens.Collect(ctx, storage.ListOptions{Ref: strings.ToLower(v.ObjectID)})
		if err != nil || len(left) != 0 {
			t.Fatalf("tokens left after the session ended: %d %v", len(left), err)
		}

		// A stored token whose session has ended (marked, its deletion not
		// yet done) is refused.
		rt2 := e.signIn(t, scopeARM).str("refresh_token")
		rec2, err := a.refreshTokens.Get(ctx, refreshKey(rt2))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.endedSessions.Create(ctx, &storage.Record[endedSession]{Key: rec2.Value.Session, Expires: e.c.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if r := e.refresh(t, rt2, scopeARM); r.status != 400 || r.aadsts() != "50173" {
			t.Fatalf("a token of an ended session: %d %v", r.status, r.body)
		}
	})
}
