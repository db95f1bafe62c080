package cli

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
	"time"
)

// deviceCodeSignIn signs a person in with the device authorization grant:
// it asks the server for a code, prints where to enter it (the portal's
// device page) on standard error, and polls the token endpoint until the
// person approves or declines it there, or it expires. The session it
// starts (offline_access) is kept like a password sign-in's; the person's
// name comes from the ID token.
func (p *profile) deviceCodeSignIn(ctx context.Context, hc *http.Client, env Env) (tokenResponse, string, error) {
	scope := strings.TrimRight(resourceManagement, "/") + "/.default offline_access openid profile"
	endpoint := strings.TrimSuffix(p.tokenEndpoint(), "/token") + "/devicecode"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint,
		strings.NewReader(url.Values{"client_id": {cliClientID}, "scope": {scope}}.Encode()))
	if err != nil {
		return tokenResponse{}, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return tokenResponse{}, "", err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return tokenResponse{}, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, "", fmt.Errorf("sign-in failed: %w", parseAPIError(resp.StatusCode, data))
	}
	var dc struct {
		DeviceCode string `json:"device_code"`
		Message    string `json:"message"`
		ExpiresIn  int    `json:"expires_in"`
		Interval   int    `json:"interval"`
	}
	if err := json.Unmarshal(data, &dc); err != nil || dc.DeviceCode == "" || dc.Message == "" {
		return tokenResponse{}, "", errors.New("sign-in failed: the device code response is malformed")
	}
	fmt.Fprintln(env.Stderr, dc.Message)
	interval := time.Duration(min(max(dc.Interval, 1), 60)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, time.Duration(min(max(dc.ExpiresIn, 1), 3600))*time.Second)
	defer cancel()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {cliClientID},
		"device_code": {dc.DeviceCode}, "scope": {scope}}
	for {
		select {
		case <-ctx.Done():
			return tokenResponse{}, "", errors.New("sign-in failed: the code expired before it was approved")
		case <-time.After(interval):
		}
		tr, err := postTokenRequest(ctx, hc, p.tokenEndpoint(), form)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == "authorization_pending":
			continue
		case errors.As(err, &ae) && ae.Code == "slow_down":
			interval += 5 * time.Second
			continue
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			return tokenResponse{}, "", errors.New("sign-in failed: the code expired before it was approved")
		case err != nil:
			return tokenResponse{}, "", err
		}
		name := idTokenName(tr.IDToken)
		if name == "" {
			return tokenResponse{}, "", errors.New("sign-in failed: the server's answer names no user (no ID token)")
		}
		return tr, name, nil
	}
}

// idTokenName is the preferred_username of an ID token from the server the
// CLI trusts over TLS (shown and stored as the profile's user; the token
// endpoint's answer is not re-verified here).
func idTokenName(idToken string) string {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		PreferredUsername string `json:"preferred_username"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.PreferredUsername
}
