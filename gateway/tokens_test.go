package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scanUsage meters body given to the scanner in pieces of step bytes.
func scanUsage(body []byte, sse bool, step int) (prompt, completion int64, ok bool) {
	var s usageScanner
	s.reset(sse)
	for p := body; len(p) > 0; {
		n := min(step, len(p))
		s.add(p[:n])
		p = p[n:]
	}
	s.done = true
	return s.usage()
}

// filterResults is Azure's prompt_filter_results, about 1.8 KiB: what may
// follow an answer's usage.
var filterResults = `"prompt_filter_results":[` + strings.TrimSuffix(strings.Repeat(`{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},`+
	`"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}},`, 8), ",") + `]`

// usageCases are answers and the usage they report (-1: none).
var usageCases = []struct {
	name               string
	sse                bool
	body               string
	prompt, completion int64
}{
	{"chat", false, `{"id":"c","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}`, 12, 34},
	{"details", false, `{"usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}, "completion_tokens": 7,
		"completion_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 16}}`, 9, 7},
	{"vllm-nulls", false, `{"usage":{"prompt_tokens":3,"total_tokens":8,"completion_tokens":5,"prompt_tokens_details":null}}`, 3, 5},
	{"embeddings", false, `{"object":"list","data":[{"embedding":[0.1,-0.2e-3,3]}],"usage":{"prompt_tokens":8,"total_tokens":8}}`, 8, 0},
	{"responses", false, `{"output":[],"usage":{"input_tokens":21,"input_tokens_details":{"cached_tokens":0},"output_tokens":13,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":34},"user":null,"metadata":{}}`, 21, 13},
	{"usage-then-2kib-of-members", false, `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],` +
		`"usage":{"prompt_tokens":11,"completion_tokens":22,"total_tokens":33},"system_fingerprint":"fp_1",` + filterResults +
		`,"kv_transfer_params":{"remote_block_ids":[1,2,3],"remote_host":"10.0.0.1","note":"` + strings.Repeat("k", 600) + `"}}`, 11, 22},
	{"usage-text-in-content", false, `{"choices":[{"message":{"content":"the \"usage\":{\"prompt_tokens\":99,\"completion_tokens\":99} of it"}}]}`, -1, -1},
	{"usage-text-in-content-after-usage", false, `{"usage":{"prompt_tokens":4,"completion_tokens":2},"x":"\"usage\":{\"prompt_tokens\":99}","y":"usage"}`, 4, 2},
	{"usage-string-value-after-usage", false, `{"usage":{"prompt_tokens":4,"completion_tokens":2},"object":"usage"}`, 4, 2},
	{"escaped-backslashes", false, `{"a":"\\","b":"\\\"usage\\\":{","usage":{"prompt_tokens":6,"completion_tokens":1},"c":"\\\\"}`, 6, 1},
	{"nested-usage-after-usage", false, `{"usage":{"input_tokens":5,"output_tokens":6},"metadata":{"k":"v"},"extra":{"usage":{"input_tokens":99,"output_tokens":99}}}`, 5, 6},
	{"nested-usage-only", false, `{"choices":[{"message":{"content":"x","usage":{"prompt_tokens":99,"completion_tokens":1}}}]}`, -1, -1},
	{"usage-in-array", false, `{"items":[{"usage":{"prompt_tokens":99}}],"list":["usage",{"usage":{"prompt_tokens":98}}]}`, -1, -1},
	{"top-level-array", false, `[{"usage":{"prompt_tokens":99}}]`, -1, -1},
	{"usage-key-prefix", false, `{"usages":{"prompt_tokens":99},"usage_x":{"prompt_tokens":98},"responses":{"usage":{"prompt_tokens":97}}}`, -1, -1},
	{"duplicate-last-wins", false, `{"usage":{"prompt_tokens":1,"completion_tokens":1},"usage":{"prompt_tokens":5,"completion_tokens":6}}`, 5, 6},
	{"response-object", true, "data: " + `{"type":"response.done","response":{"id":"r","output":[{"usage":{"input_tokens":99}}],"usage":{"input_tokens":7,"output_tokens":3}}}` + "\n\n", 7, 3},
	// In an answer that is not an event, a member named "response" is
	// some member: its usage is not the answer's.
	{"response-member-of-an-answer", false, `{"usage":{"prompt_tokens":71,"completion_tokens":73},"response":{"usage":{"prompt_tokens":8888,"completion_tokens":8888}}}`, 71, 73},
	{"null", false, `{"usage":null}`, -1, -1},
	{"none", false, `{"choices":[]}`, -1, -1},
	{"cut-off", false, `{"usage":{"prompt_tokens":4,"completion_tok`, -1, -1},
	{"cut-in-number", false, `{"usage":{"prompt_tokens":4`, -1, -1},
	{"cut-in-nested", false, `{"usage":{"prompt_tokens":4,"details":{"a":[1,2`, -1, -1},
	{"no-counts", false, `{"usage":{"duration":3.5,"type":"duration"}}`, -1, -1},
	{"huge", false, `{"usage":{"prompt_tokens":99999999999999999999999}}`, -1, -1},
	{"not-an-object", false, `{"usage":[1,2]}`, -1, -1},
	{"too-large", false, `{"usage":{"prompt_tokens":1,"completion_tokens":1,"pad":"` + strings.Repeat("p", usageMax) + `"}}`, -1, -1},
	{"pretty", false, "{\n  \"usage\" : {\n    \"prompt_tokens\" : 2,\n    \"completion_tokens\" : 3\n  }\n}\n", 2, 3},

	{"chat-stream", true, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":6,\"total_tokens\":8}}\n\ndata: [DONE]\n\n", 2, 6},
	{"chat-stream-crlf", true, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":6}}\r\n\r\ndata: [DONE]\r\n\r\n", 2, 6},
	{"chat-stream-without-usage", true, "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\"}}]}\n\ndata: [DONE]\n\n", -1, -1},
	{"stream-usage-then-events", true, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"content_filter_results\":{}}]," + filterResults + "}\n\ndata: [DONE]\n\n", 3, 4},
	{"responses-stream", true, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n" +
		"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"item\":{\"usage\":{\"input_tokens\":99}}}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n", 1, 2},
	// An event's data in several data lines is one value, the lines
	// joined with '\n' (the SSE format), whatever the other fields and
	// the space after "data:".
	{"multi-line-data", true, "data: {\"choices\":[],\ndata:\"usage\":{\"prompt_tokens\":\ndata: 12,\r\ndata: \"completion_tokens\":3}\ndata: }\n\n" +
		"event: x\ndata: [DONE]\n\n", 12, 3},
	{"multi-line-data-then-other-fields", true, "event: response.completed\nid: 7\ndata: {\"type\":\"response.completed\",\ndata: \"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":5}}}\n\n", 4, 5},
	// A value left open at an event's end is abandoned: the next event's
	// data starts a value of its own.
	{"open-value-then-event", true, "data: {\"a\":[1,\n\ndata: {\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":7}}\n\n", 6, 7},
	{"open-value-then-field", true, "data: {\"a\":{\nevent: x\ndata: {\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":9}}\n\n", 8, 9},
	{"stream-broken-line", true, "data: {\"a\":\"unterminated {[\n\ndata: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5}}\n\n", 5, 5},
}

