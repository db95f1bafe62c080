package kvapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/vault"
	"golang.org/x/time/rate"
)

// Verifier verifies a bearer token for the vault audience (every spelling
// of Options.Resource) and returns who it stands for. Expired tokens'
// errors wrap ErrTokenExpired; every other failure is an invalid token.
type Verifier interface {
	VerifyVaultToken(ctx context.Context, raw string) (gatehouse.Principal, error)
}

// ErrTokenExpired marks a verification failure caused by expiry.
var ErrTokenExpired = errors.New("kvapi: token expired")

// Authorizer is the authorization decision (authz.Service).
type Authorizer interface {
	Decide(principalID string, op authz.Operation, scope *gatehouse.ResourceID) authz.Decision
}

// Auditor appends to the audit log (audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (*audit.Record, error)
}

// Options configure the API.
type Options struct {
	// Vaults, Verifier, Authz and Audit are required.
	Vaults   *vault.Service
	Verifier Verifier
	Authz    Authorizer
	Audit    Auditor
	// AuthorizationURI is the challenge's authorization parameter:
	// https://H/adfs or https://H/{tenant GUID} (azure-wire.md §4.2).
	AuthorizationURI string
	// Resource is the challenge's resource parameter and the token
	// audience, https://vault.H (with H's port).
	Resource string
	Logger   *slog.Logger
	Now      func() time.Time
	// MaxBodyBytes bounds request bodies (default 1 MiB: a 25 KiB value
	// escaped as JSON fits many times over).
	MaxBodyBytes int64
	// DenialsPerSecond bounds the audit entries written for refused
	// requests (default 10, burst 20); the ones left out are counted into
	// the next entry.
	DenialsPerSecond float64
	// PrivateNetworks are the client networks whose requests count as
	// private-link traffic: not subject to a vault's network rules, served
	// when it disables public access.
	PrivateNetworks netacl.Networks
}

// API is the Key Vault secrets data plane.
type API struct {
	opts       Options
	challenge  string
	denials    *rate.Limiter
	suppressed atomic.Int64
}

// New returns the API.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.DenialsPerSecond <= 0 {
		opts.DenialsPerSecond = 10
	}
	// Both SDKs' parsers: quoted values, ", " between parameters, no
	// spaces or '=' inside values, only authorization and resource
	// (azure-wire.md §4.2).
	challenge := `Bearer authorization="` + opts.AuthorizationURI + `", resource="` + opts.Resource + `"`
	return &API{opts: opts, challenge: challenge, denials: rate.NewLimiter(rate.Limit(opts.DenialsPerSecond), 20)}
}

// Challenge returns the WWW-Authenticate value of a 401.
func (a *API) Challenge() string { return a.challenge }

// op describes one operation for the prologue and the audit.
type op struct {
	// action is the data action the operation needs.
	action string
	// write operations are audited whatever their outcome.
	write bool
}

// call is one request on its way through a handler.
type call struct {
	api       *API
	w         http.ResponseWriter
	r         *http.Request
	op        op
	principal gatehouse.Principal
	vault     *vault.Vault
	// For the audit entry.
	scope   *gatehouse.ResourceID
	denied  bool
	details map[string]string
}

func (c *call) ctx() context.Context { return c.r.Context() }

func (c *call) detail(k, v string) {
	if c.details == nil {
		c.details = map[string]string{}
	}
	c.details[k] = v
}

// handle adapts a handler: authenticate (before anything else, so the
// SDKs' body-less first request gets its challenge), find the vault, check
// the api-version, run the handler, audit.
func (a *API) handle(o op, h func(*call) error) http.Handler {
	return server.WithSurface(server.SurfaceVault, server.Handle(server.RenderAzure,
		func(w http.ResponseWriter, r *http.Request) error {
			c := &call{api: a, w: w, r: r, op: o}
			err := a.serve(c, h)
			if c.scope != nil && (o.write || c.denied) {
				a.record(c, err)
			}
			return err
		}))
}

