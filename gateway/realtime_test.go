package gateway

import (
	"bufio"
	"context"
	"encoding/binary"
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

	"github.com/coder/websocket"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// realtimeUpstream is an OpenAI-compatible Realtime API: a WebSocket at
// /v1/realtime that greets with session.created, answers response.create
// with a delta and a response.done carrying usage (7 in, 5 out), and
// records every upgrade request it was sent.
type realtimeUpstream struct {
	key string
	srv *httptest.Server
	// status, when set, answers upgrades with it instead of accepting.
	status int
	// flooded is closed when a flood (event "flood": 256 KiB messages
	// until a write fails) has ended, if set.
	flooded chan struct{}

	mu   sync.Mutex
	seen []*http.Request
}

func newRealtimeUpstream(t *testing.T, key string) *realtimeUpstream {
	u := &realtimeUpstream{key: key}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *realtimeUpstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

func (u *realtimeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	status := u.status
	u.mu.Unlock()
	if r.URL.Path != "/v1/realtime" {
		http.Error(w, `{"error":{"message":"no such route"}}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+u.key {
		http.Error(w, `{"error":{"message":"bad key","type":"auth"}}`, http.StatusUnauthorized)
		return
	}
	if status != 0 {
		http.Error(w, `{"error":{"message":"model is overloaded","code":"overloaded"}}`, status)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	model := r.URL.Query().Get("model")
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if send(map[string]any{"type": "session.created", "session": map[string]any{"model": model}}) != nil {
		return
	}
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var ev struct {
			Type string `json:"type"`
		}
		json.Unmarshal(b, &ev)
		switch {
		case typ == websocket.MessageBinary:
			conn.Write(ctx, websocket.MessageBinary, b) // echoed as is
		case ev.Type == "response.create":
			send(map[string]any{"type": "response.output_text.delta", "delta": "echo from " + model})
			send(map[string]any{"type": "response.done", "response": map[string]any{"status": "completed",
				"usage": map[string]any{"total_tokens": 12, "input_tokens": 7, "output_tokens": 5,
					"input_token_details": map[string]any{"cached_tokens": 0}}}})
		case ev.Type == "flood":
			big := make([]byte, 256<<10)
			for conn.Write(ctx, websocket.MessageBinary, big) == nil {
			}
			close(u.flooded)
			return
		case ev.Type == "echo-auth":
			send(map[string]any{"type": "error", "error": map[string]any{"message": "you sent " + r.Header.Get("Authorization")}})
		case ev.Type == "close":
			conn.Close(websocket.StatusNormalClosure, "bye")
			return
		default:
			send(map[string]any{"type": "error", "error": map[string]any{"message": "unknown event " + ev.Type}})
		}
	}
}

// dialRealtime opens a WebSocket to the fixture at path (path form, H).
func (f *fixture) dialRealtime(t *testing.T, path string, hdr http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.srv.URL, "http")+path,
		&websocket.DialOptions{Host: f.host, HTTPHeader: hdr, Subprotocols: protocols})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func readEvent(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("event %q: %v", b, err)
	}
	return ev
}

// TestRealtime: a Realtime API WebSocket through the gateway with every
// way a client can present its credential, the upstream reached with its
// own; the session's usage metered; and the refusals, all before the
// upgrade.
func TestRealtime(t *testing.T) {
	f := newFixture(t)
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	lang := f.accounts.add(Account{ID: acctID("lang"), Name: "lang", Kind: "TextAnalytics"})
	up := newRealtimeUpstream(t, "up-key")
	busy := newRealtimeUpstream(t, "busy-key")
	busy.status = http.StatusServiceUnavailable
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Model: "up-model", Credential: "up-key"})
	f.deps.put(acctID("rt"), &Deployment{Name: "wrongkey", Upstream: mustURL(t, up.srv.URL), Credential: "not-the-key"})
	f.deps.put(acctID("rt"), &Deployment{Name: "busy", Upstream: mustURL(t, busy.srv.URL), Credential: "busy-key"})
	f.deps.put(acctID("rt"), &Deployment{Name: "down", Upstream: mustURL(t, closedURL(t)), Credential: "x"})
	accept := func(extra string) func(*http.Request) string {
		return func(r *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				websocketAccept(r.Header.Get("Sec-Websocket-Key")) + "\r\n" + extra + "\r\n"
		}
	}
	for name, answer := range map[string]func(*http.Request) string{
		"wrong-accept": func(*http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n"
		},
		"answers-200":       func(*http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
		"endless-head":      accept(strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 100)),
		"unoffered-deflate": accept("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
		"unoffered-proto":   accept("Sec-WebSocket-Protocol: chat\r\n"),
	} {
		f.deps.put(acctID("rt"), &Deployment{Name: name, Upstream: mustURL(t, rawUpstream(t, answer)), Credential: "x"})
	}
	f.authz.grant("voice-oid", dataActionPrefix+"OpenAI/deployments/realtime/action", acctID("rt"))
	f.authz.grant("chat-oid", dataActionPrefix+"OpenAI/deployments/chat/completions/action", acctID("rt"))
	identity := f.tokens.identity("voice-oid", CognitiveAudience)
	sts, _ := f.tokens.IssueSTSToken(t.Context(), STSGrant{Account: Account{ID: acctID("rt")}, Slot: 1, Generation: 1, Lifetime: 10 * time.Minute})
	const dated = "/ai/rt/openai/realtime?api-version=2025-04-01-preview&deployment=voice"
	const v1 = "/ai/rt/openai/v1/realtime?model=voice"

	for _, tt := range []struct {
		name, path string
		hdr        http.Header
		protocols  []string
		secret     string
	}{
		{"api-key-header", dated + "&intent=chat", http.Header{"Api-Key": {keys[0]}}, nil, keys[0]},
		{"ocp-apim-header", dated, http.Header{"Ocp-Apim-Subscription-Key": {keys[1]}}, nil, keys[1]},
		{"identity-bearer", dated, http.Header{"Authorization": {"Bearer " + identity}}, nil, identity},
		{"sts-bearer", dated, http.Header{"Authorization": {"Bearer " + sts}}, nil, sts},
		{"query-api-key", dated + "&api-key=" + keys[0], nil, []string{"realtime"}, keys[0]},
		{"query-authorization", dated + "&Authorization=Bearer%20" + identity, nil, []string{"realtime"}, identity},
		{"v1-key-bearer", v1, http.Header{"Authorization": {"Bearer " + keys[1]}}, nil, keys[1]},
		{"deployment-in-path", "/ai/rt/openai/deployments/voice/realtime?api-version=2025-04-01-preview&deployment=voice",
			http.Header{"Api-Key": {keys[0]}}, nil, keys[0]},
		{"v1-insecure-key-protocol", v1, nil, []string{"realtime", insecureKeyProtocol + keys[0]}, keys[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := f.dialRealtime(t, tt.path, tt.hdr, tt.protocols...)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if ev := readEvent(t, c); ev["type"] != "session.created" || ev["session"].(map[string]any)["model"] != "up-model" {
				t.Errorf("first event %v", ev)
			}
			if len(tt.protocols) > 0 && c.Subprotocol() != "realtime" {
				t.Errorf("subprotocol %q", c.Subprotocol())
			}
			if resp.Header.Get("X-Ms-Request-Id") == "" {
				t.Errorf("101 without the gateway's request id: %v", resp.Header)
			}
			got := up.last()
			if got.Header.Get("Authorization") != "Bearer up-key" || got.URL.Query().Get("model") != "up-model" {
				t.Errorf("upstream request %s %v", got.URL, got.Header)
			}
			q := got.URL.Query()
			for _, k := range append(realtimeDroppedQuery[:2:2], credentialParams[:]...) {
				if q.Has(k) {
					t.Errorf("upstream query has %s: %s", k, got.URL.RawQuery)
				}
			}
			if strings.Contains(tt.path, "intent=chat") && q.Get("intent") != "chat" {
				t.Errorf("the client's other parameters stayed behind: %s", got.URL.RawQuery)
			}
			if got.Header.Get("Sec-Websocket-Extensions") != "" {
				t.Error("the upstream was offered an extension")
			}
			raw := fmt.Sprint(got.URL, got.Header)
			if strings.Contains(raw, tt.secret) {
				t.Errorf("the client's credential reached the upstream: %s", raw)
			}

			// Events both ways, binary included, then a clean close.
			ctx := t.Context()
			if err := c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2, 0xff}); err != nil {
				t.Fatal(err)
			}
			if typ, b, err := c.Read(ctx); err != nil || typ != websocket.MessageBinary || string(b) != "\x00\x01\x02\xff" {
				t.Errorf("binary echo %v %q %v", typ, b, err)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create"}`)); err != nil {
				t.Fatal(err)
			}
			if ev := readEvent(t, c); ev["delta"] != "echo from up-model" {
				t.Errorf("delta %v", ev)
			}
			if ev := readEvent(t, c); ev["type"] != "response.done" {
				t.Errorf("done %v", ev)
			}
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"close"}`))
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("close: %v", err)
			}
		})
	}
	// Nine sessions, one response.done each.
	waitFor(t, func() bool {
		return testutil.ToFloat64(f.gw.meter.tokens.vec.WithLabelValues("rt", "voice", "prompt")) == 9*7
	})
	if got := testutil.ToFloat64(f.gw.meter.tokens.vec.WithLabelValues("rt", "voice", "completion")); got != 9*5 {
		t.Errorf("completion tokens %v, want 45", got)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(f.gw.meter.sockets.WithLabelValues("rt")) == 0 })
	// And in the usage flushed for the key usage evidence: key1 had four
	// sessions, key2 three (one through an STS token), the identity two.
	if err := f.gw.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		slot      int
		principal string
		sessions  int64
	}{{0, "", 4}, {1, "", 3}, {-1, "voice-oid", 2}} {
		if p, c := f.usage.tokens(acctID("rt"), tt.slot, tt.principal); p != 7*tt.sessions || c != 5*tt.sessions {
			t.Errorf("usage tokens of slot %d %s: %d, %d", tt.slot, tt.principal, p, c)
		}
	}

	refusals := []struct {
		name, path string
		hdr        http.Header
		status     int
		code       string
	}{
		{"no-credential", dated, nil, 401, "401"},
		{"wrong-key", dated, http.Header{"Api-Key": {strings.Repeat("0", 64)}}, 401, "401"},
		{"identity-without-realtime", dated, http.Header{"Authorization": {"Bearer " + f.tokens.identity("chat-oid", CognitiveAudience)}}, 401, "PermissionDenied"},
		{"language-account", "/ai/lang/openai/realtime?api-version=2025-04-01-preview&deployment=voice", http.Header{"Api-Key": {lang[0]}}, 404, "404"},
		{"no-api-version", "/ai/rt/openai/realtime?deployment=voice", http.Header{"Api-Key": {keys[0]}}, 404, "404"},
		{"no-deployment", "/ai/rt/openai/realtime?api-version=2025-04-01-preview", http.Header{"Api-Key": {keys[0]}}, 400, "BadRequest"},
		{"v1-no-model", "/ai/rt/openai/v1/realtime", http.Header{"Api-Key": {keys[0]}}, 400, "BadRequest"},
		{"unknown-deployment", "/ai/rt/openai/realtime?api-version=2025-04-01-preview&deployment=nope", http.Header{"Api-Key": {keys[0]}}, 404, "DeploymentNotFound"},
		{"unknown-deployment-in-path", "/ai/rt/openai/deployments/nope/realtime?api-version=2025-04-01-preview", http.Header{"Api-Key": {keys[0]}}, 404, "DeploymentNotFound"},
		{"upstream-refuses-its-key", "/ai/rt/openai/v1/realtime?model=wrongkey", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-busy", "/ai/rt/openai/v1/realtime?model=busy", http.Header{"Api-Key": {keys[0]}}, 503, "overloaded"},
		{"upstream-down", "/ai/rt/openai/v1/realtime?model=down", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-wrong-accept", "/ai/rt/openai/v1/realtime?model=wrong-accept", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-answers-200", "/ai/rt/openai/v1/realtime?model=answers-200", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-endless-head", "/ai/rt/openai/v1/realtime?model=endless-head", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-unoffered-deflate", "/ai/rt/openai/v1/realtime?model=unoffered-deflate", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
		{"upstream-unoffered-protocol", "/ai/rt/openai/v1/realtime?model=unoffered-proto", http.Header{"Api-Key": {keys[0]}}, 502, "BadGateway"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := f.dialRealtime(t, tt.path, tt.hdr)
			if err == nil || resp == nil {
				t.Fatalf("dial succeeded (%v)", err)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body.Error.Code != tt.code {
				t.Errorf("status %d code %q (%s), want %d %s", resp.StatusCode, body.Error.Code, body.Error.Message, tt.status, tt.code)
			}
			if tt.code == "PermissionDenied" && !strings.Contains(body.Error.Message, "OpenAI/deployments/realtime/action") {
				t.Errorf("PermissionDenied does not name the data action: %s", body.Error.Message)
			}
		})
	}

	// Not an upgrade, or not one this server speaks.
	for _, tt := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"plain-get", map[string]string{"api-key": keys[0]}, 426},
		{"version-8", map[string]string{"api-key": keys[0], "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 426},
		{"short-key", map[string]string{"api-key": keys[0], "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "c2hvcnQ="}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, req{method: http.MethodGet, url: dated, header: tt.hdr})
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), `"error"`) {
				t.Errorf("status %d: %s", resp.StatusCode, b)
			}
		})
	}
}

// TestRealtimeSilentUpstream: an upstream that takes the upgrade request
// and never answers is a 504 once the upstream timeout has passed; one
// that answers an error and never ends its body is that error.
func TestRealtimeSilentUpstream(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.UpstreamTimeout = 200 * time.Millisecond })
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	quiet := make(chan struct{})
	t.Cleanup(func() { close(quiet) })
	silent := rawUpstream(t, func(*http.Request) string { <-quiet; return "" })
	f.deps.put(acctID("rt"), &Deployment{Name: "silent", Upstream: mustURL(t, silent), Credential: "x"})
	// An error whose body has no length, the connection left open: its
	// message is read for as long as the handshake had left.
	endless := rawUpstream(t, func(*http.Request) string {
		return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"message\":\"busy\"}}"
	})
	f.deps.put(acctID("rt"), &Deployment{Name: "endless", Upstream: mustURL(t, endless), Credential: "x"})
	for _, tt := range []struct {
		model, code string
		status      int
	}{{"silent", "GatewayTimeout", 504}, {"endless", "503", 503}} {
		_, resp, err := f.dialRealtime(t, "/ai/rt/openai/v1/realtime?model="+tt.model, http.Header{"Api-Key": {keys[0]}})
		if err == nil || resp == nil || resp.StatusCode != tt.status {
			t.Fatalf("%s upstream: %v %v", tt.model, err, resp)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&body)
		if body.Error.Code != tt.code {
			t.Errorf("%s: code %q (%s)", tt.model, body.Error.Code, body.Error.Message)
		}
	}
}

// TestRealtimeRevocation: an open session ends when the credential it was
// opened with stops holding — its key regenerated (the STS tokens minted
// from it too), its identity's role removed, local auth disabled — while
// the sessions of other credentials go on.
func TestRealtimeRevocation(t *testing.T) {
	f := newFixture(t)
	f.gw.proxy.sessions.check = 20 * time.Millisecond
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	up := newRealtimeUpstream(t, "up-key")
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Credential: "up-key"})
	action := dataActionPrefix + "OpenAI/deployments/realtime/action"
	f.authz.grant("voice-oid", action, acctID("rt"))
	f.authz.grant("other-oid", action, acctID("rt"))
	sts, _ := f.tokens.IssueSTSToken(t.Context(), STSGrant{Account: Account{ID: acctID("rt")}, Slot: 0, Generation: 1, Lifetime: 10 * time.Minute})
	open := func(hdr http.Header) *websocket.Conn {
		t.Helper()
		c, _, err := f.dialRealtime(t, "/ai/rt/openai/v1/realtime?model=voice", hdr)
		if err != nil {
			t.Fatal(err)
		}
		readEvent(t, c) // session.created
		return c
	}
	sessions := map[string]*websocket.Conn{
		"key1":     open(http.Header{"Api-Key": {keys[0]}}),
		"key2":     open(http.Header{"Api-Key": {keys[1]}}),
		"sts-key1": open(http.Header{"Authorization": {"Bearer " + sts}}),
		"voice":    open(http.Header{"Authorization": {"Bearer " + f.tokens.identity("voice-oid", CognitiveAudience)}}),
		"other":    open(http.Header{"Authorization": {"Bearer " + f.tokens.identity("other-oid", CognitiveAudience)}}),
	}
	alive := func(name string) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c := sessions[name]
		if c.Write(ctx, websocket.MessageBinary, []byte(name)) != nil {
			return false
		}
		_, b, err := c.Read(ctx)
		return err == nil && string(b) == name
	}
	ended := func(name string) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, _, err := sessions[name].Read(ctx)
		return err != nil && ctx.Err() == nil
	}
	for _, step := range []struct {
		name    string
		do      func()
		end     []string
		goingOn []string
	}{
		{"regenerate-key1", func() { f.accounts.regenerate("rt", 0) }, []string{"key1", "sts-key1"}, []string{"key2", "voice", "other"}},
		{"revoke-role", func() { f.authz.revoke("voice-oid", action, acctID("rt")) }, []string{"voice"}, []string{"key2", "other"}},
		{"disable-local-auth", func() { f.accounts.update("rt", func(a *Account) { a.DisableLocalAuth = true }) }, []string{"key2"}, []string{"other"}},
		{"public-access-disabled", func() {
			f.accounts.update("rt", func(a *Account) { a.Network = netacl.Compile("Disabled", nil) })
		}, []string{"other"}, nil},
	} {
		step.do()
		for _, name := range step.end {
			if !ended(name) {
				t.Errorf("%s: session %s goes on", step.name, name)
			}
		}
		for _, name := range step.goingOn {
			if !alive(name) {
				t.Errorf("%s: session %s ended", step.name, name)
			}
		}
	}
	waitFor(t, func() bool { return testutil.ToFloat64(f.gw.meter.sockets.WithLabelValues("rt")) == 0 })
}

// TestRealtimeStalledClient: a client that stops reading while the
// upstream sends ends its session once a write to it has waited the write
// timeout, and the upstream's connection with it.
func TestRealtimeStalledClient(t *testing.T) {
	f := newFixture(t)
	f.gw.proxy.writeTimeout = 200 * time.Millisecond
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	up := newRealtimeUpstream(t, "up-key")
	up.flooded = make(chan struct{})
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Credential: "up-key"})
	c, _, err := f.dialRealtime(t, "/ai/rt/openai/v1/realtime?model=voice", http.Header{"Api-Key": {keys[0]}})
	if err != nil {
		t.Fatal(err)
	}
	readEvent(t, c)
	if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"flood"}`)); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more.
	select {
	case <-up.flooded:
	case <-time.After(20 * time.Second):
		t.Fatal("the session outlived a client that stopped reading")
	}
	waitFor(t, func() bool { return testutil.ToFloat64(f.gw.meter.sockets.WithLabelValues("rt")) == 0 })
}