// TestTokenUsage: the usage an answer reports is its top-level "usage"
// (or its top-level response's), wherever it is and whatever follows it,
// never one nested elsewhere or written in a string, whatever the sizes
// of the pieces it is copied in.
func TestTokenUsage(t *testing.T) {
	for _, tt := range usageCases {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{1, 2, 3, 7, 64, 1000, len(tt.body)} {
				p, c, ok := scanUsage([]byte(tt.body), tt.sse, step)
				if !ok {
					p, c = -1, -1
				}
				if p != tt.prompt || c != tt.completion {
					t.Errorf("pieces of %d: %d, %d; want %d, %d", step, p, c, tt.prompt, tt.completion)
				}
			}
		})
	}
	// An answer not complete counts nothing.
	var s usageScanner
	s.reset(false)
	s.add([]byte(usageCases[0].body))
	if _, _, ok := s.usage(); ok {
		t.Error("an answer not done was counted")
	}
}

// TestNextStructural: the eight-bytes-at-a-time search finds what the
// plain loop finds.
func TestNextStructural(t *testing.T) {
	for c := range 256 {
		for pos := range 20 {
			b := bytes.Repeat([]byte("0.125,-3"), 3)[:20]
			b[pos] = byte(c)
			want := bytes.IndexAny(b, `"{}[]`)
			if want < 0 {
				want = len(b)
			}
			got := nextStructural(b)
			for got < len(b) && !bytes.ContainsRune([]byte(`"{}[]`), rune(b[got])) {
				got += 1 + nextStructural(b[got+1:]) // a byte the caller passes over
			}
			if got != want {
				t.Fatalf("byte %#x at %d: %d, want %d", c, pos, got, want)
			}
		}
	}
}

