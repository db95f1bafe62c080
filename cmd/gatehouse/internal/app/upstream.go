package app

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

// Upstream credentials from Key Vault.
//
// A deployment whose properties.upstream.keyVaultSecret is set forwards
// with the value of that secret, read as the account's managed identity
// through ResolveUpstreamSecret (RBAC like any reader: Key Vault Secrets
// User on the secret or the vault). The hot path does not decrypt per
// request: upstreamCredentials keeps the resolved value per (account
// instance, reference) for at most UpstreamSecretTTL, and forgets every
// value as soon as a change may alter one: the change feed reports a
// secret or version, a vault, a role or assignment, an account (its
// identity) or a principal (a deleted identity); or the vault service's
// generation moves (secret writes on this node invalidate its cache
// directly, before the feed delivers them). So a new secret version, a
// revoked role or a deleted secret takes effect on the next request after
// the write returns on this node (role and account writes wait for their
// revision; the feed delivers to the vault and authz caches before this
// one, which is subscribed after them), and within the feed's delay on the
// others; the TTL only bounds what no change reports (a version reaching
// its exp).
//
//	request → deploymentIndex.Deployment → Lookup (memory)
//	          keyVaultSecret? → upstreamCredentials.get(account, reference)
//	              fresh entry (same generation, before expiry) → value
//	              else, one resolution per key at a time:
//	                  ResolveUpstreamSecret → value | refusal | outage
//	          → gateway.Deployment view per (deployment, entry), cached
//
// A refusal (no identity, no role, no such vault or secret, not valid now)
// fails the deployment's requests with 500 UpstreamCredentialUnavailable
// and is logged with its reason, at most once per UpstreamSecretRetry per
// reference; the client learns nothing of the vault. An outage (the
// database is down) keeps the last value read, as every hot-path cache
// does (static stability), and retries after UpstreamSecretRetry; with
// nothing read yet it is a 503.

// Code of the data plane's error for a credential that cannot be read.
const codeUpstreamCredentialUnavailable = "UpstreamCredentialUnavailable"

// upstreamSecretRetry is how long a refusal or an outage is kept before
// the reference is read again (unless a change comes first).
const upstreamSecretRetry = 5 * time.Second

// maxCredSlots bounds the resolutions kept (one per account instance and
// reference in use).
const maxCredSlots = 1 << 14

type credKey struct{ instance, ref string }

// upstreamCredential is one resolution: a value, or the status of the
// failure (500 refused, 503 outage). Immutable.
type upstreamCredential struct {
	value, version string
	failed         int
	gen, localGen  uint64 // the generations it is valid for
	expires        time.Time
}

// errorFor is the data plane's error for a failed resolution, in the
// words of deployment. A refusal is the deployment's configuration fault,
// not the request's, and nothing about the vault, the identity or the role
// reaches the client (the log has the reason).
func (c *upstreamCredential) errorFor(deployment string) error {
	switch c.failed {
	case 0:
		return nil
	case http.StatusServiceUnavailable:
		return gatehouse.Errorf(http.StatusServiceUnavailable, codeUpstreamCredentialUnavailable,
			"The upstream credential of deployment '%s' cannot be read from Key Vault now. Retry later.", deployment).
			WithHeader("Retry-After", "5")
	}
	return gatehouse.Errorf(http.StatusInternalServerError, codeUpstreamCredentialUnavailable,
		"The upstream credential of deployment '%s' could not be read from Key Vault. The account's administrator can find the reason in the server log.",
		deployment)
}

type credSlot struct {
	refresh sync.Mutex // one resolution at a time
	cur     atomic.Pointer[upstreamCredential]
}

type upstreamCredentials struct {
	resolve func(ctx context.Context, acct *accounts.Account, ref string) ([]byte, string, error)
	account func(id string) (*accounts.Account, bool)
	// localGen is the sum of vault.Service.Generation and
	// authz.Service.Generation: secret, role and group membership writes
	// on this node invalidate at once, before the feed delivers them
	// (with PostgreSQL it arrives a moment later; nil: 0). Both only grow.
	localGen func() uint64
	bg       context.Context
	ttl      time.Duration
	now      func() time.Time
	logger   *slog.Logger

	gen   atomic.Uint64
	mu    sync.RWMutex
	slots map[credKey]*credSlot
}

// invalidatingKinds are the records whose change may change a resolution:
// groups among them, whose members hold the roles assigned to the group.
var invalidatingKinds = []string{vault.KindSecret, vault.KindVersion, vault.KindVault, authz.KindRole,
	authz.KindAssignment, accounts.KindAccount, directory.KindPrincipal, directory.KindGroup}

