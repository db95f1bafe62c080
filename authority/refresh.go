package authority

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Refresh tokens: a person's session.
//
// A password sign-in whose scope includes offline_access also gets a
// refresh token (Entra's shape: "refresh_token" beside "access_token"),
// and grant_type=refresh_token trades it for an access token of any
// resource the authority knows (scope, or the v1 resource parameter) and a
// new refresh token, so a CLI session outlives one access token without
// keeping the password.
//
//	password grant + offline_access → session (family id, auth time)
//	                                → refresh token #1
//	refresh_token grant (#1)        → #1 marked used (atomic update)
//	                                → access token + refresh token #2
//	#1 again within reuseWindow     → served like the first (a concurrent
//	                                  client of the same cache)
//	#1 again after it (replay)      → every token of the session deleted,
//	                                  invalid_grant AADSTS50173
//
// Entra does not revoke a redeemed refresh token at all, and its clients
// rely on that when several processes share one token cache: az commands
// run in parallel each redeem the cached token at once (six at once ended
// the session, so every later command failed until az login), as do the
// instances of a web app with a distributed cache. A token redeemed again
// long after its first use is another matter — the cache that redeemed it
// holds its successor — so that is still taken for a stolen copy.
//
// A refresh token is 256 random bits, base64url, opaque: storage keeps
// only its SHA-256 (kind authority.refreshtoken, key = hex of the hash,
// ref = the person's object id), so a database read gives nothing to
// present. Each token is valid for RefreshTokenLifetime (default 14 days)
// from its issue — each use renews the session — and a session ends
// MaxSessionLifetime (90 days) after its password sign-in whatever its
// use. Used tokens are kept until they expire, to tell a replay from an
// unknown token.
//
// Revocation: the person's sign-in sessions valid-from time (directory:
// set by a password change and by Graph's revokeSignInSessions) ends every
// session that began before it; a disabled or deleted person cannot
// refresh; and a replay ends its own session. The refresh grant reads the
// token from storage every time (never a cache), so spending and ending a
// session hold on every node at once; the person's state is the
// directory's in-memory view, so a revocation in the directory holds at
// once on the node that made it and within the change feed's delay on the
// others, like a role change.

// kindRefreshToken is the storage kind of refresh tokens.
const kindRefreshToken = "authority.refreshtoken"

// kindEndedSession marks a session ended by a replay, keyed by its id,
// until the session could have lasted no longer. Deleting the session's
// tokens alone would race with a redemption on another node: the token
// the winner of the race issues a moment later would outlive the end. So
// the marker is written before the tokens are deleted, and a new token is
// checked against it after it is stored (see endSession).
const kindEndedSession = "authority.endedsession"

type endedSession struct {
	Ended time.Time `json:"ended"`
}

// actionEndSession is audited when a replayed refresh token ends its
// session (the principal is the session's person, not the presenter, who
// is unknown).
const actionEndSession = "Gatehouse/sessions/delete"

// Refresh-token lifetimes.
const (
	DefaultRefreshTokenLifetime = 14 * 24 * time.Hour
	MaxSessionLifetime          = 90 * 24 * time.Hour
)

