package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/kvapi"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/vault"
)

// The Key Vault challenge's tenant forms (Config.KeyVaultChallengeTenant).
const (
	ChallengeTenantADFS = "adfs"
	// ChallengeTenantDefault names the default tenant's GUID.
	ChallengeTenantDefault = "default"
)

// configureVault builds the vault service. It runs before the management
// API is mounted (which serves Microsoft.KeyVault/vaults over m.Vaults);
// mountVault mounts the data plane afterwards.
func (m *Main) configureVault(ctx, bg context.Context) error {
	var err error
	m.Vaults, err = vault.New(bg, m.Store, m.Watcher, vault.Options{
		Sealer:     m.Sealer,
		VaultURI:   m.vaultURI,
		Authorizer: vaultAuthorizer{m},
		// A purged vault's role assignments go with it (m.Authz is built
		// after the vault service, and before anything can purge).
		OnVaultPurged: func(ctx context.Context, id *gatehouse.ResourceID) error {
			if m.Authz == nil {
				return nil
			}
			_, err := m.Authz.DeleteAssignmentsWithin(ctx, id)
			return err
		},
		Now: m.Now, Rand: m.Rand, Logger: m.Logger,
	})
	if err != nil {
		return err
	}
	return m.Vaults.Load(ctx)
}

// vaultURI is a vault's data-plane URL: https://{name}.vault.H/ (H with
// its port, which the SDKs' challenge-resource check needs).
func (m *Main) vaultURI(name string) string { return "https://" + name + ".vault." + m.Host + "/" }

// mountVault mounts the Key Vault data plane on the vault hosts and starts
// the scheduled purge. It runs after mountManagement (authz, audit).
func (m *Main) mountVault(ctx, bg context.Context) error {
	if m.Vaults == nil || m.Authority == nil || m.Authz == nil || m.Audit == nil {
		return errors.New("vault: the identity and management services must be mounted first")
	}
	private, err := netacl.ParsePrefixes(m.Config.PrivateNetworks) // validated with the config
	if err != nil {
		return err
	}
	api := kvapi.New(kvapi.Options{
		PrivateNetworks:  private,
		Vaults:           m.Vaults,
		Verifier:         vaultVerifier{m.Authority},
		Authz:            m.Authz,
		Audit:            m.Audit,
		AuthorizationURI: m.vaultChallengeAuthority(),
		Resource:         m.Authority.VaultResource(),
		Logger:           m.Logger,
		Now:              m.Now,
	})
	api.Mount(m.Router.Vault)
	interval := m.Config.VaultPurgeInterval
	m.goBackground(func() { m.Vaults.Run(bg, interval) })
	return nil
}

// vaultChallengeAuthority is the challenge's authorization URL:
// https://H/adfs by default (clients configured by environment, az), or
// https://H/{tenant GUID} (code that disables instance discovery).
func (m *Main) vaultChallengeAuthority() string {
	t := m.Config.KeyVaultChallengeTenant
	switch t {
	case "", ChallengeTenantADFS:
		t = ChallengeTenantADFS
	case ChallengeTenantDefault:
		t = m.Directory.DefaultTenant()
	}
	return m.URL + "/" + t
}

// vaultBanner is the Key Vault part of the start-up banner.
func (m *Main) vaultBanner() []string {
	if m.Vaults == nil || m.Authority == nil {
		return nil
	}
	lines := []string{
		"Key Vault: " + m.vaultURI("{vault}") + "  (resource " + m.Authority.VaultResource() + ", challenge tenant " + m.vaultChallengeAuthority() + ")",
		fmt.Sprintf("  without a wildcard resolver for *.vault.%s, add \"127.0.0.1 {vault}.vault.%s\" to /etc/hosts per vault", hostOnly(m.Host), hostOnly(m.Host)),
	}
	if w := ipHostWarning(m.Host); w != "" {
		lines = append(lines, "  "+w)
	}
	return lines
}

func hostOnly(h string) string {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == ':' {
			return h[:i]
		}
		if h[i] < '0' || h[i] > '9' {
			break
		}
	}
	return h
}

// validChallengeTenant is used by Config.Validate.
func validChallengeTenant(t string) bool {
	return t == ChallengeTenantADFS || t == ChallengeTenantDefault || gatehouse.IsGUID(t)
}

// vaultVerifier verifies vault tokens with the authority's one verifier:
// audience https://vault.H with or without the trailing slash.
type vaultVerifier struct{ a *authority.Authority }

func (x vaultVerifier) VerifyVaultToken(ctx context.Context, raw string) (gatehouse.Principal, error) {
	c, err := x.a.Verify(ctx, raw, x.a.VaultAudiences()...)
	if errors.Is(err, authority.ErrTokenExpired) {
		return gatehouse.Principal{}, fmt.Errorf("%w: %w", kvapi.ErrTokenExpired, err)
	}
	if err != nil {
		return gatehouse.Principal{}, err
	}
	return c.Principal, nil
}

// vaultAuthorizer gives vault.ResolveSecretReference the authorization
// decision (m.Authz is built after the vault service).
type vaultAuthorizer struct{ m *Main }

func (x vaultAuthorizer) AuthorizeData(principalID, action string, scope *gatehouse.ResourceID) bool {
	z := x.m.Authz
	return z != nil && z.Decide(principalID, authz.DataAction(action), scope).Allowed
}

// ResolveUpstreamSecret reads the Key Vault secret that uri references
// (https://{vault}.vault.H/secrets/{name}[/{version}]) as the account's
// managed identity — its system-assigned identity, else its only
// user-assigned one — authorized by RBAC like any reader (the identity
// needs Key Vault Secrets User on the secret or vault). It is the hook for
// a deployment's properties.upstream.keyVaultSecret: upstream.go calls it
// and keeps the value in memory for at most UpstreamSecretTTL, dropping it
// at any change to secrets, vaults, roles or accounts.
//
// Errors: *gatehouse.Error from vault.ResolveSecretReference (400, 403,
// 404, 503), or 403 Forbidden when the account has no usable identity.
func (m *Main) ResolveUpstreamSecret(ctx context.Context, acct *accounts.Account, uri string) ([]byte, string, error) {
	p, ok := accountPrincipal(acct)
	if !ok {
		return nil, "", gatehouse.Errorf(403, vault.CodeForbidden,
			"The account has no managed identity (or several user-assigned ones) to read %s with.", uri)
	}
	return m.Vaults.ResolveSecretReference(ctx, p, uri)
}

// accountPrincipal is the identity an account acts as.
func accountPrincipal(a *accounts.Account) (gatehouse.Principal, bool) {
	ref, ok := a.Identity.ActsAs()
	if !ok {
		return gatehouse.Principal{}, false
	}
	return gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: ref.PrincipalID, ClientID: ref.ClientID,
		TenantID: ref.TenantID, ManagedIdentity: true}, true
}

// ipHostWarning is the banner's warning for a --host that is an IP
// address: names under it resolve nowhere, so the vaults (and the
// accounts' host forms) are out of the SDKs' reach. "" for a DNS name.
func ipHostWarning(host string) string {
	if net.ParseIP(strings.Trim(hostOnly(host), "[]")) == nil {
		return ""
	}
	return "warning: --host " + host + " is an IP address, under which no {vault}.vault.… name resolves: give --host a DNS name (localhost works) for Key Vault clients"
}
