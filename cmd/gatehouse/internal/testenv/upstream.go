package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Upstream is an OpenAI-compatible model server for tests of the gateway's
// proxy: it accepts only "Authorization: Bearer <Key>" (its own
// credential), answers a chat completion that echoes the model, path and
// last message, as JSON or as server-sent events (stream: true), answers
// image generations, speech and transcriptions (serveMedia), serves the
// Responses API the same way (responses it creates are stored, and
// can be read, listed, cancelled and deleted) and the Realtime API's
// WebSocket (realtime.go), and records every header it was sent.
type Upstream struct {
	// URL is the server's base URL (plain HTTP on 127.0.0.1).
	URL string
	// Key is the credential the upstream accepts.
	Key string

	mu        sync.Mutex
	seen      []http.Header
	responses map[string]map[string]any // the stored responses by id
	created   int                       // responses created
}

// NewUpstream starts an Upstream accepting key; it stops with the test.
func NewUpstream(t testing.TB, key string) *Upstream {
	u := &Upstream{Key: key}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// CatalogUpstreamModel is the model name u's catalog (CatalogFile) sends
// upstream for gpt-4o-mini; the upstream's replies echo it.
const CatalogUpstreamModel = "catalog-llama"

// CatalogFile writes a model catalog (serve --models) of two models
// served by u, with u's key in a file beside it, and returns its path:
// gpt-4o-mini (versions 2024-07-18, the default, and 2024-05-13; at most
// capacity 20, and 50 a subscription and location per sku; sent upstream
// as CatalogUpstreamModel) and text-embedding-3-small (any version, no
// quota).
func (u *Upstream) CatalogFile(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "upstream.key")
	catalog := filepath.Join(dir, "models.yaml")
	if err := os.WriteFile(keyFile, []byte(u.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `models:
  - name: gpt-4o-mini
    versions: ["2024-07-18", "2024-05-13"]
    capabilities: {chatCompletion: "true"}
    maxCapacity: 20
    quota: 50
    upstream: {endpoint: "` + u.URL + `", model: ` + CatalogUpstreamModel + `, keyFile: "` + keyFile + `"}
  - name: text-embedding-3-small
    upstream: {endpoint: "` + u.URL + `", keyFile: "` + keyFile + `"}
`
	if err := os.WriteFile(catalog, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return catalog
}

// SawSecret reports whether any header or request URI the upstream
// received contains s.
func (u *Upstream) SawSecret(s string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, h := range u.seen {
		for _, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	seen := r.Header.Clone()
	seen.Set("X-Test-Request-Uri", r.RequestURI) // SawSecret looks at the query too
	u.mu.Lock()
	u.seen = append(u.seen, seen)
	u.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+u.Key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"bad upstream key","type":"auth"}}`)
		return
	}
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if strings.HasPrefix(r.URL.Path, "/v1/responses") {
		u.serveResponses(w, r)
		return
	}
	if r.URL.Path == "/v1/realtime" {
		u.serveRealtime(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/audio/") || r.URL.Path == "/v1/images/generations" {
		u.serveMedia(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	last := ""
	if n := len(req.Messages); n > 0 {
		last = req.Messages[n-1].Content
	}
	reply := "echo from " + req.Model + " at " + r.URL.Path + ": " + last
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, word := range strings.Fields(reply) {
			if i > 0 {
				word = " " + word
			}
			chunk, _ := json.Marshal(map[string]any{"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1700000000,
				"model": req.Model, "choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": word}}}})
			fmt.Fprintf(w, "data: %s\n\n", chunk)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: %s\n\n", `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"`+
			req.Model+`","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
		if req.StreamOptions.IncludeUsage {
			fmt.Fprintf(w, "data: %s\n\n", `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"`+
				req.Model+`","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	out, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": reply}}},
		"usage":   map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
	w.Header().Set("Content-Type", "application/json")
	if last == "chunked reply" {
		// Flushed before the end: chunked, with no Content-Length (a
		// proxy's answer whose head may go out after its handler returns).
		w.Header().Set("X-Upstream-Reply", "chunked")
		w.Write(out[:10])
		w.(http.Flusher).Flush()
		out = out[10:]
	}
	w.Write(out)
}

// serveResponses is the Responses API: POST /v1/responses creates a
// response echoing the model, path and input (streamed as
// response.created, output_text deltas and response.completed with
// stream: true); GET, DELETE, POST …/cancel and GET …/input_items act on
// a stored one (404 for an id it did not create).
func (u *Upstream) serveResponses(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost && r.URL.Path == "/v1/responses" {
		var req struct {
			Model  string          `json:"model"`
			Stream bool            `json:"stream"`
			Input  json.RawMessage `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var input string
		json.Unmarshal(req.Input, &input)
		u.mu.Lock()
		if u.responses == nil {
			u.responses = map[string]map[string]any{}
		}
		u.created++
		id := fmt.Sprintf("resp_%d", u.created)
		reply := "echo from " + req.Model + " at " + r.URL.Path + ": " + input
		resp := map[string]any{"id": id, "object": "response", "created_at": 1700000000, "model": req.Model, "status": "completed",
			"input": input,
			"output": []any{map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "completed",
				"content": []any{map[string]any{"type": "output_text", "text": reply, "annotations": []any{}}}}},
			"usage": map[string]any{"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}
		u.responses[id] = resp
		u.mu.Unlock()
		if !req.Stream {
			json.NewEncoder(w).Encode(resp)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		seq := 0
		event := func(typ string, v map[string]any) {
			v["type"], v["sequence_number"] = typ, seq
			seq++
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
			w.(http.Flusher).Flush()
		}
		event("response.created", map[string]any{"response": map[string]any{"id": id, "object": "response", "model": req.Model,
			"status": "in_progress", "output": []any{}}})
		for i, word := range strings.Fields(reply) {
			if i > 0 {
				word = " " + word
			}
			event("response.output_text.delta", map[string]any{"item_id": "msg_" + id, "output_index": 0, "content_index": 0, "delta": word})
		}
		event("response.completed", map[string]any{"response": resp})
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v1/responses/")
	id, op, _ := strings.Cut(rest, "/")
	u.mu.Lock()
	resp, ok := u.responses[id]
	if ok && r.Method == http.MethodDelete && op == "" {
		delete(u.responses, id)
	}
	u.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"Response with id '%s' not found.","type":"invalid_request_error","param":null,"code":null}}`, id)
		return
	}
	switch {
	case r.Method == http.MethodGet && op == "":
		json.NewEncoder(w).Encode(resp)
	case r.Method == http.MethodDelete && op == "":
		fmt.Fprintf(w, `{"id":%q,"object":"response.deleted","deleted":true}`, id)
	case r.Method == http.MethodPost && op == "cancel":
		c := maps.Clone(resp)
		c["status"] = "cancelled"
		json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodGet && op == "input_items":
		item := map[string]any{"type": "message", "id": "in_" + id, "role": "user", "status": "completed",
			"content": []any{map[string]any{"type": "input_text", "text": resp["input"]}}}
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{item}, "first_id": "in_" + id, "last_id": "in_" + id, "has_more": false})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// serveMedia answers the operations on media the same way: an image
// generation's revised_prompt, a transcription's text (multipart/form-data
// with the audio in "file") and a speech's audio/mpeg body echo the model,
// path and input.
func (u *Upstream) serveMedia(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/audio/transcriptions") || strings.HasPrefix(r.URL.Path, "/v1/audio/translations") {
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f, h, err := r.FormFile("file")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n, _ := io.Copy(io.Discard, f)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"text": fmt.Sprintf("echo from %s at %s: %s, %d bytes",
			r.FormValue("model"), r.URL.Path, h.Filename, n)})
		return
	}
	var req struct{ Model, Prompt, Input string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/v1/audio/speech" {
		w.Header().Set("Content-Type", "audio/mpeg")
		fmt.Fprintf(w, "ID3 echo from %s at %s: %s", req.Model, r.URL.Path, req.Input)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"created": 1700000000, "data": []any{map[string]any{
		"url": "https://images.example/1.png", "revised_prompt": "echo from " + req.Model + " at " + r.URL.Path + ": " + req.Prompt}}})
}
