package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/server"
)

// directEnv is what direct is compared with: the router Mount fills, and
// probe muxes with the same patterns whose handlers report the wildcard
// values ServeMux extracts.
type directEnv struct {
	rt                 *server.Router
	probeRoot, probeAc *http.ServeMux
	got                map[string]string
}

func newDirectEnv() *directEnv {
	e := &directEnv{rt: server.NewRouter("gw.test"), probeRoot: http.NewServeMux(), probeAc: http.NewServeMux()}
	New(Options{}).Mount(e.rt)
	for _, d := range directRoutes {
		method, path, _ := strings.Cut(d.pattern, " ")
		probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.got = map[string]string{"pattern": d.pattern}
			for _, name := range []string{"account", "deployment", "version", "model", "response"} {
				e.got[name] = r.PathValue(name)
			}
		})
		e.probeRoot.Handle(method+" /ai/{account}"+path, probe)
		e.probeAc.Handle(d.pattern, probe)
	}
	return e
}

// check compares direct dispatch with the muxes for one request: one that
// direct takes must be one the mux routes to the same pattern, with the
// account and wildcard value ServeMux would give. It reports whether
// direct took it.
func (e *directEnv) check(t testing.TB, method, target string, hostForm bool) bool {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	r := &http.Request{Method: method, URL: u, Host: "gw.test", Header: http.Header{}}
	mux, probe := e.rt.Root, e.probeRoot
	var account, rel string
	if hostForm {
		r.Host = "acct.cognitiveservices.gw.test"
		account, rel, mux, probe = "acct", u.Path, e.rt.Account, e.probeAc
	} else {
		rest, ok := strings.CutPrefix(u.Path, "/ai/")
		i := strings.IndexByte(rest, '/')
		if !ok || i <= 0 {
			return false
		}
		account, rel = rest[:i], rest[i:]
	}
	d, param := directMatch(r, account, rel)
	if d == nil {
		return false
	}
	want := d.pattern
	if !hostForm {
		m, p, _ := strings.Cut(d.pattern, " ")
		want = m + " /ai/{account}" + p
	}
	if _, got := mux.Handler(r); got != want {
		t.Fatalf("%s %s: direct takes it as %q, the mux routes it to %q", method, target, want, got)
	}
	e.got = nil
	probe.ServeHTTP(nopWriter{}, r.Clone(r.Context()))
	if e.got == nil || e.got["pattern"] != d.pattern {
		t.Fatalf("%s %s: the probe mux did not serve it with %q: %v", method, target, d.pattern, e.got)
	}
	wild := e.got["deployment"] + e.got["version"] + e.got["model"] + e.got["response"]
	if wild != param || !hostForm && e.got["account"] != account {
		t.Fatalf("%s %s: direct gives account %q, value %q; ServeMux %v", method, target, account, param, e.got)
	}
	return true
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

// TestDirectMatchesMux: every route is taken directly in its usual form,
// with the ServeMux's values; everything unusual is left to the muxes.
func TestDirectMatchesMux(t *testing.T) {
	e := newDirectEnv()
	for _, hostForm := range []bool{false, true} {
		prefix := "/ai/Acct-1"
		if hostForm {
			prefix = ""
		}
		for _, tc := range []struct {
			method, path string
			taken        bool
		}{
			{"POST", "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", true},
			{"POST", "/openai/deployments/gpt-3.5_turbo~x/completions", true},
			{"POST", "/openai/deployments/e/embeddings", true},
			{"POST", "/openai/v1/chat/completions", true},
			{"POST", "/openai/v1/embeddings", true},
			{"GET", "/openai/v1/models", true},
			{"GET", "/openai/v1/models/gpt-4o", true}, // routes ending in the wildcard
			{"DELETE", "/openai/responses/resp_1", true},
			{"GET", "/openai/v1/responses/resp_1", true},
			{"POST", "/language/:analyze-text?api-version=2023-04-01", true},
			{"POST", "/text/analytics/v3.1/sentiment", true},
			{"POST", "/text/analytics/v3.0/languages", true},
			{"POST", "/sts/v1.0/issueToken", true},
			// Left to the muxes: 404, 405, redirects and unescaping are theirs.
			{"GET", "/openai/deployments/d/chat/completions", false},
			{"HEAD", "/openai/v1/models", false},
			{"POST", "/openai/deployments/d/chat/completions/", false},
			{"POST", "/openai/deployments//chat/completions", false},
			{"POST", "/openai/deployments/./chat/completions", false},
			{"POST", "/openai/deployments/../chat/completions", false},
			{"POST", "/openai/deployments/a/../d/chat/completions", false},
			{"POST", "/openai/deployments/d%2Fx/chat/completions", false},
			{"POST", "/openai/deployments/d%20x/chat/completions", false},
			{"POST", "/openai/deployments/d!/chat/completions", false},
			{"POST", "/openai/deployments/d/chat/completion", false},
			{"POST", "/OpenAI/deployments/d/chat/completions", false},
			{"POST", "/language/:analyze-text/x", false},
			{"POST", "/nothing", false},
		} {
			if got := e.check(t, tc.method, prefix+tc.path, hostForm); got != tc.taken {
				t.Errorf("%s %s%s: taken directly %v, want %v", tc.method, prefix, tc.path, got, tc.taken)
			}
		}
	}
	for _, target := range []string{"/ai/./openai/v1/models", "/ai/../openai/v1/models", "/ai/a%2Fb/openai/v1/models"} {
		if e.check(t, "GET", target, false) {
			t.Errorf("GET %s taken directly", target)
		}
	}
}

// FuzzDirect: whatever direct takes, ServeMux routes the same way.
func FuzzDirect(f *testing.F) {
	for _, s := range []string{"/openai/deployments/x/chat/completions", "/openai/v1/models", "/sts/v1.0/issueToken",
		"/text/analytics/v3.1/languages", "/language/:analyze-text", "/openai/deployments/../chat/completions"} {
		f.Add("POST", s, true)
		f.Add("GET", "/ai/a"+s, false)
	}
	e := newDirectEnv()
	f.Fuzz(func(t *testing.T, method, target string, hostForm bool) {
		e.check(t, method, target, hostForm)
	})
}