type refreshRecord struct {
	// Session is the family id: every token rotated from one sign-in.
	Session  string    `json:"session"`
	TenantID string    `json:"tenantId"`
	ObjectID string    `json:"objectId"`
	ClientID string    `json:"clientId"`
	ACR      string    `json:"acr"`
	AuthTime time.Time `json:"authTime"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	// Used is when the token was redeemed (it is then spent).
	Used time.Time `json:"used,omitzero"`
}

// session is what a minted response continues or starts: set on a
// mintSpec, the token endpoint issues a refresh token with the response.
type session struct {
	id       string
	authTime time.Time
}

// reuseWindow is how long after its first redemption a refresh token is
// still served (see the package comment above): concurrent redemptions by
// clients sharing one cache, as Auth0's "reuse interval" and Okta's grace
// period allow for the same reason.
const reuseWindow = time.Minute

// refreshTokenBytes is the entropy of a refresh token.
const refreshTokenBytes = 32

func refreshKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wantsRefreshToken reports whether a scope parameter asks for a refresh
// token (offline_access).
func wantsRefreshToken(scope string) bool {
	for _, s := range strings.Fields(scope) {
		if s == "offline_access" {
			return true
		}
	}
	return false
}

// newSession starts a session at a password sign-in.
func (a *Authority) newSession() *session {
	return &session{id: gatehouse.NewGUID(), authTime: storage.Now(a.now())}
}

// issueRefreshToken stores a new refresh token of s for the person of spec
// and returns it.
func (a *Authority) issueRefreshToken(ctx context.Context, spec *mintSpec, tenantID string) (string, error) {
	var raw [refreshTokenBytes]byte
	if _, err := io.ReadFull(a.rand, raw[:]); err != nil {
		return "", fmt.Errorf("authority: refresh token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := storage.Now(a.now())
	exp := now.Add(a.refreshLifetime)
	if end := spec.session.authTime.Add(MaxSessionLifetime); exp.After(end) {
		exp = end
	}
	rec := refreshRecord{Session: spec.session.id, TenantID: tenantID, ObjectID: spec.principal.ObjectID,
		ClientID: spec.clientID, ACR: spec.acr, AuthTime: spec.session.authTime, Issued: now, Expires: exp}
	_, err := a.refreshTokens.Create(ctx, &storage.Record[refreshRecord]{Key: refreshKey(token),
		Ref: strings.ToLower(spec.principal.ObjectID), Value: rec, Expires: exp})
	if err != nil {
		return "", gatehouse.ErrUnavailable.WithCause(err)
	}
	// Checked after the token is stored: a session ended before this
	// check is refused here; one ended after it lists and deletes this
	// token (endSession writes its marker first).
	ended, err := a.sessionEndedRetry(ctx, spec.session.id)
	if err != nil || ended {
		if derr := a.refreshTokens.Delete(context.WithoutCancel(ctx), refreshKey(token)); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			a.logger.Warn("authority: withdrawing a refresh token of an ended session failed", "session", spec.session.id, "err", derr)
		}
		if err != nil {
			return "", gatehouse.ErrUnavailable.WithCause(err)
		}
		return "", errSessionRevoked()
	}
	return token, nil
}

// errSessionRevoked is the answer for a refresh token of an ended session
// (a replay ended it).
func errSessionRevoked() error {
	return oauthErr(oauthInvalidGrant, 50173,
		"The provided grant has expired due to it being revoked, a fresh auth token is needed. The refresh token was already used; sign in again.")
}

// sessionEndedRetry is sessionEnded for the checks made after a token was
// spent or stored: a passing storage error there would cost the person
// their session (the spent token presented again is a replay), so it is
// tried a few times before giving up.
func (a *Authority) sessionEndedRetry(ctx context.Context, id string) (ended bool, err error) {
	err = storageRetry(ctx, func() error {
		var err error
		ended, err = a.sessionEnded(ctx, id)
		return err
	})
	return ended, err
}

// refuseEnded is nil for a live session, the revoked-session answer for one
// a replay ended, 503 when that cannot be told (retry: as sessionEndedRetry).
func (a *Authority) refuseEnded(ctx context.Context, id string, retry bool) error {
	check := a.sessionEnded
	if retry {
		check = a.sessionEndedRetry
	}
	ended, err := check(ctx, id)
	switch {
	case err != nil:
		return gatehouse.ErrUnavailable.WithCause(err)
	case ended:
		return errSessionRevoked()
	}
	return nil
}

// storageRetry runs fn up to three times, 20 then 40 ms apart, until it
// succeeds or ctx ends, and returns its last error.
func storageRetry(ctx context.Context, fn func() error) error {
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 20 * time.Millisecond)
		}
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// sessionEnded reports whether a replay ended the session (read from
// storage, never a cache, so it holds on every node at once).
func (a *Authority) sessionEnded(ctx context.Context, id string) (bool, error) {
	_, err := a.endedSessions.Get(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

// errReplay aborts the update of a spent token.
var errReplay = errors.New("authority: refresh token replayed")

// refreshGrant redeems a refresh token (grant_type=refresh_token).
func (a *Authority) refreshGrant(r *http.Request, tr *tokenRequest) (mintSpec, error) {
	token := tr.form.Get("refresh_token")
	if tr.clientID == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if token == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'refresh_token'.")
	}
	if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != refreshTokenBytes {
		return mintSpec{}, oauthErr(oauthInvalidGrant, 9002313, "Invalid request. Request is malformed or invalid.").WithTarget("refresh_token")
	}
	clientID := strings.ToLower(tr.clientID)
	if publicClients[clientID] && (tr.secret != "" || tr.form.Get("client_assertion") != "") {
		return mintSpec{}, oauthErr(oauthInvalidClient, 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	}
	// The resource is checked before the token is spent: a bad scope must
	// not cost the session.
	if _, err := a.personResource(tr); err != nil {
		return mintSpec{}, err
	}
	invalid := oauthErr(oauthInvalidGrant, 70000, "The provided value for the 'refresh_token' is not valid.")
	ctx := r.Context()
	now := storage.Now(a.now())
	// The client authenticates as it did when the session began, before
	// the token is spent: a token issued to an authenticated web app
	// (acr 1 or 2) is redeemed only with the app's secret, certificate or
	// federated credential — one stolen from its session store is of no
	// use alone — and a credential that is sent is always checked.
	//
	// Everything that can refuse the request is checked before the token
	// is spent: a refused request (another client, a disabled person, a
	// wrong secret) must leave the owner's token as it was.
	cur, err := a.refreshTokens.Get(ctx, refreshKey(token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return mintSpec{}, invalid
	case err != nil:
		return mintSpec{}, gatehouse.ErrUnavailable.WithCause(err)
	}
	// A session a replay ended is refused before the token is spent: a
	// storage failure here leaves the client a token to retry with.
	if err := a.refuseEnded(ctx, cur.Value.Session, false); err != nil {
		return mintSpec{}, err
	}
	if !strings.EqualFold(cur.Value.TenantID, tr.tenantID) || !strings.EqualFold(cur.Value.ClientID, clientID) {
		return mintSpec{}, invalid
	}
	acr := "0"
	if !publicClients[clientID] && (cur.Value.ACR != "0" && cur.Value.ACR != "" || tr.secret != "" || tr.form.Get("client_assertion") != "") {
		app, err := a.clientCredentials(r, tr)
		if err != nil {
			return mintSpec{}, err
		}
		acr = app.acr
	}
	if !cur.Value.Expires.After(now) {
		return mintSpec{}, oauthErr(oauthInvalidGrant, 700082, "The refresh token has expired due to inactivity. Sign in again.")
	}
	if _, err := a.signedInPerson(cur.Value.ObjectID, cur.Value.AuthTime); err != nil { // device.go
		return mintSpec{}, err
	}
	rec, err := a.refreshTokens.Update(ctx, refreshKey(token), func(sr *storage.Record[refreshRecord]) error {
		switch {
		case sr.Value.Used.IsZero():
			sr.Value.Used = now
		case now.Sub(sr.Value.Used) > reuseWindow:
			return errReplay
		}
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return mintSpec{}, invalid
	case errors.Is(err, errReplay):
		// A spent token presented again: someone else holds a copy. End the
		// session, so neither copy refreshes again.
		replay := errSessionRevoked()
		a.endSession(context.WithoutCancel(ctx), cur.Value)
		a.logger.Warn("authority: a spent refresh token was presented again; its session is revoked",
			"user", cur.Value.ObjectID, "session", cur.Value.Session)
		a.audit(r, gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: cur.Value.ObjectID, TenantID: cur.Value.TenantID},
			actionEndSession, "/gatehouse/sessions/"+cur.Value.Session, replay)
		return mintSpec{}, replay
	case err != nil:
		return mintSpec{}, gatehouse.ErrUnavailable.WithCause(err)
	}
	v := rec.Value
	if err := a.refuseEnded(ctx, v.Session, true); err != nil {
		return mintSpec{}, err
	}
	if !strings.EqualFold(v.TenantID, tr.tenantID) || !strings.EqualFold(v.ClientID, clientID) {
		return mintSpec{}, invalid
	}
	if !publicClients[clientID] && acr == "0" && v.ACR != "0" && v.ACR != "" {
		return mintSpec{}, invalid // authenticated above, unless the token changed hands meanwhile
	}
	p, err := a.signedInPerson(v.ObjectID, v.AuthTime) // device.go
	if err != nil {
		return mintSpec{}, err
	}
	return mintSpec{principal: p, acr: acr, clientID: v.ClientID, scope: "user_impersonation",
		session: &session{id: v.Session, authTime: v.AuthTime}}, nil
}

// endSession marks v's session ended, then deletes its refresh tokens.
// The order matters across nodes: a token issued for the session
// concurrently is either stored before the listing below (and deleted by
// it) or checks the marker after it was written (and withdraws itself).
func (a *Authority) endSession(ctx context.Context, v refreshRecord) {
	// The mark is what closes the race with a redemption on another node:
	// tried a few times (the deletion below runs anyway).
	storageRetry(ctx, func() error {
		_, err := a.endedSessions.Create(ctx, &storage.Record[endedSession]{Key: v.Session,
			Value: endedSession{Ended: storage.Now(a.now())}, Expires: v.AuthTime.Add(MaxSessionLifetime + time.Hour)})
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			a.logger.Warn("authority: marking a session ended failed", "session", v.Session, "err", err)
			return err
		}
		return nil
	})
	for rec, err := range a.refreshTokens.All(ctx, storage.ListOptions{Ref: strings.ToLower(v.ObjectID)}) {
		if err != nil {
			a.logger.Warn("authority: ending a session failed", "session", v.Session, "err", err)
			return
		}
		if rec.Value.Session != v.Session {
			continue
		}
		if err := a.refreshTokens.Delete(ctx, rec.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			a.logger.Warn("authority: ending a session failed", "session", v.Session, "err", err)
		}
	}
}

// grantedScope is the response's scope: the requested resource scopes,
// without the OpenID Connect ones, as Entra answers.
func grantedScope(requested string) string {
	var out []string
	for _, s := range strings.Fields(requested) {
		switch s {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}
