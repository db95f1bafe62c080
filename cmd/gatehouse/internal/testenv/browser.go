package testenv

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FakeBrowser makes the URLs an app opens in "the system browser" arrive
// on the returned channel: it puts xdg-open, x-www-browser and www-browser
// first in PATH (MSAL Go opens the browser with them) and sets BROWSER
// (Python's webbrowser, which az uses; the xdg-open that Node's "open"
// bundles runs it too), each recording its argument. The test must not run
// in parallel (it sets the process environment).
func FakeBrowser(t *testing.T) <-chan string {
	urls, vars := FakeBrowserEnv(t)
	for k, v := range vars {
		t.Setenv(k, v)
	}
	return urls
}

// FakeBrowserEnv is FakeBrowser for a child process: it returns the
// environment variables (PATH, BROWSER) to run it with instead of setting
// them, so that parallel tests can use it.
func FakeBrowserEnv(t *testing.T) (<-chan string, map[string]string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "urls")
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '" + log + "'\n"
	for _, name := range []string{"xdg-open", "x-www-browser", "www-browser", "record-url"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"PATH": dir + string(os.PathListSeparator) + os.Getenv("PATH"), "BROWSER": filepath.Join(dir, "record-url")}
	urls := make(chan string, 8)
	ctx := t.Context()
	go func() {
		seen := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			data, _ := os.ReadFile(log)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			for ; len(data) > 0 && seen < len(lines); seen++ {
				urls <- lines[seen]
			}
		}
	}()
	return urls, vars
}

var (
	nextField    = regexp.MustCompile(`name="next" value="([^"]+)"`)
	requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)
	formAction   = regexp.MustCompile(`action="([^"]+)"`)
	hiddenField  = regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`)
)

// BrowserSignIn does what a person does in the browser an app opened at
// its authorize URL: signs in to the portal as user, continues (approve)
// or cancels on the app's page, and lets the browser take the answer back
// to the app's loopback listener (a redirect, or the form_post page's
// form). It reports problems with t.Errorf, so it may run in the
// goroutine that serves FakeBrowser's URLs.
func (s *Server) BrowserSignIn(t *testing.T, authURL, user, password string, approve bool) {
	jar, _ := cookiejar.New(nil)
	node := strings.TrimPrefix(s.URL, "https://")
	c := &http.Client{Transport: s.Transport, Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != node { // the app's loopback address: not through the node's dialer
			return http.ErrUseLastResponse
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	do := func(method, u string, form url.Values) (*http.Response, string) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			t.Errorf("browser: %v", err)
			return nil, ""
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("browser: %s %s: %v", method, u, err)
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := do("GET", authURL, nil)
	next := nextField.FindStringSubmatch(page)
	if resp == nil || resp.StatusCode != 200 || next == nil {
		t.Errorf("browser: the authorize URL did not lead to the sign-in page: %v %.500s", resp != nil && resp.StatusCode == 200, page)
		return
	}
	resp, page = do("POST", s.URL+"/portal/signin", url.Values{"username": {user}, "password": {password}, "next": {html.UnescapeString(next[1])}})
	req := requestField.FindStringSubmatch(page)
	if resp == nil || resp.StatusCode != 200 || req == nil || !strings.Contains(page, `id="authorize-approve"`) {
		t.Errorf("browser: no app page after signing in: %.500s", page)
		return
	}
	decision := "decline"
	if approve {
		decision = "approve"
	}
	resp, page = do("POST", s.URL+"/portal/authorize", url.Values{"request": {req[1]}, "decision": {decision}})
	if resp == nil {
		return
	}
	// Back to the app, not through the node's dialer: MSAL Go asks for
	// form_post, MSAL Python for a redirect.
	var err error
	var back *http.Response
	switch resp.StatusCode {
	case http.StatusSeeOther:
		back, err = http.Get(resp.Header.Get("Location"))
	case http.StatusOK:
		action := formAction.FindStringSubmatch(page)
		if action == nil {
			t.Errorf("browser: the form_post page has no form: %.500s", page)
			return
		}
		fields := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
			fields.Add(m[1], html.UnescapeString(m[2]))
		}
		back, err = http.PostForm(html.UnescapeString(action[1]), fields)
	default:
		t.Errorf("browser: the decision got %d: %.500s", resp.StatusCode, page)
		return
	}
	if err != nil {
		t.Errorf("browser: back to the app: %v", err)
		return
	}
	back.Body.Close()
}
