package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testUpstream is an OpenAI-compatible server that records what it got.
// The model name picks a behaviour: "stream" answers with server-sent
// events paced by the test, "fail-NNN" answers with status NNN, "hang"
// never answers.
type testUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
	// step paces the streaming answer: the upstream sends one event per
	// receive, so a test can prove each event reached the client before
	// the next was produced.
	step chan struct{}
}

type seen struct {
	path   string
	header http.Header
	body   map[string]any
}

func newTestUpstream(t testing.TB) *testUpstream {
	u := &testUpstream{step: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *testUpstream) last() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got[len(u.got)-1]
}

func (u *testUpstream) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(raw, &body)
	u.mu.Lock()
	u.got = append(u.got, seen{path: r.URL.Path, header: r.Header.Clone(), body: body})
	u.mu.Unlock()
	model, _ := body["model"].(string)
	switch {
	case model == "stream":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush() // the head first, as a model server does before its first token
		for i := range 3 {
			<-u.step
			fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	case strings.HasPrefix(model, "fail-"):
		var status int
		fmt.Sscanf(model, "fail-%d", &status)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		// It echoes the credential it got, as a careless upstream's error
		// might: the gateway must not pass that on.
		text := fmt.Sprintf("upstream says %d (credential %s)", status, r.Header.Get("Authorization"))
		if strings.HasSuffix(model, "-long") {
			// Long enough that the gateway's clipping would cut the
			// credential in two, were it done first.
			text = strings.Repeat("x", maxUpstreamMsg-len(text)+10) + text
		}
		msg, _ := json.Marshal(text)
		fmt.Fprintf(w, `{"error":{"message":%s,"type":"invalid_request_error","param":null,"code":null}}`, msg)
	case model == "hang":
		<-r.Context().Done()
	case model == "cut":
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		w.Write([]byte(`{"id":`))
	default:
		w.Header().Set("Content-Type", "application/json")
		// An upstream with CORS of its own, which the gateway's policy
		// replaces (TestCORS).
		w.Header().Set("Access-Control-Allow-Origin", "https://upstream-ui.example")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Vary", "Accept-Encoding")
		// What describes the upstream's server, not the answer: never
		// passed on (TestCORS checks).
		w.Header().Set("Server", "upstream-llm/0.4.1")
		w.Header().Set("X-Powered-By", "llm-runtime")
		w.Header().Set("Alt-Svc", `h3=":8443"; ma=86400`)
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":%q,`+
			`"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi from %s"}}],`+
			`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, model, r.URL.Path)
	}
}

// TestStalledClient: a client that stops reading a streamed answer is cut
// off once a write to it has waited the write timeout, and the upstream's
// connection with it (else it held both, and the handler, for as long as
// it liked).
func TestStalledClient(t *testing.T) {
	f := newFixture(t)
	f.gw.proxy.writeTimeout = 200 * time.Millisecond
	gone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := []byte("data: " + strings.Repeat("x", 64<<10) + "\n\n")
		for {
			if _, err := w.Write(chunk); err != nil {
				close(gone)
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	keys := f.accounts.add(Account{ID: acctID("s"), InternalID: "s-1", Name: "s", Kind: "OpenAI"})
	f.deps.put(acctID("s"), &Deployment{Name: "chat", Upstream: mustURL(t, up.URL), Credential: "k"})
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	body := `{"messages":[{"role":"user","content":"hi"}],"stream":true}`
	fmt.Fprintf(c, "POST /ai/s/openai/deployments/chat/chat/completions?api-version=2024-10-21 HTTP/1.1\r\nHost: gw.test\r\n"+
		"Api-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", keys[0], len(body), body)
	// The client reads nothing.
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream's stream outlived a client that stopped reading")
	}
}

// TestStreamRedactsCredential: an upstream that echoes its credential in
// an event stream (a mid-stream error event) has it cut out, even when
// the credential is split across two reads; the events around it pass
// unchanged and whole.
func TestStreamRedactsCredential(t *testing.T) {
	const cred = "up-stream-credential-0123456789"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		io.WriteString(w, `data: {"error":{"message":"failed with `+cred[:10])
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond) // a read of its own
		io.WriteString(w, cred[10:]+` and again `+cred+`"}}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t, onTransport(transport))
			keys := f.accounts.add(Account{ID: acctID("s"), InternalID: "s-1", Name: "s", Kind: "OpenAI"})
			f.deps.put(acctID("s"), &Deployment{Name: "chat", Upstream: mustURL(t, up.URL), Credential: cred})
			resp := f.do(t, req{url: "/ai/s/openai/deployments/chat/chat/completions?api-version=2024-10-21",
				header: map[string]string{"api-key": keys[0]}, body: `{"messages":[],"stream":true}`})
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n" +
				`data: {"error":{"message":"failed with *** and again ***"}}` + "\n\ndata: [DONE]\n\n"
			if resp.StatusCode != 200 || string(got) != want {
				t.Fatalf("%d %q", resp.StatusCode, got)
			}
		})
	}
}

// TestRedactorHoldsOnlyAStart: nothing is held back but what may start
// the secret; outside an event stream each of its bytes becomes '*'.
func TestRedactorHoldsOnlyAStart(t *testing.T) {
	r := newRedactor(true, fnd("secret-value-123"))
	if out := string(r.filter([]byte("data: x\n\n"))); out != "data: x\n\n" {
		t.Fatalf("an event was held back: %q", out)
	}
	if out := string(r.filter([]byte("data: se"))); out != "data: " || string(r.rest()) != "se" {
		t.Fatalf("the start of the secret: %q", out)
	}
	m := newRedactor(false, fnd("secret-value-123"))
	for _, c := range []struct{ in, out, held string }{
		{`{"a":"secret-value-123","b":"secret-value-123"}`, `{"a":"****************","b":"****************"}`, ""},
		{`{"a":"secret-value-12`, `{"a":"`, "secret-value-12"},
		{`3"}`, `****************"}`, ""},
		{`ssssecret-value-1`, `sss`, "secret-value-1"},
		{`x`, `secret-value-1x`, ""},
		{`{"a":"s`, `{"a":"`, "s"},
	} {
		if out := string(m.filter([]byte(c.in))); out != c.out || string(m.held) != c.held {
			t.Fatalf("%q: %q, held %q; want %q, held %q", c.in, out, m.held, c.out, c.held)
		}
	}
	if string(m.rest()) != "s" || m.held != nil {
		t.Fatal("rest")
	}
	if short := newRedactor(false, fnd("short")); string(short.filter([]byte("short"))) != "short" {
		t.Fatal("a credential under 8 bytes was cut out")
	}
}

// TestRedactorEscapedSecret: a credential with characters JSON escapes is
// also found as a JSON string spells it (encoding/json's \u003c, an
// escaped quote or backslash, PHP's \/), whole or split across reads.
func TestRedactorEscapedSecret(t *testing.T) {
	const cred = `k/ey<1>&"2\3-0123456789`
	spellings := append([]string{cred}, escapes(cred)...)
	if len(spellings) < 4 {
		t.Fatalf("spellings %q", spellings)
	}
	for _, sp := range spellings {
		body := `{"echo":"` + sp + `","n":1}`
		if sp != cred && !json.Valid([]byte(body)) {
			t.Fatalf("%q is not a JSON string's spelling", sp)
		}
		want := strings.ReplaceAll(body, sp, strings.Repeat("*", len(sp)))
		for split := 0; split <= len(body); split++ {
			r := newRedactor(false, fnd(cred))
			out := string(r.filter([]byte(body[:split])))
			out += string(r.filter([]byte(body[split:])))
			out += string(r.rest())
			if out != want {
				t.Fatalf("%q split at %d: %q, want %q", sp, split, out, want)
			}
		}
		s := newRedactor(true, fnd(cred))
		if out := string(s.filter([]byte("data: " + body + "\n\n"))); strings.Contains(out, sp) || !strings.Contains(out, "***") {
			t.Fatalf("event stream: %q", out)
		}
	}
	// encoding/json's spelling, PHP's and the plain one are all there.
	for _, want := range []string{`k/ey\u003c1\u003e\u0026\"2\\3-0123456789`, `k\/ey<1>&\"2\\3-0123456789`, `k/ey<1>&\"2\\3-0123456789`} {
		if !slices.Contains(spellings, want) {
			t.Errorf("no spelling %s in %q", want, spellings)
		}
	}
	if e := escapes("plain-credential_0123.x"); len(e) != 0 {
		t.Errorf("a credential JSON leaves alone has spellings %q", e)
	}
}

// TestAnswerRedactsCredential: a plain (not streamed) success that echoes
// the upstream's credential, whole in one read or split across two, with
// a Content-Length or chunked, has each of its bytes masked: the length
// stays true and the JSON valid. A credential JSON escapes is masked as
// the upstream's JSON spells it too.
func TestAnswerRedactsCredential(t *testing.T) {
	for name, cred := range map[string]string{"plain": "up-stream-credential-0123456789", "escaped": "up/stream<credential>&0123456789"} {
		t.Run(name, func(t *testing.T) { testAnswerRedactsCredential(t, cred) })
	}
}

func testAnswerRedactsCredential(t *testing.T, cred string) {
	esc := string(jsonString(cred)) // encoding/json's spelling: \u003c, \u003e, \u0026
	body := `{"id":"x","echo":"` + esc + `","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"again":"` + cred + `"}`
	want := strings.ReplaceAll(body, cred, strings.Repeat("*", len(cred)))
	want = strings.ReplaceAll(want, esc, strings.Repeat("*", len(esc)))
	split := strings.Index(body, esc) + 10
	var forms sync.Map
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forms.Store(r.URL.Path, true)
		w.Header().Set("Content-Type", "application/json")
		if !strings.Contains(r.URL.Path, "chunked") {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		if !strings.Contains(r.URL.Path, "split") {
			io.WriteString(w, body)
			return
		}
		io.WriteString(w, body[:split])
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond) // a read of its own
		io.WriteString(w, body[split:])
	}))
	t.Cleanup(up.Close)
	for _, transport := range transports {
		for _, form := range []string{"whole", "split", "chunked", "split/chunked"} {
			t.Run(transport+"/"+form, func(t *testing.T) {
				f := newFixture(t, onTransport(transport))
				keys := f.accounts.add(Account{ID: acctID("s"), InternalID: "s-1", Name: "s", Kind: "OpenAI"})
				u := mustURL(t, up.URL+"/"+form) // the base URL: /{form}/v1/chat/completions
				f.deps.put(acctID("s"), &Deployment{Name: "chat", Upstream: u, Credential: cred})
				resp := f.do(t, req{url: "/ai/s/openai/deployments/chat/chat/completions?api-version=2024-10-21",
					header: map[string]string{"api-key": keys[0]}, body: `{"messages":[]}`})
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != want || !json.Valid(got) {
					t.Fatalf("%d %q", resp.StatusCode, got)
				}
				if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(want)) {
					t.Fatalf("Content-Length %s for %d bytes", cl, len(got))
				}
				if _, ok := forms.Load("/" + form + "/v1/chat/completions"); !ok {
					t.Fatal("the upstream was not asked for this form")
				}
			})
		}
	}
}

