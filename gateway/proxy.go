package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpfield"
	"github.com/gatehouse/gatehouse/server"
)

// Deployment maps a deployment name of an account to an OpenAI-compatible
// upstream. The credential is held in memory in the clear (it is sent on
// every request); at rest it is sealed by the keyring.
type Deployment struct {
	Name string
	// Upstream is the upstream's base URL (scheme, host, optional path
	// prefix); requests go to {Upstream}/v1/{operation}. A base that
	// already ends in /v1 is not doubled.
	Upstream *url.URL
	// Model is the upstream's model name, written into the body's "model".
	// "" leaves the body as the client sent it.
	Model string
	// Credential is the upstream's own API key ("" = none).
	Credential string
	// AuthHeader is the header that carries Credential: "" means
	// "Authorization: Bearer <credential>"; any other name receives the
	// credential as is (e.g. "api-key" for an Azure OpenAI upstream).
	AuthHeader string
	// Capacity is the sku's capacity: with Options.DeploymentQuotas, 1,000
	// tokens and 6 requests a minute per unit (quota.go); 0 counts as 1.
	Capacity int
	// Unavailable, when set, is the error every request to the deployment
	// gets instead of being forwarded: its credential cannot be had now
	// (a Key Vault reference the account may not read). The index decides
	// it; the proxy only returns it.
	Unavailable error

	// Prepared once, shared read-only by every request: the encoded model,
	// the upstream URL of each operation, the credential header.
	once      sync.Once
	modelJSON []byte
	urls      map[string]*url.URL
	authName  string
	authValue string
	secret    secretFinder // Credential, to cut out of answers (redactor)
	upKey     *hostKey     // where urls go (nil: a scheme UpstreamClient refuses)
}

func (d *Deployment) prepare() {
	d.once.Do(func() {
		if d.Model != "" {
			d.modelJSON, _ = json.Marshal(d.Model)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(d.Upstream.Path, "/"), "/v1")
		d.urls = make(map[string]*url.URL, len(openAIOperations))
		for _, op := range openAIOperations {
			u := *d.Upstream
			u.Path = base + "/v1/" + op
			u.RawPath, u.RawQuery, u.Fragment = "", "", ""
			d.urls[op] = &u
		}
		d.secret = newSecretFinder(d.Credential)
		if k, err := hostKeyOf(d.Upstream); err == nil {
			d.upKey = &k
		}
		switch {
		case d.Credential == "":
		case d.AuthHeader == "":
			d.authName, d.authValue = "Authorization", "Bearer "+d.Credential
		default:
			d.authName, d.authValue = http.CanonicalHeaderKey(d.AuthHeader), d.Credential
		}
		if !httpfield.ValidName(d.authName) || !httpfield.ValidValueString(d.authValue) {
			// The management API lets only a plain name through; a field
			// that would break the request is not sent (Outbound.Fields).
			d.authName, d.authValue = "", ""
		}
	})
}

// openAIOperations are the proxied operations (routes in gateway.go).
var openAIOperations = func() []string {
	var out []string
	for _, o := range openAIOps {
		out = append(out, o.op)
	}
	return append(out, opResponses, opResponses+"/compact", opResponses+"/input_tokens", realtimeOp)
}()

// opResponses creates a response (the Responses API).
const opResponses = "responses"

// Deployments is the in-memory deployment index. Deployment returns the
// deployment name (any case) of acct, an immutable value shared by
// concurrent requests.
type Deployments interface {
	Deployment(acct *Account, name string) (*Deployment, bool)
	// DeploymentNames lists acct's deployments, sorted.
	DeploymentNames(acct *Account) []string
}

type proxy struct {
	transport http.RoundTripper
	// tunnels dials the upstreams of WebSockets (the transport, when it is
	// an UpstreamClient); sessions are those open (realtime.go).
	tunnels  *UpstreamClient
	sessions sessions
	// writeTimeout is socketWriteTimeout unless a test sets it.
	writeTimeout time.Duration
	maxBody      int64
	deployments  Deployments
	models       func() []BaseModel
	logger       *slog.Logger
	meter        *meter
	// quotas enforces deployments' capacity; limits holds their state
	// (quota.go).
	quotas bool
	limits sync.Map // quotaKey → *deploymentQuota
	now    func() time.Time
}

// copyPool holds the buffers responses are copied through.
var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// deployment returns the account's deployment name, ready to serve.
func (p *proxy) deployment(c *call, name string) (*Deployment, error) {
	if p.deployments == nil {
		return nil, errDeploymentNotFound
	}
	d, ok := p.deployments.Deployment(&c.account, name)
	if !ok {
		return nil, errDeploymentNotFound
	}
	if d.Unavailable != nil {
		return nil, d.Unavailable
	}
	d.prepare()
	return d, nil
}