func (a *API) serve(c *call, h func(*call) error) error {
	r := c.r
	v, vaultKnown := a.opts.Vaults.VaultByName(server.VaultFromContext(r.Context()))
	raw, present := bearer(r)
	if !present {
		return a.unauthorized("AKV10000: Request is missing a Bearer or PoP token.", false)
	}
	p, err := a.opts.Verifier.VerifyVaultToken(r.Context(), raw)
	if err != nil {
		msg := "AKV10022: Invalid audience, issuer or signature in the access token."
		if errors.Is(err, ErrTokenExpired) {
			msg = "AKV10013: The access token has expired."
		}
		if vaultKnown {
			c.scope, c.denied = v.Scope(), true
		}
		return a.unauthorized(msg, true).WithCause(err)
	}
	c.principal = p
	server.SetPrincipal(r.Context(), p.ObjectID)
	if !vaultKnown {
		return gatehouse.NotFoundf("VaultNotFound", "The vault '%s' does not exist in this deployment.", clipName(server.VaultFromContext(r.Context())))
	}
	c.vault = v
	if p.TenantID != "" && !strings.EqualFold(p.TenantID, v.TenantID) {
		c.scope, c.denied = v.Scope(), true
		return a.unauthorized("AKV10032: Invalid issuer. The token's tenant is not the tenant of this vault ("+v.TenantID+").", true)
	}
	if v.Network != nil {
		if err := a.checkNetwork(c); err != nil {
			c.scope, c.denied = v.Scope(), true
			return err
		}
	}
	if err := checkAPIVersion(r); err != nil {
		return err
	}
	// No name holds a slash, and ServeMux would route "/secrets/%2F" as
	// the list "/secrets/".
	if strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request path is not valid: a name cannot contain '/'.")
	}
	return h(c)
}

// checkNetwork applies the vault's network rules to the client's address,
// once the caller is known (Key Vault's refusals name the caller), with
// Key Vault's answers: ForbiddenByConnection when public access is
// disabled, ForbiddenByFirewall when the address matches no IP rule.
func (a *API) checkNetwork(c *call) error {
	addr := netacl.RemoteAddr(c.r.RemoteAddr)
	err := c.vault.CheckNetwork(addr, a.opts.PrivateNetworks.Contains(addr), vault.CallerName(c.principal))
	if e, ok := gatehouse.AsError(err); ok {
		switch e.InnerCode {
		case vault.CodeForbiddenByConnection:
			c.detail("reason", "public_access_disabled")
		case vault.CodeForbiddenByFirewall:
			c.detail("reason", "firewall")
			c.detail("clientAddress", addr.String())
		}
	}
	return err
}

// unauthorized is the 401 of the data plane, with the challenge.
func (a *API) unauthorized(msg string, invalidToken bool) *gatehouse.Error {
	ch := a.challenge
	if invalidToken {
		ch += `, error="invalid_token"`
	}
	return gatehouse.Errorf(http.StatusUnauthorized, "Unauthorized", "%s", msg).WithHeader("WWW-Authenticate", ch)
}

// bearer returns the token of "Authorization: Bearer <token>" and whether
// an Authorization header was sent at all.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// authorize checks the operation's data action at scope (the secret, or
// the vault for lists and restore) and notes it for the audit.
func (c *call) authorize(scope *gatehouse.ResourceID) error {
	c.scope = scope
	if c.principal.ObjectID != "" && c.api.opts.Authz.Decide(c.principal.ObjectID, authz.DataAction(c.op.action), scope).Allowed {
		return nil
	}
	c.denied = true
	return vault.ErrForbiddenByRbac(c.principal, c.op.action, scope, c.vault)
}

// record appends the audit entry of a write or a denial. Denials are
// rate-limited; audit failures are logged (the operation has happened).
func (a *API) record(c *call, err error) {
	if c.denied {
		if !a.denials.Allow() {
			a.suppressed.Add(1)
			return
		}
		if n := a.suppressed.Swap(0); n > 0 {
			c.detail("count", strconv.FormatInt(n+1, 10))
		}
	}
	p := c.principal
	e := audit.Entry{
		RequestID: server.RequestID(c.ctx()),
		Principal: audit.Principal{ObjectID: p.ObjectID, Type: string(p.Type), Name: p.Name, TenantID: p.TenantID},
		Action:    c.op.action, Scope: c.scope.String(), Result: audit.Succeeded, Status: http.StatusOK,
		Details: c.details, Surface: string(server.SurfaceVault),
	}
	if p.ManagedIdentity {
		e.Principal.Type = "ManagedIdentity"
	}
	if err != nil {
		e.Result, e.Status = audit.Failed, gatehouse.ErrorStatus(err)
		if ge, ok := gatehouse.AsError(err); ok {
			e.Code = ge.Code
			if ge.InnerCode != "" {
				e.Code = ge.InnerCode
			}
		}
		if c.denied {
			e.Result = audit.Denied
		}
	}
	if _, aerr := a.opts.Audit.Append(context.WithoutCancel(c.ctx()), e); aerr != nil {
		a.opts.Logger.Error("audit append failed", "request_id", e.RequestID, "action", e.Action, "err", aerr)
	}
}

func clipName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
