package gateway

import (
	"bytes"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"golang.org/x/time/rate"
)

// Deployment quotas (Options.DeploymentQuotas): a deployment's sku
// capacity bounds it as Azure OpenAI's Standard quota does — 1,000 tokens
// per minute (TPM) and 6 requests per minute (RPM) per unit of capacity.
//
// As on Azure, a request is admitted on an estimate of the tokens it
// will use, taken before it is forwarded: its prompt (the body's length
// in bytes / 4, a generous count of the text, but mediaPartTokens for
// each image, audio clip or file sent inline) plus the most output it
// allows (max_tokens, max_completion_tokens or max_output_tokens). When
// the answer's usage (tokens.go) reports more than the estimate — a
// request that set no output limit — the difference is charged too, and
// later requests wait for it. Requests are limited over 10-second windows
// (RPM/6 at once, refilled continuously), tokens over a minute (TPM at
// once). A request over either limit is refused with Azure's 429 ("…
// exceeded token rate limit …" or "… call rate limit …", Retry-After and
// retry-after-ms), and every admitted answer carries
// x-ratelimit-remaining-requests and x-ratelimit-remaining-tokens — the
// gateway's, never the upstream's (isRateLimitHeader). A request whose
// estimate exceeds the tokens per minute outright could never be
// admitted; it is refused before anything else, in a way clients do not
// retry (tooLargeForQuota).
//
// The state is per node, like the accounts' rate limits: n nodes behind a
// balancer admit up to n times the capacity. Transcription forms are
// charged their reported usage only (their body is audio, not text), the
// operations on stored responses nothing.

// Per unit of capacity, a minute.
const (
	tokensPerUnit   = gatehouse.CapacityTokensPerMinute
	requestsPerUnit = gatehouse.CapacityRequestsPerMinute
)

type quotaKey struct{ account, deployment string }

// deploymentQuota is one deployment's limiters.
type deploymentQuota struct {
	capacity         int
	requests, tokens *rate.Limiter
}

func newDeploymentQuota(capacity int) *deploymentQuota {
	rpm, tpm := float64(capacity*requestsPerUnit), float64(capacity*tokensPerUnit)
	return &deploymentQuota{
		capacity: capacity,
		requests: rate.NewLimiter(rate.Limit(rpm/60), max(1, capacity*requestsPerUnit/6)),
		tokens:   rate.NewLimiter(rate.Limit(tpm/60), capacity*tokensPerUnit),
	}
}

// quota returns the limiters of d on c's account, nil when quotas are off.
// A change of capacity starts them afresh. A deployment stored without a
// capacity (before capacities below 1 were refused) counts as 1, never as
// unlimited.
func (p *proxy) quota(c *call, d *Deployment) *deploymentQuota {
	if !p.quotas {
		return nil
	}
	capacity := max(d.Capacity, 1)
	k := quotaKey{c.account.InternalID, d.Name}
	if v, ok := p.limits.Load(k); ok {
		if q := v.(*deploymentQuota); q.capacity == capacity {
			return q
		}
		q := newDeploymentQuota(capacity)
		p.limits.Store(k, q)
		return q
	}
	v, _ := p.limits.LoadOrStore(k, newDeploymentQuota(capacity))
	return v.(*deploymentQuota)
}

// admit charges a request estimated at estimate tokens to the quota of d,
// or refuses it with Azure's 429. op and r name it in the refusal.
func (p *proxy) admit(c *call, d *Deployment, op string, r *http.Request, estimate int) (*deploymentQuota, error) {
	now := p.now()
	q := p.quota(c, d)
	if q == nil {
		return nil, nil
	}
	// First, so that such a request never gets a call-rate 429 inviting a
	// retry that could not succeed either, and is not counted as a call.
	if estimate > q.tokens.Burst() {
		return nil, tooLargeForQuota(estimate, q.tokens.Burst(), d.Name)
	}
	req := q.requests.ReserveN(now, 1)
	if wait := req.DelayFrom(now); wait > 0 {
		req.CancelAt(now)
		return nil, quotaExceeded("call", op, r, wait)
	}
	if estimate > 0 {
		tok := q.tokens.ReserveN(now, estimate)
		if wait := tok.DelayFrom(now); wait > 0 {
			tok.CancelAt(now)
			req.CancelAt(now)
			return nil, quotaExceeded("token", op, r, wait)
		}
	}
	return q, nil
}

// settle charges what the answer used beyond the estimate (no refund
// below it, as on Azure).
func (q *deploymentQuota) settle(now time.Time, estimate int, used int64) {
	if extra := used - int64(estimate); extra > 0 {
		q.tokens.ReserveN(now, int(min(extra, int64(q.tokens.Burst()))))
	}
}

// headers sets the x-ratelimit-remaining-* headers of an admitted answer.
func (q *deploymentQuota) headers(w http.ResponseWriter, now time.Time) {
	h := w.Header()
	h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(max(0, int(math.Floor(q.requests.TokensAt(now))))))
	h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(max(0, int(math.Floor(q.tokens.TokensAt(now))))))
}

// quotaExceeded is Azure OpenAI's 429 for a deployment over its quota.
func quotaExceeded(kind, op string, r *http.Request, wait time.Duration) error {
	ms := int64((wait + time.Millisecond - 1) / time.Millisecond)
	secs := (ms + 999) / 1000
	version, _ := queryValue(r.URL.RawQuery, "api-version")
	if version == "" {
		version = "v1"
	}
	return gatehouse.Errorf(http.StatusTooManyRequests, "429",
		"Requests to the %s Operation under Azure OpenAI API version %s have exceeded %s rate limit of your current OpenAI S0 pricing tier. Please retry after %d second%s. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
		azureOperation(op), clipString(version, 32), kind, secs, plural(secs)).
		WithHeader("Retry-After", strconv.FormatInt(secs, 10)).
		WithHeader("retry-after-ms", strconv.FormatInt(ms, 10))
}