// forwardHeaders are the request headers an upstream gets from the client.
// Everything else — the client's credentials above all, cookies, Azure and
// APIM headers — stays behind. Accept-Encoding too: the gateway reads the
// answer's usage to meter it (tokens.go), which a compressed body would
// hide, so it asks upstreams for identity (identityEncoding).
var forwardHeaders = []string{"Content-Type", "Accept", "User-Agent", "Openai-Beta"}

// identityEncoding asks an upstream not to compress its answer.
var identityEncoding = Field{"Accept-Encoding", "identity"}

// serve forwards POST …/openai/deployments/{deployment}/{op} to the
// deployment's upstream /v1/{op}.
//
// With byModel the deployment is the body's "model" (which is then
// rewritten to the upstream's model like any other): Azure OpenAI's v1
// API, POST …/openai/v1/{op}, and the Responses API's POST
// …/openai/responses. versioned requires an api-version (every route but
// the v1 API's).
func (p *proxy) serve(w http.ResponseWriter, r *http.Request, c *call, op string, byModel, versioned bool) error {
	var d *Deployment
	if versioned {
		if err := checkOpenAIVersion(r.URL.RawQuery); err != nil {
			return err
		}
	}
	if !byModel {
		var err error
		if d, err = p.deployment(c, c.param); err != nil {
			return err
		}
	}
	// The body is read into a pooled buffer. The upstream client is done
	// with the body it sends when exchange returns, so with it the
	// rewritten body comes from a pool too; any other transport may still
	// be reading its body after RoundTrip returns, so it gets a copy the
	// request owns.
	_, fast := p.transport.(*UpstreamClient)
	inp := inPool.Get().(*[]byte)
	defer putIn(inp)
	in, err := p.readRequestBody(w, r, inp, p.maxBody)
	if err != nil {
		return err
	}
	var spanBuf [4][2]int
	models, ok := scanJSON(in, spanBuf[:0])
	if !ok {
		return badRequest("We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.")
	}
	if byModel {
		var named struct {
			Model string `json:"model"`
		}
		if err := json.Unmarshal(in, &named); err != nil {
			return badRequest("The request body must be a JSON object with a string \"model\".")
		}
		if named.Model == "" {
			return badRequest("The \"model\" field is required: it names the deployment.")
		}
		if d, err = p.deployment(c, named.Model); err != nil {
			return err
		}
	}
	var body []byte
	var outp *[]byte // the pooled buffer body is in, if any
	defer func() {
		if outp != nil {
			*outp = body[:0]
			putIn(outp)
		}
	}()
	if d.modelJSON != nil {
		var dst []byte
		if fast {
			outp = inPool.Get().(*[]byte)
			dst = (*outp)[:0]
		} else {
			dst = make([]byte, 0, len(in)+len(d.modelJSON)+16)
		}
		if body, err = spliceModel(dst, in, d.modelJSON, models); err != nil {
			return badRequest("The request body must be a JSON object.")
		}
	} else if i := skipWS(in, 0); in[i] != '{' {
		return badRequest("The request body must be a JSON object.")
	} else if fast {
		body = in
	} else {
		body = bytes.Clone(in)
	}

	estimate := 0
	if p.quotas {
		estimate = estimateTokens(in)
	}
	return p.forwardBody(w, r, c, d, op, body, estimate)
}

// forwardBody sends body to d's upstream /v1/{op} with the allow-listed
// client headers, the request id and the upstream's own credential, and
// streams the answer to w; with deployment quotas, it is first admitted
// on its estimate of tokens (quota.go).
func (p *proxy) forwardBody(w http.ResponseWriter, r *http.Request, c *call, d *Deployment, op string, body []byte, estimate int) error {
	var q *deploymentQuota
	if p.quotas {
		var err error
		if q, err = p.admit(c, d, op, r, estimate); err != nil {
			return err
		}
	}
	uc, fast := p.transport.(*UpstreamClient)
	// Only the allow-listed client headers go along, then the request id
	// and the upstream's own credential.
	o := &c.out
	*o = Outbound{Method: http.MethodPost, URL: d.urls[op], Body: body, key: d.upKey}
	o.Fields = o.fields[:0]
	for _, name := range forwardHeaders {
		if v := r.Header[name]; len(v) > 0 {
			o.Fields = append(o.Fields, Field{name, v[0]})
		}
	}
	o.Fields = append(o.Fields, identityEncoding, Field{"X-Request-Id", server.RequestID(r.Context())})
	if d.authName != "" {
		o.Fields = append(o.Fields, Field{d.authName, d.authValue})
	}

	start := time.Now()
	o.start = start
	if !fast {
		resp, err := p.send(r.Context(), o)
		if err != nil {
			return p.upstreamFailed(r.Context(), d, err)
		}
		defer resp.Body.Close()
		c.usage.observeUpstream(time.Since(start))
		if resp.StatusCode >= 300 {
			return upstreamError(resp, d)
		}
		if q != nil {
			q.headers(w, p.now())
		}
		usage := getUsageScanner()
		copyResponse(w, resp, usage, q != nil, &d.secret, p.socketWriteTimeout())
		p.settle(q, c, d, usage, estimate)
		return nil
	}
	ex, err := uc.exchange(r.Context(), o)
	if err != nil {
		return p.upstreamFailed(r.Context(), d, err)
	}
	c.usage.observeUpstream(time.Since(start))
	if ex.status >= 300 {
		resp := ex.response()
		defer resp.Body.Close()
		return upstreamError(resp, d)
	}
	if q != nil {
		q.headers(w, p.now())
	}
	usage := getUsageScanner()
	forward(w, ex, usage, q != nil, &d.secret, p.socketWriteTimeout())
	p.settle(q, c, d, usage, estimate)
	return nil
}

