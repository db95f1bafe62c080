package authority

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/storage"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Store is what the authority needs of storage.
type Store interface {
	storage.Objects
}

// Watcher is what the authority needs of the change feed.
type Watcher interface {
	Subscribe(fn func(storage.Change), kinds ...string)
}

// Sealer seals the signing keys at rest (the keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Defaults.
const (
	DefaultTokenLifetime    = time.Hour
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultRotationPeriod   = 24 * time.Hour
	DefaultClockSkew        = 2 * time.Minute
	DefaultVerifyCacheSize  = 1 << 16
)

// Options configure an Authority.
type Options struct {
	Store     Store
	Watcher   Watcher
	Sealer    Sealer
	Directory *directory.Directory
	// Host is the public authority H (host[:port]): issuer and endpoint
	// URLs are https://H/....
	Host   string
	Logger *slog.Logger
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
	// SigningAlg is ES256 (default) or RS256, for keys created from now on.
	SigningAlg string
	// RotationPeriod is how long a key signs before the next one takes
	// over (default 24h).
	RotationPeriod time.Duration
	// TokenLifetime is the lifetime of access tokens from the token and
	// managed-identity endpoints (default 60 minutes).
	TokenLifetime time.Duration
	// MaxTokenLifetime bounds every lifetime Issue accepts; a retired key
	// is published for this long after it stops signing (default 24h).
	MaxTokenLifetime time.Duration
	// ClockSkew is tolerated on exp and nbf (default 2 minutes).
	ClockSkew time.Duration
	// VerifyCacheSize bounds the cache of verified tokens.
	VerifyCacheSize int
	// Resources are extra token resources (audiences) to accept.
	Resources []string
	// HTTPClient fetches federated issuers' discovery documents and keys.
	HTTPClient *http.Client
	// Registerer receives the authority's metrics (nil: none).
	Registerer prometheus.Registerer
	// RefreshTokenLifetime is how long a person's refresh token is valid
	// unused (default 14 days; a session ends 90 days after its sign-in).
	RefreshTokenLifetime time.Duration
}

// Authority is the identity authority: it issues access tokens (token
// endpoint, managed-identity endpoint, and other services through Issue),
// verifies them for the whole server (Verify), and serves discovery and
// keys. Safe for concurrent use.
type Authority struct {
	store   Store
	watcher Watcher
	sealer  Sealer
	dir     *directory.Directory
	host    string
	base    string // https://H
	logger  *slog.Logger
	now     func() time.Time
	rand    io.Reader

	alg         string
	rotation    time.Duration
	lifetime    time.Duration
	maxLifetime time.Duration
	skew        time.Duration

	keys     atomic.Pointer[keyState]
	keyTable *storage.Table[keySetRecord]
	headers  *storage.Table[headerRecord]
	// refreshTokens are people's sessions (refresh.go).
	refreshTokens *storage.Table[refreshRecord]
	endedSessions *storage.Table[endedSession]
	// deviceCodes are pending device sign-ins (device.go).
	deviceCodes *storage.Table[deviceRecord]
	// authRequests are pending and approved authorization requests (authcode.go).
	authRequests    *storage.Table[authRecord]
	refreshLifetime time.Duration
	// cache holds verified tokens by a seeded hash of their text (see
	// Verify); cacheSeed is the hash's seed, random per process.
	cache     *lru.Cache[uint64, verifiedToken]
	cacheSeed maphash.Seed
	resources map[string]bool // normalized resource → known
	fed       *federation
	msiURL    atomic.Pointer[string]
	metrics   *metrics

	identityAuthz IdentityAuthorizer
	auditor       Auditor
	lockouts      *lru.Cache[string, *rate.Limiter]
}

