package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestStreamRedactorHoldsOnlyAStart: nothing is held back but what may
// start the secret.
func TestStreamRedactorHoldsOnlyAStart(t *testing.T) {
	r := newStreamRedactor(true, "secret-value-123")
	if out := string(r.filter([]byte("data: x\n\n"))); out != "data: x\n\n" {
		t.Fatalf("an event was held back: %q", out)
	}
	if out := string(r.filter([]byte("data: se"))); out != "data: " || string(r.rest()) != "se" {
		t.Fatalf("the start of the secret: %q", out)
	}
	if out := string(newStreamRedactor(false, "secret-value-123").filter([]byte("secret-value-123"))); out != "secret-value-123" {
		t.Fatalf("not a stream: %q", out)
	}
}