// settle meters the answer's tokens and, with a quota, charges what they
// exceed of the estimate.
func (p *proxy) settle(q *deploymentQuota, c *call, d *Deployment, usage *usageScanner, estimate int) {
	prompt, completion, ok := p.meter.tokens.count(c.account.Name, d.Name, usage)
	usagePool.Put(usage)
	if ok {
		c.usage.tokens(prompt, completion)
		if q != nil {
			q.settle(p.now(), estimate, prompt+completion)
		}
	}
}

// usagePool holds the usageScanners answers are metered with.
var usagePool = sync.Pool{New: func() any { return new(usageScanner) }}

func getUsageScanner() *usageScanner {
	s := usagePool.Get().(*usageScanner)
	s.reset(false)
	return s
}

// readRequestBody reads r's body, at most max bytes (else 413), into the
// pooled buffer *inp. A known Content-Length is enforced by the server's
// body reader; only a chunked body needs MaxBytesReader.
func (p *proxy) readRequestBody(w http.ResponseWriter, r *http.Request, inp *[]byte, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	var src io.Reader = r.Body
	if r.ContentLength < 0 {
		src = http.MaxBytesReader(w, r.Body, max)
	}
	in, err := readBody((*inp)[:0], src)
	*inp = in[:0]
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(max)
		}
		return nil, badRequest("The request body could not be read.").WithCause(err)
	}
	return in, nil
}

// inPool holds the buffers request bodies are read into.
var inPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func putIn(b *[]byte) {
	if cap(*b) <= 1<<20 { // let an unusually large buffer go
		inPool.Put(b)
	}
}

