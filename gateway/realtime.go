package gateway

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// The Realtime API: a WebSocket to a deployment.
//
// Azure OpenAI serves it at GET …/openai/realtime?api-version=…&deployment=…
// (what openai-node's OpenAIRealtimeWS.azure and openai-python's
// AzureOpenAI build; …/openai/deployments/{d}/realtime?… when the Python
// client is bound to a deployment) and, on the v1 API, at GET …/openai/v1/realtime?model=…
// (OpenAI's own clients, openai-go's Realtime.Connect, with base URL
// …/openai/v1/). The gateway authenticates and authorizes the upgrade
// request like any other (identities need OpenAI/deployments/realtime/action),
// opens a WebSocket to the deployment's {upstream}/v1/realtime?model=… with
// the upstream's own credential, and once the upstream has accepted,
// answers the client's upgrade and joins the two connections: the events
// go through unchanged in both directions.
//
// Browsers cannot set headers on a WebSocket, so the credential may also
// come in the query — api-key=<key> or Authorization=Bearer <token>, as
// Azure documents and openai-node's browser client sends — or, on the v1
// API, as the subprotocol openai-insecure-api-key.<key> (OpenAI's browser
// convention). None of them goes to the upstream; the path's access log
// records no query.
//
// The upstream is offered no extension (permessage-deflate is optional,
// RFC 6455 §9): its frames arrive uncompressed, so the gateway can read
// the usage of every response.done (and of input transcriptions) as the
// frames go by and meter the session's tokens as it does for HTTP answers
// (tokens.go) — and, with deployment quotas, charge them to the
// deployment. The session itself is admitted as one request.

// realtimeOp is the upstream operation: {upstream}/v1/realtime.
const realtimeOp = "realtime"

// realtimeHandshakeTimeout bounds dialing the upstream and its answer to
// the upgrade (or Options.UpstreamTimeout, if that is shorter).
const realtimeHandshakeTimeout = 30 * time.Second

// realtimeRoutes are the Realtime API at the dated path and the v1 API's.
func realtimeRoutes() []*route {
	action := dataActionPrefix + "OpenAI/deployments/realtime/action"
	return []*route{
		{name: "realtime", method: http.MethodGet, path: "/openai/realtime", dataAction: action,
			operation: "GET /openai/realtime", kinds: openAIKinds, socketAuth: true,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				return g.proxy.serveRealtime(w, r, c, false, g.credentialHolds(r, c, action))
			}},
		// openai-python's AzureOpenAI(azure_deployment=…) puts the
		// deployment in the base URL as well as in the query.
		{name: "realtime-deployment", method: http.MethodGet, path: "/openai/deployments/{deployment}/realtime", param: "deployment",
			dataAction: action, operation: "GET /openai/deployments/{deployment-id}/realtime", kinds: openAIKinds, socketAuth: true,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				return g.proxy.serveRealtime(w, r, c, false, g.credentialHolds(r, c, action))
			}},
		{name: "realtime-v1", method: http.MethodGet, path: "/openai/v1/realtime", dataAction: action,
			operation: "GET /openai/v1/realtime", kinds: openAIKinds, socketAuth: true, bearerKey: true,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				return g.proxy.serveRealtime(w, r, c, true, g.credentialHolds(r, c, action))
			}},
	}
}

// insecureKeyProtocol is the subprotocol prefix OpenAI's browser clients
// carry their key in.
const insecureKeyProtocol = "openai-insecure-api-key."

// socketCredential moves a credential that a browser's WebSocket could
// only put in the query (api-key, Authorization) or in a subprotocol into
// the header authenticate reads, when the request has no credential
// header. r's query and subprotocols are left as they are: the upstream
// request is built without them.
func socketCredential(r *http.Request) {
	h := r.Header
	if _, ok := presentedKey(h); ok || len(h["Authorization"]) > 0 {
		return
	}
	if r.URL.RawQuery != "" {
		q := r.URL.Query()
		if k := q.Get("api-key"); k != "" {
			h["Api-Key"] = []string{k}
			return
		}
		if a := q.Get("Authorization"); a != "" {
			h["Authorization"] = []string{a}
			return
		}
	}
	for _, p := range headerTokens(h, "Sec-Websocket-Protocol") {
		if k, ok := strings.CutPrefix(p, insecureKeyProtocol); ok && k != "" {
			h["Api-Key"] = []string{k}
			return
		}
	}
}