// TestRealtimeShutdown: sessions end when the gateway stops.
func TestRealtimeShutdown(t *testing.T) {
	f := newFixture(t)
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	up := newRealtimeUpstream(t, "up-key")
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Credential: "up-key"})
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { f.gw.Run(ctx); close(stopped) }()
	c, _, err := f.dialRealtime(t, "/ai/rt/openai/v1/realtime?model=voice", http.Header{"Api-Key": {keys[0]}})
	if err != nil {
		t.Fatal(err)
	}
	readEvent(t, c)
	cancel()
	<-stopped
	rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer rcancel()
	if _, _, err := c.Read(rctx); err == nil || rctx.Err() != nil {
		t.Errorf("the session outlived the gateway: %v", err)
	}
}

// rawUpstream answers every request on a connection of its own with
// answer(request), as written, and closes it.
func rawUpstream(t *testing.T, answer func(*http.Request) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				r.Body.Close()
				io.WriteString(c, answer(r))
				io.Copy(io.Discard, c) // until the gateway closes its end
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5s")
}

// frame is one server frame (unmasked) of opcode op.
func frame(fin bool, op byte, payload []byte) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// TestWSScanner: the frame scanner finds the end of every text message —
// whole, fragmented around control frames, with 16- and 64-bit lengths,
// empty final fragments — however the bytes are split, and ignores
// binary messages and control frames.
func TestWSScanner(t *testing.T) {
	done := func(in, out int) []byte {
		return fmt.Appendf(nil, `{"type":"response.done","response":{"usage":{"input_tokens":%d,"output_tokens":%d}}}`, in, out)
	}
	big := append([]byte(`{"type":"response.done","pad":"`+strings.Repeat("x", 70000)+`",`), done(100, 200)[1:]...)
	var stream []byte
	stream = append(stream, frame(true, 1, done(1, 2))...)
	stream = append(stream, frame(true, 2, done(1000, 1000))...) // binary: not an event
	stream = append(stream, frame(false, 1, done(3, 4)[:20])...)
	stream = append(stream, frame(true, 9, []byte("ping"))...) // between fragments
	stream = append(stream, frame(false, 0, done(3, 4)[20:40])...)
	stream = append(stream, frame(true, 10, nil)...)
	stream = append(stream, frame(false, 0, done(3, 4)[40:])...)
	stream = append(stream, frame(true, 0, nil)...) // an empty last fragment
	stream = append(stream, frame(true, 1, []byte(`{"type":"response.output_text.delta","delta":"hi"}`))...)
	stream = append(stream, frame(true, 1, done(5, 6)[:50])...) // cut off
	stream = append(stream, frame(true, 1, done(5, 6))...)
	stream = append(stream, frame(true, 1, big)...)
	stream = append(stream, frame(true, 1, big[:300])...)
	want := [][2]int64{{1, 2}, {3, 4}, {-1, -1}, {-1, -1}, {5, 6}, {100, 200}, {-1, -1}}
	for _, step := range []int{1, 2, 3, 7, 64, 1000, len(stream)} {
		var got [][2]int64
		s := &wsScanner{}
		for p := stream; len(p) > 0; {
			n := min(step, len(p))
			s.feed(p[:n], func(u *usageScanner) {
				if !u.done {
					t.Error("message not done")
				}
				in, out, ok := u.usage()
				if !ok {
					in, out = -1, -1
				}
				got = append(got, [2]int64{in, out})
			})
			p = p[n:]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("step %d: %v, want %v", step, got, want)
		}
	}
	// A masked frame (clients' frames) stops the scanning.
	s := &wsScanner{}
	calls := 0
	s.feed(append([]byte{0x81, 0x80 | 5, 1, 2, 3, 4}, "abcde"...), func(*usageScanner) { calls++ })
	s.feed(frame(true, 1, done(1, 1)), func(*usageScanner) { calls++ })
	if calls != 0 || !s.broken {
		t.Errorf("masked frame: %d calls, broken %v", calls, s.broken)
	}
}