// send forwards o with the upstream client, or with any other transport
// given in Options.Transport (as an http.Request).
func (p *proxy) send(ctx context.Context, o *Outbound) (*http.Response, error) {
	if uc, ok := p.transport.(*UpstreamClient); ok {
		return uc.Do(ctx, o)
	}
	h := make(http.Header, len(o.Fields))
	for _, f := range o.Fields {
		h[f.Name] = append(h[f.Name], f.Value)
	}
	req, err := http.NewRequestWithContext(ctx, o.Method, o.URL.String(), bytes.NewReader(o.Body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	return p.transport.RoundTrip(req)
}

// readBody appends everything r yields to buf.
func readBody(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// copyResponse streams resp to w. An event stream is flushed after every
// read so tokens reach the client as the upstream produces them. usage,
// when not nil, meters the body (tokens.go). With ownLimits (the gateway
// enforces the deployment's quota and has set its own x-ratelimit-*
// fields), the upstream's rate-limit fields stay behind (isRateLimitHeader).
// The body has secret (the deployment's credential) cut out, should the
// upstream echo it (redactor).
func copyResponse(w http.ResponseWriter, resp *http.Response, usage *usageScanner, ownLimits bool, secret *secretFinder, stall time.Duration) {
	dst := w.Header()
	for k, v := range resp.Header {
		switch {
		case isHopHeader(k):
		case ownLimits && isRateLimitHeader(k):
		case k == "Vary" && len(dst[k]) > 0:
			dst[k] = append(dst[k], v...) // the CORS policy's Vary: Origin stays
		default:
			dst[k] = v
		}
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if stream || resp.StatusCode == http.StatusNoContent {
		dst.Del("Content-Length") // a 204 has none (RFC 9110 §8.6): HTTP/2 clients reset a stream that does
	}
	if usage != nil {
		usage.sse, usage.events = stream, stream
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if stream {
		// The head now: clients time the wait for it, and a model's first
		// token may be long in coming.
		rc.Flush()
	}
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	red := newRedactor(stream, secret)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stallDeadline(rc, stall)
			if _, werr := w.Write(red.filter(buf[:n])); werr != nil {
				return // the client went away
			}
			if usage != nil {
				usage.add(buf[:n])
			}
			if stream {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			if _, werr := w.Write(red.rest()); werr != nil {
				return
			}
			if usage != nil {
				usage.done = true
			}
			return
		}
		if rerr != nil {
			// The upstream broke off mid-body. Abort the client's connection
			// too, so a truncated response is not mistaken for a whole one.
			panic(http.ErrAbortHandler)
		}
	}
}

// stallDeadline gives the next write of a response body to the client
// stall (socketWriteTimeout) to complete, as the Realtime path gives its sockets:
// a client that stops reading a long answer or a stream is cut off then,
// instead of holding its connection, this handler and the upstream's
// connection for as long as it likes. A body the upstream's first read
// brought whole (forward's buffered loop: most answers) is written
// without one: the socket's buffer takes it.
func stallDeadline(rc *http.ResponseController, stall time.Duration) {
	_ = rc.SetWriteDeadline(time.Now().Add(stall))
}

// forward streams the response of ex to w, as copyResponse does for an
// *http.Response, without one: the head's fields go straight into w's
// header (their value slices in one array of the response's own: on the
// HTTP/1.1 fast path the header is written after the handler returns),
// and a Content-Length body already in the connection's buffer is written
// from there. usage meters the body; ownLimits and secret are
// copyResponse's.
func forward(w http.ResponseWriter, ex *upExchange, usage *usageScanner, ownLimits bool, secret *secretFinder, stall time.Duration) {
	// The head lives in the exchange only until the body is read.
	stream := strings.HasPrefix(ex.header("Content-Type"), "text/event-stream")
	chunked := ex.chunked != nil
	dst := w.Header()
	fields := ex.fields
	vals := make([]string, len(fields))
	for i, f := range fields {
		if isHopHeader(f.Name) || f.Name == "Content-Length" && (stream || chunked || ex.status == http.StatusNoContent) ||
			ownLimits && isRateLimitHeader(f.Name) {
			continue
		}
		vals[i] = f.Value
		if firstField(fields, f.Name) < i || f.Name == "Vary" && len(dst["Vary"]) > 0 {
			// A repeated field, or Vary beside the CORS policy's Origin.
			dst[f.Name] = append(dst[f.Name], f.Value)
		} else {
			dst[f.Name] = vals[i : i+1 : i+1] // replaces what w had, as copyResponse does
		}
	}
	w.WriteHeader(ex.status)
	usage.sse, usage.events = stream, stream
	var rc *http.ResponseController // made when needed: most answers are written whole below
	if stream {
		// The head now: clients (openai-node, azure-core) time the wait for
		// it, and a model's first token may be long in coming.
		rc = http.NewResponseController(w)
		rc.Flush()
	}
	red := newRedactor(stream, secret)
	// From here on ex is not touched once it has ended (see upExchange).
	if !stream {
		for {
			b := ex.buffered()
			if len(b) == 0 {
				break
			}
			_, werr := w.Write(red.filter(b))
			if werr == nil {
				usage.add(b)
			}
			if ex.discard(len(b)) {
				if werr == nil {
					_, werr = w.Write(red.rest())
				}
				usage.done = werr == nil
				return
			}
			if werr != nil {
				ex.abort() // the client went away
				return
			}
		}
	}
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	if rc == nil {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := ex.Read(buf)
		if n > 0 {
			stallDeadline(rc, stall)
			if _, werr := w.Write(red.filter(buf[:n])); werr != nil {
				if rerr == nil {
					ex.abort() // the client went away
				}
				return
			}
			usage.add(buf[:n])
			if stream {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			if _, werr := w.Write(red.rest()); werr == nil {
				usage.done = true
			}
			return
		}
		if rerr != nil {
			// The upstream broke off mid-body (Read closed the connection).
			// Abort the client's connection too, so a truncated response is
			// not mistaken for a whole one.
			panic(http.ErrAbortHandler)
		}
	}
}

// isHopHeader reports whether name (canonical) is a response header the
// proxy never forwards: connection-level ones, cookies, what describes the
// upstream's own server rather than the answer (its software and version,
// its alternative services — an Alt-Svc would send the client's next
// requests elsewhere — and URLs of its own: Location, Content-Location,
// Refresh), and the upstream's CORS headers — the gateway's own policy
// (cors.go) decides what a browser may read, and an upstream's "*" or
// Allow-Credentials must not widen it. (A redirect is never passed on at
// all: upstreamError.)
func isHopHeader(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Set-Cookie", "Server", "X-Powered-By", "Alt-Svc",
		"Location", "Content-Location", "Refresh":
		return true
	}
	return strings.HasPrefix(name, "Access-Control-")
}

// isRateLimitHeader reports whether name (canonical) is one of the
// x-ratelimit-* fields (x-ratelimit-remaining-requests|tokens, and
// OpenAI's -limit- and -reset- ones; Azure has also sent them spelled
// x-rate-limit-*). An upstream's describe its own limits, not what this
// gateway lets the client do: where the gateway enforces a deployment
// quota, its fields are the only ones the client gets.
func isRateLimitHeader(name string) bool {
	return strings.HasPrefix(name, "X-Ratelimit-") || strings.HasPrefix(name, "X-Rate-Limit-")
}

// firstField returns the index of the first field named name.
func firstField(fields []Field, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// upstreamFailed turns a transport error into a 504 (timeout) or 502.
func (p *proxy) upstreamFailed(ctx context.Context, d *Deployment, err error) error {
	if ctx.Err() != nil {
		// The client went away; nobody reads the answer.
		return gatehouse.Errorf(499, "ClientClosedRequest", "The client closed the request.").WithCause(err)
	}
	p.logger.Warn("gateway: upstream request failed", "deployment", d.Name, "upstream", d.Upstream.Host, "err", err)
	if errors.Is(err, errUpstreamNotAllowed) {
		return gatehouse.Errorf(http.StatusBadGateway, "BadGateway",
			"The upstream of deployment '%s' is not in the networks this server may reach.", d.Name).WithCause(err)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return gatehouse.Errorf(http.StatusGatewayTimeout, "GatewayTimeout",
			"The upstream of deployment '%s' did not answer in time.", d.Name).WithCause(err)
	}
	return gatehouse.Errorf(http.StatusBadGateway, "BadGateway",
		"The upstream of deployment '%s' could not be reached.", d.Name).WithCause(err)
}

// upstreamError renders an upstream's error response in Azure's shape. An
// upstream refusing its credential is a deployment fault (502), never the
// client's 401; an upstream 500 becomes 502; so does a redirect (3xx):
// Azure OpenAI never answers an inference call with one, and a client
// that followed it would carry its key and prompt wherever the upstream
// pointed. 4xx, 429 (with its retry headers), 502, 503 and 504 keep their
// status. A 4xx's message, param, type and innererror (a content filter's
// results) are the client's to read (a parameter out of range, a context
// too long); a 5xx's are the upstream's internals, so only its code is
// passed on (Azure OpenAI answers its own "The server had an error…").
// Whatever is passed on — and so logged — has the deployment's own
// credential cut out, should the upstream echo it: an account key's holder
// must not learn the upstream's.
func upstreamError(resp *http.Response, d *Deployment) error {
	status := resp.StatusCode
	if status < 400 {
		return gatehouse.Errorf(http.StatusBadGateway, "BadGateway",
			"The upstream of deployment '%s' answered with a redirect (status %d), which the gateway does not follow or pass on.", d.Name, status)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	u := parseUpstreamError(body)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return gatehouse.Errorf(http.StatusBadGateway, "BadGateway",
			"The upstream of deployment '%s' refused the deployment's credential (status %d).", d.Name, status)
	case status >= 500:
		u = upstreamErr{code: u.code}
		if status != 502 && status != 503 && status != 504 {
			status = http.StatusBadGateway
		}
	}
	if cred := d.Credential; cred != "" {
		for _, s := range []*string{&u.code, &u.msg, &u.param, &u.typ} {
			*s = strings.ReplaceAll(*s, cred, "***")
		}
		for _, e := range append([]string{cred}, escapes(cred)...) {
			if bytes.Contains(u.inner, []byte(e)) {
				u.inner = nil
				break
			}
		}
	}
	// Clipped only now: a credential cut in two by the clipping would no
	// longer be found whole, and most of it would pass.
	u.code, u.msg = clipString(u.code, maxUpstreamCode), clipString(u.msg, maxUpstreamMsg)
	u.param, u.typ = clipString(u.param, maxUpstreamCode), clipString(u.typ, maxUpstreamCode)
	if u.code == "" {
		u.code = strconv.Itoa(resp.StatusCode)
	}
	if u.msg == "" {
		u.msg = "The upstream of deployment '" + d.Name + "' answered " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode) + "."
	}
	e := &gatehouse.Error{Status: status, Code: u.code, Message: u.msg, Param: u.param, Type: u.typ, Inner: u.inner}
	for _, name := range []string{"Retry-After", "Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := resp.Header.Get(name); v != "" {
			e = e.WithHeader(name, v)
		}
	}
	return e
}

// jsonString is s as a JSON string's contents (how a credential with
// characters JSON escapes would appear in a raw innererror).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// upstreamErr is what an upstream's error body says.
type upstreamErr struct {
	code, msg, param, typ string
	// inner is the error's innererror (or inner_error) object, compacted.
	inner json.RawMessage
}

// Bounds of what is passed on of an upstream's error.
const (
	maxUpstreamCode  = 64
	maxUpstreamMsg   = 2000
	maxUpstreamInner = 16 << 10
)

// parseUpstreamError reads the OpenAI error shape {"error":{"code","type",
// "message","param"}} — Azure OpenAI's adds "innererror" — and the
// FastAPI/vLLM ones {"message"} and {"detail"}.
func parseUpstreamError(body []byte) (u upstreamErr) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(body, &v) != nil {
		return u
	}
	var e struct {
		Code       any             `json:"code"`
		Type       any             `json:"type"`
		Message    string          `json:"message"`
		Param      any             `json:"param"`
		InnerError json.RawMessage `json:"innererror"`
		InnerErr   json.RawMessage `json:"inner_error"`
	}
	if json.Unmarshal(v.Error, &e) == nil {
		u.code, u.typ, u.param = scalar(e.Code), scalar(e.Type), scalar(e.Param)
		if u.code == "" {
			u.code = u.typ
		}
		u.msg = e.Message
		inner := e.InnerError
		if len(inner) == 0 {
			inner = e.InnerErr
		}
		var buf bytes.Buffer
		if len(inner) > 0 && inner[0] == '{' && json.Compact(&buf, inner) == nil && buf.Len() <= maxUpstreamInner {
			u.inner = buf.Bytes()
		}
	} else {
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			u.msg = s
		}
	}
	if u.msg == "" {
		u.msg = v.Message
	}
	if s, ok := v.Detail.(string); ok && u.msg == "" {
		u.msg = s
	}
	return u // unclipped: upstreamError cuts the credential out first
}

// scalar is a JSON string or integer as a string ("" for anything else).
func scalar(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case float64:
		return strconv.Itoa(int(c))
	}
	return ""
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// checkOpenAIVersion requires an api-version, as Azure OpenAI does (404
// without one), in a dated form or one of the v1 aliases.
func checkOpenAIVersion(rawQuery string) error {
	v, err := queryValue(rawQuery, "api-version")
	if err != nil {
		return badRequest("The query string does not parse.")
	}
	if v == "" {
		return errNotFound
	}
	switch v {
	case "v1", "preview", "latest":
		return nil
	}
	if last := lastOpenAIVersion.Load(); last != nil && *last == v {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, strings.TrimSuffix(v, "-preview")); err != nil {
		return badRequest("API version not supported: '%s'.", clipString(v, 32))
	}
	valid := v // only this branch allocates
	lastOpenAIVersion.Store(&valid)
	return nil
}

// lastOpenAIVersion is the api-version last found valid: clients send the
// same one on every request, and time.Parse costs a measurable part of a
// proxied request.
var lastOpenAIVersion atomic.Pointer[string]

// queryValue returns the first value of key in a raw query, decoding only
// the parts that need it (the common query allocates nothing).
func queryValue(raw, key string) (string, error) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if escaped(k) {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				return "", err
			}
		}
		if k != key {
			continue
		}
		if escaped(v) {
			return url.QueryUnescape(v)
		}
		return v, nil
	}
	return "", nil
}