// New returns an authority. Call Start before serving.
func New(opts Options) (*Authority, error) {
	a := &Authority{store: opts.Store, watcher: opts.Watcher, sealer: opts.Sealer, dir: opts.Directory,
		host: strings.ToLower(opts.Host), logger: opts.Logger, now: opts.Now, rand: opts.Rand,
		alg: opts.SigningAlg, rotation: opts.RotationPeriod, lifetime: opts.TokenLifetime,
		maxLifetime: opts.MaxTokenLifetime, skew: opts.ClockSkew}
	if a.host == "" || a.dir == nil || a.store == nil || a.sealer == nil {
		return nil, errors.New("authority: Host, Directory, Store and Sealer are required")
	}
	a.base = "https://" + a.host
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	switch a.alg {
	case "":
		a.alg = AlgES256
	case AlgES256, AlgRS256:
	default:
		return nil, fmt.Errorf("authority: signing algorithm %q is not ES256 or RS256", a.alg)
	}
	if a.rotation <= 0 {
		a.rotation = DefaultRotationPeriod
	}
	if a.lifetime <= 0 {
		a.lifetime = DefaultTokenLifetime
	}
	if a.maxLifetime <= 0 {
		a.maxLifetime = DefaultMaxTokenLifetime
	}
	if a.lifetime > a.maxLifetime {
		return nil, errors.New("authority: TokenLifetime exceeds MaxTokenLifetime")
	}
	if a.skew <= 0 {
		a.skew = DefaultClockSkew
	}
	size := opts.VerifyCacheSize
	if size <= 0 {
		size = DefaultVerifyCacheSize
	}
	var err error
	if a.cache, err = lru.New[uint64, verifiedToken](size); err != nil {
		return nil, err
	}
	a.cacheSeed = maphash.MakeSeed()
	if a.lockouts, err = lru.New[string, *rate.Limiter](10000); err != nil {
		return nil, err
	}
	a.keyTable = storage.NewTable[keySetRecord](opts.Store, kindSigningKeys)
	a.headers = storage.NewTable[headerRecord](opts.Store, kindIdentityHeader)
	a.refreshTokens = storage.NewTable[refreshRecord](opts.Store, kindRefreshToken)
	a.endedSessions = storage.NewTable[endedSession](opts.Store, kindEndedSession)
	a.deviceCodes = storage.NewTable[deviceRecord](opts.Store, kindDeviceCode)
	a.authRequests = storage.NewTable[authRecord](opts.Store, kindAuthRequest)
	a.refreshLifetime = opts.RefreshTokenLifetime
	if a.refreshLifetime <= 0 {
		a.refreshLifetime = DefaultRefreshTokenLifetime
	}
	a.resources = map[string]bool{}
	for _, r := range append(a.defaultResources(), opts.Resources...) {
		a.resources[normalizeResource(r)] = true
	}
	client := opts.HTTPClient
	if client == nil {
		client = issuerClient()
	}
	a.fed = newFederation(client, a.now, a.logger)
	a.metrics = newMetrics(opts.Registerer)
	return a, nil
}

// Start loads the signing keys (creating the first ones on a new store) and
// subscribes to their changes. Call after the watcher's Start.
func (a *Authority) Start(ctx context.Context) error {
	if a.watcher != nil {
		a.watcher.Subscribe(a.applyKeys, kindSigningKeys)
	}
	err := a.loadKeys(ctx)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && a.rotationDue(a.keys.Load(), a.now())) {
		err = a.RotateKeys(ctx, false)
	}
	return err
}

// Run does the background work until ctx ends: the signing-key rotation
// check every interval, and Prune every ten minutes.
func (a *Authority) Run(ctx context.Context, interval time.Duration) {
	rotate := time.NewTicker(interval)
	defer rotate.Stop()
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rotate.C:
			if err := a.RotateKeys(ctx, false); err != nil && ctx.Err() == nil {
				a.logger.Warn("signing keys: rotation check failed", "err", err)
			}
		case <-prune.C:
			a.Prune(ctx)
		}
	}
}

// prunedKinds expire: spent assertion ids, identity headers, refresh
// tokens and ended sessions' marks, device codes and authorization
// requests.
var prunedKinds = []string{kindJTI, kindIdentityHeader, kindRefreshToken, kindEndedSession, kindDeviceCode, kindAuthRequest}

// Prune deletes the expired records of prunedKinds and returns how many.
// A failure is logged; the next run retries.
func (a *Authority) Prune(ctx context.Context) int {
	now, n := a.now(), 0
	for _, kind := range prunedKinds {
		d, err := a.store.DeleteExpired(ctx, kind, now)
		if err != nil && ctx.Err() == nil {
			a.logger.Warn("authority: prune failed", "kind", kind, "err", err)
		}
		n += d
	}
	return n
}

// BaseURL is https://H, the authority host clients use
// (AZURE_AUTHORITY_HOST).
func (a *Authority) BaseURL() string { return a.base }

// Issuer returns the issuer of tenant's tokens: https://H/{tenant}/v2.0,
// the same origin as the discovery documents.
func (a *Authority) Issuer(tenantID string) string { return a.base + "/" + tenantID + "/v2.0" }

