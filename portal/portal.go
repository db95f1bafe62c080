package portal

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

// The services the portal uses: only the methods it calls.
type (
	// Directory signs people in and names principals.
	Directory interface {
		DefaultTenant() string
		// CheckPassword: directory.ErrInvalidPassword, ErrDisabled,
		// ErrPasswordExpired (a temporary password: ChangePassword).
		CheckPassword(ctx context.Context, tenantID, userName, password string) (gatehouse.Principal, error)
		// ChangePassword: CheckPassword's errors, directory.ErrInvalid
		// for the new password.
		ChangePassword(ctx context.Context, tenantID, userName, current, next string) (gatehouse.Principal, error)
		// User: directory.ErrNotFound.
		User(id string) (*directory.User, error)
		Principal(ctx context.Context, objectID string) (gatehouse.Principal, error)
		PrincipalByClientID(clientID string) (gatehouse.Principal, error)
		// Group: directory.ErrNotFound. Role assignments to a group grant
		// its members.
		Group(id string) (*directory.Group, error)
		// RevokeSignInSessions ends every session of the person (Graph's
		// revokeSignInSessions): "Sign out everywhere".
		RevokeSignInSessions(ctx context.Context, id string) (*directory.User, error)
	}
	// Authz decides, lists and writes role assignments.
	Authz interface {
		Decide(principalID string, op authz.Operation, scope *gatehouse.ResourceID) authz.Decision
		Assignments(f authz.AssignmentFilter) []*authz.Assignment
		Role(id string) (*authz.RoleDefinition, bool)
		Roles(f authz.RoleFilter) []*authz.RoleDefinition
		CreateAssignment(ctx context.Context, scope *gatehouse.ResourceID, name string, spec authz.AssignmentSpec, by string) (*authz.Assignment, bool, error)
		DeleteAssignment(ctx context.Context, scope *gatehouse.ResourceID, name string) (*authz.Assignment, error)
	}
	// Accounts is the AI accounts service.
	Accounts interface {
		List(ctx context.Context, scope *gatehouse.ResourceID) ([]*accounts.Account, error)
		Get(ctx context.Context, id *gatehouse.ResourceID) (*accounts.Account, error)
		ListKeys(ctx context.Context, id *gatehouse.ResourceID) (accounts.Keys, error)
		RegenerateKey(ctx context.Context, id *gatehouse.ResourceID, slot int, by accounts.Actor) (accounts.Keys, *accounts.Account, error)
		KeyUsage(ctx context.Context, id *gatehouse.ResourceID) (*accounts.Evidence, error)
		// ListDeleted and Put (with Restore) list and recover soft-deleted
		// accounts.
		ListDeleted(ctx context.Context, sub string) ([]*accounts.Account, error)
		Put(ctx context.Context, id *gatehouse.ResourceID, spec accounts.Spec, by accounts.Actor) (*accounts.Account, bool, error)
		// Patch changes an account's tags (tags.go).
		Patch(ctx context.Context, id *gatehouse.ResourceID, spec accounts.Spec, by accounts.Actor) (*accounts.Account, error)
	}
	// Deployments lists an account's deployments, deploys the model
	// catalog's models (showing their quotas) and deletes deployments.
	Deployments interface {
		QuotaUsages(ctx context.Context, subscription, location string) ([]accounts.QuotaUsage, error)
		ListDeployments(ctx context.Context, acct *accounts.Account) ([]*accounts.Deployment, error)
		GetDeployment(ctx context.Context, acct *accounts.Account, name string) (*accounts.Deployment, error)
		PutDeployment(ctx context.Context, acct *accounts.Account, name string, spec accounts.DeploymentSpec, by accounts.Actor) (*accounts.Deployment, bool, error)
		DeleteDeployment(ctx context.Context, acct *accounts.Account, name string) (bool, error)
		Catalog() *accounts.Catalog
	}
	// Resources lists subscriptions and checks management locks.
	Resources interface {
		Subscriptions(ctx context.Context) ([]*resources.Subscription, error)
		CheckLocks(ctx context.Context, target *gatehouse.ResourceID, action string) error
		Locks(ctx context.Context, sub string) ([]*resources.Lock, error)
		// TagNames lists the predefined tag names the tag form suggests.
		TagNames(ctx context.Context, sub string) ([]*resources.TagName, error)
	}
	// Vaults lists vaults and their secrets' metadata (never values).
	Vaults interface {
		ListVaults(ctx context.Context, scope *gatehouse.ResourceID) ([]*vault.Vault, error)
		GetVault(ctx context.Context, id *gatehouse.ResourceID) (*vault.Vault, error)
		ListSecrets(ctx context.Context, v *vault.Vault, after string, limit int) ([]*vault.Secret, string, error)
		// PatchVault changes a vault's tags (tags.go).
		PatchVault(ctx context.Context, id *gatehouse.ResourceID, spec vault.Spec, by vault.Actor) (*vault.Vault, error)
	}
	// Auditor records what people do, and reads a resource's recent
	// entries for its activity page.
	Auditor interface {
		Append(ctx context.Context, e audit.Entry) (*audit.Record, error)
		Recent(ctx context.Context, window, limit int, keep func(*audit.Record) bool) ([]*audit.Record, error)
	}
)

