package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const langBody = `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello"}]}}`

func TestParseCORSOrigins(t *testing.T) {
	for _, tt := range []struct {
		in      string
		any     bool
		origins []string
		bad     bool
	}{
		{in: ""},
		{in: "*", any: true},
		{in: " * ", any: true},
		{in: "https://app.example", origins: []string{"https://app.example"}},
		{in: "https://App.Example:8443, http://localhost:3000", origins: []string{"https://app.example:8443", "http://localhost:3000"}},
		{in: "app.example", bad: true},
		{in: "https://app.example/path", bad: true},
		{in: "https://app.example?x", bad: true},
		{in: "ftp://app.example", bad: true},
		{in: "https://user@app.example", bad: true},
		{in: "https://a.example,*", bad: true},
		{in: "https://a.example,", bad: true},
	} {
		p, err := ParseCORSOrigins(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if !tt.bad && (p.Any != tt.any || strings.Join(p.Origins, " ") != strings.Join(tt.origins, " ")) {
			t.Errorf("%q: %+v", tt.in, p)
		}
	}
}

// TestCORS: preflights and the headers of answers, with any origin and
// with a list, and none without a policy.
func TestCORS(t *testing.T) {
	const page = "https://app.example"
	langURL := "/ai/acct1" + langPath
	for _, tt := range []struct {
		name   string
		policy string
	}{{"any", "*"}, {"list", "https://other.example, " + page}, {"none", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			policy, err := ParseCORSOrigins(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t, func(o *Options) { o.CORS = policy })
			wantOrigin := map[string]string{"any": "*", "list": page, "none": ""}[tt.name]

			// The preflight of a Language call with a key.
			resp := w.do(t, req{method: http.MethodOptions, url: langURL, header: map[string]string{
				"Origin": page, "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "content-type,ocp-apim-subscription-key"}})
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if wantOrigin == "" {
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("preflight without a policy: %d %v", resp.StatusCode, resp.Header)
				}
			} else if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != wantOrigin ||
				resp.Header.Get("Access-Control-Allow-Methods") != "POST" ||
				resp.Header.Get("Access-Control-Allow-Headers") != "content-type,ocp-apim-subscription-key" ||
				resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
			}
			// A preflight for another method, from another origin, or with
			// a header list that is not one: the router's 405.
			for name, h := range map[string]map[string]string{
				"other-method":  {"Origin": page, "Access-Control-Request-Method": "DELETE"},
				"other-origin":  {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
				"no-origin":     {"Access-Control-Request-Method": "POST"},
				"not-preflight": {"Origin": page},
			} {
				if name == "other-origin" && tt.name == "any" {
					continue
				}
				resp := w.do(t, req{method: http.MethodOptions, url: langURL, header: h})
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Header)
				}
			}
			// The call itself, and a refused one: both readable by the page.
			for _, rq := range []struct {
				name   string
				header map[string]string
				status int
			}{
				{"served", key1(w, "acct1"), 200},
				{"refused", map[string]string{"Ocp-Apim-Subscription-Key": "wrong"}, 401},
			} {
				h := map[string]string{"Origin": page, "Content-Type": "application/json"}
				for k, v := range rq.header {
					h[k] = v
				}
				resp := w.do(t, req{url: langURL, header: h, body: langBody})
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != rq.status || resp.Header.Get("Access-Control-Allow-Origin") != wantOrigin {
					t.Errorf("%s: %d, Access-Control-Allow-Origin %q, want %d %q", rq.name, resp.StatusCode,
						resp.Header.Get("Access-Control-Allow-Origin"), rq.status, wantOrigin)
				}
				if wantOrigin != "" && resp.Header.Get("Access-Control-Expose-Headers") != "*" {
					t.Errorf("%s: expose %q", rq.name, resp.Header.Get("Access-Control-Expose-Headers"))
				}
				if (wantOrigin == page) != (resp.Header.Get("Vary") == "Origin") {
					t.Errorf("%s: Vary %q", rq.name, resp.Header.Get("Vary"))
				}
			}
			// A listed policy's answer to an origin not on the list varies
			// by Origin too: a shared cache must not serve it to a listed one.
			h := key1(w, "acct1")
			h["Origin"], h["Content-Type"] = "https://evil.example", "application/json"
			resp = w.do(t, req{url: langURL, header: h, body: langBody})
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != map[string]string{"any": "*"}[tt.name] ||
				(tt.name == "list") != (resp.Header.Get("Vary") == "Origin") {
				t.Errorf("other origin: %d %v", resp.StatusCode, resp.Header)
			}
			// A proxied answer carries the gateway's CORS headers, never the
			// upstream's own (which name another origin and credentials).
			resp = w.do(t, req{url: "/ai/acct1" + chatPath, header: map[string]string{"Origin": page,
				"Ocp-Apim-Subscription-Key": w.keys["acct1"][0], "Content-Type": "application/json"}, body: chatBody})
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != wantOrigin ||
				len(resp.Header.Values("Access-Control-Allow-Origin")) > 1 || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("proxied answer: %d, CORS headers %v", resp.StatusCode, resp.Header)
			}
			for _, name := range []string{"Server", "X-Powered-By", "Alt-Svc"} {
				if v := resp.Header.Get(name); v != "" {
					t.Errorf("proxied answer: the upstream's %s %q passed on", name, v)
				}
			}
			// The upstream's Vary is kept, beside the policy's Origin.
			if vary := strings.Join(resp.Header.Values("Vary"), ", "); !strings.Contains(vary, "Accept-Encoding") ||
				(wantOrigin == page) != strings.Contains(vary, "Origin") {
				t.Errorf("proxied answer: Vary %q", vary)
			}
			// The host form's preflight.
			resp = w.do(t, req{method: http.MethodOptions, url: "acct1.openai.gw.test" + chatPath, header: map[string]string{
				"Origin": page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "api-key,content-type"}})
			resp.Body.Close()
			if (resp.StatusCode == http.StatusNoContent) != (wantOrigin != "") || resp.Header.Get("Access-Control-Allow-Origin") != wantOrigin {
				t.Errorf("host-form preflight: %d %v", resp.StatusCode, resp.Header)
			}
			// The STS's preflight, at the account.
			resp = w.do(t, req{method: http.MethodOptions, url: "/ai/acct1/sts/v1.0/issueToken", header: map[string]string{
				"Origin": page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "ocp-apim-subscription-key"}})
			resp.Body.Close()
			if (resp.StatusCode == http.StatusNoContent) != (wantOrigin != "") {
				t.Errorf("STS preflight: %d", resp.StatusCode)
			}
			// Without Origin, nothing is added.
			resp = w.do(t, req{url: langURL, header: key1(w, "acct1"), body: langBody})
			resp.Body.Close()
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("CORS headers on a request without Origin")
			}
		})
	}
}