// FuzzTokenUsage: the pieces do not change the result, and on a valid
// JSON object with one "usage" the result is encoding/json's.
func FuzzTokenUsage(f *testing.F) {
	for _, tt := range usageCases {
		f.Add([]byte(tt.body), tt.sse, 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, sse bool, step int) {
		step = max(1, step%4096)
		p, c, ok := scanUsage(b, sse, len(b)+1)
		if !ok && (p != 0 || c != 0) || p < 0 || c < 0 {
			t.Fatalf("%d %d %v", p, c, ok)
		}
		if p2, c2, ok2 := scanUsage(b, sse, step); p2 != p || c2 != c || ok2 != ok {
			t.Fatalf("pieces of %d: %d %d %v; whole: %d %d %v", step, p2, c2, ok2, p, c, ok)
		}
		var top map[string]json.RawMessage
		if sse || bytes.Count(b, []byte(`"usage"`)) != 1 || bytes.Contains(b, []byte(`\u`)) || bytes.Contains(b, []byte(`"response"`)) ||
			json.Unmarshal(b, &top) != nil {
			return
		}
		var wp, wc int64
		var wok bool
		if u := top["usage"]; len(u) > 0 && u[0] == '{' && len(u) <= usageMax {
			var n int
			if wp, wc, n, wok = usageCounts(u); n != len(u) {
				wp, wc, wok = 0, 0, false
			}
		}
		if p != wp || c != wc || ok != wok {
			t.Fatalf("%d %d %v; encoding/json finds %d %d %v", p, c, ok, wp, wc, wok)
		}
	})
}

