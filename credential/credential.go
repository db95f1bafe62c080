// Package credential lets Go programs use a Gatehouse subscription key
// through the STS: KeyCredential is an azcore.TokenCredential that trades
// the key for 10-minute tokens at {endpoint}/sts/v1.0/issueToken and
// refreshes them before they expire. Any Azure SDK client, and openai-go's
// azure.WithTokenCredential, can then send "Authorization: Bearer" instead
// of the key itself — the key stays in one place, and a token that leaks
// is worth ten minutes.
//
// The flow of GetToken:
//
//	cached token, before its refresh time      → returned, no request
//	no token, or past its refresh time         → one STS request (single flight:
//	                                             concurrent callers wait for it)
//	refresh failed, cached token still valid   → the cached token (retried on the next call)
//	refresh failed, nothing valid              → the error (*azcore.ResponseError for HTTP errors)
//
// The refresh time is half-way through the token's life (5 minutes for
// the STS's 10), and is reported as AccessToken.RefreshOn so azcore's
// bearer policy asks again at the same moment.
package credential

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

const (
	moduleName    = "gatehouse/credential"
	moduleVersion = "v1.0.0"
	stsPath       = "/sts/v1.0/issueToken"
	// fetchTimeout bounds one STS request (its retries included).
	fetchTimeout = 30 * time.Second
	// minValid is how much life a cached token must have left to be
	// returned after a failed refresh.
	minValid = 30 * time.Second
)

// Options configures a KeyCredential.
type Options struct {
	// ClientOptions configure the pipeline to the STS (transport, retries,
	// logging). The key header is never logged: azcore redacts headers it
	// does not know.
	azcore.ClientOptions
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// KeyCredential is an azcore.TokenCredential backed by a subscription key.
// It is safe for concurrent use.
type KeyCredential struct {
	url string
	key string
	pl  runtime.Pipeline
	now func() time.Time

	mu     sync.Mutex
	tok    azcore.AccessToken
	flight *flight
}

// flight is one STS request in progress; waiters block on done.
type flight struct {
	done chan struct{}
	tok  azcore.AccessToken
	err  error
}

// NewKeyCredential returns a credential for the account at endpoint (its
// data-plane URL as the management API reports it in properties.endpoint,
// e.g. https://gatehouse.example/ai/myaccount/ or
// https://myaccount.cognitiveservices.gatehouse.example/; the server root
// works too, where the key alone names the account). The endpoint must be
// https: the key is a secret.
func NewKeyCredential(endpoint, key string, opts *Options) (*KeyCredential, error) {
	if key == "" {
		return nil, errors.New("credential: key is empty")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("credential: endpoint %q is not an absolute URL", endpoint)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("credential: endpoint %q must use https", endpoint)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/") + stsPath
	u.RawPath = ""
	if opts == nil {
		opts = &Options{}
	}
	c := &KeyCredential{url: u.String(), key: key, now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	co := opts.ClientOptions
	co.Logging.AllowedHeaders = nil // never allow the key header into logs
	c.pl = runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{}, &co)
	return c, nil
}

// GetToken returns an STS token. Scopes are ignored: an STS token is good
// for the account's data plane, whatever the client asks for.
func (c *KeyCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	if c.tok.Token != "" && c.now().Before(c.tok.RefreshOn) {
		tok := c.tok
		c.mu.Unlock()
		return tok, nil
	}
	f := c.flight
	if f == nil {
		// The request runs on its own: a caller that gives up does not
		// cancel it for the others waiting on it.
		f = &flight{done: make(chan struct{})}
		c.flight = f
		go c.run(context.WithoutCancel(ctx), f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return azcore.AccessToken{}, ctx.Err()
	}
	if f.err == nil {
		return f.tok, nil
	}
	c.mu.Lock()
	tok := c.tok
	c.mu.Unlock()
	if tok.Token != "" && c.now().Add(minValid).Before(tok.ExpiresOn) {
		return tok, nil // static stability: the old token still works
	}
	return azcore.AccessToken{}, f.err
}

// run performs flight f and publishes its result.
func (c *KeyCredential) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	f.tok, f.err = c.fetch(ctx)
	cancel()
	c.mu.Lock()
	if f.err == nil {
		c.tok = f.tok
	}
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// fetch asks the STS for a token.
func (c *KeyCredential) fetch(ctx context.Context) (azcore.AccessToken, error) {
	req, err := runtime.NewRequest(ctx, http.MethodPost, c.url)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Raw().Header.Set("Ocp-Apim-Subscription-Key", c.key)
	req.Raw().Header.Set("Accept", "application/jwt, text/plain")
	resp, err := c.pl.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("credential: STS request: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return azcore.AccessToken{}, runtime.NewResponseError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("credential: STS response: %w", err)
	}
	raw := strings.TrimSpace(string(body))
	now := c.now()
	iat, exp, err := lifetime(raw)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("credential: the STS answer is not a token: %w", err)
	}
	if !iat.Before(exp) || !exp.After(now) {
		return azcore.AccessToken{}, errors.New("credential: the STS returned an expired token (check the clocks)")
	}
	// Refresh half-way through the token's life, measured on the local
	// clock (the server's iat may be skewed).
	life := exp.Sub(iat)
	refresh := now.Add(life / 2)
	if refresh.After(exp) {
		refresh = exp
	}
	return azcore.AccessToken{Token: raw, ExpiresOn: exp, RefreshOn: refresh}, nil
}

// lifetime reads iat and exp from a JWT without verifying it (the client
// trusts the server it asked; the server verifies the token).
func lifetime(raw string) (iat, exp time.Time, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return iat, exp, errors.New("not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return iat, exp, errors.New("payload is not base64url")
	}
	var c struct {
		Iat, Exp json.Number
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return iat, exp, errors.New("payload is not JSON")
	}
	e, err1 := c.Exp.Int64()
	i, err2 := c.Iat.Int64()
	if err1 != nil || err2 != nil {
		return iat, exp, errors.New("no numeric iat and exp")
	}
	return time.Unix(i, 0), time.Unix(e, 0), nil
}

var _ azcore.TokenCredential = (*KeyCredential)(nil)
