package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/directory"
)

// BootstrapCredentials is what the first start hands the operator: printed
// once, or written as JSON (0600) to --bootstrap-file. The optional fields
// are filled by later bootstrap steps (the management API's default
// subscription and group) and omitted when empty.
type BootstrapCredentials struct {
	TenantID      string `json:"tenantId"`
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret"`
	AuthorityHost string `json:"authorityHost"`
	CAFile        string `json:"caFile"`

	SubscriptionID string `json:"subscriptionId,omitempty"`
	ResourceGroup  string `json:"resourceGroup,omitempty"`
	ARMEndpoint    string `json:"armEndpoint,omitempty"`
}

// Bootstrap is the state passed along the bootstrap steps.
type Bootstrap struct {
	// First is true when this start created the bootstrap service
	// principal's secret: the credentials are shown (or written) at the
	// end, and never again.
	First bool
	// TenantID is the default tenant; ClientID and ObjectID identify the
	// bootstrap service principal (it holds the Global Administrator
	// directory role; later steps grant it what they own, e.g. Owner of the
	// default subscription).
	TenantID, ClientID, ObjectID string
	// Credentials is what is shown or written when First. Steps fill their
	// fields (SubscriptionID, ResourceGroup, ARMEndpoint).
	Credentials BootstrapCredentials
}

// BootstrapStep is one idempotent start-up step. Steps run on every start
// (so a step added by an upgrade runs on existing deployments too), in the
// order they were added, after every service is mounted.
type BootstrapStep struct {
	Name string
	Run  func(ctx context.Context, b *Bootstrap) error
}

// AddBootstrapStep appends a step. The identity step ("identity") is added
// by mountIdentity and runs first; a service mounted after it (the
// management API) adds its own from its mount function.
func (m *Main) AddBootstrapStep(name string, run func(ctx context.Context, b *Bootstrap) error) {
	m.identity.bootstrap = append(m.identity.bootstrap, BootstrapStep{Name: name, Run: run})
}

// runBootstrap runs the steps, then shows the credentials on the first
// start: in the bootstrap file when configured, else in the banner.
func (m *Main) runBootstrap(ctx context.Context) error {
	b := &Bootstrap{}
	for _, s := range m.identity.bootstrap {
		if err := s.Run(ctx, b); err != nil {
			return fmt.Errorf("bootstrap %s: %w", s.Name, err)
		}
	}
	if !b.First {
		return nil
	}
	if path := m.Config.BootstrapFile; path != "" {
		if err := writeBootstrapFile(path, &b.Credentials); err != nil {
			return fmt.Errorf("bootstrap file: %w", err)
		}
		abs, _ := filepath.Abs(path)
		m.identity.banner = append(m.identity.banner, "Bootstrap credentials written to "+abs+" (0600).")
		return nil
	}
	c := &b.Credentials
	m.identity.banner = append(m.identity.banner,
		"Bootstrap service principal (shown once — store the secret now; it is kept only as a hash):",
		"  export AZURE_AUTHORITY_HOST="+c.AuthorityHost,
		// adfs, not the tenant's GUID: the SDKs' (MSAL's) instance
		// discovery asks login.microsoftonline.com about any other
		// authority, and fails offline (see the identity banner above).
		"  export AZURE_TENANT_ID=adfs   # the tenant "+c.TenantID,
		"  export AZURE_CLIENT_ID="+c.ClientID,
		"  export AZURE_CLIENT_SECRET="+c.ClientSecret,
		"  gatehouse login --server "+c.AuthorityHost+" --ca-file "+c.CAFile+" --tenant "+c.TenantID+
			" --service-principal -u "+c.ClientID+" -p \"$AZURE_CLIENT_SECRET\"",
	)
	return nil
}

// writeBootstrapFile writes creds as JSON with mode 0600, replacing the
// file atomically.
func writeBootstrapFile(path string, creds *BootstrapCredentials) error {
	data, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bootstrap-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadBootstrapFile reads a file written by --bootstrap-file.
func ReadBootstrapFile(path string) (*BootstrapCredentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c BootstrapCredentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// bootstrapIdentity creates the bootstrap service principal on first start
// (exactly once across nodes: the client id is claimed in storage first)
// and gives it a non-expiring secret. It holds the Global Administrator
// directory role.
func (m *Main) bootstrapIdentity(ctx context.Context, b *Bootstrap) error {
	d := m.Directory
	b.TenantID = d.DefaultTenant()
	clientID, claimed, err := d.ClaimBootstrap(ctx)
	if err != nil {
		return err
	}
	created := false
	if claimed {
		_, err := d.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "gatehouse-bootstrap",
			TenantID: b.TenantID, ServicePrincipal: true, AppID: clientID,
			Roles: []string{directory.RoleGlobalAdministrator}})
		if err != nil && !errors.Is(err, directory.ErrAlreadyExists) {
			return err
		}
		created = err == nil
	}
	app, err := d.Application(clientID)
	if err != nil {
		return err
	}
	b.ClientID, b.ObjectID = app.AppID, app.ObjectID
	if created {
		err := m.auditStartup(ctx, b, "microsoft.directory/servicePrincipals/create", "/servicePrincipals/"+app.ObjectID,
			map[string]string{"name": "gatehouse-bootstrap", "roleName": "Global Administrator"})
		if err != nil {
			return err
		}
	}
	cred := &b.Credentials
	cred.TenantID, cred.ClientID, cred.AuthorityHost = b.TenantID, app.AppID, m.URL
	if ca := m.Certs.CAFile(); ca != "" {
		cred.CAFile, _ = filepath.Abs(ca)
	}
	if len(app.Secrets) > 0 {
		return nil
	}
	// A new bootstrap principal, or one whose first start crashed before
	// its secret was made.
	_, secret, err := d.AddSecret(ctx, clientID, directory.SecretSpec{DisplayName: "bootstrap"})
	if err != nil {
		return err
	}
	b.First, cred.ClientSecret = true, secret
	return nil
}

// auditStartup records what a start-up step did on the server's own
// authority — the bootstrap principal, its Owner assignment, the --dev
// demo account — in the audit log, as the requests that do the same are:
// surface "serve", in the bootstrap principal's name (the steps act for
// it, and the resources name it as their creator).
func (m *Main) auditStartup(ctx context.Context, b *Bootstrap, action, scope string, details map[string]string) error {
	if m.Audit == nil {
		return nil // the identity authority alone: no log to write
	}
	_, err := m.Audit.Append(ctx, audit.Entry{
		Principal: audit.Principal{ObjectID: b.ObjectID, Type: string(gatehouse.PrincipalServicePrincipal),
			Name: "gatehouse-bootstrap", TenantID: b.TenantID},
		Action: action, Scope: scope, Result: audit.Succeeded, Details: details, Surface: "serve",
	})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}
