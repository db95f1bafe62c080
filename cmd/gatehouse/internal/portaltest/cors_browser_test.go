package portaltest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// TestBrowserCORS is a web page on another origin calling the data plane
// with fetch in headless Chromium, as a browser app using the Language or
// OpenAI JavaScript SDK does: the browser's preflight passes, the answer is
// readable — a refusal too, so the page can tell a wrong key from a network
// failure — and on a node whose --cors-origins does not name the page's
// origin the browser blocks the call.
func TestBrowserCORS(t *testing.T) {
	exe := chromium(t)
	open := newEnv(t)
	closed := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.CORSOrigins = "https://allowed.example" }))

	// The page: served over plain HTTP from another origin.
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>app</title><p id="ready">ready</p>`))
	}))
	t.Cleanup(pageSrv.Close)

	ctx := headless(t, exe)
	if err := chromedp.Do(ctx, chromedp.Navigate(pageSrv.URL), chromedp.WaitVisible(chromedp.ID("ready"))); err != nil {
		t.Fatalf("open the page: %v", err)
	}

	type result struct {
		Status    int    `json:"status"`
		Body      string `json:"body"`
		RequestID string `json:"requestId"`
		Error     string `json:"error"`
	}
	// call fetches the node's Language endpoint from the page with key.
	call := func(e *env, key string) result {
		t.Helper()
		script := `fetch(` + jsString(e.URL+"/ai/lang/language/:analyze-text?api-version=2023-04-01") + `, {
			method: "POST",
			headers: {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": ` + jsString(key) + `},
			body: JSON.stringify({kind: "LanguageDetection", analysisInput: {documents: [{id: "1", text: "Hello world"}]}})
		}).then(async r => ({status: r.status, body: await r.text(), requestId: r.headers.get("x-ms-request-id") || ""}),
		        err => ({status: 0, body: "", requestId: "", error: String(err)}))`
		res, err := chromedp.Run(ctx, chromedp.Evaluate[result](script, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		return res
	}
	keys, err := open.Accounts.ListKeys(t.Context(), open.account)
	if err != nil {
		t.Fatal(err)
	}

	res := call(open, keys.Key1)
	if res.Status != 200 || !strings.Contains(res.Body, `"LanguageDetectionResults"`) || res.RequestID == "" {
		t.Fatalf("cross-origin call with the key: %+v", res)
	}
	var out struct {
		Results struct {
			Documents []struct {
				DetectedLanguage struct{ Iso6391Name string }
			}
		}
	}
	if json.Unmarshal([]byte(res.Body), &out) != nil || len(out.Results.Documents) != 1 || out.Results.Documents[0].DetectedLanguage.Iso6391Name != "en" {
		t.Fatalf("answer: %s", res.Body)
	}
	res = call(open, "not-the-key")
	if res.Status != 401 || !strings.Contains(res.Body, `"code":"401"`) {
		t.Fatalf("cross-origin call with a wrong key: %+v (want a readable 401)", res)
	}

	closedKeys, err := closed.Accounts.ListKeys(t.Context(), closed.account)
	if err != nil {
		t.Fatal(err)
	}
	res = call(closed, closedKeys.Key1)
	if res.Status != 0 || !strings.Contains(res.Error, "Failed to fetch") {
		t.Fatalf("a call from an origin --cors-origins does not name: %+v (want the browser to block it)", res)
	}
	open.AssertNotLogged(t, keys.Key1)
	closed.AssertNotLogged(t, closedKeys.Key1)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
