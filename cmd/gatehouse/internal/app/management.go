package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/armapi"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/kvapi"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
)

// mountManagement builds the management services — role-based access
// (authz), the ARM hierarchy (resources), AI accounts, the audit log — and
// mounts the ARM-compatible API on the root host. It runs after
// mountIdentity (it uses m.Directory and m.Authority) and adds the
// "management" bootstrap step. Services built after it (the gateway) use
// m.Authz, m.Accounts and m.Audit.
func (m *Main) mountManagement(ctx, bg context.Context) error {
	m.Authz = authz.New(bg, m.Store, m.Watcher, authz.Options{Now: m.Now, Logger: m.Logger,
		Directory: directoryPrincipals{m.Directory}, Groups: m.Directory})
	if err := m.Authz.Load(ctx); err != nil {
		return err
	}
	m.Resources = resources.New(m.Store, resources.Options{Now: m.Now})
	m.Accounts = accounts.New(bg, m.Store, m.Watcher, accounts.Options{
		Sealer: m.Sealer, Identities: accountIdentities{m.Directory}, Endpoint: m.accountEndpoint,
		Now: m.Now, Rand: m.Rand, Logger: m.Logger, Retention: accountRetention(m.Config.AccountRetention),
		OnPurge: func(ctx context.Context, id string) error {
			rid, err := gatehouse.ParseResourceID(id)
			if err != nil {
				return err
			}
			_, err = m.Authz.DeleteAssignmentsWithin(ctx, rid)
			return err
		},
	})
	if err := m.Accounts.Load(ctx); err != nil {
		return err
	}
	m.Audit = audit.New(m.Store, m.Now)
	private, err := netacl.ParsePrefixes(m.Config.PrivateNetworks) // validated with the config
	if err != nil {
		return err
	}
	api := armapi.New(armapi.Options{
		Authenticator: armAuthenticator{m.Authority},
		Authz:         m.Authz, Accounts: m.Accounts, Resources: m.Resources, Audit: m.Audit,
		Identities:  directoryIdentities{m.Directory},
		DataActions: slices.Concat(gateway.DataActions(), kvapi.DataActions()),
		Directory:   m.Directory,
		// Deployments are built by configureDataPlane (gateway.go).
		Deployments: m.Deployments,
		// Vaults are built by configureVault (vault.go).
		Vaults: m.Vaults,
		// A vault's network rules hold for its secrets' metadata here as
		// on its data plane.
		PrivateNetworks: private,
		Tenants: func() []armapi.Tenant {
			var out []armapi.Tenant
			for _, t := range m.Directory.Tenants() {
				out = append(out, armapi.Tenant{ID: t.ID, DisplayName: t.DisplayName, Domain: server.Hostname(m.Host)})
			}
			return out
		},
		Logger: m.Logger,
	})
	api.Mount(m.Router.Root)
	m.AddBootstrapStep("management", m.bootstrapManagement)
	return nil
}

// accountEndpoint is the data-plane URL advertised in an account's
// properties.endpoint: the path form https://H/ai/{name}/. (The gateway's
// configuration may choose the host form https://{name}.cognitiveservices.H/.)
func (m *Main) accountEndpoint(name string) string {
	if m.AccountEndpoint != nil {
		return m.AccountEndpoint(name)
	}
	return m.URL + "/ai/" + name + "/"
}

// bootstrapManagement creates the default subscription (in the default
// tenant) and resource group once, makes the bootstrap service principal
// Owner of the subscription, and adds the management fields to the
// bootstrap credentials.
func (m *Main) bootstrapManagement(ctx context.Context, b *Bootstrap) error {
	d, err := m.Resources.EnsureDefaults(ctx, b.TenantID, func(ctx context.Context, sub *resources.Subscription, _ *resources.Group) error {
		if b.ObjectID == "" {
			return errors.New("no bootstrap principal")
		}
		scope := &gatehouse.ResourceID{Subscription: sub.ID}
		a, _, err := m.Authz.CreateAssignment(ctx, scope, bootstrapAssignmentName(sub.ID, b.ObjectID),
			authz.AssignmentSpec{RoleDefinitionID: authz.DefinitionID(scope, authz.RoleOwner), PrincipalID: b.ObjectID,
				PrincipalType: string(gatehouse.PrincipalServicePrincipal), Description: "Gatehouse bootstrap"}, b.ObjectID)
		if e, ok := gatehouse.AsError(err); ok && e.Code == "RoleAssignmentExists" {
			return nil
		}
		if err != nil {
			return err
		}
		return m.auditStartup(ctx, b, "Microsoft.Authorization/roleAssignments/write", a.ID(), map[string]string{
			"roleName": "Owner", "principalId": b.ObjectID, "principalType": string(gatehouse.PrincipalServicePrincipal)})
	})
	if err != nil {
		return err
	}
	c := &b.Credentials
	c.SubscriptionID, c.ResourceGroup, c.ARMEndpoint = d.Subscription, d.Group, m.URL
	return nil
}

