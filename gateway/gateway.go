package gateway

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Credential kinds, as they appear in metrics, usage records and logs.
type CredentialKind string

const (
	CredentialKey1     CredentialKind = "key1"
	CredentialKey2     CredentialKind = "key2"
	CredentialSTS      CredentialKind = "sts"
	CredentialIdentity CredentialKind = "identity"
)

// SlotKind returns the credential kind of key slot 0 (key1) or 1 (key2).
func SlotKind(slot int) CredentialKind {
	if slot == 1 {
		return CredentialKey2
	}
	return CredentialKey1
}

// Account is the gateway's view of an AI account: an in-memory snapshot
// kept current by the change feed. It carries no secret.
type Account struct {
	// ID is the account's ARM resource id, spelled as the account index
	// reports it: the scope of role decisions and the account an STS token
	// is bound to.
	ID string
	// InternalID identifies this instance of the account (an account
	// deleted and created again under the same id gets a new one); its
	// deployments hang off it.
	InternalID string
	// Name is the data-plane name: the host label of
	// {name}.cognitiveservices.H and the {name} of /ai/{name}/.
	Name string
	// Kind is the ARM kind (OpenAI, TextAnalytics, AIServices,
	// CognitiveServices, ...); "" allows every route.
	Kind string
	// DisableLocalAuth refuses keys and STS tokens (identity only).
	DisableLocalAuth bool
	// Generations are the current generations of key1 and key2. A token
	// minted from slot s at generation g is valid while Generations[s] == g.
	Generations [2]int64
	// Limits are the account's rate limits.
	Limits RateLimits
	// Network is the account's network access (publicNetworkAccess and
	// networkAcls); nil allows every address.
	Network *netacl.Policy
	// Outbound is the account's outbound restriction
	// (restrictOutboundNetworkAccess, allowedFqdnList); nil: none. The
	// Deployments index applies it (Deployment.Unavailable).
	Outbound *netacl.Outbound
}

// RateLimits are the account's rate limits (properties.rateLimits).
type RateLimits struct {
	// Account bounds the whole account.
	Account Rate
	// Credential bounds each key slot (keys and the STS tokens minted from
	// it) and each identity principal on its own.
	Credential Rate
}

// Rate is a rate-limit rule, as ARM's ThrottlingRule: at most Count
// requests per Period, admitted in bursts of up to Count (at least one).
// The zero Rate is no limit.
type Rate struct {
	Count  float64
	Period time.Duration
}

// limited reports whether r is a limit.
func (r Rate) limited() bool { return r.Count > 0 && r.Period > 0 }

// String is r as the 429's message says it: "120 requests per minute",
// "2 requests per 10 seconds".
func (r Rate) String() string {
	n := strconv.FormatFloat(r.Count, 'f', -1, 64) + " request"
	if r.Count != 1 {
		n += "s"
	}
	switch secs := r.Period.Seconds(); {
	case r.Period == time.Minute:
		return n + " per minute"
	case secs == 1:
		return n + " per second"
	default:
		return n + " per " + strconv.FormatFloat(secs, 'f', -1, 64) + " seconds"
	}
}

// KeyMatch is where a presented key belongs.
type KeyMatch struct {
	AccountID  string
	Slot       int // 0 = key1, 1 = key2
	Generation int64
}

// Accounts is the in-memory account index the gateway reads on every
// request. Implementations never touch the database on these calls and are
// safe for concurrent use.
type Accounts interface {
	// AccountByName returns the account with data-plane name name.
	AccountByName(name string) (Account, bool)
	// AccountByID returns the account with ARM id id (lower case).
	AccountByID(id string) (Account, bool)
	// LookupKey returns the account and slot whose current key has SHA-256
	// sum; false when no current key does.
	LookupKey(sum [sha256.Size]byte) (KeyMatch, bool)
}

