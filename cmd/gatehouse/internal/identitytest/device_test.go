package identitytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// browser is a person's browser on the portal: cookies, the node's CA.
type browser struct {
	t *testing.T
	c *http.Client
}

func (f *fixture) newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	must(t, err)
	c := *f.s.Client
	c.Jar = jar
	return &browser{t: t, c: &c}
}

func (b *browser) do(method, u string, form url.Values) (int, string) {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	must(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	must(b.t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// approveDevice does what a person does with the code an app printed:
// opens the verification page, signs in, enters the code, checks what
// asks (the confirmation page must show each of sees), and approves or
// declines. It returns the last page.
func (f *fixture) approveDevice(t *testing.T, verificationURL, userCode, user, password string, approve bool, sees ...string) string {
	t.Helper()
	b := f.newBrowser(t)
	// Not signed in: the page sends the person to sign in, and back.
	if code, page := b.do("GET", verificationURL, nil); code != 200 || !strings.Contains(page, `id="username"`) {
		t.Fatalf("verification page before signing in: %d", code)
	}
	code, page := b.do("POST", f.s.URL+"/portal/signin", url.Values{"username": {user}, "password": {password}, "next": {"/portal/device"}})
	if code != 200 || !strings.Contains(page, `id="device-code"`) {
		t.Fatalf("after signing in: %d %s", code, page)
	}
	// Typed as people type it: lower case, with a space.
	typed := strings.ToLower(userCode[:4] + " " + userCode[4:])
	code, page = b.do("POST", f.s.URL+"/portal/device", url.Values{"code": {typed}})
	if code != 200 || !strings.Contains(page, "Microsoft Azure CLI") || !strings.Contains(page, `id="device-approve"`) {
		t.Fatalf("the code's page: %d %s", code, page)
	}
	for _, s := range sees {
		if !strings.Contains(page, s) {
			t.Fatalf("the code's page does not show %q: %s", s, page)
		}
	}
	action := "/portal/device/decline"
	if approve {
		action = "/portal/device/approve"
	}
	code, page = b.do("POST", f.s.URL+action, url.Values{"code": {userCode}})
	if code != 200 || !strings.Contains(page, `id="device-done"`) {
		t.Fatalf("%s: %d %s", action, code, page)
	}
	return page
}

// testDeviceCode: a person signs an app in from a browser — azidentity's
// DeviceCodeCredential (GUID tenant, and ADFS configured by environment)
// and `gatehouse login --use-device-code` — approving on the portal's
// device page; the credential then gets other resources' tokens without
// asking again (client_info and the ID token give MSAL an account, whose
// refresh token it redeems). Declined and wrong codes too.
func (f *fixture) testDeviceCode(t *testing.T) {
	const password = "a device-code test password"
	person, err := f.s.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "devi@suite.test", Password: password})
	must(t, err)
	f.addSecret(password)

	for _, tc := range []struct {
		name string
		env  map[string]string
		opts func(prompt func(context.Context, azidentity.DeviceCodeMessage) error) *azidentity.DeviceCodeCredentialOptions
	}{
		{"guid", nil, func(prompt func(context.Context, azidentity.DeviceCodeMessage) error) *azidentity.DeviceCodeCredentialOptions {
			return &azidentity.DeviceCodeCredentialOptions{ClientOptions: f.s.ClientOptions(), TenantID: f.tenant,
				DisableInstanceDiscovery: true, UserPrompt: prompt}
		}},
		{"adfs-env", map[string]string{"AZURE_AUTHORITY_HOST": f.s.URL}, func(prompt func(context.Context, azidentity.DeviceCodeMessage) error) *azidentity.DeviceCodeCredentialOptions {
			return &azidentity.DeviceCodeCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: f.s.Client}, TenantID: "adfs",
				UserPrompt: prompt}
		}},
	} {
		t.Run("azidentity-"+tc.name, func(t *testing.T) {
			azEnv(t, tc.env)
			var prompts atomic.Int32
			cred, err := azidentity.NewDeviceCodeCredential(tc.opts(func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
				prompts.Add(1)
				if !strings.Contains(m.Message, m.UserCode) || m.VerificationURL != f.s.URL+"/portal/device" {
					t.Errorf("prompt: %+v", m)
				}
				f.approveDevice(t, m.VerificationURL, m.UserCode, person.UserName, password, true)
				return nil
			}))
			must(t, err)
			for _, sc := range []struct{ scope, aud string }{
				{"https://management.azure.com/.default", "https://management.azure.com"},
				{f.s.Authority.VaultResource() + "/.default", f.s.Authority.VaultResource()},
				{"https://cognitiveservices.azure.com/.default", "https://cognitiveservices.azure.com"},
			} {
				tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{sc.scope}})
				if err != nil {
					t.Fatalf("%s: %v", sc.scope, err)
				}
				f.addSecret(tok.Token)
				if c := f.claims(t, tok.Token, sc.aud); c.Principal.ObjectID != person.ObjectID {
					t.Fatalf("%s: token of %+v, want the person %s", sc.scope, c.Principal, person.ObjectID)
				}
			}
			if n := prompts.Load(); n != 1 {
				t.Fatalf("the person was asked %d times for three resources, want once", n)
			}
			// Graph's /me is the signed-in person (az ad signed-in-user
			// show); an application has none.
			graph, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
			must(t, err)
			f.addSecret(graph.Token)
			status, body := f.httpDo(t, "GET", "/v1.0/me", graph.Token, nil)
			var me struct{ ID, UserPrincipalName string }
			if err := json.Unmarshal(body, &me); status != 200 || err != nil || me.ID != person.ObjectID || me.UserPrincipalName != person.UserName {
				t.Fatalf("/v1.0/me: %d %s", status, body)
			}
			app := f.s.Token(t, f.s.Credential(t), graphScope)
			if status, body := f.httpDo(t, "GET", "/v1.0/me", app, nil); status != 400 || !strings.Contains(string(body), "delegated") {
				t.Fatalf("/v1.0/me as an application: %d %s", status, body)
			}
		})
	}

	t.Run("azidentity-declined", func(t *testing.T) {
		cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{ClientOptions: f.s.ClientOptions(),
			TenantID: f.tenant, DisableInstanceDiscovery: true,
			UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
				page := f.approveDevice(t, m.VerificationURL, m.UserCode, person.UserName, password, false)
				if !strings.Contains(page, "declined") {
					t.Errorf("decline page: %s", page)
				}
				return nil
			}})
		must(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		// MSAL reads the body to tell pending from final and reports the
		// 400 without it; the server's side is in the authority's tests.
		if err == nil || !strings.Contains(err.Error(), "RESPONSE 400") {
			t.Fatalf("declined: %v", err)
		}
	})

	t.Run("wrong-code", func(t *testing.T) {
		b := f.newBrowser(t)
		b.do("POST", f.s.URL+"/portal/signin", url.Values{"username": {person.UserName}, "password": {password}, "next": {"/portal/"}})
		for _, code := range []string{"ABCDEFGHJ", "not a code", strings.Repeat("A", 500)} {
			if status, page := b.do("POST", f.s.URL+"/portal/device", url.Values{"code": {code}}); status != 404 || !strings.Contains(page, `id="device-error"`) {
				t.Errorf("code %.20q: %d", code, status)
			}
		}
		if status, _ := b.do("POST", f.s.URL+"/portal/device/approve", url.Values{"code": {"ABCDEFGHJ"}}); status != 404 {
			t.Errorf("approving an unknown code: %d", status)
		}
	})

	// Wrong codes sent straight to approve or decline count as the
	// lookup's do: a guesser is throttled there too (a person of their
	// own, so the throttle holds back no other subtest).
	t.Run("wrong-code-throttled-on-decide", func(t *testing.T) {
		const pw = "a device-code guesser's password"
		guesser, err := f.s.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "guesser@suite.test", Password: pw})
		must(t, err)
		f.addSecret(pw)
		b := f.newBrowser(t)
		b.do("POST", f.s.URL+"/portal/signin", url.Values{"username": {guesser.UserName}, "password": {pw}, "next": {"/portal/"}})
		statuses := map[int]int{}
		for i := range 15 {
			action := "/portal/device/decline"
			if i%2 == 0 {
				action = "/portal/device/approve"
			}
			status, _ := b.do("POST", f.s.URL+action, url.Values{"code": {fmt.Sprintf("WRONG%04d", i)}})
			statuses[status]++
		}
		// 10 attempts a minute, refilled one every 6 s: on a slow machine
		// one more 404 may slip in.
		if n := statuses[http.StatusNotFound]; n < 10 || n > 11 || statuses[http.StatusTooManyRequests] < 4 {
			t.Errorf("15 wrong codes to approve/decline: %v, want 10 404s, then 429s", statuses)
		}
		if status, _ := b.do("POST", f.s.URL+"/portal/device", url.Values{"code": {"ABCDEFGHJ"}}); status != http.StatusTooManyRequests {
			t.Errorf("the lookup after them: %d", status)
		}
	})

	t.Run("cli", func(t *testing.T) {
		dir := t.TempDir()
		stderr := &watchBuffer{want: regexp.MustCompile(`open the page (\S+) and enter the code ([A-Z0-9]+)`), found: make(chan []string, 1)}
		var stdout bytes.Buffer
		done := make(chan int, 1)
		env := cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: stderr,
			LookupEnv: func(k string) (string, bool) {
				if k == "GATEHOUSE_CONFIG_DIR" {
					return dir, true
				}
				return "", false
			}}
		go func() {
			done <- cli.Main(t.Context(), []string{"login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "--tenant", f.tenant, "--use-device-code"}, env)
		}()
		var m []string
		select {
		case m = <-stderr.found:
		case code := <-done:
			t.Fatalf("login exited %d before printing a code: %s", code, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("no code printed: %s", stderr.String())
		}
		f.approveDevice(t, m[1], m[2], person.UserName, password, true)
		select {
		case code := <-done:
			if code != 0 || !strings.Contains(stdout.String(), person.UserName) {
				t.Fatalf("login: exit %d: %s %s", code, stdout.String(), stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatal("login did not finish after the approval")
		}
		prof, err := os.ReadFile(filepath.Join(dir, "profile.json"))
		must(t, err)
		if strings.Contains(string(prof), password) || !strings.Contains(string(prof), "refreshToken") {
			t.Fatalf("profile: %s", prof)
		}
		// The session works for the next command (a Graph token from the
		// refresh token).
		c := &cliEnv{dir: dir}
		if code, _, errOut := c.run(t, "ad", "sp", "show", "--id", f.app.AppID); code == 0 || !strings.Contains(errOut, "Authorization_RequestDenied") {
			t.Fatalf("the person's Graph call: %d %q", code, errOut)
		}
		c.mustRun(t, "logout", "--revoke")
		if code, _, errOut := c.run(t, "login", "--use-device-code", "-u", "x", "--server", f.s.URL); code == 0 || !strings.Contains(errOut, "--use-device-code") {
			t.Fatalf("--use-device-code with -u: exit %d %q", code, errOut)
		}
	})
}

// watchBuffer collects output and sends the first match of want.
type watchBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  *regexp.Regexp
	found chan []string
	sent  bool
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.want.FindStringSubmatch(w.buf.String()); m != nil && !w.sent {
		w.sent = true
		w.found <- m
	}
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// testInteractiveBrowser: azidentity's InteractiveBrowserCredential (MSAL
// Go: a loopback listener, the system browser, PKCE, form_post) signs a
// person in through the portal once and gets three resources' tokens;
// cancelling fails the sign-in.
func (f *fixture) testInteractiveBrowser(t *testing.T) {
	const password = "an interactive test password"
	person, err := f.s.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "ivy@suite.test", Password: password})
	must(t, err)
	f.addSecret(password)
	urls := testenv.FakeBrowser(t)
	var approve atomic.Bool
	approve.Store(true)
	var opened atomic.Int32
	go func() {
		for u := range urls {
			opened.Add(1)
			f.s.BrowserSignIn(t, u, person.UserName, password, approve.Load())
		}
	}()
	cred, err := azidentity.NewInteractiveBrowserCredential(&azidentity.InteractiveBrowserCredentialOptions{
		ClientOptions: f.s.ClientOptions(), TenantID: f.tenant, DisableInstanceDiscovery: true})
	must(t, err)
	for _, sc := range []struct{ scope, aud string }{
		{"https://management.azure.com/.default", "https://management.azure.com"},
		{f.s.Authority.VaultResource() + "/.default", f.s.Authority.VaultResource()},
		{"https://cognitiveservices.azure.com/.default", "https://cognitiveservices.azure.com"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{sc.scope}})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", sc.scope, err)
		}
		f.addSecret(tok.Token)
		if c := f.claims(t, tok.Token, sc.aud); c.Principal.ObjectID != person.ObjectID {
			t.Fatalf("%s: token of %+v", sc.scope, c.Principal)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("the browser opened %d times for three resources, want once", n)
	}
	// Cancelled: the app is told so (MSAL's listener gets the error).
	approve.Store(false)
	other, err := azidentity.NewInteractiveBrowserCredential(&azidentity.InteractiveBrowserCredentialOptions{
		ClientOptions: f.s.ClientOptions(), TenantID: f.tenant, DisableInstanceDiscovery: true})
	must(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := other.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}); err == nil ||
		!strings.Contains(err.Error(), "AADSTS65004") {
		t.Fatalf("cancelled: %v", err)
	}
}