// headerTokens splits the comma-separated values of h[name].
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h[name] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// headerHas reports whether a value of h[name] lists token (any case).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		if hasToken(v, token) { // upstream_wire.go's
			return true
		}
	}
	return false
}

// websocketAccept is Sec-WebSocket-Accept for key (RFC 6455 §4.2.2).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checkUpgrade requires a well-formed WebSocket opening handshake (RFC
// 6455 §4.2.1) on HTTP/1.1 and returns its key.
func checkUpgrade(r *http.Request) (string, error) {
	if r.ProtoMajor != 1 || !headerHas(r.Header, "Upgrade", "websocket") || !headerHas(r.Header, "Connection", "upgrade") {
		return "", gatehouse.Errorf(http.StatusUpgradeRequired, "UpgradeRequired",
			"The Realtime API is a WebSocket: connect with an HTTP/1.1 GET carrying Upgrade: websocket.").
			WithHeader("Upgrade", "websocket").WithHeader("Connection", "Upgrade")
	}
	if r.Header.Get("Sec-Websocket-Version") != "13" {
		return "", gatehouse.Errorf(http.StatusUpgradeRequired, "UpgradeRequired",
			"Only WebSocket version 13 is supported.").WithHeader("Sec-WebSocket-Version", "13")
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", badRequest("The Sec-WebSocket-Key header is not a base64-encoded 16-byte value.")
	}
	return key, nil
}

// realtimeDroppedQuery are the query parameters that stay with the
// gateway: its api-version, the deployment, and browser credentials.
// Credentials (dropCredentialParams) stay here too.
var realtimeDroppedQuery = []string{"api-version", "deployment", "model"}

