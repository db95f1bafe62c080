// Package gateway is the AI data plane: it authenticates a request to an
// AI account by subscription key, STS token or identity token, authorizes
// it, rate-limits and meters it, and serves it with a built-in service
// (Language) or by forwarding it to the OpenAI-compatible upstream of a
// deployment. It also is the STS that trades a key for a 10-minute token.
//
// Nothing on the request path touches the database: accounts, key hashes,
// deployments, verified tokens and role decisions are in-memory views kept
// current by the change feed, behind the small interfaces this package
// declares (Accounts, Deployments, TokenVerifier, Authorizer). Usage and
// audited denials leave through background loops (UsageSink, Auditor).
//
// Routes (account-relative paths are served at https://H/ai/{account}/…
// and at https://{account}.cognitiveservices.H/… and {account}.openai.H):
//
//	Route                                                Data action (identity)                                          Kinds
//	POST /language/:analyze-text                         …/accounts/Language/analyze-text/action                        TextAnalytics, CognitiveServices, AIServices
//	POST /text/analytics/{v3.0|v3.1}/languages           …/accounts/TextAnalytics/languages/action                      same
//	POST /text/analytics/{v3.0|v3.1}/sentiment           …/accounts/TextAnalytics/sentiment/action                      same
//	POST /openai/deployments/{d}/chat/completions        …/accounts/OpenAI/deployments/chat/completions/action          OpenAI, AIServices
//	POST /openai/deployments/{d}/completions             …/accounts/OpenAI/deployments/completions/action               OpenAI, AIServices
//	POST /openai/deployments/{d}/embeddings              …/accounts/OpenAI/deployments/embeddings/action                OpenAI, AIServices
//	POST /openai/deployments/{d}/images/generations      …/accounts/OpenAI/images/generations/action                    OpenAI, AIServices
//	POST /openai/deployments/{d}/audio/speech            …/accounts/OpenAI/deployments/audio/action                     OpenAI, AIServices
//	POST /openai/deployments/{d}/audio/{transcriptions|translations}   the same; multipart/form-data (form.go)
//	POST /openai/v1/{each of the above}                  as the deployment routes; the deployment is the body's "model",
//	                                                     no api-version, and a non-JWT bearer is taken as the key (OpenAI's own clients)
//	GET  /openai/v1/models                               …/accounts/OpenAI/models/read: the deployments, as OpenAI model objects
//	GET  /openai/v1/models/{d}                           the same: one deployment (404 DeploymentNotFound)
//	GET  /openai/models?api-version=, /openai/models/{id} the same action: the base models the account can
//	                                                     deploy (Options.Models, the server's model catalog), ids
//	                                                     {name}-{version}, Azure's model objects (404 NotFound)
//	POST /openai/v1/responses, /openai/responses?api-version   …/accounts/OpenAI/responses/write; the deployment is the body's "model"
//	     or the path's: /openai/deployments/{d}/responses… (every operation below too)
//	     (and …/responses/compact, …/responses/input_tokens)    (the Responses API, responses.go)
//	GET|DELETE …/responses/{id}, POST …/{id}/cancel,      …/OpenAI/responses/read|delete|write: asked of the account's upstreams
//	GET …/{id}/input_items                               in turn; the first that has the response answers
//	GET  /openai/realtime?api-version&deployment=d       …/accounts/OpenAI/deployments/realtime/action: a WebSocket joined to
//	     (or /openai/deployments/{d}/realtime?api-version),
//	     /openai/v1/realtime?model=d                     {upstream}/v1/realtime (the Realtime API, realtime.go); the credential
//	                                                     may also be in the query or an openai-insecure-api-key.* subprotocol
//	POST /sts/v1.0/issueToken (at H and every account)   key only
//
// The request path:
//
//	account by data-plane name (unknown → 401, so names cannot be probed)
//	→ network rules for the client address, unless it is in PrivateNetworks
//	  (netacl): publicNetworkAccess Disabled → 403 "Public access is disabled…",
//	  networkAcls Deny without a matching IP rule → 403 "…Virtual Network/Firewall rules."
//	→ authenticate, first credential found wins:
//	    Ocp-Apim-Subscription-Key / api-key: SHA-256 → key index → must be this account's,
//	        refused 403 AuthenticationTypeDisabled under disableLocalAuth
//	    Bearer, verified once for the STS, Cognitive Services and ai.azure.com audiences:
//	        STS token   → account claim = this account, slot generation = current generation
//	                      (regenerating a key revokes the tokens minted from it, on every node)
//	        identity    → principal (oid) from the token
//	→ authorize identities: the data action of the route on the account (cached decision)
//	→ route serves the account's kind (else 404)
//	→ rate limits: per credential (key slot or principal), then per account → 429 + Retry-After
//	→ with Options.DeploymentQuotas, a proxied request's deployment quota (its sku capacity:
//	  requests and estimated tokens, quota.go) → Azure OpenAI's 429; an admitted answer's
//	  x-ratelimit-* fields are then the gateway's, never the upstream's
//	→ serve → count usage and metrics (account, credential kind, status)
//
// Errors are Azure's (azure-wire.md §1.3): 401 {"code":"401"} "Access
// denied due to invalid subscription key or wrong API endpoint…" for every
// credential that is missing, wrong, foreign, expired, tampered or revoked
// (the client learns nothing about which); 401 PermissionDenied naming the
// missing data action; 403 AuthenticationTypeDisabled; 403 {"code":"403"}
// for the network rules; 404
// DeploymentNotFound; 429 with Retry-After and retry-after-ms; 413 for
// oversized bodies; 400 for malformed JSON. Denials are counted by reason
// and written to the audit log at a bounded rate; successes are counted,
// with the tokens the upstream reports in its answer's usage (tokens.go).
//
// The proxy forwards each operation to {upstream}/v1/{operation}: a JSON
// body is checked and its "model" set to the deployment's upstream model
// (every duplicate too), a form's "model" field likewise; only
// Content-Type, Accept, Accept-Encoding, User-Agent and OpenAI-Beta go
// along, plus X-Request-Id and the upstream's own credential — never the
// client's key or token. Responses stream through unbuffered (server-sent
// events are flushed per read). Upstream failures become Azure-shaped
// errors: 504 on timeout, 502 when unreachable, when the upstream refuses
// the deployment's credential or answers 500. A deployment whose credential
// cannot be had now (Deployment.Unavailable: a Key Vault reference the
// account may not read) answers that error and forwards nothing.
//
// Upstreams are reached with UpstreamClient, a keep-alive HTTP/1.1 client
// that writes the request and reads the response on the handler's own
// goroutine (net/http's Transport hands each request to two goroutines of
// the connection, which on a proxy's hot path costs more than the
// forwarding). A request on a reused connection the upstream had already
// closed is retried once on a new one; nothing else is retried. The proxy
// takes the response head as the client parsed it (one string per
// response) straight into the client's header, writes a Content-Length
// body from the connection's buffer, and registers a cancellation watcher
// only for an upstream still silent after pollInterval.
//
// The hot path's costs, per proxied request over HTTP/1.1 (bench/gateway.sh
// under wrk, 2 cores, loopback, TLS 1.3 to the client; perf profiles of
// the node). HTTP/1.1 data-plane requests are served by server/h1, not by
// net/http's server: on the connection's goroutine, with no per-request
// background read, two writes and under four reads per request (the same
// syscalls as bench/floor, a bare Go key-checking TLS proxy). Routes are
// matched by direct.go, not ServeMux. Of the node's ~30 µs per request
// (nginx behind TLS: ~25 µs; bench/floor: ~21 µs, in the same runs), the
// kernel is ~20 µs — the two loopback writes carry the receivers' softirq
// work and wake-ups, ~2 µs more than the floor's, most of it context
// switching — and user space ~10-15 µs against the floor's ~5: about 4 µs
// is the product's per-request work (middleware, routing, authentication,
// metering, deployment lookup, body check and model rewrite; an
// experiment that served the fast path with only the upstream client and
// forward measured 26.8 against 30.9 µs) and the rest is spread over h1's
// request building (http.Request, header map, context), the response
// head, the upstream client's pool, deadlines and head parsing, and
// allocation — no item above ~0.5 µs. Every socket of the node (the
// listener's connections, the upstream client's) reads and writes with
// raw system calls (internal/rawconn): made as ordinary ones, each let Go's
// sysmon retake the P of a call that outlasted its 20 µs tick — frequent
// when the client and the upstream compete for the cores — and so woke a
// thread per retake and kept sysmon polling every 20 µs; that was about a
// tenth of the node's CPU (0.45 context switches per request against
// nginx's 0.23; with raw calls, 0.22). The price is in the tail: a thread
// preempted in the middle of a raw call keeps its P, so on a saturated
// box p99 rises by ~5-15% (serve --raw-syscalls=false trades back). The
// own part is kept allocation-light (six allocations, ~650 bytes per
// request in the node: the head string, the request's context and the
// middleware's state in it, the upstream response head, the response
// fields' values and crypto/tls's reader; the call comes from a pool, and
// h1 reuses the Request, its header maps and the ResponseWriter from one
// request of a connection to the next, which a handler may therefore not
// keep — see server/h1's doc).
//
// On a machine too noisy to time a change of a few percent, count it:
// bench/gateway.sh --instructions runs the node (and BASE_BIN's) and nginx
// under valgrind's cachegrind and prints user-space instructions per
// request, the same from run to run within ~0.2% (1% between runs: the
// collector's cycles are whole). In November 2026: 67,000 a request
// (nginx-TLS: 45,700, of which ~18,000 in OpenSSL), then 59,750 after the
// cheap field names, values and writes of internal/httpfield, the one-pass
// head scan, the pooled call and smaller cuts (December 2026: 64,060 before
// profile-guided optimization, 61,150 with it, 60,000 once the upstream
// pool's key was made per deployment and deployment views were found
// without the LRU's lock — with the masking of an echoed credential in
// every answer, +300, in it — and 57,100 once the body check found the
// model members as it validated (no second scan), the meter's and token
// counters' lookups went through a front table, an upstream exchange read
// the clock once, and h1 checked the target, field names and path eight
// bytes at a time; 54,000 once h1 reused a connection's request, header
// maps and response writer: four allocations and ~1.7 KB fewer a request,
// mostly the collector's work); the remaining gap is spread
// (header maps ~3,000, allocation and collection ~2,500, JSON body check,
// model rewrite and token scan ~2,500, h1's request building ~3,000). A
// count is a proxy: it misses cache misses and the kernel, and cheap
// instructions weigh as much as dear ones (a sync.Map lookup of a struct
// key is ~350 instructions but ~13 ns more than a typed map's), so a
// change is judged by both. Where the time goes (December 2026, one
// loopback network namespace, perf stat on the system call tracepoints and
// /proc's user and system time, the three loaded in turn): the node makes
// 5.2 system calls a request (2 writes, 2.9 reads, 0.2 epoll_pwait),
// nginx-TLS 6.2 and bench/floor 6.5, and the node's kernel time is no more
// than theirs (22-26 µs a request; nginx 27-31, floor 22-28). The gap is in
// user space: the node 22-27 µs, nginx 17-18, floor 14-17. The read of
// the 2.9 that finds the client's next request not yet there could go the
// way of the upstream's (written from inside a raw read) only if no byte
// of a next request could have arrived before the wait was armed, which a
// pipelining client breaks (its request would sit unseen until the idle
// timeout), and nginx makes that read too. Counted in the steady state
// at wrk's 64 connections (bench/instructions.sh, ICACHE=1, December
// 2026), the node executes 55,300 instructions a request under valgrind
// (~4,000 of them the emulated SHA-256 of the key: ~51,000 natively)
// against nginx-TLS's 45,500, with 632 L1 data misses against 374, 8
// last-level against 0 and 772 mispredicted branches against 631: more
// work and worse locality, neither from one place. What a second P
// costs is larger than any one item: with GOMAXPROCS=1 the node's user
// time falls from 20.6 to 17.0 µs a request, nginx-TLS's level (the
// scheduler's wake-ups and spinning, and connections moving between the
// cores' caches; not the lookups' shared locks: a build without the
// three RLocks of a request's account, key and deployment lookups and
// h1's request counter served 1.003 as much), but one P holds every raw
// system call, and throughput falls by a tenth. So a node can run as
// workers, as nginx does (serve --workers, cmd/gatehouse's workers.go):
// processes of one P each on one port (SO_REUSEPORT), each a node of the
// PostgreSQL cluster. On 2 cores, two workers served 1.10 and 1.15 times
// the requests of one process of two Ps in two interleaved runs (CPU a
// request 42-43 against 48-55 µs, p99 8.7-9.0 against 10.0-10.6 ms;
// without raw system calls the workers lost that lead), and 0.96 and 1.03
// times nginx-TLS's in two runs of ../shared/bench (8 and 5 rounds; p99
// 1.02 times nginx's). A listening socket shared by inheritance instead
// spread wrk's 64 connections as badly as 49 to 15; the kernel's hash of
// SO_REUSEPORT gave 25-39 at worst.
// A verified token costs a seeded hash of it, a cache hit and a comparison
// of its signature (~0.5 µs more than a key in BenchmarkAuthReal — it was
// ~1 µs with a SHA-256 of the token — plus carrying the longer header:
// decrypting, scanning and validating ~0.7-1.3 KB more: bench/
// instructions.sh counted 61,700 instructions a key request — 4,500 of
// them valgrind's AVX2 SHA-256 of the key, a few hundred natively — and,
// with ICRED=sts|identity, 64,200 an STS one and 64,600 an identity one,
// in December 2026), an identity's decision one more
// lookup (app's adapter keeps decisions per identity, action and account,
// stamped with authz's generation). HTTP/2 (net/http) costs more per
// request than the HTTP/1.1 fast path but stays the preferred protocol for
// Go clients: they keep 2 idle connections per host by default, and over
// HTTP/1.1 they would reconnect (a TLS handshake per request) under
// concurrency.
//
// Realtime sessions (realtime.go) are WebSockets: the upgrade request takes
// the path above, the upstream's WebSocket is opened with its own key
// before the client's is accepted, and then bytes pass unchanged both ways
// while a read-only frame scanner meters response.done's usage. An open
// session is checked every 2 seconds against what admitted it
// (Gateway.credentialHolds: key generation, local auth, network rules, the
// identity's data action, the account instance, its deployment still there
// and servable — the account's outbound restriction, a Key Vault
// credential still readable) and ends when that no longer holds, or when
// the gateway stops.
//
// Browsers (cors.go): a preflight on any data-plane route or the STS is
// answered 204 for an origin Options.CORS allows (default "*", as Azure AI
// services), and every answer to such an origin — refusals included —
// carries Access-Control-Allow-Origin and exposes its headers; no cookie is
// ever read, so no credentials mode is offered.
//
// Usage counters, rate limiters and pre-resolved metric counters live in
// one entry per (account, key slot or principal), found with one sync.Map
// lookup per request; the usage flush (Run, Flush) hands the counts to the
// accounts service and keeps them when that fails.
package gateway