// bootstrapAssignmentName derives the Owner assignment's name from the
// subscription and principal, so every node computes the same one.
func bootstrapAssignmentName(sub, principal string) string {
	s := sha256.Sum256([]byte("gatehouse bootstrap owner\x00" + sub + "\x00" + principal))
	s[6] = s[6]&0x0f | 0x50 // a name-based (v5-style) GUID
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// managementBanner is the management part of the start-up banner.
func (m *Main) managementBanner() []string {
	if m.Resources == nil {
		return nil
	}
	return []string{"Management API (ARM): " + m.URL + "  (az: --endpoint-resource-manager " + m.URL + "/)"}
}

// armAuthenticator authenticates management requests with the identity
// authority: ARM audiences, ARM's 401 codes.
type armAuthenticator struct{ a *authority.Authority }

func (x armAuthenticator) AuthenticateRequest(r *http.Request) (gatehouse.Principal, error) {
	c, err := x.a.AuthenticateARM(r, x.a.ManagementAudiences()...)
	if err != nil {
		return gatehouse.Principal{}, err
	}
	return c.Principal, nil
}

// directoryPrincipals lets authz check that assignees exist.
type directoryPrincipals struct{ d *directory.Directory }

func (x directoryPrincipals) LookupPrincipal(ctx context.Context, oid string) (gatehouse.Principal, bool, error) {
	p, err := x.d.Principal(ctx, oid)
	if errors.Is(err, directory.ErrNotFound) {
		// A security group: its assignments grant its members.
		if g, gerr := x.d.Group(oid); gerr == nil {
			return gatehouse.Principal{Type: gatehouse.PrincipalGroup, ObjectID: g.ObjectID, TenantID: g.TenantID, Name: g.DisplayName}, true, nil
		}
		return gatehouse.Principal{}, false, nil
	}
	if err != nil {
		return gatehouse.Principal{}, false, err
	}
	return p, true, nil
}

// accountRetention maps --account-retention (0: no soft delete) to
// accounts.Options.Retention (negative: no soft delete).
func accountRetention(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// accountIdentities gives accounts their managed identities: a
// system-assigned identity is the directory's managed identity named by
// the account's own resource id.
type accountIdentities struct{ d *directory.Directory }

func (x accountIdentities) EnsureSystemIdentity(ctx context.Context, resourceID, location string) (accounts.IdentityRef, error) {
	mi, err := x.d.GetManagedIdentity(ctx, resourceID)
	if errors.Is(err, directory.ErrNotFound) {
		mi, err = x.d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: resourceID, Location: location})
		if errors.Is(err, directory.ErrAlreadyExists) {
			mi, err = x.d.GetManagedIdentity(ctx, resourceID)
		}
	}
	if err != nil {
		return accounts.IdentityRef{}, err
	}
	return accounts.IdentityRef{PrincipalID: mi.PrincipalID, ClientID: mi.ClientID, TenantID: mi.TenantID}, nil
}

func (x accountIdentities) DeleteSystemIdentity(ctx context.Context, resourceID string) error {
	if err := x.d.DeleteManagedIdentity(ctx, resourceID); err != nil && !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	return nil
}