// serveRealtime serves a Realtime API WebSocket: v1 names the deployment
// in "model" (else "deployment"), the dated API in "deployment" and needs
// an api-version. holds is asked, while the session lasts, whether the
// credential it was opened with still holds (credentialHolds).
func (p *proxy) serveRealtime(w http.ResponseWriter, r *http.Request, c *call, v1 bool, holds func(context.Context, string) (bool, string)) error {
	if !v1 {
		if err := checkOpenAIVersion(r.URL.RawQuery); err != nil {
			return err
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("The query string does not parse.")
	}
	name := query.Get("deployment")
	switch {
	case c.param != "": // …/deployments/{deployment}/realtime
		name = c.param
	case v1 && query.Get("model") != "":
		name = query.Get("model")
	}
	if name == "" {
		if v1 {
			return badRequest("The \"model\" query parameter is required: it names the deployment.")
		}
		return badRequest("The \"deployment\" query parameter is required.")
	}
	key, err := checkUpgrade(r)
	if err != nil {
		return err
	}
	d, err := p.deployment(c, name)
	if err != nil {
		return err
	}
	var q *deploymentQuota
	if p.quotas {
		if q, err = p.admit(c, d, realtimeOp, r, 0); err != nil {
			return err
		}
	}

	// The upstream's URL: {upstream}/v1/realtime, the client's query but
	// for what stays here, and the upstream's model.
	u := *d.urls[realtimeOp]
	for _, k := range realtimeDroppedQuery {
		query.Del(k)
	}
	dropCredentialParams(query)
	model := d.Model
	if model == "" {
		model = name
	}
	query.Set("model", model)
	u.RawQuery = query.Encode()
	var protocols []string
	for _, pr := range headerTokens(r.Header, "Sec-Websocket-Protocol") {
		if !strings.HasPrefix(pr, insecureKeyProtocol) {
			protocols = append(protocols, pr)
		}
	}

	limit := realtimeHandshakeTimeout
	if t := p.tunnels.ReadTimeout; t > 0 && t < limit {
		limit = t
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	start := time.Now()
	up, br, resp, err := p.dialRealtime(ctx, r, d, &u, key, protocols)
	if err != nil {
		return p.upstreamFailed(r.Context(), d, err)
	}
	c.usage.observeUpstream(time.Since(start))
	if resp.StatusCode >= 400 {
		// Its body is read for the message, for as long as the handshake
		// had left (a body without a length ends only when the upstream
		// closes).
		defer up.Close()
		deadline, _ := ctx.Deadline()
		up.SetReadDeadline(deadline)
		return upstreamError(resp, d)
	}
	if err := checkAccepted(resp, key, protocols); err != nil {
		up.Close()
		p.logger.Warn("gateway: upstream broke the WebSocket handshake", "deployment", d.Name, "upstream", d.Upstream.Host, "err", err)
		return gatehouse.Errorf(http.StatusBadGateway, "BadGateway",
			"The upstream of deployment '%s' did not complete the WebSocket handshake.", d.Name).WithCause(err)
	}

	// Answer the client's upgrade with the upstream's acceptance and the
	// gateway's own fields (the request id, quota headers).
	if q != nil {
		q.headers(w, p.now())
	}
	h := w.Header()
	h.Del("Content-Type")
	h.Del("Content-Length")
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", resp.Header.Get("Sec-Websocket-Accept"))
	if pr := resp.Header.Get("Sec-Websocket-Protocol"); pr != "" {
		h.Set("Sec-WebSocket-Protocol", pr)
	}
	client, crw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return gatehouse.Errorf(http.StatusInternalServerError, "InternalServerError",
			"The connection cannot be upgraded.").WithCause(err)
	}
	client.SetDeadline(time.Time{}) // the server's request deadlines end here
	if rec, ok := w.(*statusRecorder); ok {
		rec.status = http.StatusSwitchingProtocols // for the metrics
	}
	crw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(crw)
	crw.WriteString("\r\n")
	if err := crw.Flush(); err != nil {
		client.Close()
		up.Close()
		return nil
	}

	p.join(c, d, q, client, crw.Reader, up, br, holds)
	return nil
}

// dialRealtime opens the upstream WebSocket: dials u, sends the opening
// handshake with the client's key (so the upstream's acceptance is the
// one the client expects), the client's subprotocols and the allow-listed
// headers, and the upstream's credential, and reads the answer's head.
// br holds what the upstream sent after it.
func (p *proxy) dialRealtime(ctx context.Context, r *http.Request, d *Deployment, u *url.URL, key string, protocols []string) (net.Conn, *bufio.Reader, *http.Response, error) {
	up, err := p.tunnels.DialTunnel(ctx, u)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { up.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Upgrade":               {"websocket"},
			"Connection":            {"Upgrade"},
			"Sec-Websocket-Key":     {key},
			"Sec-Websocket-Version": {"13"},
			"X-Request-Id":          {server.RequestID(r.Context())},
		}}
	for _, name := range []string{"User-Agent", "Openai-Beta"} {
		if v := r.Header[name]; len(v) > 0 {
			req.Header[name] = v[:1]
		}
	}
	if len(protocols) > 0 {
		req.Header["Sec-Websocket-Protocol"] = []string{strings.Join(protocols, ", ")}
	}
	if d.authName != "" {
		req.Header[d.authName] = []string{d.authValue}
	}
	if err := req.Write(up); err != nil {
		up.Close()
		return nil, nil, nil, ctxErr(ctx, err)
	}
	// The answer's head may be at most maxUpgradeHead bytes; the frames
	// after it are not limited.
	lim := &headLimit{Reader: up, left: maxUpgradeHead}
	br := bufio.NewReaderSize(lim, 4<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		up.Close()
		return nil, nil, nil, ctxErr(ctx, err)
	}
	lim.left = -1
	if !stop() {
		up.Close()
		return nil, nil, nil, ctx.Err()
	}
	up.SetDeadline(time.Time{})
	return up, br, resp, nil
}

// maxUpgradeHead bounds the head of the upstream's answer to an upgrade.
const maxUpgradeHead = 64 << 10

// headLimit reads at most left bytes from Reader (then fails), or any
// number once left is negative.
type headLimit struct {
	io.Reader
	left int
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.Reader.Read(p)
	}
	if l.left == 0 {
		return 0, errors.New("gateway: the upstream's answer to the upgrade is too large")
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.Reader.Read(p)
	l.left -= n
	return n, err
}

// ctxErr prefers ctx's error (a timeout) to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errHandshakeTimeout
	}
	return err
}

// errHandshakeTimeout is a net.Error timeout, rendered as 504.
var errHandshakeTimeout error = handshakeTimeout{}

type handshakeTimeout struct{}

func (handshakeTimeout) Error() string {
	return "gateway: the upstream's WebSocket handshake timed out"
}
func (handshakeTimeout) Timeout() bool   { return true }
func (handshakeTimeout) Temporary() bool { return true }