func FuzzWSScanner(f *testing.F) {
	f.Add(frame(true, 1, []byte(`{"usage":{"input_tokens":1}}`)), 3)
	f.Add(append(frame(false, 1, []byte("ab")), frame(true, 0, []byte("cd"))...), 1)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		if step <= 0 {
			step = 1
		}
		s := &wsScanner{}
		for p := b; len(p) > 0; {
			n := min(step, len(p))
			s.feed(p[:n], func(u *usageScanner) {
				if in, out, ok := u.usage(); !ok && (in != 0 || out != 0) || in < 0 || out < 0 {
					t.Fatalf("%d %d %v", in, out, ok)
				}
			})
			p = p[n:]
		}
	})
}

// TestRealtimeQuota: with deployment quotas a session is admitted as one
// request (its 101 carries the remaining quota), a second one in the same
// window is Azure's 429, and the tokens response.done reports are charged
// to the deployment.
func TestRealtimeQuota(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.DeploymentQuotas = true })
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	up := newRealtimeUpstream(t, "up-key")
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Credential: "up-key", Capacity: 1})
	const path = "/ai/rt/openai/realtime?api-version=2025-04-01-preview&deployment=voice"
	hdr := http.Header{"Api-Key": {keys[0]}}
	c, resp, err := f.dialRealtime(t, path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || resp.Header.Get("X-Ratelimit-Remaining-Tokens") != "1000" {
		t.Errorf("101 headers %v", resp.Header)
	}
	readEvent(t, c)
	c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"response.create"}`))
	readEvent(t, c)
	readEvent(t, c) // response.done: 12 tokens
	waitFor(t, func() bool {
		v, ok := f.gw.proxy.limits.Load(quotaKey{"", "voice"})
		return ok && v.(*deploymentQuota).tokens.TokensAt(f.clock.Now()) == 1000-12
	})

	_, resp, err = f.dialRealtime(t, path, hdr)
	if err == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second session in the window: %v %v", err, resp)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if !strings.Contains(body.Error.Message, "Realtime_Connect") || !strings.Contains(body.Error.Message, "call rate limit") {
		t.Errorf("429 %+v", body)
	}
	f.clock.Advance(10 * time.Second)
	if _, _, err = f.dialRealtime(t, path, hdr); err != nil {
		t.Fatalf("a session in the next window: %v", err)
	}
}

// BenchmarkWSScanner: what metering costs a Realtime session per byte the
// upstream sends — audio deltas (base64 in JSON, the bulk of a voice
// session) and a response.done — scanned in the proxy's 32 KiB reads.
func BenchmarkWSScanner(b *testing.B) {
	delta := frame(true, 1, []byte(`{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","delta":"`+
		strings.Repeat("QUJD", 1200)+`"}`))
	var stream []byte
	for range 50 {
		stream = append(stream, delta...)
	}
	stream = append(stream, frame(true, 1, []byte(`{"type":"response.done","response":{"usage":{"input_tokens":7,"output_tokens":5}}}`))...)
	b.SetBytes(int64(len(stream)))
	s := &wsScanner{}
	n := 0
	for b.Loop() {
		for p := stream; len(p) > 0; {
			k := min(32<<10, len(p))
			s.feed(p[:k], func(u *usageScanner) {
				if _, _, ok := u.usage(); ok {
					n++
				}
			})
			p = p[k:]
		}
	}
	if n == 0 {
		b.Fatal("no usage found")
	}
}