func (x accountIdentities) UserIdentity(ctx context.Context, resourceID string) (accounts.IdentityRef, bool, error) {
	mi, err := x.d.GetManagedIdentity(ctx, resourceID)
	if errors.Is(err, directory.ErrNotFound) {
		return accounts.IdentityRef{}, false, nil
	}
	if err != nil {
		return accounts.IdentityRef{}, false, err
	}
	return accounts.IdentityRef{PrincipalID: mi.PrincipalID, ClientID: mi.ClientID, TenantID: mi.TenantID}, true, nil
}

// directoryIdentities backs Microsoft.ManagedIdentity/userAssignedIdentities.
type directoryIdentities struct{ d *directory.Directory }

func identityOf(mi *directory.ManagedIdentity) *armapi.ManagedIdentity {
	return &armapi.ManagedIdentity{ResourceID: mi.ResourceID, Name: mi.Name, TenantID: mi.TenantID, ClientID: mi.ClientID,
		PrincipalID: mi.PrincipalID, Location: mi.Location, Tags: mi.Tags, Created: mi.Created}
}

func (x directoryIdentities) GetIdentity(ctx context.Context, id string) (*armapi.ManagedIdentity, bool, error) {
	mi, err := x.d.GetManagedIdentity(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return identityOf(mi), true, nil
}

func (x directoryIdentities) ListIdentities(ctx context.Context, scope string) ([]*armapi.ManagedIdentity, error) {
	list, err := x.d.ListManagedIdentities(ctx, scope)
	if err != nil {
		return nil, err
	}
	out := make([]*armapi.ManagedIdentity, len(list))
	for i, mi := range list {
		out[i] = identityOf(mi)
	}
	return out, nil
}

func (x directoryIdentities) CreateIdentity(ctx context.Context, id, location string, tags map[string]string) (*armapi.ManagedIdentity, bool, error) {
	mi, err := x.d.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{ResourceID: id, Location: location, Tags: tags})
	if errors.Is(err, directory.ErrAlreadyExists) {
		if mi, err = x.d.GetManagedIdentity(ctx, id); err == nil {
			return identityOf(mi), false, nil
		}
	}
	if err != nil {
		return nil, false, err
	}
	return identityOf(mi), true, nil
}

func (x directoryIdentities) UpdateIdentity(ctx context.Context, id, location string, tags map[string]string) (*armapi.ManagedIdentity, error) {
	mi, err := x.d.UpdateManagedIdentity(ctx, id, location, tags)
	if err != nil {
		return nil, err
	}
	return identityOf(mi), nil
}

func (x directoryIdentities) ListFederated(ctx context.Context, id string) ([]armapi.FederatedCredential, error) {
	list, err := x.d.IdentityFederated(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]armapi.FederatedCredential, len(list))
	for i, f := range list {
		out[i] = armapi.FederatedCredential{Name: f.Name, Issuer: f.Issuer, Subject: f.Subject, Audiences: f.Audiences}
	}
	return out, nil
}

func (x directoryIdentities) PutFederated(ctx context.Context, id string, f armapi.FederatedCredential) (armapi.FederatedCredential, bool, error) {
	got, created, err := x.d.PutIdentityFederated(ctx, id, directory.FederatedCredential{Name: f.Name, Issuer: f.Issuer,
		Subject: f.Subject, Audiences: f.Audiences, JWKS: f.JWKS})
	if err != nil {
		// The directory speaks Graph's codes; ARM's are BadRequest and
		// Conflict.
		if ge, ok := gatehouse.AsError(err); ok && errors.Is(err, directory.ErrInvalid) {
			err = gatehouse.BadRequestf("BadRequest", "%s", ge.Message).WithTarget(ge.Target)
		} else if ok && errors.Is(err, directory.ErrAlreadyExists) {
			err = gatehouse.Errorf(http.StatusConflict, "Conflict", "%s", ge.Message)
		}
		return armapi.FederatedCredential{}, false, err
	}
	return armapi.FederatedCredential{Name: got.Name, Issuer: got.Issuer, Subject: got.Subject, Audiences: got.Audiences}, created, nil
}

func (x directoryIdentities) DeleteFederated(ctx context.Context, id, name string) (bool, error) {
	err := x.d.RemoveIdentityFederated(ctx, id, name)
	if errors.Is(err, directory.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (x directoryIdentities) DeleteIdentity(ctx context.Context, id string) (bool, error) {
	err := x.d.DeleteManagedIdentity(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