func (m *Main) newUpstreamCredentials(bg context.Context) *upstreamCredentials {
	ttl := m.Config.UpstreamSecretTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	localGen := func() uint64 { return m.Vaults.Generation() + m.Authz.Generation() }
	u := &upstreamCredentials{resolve: m.ResolveUpstreamSecret, account: m.Accounts.ByID, localGen: localGen, bg: bg, ttl: ttl,
		now: m.Now, logger: m.Logger, slots: map[credKey]*credSlot{}}
	if u.now == nil {
		u.now = time.Now
	}
	m.Watcher.Subscribe(u.invalidate, invalidatingKinds...)
	return u
}

// invalidate forgets every resolution (a change feed callback; a Reset
// arrives here too).
func (u *upstreamCredentials) invalidate(storage.Change) { u.gen.Add(1) }

// get returns the credential of deployment dp of account a. It blocks only
// while this reference is being read.
func (u *upstreamCredentials) get(a *gateway.Account, dp *accounts.DataPlaneDeployment) *upstreamCredential {
	k := credKey{a.InternalID, dp.KeyVaultSecret}
	u.mu.RLock()
	s := u.slots[k]
	u.mu.RUnlock()
	if s == nil {
		u.mu.Lock()
		if s = u.slots[k]; s == nil {
			if len(u.slots) >= maxCredSlots {
				clear(u.slots) // references of deleted deployments pile up otherwise
			}
			s = &credSlot{}
			u.slots[k] = s
		}
		u.mu.Unlock()
	}
	if c := s.cur.Load(); c != nil && u.fresh(c, u.gen.Load(), u.localGeneration()) {
		return c
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	// Generations before reading: a change during the read makes the
	// result stale at once.
	gen, lgen := u.gen.Load(), u.localGeneration()
	prev := s.cur.Load()
	if prev != nil && u.fresh(prev, gen, lgen) {
		return prev // another request read it meanwhile
	}
	c := u.read(a, dp, prev)
	c.gen, c.localGen = gen, lgen
	s.cur.Store(c)
	return c
}

func (u *upstreamCredentials) fresh(c *upstreamCredential, gen, lgen uint64) bool {
	return c.gen == gen && c.localGen == lgen && u.now().Before(c.expires)
}

func (u *upstreamCredentials) localGeneration() uint64 {
	if u.localGen == nil {
		return 0
	}
	return u.localGen()
}

// read resolves the reference once.
func (u *upstreamCredentials) read(a *gateway.Account, dp *accounts.DataPlaneDeployment, prev *upstreamCredential) *upstreamCredential {
	now := u.now()
	acct, ok := u.account(a.ID)
	if !ok || acct.InternalID != a.InternalID {
		return &upstreamCredential{failed: http.StatusInternalServerError, expires: now.Add(upstreamSecretRetry)}
	}
	ctx, cancel := context.WithTimeout(u.bg, 10*time.Second)
	defer cancel()
	value, version, err := u.resolve(ctx, acct, dp.KeyVaultSecret)
	if err == nil {
		if prev == nil || prev.version != version {
			u.logger.Info("gateway: upstream credential read from Key Vault", "account", a.ID, "deployment", dp.Name,
				"reference", dp.KeyVaultSecret, "version", version)
		}
		c := &upstreamCredential{value: string(value), version: version, expires: now.Add(u.ttl)}
		clear(value)
		return c
	}
	status := gatehouse.ErrorStatus(err)
	attrs := []any{"account", a.ID, "deployment", dp.Name, "reference", dp.KeyVaultSecret, "status", status, "err", err}
	if e, ok := gatehouse.AsError(err); ok {
		attrs = append(attrs, "code", e.Code, "inner", e.InnerCode)
	}
	if status >= 500 || ctx.Err() != nil {
		// An outage, not a decision: keep serving what was read last.
		if prev != nil && prev.failed == 0 {
			u.logger.Warn("gateway: reading an upstream credential from Key Vault failed; using the last value read", attrs...)
			return &upstreamCredential{value: prev.value, version: prev.version, expires: now.Add(upstreamSecretRetry)}
		}
		u.logger.Warn("gateway: reading an upstream credential from Key Vault failed", attrs...)
		return &upstreamCredential{failed: http.StatusServiceUnavailable, expires: now.Add(upstreamSecretRetry)}
	}
	u.logger.Warn("gateway: the account cannot read its deployment's upstream credential from Key Vault", attrs...)
	return &upstreamCredential{failed: http.StatusInternalServerError, expires: now.Add(upstreamSecretRetry)}
}

// parseSecretReference checks a deployment's keyVaultSecret against this
// node's vault host form (the vault service is built after the deployments
// service, and before anything is served).
func (m *Main) parseSecretReference(uri string) error {
	if m.Vaults == nil {
		return nil
	}
	_, err := m.Vaults.ParseReference(uri)
	return err
}