// VerifiedToken is what the shared verifier established about a bearer
// token. STS tokens carry the account, slot and generation they were
// minted from (STS is true).
type VerifiedToken struct {
	Audience  string
	Principal gatehouse.Principal
	Expires   time.Time

	STS        bool
	AccountID  string
	Slot       int
	Generation int64
	// Instance is the account instance (Account.InternalID) the token was
	// minted for: a token of a deleted account does not work on a new one
	// at the same id. "" in tokens minted before it was carried.
	Instance string
}

// TokenVerifier is the node's one token verifier (signature, algorithm,
// issuer, expiry, audience ∈ audiences), with its cache of verified
// tokens. Every error is a refusal; none is rendered to the client. The
// result is a value: a verified-token cache hit should allocate nothing.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, raw string, audiences ...string) (VerifiedToken, error)
}

// STSGrant is what an STS token is minted for.
type STSGrant struct {
	Account    Account
	Slot       int
	Generation int64
	Lifetime   time.Duration
}

// TokenIssuer mints STS tokens through the identity authority's issuer,
// with STSAudience and the account/slot/generation claims that
// TokenVerifier reads back.
type TokenIssuer interface {
	IssueSTSToken(ctx context.Context, g STSGrant) (raw string, err error)
}

// Authorizer is the cached authorization decision: may p perform the data
// action on scope (an account's ARM id)? An error means the decision could
// not be made (it is rendered as 500, never as allow).
type Authorizer interface {
	AuthorizeData(ctx context.Context, p gatehouse.Principal, dataAction, scope string) (bool, error)
}

// Audiences accepted on the data plane. Identity tokens are for Cognitive
// Services or for https://ai.azure.com (the scope Azure's documentation
// now gives for the OpenAI v1 API and Foundry resources), with or without
// the slash; STS tokens have an audience of their own that the token
// endpoint never issues, so neither kind can pass for the other.
const (
	CognitiveAudience      = "https://cognitiveservices.azure.com"
	cognitiveAudienceSlash = CognitiveAudience + "/"
	AIAudience             = "https://ai.azure.com"
	aiAudienceSlash        = AIAudience + "/"
	STSAudience            = "urn:ms.cognitiveservices"
)

// STS token claims (besides the issuer's standard ones).
const (
	ClaimAccount    = "azure-resource-id"
	ClaimSlot       = "key-slot"
	ClaimGeneration = "key-generation"
	ClaimInstance   = "account-instance"
)

// Options configures a Gateway. Accounts, Tokens, Issuer and Authz are
// required; the rest have defaults.
type Options struct {
	Accounts    Accounts
	Tokens      TokenVerifier
	Issuer      TokenIssuer
	Authz       Authorizer
	Deployments Deployments
	// Models lists the base models accounts can deploy (the server's model
	// catalog), for GET …/openai/models; nil: none.
	Models func() []BaseModel
	// Language serves POST …/language/:analyze-text (nil: 404).
	Language server.HandlerFunc
	// LanguageUnsupported answers the Language and Text Analytics
	// operations the built-in service does not perform (nil: 404).
	LanguageUnsupported server.HandlerFunc
	// TextAnalyticsV3 serves POST …/text/analytics/{version}/languages and
	// …/sentiment, the Text Analytics v3.x API (nil: 404).
	TextAnalyticsV3 server.HandlerFunc
	// Usage receives the usage counters every FlushInterval (nil: kept
	// only in memory and in metrics).
	Usage UsageSink
	// Audit receives data-plane denials, at most AuditRate per second.
	Audit Auditor

	Registry prometheus.Registerer
	Logger   *slog.Logger
	Now      func() time.Time

	// MaxBodyBytes bounds a proxied request body (default 16 MiB).
	MaxBodyBytes int64
	// UpstreamTimeout bounds how long the upstream may stay silent: before
	// its response headers, and between two reads of a (streamed) body
	// (default 5 minutes: a long completion without streaming). See
	// UpstreamClient.ReadTimeout.
	UpstreamTimeout time.Duration
	// PlainSyscalls: the default upstream clients' sockets make ordinary
	// system calls instead of raw ones (UpstreamClient.PlainSyscalls).
	PlainSyscalls bool
	// Transport reaches upstreams (default: NewUpstreamClient, a
	// keep-alive HTTP/1.1 client tuned for a proxy's hot path).
	Transport http.RoundTripper
	// STSLifetime is the lifetime of STS tokens (default 10 minutes).
	STSLifetime time.Duration
	// STSFailuresPerMinute bounds failed STS attempts per client address
	// (default 30, burst the same).
	STSFailuresPerMinute int
	// FlushInterval is how often usage is flushed (default 30s; tests call
	// Flush).
	FlushInterval time.Duration
	// AuditRate bounds audited denials per second (default 5, burst 20);
	// the rest are counted and reported with the next audited one.
	AuditRate float64
	// CORS is which browser origins may call the data plane (cors.go);
	// the zero value allows none.
	CORS CORSPolicy
	// UpstreamNetworks are the only networks upstreams may be reached in
	// (empty: any but link-local and cloud platform addresses; netacl.UpstreamAllowed), checked on the
	// resolved address of every connection the default Transport dials.
	UpstreamNetworks netacl.Networks
	// PrivateNetworks are the client networks whose requests count as
	// private-endpoint traffic: not subject to an account's network rules,
	// served when it disables public access.
	PrivateNetworks netacl.Networks
	// DeploymentQuotas enforces each deployment's Capacity as Azure
	// OpenAI's quota (quota.go); off, capacity is not looked at.
	DeploymentQuotas bool
}

