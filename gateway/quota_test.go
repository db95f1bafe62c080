package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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

	neverFits := func(t *testing.T, resp *http.Response, dep, tpm string) {
		t.Helper()
		code, msg := azureErr(t, resp)
		if resp.StatusCode != 429 || code != "429" || !strings.Contains(msg, "more than the "+tpm+" tokens per minute of deployment '"+dep+"'") {
			t.Errorf("oversized: %d %s %s", resp.StatusCode, code, msg)
		}
		if h := resp.Header; h.Get("Retry-After") != "86400" || h.Get("Retry-After-Ms") != "86400000" || h.Get("X-Should-Retry") != "false" {
			t.Errorf("oversized: Retry-After %q, retry-after-ms %q, x-should-retry %q", h.Get("Retry-After"), h.Get("Retry-After-Ms"), h.Get("X-Should-Retry"))
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
		// A request that could never fit says so, in a way clients do not
		// retry (Azure's day-long Retry-After, x-should-retry: false).
		resp := chat(t, f, key, "one", `,"max_tokens":5000`)
		neverFits(t, resp, "one", "1000")
	})

	t.Run("never-fits-before-the-call-limit", func(t *testing.T) {
		f, key := setup(t, true)
		if st := status(chat(t, f, key, "one", "")); st != 200 {
			t.Fatalf("first: %d", st)
		}
		// The call limit is reached, but waiting for it would not help
		// this request: it gets the final answer, not a 10-second retry.
		neverFits(t, chat(t, f, key, "one", `,"max_tokens":5000`), "one", "1000")
		f.clock.Advance(10 * time.Second)
		if st := status(chat(t, f, key, "one", "")); st != 200 {
			t.Errorf("the refused request took a call: %d", st)
		}
	})

	t.Run("inline-media", func(t *testing.T) {
		f, key := setup(t, true)
		// A 300 KB image is not 75,000 tokens: with its part counted at
		// mediaPartTokens the request fits capacity 1's 1,000 a minute.
		image := `data:image/png;base64,` + strings.Repeat("iVBORw0KGgo", 30000)
		resp := f.do(t, req{url: "/ai/q/openai/deployments/one/chat/completions?api-version=2024-10-21", header: key,
			body: `{"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"` + image + `"}}]}],"max_tokens":300}`})
		if st := status(resp); st != 200 {
			t.Fatalf("a large image: %d", st)
		}
		// 1,000 less 300 (max_tokens), 85 (the image) and the text's ~30.
		if got, _ := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining-Tokens")); got < 1000-300-85-40 || got > 1000-300-85-20 {
			t.Errorf("remaining tokens %d", got)
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

// TestEstimateTokens: the admission estimate counts text by its bytes
// and each inline image, audio clip or file at mediaPartTokens.
func TestEstimateTokens(t *testing.T) {
	b64 := strings.Repeat("UklGRiQAAABXQVZFZm10", 5000) // 100,000 bytes
	text := strings.Repeat("words ", 1000)
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"text", `{"messages":[{"role":"user","content":"` + text + `"}],"max_tokens":10}`, (len(text)+len(`{"messages":[{"role":"user","content":""}],"max_tokens":10}`)+3)/4 + 10},
		{"chat-image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + b64 + `","detail":"low"}}]}]}`,
			(len(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":,"detail":"low"}}]}]}`)+3)/4 + mediaPartTokens},
		{"escaped-slash", `{"messages":[{"content":[{"image_url":{"url":"data:image\/jpeg;base64,` + b64 + `"}}]}]}`,
			(len(`{"messages":[{"content":[{"image_url":{"url":}}]}]}`)+3)/4 + mediaPartTokens},
		{"two-images-and-text", `{"input":[{"role":"user","content":[{"type":"input_text","text":"compare"},` +
			`{"type":"input_image","image_url":"data:image/webp;base64,` + b64 + `"},{"type":"input_image","image_url":"data:image/webp;base64,` + b64 + `"}]}],"max_output_tokens":50}`,
			(len(`{"input":[{"role":"user","content":[{"type":"input_text","text":"compare"},{"type":"input_image","image_url":},{"type":"input_image","image_url":}]}],"max_output_tokens":50}`)+3)/4 + 2*mediaPartTokens + 50},
		{"input-audio", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"` + b64 + `","format":"wav"}}]}]}`,
			(len(`{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":,"format":"wav"}}]}]}`)+3)/4 + mediaPartTokens},
		{"file-data", `{"input":[{"role":"user","content":[{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,` + b64 + `"}]}]}`,
			(len(`{"input":[{"role":"user","content":[{"type":"input_file","filename":"a.pdf","file_data":}]}]}`)+3)/4 + mediaPartTokens},
		{"data-member-that-is-text", `{"metadata":{"data":"` + text + `"}}`, (len(text) + len(`{"metadata":{"data":""}}`) + 3) / 4},
		{"data-url-not-base64", `{"messages":[{"content":"data:text/plain,` + text + `"}]}`, (len(text) + len(`{"messages":[{"content":"data:text/plain,"}]}`) + 3) / 4},
		{"url-as-text", `{"messages":[{"content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`,
			(len(`{"messages":[{"content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`) + 3) / 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := estimateTokens([]byte(tt.body)); got != tt.want {
				t.Errorf("%d, want %d", got, tt.want)
			}
		})
	}
}

