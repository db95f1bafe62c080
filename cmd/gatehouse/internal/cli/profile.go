package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// A profile is what `gatehouse login` stores: which server, which CA to
// trust, and the credential. It lives in $GATEHOUSE_CONFIG_DIR/profile.json
// (default ~/.gatehouse), mode 0600 in a 0700 directory, like az's
// credential files. A person's password is never stored: their session is
// (a refresh token, rotated at every use, and the access tokens it got;
// session.go).
type profile struct {
	// Server is the authority and management URL, https://H.
	Server string `json:"server"`
	// PublicHost is the server's public host (its --host) when Server
	// names it otherwise, e.g. by IP address: the names under it (vaults'
	// {vault}.vault.H, their token resource https://vault.H) are the
	// public host's (found at login from the authority's metadata).
	PublicHost string `json:"publicHost,omitempty"`
	// CAFile is the CA certificate to trust ("" = the system roots).
	CAFile   string `json:"caFile,omitempty"`
	TenantID string `json:"tenantId"`
	// Kind is "servicePrincipal" or "user".
	Kind            string `json:"kind"`
	ClientID        string `json:"clientId,omitempty"`
	ClientSecret    string `json:"clientSecret,omitempty"`
	CertificateFile string `json:"certificateFile,omitempty"`
	UserName        string `json:"userName,omitempty"`
	// Tokens holds a person's access tokens by resource.
	Tokens map[string]cachedToken `json:"tokens,omitempty"`
	// RefreshToken is a person's session: it gets access tokens for any
	// resource when the cached ones run out.
	RefreshToken string `json:"refreshToken,omitempty"`
	// SubscriptionID is the default subscription for management commands
	// (the first one the server listed at login, if any).
	SubscriptionID string `json:"subscriptionId,omitempty"`

	// env is where the profile was loaded from (a refreshed session is
	// saved back there).
	env Env
}

type cachedToken struct {
	AccessToken string    `json:"accessToken"`
	ExpiresOn   time.Time `json:"expiresOn"`
}

const (
	kindServicePrincipal = "servicePrincipal"
	kindUser             = "user"
)

// Token resources the CLI asks for.
const (
	resourceManagement = "https://management.azure.com/"
	resourceGraph      = "https://graph.microsoft.com"
)

// configDir returns $GATEHOUSE_CONFIG_DIR, or ~/.gatehouse.
func configDir(env Env) (string, error) {
	if d, ok := env.LookupEnv("GATEHOUSE_CONFIG_DIR"); ok && d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for ~/.gatehouse (set GATEHOUSE_CONFIG_DIR): %w", err)
	}
	return filepath.Join(home, ".gatehouse"), nil
}

func profilePath(env Env) (string, error) {
	dir, err := configDir(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "profile.json"), nil
}

// errNotLoggedIn is returned by loadProfile when there is no profile.
var errNotLoggedIn = errors.New("not logged in: run `gatehouse login` first")

func loadProfile(env Env) (*profile, error) {
	path, err := profilePath(env)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	p := profile{env: env}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v): run `gatehouse login` again", path, err)
	}
	return &p, nil
}

// save writes the profile atomically with mode 0600.
func (p *profile) save(env Env) error {
	path, err := profilePath(env)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".profile-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// httpClient trusts the profile's CA (or the system roots).
func (p *profile) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", p.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// apiClient makes authenticated calls to the server for one token
// resource. Other commands build theirs with newAPIClient (management
// API) or newGraphClient (the directory's Graph subset).
type apiClient struct {
	// Profile is the signed-in profile (read-only for callers).
	Profile  *profile
	base     string
	resource string
	http     *http.Client
	env      Env
	token    string
}

// newAPIClient returns a client of the management API (token audience
// https://management.azure.com/) for the signed-in profile. Errors:
// errNotLoggedIn, an unreadable CA file.
func newAPIClient(cmd *cobra.Command, env Env) (*apiClient, error) {
	return newClientFor(cmd, env, resourceManagement)
}

// newGraphClient returns a client of the Graph subset.
func newGraphClient(cmd *cobra.Command, env Env) (*apiClient, error) {
	return newClientFor(cmd, env, resourceGraph)
}

func newClientFor(cmd *cobra.Command, env Env, resource string) (*apiClient, error) {
	p, err := loadProfile(env)
	if err != nil {
		return nil, err
	}
	hc, err := p.httpClient()
	if err != nil {
		return nil, err
	}
	c := &apiClient{Profile: p, base: strings.TrimRight(p.Server, "/"), resource: resource, http: hc, env: env}
	if resource == resourceManagement && p.SubscriptionID == "" && cmd != nil {
		c.findSubscription(cmd.Context())
	}
	return c, nil
}

// findSubscription gives a profile signed in without a subscription (its
// principal held no role in one then) the first one the management API
// lists now, and keeps it: a role granted after the login is found by the
// next command, as az finds it on its next login. Failing, the command
// goes on without one (and asks for --subscription where it needs one).
func (c *apiClient) findSubscription(ctx context.Context) {
	var subs struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
		} `json:"value"`
	}
	if err := c.Do(ctx, "GET", "/subscriptions?api-version=2022-12-01", nil, &subs); err != nil || len(subs.Value) == 0 {
		return
	}
	c.Profile.SubscriptionID = subs.Value[0].SubscriptionID
	_ = c.Profile.save(c.env) // a profile that cannot be saved is found again next time
}