// Gateway is the AI data plane. Create it with New, mount it with Mount,
// run its background loop with Run.
type Gateway struct {
	opts    Options
	cors    CORSPolicy
	now     func() time.Time
	logger  *slog.Logger
	proxy   *proxy
	meter   *meter
	sts     *stsLimiter
	auditor *denialAuditor
}

// New returns a gateway.
func New(opts Options) *Gateway {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 5 * time.Minute
	}
	if opts.STSLifetime <= 0 {
		opts.STSLifetime = 10 * time.Minute
	}
	if opts.STSFailuresPerMinute <= 0 {
		opts.STSFailuresPerMinute = 30
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 30 * time.Second
	}
	if opts.AuditRate <= 0 {
		opts.AuditRate = 5
	}
	if opts.Transport == nil {
		uc := NewUpstreamClient(opts.UpstreamTimeout)
		uc.Dialer.Control = upstreamControl(opts.UpstreamNetworks)
		uc.PlainSyscalls = opts.PlainSyscalls
		opts.Transport = uc
	}
	g := &Gateway{opts: opts, cors: opts.CORS, now: opts.Now, logger: opts.Logger}
	g.meter = newMeter(opts.Registry, opts.Now)
	tunnels, ok := opts.Transport.(*UpstreamClient)
	if !ok {
		tunnels = NewUpstreamClient(opts.UpstreamTimeout)
		tunnels.Dialer.Control = upstreamControl(opts.UpstreamNetworks)
		tunnels.PlainSyscalls = opts.PlainSyscalls
	}
	g.proxy = &proxy{transport: opts.Transport, tunnels: tunnels, maxBody: opts.MaxBodyBytes, deployments: opts.Deployments, models: opts.Models,
		logger: opts.Logger, meter: g.meter, quotas: opts.DeploymentQuotas, now: opts.Now}
	g.proxy.sessions.logger = opts.Logger
	g.sts = newSTSLimiter(opts.STSFailuresPerMinute, opts.Now)
	g.auditor = newDenialAuditor(opts.Audit, opts.AuditRate, opts.Now, opts.Logger, g.meter)
	return g
}