// TestQuotaHeadersWin: where the gateway enforces a deployment's quota,
// the answer's x-ratelimit-* fields are the gateway's, not the
// upstream's (which are about the upstream's own limits); without a
// quota the upstream's pass through.
func TestQuotaHeadersWin(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Ratelimit-Remaining-Requests", "4999")
		h.Set("X-Ratelimit-Remaining-Tokens", "799000")
		h.Set("X-Ratelimit-Limit-Requests", "5000")
		h.Set("X-Ratelimit-Limit-Tokens", "800000")
		h.Set("X-Ratelimit-Reset-Requests", "12ms")
		h.Set("X-Ratelimit-Reset-Tokens", "75ms")
		h.Set("X-Rate-Limit-Reset-Tokens", "1")
		if strings.HasSuffix(r.URL.Path, "/stream/v1/chat/completions") {
			h.Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
			return
		}
		h.Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
	t.Cleanup(up.Close)
	upstream := map[string]string{
		"X-Ratelimit-Remaining-Requests": "4999", "X-Ratelimit-Remaining-Tokens": "799000",
		"X-Ratelimit-Limit-Requests": "5000", "X-Ratelimit-Limit-Tokens": "800000",
		"X-Ratelimit-Reset-Requests": "12ms", "X-Ratelimit-Reset-Tokens": "75ms", "X-Rate-Limit-Reset-Tokens": "1",
	}
	// The gateway's: capacity 1 is 1 request per 10 seconds and 1,000
	// tokens, less the estimate of {"messages":[]} (4 tokens).
	gateway := map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Remaining-Tokens": "996"}
	for _, transport := range transports {
		for _, quotas := range []bool{true, false} {
			for _, path := range []string{"json", "stream"} {
				t.Run(fmt.Sprintf("%s-quotas-%v-%s", transport, quotas, path), func(t *testing.T) {
					f := newFixture(t, onTransport(transport), func(o *Options) {
						o.DeploymentQuotas = quotas
					})
					keys := f.accounts.add(Account{ID: acctID("h"), InternalID: "h-1", Name: "h", Kind: "OpenAI"})
					f.deps.put(acctID("h"), &Deployment{Name: "d", Upstream: mustURL(t, up.URL+"/"+path), Capacity: 1})
					resp := f.do(t, req{url: "/ai/h/openai/deployments/d/chat/completions?api-version=2024-10-21",
						header: map[string]string{"api-key": keys[0]}, body: `{"messages":[]}`})
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
					want := upstream
					if quotas {
						want = gateway
					}
					for name := range upstream {
						if got := resp.Header.Values(name); len(got) > 1 || want[name] != resp.Header.Get(name) {
							t.Errorf("%s: %q, want %q", name, got, want[name])
						}
					}
				})
			}
		}
	}
}
