package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// KindSession is the storage kind of sign-in sessions. A session's key is
// the SHA-256 of the cookie's token: the store never holds the token
// itself, so reading the database does not let anyone sign in.
const KindSession = "portal.session"

// cookieName has the __Host- prefix: browsers accept it only when Secure,
// Path=/ and without Domain, so no sibling host can set or read it.
const cookieName = "__Host-gatehouse-session"

type session struct {
	ObjectID string    `json:"objectId"`
	TenantID string    `json:"tenantId"`
	AuthTime time.Time `json:"authTime"`
}

func randRead(b []byte) error {
	_, err := rand.Read(b)
	return err
}

func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newSession stores a session for p and sets its cookie.
func (p *Portal) newSession(w http.ResponseWriter, r *http.Request, pr gatehouse.Principal) error {
	raw := make([]byte, 32)
	if err := p.opts.Rand(raw); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := p.opts.Now()
	expires := now.Add(p.opts.SessionLifetime)
	if _, err := p.sessions.Create(r.Context(), &storage.Record[session]{
		Key:     sessionKey(token),
		Value:   session{ObjectID: pr.ObjectID, TenantID: pr.TenantID, AuthTime: storage.Now(now)},
		Expires: expires,
	}); err != nil {
		return unavailable(err)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", Expires: expires,
		MaxAge: int(p.opts.SessionLifetime / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

// errNoSession: the request has no valid session (none, expired, signed
// out, or the person was disabled, deleted or had their sessions revoked).
var errNoSession = errors.New("portal: no session")

// session returns the request's person. errNoSession, or 503.
func (p *Portal) session(r *http.Request) (*directory.User, error) {
	u, _, err := p.sessionSince(r)
	return u, err
}

// sessionSince is session with the time the person signed in.
func (p *Portal) sessionSince(r *http.Request) (*directory.User, time.Time, error) {
	token, ok := sessionToken(r)
	if !ok {
		return nil, time.Time{}, errNoSession
	}
	rec, err := p.sessions.Get(r.Context(), sessionKey(token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, time.Time{}, errNoSession
	case err != nil:
		return nil, time.Time{}, unavailable(err)
	}
	if !p.opts.Now().Before(rec.Expires) {
		return nil, time.Time{}, errNoSession
	}
	u, err := p.opts.Directory.User(rec.Value.ObjectID)
	if err != nil || !u.Enabled || rec.Value.AuthTime.Before(u.SignInSessionsValidFrom) {
		return nil, time.Time{}, errNoSession
	}
	return u, rec.Value.AuthTime, nil
}

// endSession deletes the request's session, if any, and clears the cookie.
func (p *Portal) endSession(w http.ResponseWriter, r *http.Request) error {
	if err := p.deleteSession(r); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return nil
}

// deleteSession deletes the session the request's cookie names, if any.
func (p *Portal) deleteSession(r *http.Request) error {
	if token, ok := sessionToken(r); ok {
		if err := p.sessions.Delete(r.Context(), sessionKey(token)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return unavailable(err)
		}
	}
	return nil
}

// sessionToken returns the request's session cookie value, if it has one
// of a plausible size.
func sessionToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return "", false
	}
	return c.Value, true
}

// SweepSessions deletes expired sessions; the node's upkeep calls it.
func (p *Portal) SweepSessions(ctx context.Context) (int, error) {
	return p.opts.Store.DeleteExpired(ctx, KindSession, p.opts.Now())
}

func unavailable(err error) error {
	return gatehouse.Errorf(http.StatusServiceUnavailable, gatehouse.CodeUnavailable,
		"The portal cannot reach its storage; try again shortly.").WithCause(err)
}

// req is one request to a page handler.
type req struct {
	w    http.ResponseWriter
	r    *http.Request
	user *directory.User // nil on open pages
}

func (q *req) ctx() context.Context { return q.r.Context() }

// htmx reports whether htmx sent the request (it wants a fragment).
func (q *req) htmx() bool { return q.r.Header.Get("HX-Request") == "true" }

// handle adapts a page handler. With auth, the request must carry a
// session: a page GET without one is sent to the sign-in page (and back
// afterwards), anything else is refused with 401.
func (p *Portal) handle(h func(*req) error, auth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &req{w: w, r: r}
		if auth {
			u, err := p.session(r)
			switch {
			case errors.Is(err, errNoSession) && r.Method == http.MethodGet:
				// The query goes along: the device page's ?code= survives signing in.
				http.Redirect(w, r, "/portal/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			case errors.Is(err, errNoSession):
				p.renderError(w, r, gatehouse.Errorf(http.StatusUnauthorized, "SignInRequired",
					"Your session has ended. Sign in again."))
				return
			case err != nil:
				p.renderError(w, r, err)
				return
			}
			q.user = u
			server.SetPrincipal(r.Context(), u.ObjectID)
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := h(q); err != nil {
			p.renderError(w, r, err)
		}
	})
}

// throttle bounds failed sign-ins: per client address and user name (a
// guesser of one person's password), and, ten times as loosely, per
// address (a sprayer of one password over many names). Counting the pair
// keeps one person's typos from locking out everyone behind the same NAT.
type throttle struct {
	mu       sync.Mutex
	per      int
	limiters *lru.Cache[string, *rate.Limiter]
}

func newThrottle(perMinute int) *throttle {
	c, _ := lru.New[string, *rate.Limiter](8192) // size > 0 cannot fail
	return &throttle{per: perMinute, limiters: c}
}

func (t *throttle) limiter(key string, perMinute int) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.limiters.Get(key)
	if !ok {
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), perMinute)
		t.limiters.Add(key, l)
	}
	return l
}

func (t *throttle) pair(r *http.Request, userName string) (addr, both *rate.Limiter) {
	a := r.RemoteAddr
	if h, _, err := net.SplitHostPort(a); err == nil {
		a = h
	}
	return t.limiter(a, 10*t.per), t.limiter(a+"\x00"+strings.ToLower(userName), t.per)
}

// blocked reports whether failed attempts are used up.
func (t *throttle) blocked(r *http.Request, userName string) bool {
	addr, both := t.pair(r, userName)
	return addr.Tokens() < 1 || both.Tokens() < 1
}

// failed spends one attempt.
func (t *throttle) failed(r *http.Request, userName string) {
	addr, both := t.pair(r, userName)
	addr.Allow()
	both.Allow()
}

// safeNext returns next when it is a portal path (no open redirect), else
// the portal's home.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/portal/") && !strings.HasPrefix(next, "/portal//") &&
		!strings.ContainsAny(next, "\\\r\n") && len(next) < 1000 {
		return next
	}
	return "/portal/"
}