// route is one data-plane operation.
type route struct {
	name string
	// pattern is account-relative: "POST /language/:analyze-text".
	method, path string
	// dataAction is what an identity needs on the account.
	dataAction string
	// operation is the path as Azure names it in PermissionDenied.
	operation string
	// kinds the route serves ("" in Account.Kind allows all).
	kinds []string
	// bearerKey: a bearer that is not a JWT is a subscription key (the
	// plain OpenAI clients send their key so on Azure OpenAI's v1 API).
	bearerKey bool
	// param names the path's wildcard segment ("deployment"), "" if none.
	param string
	// muxOnly: the path has a second wildcard, which direct dispatch does
	// not match (direct.go); the mux routes it, and serve reads the other
	// wildcard with PathValue.
	muxOnly bool
	// socketAuth: the route is a WebSocket, whose browser clients put the
	// credential in the query or a subprotocol (realtime.go).
	socketAuth bool
	serve      func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error
}

const dataActionPrefix = "Microsoft.CognitiveServices/accounts/"

var (
	openAIKinds   = []string{"OpenAI", "AIServices"}
	languageKinds = []string{"TextAnalytics", "CognitiveServices", "AIServices", "Language"}
)

// openAIOps are the operations proxied at /openai/deployments/{d}/{op}
// (openAIRoute) and at /openai/v1/{op} (openAIV1Route): the data action an
// identity needs (Azure's: audio operations share one, image generation
// is not per deployment), and whether the body is multipart/form-data
// (proxy.go's serveForm) rather than JSON.
var openAIOps = []struct {
	name, op, action string
	form             bool
}{
	{"chat", "chat/completions", "OpenAI/deployments/chat/completions/action", false},
	{"completions", "completions", "OpenAI/deployments/completions/action", false},
	{"embeddings", "embeddings", "OpenAI/deployments/embeddings/action", false},
	{"images", "images/generations", "OpenAI/images/generations/action", false},
	{"speech", "audio/speech", "OpenAI/deployments/audio/action", false},
	{"transcriptions", "audio/transcriptions", "OpenAI/deployments/audio/action", true},
	{"translations", "audio/translations", "OpenAI/deployments/audio/action", true},
}

// openAIRoutes are openAIOps at both paths.
func openAIRoutes() []*route {
	var out []*route
	for _, o := range openAIOps {
		out = append(out, openAIRoute(o.name, o.op, o.action, o.form))
	}
	for _, o := range openAIOps {
		out = append(out, openAIV1Route(o.name, o.op, o.action, o.form))
	}
	return out
}

func openAIRoute(name, op, action string, form bool) *route {
	return &route{name: name, method: http.MethodPost, path: "/openai/deployments/{deployment}/" + op, param: "deployment",
		dataAction: dataActionPrefix + action,
		operation:  "POST /openai/deployments/{deployment-id}/" + op, kinds: openAIKinds,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			if form {
				return g.proxy.serveForm(w, r, c, op, false, true)
			}
			return g.proxy.serve(w, r, c, op, false, true)
		}}
}

// openAIV1Route is op on Azure OpenAI's v1 API: /openai/v1/{op}, the
// deployment named by the body's "model", no api-version required, and
// the key accepted as a bearer (what OpenAI's own clients send with
// base_url …/openai/v1/).
func openAIV1Route(name, op, action string, form bool) *route {
	return &route{name: name + "-v1", method: http.MethodPost, path: "/openai/v1/" + op,
		dataAction: dataActionPrefix + action,
		operation:  "POST /openai/v1/" + op, kinds: openAIKinds, bearerKey: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			if form {
				return g.proxy.serveForm(w, r, c, op, true, false)
			}
			return g.proxy.serve(w, r, c, op, true, false)
		}}
}

