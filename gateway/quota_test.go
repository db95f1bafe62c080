package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMaxOutputTokens(t *testing.T) {
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"messages":[],"max_tokens":300}`, 300},
		{`{"max_completion_tokens": 42, "messages":[{"content":"max_tokens: 999"}]}`, 42},
		{`{"input":"x","max_output_tokens":7,"max_tokens":9}`, 9},
		{`{"nested":{"max_tokens":500},"max_tokens":5}`, 5},
		{`{"max_tokens":null}`, 0},
		{`{"max_tokens":-3}`, 0},
		{`{"max_tokens":"300"}`, 0},
		{`{"max_tokens":99999999999999}`, 1 << 30},
		{`{"messages":[]}`, 0},
		{`[1,2]`, 0},
		{`{"max_tokens":`, 0},
	} {
		if got := maxOutputTokens([]byte(tt.body)); got != tt.want && !(tt.want == 1<<30 && got >= 1<<30) {
			t.Errorf("%s: %d, want %d", tt.body, got, tt.want)
		}
	}
}

// TestDeploymentQuotas: with Options.DeploymentQuotas a deployment's
// capacity bounds its requests (6 a minute per unit, over 10 seconds) and
// tokens (1,000 a minute per unit: estimate first, usage beyond it after)
// with Azure OpenAI's 429s; without it, or at capacity 0, nothing is
// bounded.
func TestDeploymentQuotas(t *testing.T) {
	// An upstream whose answers report 2 tokens, or 901 for model "verbose".
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		completion := 1
		if strings.Contains(string(b), `"model":"verbose"`) {
			completion = 900
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":%d}}`, completion)
	}))
	t.Cleanup(up.Close)
	setup := func(t *testing.T, quotas bool) (*fixture, map[string]string) {
		f := newFixture(t, func(o *Options) { o.DeploymentQuotas = quotas })
		keys := f.accounts.add(Account{ID: acctID("q"), InternalID: "q-1", Name: "q", Kind: "OpenAI"})
		for _, d := range []*Deployment{
			{Name: "one", Model: "terse", Capacity: 1},
			{Name: "two", Model: "terse", Capacity: 2},
			{Name: "wordy", Model: "verbose", Capacity: 1},
			{Name: "free", Model: "terse", Capacity: 0},
		} {
			d.Upstream, d.Credential = mustURL(t, up.URL), "k"
			f.deps.put(acctID("q"), d)
		}
		return f, map[string]string{"api-key": keys[0]}
	}
	chat := func(t *testing.T, f *fixture, key map[string]string, dep, extra string) *http.Response {
		t.Helper()
		return f.do(t, req{url: "/ai/q/openai/deployments/" + dep + "/chat/completions?api-version=2024-10-21", header: key,
			body: `{"messages":[{"role":"user","content":"hi"}]` + extra + `}`})
	}
	status := func(resp *http.Response) int {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	refused := func(t *testing.T, resp *http.Response, kind string, retry string) {
		t.Helper()
		if resp.StatusCode != 429 {
			t.Fatalf("status %d, want 429", resp.StatusCode)
		}
		code, msg := azureErr(t, resp)
		if code != "429" || !strings.Contains(msg, "ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "+kind+" rate limit") {
			t.Errorf("%s: %s", code, msg)
		}
		if got := resp.Header.Get("Retry-After"); got != retry || resp.Header.Get("Retry-After-Ms") == "" {
			t.Errorf("Retry-After %q (ms %q), want %s", got, resp.Header.Get("Retry-After-Ms"), retry)
		}
	}

	t.Run("requests", func(t *testing.T) {
		f, key := setup(t, true)
		resp := chat(t, f, key, "one", "")
		if status(resp) != 200 || resp.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || resp.Header.Get("X-Ratelimit-Remaining-Tokens") == "" {
			t.Fatalf("first: %d %v", resp.StatusCode, resp.Header)
		}
		// Capacity 1: 6 a minute, 1 per 10 seconds.
		refused(t, chat(t, f, key, "one", ""), "call", "10")
		f.clock.Advance(10 * time.Second)
		if st := status(chat(t, f, key, "one", "")); st != 200 {
			t.Errorf("after 10s: %d", st)
		}
		// Capacity 2: 2 per 10 seconds; a deployment stored without a
		// capacity counts as capacity 1, never as unbounded.
		for i, want := range []int{200, 200, 429} {
			if st := status(chat(t, f, key, "two", "")); st != want {
				t.Errorf("two, request %d: %d, want %d", i, st, want)
			}
		}
		for i, want := range []int{200, 429} {
			if st := status(chat(t, f, key, "free", "")); st != want {
				t.Errorf("free, request %d: %d, want %d", i, st, want)
			}
		}
	})

	t.Run("tokens", func(t *testing.T) {
		f, key := setup(t, true)
		// Capacity 2: 2,000 tokens a minute; the estimate is the body / 4
		// plus max_tokens.
		if st := status(chat(t, f, key, "two", `,"max_tokens":1500`)); st != 200 {
			t.Fatalf("first: %d", st)
		}
		refused(t, chat(t, f, key, "two", `,"max_tokens":1000`), "token", "16") // 532 tokens short at 33⅓ a second
		// A request that could never fit says so.
		resp := chat(t, f, key, "one", `,"max_tokens":5000`)
		if code, msg := azureErr(t, resp); resp.StatusCode != 429 || code != "429" || !strings.Contains(msg, "more than the 1000 tokens per minute of deployment 'one'") {
			t.Errorf("oversized: %d %s %s", resp.StatusCode, code, msg)
		}
	})

	t.Run("usage-beyond-the-estimate", func(t *testing.T) {
		f, key := setup(t, true)
		// No max_tokens: admitted on its prompt alone; the answer reports
		// 901 tokens, which are charged after it.
		resp := chat(t, f, key, "wordy", "")
		if st := status(resp); st != 200 {
			t.Fatalf("first: %d", st)
		}
		// 1,000 - 12 (estimate) - 889 (the rest of the usage) = 99 left;
		// 10 seconds later a request slot is back and 265 tokens: short of
		// the next one's 316 by 50, 3 seconds at 16⅔ a second.
		f.clock.Advance(10 * time.Second)
		refused(t, chat(t, f, key, "wordy", `,"max_tokens":300`), "token", "4")
	})

	t.Run("off", func(t *testing.T) {
		f, key := setup(t, false)
		for i := range 10 {
			resp := chat(t, f, key, "one", `,"max_tokens":5000`)
			if st := status(resp); st != 200 || resp.Header.Get("X-Ratelimit-Remaining-Requests") != "" {
				t.Fatalf("request %d: %d %v", i, st, resp.Header)
			}
		}
	})
}
