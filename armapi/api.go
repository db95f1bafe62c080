package armapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/vault"
)

// Authenticator verifies a management request's bearer token (audience:
// the management API). On failure it returns a 401 *gatehouse.Error with
// ARM's codes (AuthenticationFailed, InvalidAuthenticationToken,
// ExpiredAuthenticationToken, …) and a WWW-Authenticate challenge; any other
// error is rendered as 401 InvalidAuthenticationToken.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (gatehouse.Principal, error)
}

// Options configure the API.
type Options struct {
	// Authenticator, Authz, Accounts, Resources and Audit are required.
	Authenticator Authenticator
	Authz         *authz.Service
	Accounts      *accounts.Service
	Resources     *resources.Service
	Audit         *audit.Log
	// Identities backs Microsoft.ManagedIdentity/userAssignedIdentities
	// (nil: those routes answer 404).
	Identities Identities
	// Deployments backs Microsoft.CognitiveServices/accounts/deployments
	// (deployments.go; nil: those routes answer 404).
	Deployments *accounts.Deployments
	// Vaults backs Microsoft.KeyVault/vaults (vaults.go; nil: those routes
	// answer 404).
	Vaults *vault.Service
	// PrivateNetworks are the client networks that count as private
	// endpoints (serve --private-networks): a vault's network rules, which
	// the management plane applies where it shows what a vault holds (its
	// secrets' metadata), do not apply to them, as on the data plane.
	PrivateNetworks netacl.Networks
	// Directory answers directory-role questions (elevateAccess; nil: it
	// is refused to everyone).
	Directory Directory
	// Tenants lists the tenants for GET /tenants.
	Tenants func() []Tenant
	// DataActions are the data planes' actions, for the operations catalog
	// (operations.go).
	DataActions []string
	Logger      *slog.Logger
	// MaxBodyBytes bounds request bodies (default 4 MiB, as ARM).
	MaxBodyBytes int64
}

// Tenant is one entry of GET /tenants.
type Tenant struct {
	ID          string
	DisplayName string
	Domain      string
}

// API is the management API: ARM's shapes over the services.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.Tenants == nil {
		opts.Tenants = func() []Tenant { return nil }
	}
	return &API{opts: opts}
}

// Mount registers the API on the root host's mux. Every ARM path starts
// with one of these prefixes; the API routes the rest itself (see routes),
// because ARM paths are case-insensitive and role-assignment scopes are
// arbitrarily deep.
func (a *API) Mount(mux *http.ServeMux) {
	h := server.WithSurface(server.SurfaceManagement, correlate(server.Handle(server.RenderAzure, a.serve)))
	for _, p := range []string{"/subscriptions", "/subscriptions/", "/tenants", "/tenants/", "/providers/"} {
		mux.Handle(p, h)
	}
}

// hdrCorrelation is ARM's x-ms-correlation-request-id, canonical.
const hdrCorrelation = "X-Ms-Correlation-Request-Id"

// correlate sets x-ms-correlation-request-id on every answer of the
// management API, errors included, as ARM does: the client's own when it
// sent one that is a GUID (az and the SDKs send GUIDs; anything else is
// not echoed), otherwise the request id, as ARM uses its request id for a
// call that came without one. The activity log shows the same id as the
// event's correlationId (activitylog.go). The data planes do not set it:
// Azure's do not.
func correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[hdrCorrelation] = []string{correlationID(r)}
		next.ServeHTTP(w, r)
	})
}

// correlationID is the request's correlation id (see correlate).
func correlationID(r *http.Request) string {
	if v := r.Header[hdrCorrelation]; len(v) > 0 && gatehouse.IsGUID(v[0]) {
		return v[0]
	}
	return server.RequestID(r.Context())
}

// call is one request on its way through a handler.
type call struct {
	api       *API
	w         http.ResponseWriter
	r         *http.Request
	principal gatehouse.Principal
	params    map[string]string
	// scope is the {scope} of an extension route (role assignments and
	// definitions).
	scope *gatehouse.ResourceID
	route *route

	// Set by authorize, for the audit entry of a write.
	action, auditScope string
	denied             bool
	details            map[string]string
}

func (c *call) ctx() context.Context { return c.r.Context() }

func (c *call) param(name string) string { return c.params[name] }

// detail adds a non-secret fact to the audit entry (names: audit.AllowedDetails).
func (c *call) detail(name, value string) {
	if c.details == nil {
		c.details = map[string]string{}
	}
	c.details[name] = value
}