// responsesRoutes are the Responses API's operations (responses.go) at
// base: /openai/v1 (Azure OpenAI's v1 API: no api-version, the key
// accepted as a bearer), /openai (the dated API, api-version required, as
// openai-go's and openai-node's Azure clients call it) or
// /openai/deployments/{deployment} (the dated API scoped to a deployment,
// as openai-python's AzureOpenAI(azure_deployment=…) calls it). Creating a
// response, compacting a conversation and counting input tokens name the
// deployment in the body's "model" (or the path); the other operations
// name only the response, and look for it in the path's deployment or in
// all of the account's.
func responsesRoutes(base string) []*route {
	v1 := base == "/openai/v1"
	scoped := strings.Contains(base, "{deployment}")
	name := "responses"
	switch {
	case v1:
		name += "-v1"
	case scoped:
		name += "-deployment"
	}
	action := func(a string) string { return dataActionPrefix + "OpenAI/responses/" + a }
	operation := func(method, path string) string {
		path = strings.Replace(path, "{deployment}", "{deployment-id}", 1)
		return method + " " + strings.Replace(path, "{response}", "{response_id}", 1)
	}
	stored := func(method, suffix, act string) *route {
		path := base + "/responses/{response}" + suffix
		return &route{name: name + "-" + strings.ToLower(method) + strings.ReplaceAll(suffix, "/", "-"),
			method: method, path: path, param: "response", muxOnly: scoped, dataAction: action(act),
			operation: operation(method, path), kinds: openAIKinds, bearerKey: v1,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				return g.proxy.serveStored(w, r, c, method, suffix, !v1)
			}}
	}
	create := func(op string) *route {
		rte := &route{name: name + strings.TrimPrefix(strings.ReplaceAll(op, "/", "-"), "responses"),
			method: http.MethodPost, path: base + "/" + op, dataAction: action("write"),
			operation: operation(http.MethodPost, base+"/"+op), kinds: openAIKinds, bearerKey: v1,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				return g.proxy.serve(w, r, c, op, !scoped, !v1)
			}}
		if scoped {
			rte.param = "deployment"
		}
		return rte
	}
	return []*route{
		create(opResponses),
		create(opResponses + "/compact"),
		create(opResponses + "/input_tokens"),
		stored(http.MethodGet, "", "read"),
		stored(http.MethodDelete, "", "delete"),
		stored(http.MethodPost, "/cancel", "write"),
		stored(http.MethodGet, "/input_items", "read"),
	}
}

// textAnalyticsRoute is a Text Analytics v3.x operation ({version} is v3.0
// or v3.1; the service refuses others).
func textAnalyticsRoute(op string) *route {
	return &route{name: "text-analytics-" + op, method: http.MethodPost, path: "/text/analytics/{version}/" + op, param: "version",
		dataAction: dataActionPrefix + "TextAnalytics/" + op + "/action",
		operation:  "POST /text/analytics/{version}/" + op, kinds: languageKinds,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			if g.opts.TextAnalyticsV3 == nil {
				return errNotFound
			}
			return g.opts.TextAnalyticsV3(w, r)
		}}
}

// routes lists every data-plane operation (see doc.go).
var routes = buildRoutes()

