package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

func newTestHandler(t *testing.T, logs *strings.Builder) http.Handler {
	t.Helper()
	r := NewRouter("gw.example:8443")
	r.Root.Handle("GET /panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom secret-in-panic") }))
	r.Root.Handle("GET /fail", Handle(RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("driver said: password=hunter2")
	}))
	r.Root.Handle("GET /public", Handle(RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		return gatehouse.BadRequestf("InvalidThing", "The thing is invalid.").WithTarget("thing").WithInner("Inner").WithCause(errors.New("hidden cause"))
	}))
	r.Account.Handle("GET /which", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("account=" + AccountFromContext(r.Context())))
	}))
	r.Vault.Handle("GET /which", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("vault=" + VaultFromContext(r.Context())))
	}))
	mw := &Middleware{Logger: slog.New(slog.NewTextHandler(logs, nil)), Metrics: NewMetrics()}
	return mw.Wrap(r)
}

func TestErrorsNeverLeakCauses(t *testing.T) {
	var logs strings.Builder
	h := newTestHandler(t, &logs)
	for _, path := range []string{"/panic", "/fail"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://gw.example:8443"+path, nil))
		if rec.Code != 500 {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		body := rec.Body.String()
		id := rec.Header().Get("x-ms-request-id")
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal([]byte(body), &e)
		if e.Error.Code != "InternalServerError" || !strings.Contains(e.Error.Message, id) || id == "" {
			t.Errorf("%s: body %s does not carry the request id %s", path, body, id)
		}
		if strings.Contains(body, "hunter2") || strings.Contains(body, "secret-in-panic") {
			t.Errorf("%s: the cause reached the client: %s", path, body)
		}
	}
	if !strings.Contains(logs.String(), "stack=") {
		t.Error("the panic was not logged with its stack")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://gw.example:8443/public", nil))
	if rec.Code != 400 || rec.Header().Get("x-ms-error-code") != "InvalidThing" {
		t.Fatalf("public error: %d %v", rec.Code, rec.Header())
	}
	want := `{"error":{"code":"InvalidThing","message":"The thing is invalid.","target":"thing","innererror":{"code":"Inner"}}}`
	if got := rec.Body.String(); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestHostRouting(t *testing.T) {
	var logs strings.Builder
	h := newTestHandler(t, &logs)
	for host, want := range map[string]string{
		"MyAcct.cognitiveservices.gw.example:8443": "account=myacct",
		"acct.openai.gw.example":                   "account=acct",
		"kv-1.vault.gw.example:8443":               "vault=kv-1",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "https://"+host+"/which", nil)
		h.ServeHTTP(rec, req)
		if rec.Body.String() != want {
			t.Errorf("%s: %d %q, want %q", host, rec.Code, rec.Body.String(), want)
		}
	}
	// An endpoint with a trailing slash joined to a path with a leading one
	// is served, not redirected (a redirect would cost the SDKs their
	// Authorization header).
	// So are dot segments, resolved as nginx resolves them (ServeMux would
	// answer 307 with an HTML body).
	for _, path := range []string{"//which", "///which", "/x/../which", "/./which", "/x/./y/../../which", "/%2E%2E/which", "/../which"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://acct.openai.gw.example"+path, nil))
		if rec.Code != 200 || rec.Body.String() != "account=acct" {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Body.String())
		}
	}
	for _, host := range []string{"a.b.vault.gw.example", "evil.com", "gw.example.evil.com", "_x.vault.gw.example"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://"+host+"/which", nil))
		if rec.Code != 404 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", host, rec.Code, rec.Body.String())
		}
	}
}

// TestRequestContext: a request whose context NewRequestContext made is
// served in place (the handler gets the same *http.Request, with its id
// and host-routing state); any other request, and a second pass through
// the middleware, gets a fresh one.
func TestRequestContext(t *testing.T) {
	var got *http.Request
	var ids []string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		ids = append(ids, RequestID(r.Context()))
	})
	mw := &Middleware{Logger: slog.New(slog.DiscardHandler)}
	h := mw.Wrap(inner)

	r := httptest.NewRequest("GET", "https://gw.example/x", nil)
	r = r.WithContext(NewRequestContext(r.Context()))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got != r {
		t.Error("a request with a prepared context was copied")
	}
	if len(ids) != 1 || !gatehouse.IsGUID(ids[0]) || rec.Header().Get("x-ms-request-id") != ids[0] {
		t.Fatalf("request id %q, header %q", ids, rec.Header().Get("x-ms-request-id"))
	}

	plain := httptest.NewRequest("GET", "https://gw.example/x", nil)
	h.ServeHTTP(httptest.NewRecorder(), plain)
	if got == plain || RequestID(got.Context()) == "" {
		t.Error("a plain request was not given the middleware's context")
	}

	// Nested: the inner middleware does not reuse the outer one's state.
	nested := mw.Wrap(mw.Wrap(inner))
	ids = nil
	nested.ServeHTTP(httptest.NewRecorder(), r.WithContext(NewRequestContext(context.Background())))
	outer := ids
	if len(outer) != 1 || RequestID(got.Context()) != outer[0] {
		t.Fatalf("nested: ids %v", outer)
	}
	if in, ok := got.Context().(*reqInfo); !ok {
		t.Error("nested: the handler's context is not the middleware's")
	} else if _, ok := in.Context.(*reqInfo); !ok {
		t.Error("nested: the inner middleware reused the outer one's request state")
	}
}