// escaped reports whether a query key or value needs QueryUnescape (a
// '%' or '+' in it). Two byte searches: ContainsAny builds a byte set on
// every call, which was most of checkOpenAIVersion's cost.
func escaped(s string) bool {
	return strings.IndexByte(s, '%') >= 0 || strings.IndexByte(s, '+') >= 0
}

// modelJSON is an entry of the OpenAI models list.
type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// listModels serves GET …/openai/v1/models: on Azure OpenAI's v1 API the
// models a client can name are the account's deployments. (OpenAI's
// clients and the tools built on them call it to check a connection.)
func (p *proxy) listModels(w http.ResponseWriter, c *call) error {
	out := struct {
		Object string      `json:"object"`
		Data   []modelJSON `json:"data"`
	}{Object: "list", Data: []modelJSON{}}
	if p.deployments != nil {
		for _, name := range p.deployments.DeploymentNames(&c.account) {
			out.Data = append(out.Data, modelJSON{ID: name, Object: "model", OwnedBy: "organization-owner"})
		}
	}
	server.WriteJSON(w, http.StatusOK, out)
	return nil
}

// BaseModel is a model accounts can deploy (a model of the server's
// catalog), as the dated API's model list shows it.
type BaseModel struct {
	Name, Version string
	// Capabilities are Azure's ARM capabilities ("chatCompletion": "true").
	Capabilities map[string]string
}

