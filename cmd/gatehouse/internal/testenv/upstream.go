package testenv

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

// Upstream is an OpenAI-compatible model server for tests of the gateway's
// proxy: it accepts only "Authorization: Bearer <Key>" (its own
// credential), answers a chat completion that echoes the model, path and
// last message, as JSON or as server-sent events (stream: true), and
// records every header it was sent.
type Upstream struct {
	// URL is the server's base URL (plain HTTP on 127.0.0.1).
	URL string
	// Key is the credential the upstream accepts.
	Key string

	mu   sync.Mutex
	seen []http.Header
}

// NewUpstream starts an Upstream accepting key; it stops with the test.
func NewUpstream(t testing.TB, key string) *Upstream {
	u := &Upstream{Key: key}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// SawSecret reports whether any header the upstream received contains s.
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
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Clone())
	u.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+u.Key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"bad upstream key","type":"auth"}}`)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
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
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"`+
			req.Model+`","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
		return
	}
	out, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": reply}}},
		"usage":   map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}