// TestMetricsNetworks: /metrics names every account and deployment, so it
// answers only the configured networks; health checks answer anyone.
func TestMetricsNetworks(t *testing.T) {
	mux := http.NewServeMux()
	clients, err := netacl.ParsePrefixes("127.0.0.0/8,::1,10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	MountOps(mux, okPinger{}, NewMetrics(), clients)
	for _, tt := range []struct {
		path, remote string
		status       int
	}{
		{"/metrics", "127.0.0.1:50000", 200},
		{"/metrics", "[::1]:50000", 200},
		{"/metrics", "10.1.2.3:50000", 200},
		{"/metrics", "[::ffff:10.1.2.3]:50000", 200},
		{"/metrics", "192.0.2.7:50000", 403},
		{"/metrics", "[2001:db8::1]:50000", 403},
		{"/metrics", "not-an-address", 403},
		{"/healthz", "192.0.2.7:50000", 200},
		{"/readyz", "192.0.2.7:50000", 200},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		r.RemoteAddr = tt.remote
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s from %s: %d %s, want %d", tt.path, tt.remote, w.Code, w.Body, tt.status)
		}
		if tt.status == 403 && !strings.Contains(w.Body.String(), `"code":"Forbidden"`) {
			t.Errorf("%s from %s: %s", tt.path, tt.remote, w.Body)
		}
	}
}

type okPinger struct{}

func (okPinger) Ping(context.Context) error { return nil }

// TestMetricsLabels: each request is counted under its own surface, method
// and status — the array-indexed ones and the rare ones (an unknown method
// is OTHER; a surface or status outside the arrays) alike — and timed
// under its surface.
func TestMetricsLabels(t *testing.T) {
	m := NewMetrics()
	for _, o := range []struct {
		s      Surface
		method string
		status int
		n      int
	}{
		{SurfaceGateway, "POST", 200, 3},
		{SurfaceGateway, "POST", 429, 2},
		{SurfaceGateway, "GET", 200, 1},
		{SurfaceVault, "BREW", 404, 2},
		{SurfaceMSI, "OPTIONS", 699, 1},
		{Surface("custom"), "PUT", 201, 2},
		{SurfaceSTS, "POST", 99, 1},
		{SurfaceSTS, "POST", 700, 1},
	} {
		for range o.n {
			m.observe(o.s, o.method, o.status, time.Millisecond)
		}
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"gateway", "POST", "200"}, 3},
		{[]string{"gateway", "POST", "429"}, 2},
		{[]string{"gateway", "GET", "200"}, 1},
		{[]string{"vault", "OTHER", "404"}, 2},
		{[]string{"msi", "OPTIONS", "699"}, 1},
		{[]string{"custom", "PUT", "201"}, 2},
		{[]string{"sts", "POST", "99"}, 1},
		{[]string{"sts", "POST", "700"}, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 8 {
		t.Errorf("%d request series, want 8", n)
	}
	for s, want := range map[string]uint64{"gateway": 6, "vault": 2, "msi": 1, "custom": 2, "sts": 2} {
		var out dto.Metric
		if err := m.latency.WithLabelValues(s).(prometheus.Histogram).Write(&out); err != nil {
			t.Fatal(err)
		}
		if got := out.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("latency{%s}: %d samples, want %d", s, got, want)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":             "/a/b",
		"/a//b":            "/a/b",
		"/a/./b":           "/a/b",
		"/a/../b":          "/b",
		"/a/b/..":          "/a/",
		"/a/b/.":           "/a/b/",
		"/..":              "/",
		"/../../a":         "/a",
		"/.well-known/x":   "/.well-known/x",
		"/a/..b/c":         "/a/..b/c",
		"/a/b./c":          "/a/b./c",
		"/a/%2E%2E/b":      "/b",
		"/a/x%3Ay/../b%3A": "/a/b:",
	} {
		r := httptest.NewRequest("GET", "https://gw.example"+in, nil)
		got := normalizePath(r)
		if got.URL.Path != want {
			t.Errorf("%s: %q, want %q", in, got.URL.Path, want)
		}
		if p, err := url.PathUnescape(got.URL.EscapedPath()); err != nil || p != want {
			t.Errorf("%s: escaped path %q does not match %q", in, got.URL.EscapedPath(), want)
		}
	}
}

// TestLogPathHidesEscapedQuery: a client that escaped its query into the
// path (%3F) does not get the credential in it logged.
func TestLogPathHidesEscapedQuery(t *testing.T) {
	var buf bytes.Buffer
	mw := &Middleware{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	const secret = "0123456789abcdef0123456789abcdef"
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "https://gw.example/ai/x/language/:analyze-text%3Fapi-version=1&subscription-key="+secret, nil))
	if out := buf.String(); strings.Contains(out, secret) || !strings.Contains(out, `"path":"/ai/x/language/:analyze-text?…"`) {
		t.Fatalf("access log: %s", out)
	}
}
