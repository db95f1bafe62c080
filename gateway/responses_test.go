package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// responsesUpstream is an OpenAI-compatible server with the Responses
// API: it stores what it creates, answers 404 for ids it does not have,
// and records every request (method, path with query, model, credential).
type responsesUpstream struct {
	name, key string
	srv       *httptest.Server

	mu     sync.Mutex
	stored map[string]bool
	seen   []string // "METHOD /path?query model=… auth=…"
}

func newResponsesUpstream(t *testing.T, name, key string) *responsesUpstream {
	u := &responsesUpstream{name: name, key: key, stored: map[string]bool{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *responsesUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func (u *responsesUpstream) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &body)
	u.mu.Lock()
	u.seen = append(u.seen, fmt.Sprintf("%s %s model=%s auth=%s", r.Method, r.URL.RequestURI(), body.Model, r.Header.Get("Authorization")))
	u.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+u.key {
		http.Error(w, `{"error":{"message":"bad key","type":"auth"}}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost && r.URL.Path == "/v1/responses" {
		id := fmt.Sprintf("resp_%s_%d", u.name, len(u.seen))
		u.mu.Lock()
		u.stored[id] = true
		u.mu.Unlock()
		if body.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":%q}}\n\n", id)
			fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":%q}}\n\n", id)
			return
		}
		fmt.Fprintf(w, `{"id":%q,"object":"response","model":%q,"status":"completed"}`, id, body.Model)
		return
	}
	if r.Method == http.MethodPost && (r.URL.Path == "/v1/responses/compact" || r.URL.Path == "/v1/responses/input_tokens") {
		fmt.Fprintf(w, `{"object":%q,"model":%q}`, r.URL.Path, body.Model)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/responses/")
	if !ok {
		http.Error(w, `{"error":{"message":"no such route"}}`, http.StatusNotFound)
		return
	}
	id, op, _ := strings.Cut(rest, "/")
	u.mu.Lock()
	have := u.stored[id]
	if have && r.Method == http.MethodDelete {
		delete(u.stored, id)
	}
	u.mu.Unlock()
	if !have {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"Response with id '%s' not found.","type":"invalid_request_error","code":null}}`, id)
		return
	}
	switch {
	case r.Method == http.MethodGet && op == "":
		fmt.Fprintf(w, `{"id":%q,"object":"response","status":"completed","from":%q}`, id, u.name)
	case r.Method == http.MethodDelete && op == "":
		fmt.Fprintf(w, `{"id":%q,"object":"response.deleted","deleted":true}`, id)
	case r.Method == http.MethodPost && op == "cancel":
		fmt.Fprintf(w, `{"id":%q,"object":"response","status":"cancelled"}`, id)
	case r.Method == http.MethodGet && op == "input_items":
		fmt.Fprintf(w, `{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}`)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// TestResponses: the Responses API through the gateway — creation by the
// body's model on both API forms, and the stored-response operations,
// which find the upstream that has the response among the account's.
func TestResponses(t *testing.T) {
	f := newFixture(t)
	keys := f.accounts.add(Account{ID: acctID("resp"), Name: "resp", Kind: "OpenAI"})
	other := f.accounts.add(Account{ID: acctID("other"), Name: "other", Kind: "OpenAI"})
	a := newResponsesUpstream(t, "a", "key-a")
	b := newResponsesUpstream(t, "b", "key-b")
	down := closedURL(t)
	for _, d := range []*Deployment{
		{Name: "alpha", Upstream: mustURL(t, a.srv.URL), Model: "model-a", Credential: "key-a"},
		{Name: "alpha2", Upstream: mustURL(t, a.srv.URL+"/v1"), Model: "model-a2", Credential: "key-a"}, // same upstream, same key: asked once
		{Name: "beta", Upstream: mustURL(t, b.srv.URL), Model: "model-b", Credential: "key-b"},
	} {
		f.deps.put(acctID("resp"), d)
	}
	f.deps.put(acctID("other"), &Deployment{Name: "gone", Upstream: mustURL(t, down), Credential: "x"})
	f.deps.put(acctID("other"), &Deployment{Name: "zeta", Upstream: mustURL(t, b.srv.URL), Model: "model-b", Credential: "key-b"})
	key := map[string]string{"api-key": keys[0]}

	do := func(t *testing.T, method, url string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		resp := f.do(t, req{method: method, url: url, header: hdr, body: body})
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	create := func(t *testing.T, url string, hdr map[string]string, model string) string {
		t.Helper()
		status, body := do(t, "POST", url, hdr, `{"model":"`+model+`","input":"hi"}`)
		var v struct{ ID, Model string }
		if status != 200 || json.Unmarshal([]byte(body), &v) != nil || v.ID == "" {
			t.Fatalf("create: %d %s", status, body)
		}
		return v.ID
	}

	t.Run("create", func(t *testing.T) {
		id := create(t, "/ai/resp/openai/v1/responses", bearerHdr(keys[1]), "beta")
		if got := b.requests(); got[len(got)-1] != "POST /v1/responses model=model-b auth=Bearer key-b" || !strings.HasPrefix(id, "resp_b_") {
			t.Errorf("upstream b saw %v (id %s)", got, id)
		}
		create(t, "resp.openai.gw.test/openai/responses?api-version=2025-04-01-preview", key, "alpha2")
		if got := a.requests(); got[len(got)-1] != "POST /v1/responses model=model-a2 auth=Bearer key-a" {
			t.Errorf("upstream a saw %v", got)
		}
		for _, op := range []string{"compact", "input_tokens"} {
			status, body := do(t, "POST", "/ai/resp/openai/v1/responses/"+op, key, `{"model":"beta","input":"hi"}`)
			if got := b.requests(); status != 200 || got[len(got)-1] != "POST /v1/responses/"+op+" model=model-b auth=Bearer key-b" {
				t.Errorf("%s: %d %s; upstream b saw %v", op, status, body, got)
			}
		}
		status, body := do(t, "POST", "/ai/resp/openai/v1/responses", key, `{"model":"alpha","input":"hi","stream":true}`)
		if status != 200 || !strings.Contains(body, "event: response.created") || !strings.Contains(body, "event: response.completed") {
			t.Errorf("stream: %d %s", status, body)
		}
	})

	t.Run("stored-found-across-upstreams", func(t *testing.T) {
		id := create(t, "/ai/resp/openai/v1/responses", key, "beta")
		before := len(a.requests())
		status, body := do(t, "GET", "/ai/resp/openai/v1/responses/"+id+"?include[]=message.output_text.logprobs", key, "")
		if status != 200 || !strings.Contains(body, `"from":"b"`) {
			t.Fatalf("get: %d %s", status, body)
		}
		// alpha and alpha2 share an upstream and key: a was asked once.
		if got := a.requests()[before:]; len(got) != 1 || got[0] != "GET /v1/responses/"+id+"?include%5B%5D=message.output_text.logprobs model= auth=Bearer key-a" {
			t.Errorf("upstream a saw %v", got)
		}
		if got := b.requests(); got[len(got)-1] != "GET /v1/responses/"+id+"?include%5B%5D=message.output_text.logprobs model= auth=Bearer key-b" {
			t.Errorf("upstream b saw %v", got)
		}
		// The dated form drops its api-version before forwarding.
		status, body = do(t, "GET", "resp.openai.gw.test/openai/responses/"+id+"/input_items?api-version=2025-04-01-preview&limit=5", key, "")
		if status != 200 || !strings.Contains(body, `"object":"list"`) {
			t.Fatalf("input_items: %d %s", status, body)
		}
		if got := b.requests(); got[len(got)-1] != "GET /v1/responses/"+id+"/input_items?limit=5 model= auth=Bearer key-b" {
			t.Errorf("upstream b saw %v", got)
		}
		// A credential in the query stays with the gateway, in any case.
		status, body = do(t, "GET", "/ai/resp/openai/v1/responses/"+id+"/input_items?limit=5&api-key="+keys[0]+"&Subscription-Key="+keys[1]+"&AUTHORIZATION=Bearer+x", key, "")
		if got := b.requests(); status != 200 || got[len(got)-1] != "GET /v1/responses/"+id+"/input_items?limit=5 model= auth=Bearer key-b" {
			t.Errorf("credential query: %d %s; upstream b saw %v", status, body, got)
		}
		if status, body = do(t, "POST", "/ai/resp/openai/v1/responses/"+id+"/cancel", key, ""); status != 200 || !strings.Contains(body, "cancelled") {
			t.Errorf("cancel: %d %s", status, body)
		}
		if status, body = do(t, "DELETE", "/ai/resp/openai/responses/"+id+"?api-version=2025-04-01-preview", key, ""); status != 200 || !strings.Contains(body, `"deleted":true`) {
			t.Errorf("delete: %d %s", status, body)
		}
		if status, body = do(t, "GET", "/ai/resp/openai/v1/responses/"+id, key, ""); status != 404 || !strings.Contains(body, "not found") {
			t.Errorf("get after delete: %d %s", status, body)
		}
	})

	t.Run("deployment-scoped", func(t *testing.T) {
		// openai-python's AzureOpenAI(azure_deployment=…): the deployment in
		// the path, for creating and for the stored response alike.
		const q = "?api-version=2025-04-01-preview"
		status, body := do(t, "POST", "/ai/resp/openai/deployments/beta/responses"+q, key, `{"input":"hi"}`)
		var v struct{ ID string }
		if status != 200 || json.Unmarshal([]byte(body), &v) != nil || !strings.HasPrefix(v.ID, "resp_b_") {
			t.Fatalf("create: %d %s", status, body)
		}
		if got := b.requests(); got[len(got)-1] != "POST /v1/responses model=model-b auth=Bearer key-b" {
			t.Errorf("upstream b saw %v", got)
		}
		before := len(a.requests())
		if status, body = do(t, "GET", "/ai/resp/openai/deployments/beta/responses/"+v.ID+q, key, ""); status != 200 || !strings.Contains(body, `"from":"b"`) {
			t.Errorf("get: %d %s", status, body)
		}
		if status, _ = do(t, "GET", "/ai/resp/openai/deployments/alpha/responses/"+v.ID+q, key, ""); status != 404 {
			t.Errorf("get from the other deployment: %d", status)
		}
		if got := a.requests()[before:]; len(got) != 1 {
			t.Errorf("upstream a was asked %v; only the alpha request should reach it", got)
		}
		resp := f.do(t, req{method: "GET", url: "/ai/resp/openai/deployments/nope/responses/" + v.ID + q, header: key})
		if code, _ := azureErr(t, resp); resp.StatusCode != 404 || code != "DeploymentNotFound" {
			t.Errorf("unknown deployment: %d %s", resp.StatusCode, code)
		}
		if status, body = do(t, "POST", "/ai/resp/openai/deployments/beta/responses/"+v.ID+"/cancel"+q, key, ""); status != 200 || !strings.Contains(body, "cancelled") {
			t.Errorf("cancel: %d %s", status, body)
		}
	})

	t.Run("an-upstream-down-is-passed-over", func(t *testing.T) {
		id := create(t, "/ai/other/openai/v1/responses", map[string]string{"api-key": other[0]}, "zeta")
		if status, body := do(t, "GET", "/ai/other/openai/v1/responses/"+id, map[string]string{"api-key": other[0]}, ""); status != 200 {
			t.Fatalf("get: %d %s", status, body)
		}
		// Nobody has it and one upstream could not be asked: that is the answer.
		resp := f.do(t, req{method: "GET", url: "/ai/other/openai/v1/responses/resp_nobody", header: map[string]string{"api-key": other[0]}})
		if code, _ := azureErr(t, resp); resp.StatusCode != 502 || code != "BadGateway" {
			t.Errorf("unknown id with an upstream down: %d %s", resp.StatusCode, code)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		reader := f.tokens.identity("reader-oid", CognitiveAudience)
		f.authz.grant("reader-oid", dataActionPrefix+"OpenAI/responses/read", acctID("resp"))
		for _, tt := range []struct {
			name, method, url, body string
			hdr                     map[string]string
			status                  int
			code, msg               string
		}{
			{"unknown-id", "GET", "/ai/resp/openai/v1/responses/resp_unknown", "", key, 404, "NotFound", "resp_unknown"},
			{"malformed-id", "GET", "/ai/resp/openai/v1/responses/bad!id", "", key, 404, "NotFound", ""},
			{"long-id", "GET", "/ai/resp/openai/v1/responses/" + strings.Repeat("x", 257), "", key, 404, "NotFound", ""},
			{"dated-without-api-version", "GET", "/ai/resp/openai/responses/resp_x", "", key, 404, "404", ""},
			{"dated-create-without-api-version", "POST", "/ai/resp/openai/responses", `{"model":"alpha"}`, key, 404, "404", ""},
			{"create-without-model", "POST", "/ai/resp/openai/v1/responses", `{"input":"x"}`, key, 400, "BadRequest", ""},
			{"create-unknown-deployment", "POST", "/ai/resp/openai/v1/responses", `{"model":"nope"}`, key, 404, "DeploymentNotFound", ""},
			{"create-malformed-json", "POST", "/ai/resp/openai/v1/responses", `{"model":`, key, 400, "BadRequest", ""},
			{"bad-query", "GET", "/ai/resp/openai/v1/responses/resp_x?a=%zz", "", key, 400, "BadRequest", ""},
			{"other-accounts-key", "GET", "/ai/resp/openai/v1/responses/resp_x", "", map[string]string{"api-key": other[0]}, 401, "401", ""},
			{"reader-cannot-create", "POST", "/ai/resp/openai/v1/responses", `{"model":"alpha"}`, bearerHdr(reader), 401, "PermissionDenied", "OpenAI/responses/write"},
			{"reader-cannot-delete", "DELETE", "/ai/resp/openai/v1/responses/resp_x", "", bearerHdr(reader), 401, "PermissionDenied", "OpenAI/responses/delete"},
			{"reader-reads", "GET", "/ai/resp/openai/v1/responses/resp_x", "", bearerHdr(reader), 404, "NotFound", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				resp := f.do(t, req{method: tt.method, url: tt.url, header: tt.hdr, body: tt.body})
				if resp.StatusCode != tt.status {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
				}
				if code, msg := azureErr(t, resp); code != tt.code || !strings.Contains(msg, tt.msg) {
					t.Errorf("%s %q, want %s %q", code, msg, tt.code, tt.msg)
				}
			})
		}
	})

	t.Run("preflight-names-every-method", func(t *testing.T) {
		f.gw.cors = CORSPolicy{Origins: []string{"https://app.example"}}
		resp := f.do(t, req{method: "OPTIONS", url: "/ai/resp/openai/v1/responses/resp_x",
			header: map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}})
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "GET, DELETE" {
			t.Errorf("preflight: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
		}
	})
	for _, k := range keys {
		for _, u := range []*responsesUpstream{a, b} {
			for _, s := range u.requests() {
				if strings.Contains(s, k) {
					t.Fatal("an upstream received the client's key")
				}
			}
		}
	}
}