// Issue signs an access token for p with audience aud, valid for lifetime
// (0 = the default lifetime; more than MaxTokenLifetime is refused), with
// the extra claims added at the top level of the payload. It returns the
// token and its expiry (whole seconds).
//
// Contract for other services (the STS mints 10-minute tokens for a key):
//   - Tokens are signed by the same rotating keys as every other token and
//     verify with Verify on every node.
//   - p may be the zero Principal except for TenantID ("" = the default
//     tenant): then the token has no oid, sub or idtyp, and Verify returns
//     a Principal with only TenantID set.
//   - extra must not use a standard claim name (aud, iss, exp, oid, tid,
//     appid, …): that is an error. Values must be JSON-encodable; Verify
//     returns numbers as json.Number (Claims.Int64).
//   - Give such tokens an audience of their own, so a verifier of identity
//     tokens (which passes its own audiences) never accepts them.
//
// Errors are internal (no signing key yet, bad arguments): render as 500.
func (a *Authority) Issue(ctx context.Context, p gatehouse.Principal, aud string, lifetime time.Duration, extra map[string]any) (string, time.Time, error) {
	if aud == "" {
		return "", time.Time{}, errors.New("authority: Issue needs an audience")
	}
	for k := range extra {
		if reservedClaims[k] {
			return "", time.Time{}, fmt.Errorf("authority: Issue: claim %q is reserved", k)
		}
	}
	return a.mint(mintSpec{principal: p, audience: aud, lifetime: lifetime, extra: extra})
}

// mintSpec is everything a token carries besides the time and the key.
type mintSpec struct {
	principal gatehouse.Principal
	audience  string
	lifetime  time.Duration
	// acr is appidacr; clientID the appid of a person's token; scope scp.
	acr, clientID, scope string
	// miResourceID is xms_mirid for a managed identity.
	miResourceID string
	extra        map[string]any
	// session, when set, gets a refresh token with the response (refresh.go).
	session *session
}

func (a *Authority) mint(s mintSpec) (string, time.Time, error) {
	st := a.keys.Load()
	if st == nil || st.signer == nil {
		return "", time.Time{}, errors.New("authority: no signing key")
	}
	if s.lifetime == 0 {
		s.lifetime = a.lifetime
	}
	if s.lifetime < 0 || s.lifetime > a.maxLifetime {
		return "", time.Time{}, fmt.Errorf("authority: lifetime %s is not in (0, %s]", s.lifetime, a.maxLifetime)
	}
	now := a.now()
	exp := now.Add(s.lifetime).Unix()
	p := s.principal
	tid := p.TenantID
	if tid == "" {
		tid = a.dir.DefaultTenant()
	}
	var uti [16]byte
	if _, err := io.ReadFull(a.rand, uti[:]); err != nil {
		return "", time.Time{}, err
	}
	iss := a.Issuer(tid)
	ac := accessClaims{Aud: s.audience, Iss: iss, Iat: now.Unix(), Nbf: now.Unix(), Exp: exp, TID: tid,
		UTI: b64.EncodeToString(uti[:]), Ver: "1.0", AppIDACR: s.acr}
	if p.ObjectID != "" {
		ac.OID, ac.Sub, ac.IDP = p.ObjectID, p.ObjectID, iss
		switch p.Type {
		case gatehouse.PrincipalUser:
			ac.IDTyp, ac.UniqueName, ac.UPN, ac.Name = "user", p.Name, p.Name, p.Name
			ac.AppID, ac.Scp = s.clientID, s.scope
		default:
			ac.IDTyp, ac.AppID, ac.AppDisplayName, ac.MIRID = "app", p.ClientID, p.Name, s.miResourceID
		}
	}
	if p.ObjectID != "" && !a.KnownResource(s.audience) {
		// An application's API: the app roles the subject holds on it.
		if api, err := a.dir.API(tid, s.audience); err == nil {
			// App roles granted to a group reach its direct members, as in Entra.
			ac.Roles = api.AppRoleValues(p.ObjectID, a.dir.DirectGroupsOf(p.ObjectID))
			var overage string
			ac.Groups, ac.WIDs, overage = a.groupClaims(api, p)
			if overage != "" {
				ac.ClaimNames, ac.ClaimSources = overageClaims(overage)
			}
		}
	}
	payload := ac.appendJSON(make([]byte, 0, 640))
	if len(s.extra) > 0 {
		more, err := json.Marshal(s.extra)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("authority: Issue: extra claims: %w", err)
		}
		// Splice {"…standard…"} and {"…extra…"} into one object.
		payload = append(append(payload[:len(payload)-1], ','), more[1:]...)
	}
	token, err := a.sign(st, payload)
	if err != nil {
		return "", time.Time{}, err
	}
	a.metrics.issued.Inc()
	return token, time.Unix(exp, 0), nil
}