// serve is the single entry point: authenticate, route, check the
// api-version, run the handler, audit writes.
func (a *API) serve(w http.ResponseWriter, r *http.Request) error {
	p, err := a.opts.Authenticator.AuthenticateRequest(r)
	if err != nil {
		if e, ok := gatehouse.AsError(err); ok && e.Status == http.StatusUnauthorized {
			return err
		}
		return gatehouse.Errorf(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.").WithCause(err)
	}
	server.SetPrincipal(r.Context(), p.ObjectID)
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	rt, params, scope, allowed := match(r.Method, segs)
	existence := false
	if rt == nil && r.Method == http.MethodHead {
		// HEAD on anything that has a GET (armresources' CheckExistence,
		// CheckExistenceByID): 204 when the GET would answer 200, the
		// GET's error status otherwise, never a body.
		rt, params, scope, _ = match(http.MethodGet, segs)
		existence = rt != nil
	}
	if rt == nil {
		if len(allowed) > 0 {
			return gatehouse.Errorf(http.StatusMethodNotAllowed, gatehouse.CodeMethodNotAllowed,
				"The method '%s' is not allowed for this path.", clip(r.Method)).WithHeader("Allow", strings.Join(allowed, ", "))
		}
		return errNoRoute(r.URL.Path)
	}
	if err := checkAPIVersion(r, rt.family); err != nil {
		return err
	}
	if existence {
		w = &existenceWriter{ResponseWriter: w}
	}
	c := &call{api: a, w: w, r: r, principal: p, params: params, scope: scope, route: rt}
	err = rt.handle(c)
	if rt.audit && c.action != "" {
		a.record(c, err)
	}
	return err
}

// existenceWriter answers a HEAD with a GET handler: its 200 becomes ARM's
// 204 No Content (what the SDKs' CheckExistence wants), and no body is
// sent.
type existenceWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *existenceWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code == http.StatusOK {
		code = http.StatusNoContent
		h := w.Header()
		h.Del("Content-Length")
		h.Del("Content-Type")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *existenceWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

// record writes the audit entry of a write, with the status the client
// got (201 for a create, 204 for a HEAD or an absent delete). Audit
// failures are logged: the write itself has already happened.
func (a *API) record(c *call, err error) {
	if corr := correlationID(c.r); corr != server.RequestID(c.ctx()) {
		c.detail("correlationId", corr)
	}
	e := audit.Entry{
		RequestID: server.RequestID(c.ctx()),
		Principal: audit.Principal{ObjectID: c.principal.ObjectID, Type: string(c.principal.Type), TenantID: c.principal.TenantID},
		Action:    c.action, Scope: c.auditScope, Result: audit.Succeeded, Status: http.StatusOK,
		Details: c.details, Surface: string(server.SurfaceManagement),
	}
	if sent := server.WrittenStatus(c.ctx()); sent != 0 {
		e.Status = sent
	}
	if c.principal.ManagedIdentity {
		e.Principal.Type = "ManagedIdentity"
	}
	if err != nil {
		e.Result, e.Status = audit.Failed, gatehouse.ErrorStatus(err)
		if ge, ok := gatehouse.AsError(err); ok {
			e.Code = ge.Code
		}
		if c.denied {
			e.Result = audit.Denied
		}
	}
	if _, aerr := a.opts.Audit.Append(context.WithoutCancel(c.ctx()), e); aerr != nil {
		a.opts.Logger.Error("audit append failed", "request_id", e.RequestID, "action", e.Action, "err", aerr)
	}
}

func errNoRoute(path string) error {
	return gatehouse.NotFoundf("InvalidResourceType", "The resource type could not be found for the path '%s'.", clip(path))
}

// splitPath splits an escaped path into unescaped segments. A trailing
// slash is ignored; empty segments (//) are not allowed.
func splitPath(escaped string) ([]string, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(escaped, "/"), "/")
	if t == "" {
		return nil, nil
	}
	parts := strings.Split(t, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil || u == "" || strings.ContainsAny(u, "/\\?#") || hasControl(u) {
			return nil, gatehouse.BadRequestf("InvalidRequestUri", "The request URI '%s' is not valid.", clip(escaped))
		}
		parts[i] = u
	}
	return parts, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// clip bounds what an error message repeats of the request: a resource
// id or path whole (ARM's names are bounded: ids stay well under 300
// bytes), anything longer cut.
func clip(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