func buildRoutes() []*route {
	out := []*route{
		{name: "language", method: http.MethodPost, path: "/language/:analyze-text",
			dataAction: dataActionPrefix + "Language/analyze-text/action",
			operation:  "POST /language/:analyze-text", kinds: languageKinds,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				if g.opts.Language == nil {
					return errNotFound
				}
				return g.opts.Language(w, r)
			}},
		textAnalyticsRoute("languages"),
		textAnalyticsRoute("sentiment"),
	}
	// Operations of those APIs the built-in service does not perform are
	// authenticated and answered a 404 that says so (Options.Unsupported).
	// The mux routes them: direct dispatch's table stays the hot routes.
	for _, u := range []struct{ method, path, action string }{
		{http.MethodPost, "/language/analyze-text/jobs", "Language/analyze-text/jobs/action"},
		{http.MethodGet, "/language/analyze-text/jobs/{job}", "Language/analyze-text/jobs/read"},
		{http.MethodDelete, "/language/analyze-text/jobs/{job}", "Language/analyze-text/jobs/delete"},
		{http.MethodPost, "/language/analyze-text/jobs/{job}/:cancel", "Language/analyze-text/jobs/action"},
		{http.MethodPost, "/text/analytics/{version}/{operation...}", "TextAnalytics/action"},
		{http.MethodGet, "/text/analytics/{version}/{operation...}", "TextAnalytics/read"},
	} {
		out = append(out, &route{name: "language-unsupported", method: u.method, path: u.path, muxOnly: true,
			dataAction: dataActionPrefix + u.action, operation: u.method + " " + u.path, kinds: languageKinds,
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
				if g.opts.LanguageUnsupported == nil {
					return errNotFound
				}
				return g.opts.LanguageUnsupported(w, r)
			}})
	}
	out = append(out, openAIRoutes()...)
	out = append(out, &route{name: "models-v1", method: http.MethodGet, path: "/openai/v1/models",
		dataAction: dataActionPrefix + "OpenAI/models/read",
		operation:  "GET /openai/v1/models", kinds: openAIKinds, bearerKey: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			return g.proxy.listModels(w, c)
		}})
	out = append(out, &route{name: "model-v1", method: http.MethodGet, path: "/openai/v1/models/{model}", param: "model",
		dataAction: dataActionPrefix + "OpenAI/models/read",
		operation:  "GET /openai/v1/models/{model}", kinds: openAIKinds, bearerKey: true,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			return g.proxy.getModel(w, c)
		}})
	// The dated API's model list: the base models the account can deploy
	// (the server's model catalog), as openai-go's and openai-node's Azure
	// clients call models.list / models.retrieve.
	out = append(out, &route{name: "models", method: http.MethodGet, path: "/openai/models",
		dataAction: dataActionPrefix + "OpenAI/models/read",
		operation:  "GET /openai/models", kinds: openAIKinds,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			return g.proxy.listBaseModels(w, r, "")
		}})
	out = append(out, &route{name: "model", method: http.MethodGet, path: "/openai/models/{model}", param: "model",
		dataAction: dataActionPrefix + "OpenAI/models/read",
		operation:  "GET /openai/models/{model-id}", kinds: openAIKinds,
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, c *call) error {
			return g.proxy.listBaseModels(w, r, c.param)
		}})
	out = append(out, responsesRoutes("/openai/v1")...)
	out = append(out, responsesRoutes("/openai")...)
	out = append(out, responsesRoutes("/openai/deployments/{deployment}")...)
	return append(out, realtimeRoutes()...)
}

// Mount registers the data plane on rt: every route at the path form
// /ai/{account}/… on the root host and at the host forms, and the STS at
// /sts/v1.0/issueToken (or issuetoken) on both. The routes are also served ahead of the
// muxes by rt.Direct (see direct.go); the mux registrations answer what
// Direct leaves to them (unusual paths, other methods: 404 and 405).
func (g *Gateway) Mount(rt *server.Router) {
	for _, rte := range routes {
		h := server.WithSurface(server.SurfaceGateway, server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
			return g.handle(w, r, rte, r.PathValue("account"), r.PathValue(rte.param))
		}))
		hh := server.WithSurface(server.SurfaceGateway, server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
			return g.handle(w, r, rte, server.AccountFromContext(r.Context()), r.PathValue(rte.param))
		}))
		rt.Root.Handle(rte.method+" /ai/{account}"+rte.path, h)
		rt.Account.Handle(rte.method+" "+rte.path, hh)
	}
	for _, stsPath := range stsPaths {
		rt.Root.Handle("POST /ai/{account}"+stsPath, server.WithSurface(server.SurfaceSTS,
			server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
				return g.issueToken(w, r, r.PathValue("account"), true)
			})))
		rt.Account.Handle("POST "+stsPath, server.WithSurface(server.SurfaceSTS,
			server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
				return g.issueToken(w, r, server.AccountFromContext(r.Context()), true)
			})))
		rt.Root.Handle("POST "+stsPath, server.WithSurface(server.SurfaceSTS,
			server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
				return g.issueToken(w, r, "", false)
			})))
	}
	g.mountPreflights(rt) // cors.go
	rt.Direct = g.direct
}