// checkAccepted verifies the upstream's 101: an upgrade to websocket,
// accepting the client's key, choosing none of the extensions it was not
// offered and at most a subprotocol the client offered.
func checkAccepted(resp *http.Response, key string, protocols []string) error {
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("status %d instead of 101", resp.StatusCode)
	case !headerHas(resp.Header, "Upgrade", "websocket") || !headerHas(resp.Header, "Connection", "upgrade"):
		return errors.New("101 without Upgrade: websocket")
	case resp.Header.Get("Sec-Websocket-Accept") != websocketAccept(key):
		return errors.New("wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-Websocket-Extensions") != "":
		return errors.New("an extension that was not offered")
	}
	if pr := resp.Header.Get("Sec-Websocket-Protocol"); pr != "" {
		for _, o := range protocols {
			if o == pr {
				return nil
			}
		}
		return errors.New("a subprotocol that was not offered")
	}
	return nil
}

// join copies the two connections into each other until either side
// ends, then closes both. The upstream's frames are read as they pass for
// the usage they report.
func (p *proxy) join(c *call, d *Deployment, q *deploymentQuota, client net.Conn, cr *bufio.Reader, up net.Conn, ur *bufio.Reader,
	holds func(context.Context, string) (bool, string)) {
	t := p.sessions.open(&session{client: client, up: up, account: c.account.Name, holds: holds, deployment: d.Name})
	defer p.sessions.close(t)
	gauge := p.meter.sockets.WithLabelValues(c.account.Name)
	gauge.Inc()
	defer gauge.Dec()

	var once sync.Once
	end := func() {
		once.Do(func() {
			client.Close()
			up.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The client's frames, as they are (spliced, on plain TCP, without
		// passing through user space). Writes to the upstream have no
		// deadline: it is the operator's server, and one that stops
		// reading stalls only its own session's client side.
		io.Copy(up, cr)
		end()
	}()
	s := &wsScanner{}
	account := c.account.Name
	message := func(usage *usageScanner) {
		prompt, completion, ok := p.meter.tokens.count(account, d.Name, usage)
		if ok {
			c.usage.tokens(prompt, completion)
			if q != nil {
				q.settle(p.now(), 0, prompt+completion)
			}
		}
	}
	bp := copyPool.Get().(*[]byte)
	buf := *bp
	toClient := &deadlineWriter{c: client, d: p.socketWriteTimeout()}
	// The upstream's key, should it echo it in an event, is masked byte
	// for byte: a frame's length stays true (the upstream is offered no
	// compression, so its text is in the frames as it is).
	red := newRedactor(false, &d.secret)
	for {
		n, err := ur.Read(buf)
		if n > 0 {
			if _, werr := toClient.Write(red.filter(buf[:n])); werr != nil {
				break
			}
			s.feed(buf[:n], message)
		}
		if err != nil {
			break
		}
	}
	copyPool.Put(bp)
	end()
	<-done
}

// socketWriteTimeout bounds each write to a session's client: a client
// that stops reading for that long (its buffers full) ends the session
// instead of holding it, and the upstream, forever.
const socketWriteTimeout = time.Minute

func (p *proxy) socketWriteTimeout() time.Duration {
	if p.writeTimeout > 0 {
		return p.writeTimeout
	}
	return socketWriteTimeout
}

// deadlineWriter writes to a connection that must take every write within
// d: the deadline is moved to d from now once an eighth of d has passed
// since it was last moved (moving it on every write is a measurable part
// of a small message's cost), so a write may wait between 7/8 d and d.
type deadlineWriter struct {
	c   net.Conn
	d   time.Duration
	set time.Time // when the deadline was last moved
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(w.set) > w.d/8 {
		w.c.SetWriteDeadline(now.Add(w.d))
		w.set = now
	}
	return w.c.Write(b)
}

// sessions are the open WebSocket sessions. Every sessionCheck they are
// checked against the credential they were opened with — a regenerated
// key, a removed role, a deleted account ends them, as it refuses the
// next request — and when the gateway stops they are closed (net/http's
// Shutdown does not know hijacked connections).
type sessions struct {
	logger *slog.Logger
	// check is how often sessions are checked (0: sessionCheck).
	check time.Duration

	mu    sync.Mutex
	live  map[*session]struct{}
	shut  bool
	stop  chan struct{} // closed by shutdown; the sweeper runs until then
	swept bool          // the sweeper was started
}

type session struct {
	client, up net.Conn
	account    string
	// holds reports whether the session's credential still holds for its
	// deployment, and if not why.
	holds      func(ctx context.Context, deployment string) (bool, string)
	deployment string
}

// sessionCheck is how often sessions are checked against their
// credentials.
const sessionCheck = 2 * time.Second

func (s *sessions) open(t *session) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		t.client.Close()
		t.up.Close()
		return t
	}
	if s.live == nil {
		s.live = map[*session]struct{}{}
		s.stop = make(chan struct{})
	}
	s.live[t] = struct{}{}
	if !s.swept && t.holds != nil {
		s.swept = true
		every := s.check
		if every <= 0 {
			every = sessionCheck
		}
		go s.sweep(s.stop, every)
	}
	return t
}