// Options configure the portal. Directory, Authz, Accounts, Resources,
// Audit and Store are required; Deployments and Vaults are optional.
type Options struct {
	Directory   Directory
	Authz       Authz
	Accounts    Accounts
	Deployments Deployments
	// DeploymentQuotas: the gateway enforces deployments' capacity
	// (serve --deployment-quotas); the account page says whether.
	DeploymentQuotas bool
	Resources        Resources
	Vaults           Vaults
	// SignIns, when set, serves the pages where people approve apps'
	// sign-ins (authority.DevicePagePath, authority.AuthorizePagePath).
	SignIns SignIns
	Audit   Auditor
	// Store keeps sign-in sessions (kind "portal.session"), so every node
	// knows them and signing out ends them everywhere.
	Store storage.Objects

	// SessionLifetime bounds a session from sign-in (default 8 hours).
	SessionLifetime time.Duration
	// SignInsPerMinute bounds failed sign-ins per client address and user
	// name (default 10, with a burst of as many; ten times that per
	// address).
	SignInsPerMinute int
	Now              func() time.Time
	Rand             func([]byte) error
	Logger           *slog.Logger
	// PrivateNetworks are the client networks that count as private
	// endpoints (serve --private-networks): a vault's network rules do
	// not apply to them, here as on its data plane.
	PrivateNetworks netacl.Networks
}