// sign returns the compact JWS of payload under st's active key.
func (a *Authority) sign(st *keyState, payload []byte) (string, error) {
	buf := make([]byte, 0, len(st.signer.header)+b64.EncodedLen(len(payload))+90)
	buf = append(buf, st.signer.header...)
	buf = b64.AppendEncode(buf, payload)
	sig, err := st.signer.sign(a.rand, buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

// Verify checks a token this server issued and returns its claims. It is
// the one verification function of the whole server:
//   - size (MaxTokenSize), compact JWS shape, alg allow-list (ES256,
//     RS256, and only the alg of the key named by kid), kid known
//     (next, active or retired key), signature;
//   - iss is this authority's issuer for the token's tid;
//   - aud equals one of audiences (case-insensitive; at least one must be
//     given: pass every equivalent form, e.g. ManagementAudiences);
//   - exp and nbf with ClockSkew of tolerance.
//
// Verified tokens are cached (found by a seeded hash of the token and
// checked by its signature, never keeping the token itself; bounded LRU),
// so a repeated token costs a hash and a map lookup. Errors wrap
// ErrTokenExpired or ErrTokenInvalid (see TokenError). The returned
// Claims are shared: do not modify them.
func (a *Authority) Verify(ctx context.Context, raw string, audiences ...string) (*Claims, error) {
	if len(audiences) == 0 {
		return nil, invalidToken("no audience to check against")
	}
	if len(raw) > MaxTokenSize {
		a.metrics.verifiedInvalid.Inc()
		return nil, invalidToken("token too large")
	}
	// A verified token is found by a 64-bit hash of its text, seeded at
	// random for this process, and taken only if the text presented ends
	// in the same signature. A text that collides with a cached token's
	// (hard without the seed) would still need that token's signature,
	// which only the token itself gives; and the cache keeps no token,
	// only signatures, which are no credential without the header and
	// claims they sign. The hash is a few dozen nanoseconds for a kilobyte
	// of token, where SHA-256 of it was most of a cached verification.
	key := maphash.String(a.cacheSeed, raw)
	sig := raw[strings.LastIndexByte(raw, '.')+1:]
	e, ok := a.cache.Get(key)
	c := e.claims
	if !ok || subtle.ConstantTimeCompare(bytesOf(e.sig), bytesOf(sig)) != 1 {
		var err error
		if c, err = a.verifyCold(raw); err != nil {
			a.metrics.countVerify(err)
			return nil, err
		}
		// A copy: raw may be a piece of a whole request head.
		a.cache.Add(key, verifiedToken{sig: strings.Clone(sig), claims: c})
	}
	now := a.now()
	if now.After(c.Expires.Add(a.skew)) {
		a.cache.Remove(key)
		a.metrics.verifiedExpired.Inc()
		return nil, expiredError(c.Expires)
	}
	if c.NotBefore.After(now.Add(a.skew)) {
		a.metrics.verifiedInvalid.Inc()
		return nil, invalidToken("token not yet valid")
	}
	for _, aud := range audiences {
		if strings.EqualFold(aud, c.Audience) {
			a.metrics.verifiedOK.Inc()
			return c, nil
		}
	}
	a.metrics.verifiedInvalid.Inc()
	return nil, &TokenError{Kind: ErrTokenInvalid, Reason: "audience not accepted", Audience: c.Audience}
}

// bytesOf is s's bytes in place, for reading only.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// verifiedToken is a verified token's signature (its last segment) and
// claims.
type verifiedToken struct {
	sig    string
	claims *Claims
}

// verifyCold verifies signature, issuer and expiry of a token not in the
// cache. Expired tokens are not cached.
func (a *Authority) verifyCold(raw string) (*Claims, error) {
	t, err := parseCompact(raw)
	if err != nil {
		return nil, invalidToken(err.Error())
	}
	st := a.keys.Load()
	if st == nil {
		return nil, invalidToken("no keys loaded")
	}
	k, ok := st.verifiers[t.header.Kid]
	if !ok {
		return nil, invalidToken("unknown kid")
	}
	if t.header.Alg != k.alg {
		return nil, invalidToken("alg does not match the key")
	}
	if err := verifySignature(k.alg, k.pub, t.signingInput, t.signature); err != nil {
		return nil, invalidToken("bad signature")
	}
	c, _, err := claimsFrom(t.payload)
	if err != nil {
		return nil, err
	}
	if !gatehouse.IsGUID(c.Principal.TenantID) || c.Issuer != a.Issuer(c.Principal.TenantID) {
		return nil, invalidToken("wrong issuer")
	}
	if c.Expires.Unix() <= 0 || c.Audience == "" {
		return nil, invalidToken("missing exp or aud")
	}
	if a.now().After(c.Expires.Add(a.skew)) {
		return nil, expiredError(c.Expires)
	}
	return c, nil
}

// JWKS returns the public signing keys as a JSON Web Key Set.
func (a *Authority) JWKS() []byte {
	if st := a.keys.Load(); st != nil {
		return bytes.Clone(st.jwks)
	}
	return []byte(`{"keys":[]}`)
}

// SigningKeyIDs returns the published key ids and which one signs, for
// tests and operations.
func (a *Authority) SigningKeyIDs() (active string, published []string) {
	st := a.keys.Load()
	if st == nil {
		return "", nil
	}
	for _, m := range st.meta {
		published = append(published, m.ID)
		if m.State == stateActive {
			active = m.ID
		}
	}
	return active, published
}