// APIError is a non-2xx answer, with the Azure error's code and message.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("(%s) %s", e.Code, e.Message)
}

// isNotFound reports whether err is a 404 from the server.
func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// Do sends method path (relative to the server, with its query) with body
// (nil; []byte sent as is; anything else JSON-encoded) and decodes a JSON
// answer into out (nil = discard; *[]byte = raw). Non-2xx answers become
// *APIError.
func (c *apiClient) Do(ctx context.Context, method, path string, body, out any) error {
	if c.token == "" {
		tok, err := c.Profile.tokenFor(ctx, c.http, c.resource)
		if err != nil {
			return err
		}
		c.token = tok
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gatehouse-cli/"+Version)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseAPIError(resp.StatusCode, data)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func parseAPIError(status int, data []byte) error {
	var body struct {
		Error json.RawMessage `json:"error"`
		// OAuth shape.
		Description string `json:"error_description"`
		// App Service shape.
		Message string `json:"message"`
	}
	e := &APIError{Status: status}
	if json.Unmarshal(data, &body) == nil {
		var azure struct{ Code, Message string }
		var oauth string
		switch {
		case json.Unmarshal(body.Error, &azure) == nil && azure.Code != "":
			e.Code, e.Message = azure.Code, azure.Message
		case json.Unmarshal(body.Error, &oauth) == nil:
			e.Code, e.Message = oauth, firstLine(body.Description)
		default:
			e.Message = body.Message
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// tokenFor returns an access token for resource.
func (p *profile) tokenFor(ctx context.Context, hc *http.Client, resource string) (string, error) {
	switch p.Kind {
	case kindServicePrincipal:
		tok, _, err := p.clientCredentials(ctx, hc, resource)
		return tok, err
	case kindUser:
		if t, ok := p.Tokens[resource]; ok && time.Until(t.ExpiresOn) >= time.Minute {
			return t.AccessToken, nil
		}
		if p.RefreshToken == "" {
			return "", fmt.Errorf("the sign-in of %s has expired: run `gatehouse login -u %s` again%w", p.UserName, p.UserName, errSessionEnded)
		}
		return p.refresh(ctx, hc, resource) // session.go
	}
	return "", errNotLoggedIn
}

// tokenEndpoint is the tenant's v2 token endpoint.
func (p *profile) tokenEndpoint() string {
	return strings.TrimRight(p.Server, "/") + "/" + p.TenantID + "/oauth2/v2.0/token"
}

// clientCredentials gets a token with the service principal's secret or
// certificate.
func (p *profile) clientCredentials(ctx context.Context, hc *http.Client, resource string) (string, time.Time, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {p.ClientID},
		"scope": {strings.TrimRight(resource, "/") + "/.default"}}
	if p.CertificateFile != "" {
		assertion, err := certificateAssertion(p.CertificateFile, p.ClientID, p.tokenEndpoint())
		if err != nil {
			return "", time.Time{}, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	} else {
		form.Set("client_secret", p.ClientSecret)
	}
	return postToken(ctx, hc, p.tokenEndpoint(), form)
}

// postToken posts a token request and returns the token and its expiry.
func postToken(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (string, time.Time, error) {
	tr, err := postTokenRequest(ctx, hc, endpoint, form)
	return tr.AccessToken, tr.ExpiresOn, err
}

// tokenResponse is what the token endpoint answered.
type tokenResponse struct {
	AccessToken  string
	ExpiresOn    time.Time
	RefreshToken string // "" unless offline_access was asked for
	IDToken      string // "" unless openid was asked for
}

// postTokenRequest posts a token request. A refusal is an *APIError with
// the OAuth error (invalid_grant, …) as Code.
func postTokenRequest(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tokenResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, fmt.Errorf("sign-in failed: %w", parseAPIError(resp.StatusCode, data))
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return tokenResponse{}, errors.New("sign-in failed: the token response is malformed")
	}
	return tokenResponse{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, IDToken: tr.IDToken,
		ExpiresOn: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// errSessionEnded marks (with an empty message) the error of a person's
// profile whose session is over: logout --revoke has nothing to revoke
// with it.
var errSessionEnded = errors.New("")