// Portal serves the pages. It is safe for concurrent use.
type Portal struct {
	opts     Options
	sessions *storage.Table[session]
	pages    map[string]*template.Template
	throttle *throttle
	// codes bounds wrong device codes the same way, apart: a person's
	// typos there must not lock them out of signing in.
	codes  *throttle
	static fs.FS
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the portal.
func New(opts Options) *Portal {
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = 8 * time.Hour
	}
	if opts.SignInsPerMinute <= 0 {
		opts.SignInsPerMinute = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = randRead
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded: cannot fail
	return &Portal{
		opts:     opts,
		sessions: storage.NewTable[session](opts.Store, KindSession),
		pages:    parsePages(),
		throttle: newThrottle(opts.SignInsPerMinute),
		codes:    newThrottle(opts.SignInsPerMinute),
		static:   static,
	}
}

// Mount adds the portal's routes, all under /portal/, to mux (the root
// host's). The portal is a browser surface: it has its own handler chain
// with cross-origin protection, a strict Content-Security-Policy and
// session cookies; the API surfaces never read those cookies.
func (p *Portal) Mount(mux *http.ServeMux) {
	m := http.NewServeMux()
	page := func(pattern string, h func(*req) error) { m.Handle(pattern, p.handle(h, true)) }
	open := func(pattern string, h func(*req) error) { m.Handle(pattern, p.handle(h, false)) }

	open("GET /portal/signin", p.signInPage)
	open("POST /portal/signin", p.signIn)
	open("GET /portal/signout", p.signOutPage) // an app's sign-out (the authority's end-session endpoint)
	open("POST /portal/signout", p.signOut)
	page("GET /portal/signout-everywhere", p.confirmSignOutEverywhere)
	page("POST /portal/signout-everywhere", p.signOutEverywhere)
	page("GET /portal/{$}", p.home)
	page("GET "+authority.DevicePagePath, p.devicePage)
	page("POST "+authority.DevicePagePath, p.deviceLookup)
	page("POST "+authority.DevicePagePath+"/approve", p.deviceDecide(true))
	page("POST "+authority.DevicePagePath+"/decline", p.deviceDecide(false))
	open("GET "+authority.AuthorizePagePath, p.authorizePage) // signs in itself: prompt=none must not redirect
	page("POST "+authority.AuthorizePagePath, p.authorizeDecide)
	page("GET /portal/accounts/{sub}/{rg}/{name}", p.accountPage)
	page("POST /portal/accounts/{sub}/{rg}/{name}/keys", p.showKeys)
	page("POST /portal/accounts/{sub}/{rg}/{name}/regenerate", p.regenerate)
	page("POST /portal/accounts/{sub}/{rg}/{name}/recover", p.recoverAccount)
	page("POST /portal/accounts/{sub}/{rg}/{name}/deployments", p.deployModel)
	page("GET /portal/accounts/{sub}/{rg}/{name}/deployments/{deployment}/delete", p.confirmDeleteDeployment)
	page("POST /portal/accounts/{sub}/{rg}/{name}/deployments/{deployment}/delete", p.deleteDeployment)
	page("GET /portal/vaults/{sub}/{rg}/{name}", p.vaultPage)
	page("GET /portal/accounts/{sub}/{rg}/{name}/activity", p.activityPage(p.accountRoles(), "account"))
	page("GET /portal/vaults/{sub}/{rg}/{name}/activity", p.activityPage(p.vaultRoles(), "vault"))
	page("POST /portal/accounts/{sub}/{rg}/{name}/roles", p.addRole(p.accountRoles()))
	page("GET /portal/accounts/{sub}/{rg}/{name}/roles/{assignment}/delete", p.confirmRemoveRole(p.accountRoles()))
	page("POST /portal/accounts/{sub}/{rg}/{name}/roles/{assignment}/delete", p.removeRole(p.accountRoles()))
	page("POST /portal/accounts/{sub}/{rg}/{name}/tags", p.setTag(p.accountTags()))
	page("POST /portal/accounts/{sub}/{rg}/{name}/tags/remove", p.removeTag(p.accountTags()))
	page("POST /portal/vaults/{sub}/{rg}/{name}/tags", p.setTag(p.vaultTags()))
	page("POST /portal/vaults/{sub}/{rg}/{name}/tags/remove", p.removeTag(p.vaultTags()))
	page("POST /portal/vaults/{sub}/{rg}/{name}/roles", p.addRole(p.vaultRoles()))
	page("GET /portal/vaults/{sub}/{rg}/{name}/roles/{assignment}/delete", p.confirmRemoveRole(p.vaultRoles()))
	page("POST /portal/vaults/{sub}/{rg}/{name}/roles/{assignment}/delete", p.removeRole(p.vaultRoles()))
	m.Handle("GET /portal/static/", http.StripPrefix("/portal/static/", staticHandler(p.static)))
	open("/portal/", func(*req) error {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such page.")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, gatehouse.Errorf(http.StatusForbidden, "CrossOriginRequest",
			"The request came from another site and was refused."))
	}))
	h := server.WithSurface(server.SurfacePortal, securityHeaders(cop.Handler(m)))
	mux.Handle("/portal/", h)
	mux.Handle("GET /portal", http.RedirectHandler("/portal/", http.StatusMovedPermanently))
}

// contentSecurityPolicy allows the portal's own script and stylesheet and
// nothing else: no inline script or style, no framing, forms post only
// here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