// BenchmarkRealtimeEcho: one 4 KiB message to the upstream and its echo
// back, on a WebSocket straight to the upstream and on one through the
// gateway (the same machine, plain TCP): what the gateway adds to a
// Realtime session's round trip.
func BenchmarkRealtimeEcho(b *testing.B) {
	f := newFixture(b)
	keys := f.accounts.add(Account{ID: acctID("rt"), Name: "rt", Kind: "OpenAI"})
	up := &realtimeUpstream{key: "up-key"}
	up.srv = httptest.NewServer(http.HandlerFunc(up.serve))
	b.Cleanup(up.srv.Close)
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(b, up.srv.URL), Credential: "up-key"})
	msg := make([]byte, 4<<10)
	for name, dial := range map[string]func() (*websocket.Conn, error){
		"direct": func() (*websocket.Conn, error) {
			c, _, err := websocket.Dial(b.Context(), "ws"+strings.TrimPrefix(up.srv.URL, "http")+"/v1/realtime?model=m",
				&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer up-key"}}})
			return c, err
		},
		"gateway": func() (*websocket.Conn, error) {
			c, _, err := websocket.Dial(b.Context(), "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ai/rt/openai/v1/realtime?model=voice",
				&websocket.DialOptions{Host: f.host, HTTPHeader: http.Header{"Api-Key": {keys[0]}}})
			return c, err
		},
	} {
		b.Run(name, func(b *testing.B) {
			c, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			ctx := b.Context()
			if _, _, err := c.Read(ctx); err != nil { // session.created
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * len(msg)))
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRealtimeRedactsCredential: an upstream that echoes its own key in
// an event has it masked (each byte '*'), the event still whole JSON.
func TestRealtimeRedactsCredential(t *testing.T) {
	const cred = "up-realtime-credential-0123456789"
	up := newRealtimeUpstream(t, cred)
	f := newFixture(t)
	keys := f.accounts.add(Account{ID: acctID("rt"), InternalID: "rt-1", Name: "rt", Kind: "OpenAI"})
	f.deps.put(acctID("rt"), &Deployment{Name: "voice", Upstream: mustURL(t, up.srv.URL), Credential: cred})
	c, resp, err := f.dialRealtime(t, "/ai/rt/openai/realtime?api-version=2025-04-01-preview&deployment=voice",
		http.Header{"Api-Key": {keys[0]}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	readEvent(t, c) // session.created
	if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"echo-auth"}`)); err != nil {
		t.Fatal(err)
	}
	ev := readEvent(t, c)
	msg, _ := ev["error"].(map[string]any)["message"].(string)
	if want := "you sent Bearer " + strings.Repeat("*", len(cred)); msg != want {
		t.Fatalf("event %v, want the message %q", ev, want)
	}
}