// neverRetryAfter is the wait Azure OpenAI names ("Please retry after
// 86400 seconds") when one request asks for more tokens than its
// deployment's tokens per minute.
const neverRetryAfter = 24 * time.Hour

// tooLargeForQuota refuses a request whose estimate exceeds the
// deployment's tokens per minute, which no wait cures. It is Azure's 429
// for it, with its Retry-After of a day: Go's azcore and openai-go do not
// retry when Retry-After exceeds their longest delay (60 s by default),
// and x-should-retry: false stops the OpenAI SDKs (Python, Node, Go)
// before they look at the status. A retryable 429 with a short
// Retry-After would have the clients retry the same request for ever.
func tooLargeForQuota(estimate, tpm int, deployment string) error {
	return gatehouse.Errorf(http.StatusTooManyRequests, "429",
		"This request would use about %d tokens (its prompt and its max_tokens), more than the %d tokens per minute of deployment '%s': it cannot be served at any time. Lower max_tokens, shorten the prompt or raise the deployment's capacity.",
		estimate, tpm, deployment).
		WithHeader("Retry-After", strconv.Itoa(int(neverRetryAfter/time.Second))).
		WithHeader("retry-after-ms", strconv.FormatInt(neverRetryAfter.Milliseconds(), 10)).
		WithHeader("x-should-retry", "false")
}

// azureOperation is the operation id Azure names in quota refusals.
func azureOperation(op string) string {
	switch op {
	case "chat/completions":
		return "ChatCompletions_Create"
	case "completions":
		return "Completions_Create"
	case "embeddings":
		return "Embeddings_Create"
	case "images/generations":
		return "ImageGenerations_Create"
	case "audio/speech":
		return "AudioSpeech_Create"
	case "audio/transcriptions":
		return "Transcriptions_Create"
	case "audio/translations":
		return "Translations_Create"
	case realtimeOp:
		return "Realtime_Connect"
	}
	return "Responses_Create"
}

// mediaPartTokens is the admission estimate of one image, audio clip or
// file sent inline as base64 (a chat image_url or a Responses
// input_image with a data: URL, input_audio's data, file_data). Its
// bytes say nothing of its tokens — a 1 MB PNG is not 250,000 tokens but,
// as Azure bills images, 85 at detail "low" and 85 plus 170 per 512-pixel
// tile at "high" (at most a few thousand) — and counted as text they made
// one large image a 429 it could never get past. So each counts Azure's
// price of a low-detail image, the least any image costs; what the part
// really used is charged after the answer, from its usage (settle).
const mediaPartTokens = 85

// estimateTokens is the admission estimate of a JSON body: its length / 4
// less its inline media, mediaPartTokens for each of those, and the
// largest output limit it sets at its top level.
func estimateTokens(body []byte) int {
	n, parts := len(body), 0
	if bytes.Contains(body, []byte(";base64,")) || bytes.Contains(body, []byte(`data"`)) {
		size, k := inlineMedia(body)
		n, parts = n-size, k
	}
	return (n+3)/4 + parts*mediaPartTokens + maxOutputTokens(body)
}

// inlineMedia returns the bytes and the number of the base64 media
// strings in a JSON body (valid JSON: validJSON): strings that are a
// base64 data: URL, or the base64 value of a "data" or "file_data"
// member (input_audio's data is bare base64).
func inlineMedia(b []byte) (size, parts int) {
	var name []byte // the member name the next value belongs to
	for i := 0; i < len(b); {
		switch b[i] {
		case '"':
			end := skipString(b, i)
			if j := skipWS(b, end); j < len(b) && b[j] == ':' {
				name, i = b[i+1:max(i+1, end-1)], j+1
				continue
			}
			if isInlineMedia(name, b[i+1:max(i+1, end-1)]) {
				size += end - i
				parts++
			}
			name, i = nil, end
		case '{', '[', ',':
			name = nil
			i++
		default:
			i++
		}
	}
	return size, parts
}

// isInlineMedia reports whether the string s, the value of member name,
// is base64 media. A short "data" string is left as text: it weighs
// little either way.
func isInlineMedia(name, s []byte) bool {
	const probe = 256
	if bytes.HasPrefix(s, []byte("data:")) {
		return bytes.Contains(s[:min(len(s), probe)], []byte(";base64,"))
	}
	if string(name) != "data" && string(name) != "file_data" || len(s) < probe {
		return false
	}
	for _, c := range s[:probe] {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' || c == '\\') {
			return false
		}
	}
	return true
}

// maxOutputTokens returns the top-level max_tokens, max_completion_tokens
// or max_output_tokens of a JSON object (the largest, if several; 0 when
// none is a non-negative integer).
func maxOutputTokens(b []byte) int {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0
	}
	best := 0
	for i++; ; {
		if i = skipWS(b, i); i >= len(b) || b[i] == '}' {
			return best
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return best
		}
		end := skipString(b, i)
		if end > len(b) {
			return best
		}
		name := b[i+1 : end-1]
		if i = skipWS(b, end); i >= len(b) || b[i] != ':' {
			return best
		}
		if i = skipWS(b, i+1); i >= len(b) {
			return best
		}
		switch string(name) {
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			v, j := 0, i
			for ; j < len(b) && b[j] >= '0' && b[j] <= '9' && v < 1<<30; j++ {
				v = v*10 + int(b[j]-'0')
			}
			if j > i && v > best {
				best = v
			}
		}
		i = skipValue(b, i)
	}
}