func (s *sessions) close(t *session) {
	s.mu.Lock()
	delete(s.live, t)
	s.mu.Unlock()
}

// shutdown closes every open session, and every one opened after.
func (s *sessions) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return
	}
	s.shut = true
	if s.stop != nil {
		close(s.stop)
	}
	for t := range s.live {
		t.client.Close()
		t.up.Close()
	}
}

// sweep ends, every interval until stop, the sessions whose credential
// no longer holds.
func (s *sessions) sweep(stop <-chan struct{}, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var live []*session
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		live = live[:0]
		for t := range s.live {
			live = append(live, t)
		}
		s.mu.Unlock()
		for _, t := range live {
			if t.holds == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ok, why := t.holds(ctx, t.deployment)
			cancel()
			if !ok {
				s.logger.Info("gateway: realtime session ended", "account", t.account, "reason", why)
				t.client.Close()
				t.up.Close()
			}
		}
		clear(live)
	}
}

// wsScanner follows the frames of one direction of a WebSocket (RFC 6455
// §5.2) as the bytes go by, without holding them up, and hands the usage
// (a usageScanner's) of every complete text message to the callback. Control
// frames may come between the fragments of a message; masked frames
// (which an upstream must not send) and malformed ones end the scanning,
// not the connection.
type wsScanner struct {
	hdr       [14]byte
	hn, need  int    // header bytes read, and needed
	left      uint64 // payload bytes of the current frame to come
	inPayload bool
	control   bool // the current frame is a control frame
	fin       bool
	text      bool // the current message is text
	broken    bool
	usage     usageScanner
}

func (s *wsScanner) feed(p []byte, message func(*usageScanner)) {
	for len(p) > 0 && !s.broken {
		if !s.inPayload {
			if s.need == 0 {
				s.need = 2
			}
			n := copy(s.hdr[s.hn:s.need], p)
			s.hn += n
			p = p[n:]
			if s.hn < s.need {
				continue
			}
			if s.need == 2 {
				if s.hdr[1]&0x80 != 0 {
					s.broken = true // masked: not an upstream's frame
					return
				}
				switch s.hdr[1] & 0x7f {
				case 126:
					s.need = 4
				case 127:
					s.need = 10
				}
				if s.need > 2 {
					continue
				}
			}
			s.startFrame(message)
			continue
		}
		n := len(p)
		if uint64(n) > s.left {
			n = int(s.left)
		}
		if !s.control && s.text {
			s.usage.add(p[:n])
		}
		s.left -= uint64(n)
		p = p[n:]
		if s.left == 0 {
			s.endFrame(message)
		}
	}
}

// startFrame reads the complete header in hdr.
func (s *wsScanner) startFrame(message func(*usageScanner)) {
	var length uint64
	switch s.need {
	case 2:
		length = uint64(s.hdr[1] & 0x7f)
	case 4:
		length = uint64(s.hdr[2])<<8 | uint64(s.hdr[3])
	default:
		for _, b := range s.hdr[2:10] {
			length = length<<8 | uint64(b)
		}
		if length>>63 != 0 {
			s.broken = true
			return
		}
	}
	op := s.hdr[0] & 0x0f
	s.fin = s.hdr[0]&0x80 != 0
	s.control = op&0x08 != 0
	if !s.control && op != 0 { // the first frame of a message
		s.text = op == 1
		s.usage.reset(false)
		s.usage.events = true // a message is an event
	}
	s.hn, s.need = 0, 0
	s.left = length
	s.inPayload = true
	if length == 0 {
		s.endFrame(message)
	}
}

func (s *wsScanner) endFrame(message func(*usageScanner)) {
	s.inPayload = false
	if s.control || !s.fin || !s.text {
		return
	}
	s.usage.done = true
	message(&s.usage)
	s.usage.reset(false)
	s.text = false
}
