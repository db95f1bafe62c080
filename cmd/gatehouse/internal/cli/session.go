package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A person's CLI session. `gatehouse login -u NAME` signs in once with the
// password (scope offline_access) and keeps the refresh token the server
// answers with; any command that needs a token for a resource the profile
// has none for (or only an expiring one) — the management API, Graph, a
// vault's data plane — redeems it (grant_type=refresh_token, Entra's
// shape) for that resource's token and the next refresh token, and saves
// both. The server rotates the refresh token at every use and refuses a
// spent one (ending the session), so the profile is updated under a lock
// file and re-read before redeeming: two commands running at once use the
// token only once.

// refreshLockWait bounds the wait for another command's refresh.
const refreshLockWait = 30 * time.Second

// refresh gets a token for resource with the profile's refresh token and
// saves the rotated session.
func (p *profile) refresh(ctx context.Context, hc *http.Client, resource string) (string, error) {
	unlock, err := lockProfile(ctx, p.env)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another command may have refreshed meanwhile: use what it saved.
	if cur, err := loadProfile(p.env); err == nil && cur.Kind == kindUser && strings.EqualFold(cur.UserName, p.UserName) {
		p.RefreshToken, p.Tokens = cur.RefreshToken, cur.Tokens
		if t, ok := p.Tokens[resource]; ok && time.Until(t.ExpiresOn) >= time.Minute {
			return t.AccessToken, nil
		}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {cliClientID}, "refresh_token": {p.RefreshToken},
		"scope": {strings.TrimRight(resource, "/") + "/.default offline_access"}}
	tr, err := postTokenRequest(ctx, hc, p.tokenEndpoint(), form)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "invalid_grant" {
		// The session is over (expired, revoked, password changed): forget it.
		p.RefreshToken, p.Tokens = "", nil
		if serr := p.save(p.env); serr != nil {
			return "", serr
		}
		return "", fmt.Errorf("the session of %s has ended (%s): run `gatehouse login -u %s` again%w", p.UserName, ae.Message, p.UserName, errSessionEnded)
	}
	if err != nil {
		return "", err
	}
	if p.Tokens == nil {
		p.Tokens = map[string]cachedToken{}
	}
	p.Tokens[resource] = cachedToken{AccessToken: tr.AccessToken, ExpiresOn: tr.ExpiresOn}
	if tr.RefreshToken != "" {
		p.RefreshToken = tr.RefreshToken
	}
	if err := p.save(p.env); err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// lockProfile takes the profile's lock file (created exclusively, so it
// works on every platform and file system) and returns its release. A
// lock older than refreshLockWait is a crashed command's and is broken.
func lockProfile(ctx context.Context, env Env) (func(), error) {
	path, err := profilePath(env)
	if err != nil {
		return nil, err
	}
	lock := filepath.Join(filepath.Dir(path), ".profile.lock")
	deadline := time.Now().Add(refreshLockWait)
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock the profile: %w", err)
		}
		if st, serr := os.Stat(lock); serr == nil && time.Since(st.ModTime()) > refreshLockWait {
			os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the profile is locked by another gatehouse command (remove %s if none is running)", lock)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