// TestTokenMetrics: proxied answers add the upstream's usage to the
// account's and deployment's counters; streams count their last event's,
// failures nothing.
func TestTokenMetrics(t *testing.T) {
	w := newWorld(t)
	tokens := func(acct, dep, typ string) float64 {
		return testutil.ToFloat64(w.gw.meter.tokens.vec.WithLabelValues(acct, dep, typ))
	}
	for range 3 {
		resp := w.do(t, req{url: "/ai/acct1" + chatPath, header: key1(w, "acct1"), body: chatBody})
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The test upstream reports 1 prompt and 1 completion token an answer.
	if p, c := tokens("acct1", "chat", "prompt"), tokens("acct1", "chat", "completion"); p != 3 || c != 3 {
		t.Errorf("chat: prompt %v completion %v", p, c)
	}
	resp := w.do(t, req{url: "/ai/acct1/openai/deployments/fail-500/chat/completions?api-version=2024-10-21", header: key1(w, "acct1"), body: chatBody})
	resp.Body.Close()
	if p := tokens("acct1", "fail-500", "prompt"); p != 0 {
		t.Errorf("a failed answer counted %v", p)
	}
}

// TestTokenMeteringThroughTheProxy: every answer of usageCases, served by
// an upstream and copied by the proxy (with the upstream client and with
// another transport), is passed on whole and metered as TestTokenUsage
// reads it.
func TestTokenMeteringThroughTheProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		for _, tt := range usageCases {
			if tt.name == name {
				w.Header().Set("Content-Type", "application/json")
				if tt.sse {
					w.Header().Set("Content-Type", "text/event-stream")
				}
				// In two writes, the second a little later: two reads.
				half := len(tt.body) / 2
				io.WriteString(w, tt.body[:half])
				w.(http.Flusher).Flush()
				io.WriteString(w, tt.body[half:])
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(up.Close)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t, onTransport(transport))
			keys := f.accounts.add(Account{ID: acctID("m"), InternalID: "m-1", Name: "m", Kind: "OpenAI"})
			for _, tt := range usageCases {
				if strings.HasPrefix(tt.name, "cut-") {
					continue // an upstream's answer cut off is not passed on whole (TestProxyUpstreamAnswers)
				}
				f.deps.put(acctID("m"), &Deployment{Name: tt.name, Upstream: mustURL(t, up.URL+"/"+tt.name)})
				t.Run(tt.name, func(t *testing.T) {
					resp := f.do(t, req{url: "/ai/m/openai/deployments/" + tt.name + "/chat/completions?api-version=2024-10-21",
						header: map[string]string{"api-key": keys[0]}, body: `{"messages":[]}`})
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(got) != tt.body {
						t.Fatalf("%d %q", resp.StatusCode, got)
					}
					p := testutil.ToFloat64(f.gw.meter.tokens.vec.WithLabelValues("m", tt.name, "prompt"))
					c := testutil.ToFloat64(f.gw.meter.tokens.vec.WithLabelValues("m", tt.name, "completion"))
					want := [2]float64{max(0, float64(tt.prompt)), max(0, float64(tt.completion))}
					if [2]float64{p, c} != want {
						t.Errorf("metered %v %v, want %v", p, c, want)
					}
				})
			}
		})
	}
}

// BenchmarkTokenUsage: metering one chat completion's answer (scanned as
// it is copied, counted at its end).
func BenchmarkTokenUsage(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,` +
		`"finish_reason":"stop","message":{"role":"assistant","content":"Hello! How can I help you today?"}}],` +
		`"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0}}}`)
	m := newTokenMetrics()
	b.ReportAllocs()
	for b.Loop() {
		s := getUsageScanner()
		s.add(answer)
		s.done = true
		m.count("acct", "chat", s)
		usagePool.Put(s)
	}
}

// BenchmarkUsageScanner: the scan alone, per answer shape, in the proxy's
// 32 KiB reads.
func BenchmarkUsageScanner(b *testing.B) {
	var floats strings.Builder
	for i := range 1536 {
		if i > 0 {
			floats.WriteByte(',')
		}
		fmt.Fprintf(&floats, "%.9f", float64(i%97)/-97)
	}
	var stream strings.Builder
	for range 200 {
		stream.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":" word"}}],"usage":null}` + "\n\n")
	}
	stream.WriteString(`data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200}}` + "\n\ndata: [DONE]\n\n")
	for _, bc := range []struct {
		name string
		sse  bool
		body string
	}{
		{"azure-chat", false, usageCases[5].body}, // usage, then prompt_filter_results
		{"long-content", false, `{"choices":[{"message":{"content":"` + strings.Repeat(`Lorem ipsum dolor sit amet, \"quoted\"\n`, 400) + `"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`},
		{"embedding", false, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` + floats.String() + `]}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}`},
		{"chat-stream", true, stream.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.SetBytes(int64(len(body)))
			var s usageScanner
			for b.Loop() {
				s.reset(bc.sse)
				for p := body; len(p) > 0; {
					n := min(32<<10, len(p))
					s.add(p[:n])
					p = p[n:]
				}
				s.done = true
				if _, _, ok := s.usage(); !ok {
					b.Fatal("no usage")
				}
			}
		})
	}
}