// BenchmarkRedactor: the search for the upstream's credential (64
// characters, as Gatehouse's own keys) in a chat answer and in a 32 KiB
// read of an embedding, neither holding it: the cost every answer pays.
func BenchmarkRedactor(b *testing.B) {
	cred := "8f95d902a9e9a0fb816e71981a34de37b08f8cea6f11e6e4cf2a8510789d6ada" // a key as Gatehouse makes them
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,` +
		`"finish_reason":"stop","message":{"role":"assistant","content":"Hello! How can I help you today?"}}],` +
		`"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`)
	// A Realtime read: audio deltas, base64 text.
	pcm := make([]byte, 24<<10)
	for i := range pcm {
		pcm[i] = byte(i * 7919 >> 3)
	}
	audio := `{"type":"response.output_audio.delta","delta":"` + base64.StdEncoding.EncodeToString(pcm) + `"}`
	var emb strings.Builder
	for emb.Len() < 32<<10 {
		fmt.Fprintf(&emb, "%.9f,", float64(emb.Len()%97)/-97)
	}
	f := fnd(cred)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"chat", answer}, {"embedding-32k", []byte(emb.String()[:32<<10])}, {"audio-32k", []byte(audio[:32<<10])}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				r := newRedactor(false, f)
				if out := r.filter(bc.body); len(out) != len(bc.body) {
					b.Fatal("changed")
				}
			}
		})
	}
}

func fnd(secret string) *secretFinder {
	f := newSecretFinder(secret)
	return &f
}

// TestSecretFinder: the finder finds what bytes.Index finds, from any
// place, whatever byte of the secret it anchors on (random texts over a
// small alphabet, so that near misses are many).
func TestSecretFinder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int, alphabet string) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for range 3000 {
		alphabet := []string{"ab", "a0_", "e1Z", "0123456789abcdef"}[rng.IntN(4)]
		secret := text(8+rng.IntN(80), alphabet)
		f := newSecretFinder(string(secret))
		b := text(rng.IntN(400), alphabet)
		for range rng.IntN(3) { // plant it
			if at := rng.IntN(len(b) + 1); at+len(secret) <= len(b) {
				copy(b[at:], secret)
			}
		}
		from := rng.IntN(len(b) + 1)
		want := bytes.Index(b[from:], secret)
		if want >= 0 {
			want += from
		}
		if got := f.index(b, from); got != want {
			t.Fatalf("secret %q (anchor %d) in %q from %d: %d, want %d", secret, f.anchor, b, from, got, want)
		}
	}
}