// ID is the model's id in the list: its name and version ("gpt-4o-mini-2024-07-18").
func (m BaseModel) ID() string {
	if m.Version == "" {
		return m.Name
	}
	return m.Name + "-" + m.Version
}

// baseModelJSON is Azure OpenAI's model object (the dated API).
type baseModelJSON struct {
	ID              string          `json:"id"`
	Object          string          `json:"object"`
	CreatedAt       int64           `json:"created_at"`
	Status          string          `json:"status"`
	LifecycleStatus string          `json:"lifecycle_status"`
	Capabilities    map[string]bool `json:"capabilities"`
}

func baseModelView(m BaseModel) baseModelJSON {
	on := func(k string) bool { return strings.EqualFold(m.Capabilities[k], "true") }
	return baseModelJSON{ID: m.ID(), Object: "model", Status: "succeeded", LifecycleStatus: "generally-available",
		Capabilities: map[string]bool{"fine_tune": false, "inference": true, "completion": on("completion"),
			"chat_completion": on("chatCompletion"), "embeddings": on("embeddings")}}
}

// listBaseModels serves GET …/openai/models (the list) and
// …/openai/models/{id} (one: 404 when no model has that id) on the dated
// API: the models the server's catalog offers, one per version.
func (p *proxy) listBaseModels(w http.ResponseWriter, r *http.Request, id string) error {
	if err := checkOpenAIVersion(r.URL.RawQuery); err != nil {
		return err
	}
	var models []BaseModel
	if p.models != nil {
		models = p.models()
	}
	if id != "" {
		for _, m := range models {
			if m.ID() == id {
				server.WriteJSON(w, http.StatusOK, baseModelView(m))
				return nil
			}
		}
		return gatehouse.NotFoundf("NotFound", "The model '%s' does not exist.", clipString(id, 128))
	}
	out := struct {
		Object string          `json:"object"`
		Data   []baseModelJSON `json:"data"`
	}{Object: "list", Data: []baseModelJSON{}}
	for _, m := range models {
		out.Data = append(out.Data, baseModelView(m))
	}
	server.WriteJSON(w, http.StatusOK, out)
	return nil
}

