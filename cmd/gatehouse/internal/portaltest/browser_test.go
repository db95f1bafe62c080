package portaltest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"

	"github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's Chromium. Without it the test skips, except under
// CI=true, where it fails: CI installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and no Chromium: apt-get install chromium")
	}
	t.Skip("no Chromium (apt-get install chromium)")
	return ""
}

// TestBrowser is what a person does in the portal, in headless Chromium:
// sign in, find the account, show its keys, regenerate one (accepting the
// confirmation that names its recent use), decline to regenerate the
// other, sign out. It also fails on any script error or Content Security
// Policy violation the browser reports.
// headless starts Chromium (exe) for the test and returns the context of
// its tab, which ends with the test or after 40 seconds.
func headless(t *testing.T, exe string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The node's CA is a test CA the browser's trust store does not
		// hold; the SDK suites check TLS, these tests check the pages.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBrowser(t *testing.T) {
	exe := chromium(t)
	up := testenv.NewUpstream(t, "browser-upstream-key")
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.Models = up.CatalogFile(t) }))
	e.up = up
	ctx := headless(t, exe)

	var (
		mu       sync.Mutex
		problems []string
		// expected is a browser log line that the current step causes on
		// purpose ("" = none is).
		expected string
		dialogs  []string
		accept   = true
	)
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
			mu.Unlock()
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				mu.Lock()
				if expected == "" || !strings.Contains(ev.Entry.Text, expected) {
					problems = append(problems, "log: "+ev.Entry.Text)
				}
				mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// Dialogs are answered from another goroutine: the click that opens one
	// waits until it is closed.
	go func() {
		for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
			if err != nil {
				mu.Lock()
				problems = append(problems, "dialog events: "+err.Error())
				mu.Unlock()
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			ok := accept
			mu.Unlock()
			if _, err := chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: ok}); err != nil {
				return
			}
		}
	}()

	old, err := e.Accounts.ListKeys(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	// Key1 is in use: the confirmation must say so.
	useKey(t, e, old.Key1)

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v (browser problems: %q, dialogs: %q)", step, err, problems, dialogs)
		}
	}
	// PORTAL_SCREENSHOTS=dir keeps a screenshot of each page the test
	// visits, for people changing the pages to look at.
	shot := func(name string) {
		t.Helper()
		dir := os.Getenv("PORTAL_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return strings.TrimSpace(v)
	}
	// settled waits until htmx has finished swapping content in: until
	// then the new panel's forms are not yet its own, and a click on one
	// submits it natively — without its hx-confirm (a test clicking
	// within the settle delay declined nothing and regenerated the key).
	settled := chromedp.Poll[chromedp.Void]("!document.querySelector('.htmx-added, .htmx-settling, .htmx-swapping, .htmx-request')",
		chromedp.WithPollingTimeout(10*time.Second))
	do("sign in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.URL+e.accountPath()),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	shot("signin")
	do("sign in",
		chromedp.SendKeys(chromedp.ID("username"), e.owner.UserName),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		// Back to the page asked for, after signing in.
		chromedp.WaitVisible(chromedp.ID("account-name")),
	)
	if who := text("who"); !strings.Contains(who, "olivia") {
		t.Fatalf("signed in as %q", who)
	}
	shot("account")
	do("show keys",
		chromedp.Click(chromedp.ID("show-keys")),
		chromedp.WaitVisible(chromedp.ID("value-key1")),
	)
	if text("value-key1") != old.Key1 || text("value-key2") != old.Key2 {
		t.Fatal("the keys shown are not the account's keys")
	}
	if location, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(location, e.accountPath()) {
		t.Fatalf("htmx did not swap the panel in place: the browser is at %s (%v)", location, err)
	}
	do("regenerate key1",
		settled,
		chromedp.Click(chromedp.ID("regenerate-key1")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	now, err := e.Accounts.ListKeys(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	shot("regenerated")
	if flash := text("flash"); now.Key1 == old.Key1 || now.Key2 != old.Key2 || text("value-key1") != now.Key1 || !strings.Contains(flash, "Key1 was regenerated") {
		t.Fatalf("after regenerating key1: flash %q", flash)
	}
	mu.Lock()
	if len(dialogs) != 1 || !strings.Contains(dialogs[0], "It was used") || !strings.Contains(dialogs[0], "move them to the other key first") {
		t.Fatalf("confirmation: %q", dialogs)
	}
	accept = false
	mu.Unlock()
	do("decline to regenerate key2",
		settled,
		chromedp.Click(chromedp.ID("regenerate-key2")),
		chromedp.Sleep(500*time.Millisecond), // nothing to wait for: nothing may happen
	)
	if again, err := e.Accounts.ListKeys(t.Context(), e.account); err != nil {
		t.Fatal(err)
	} else if again != now {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("declining the confirmation regenerated a key (key1 changed: %v, key2 changed: %v; dialogs %q)",
			again.Key1 != now.Key1, again.Key2 != now.Key2, dialogs)
	}
	// Grant a person a data role from the form, then remove it.
	do("grant a role",
		chromedp.SetValue(chromedp.ID("role"), authz.RoleCognitiveServicesUser),
		chromedp.SendKeys(chromedp.ID("assignee"), e.reader.UserName),
		chromedp.Click(chromedp.ID("add-role-submit")),
		chromedp.WaitVisible(chromedp.ID("roles-flash")),
	)
	shot("roles")
	granted := e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account, PrincipalID: e.reader.ObjectID})
	var grant *authz.Assignment
	for _, a := range granted {
		if a.RoleDefinitionID == authz.RoleCognitiveServicesUser {
			grant = a
		}
	}
	if msg := text("roles-flash"); grant == nil || !strings.Contains(msg, "now holds Cognitive Services User") {
		t.Fatalf("grant: %q, assignments %v", msg, granted)
	}
	do("remove the role",
		settled,
		chromedp.Click(chromedp.ID("remove-"+grant.Name)),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	if q := text("confirm-question"); !strings.HasPrefix(q, "Remove Cognitive Services User from ") || !strings.Contains(q, grant.PrincipalID) {
		t.Fatalf("confirmation: %q", q)
	}
	do("confirm the removal",
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitNotPresent(chromedp.ID("assignment-"+grant.Name)),
		chromedp.WaitVisible(chromedp.ID("roles-flash")),
	)
	if msg := text("roles-flash"); !strings.Contains(msg, "Removed Cognitive Services User") {
		t.Fatalf("removal: %q", msg)
	}
	if _, ok := e.Authz.Assignment(grant.Name); ok {
		t.Fatal("the removed assignment is still there")
	}
	do("activity", chromedp.Click(chromedp.ID("activity-link")), chromedp.WaitVisible(chromedp.ID("activity")))
	shot("activity")
	if msg := text("activity"); !strings.Contains(msg, "roleAssignments/delete") || !strings.Contains(msg, "regenerateKey") {
		t.Fatalf("activity: %q", msg)
	}
	do("home", chromedp.Navigate(e.URL+"/portal/"), chromedp.WaitVisible(chromedp.ID("accounts")))
	shot("home")
	// Deploy a model of the server's catalog from an OpenAI account's page.
	oaiID, oai := e.newAccount(t, "browser-oai", "OpenAI")
	do("deploy a model",
		chromedp.Navigate(e.URL+"/portal/accounts/"+oaiID.Subscription+"/"+oaiID.ResourceGroup+"/browser-oai"),
		chromedp.WaitVisible(chromedp.ID("deploy-form")),
		chromedp.SendKeys(chromedp.ID("deploy-name"), "browser-mini"),
		chromedp.SetValue(chromedp.ID("deploy-model"), "OpenAI|gpt-4o-mini|2024-05-13"),
		chromedp.SetValue(chromedp.ID("deploy-capacity"), "2"),
		chromedp.Click(chromedp.ID("deploy")),
		chromedp.WaitVisible(chromedp.ID("delete-deployment-browser-mini")),
	)
	shot("deployed")
	if d, err := e.Deployments.GetDeployment(t.Context(), oai, "browser-mini"); err != nil || !d.Catalog || d.Model.Version != "2024-05-13" || d.SKU.Capacity != 2 {
		t.Fatalf("deployed from the browser: %+v %v", d, err)
	}
	// Delete asks first: cancelling keeps the deployment, confirming
	// deletes it.
	do("delete, then cancel",
		chromedp.Click(chromedp.ID("delete-deployment-browser-mini")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	shot("confirm-delete")
	if q := text("confirm-question"); !strings.Contains(q, "browser-mini") || !strings.Contains(q, "browser-oai") {
		t.Errorf("confirmation: %q", q)
	}
	do("cancel", chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.ID("delete-deployment-browser-mini")))
	if _, err := e.Deployments.GetDeployment(t.Context(), oai, "browser-mini"); err != nil {
		t.Fatalf("cancelling deleted the deployment: %v", err)
	}
	do("delete, then confirm",
		chromedp.Click(chromedp.ID("delete-deployment-browser-mini")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("deploy-form")),
		chromedp.WaitNotPresent(chromedp.ID("delete-deployment-browser-mini")),
	)
	if _, err := e.Deployments.GetDeployment(t.Context(), oai, "browser-mini"); err == nil {
		t.Fatal("confirming did not delete the deployment")
	}
	// An app on another device signs in as this person: the code typed on
	// the device page (as people type it), what asks for what shown, then
	// approved.
	flow := e.startDevice(t)
	do("device code",
		chromedp.Navigate(e.URL+"/portal/device"),
		chromedp.WaitVisible(chromedp.ID("device-code")),
		chromedp.SendKeys(chromedp.ID("device-code"), strings.ToLower(flow.UserCode[:4]+"-"+flow.UserCode[4:])),
		chromedp.Click(chromedp.ID("device-next")),
		chromedp.WaitVisible(chromedp.ID("device-approve")),
	)
	shot("device-confirm")
	if q := text("device-question"); !strings.Contains(q, "Microsoft Azure CLI") || !strings.Contains(q, "management.core.windows.net") {
		t.Errorf("device question: %q", q)
	}
	do("device approve", chromedp.Click(chromedp.ID("device-approve")), chromedp.WaitVisible(chromedp.ID("device-done")))
	shot("device-done")
	if status, m := e.pollDevice(t, flow); status != 200 || m["access_token"] == nil {
		t.Fatalf("the app after the approval in the browser: %d %v", status, m)
	}
	// An app on this machine signs in through the browser (az login's
	// loopback flow): Continue sends the browser on to the app's listener —
	// which the page's CSP must allow its form to end at (Chromium applies
	// form-action to the redirect after the POST).
	app := newLoopbackApp(t)
	authURL := e.URL + "/adfs/oauth2/authorize?" + url.Values{"client_id": {authority.CLIClientID}, "response_type": {"code"},
		"redirect_uri": {app.URL + "/cb"}, "scope": {"https://management.core.windows.net//.default openid"}, "state": {"st-browser"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}.Encode()
	do("app sign-in", chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("authorize-approve")))
	shot("authorize")
	do("continue to the app", chromedp.Click(chromedp.ID("authorize-approve")), chromedp.WaitVisible(chromedp.ID("app-page")))
	if got := app.last(); got.Get("code") == "" || got.Get("state") != "st-browser" {
		t.Fatalf("the app got %v", got)
	}
	// The app signs the person out (end-session endpoint): asked, then back at the app.
	logoutURL := e.URL + "/adfs/oauth2/logout?" + url.Values{"client_id": {authority.CLIClientID},
		"post_logout_redirect_uri": {app.URL + "/bye"}, "state": {"st-bye"}}.Encode()
	do("app sign-out", chromedp.Navigate(logoutURL), chromedp.WaitVisible(chromedp.ID("confirm")))
	shot("signout-confirm")
	do("sign out for the app", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("app-page")))
	if got := app.last(); got.Get("state") != "st-bye" {
		t.Fatalf("after signing out the app got %v", got)
	}
	do("signed out", chromedp.Navigate(e.URL+"/portal/"), chromedp.WaitVisible(chromedp.ID("username")))
	do("sign in again",
		chromedp.SendKeys(chromedp.ID("username"), e.owner.UserName),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")),
	)
	// A session that ends while the page is open: the next htmx action
	// shows why in the panel instead of doing nothing.
	do("back to the account", chromedp.Navigate(e.URL+e.accountPath()), chromedp.WaitVisible(chromedp.ID("regenerate-key2")))
	if _, err := e.Directory.RevokeSignInSessions(t.Context(), e.owner.ObjectID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	accept, expected = true, "status of 401"
	mu.Unlock()
	do("act after the session ended",
		chromedp.Click(chromedp.ID("regenerate-key2")),
		chromedp.WaitVisible(chromedp.ID("keys-error")),
		chromedp.Sleep(300*time.Millisecond), // let the 401's log line arrive while it is expected
	)
	mu.Lock()
	expected = ""
	mu.Unlock()
	if msg := text("keys-error"); !strings.Contains(msg, "Sign in again") {
		t.Fatalf("panel error %q", msg)
	}
	if again, _ := e.Accounts.ListKeys(t.Context(), e.account); again != now {
		t.Fatal("a request after the session ended changed a key")
	}
	do("sign out",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.Navigate(e.URL+"/portal/"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	mu.Lock()
	defer mu.Unlock()
	if len(dialogs) != 3 {
		t.Errorf("dialogs: %q", dialogs)
	}
	if len(problems) > 0 {
		t.Fatalf("the browser reported problems: %q", problems)
	}
	e.AssertNotLogged(t, old.Key1, old.Key2, now.Key1, password)
}

// useKey makes one data-plane request with key and flushes the usage
// counters, so the portal has evidence of the key's use.
func useKey(t *testing.T, e *env, key string) {
	t.Helper()
	req, _ := newLanguageRequest(t, e, key)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("data plane: %d", resp.StatusCode)
	}
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// loopbackApp is an app's loopback listener: it records each query and
// answers with a page the browser test waits for.
type loopbackApp struct {
	*httptest.Server
	mu    sync.Mutex
	query url.Values
}

func newLoopbackApp(t *testing.T) *loopbackApp {
	a := &loopbackApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		a.mu.Lock()
		a.query = r.URL.Query()
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>app</title><p id="app-page">back at the app</p>`))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *loopbackApp) last() url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.query
}
