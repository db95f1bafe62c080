package gateway

import (
	"bytes"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Token metering: what Azure Monitor shows as Processed Prompt Tokens and
// Generated Completion Tokens per deployment, as Prometheus counters
// (gatehouse_gateway_tokens_total{account, deployment, type}).
//
// The counts are the upstream's own, from the "usage" object OpenAI's
// APIs end their answers with: a chat completion, completion, embedding
// or response ({"prompt_tokens", "completion_tokens"} or
// {"input_tokens", "output_tokens"}), the last event of a stream (a chat
// stream only when the client asked for stream_options.include_usage; a
// Responses stream's response.completed always). The proxy keeps the last
// tokenTailSize bytes of a successful answer as it copies it and reads the
// last "usage" object there once the answer is complete: no parsing of
// the body, no copy of it beyond that tail. An answer cut short counts
// nothing, and neither do reads of stored responses (already counted when
// they were created).

// tokenTailSize is how much of an answer's end is kept: a usage object
// with its details is about 300 bytes, and only what follows it in a
// response object (user, metadata) comes after it.
const tokenTailSize = 1024

// tokenTail is the end of an answer being copied.
type tokenTail struct {
	buf  [tokenTailSize]byte
	n    int
	done bool // the whole answer went through add
}

// add appends p, keeping the last tokenTailSize bytes.
func (t *tokenTail) add(p []byte) {
	if len(p) >= tokenTailSize {
		t.n = copy(t.buf[:], p[len(p)-tokenTailSize:])
		return
	}
	if t.n+len(p) > tokenTailSize {
		keep := tokenTailSize - len(p)
		copy(t.buf[:keep], t.buf[t.n-keep:t.n])
		t.n = keep
	}
	t.n += copy(t.buf[t.n:], p)
}

// tokenUsage reads the last "usage" object in tail: the prompt
// (prompt_tokens or input_tokens) and completion (completion_tokens or
// output_tokens) counts; ok is false when there is none, or it is null,
// cut off or not an object of counts.
func tokenUsage(tail []byte) (prompt, completion int64, ok bool) {
	// The last "usage" not inside a string (where it is \"usage\"), found
	// forwards: bytes.Index is vectorized, bytes.LastIndex is not, and a
	// tail holds one or two. The search skips the opening quote, which is
	// everywhere in JSON, for the rarer 'u'.
	key := []byte(`usage"`)
	i := -1
	for off := 1; off < len(tail); {
		j := bytes.Index(tail[off:], key)
		if j < 0 {
			break
		}
		if k := off + j - 1; tail[k] == '"' && (k == 0 || tail[k-1] != '\\') {
			i = k
		}
		off += j + 1
	}
	if i < 0 {
		return 0, 0, false
	}
	const keyLen = len(`"usage"`)
	p := skipWS(tail, i+keyLen)
	if p >= len(tail) || tail[p] != ':' {
		return 0, 0, false
	}
	if p = skipWS(tail, p+1); p >= len(tail) || tail[p] != '{' {
		return 0, 0, false
	}
	p++
	found := false
	for {
		if p = skipWS(tail, p); p >= len(tail) {
			return 0, 0, false
		}
		switch tail[p] {
		case '}':
			return prompt, completion, found
		case ',':
			p++
			continue
		case '"':
		default:
			return 0, 0, false
		}
		end := skipString(tail, p) // jsonbody.go's
		if end > len(tail) || tail[end-1] != '"' || end-1 == p {
			return 0, 0, false // cut off
		}
		name := string(tail[p+1 : end-1])
		if p = skipWS(tail, end); p >= len(tail) || tail[p] != ':' {
			return 0, 0, false
		}
		p = skipWS(tail, p+1)
		if p < len(tail) && tail[p] >= '0' && tail[p] <= '9' {
			var v int64
			for ; p < len(tail) && tail[p] >= '0' && tail[p] <= '9'; p++ {
				if v > 1<<40 {
					return 0, 0, false // no answer has that many tokens
				}
				v = v*10 + int64(tail[p]-'0')
			}
			switch name {
			case "prompt_tokens", "input_tokens":
				prompt, found = v, true
			case "completion_tokens", "output_tokens":
				completion, found = v, true
			}
			continue
		}
		if p >= len(tail) {
			return 0, 0, false
		}
		p = skipValue(tail, p) // a nested object, a string, null: len(tail) if cut off

	}
}

// tokenCounters are one deployment's prompt and completion counters.
type tokenCounters struct{ prompt, completion prometheus.Counter }

type tokenKey struct{ account, deployment string }

// tokenMetrics resolves and keeps the counters per account and deployment.
type tokenMetrics struct {
	vec      *prometheus.CounterVec
	counters sync.Map // tokenKey → *tokenCounters
}

func newTokenMetrics() *tokenMetrics {
	return &tokenMetrics{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_gateway_tokens_total",
		Help: "Tokens the upstreams reported in their answers' usage, by account, deployment and type (prompt: prompt_tokens or input_tokens; completion: completion_tokens or output_tokens).",
	}, []string{"account", "deployment", "type"})}
}

// count adds the usage at the end of a complete answer, if it has one,
// and returns its total.
func (m *tokenMetrics) count(account, deployment string, t *tokenTail) (prompt, completion int64, ok bool) {
	if !t.done {
		return 0, 0, false
	}
	prompt, completion, ok = tokenUsage(t.buf[:t.n])
	if !ok {
		return 0, 0, false
	}
	k := tokenKey{account, deployment}
	v, found := m.counters.Load(k)
	if !found {
		v, _ = m.counters.LoadOrStore(k, &tokenCounters{
			prompt:     m.vec.WithLabelValues(account, deployment, "prompt"),
			completion: m.vec.WithLabelValues(account, deployment, "completion"),
		})
	}
	c := v.(*tokenCounters)
	c.prompt.Add(float64(prompt))
	c.completion.Add(float64(completion))
	return prompt, completion, true
}
