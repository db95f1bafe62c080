package crosstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// profileFile is the profile a cliRunner's login wrote.
type profileFile struct {
	Kind         string                     `json:"kind"`
	RefreshToken string                     `json:"refreshToken"`
	Tokens       map[string]json.RawMessage `json:"tokens"`
}

func (c *cliRunner) profile(t *testing.T) (profileFile, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p profileFile
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return p, string(data)
}

// expireTokens makes every cached access token of the profile look
// expired, as an hour later would.
func (c *cliRunner) expireTokens(t *testing.T) {
	t.Helper()
	path := filepath.Join(c.dir, "profile.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	toks, _ := p["tokens"].(map[string]any)
	for _, v := range toks {
		v.(map[string]any)["expiresOn"] = time.Now().Add(-time.Hour).Format(time.RFC3339)
	}
	data, _ = json.Marshal(p)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testPersonSession: a person signs in once with a password; the profile
// keeps a refresh token (never the password) that gets the vault data
// plane's token and new tokens when the cached ones expire, rotating at
// every use; `logout --revoke` ends every session of the person.
func testPersonSession(t *testing.T, e *env) {
	const password = "correct horse battery staple"
	u, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "dana@crosstest.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	e.createVault(t, "session-kv")
	e.assign(t, e.vaultPath("session-kv"), authz.RoleKeyVaultSecretsOfficer, u.ObjectID, "User")
	e.assign(t, "/subscriptions/"+e.sub, authz.RoleReader, u.ObjectID, "User")

	login := func() *cliRunner {
		c := newCLI(t)
		c.mustRun(t, "login", "--server", e.URL, "--ca-file", e.CAFile, "-u", u.UserName, "-p", password, "-o", "none")
		return c
	}
	laptop := login()
	p, raw := laptop.profile(t)
	if p.Kind != "user" || len(p.RefreshToken) != 43 || strings.Contains(raw, password) {
		t.Fatalf("profile after login: kind %q, refresh token %d chars, password stored %v", p.Kind, len(p.RefreshToken), strings.Contains(raw, password))
	}
	first := p.RefreshToken

	// The vault data plane: no token cached for it; the session gets one.
	laptop.mustRun(t, "keyvault", "secret", "set", "--vault-name", "session-kv", "-n", "note", "--value", "from-a-person")
	if out := laptop.mustRun(t, "keyvault", "secret", "show", "--vault-name", "session-kv", "-n", "note", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "from-a-person" {
		t.Fatalf("show: %q", out)
	}
	p, _ = laptop.profile(t)
	if p.RefreshToken == first || len(p.Tokens) < 2 {
		t.Fatalf("the session did not rotate (%v) or cache the vault token (%d tokens)", p.RefreshToken == first, len(p.Tokens))
	}

	// An hour later every access token has expired: the session renews them.
	laptop.expireTokens(t)
	if out := laptop.mustRun(t, "keyvault", "secret", "show", "--vault-name", "session-kv", "-n", "note", "--query", "value", "-o", "tsv"); strings.TrimSpace(out) != "from-a-person" {
		t.Fatalf("show after expiry: %q", out)
	}
	laptop.expireTokens(t)
	laptop.mustRun(t, "keyvault", "list", "-o", "none") // management, renewed too

	// An administrator ends the person's sessions through Graph.
	graphToken := e.Token(t, e.Credential(t), "https://graph.microsoft.com/.default")
	r := e.do(t, "POST", e.URL+"/v1.0/users/"+u.UserName+"/revokeSignInSessions", nil, graphToken)
	if r.status != 200 || r.json(t)["value"] != true {
		t.Fatalf("revokeSignInSessions: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", e.URL+"/v1.0/users/"+u.ObjectID, nil, graphToken); r.json(t)["signInSessionsValidFromDateTime"] == nil {
		t.Fatalf("user after revocation: %s", r.body)
	}
	laptop.expireTokens(t)
	if code, _, errOut := laptop.run(t, "keyvault", "list"); code == 0 || !strings.Contains(errOut, "has ended") {
		t.Fatalf("after an administrator's revocation: exit %d %s", code, errOut)
	}

	// Two machines, then `logout --revoke` on one: both end.
	laptop = login()
	desktop := login()
	laptop.mustRun(t, "logout", "--revoke")
	if _, err := os.Stat(filepath.Join(laptop.dir, "profile.json")); !os.IsNotExist(err) {
		t.Fatalf("logout left the profile: %v", err)
	}
	desktop.expireTokens(t)
	code, _, errOut := desktop.run(t, "keyvault", "secret", "show", "--vault-name", "session-kv", "-n", "note")
	if code == 0 || !strings.Contains(errOut, "session of "+u.UserName+" has ended") || !strings.Contains(errOut, "login -u") {
		t.Fatalf("after revocation: exit %d %s", code, errOut)
	}
	if p, _ := desktop.profile(t); p.RefreshToken != "" {
		t.Error("the ended session is still in the profile")
	}
	// logout --revoke with the ended session: nothing to revoke here, the
	// profile goes all the same (it needed a new login before).
	code, _, errOut = desktop.run(t, "logout", "--revoke")
	if code != 0 || !strings.Contains(errOut, "had already ended") {
		t.Fatalf("logout --revoke of an ended session: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(desktop.dir, "profile.json")); !os.IsNotExist(err) {
		t.Fatalf("logout --revoke left the ended profile: %v", err)
	}
	e.AssertNotLogged(t, password, first)
}