// getModel serves GET …/openai/v1/models/{model}: the deployment of that
// name as an OpenAI model object (OpenAI's clients' models.retrieve), 404
// DeploymentNotFound for a name the account has no deployment of.
func (p *proxy) getModel(w http.ResponseWriter, c *call) error {
	if p.deployments == nil {
		return errDeploymentNotFound
	}
	d, ok := p.deployments.Deployment(&c.account, c.param)
	if !ok {
		return errDeploymentNotFound
	}
	server.WriteJSON(w, http.StatusOK, modelJSON{ID: d.Name, Object: "model", OwnedBy: "organization-owner"})
	return nil
}

// redactor cuts a secret (the deployment's credential) out of an answer
// as it is copied, should the upstream echo it (in an error event, in a
// body that quotes the request's headers): error answers have it cut out
// (upstreamError), and a success is an answer too. In an event stream it
// becomes "***"; in any other body each of its bytes becomes '*', which
// keeps the body's Content-Length true and its JSON valid. A read that
// ends with the start of the secret keeps that start back until the next
// read shows whether the rest follows; an event ends with a blank line,
// which no credential starts with, so no event is held back. A nil finder
// (or one with no secret) passes everything; the common case (no secret,
// no start of it at the end) costs a search of the bytes and no copy.
type redactor struct {
	f    *secretFinder
	mask bool // '*' for each byte (not an event stream)
	held []byte
}

func newRedactor(stream bool, f *secretFinder) redactor {
	if f == nil || f.secret == nil {
		return redactor{}
	}
	return redactor{f: f, mask: !stream}
}

var redactedSecret = []byte("***")

// filter returns what of p (after what was held back) may be written now.
// It may change p in place.
func (r *redactor) filter(p []byte) []byte {
	if r.f == nil {
		return p
	}
	buf := p
	if len(r.held) > 0 {
		buf = append(append(make([]byte, 0, len(r.held)+len(p)), r.held...), p...)
		r.held = nil
	}
	hold := 0
	for f := r.f; f != nil; f = f.next {
		secret := f.secret
		if i := f.index(buf, 0); i >= 0 {
			if r.mask {
				for ; i >= 0; i = f.index(buf, i+len(secret)) {
					for j := range secret {
						buf[i+j] = '*'
					}
				}
			} else {
				buf = bytes.ReplaceAll(buf, secret, redactedSecret)
			}
		}
		hold = max(hold, startAtEnd(buf, secret))
	}
	if hold > 0 {
		r.held = append([]byte(nil), buf[len(buf)-hold:]...)
		buf = buf[:len(buf)-hold]
	}
	return buf
}

