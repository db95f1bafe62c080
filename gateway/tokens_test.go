package gateway

import (
	"bytes"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTokenUsage(t *testing.T) {
	for _, tt := range []struct {
		name, tail         string
		prompt, completion int64
		ok                 bool
	}{
		{"chat", `{"id":"c","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}`, 12, 34, true},
		{"details", `"usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}, "completion_tokens": 7,
			"completion_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 16}}`, 9, 7, true},
		{"vllm-nulls", `"usage":{"prompt_tokens":3,"total_tokens":8,"completion_tokens":5,"prompt_tokens_details":null}}`, 3, 5, true},
		{"embeddings", `{"object":"list","data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":8,"total_tokens":8}}`, 8, 0, true},
		{"responses", `"output":[],"usage":{"input_tokens":21,"input_tokens_details":{"cached_tokens":0},"output_tokens":13,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":34},"user":null,"metadata":{}}`, 21, 13, true},
		{"chat-stream-last-chunk", "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":6,\"total_tokens\":8}}\n\ndata: [DONE]\n\n", 2, 6, true},
		{"responses-stream", "event: response.created\ndata: {\"response\":{\"usage\":null}}\n\nevent: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n", 1, 2, true},
		{"last-wins", `"usage":{"prompt_tokens":1,"completion_tokens":1} ... "usage":{"prompt_tokens":5,"completion_tokens":6}`, 5, 6, true},
		{"in-content-only", `{"content":"the \"usage\":{\"prompt_tokens\":99} of it"}`, 0, 0, false},
		{"content-after-real", `"usage":{"prompt_tokens":4,"completion_tokens":2},"x":"\"usage\":{\"prompt_tokens\":99}"`, 4, 2, true},
		{"null", `"usage":null}`, 0, 0, false},
		{"none", `{"choices":[]}`, 0, 0, false},
		{"cut-off", `"usage":{"prompt_tokens":4,"completion_tok`, 0, 0, false},
		{"cut-in-number", `"usage":{"prompt_tokens":4`, 0, 0, false},
		{"cut-in-nested", `"usage":{"prompt_tokens":4,"details":{"a":[1,2`, 0, 0, false},
		{"no-counts", `"usage":{"duration":3.5,"type":"duration"}`, 0, 0, false},
		{"huge", `"usage":{"prompt_tokens":99999999999999999999999}`, 0, 0, false},
		{"not-an-object", `"usage":[1,2]`, 0, 0, false},
		{"bare-key", `"usage"`, 0, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, c, ok := tokenUsage([]byte(tt.tail))
			if p != tt.prompt || c != tt.completion || ok != tt.ok {
				t.Errorf("got %d, %d, %v; want %d, %d, %v", p, c, ok, tt.prompt, tt.completion, tt.ok)
			}
		})
	}
}

// TestTokenTail: the tail is the last tokenTailSize bytes, whatever the
// sizes of the writes.
func TestTokenTail(t *testing.T) {
	var all []byte
	for i := range 3000 {
		all = append(all, byte('a'+i%26))
	}
	for _, size := range []int{1, 7, 100, 1023, 1024, 1025, 3000} {
		var tt tokenTail
		for p := all; len(p) > 0; {
			n := min(size, len(p))
			tt.add(p[:n])
			p = p[n:]
		}
		if !bytes.Equal(tt.buf[:tt.n], all[len(all)-tokenTailSize:]) {
			t.Errorf("writes of %d: tail differs", size)
		}
	}
	var short tokenTail
	short.add([]byte("abc"))
	short.add([]byte("de"))
	if string(short.buf[:short.n]) != "abcde" {
		t.Errorf("short tail %q", short.buf[:short.n])
	}
}

func FuzzTokenUsage(f *testing.F) {
	f.Add([]byte(`"usage":{"prompt_tokens":12,"completion_tokens":34,"nested":{"a":[1,"}"]}}`))
	f.Add([]byte(`"usage":{"a":"\`))
	f.Add([]byte(`"usage" : { "input_tokens" : 1 , "output_tokens" : 2 }`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, c, ok := tokenUsage(b)
		if !ok && (p != 0 || c != 0) || p < 0 || c < 0 {
			t.Fatalf("%d %d %v", p, c, ok)
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

// BenchmarkTokenUsage: metering one chat completion's answer (the tail
// kept as it is copied, the usage read at its end).
func BenchmarkTokenUsage(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,` +
		`"finish_reason":"stop","message":{"role":"assistant","content":"Hello! How can I help you today?"}}],` +
		`"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0}}}`)
	m := newTokenMetrics()
	b.ReportAllocs()
	for b.Loop() {
		t := getTail()
		t.add(answer)
		t.done = true
		m.count("acct", "chat", t)
		tailPool.Put(t)
	}
}