// call is one authenticated request.
type call struct {
	account Account
	kind    CredentialKind
	// slot is the key slot behind a key or STS token; -1 for identities.
	slot      int
	principal gatehouse.Principal
	// param is the value of the route's wildcard segment (the deployment
	// of an OpenAI route), "" if it has none.
	param string
	usage *usageEntry
	// rec wraps the response writer, out is the request to the upstream
	// (parts of call: one allocation, reused).
	rec statusRecorder
	out Outbound
}

// callPool keeps calls between requests: a call is 630 bytes, a fifth of
// what a proxied request allocated, and the garbage collector's work per
// request follows the bytes allocated. A call is handle's alone: nothing
// refers to it once handle has returned (the response's header values,
// which outlive the handler on the HTTP/1.1 fast path, are not in it).
var callPool = sync.Pool{New: func() any { return new(call) }}

func newCall() *call {
	c := callPool.Get().(*call)
	c.slot = -1
	return c
}

func releaseCall(c *call) {
	*c = call{}
	callPool.Put(c)
}

// handle is the request path of every data-plane route: account →
// network rules → authenticate → authorize → rate limit → serve → meter.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, rte *route, name, param string) error {
	g.corsHeaders(w, r)
	requestIDs(w)
	// Data-plane names are lower case; a host name arrives lower-cased,
	// a path segment as the client wrote it.
	acct, ok := g.opts.Accounts.AccountByName(strings.ToLower(name))
	if !ok {
		g.meter.denied(nil, reasonUnknownAccount)
		return errAccessDenied
	}
	if acct.Network != nil {
		if err := g.checkNetwork(r, &acct); err != nil {
			return g.deny(r, &acct, nil, rte.dataAction, err)
		}
	}
	if rte.socketAuth {
		socketCredential(r)
	}
	c, err := g.authenticate(r, &acct, rte.bearerKey)
	defer releaseCall(c)
	if err != nil {
		return g.deny(r, &acct, c, rte.dataAction, err)
	}
	c.account, c.param = acct, param
	if c.kind == CredentialIdentity {
		allowed, err := g.opts.Authz.AuthorizeData(r.Context(), c.principal, rte.dataAction, acct.ID)
		if err != nil {
			return err
		}
		if !allowed {
			return g.deny(r, &acct, c, rte.dataAction, permissionDenied(c.principal.ObjectID, rte))
		}
	}
	if !kindServes(acct.Kind, rte.kinds) {
		return errNotFound
	}
	c.usage = g.meter.entry(&acct, c)
	if err := g.meter.allow(&acct, c); err != nil {
		return g.deny(r, &acct, c, rte.dataAction, err)
	}
	sw := &c.rec
	sw.ResponseWriter = w
	err = rte.serve(g, sw, r, c)
	status := sw.status
	if err != nil {
		status = gatehouse.ErrorStatus(err)
	}
	c.usage.served(r, c.kind, status)
	return err
}

// credentialHolds returns what a long-lived session (a Realtime
// WebSocket) of c, opened by r, is checked with while it lasts: the
// account still exists (the same instance) and its network rules still
// admit the client; its deployment still exists and may still be served
// (the account's outbound restriction); a key, or the STS token minted
// from one, is still the slot's current generation and local auth still
// allowed; an identity still holds action on the account. The checks read
// the same in-memory index and cached decisions as a request does, so a
// regeneration on any node ends the sessions on every node. A decision
// that cannot be made keeps the session.
func (g *Gateway) credentialHolds(r *http.Request, c *call, action string) func(context.Context, string) (bool, string) {
	id, instance := strings.ToLower(c.account.ID), c.account.InternalID
	addr := netacl.RemoteAddr(r.RemoteAddr)
	private := g.opts.PrivateNetworks.Contains(addr)
	kind, slot, principal := c.kind, c.slot, c.principal
	var generation int64
	if slot >= 0 && slot < 2 {
		generation = c.account.Generations[slot]
	}
	return func(ctx context.Context, deployment string) (bool, string) {
		acct, ok := g.opts.Accounts.AccountByID(id)
		if !ok || acct.InternalID != instance {
			return false, "the account was deleted"
		}
		if acct.Network != nil && acct.Network.Check(addr, private) != netacl.Allowed {
			return false, "the account's network rules no longer admit the client"
		}
		if g.opts.Deployments != nil {
			if d, ok := g.opts.Deployments.Deployment(&acct, deployment); !ok {
				return false, "the deployment was deleted"
			} else if d.Unavailable != nil {
				return false, "the deployment may no longer be served"
			}
		}
		if kind == CredentialIdentity {
			if allowed, err := g.opts.Authz.AuthorizeData(ctx, principal, action, acct.ID); err == nil && !allowed {
				return false, "the identity no longer holds " + action
			}
			return true, ""
		}
		if acct.DisableLocalAuth {
			return false, "local authentication was disabled"
		}
		if slot < 0 || slot > 1 || acct.Generations[slot] != generation {
			return false, "the key was regenerated"
		}
		return true, ""
	}
}

