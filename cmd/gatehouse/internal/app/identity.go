package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/graphapi"
	"github.com/gatehouse/gatehouse/server"
)

// identityState is the identity wiring's private part of Main.
type identityState struct {
	msiServer *http.Server
	// bootstrap are the bootstrap steps, in order (see bootstrap.go).
	bootstrap []BootstrapStep
	// banner holds the lines bootstrap prints once (the secret, unless a
	// bootstrap file takes it).
	banner []string
	// rotationCheck is how often the signing-key rotation is checked.
	rotationCheck time.Duration
}

// mountIdentity builds the directory and the identity authority, mounts
// the authority's and the Graph subset's routes on the root host, and
// starts the managed-identity endpoint on the loopback listener
// (--msi-listen, plain HTTP). Services built after it use m.Directory and
// m.Authority (Issue, Verify, AuthenticateARM).
func (m *Main) mountIdentity(ctx, bg context.Context) error {
	cfg := &m.Config
	m.Directory = directory.New(directory.Options{Store: m.Store, Watcher: m.Watcher, Logger: m.Logger,
		Now: m.Now, Rand: m.Rand})
	if err := m.Directory.Load(ctx); err != nil {
		return err
	}
	if _, _, err := m.Directory.EnsureDefaultTenant(ctx); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	var err error
	m.Authority, err = authority.New(authority.Options{
		Store: m.Store, Watcher: m.Watcher, Sealer: m.Sealer, Directory: m.Directory,
		Host: m.Host, Logger: m.Logger, Now: m.Now, Rand: m.Rand,
		SigningAlg: cfg.SigningAlg, RotationPeriod: cfg.SigningKeyRotation, TokenLifetime: cfg.TokenLifetime,
		Registerer: m.Metrics.Registry, RefreshTokenLifetime: cfg.RefreshTokenLifetime,
	})
	if err != nil {
		return err
	}
	if err := m.Authority.Start(ctx); err != nil {
		return err
	}
	// Directory writes and identity-header use go to the audit log (the
	// same append-only chain the management API writes).
	auditLog := audit.New(m.Store, m.Now)
	m.Authority.SetAuditor(auditLog)
	m.Authority.Mount(m.Router.Root)
	graph := graphapi.New(m.Directory, m.Authority, m.Logger)
	// The requests no route matched: Graph's alternate keys
	// (servicePrincipals(appId='…'), which no mux pattern can name), then
	// an unknown tenant's token and discovery paths.
	m.Router.NotFound = func(w http.ResponseWriter, r *http.Request) bool {
		return graph.ServeAlternateKey(w, r) || m.Authority.UnknownTenant(w, r)
	}
	graph.Audit = auditLog
	graph.ServicePrincipalDeleted = func(ctx context.Context, objectID string) error {
		if m.Authz == nil { // built after this; set when requests arrive
			return errors.New("role-based access is not configured")
		}
		_, err := m.Authz.DeleteAssignmentsOf(ctx, objectID)
		return err
	}
	graph.Mount(m.Router.Root)

	check := m.identity.rotationCheck
	if check <= 0 {
		check = time.Minute
	}
	m.goBackground(func() { m.Authority.Run(bg, check) })

	m.Authority.SetIdentityAuthorizer(m.authorizeIdentityUse)
	m.AddBootstrapStep("identity", m.bootstrapIdentity)
	return m.startMSI()
}

// actionAssignIdentity is what acting as a managed identity requires: the
// action Azure checks (and names in its errors) when an identity is
// assigned, with its literal "*". Managed Identity Operator, Contributor
// and Owner grant it.
const actionAssignIdentity = "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"

// authorizeIdentityUse lets a principal that is not a Global
// Administrator obtain an identity header when role-based access allows
// it: actionAssignIdentity on a user-assigned identity; for a resource's
// system-assigned identity, the right to change that resource
// ({type}/write on it) — the identity is the resource's own, and Managed
// Identity Operator, which assigns user-assigned identities, gives no
// tokens of it. The decision service (m.Authz) is built after
// mountIdentity; it exists when requests arrive.
func (m *Main) authorizeIdentityUse(ctx context.Context, caller gatehouse.Principal, mi *directory.ManagedIdentity) error {
	if m.Authz == nil {
		return errors.New("role-based access is not configured")
	}
	scope, err := gatehouse.ParseResourceID(mi.ResourceID)
	if err != nil {
		return err
	}
	action := actionAssignIdentity
	if !strings.EqualFold(scope.Type(), "Microsoft.ManagedIdentity/userAssignedIdentities") {
		action = scope.Type() + "/write"
	}
	if !m.Authz.Decide(caller.ObjectID, authz.Action(action), scope).Allowed {
		return gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed,
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s'.",
			caller.ClientName(), caller.ObjectID, action, mi.ResourceID)
	}
	return nil
}

// startMSI binds the managed-identity endpoint. It must stay on loopback
// (Config.Validate checks): the protocol is plain HTTP by design.
func (m *Main) startMSI() error {
	ln, err := m.listenTCP(m.Config.MSIListen)
	if err != nil {
		return fmt.Errorf("msi-listen %s: %w", m.Config.MSIListen, unwrapSyscall(err))
	}
	m.MSIAddr = ln.Addr()
	m.Authority.SetMSIEndpoint("http://" + ln.Addr().String() + "/msi/token")
	mw := &server.Middleware{Logger: m.Logger, Metrics: m.Metrics, Now: m.Now, BodyTimeout: m.Config.BodyTimeout}
	srv := &http.Server{
		Handler:           mw.Wrap(m.Authority.MSIHandler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelDebug),
	}
	m.identity.msiServer = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("managed-identity endpoint stopped", "err", err)
		}
	}()
	m.closers = append(m.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return nil
}

// identityBanner is the identity part of the start-up banner.
func (m *Main) identityBanner() []string {
	if m.Directory == nil {
		return nil
	}
	lines := []string{
		"Identity authority: " + m.URL + "/" + m.Directory.DefaultTenant() + "  (ADFS form: " + m.URL + "/adfs)",
		"  export AZURE_TENANT_ID=adfs   # or " + m.Directory.DefaultTenant() + " with DisableInstanceDiscovery",
	}
	if m.Authority != nil && m.Authority.MSIEndpoint() != "" {
		lines = append(lines, "Managed-identity endpoint: "+m.Authority.MSIEndpoint()+"  (use `gatehouse run --identity NAME -- CMD`)")
	}
	return append(lines, m.identity.banner...)
}