// secretFinder finds a secret in answers quickly. bytes.Index looks for a
// separator's first byte and checks each place it occurs, and over 63
// bytes falls back to Rabin-Karp (~0.5 GB/s): a key of hex digits, looked
// for by its first digit in an embedding's numbers, would cost ~60 µs a
// 32 KiB read. The finder looks instead for at most 63 bytes of the
// secret from its rarest byte in JSON answers (a letter that numbers
// have not, an upper-case letter or a sign that text seldom has), then
// compares the whole secret around it: an embedding's 32 KiB costs ~0.6 µs,
// a chat answer ~40 ns (BenchmarkRedactor).
//
// An answer may quote the secret inside a JSON string, where characters
// JSON escapes are spelled otherwise: each spelling that differs (escapes
// is their list) has a finder of its own in next. A credential of letters,
// digits and '-', '_', '.' — most — has none.
type secretFinder struct {
	secret []byte // nil: none (under 8 bytes, see newSecretFinder)
	anchor int    // where window starts in secret
	window []byte // secret[anchor:], at most 63 bytes
	next   *secretFinder
}

func newSecretFinder(secret string) secretFinder {
	if len(secret) < 8 {
		// A credential shorter than 8 bytes could turn up in any text:
		// cutting it out would mangle the answer, not protect anything.
		return secretFinder{}
	}
	f := finderOf(secret)
	last := &f
	for _, e := range escapes(secret) {
		g := finderOf(e)
		last.next = &g
		last = &g
	}
	return f
}

// escapes returns the spellings of s inside a JSON string other than s
// itself: as encoding/json writes it (HTML characters as \u003c, …), as
// encoders that do not escape HTML write it, and with '/' as '\/' (PHP's
// json_encode, among others).
func escapes(s string) []string {
	var out []string
	add := func(e string) {
		if e != s && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	html := string(jsonString(s))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	plain := strings.TrimSuffix(b.String(), "\n")
	plain = plain[1 : len(plain)-1]
	add(html)
	add(plain)
	add(strings.ReplaceAll(plain, "/", `\/`))
	add(strings.ReplaceAll(html, "/", `\/`))
	return out
}

func finderOf(secret string) secretFinder {
	f := secretFinder{secret: []byte(secret)}
	best := -1
	for i := range len(secret) - 7 { // a window of at least 8 bytes
		if c := commonness(secret[i]); best < 0 || c < best {
			best, f.anchor = c, i
		}
	}
	f.window = f.secret[f.anchor:min(len(secret), f.anchor+63)]
	return f
}

// commonness ranks a byte by how often it occurs in JSON answers: digits
// (numbers, embeddings) and English's commonest letters most, then the
// JSON punctuation, the other lower-case letters, upper-case ones, and
// the rest (signs, '_', '-' of tokens) least.
func commonness(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 9
	case strings.IndexByte("etaoinsr", c) >= 0:
		return 8
	case strings.IndexByte("hldcum\" ,:.[]{}", c) >= 0:
		return 6
	case c >= 'a' && c <= 'z':
		return 4
	case c >= 'A' && c <= 'Z':
		return 3
	}
	return 1
}

// index is the index of the secret in b at or after from, -1 if none.
func (f *secretFinder) index(b []byte, from int) int {
	for from+len(f.secret) <= len(b) {
		j := bytes.Index(b[from+f.anchor:], f.window)
		if j < 0 {
			return -1
		}
		at := from + j // the secret's place if the window's is from+anchor+j
		if at+len(f.secret) > len(b) {
			return -1
		}
		if bytes.Equal(b[at:at+len(f.secret)], f.secret) {
			return at
		}
		from = at + 1
	}
	return -1
}

// startAtEnd is the length of the longest end of b that is a start of
// secret (shorter than secret), 0 for none: only the places of secret's
// first byte among b's last len(secret)-1 bytes are compared.
func startAtEnd(b, secret []byte) int {
	from := max(0, len(b)-len(secret)+1)
	for from < len(b) {
		i := bytes.IndexByte(b[from:], secret[0])
		if i < 0 {
			return 0
		}
		at := from + i
		if bytes.HasPrefix(secret, b[at:]) {
			return len(b) - at
		}
		from = at + 1
	}
	return 0
}

// rest is what was held back, at the end of the answer.
func (r *redactor) rest() []byte {
	held := r.held
	r.held = nil
	return held
}