// checkNetwork applies acct's network rules to the request's client
// address, before any credential is looked at (as Azure's firewall does).
func (g *Gateway) checkNetwork(r *http.Request, acct *Account) error {
	addr := netacl.RemoteAddr(r.RemoteAddr)
	switch acct.Network.Check(addr, g.opts.PrivateNetworks.Contains(addr)) {
	case netacl.DeniedPublicAccess:
		return deny(errPublicAccessDisabled, reasonPublicAccess)
	case netacl.DeniedFirewall:
		return deny(errFirewall, reasonFirewall)
	}
	return nil
}

func kindServes(kind string, kinds []string) bool {
	if kind == "" {
		return true
	}
	for _, k := range kinds {
		if strings.EqualFold(k, kind) {
			return true
		}
	}
	return false
}

// requestIDs sets the data plane's request id fields: Azure's data planes
// answer with apim-request-id, and Azure OpenAI with x-request-id too
// (openai's clients show it as the request id); both are the request's
// id, the middleware's x-ms-request-id (the slice shared: no allocation).
// An upstream's own x-request-id, when it sends one, replaces it.
func requestIDs(w http.ResponseWriter) {
	h := w.Header()
	if id := h[hdrMSRequestID]; len(id) > 0 {
		h[hdrAPIMRequestID], h[hdrXRequestID] = id, id
	}
}

// Request id fields, canonical.
const (
	hdrMSRequestID   = "X-Ms-Request-Id"
	hdrAPIMRequestID = "Apim-Request-Id"
	hdrXRequestID    = "X-Request-Id"
)

// statusRecorder remembers the status written through it, passing Flush
// through for streaming.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Run flushes usage every FlushInterval, writes audited denials and closes
// upstream connections idle for too long, until ctx is done; then it
// flushes once more and closes the idle connections.
func (g *Gateway) Run(ctx context.Context) {
	go g.auditor.run(ctx)
	uc, _ := g.opts.Transport.(*UpstreamClient)
	t := time.NewTicker(g.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.proxy.sessions.shutdown()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			g.Flush(fctx)
			cancel()
			if uc != nil {
				uc.CloseIdle(true)
			}
			return
		case <-t.C:
			g.Flush(ctx)
			if uc != nil {
				uc.CloseIdle(false)
			}
		}
	}
}

// Flush sends the usage counted since the last flush to the usage sink,
// and writes the denials waiting for the audit log. On failure the counts
// are kept for the next flush.
func (g *Gateway) Flush(ctx context.Context) error {
	if g.opts.Audit != nil {
		g.auditor.drain(ctx)
	}
	return g.meter.flush(ctx, g.opts.Usage, g.logger)
}

// DataActions are the data actions the gateway checks an identity for, one
// each, in route order (the management API's operations catalog lists
// them: what a custom role may grant).
func DataActions() []string {
	var out []string
	for _, r := range routes {
		if r.dataAction != "" && !slices.Contains(out, r.dataAction) {
			out = append(out, r.dataAction)
		}
	}
	return out
}
