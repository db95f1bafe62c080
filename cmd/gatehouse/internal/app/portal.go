package app

import (
	"context"
	"io"

	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/portal"
)

// mountPortal builds the web portal over the management and vault services
// and mounts it at https://H/portal/. It runs after mountManagement and
// mountVault.
func (m *Main) mountPortal(context.Context, context.Context) error {
	opts := portal.Options{
		Directory: m.Directory, Authz: m.Authz, Accounts: m.Accounts, Deployments: m.Deployments,
		Resources: m.Resources, Audit: m.Audit, Store: m.Store, Now: m.Now, Logger: m.Logger,
		DeploymentQuotas: m.Config.DeploymentQuotas,
	}
	// Validated with the config.
	if private, err := netacl.ParsePrefixes(m.Config.PrivateNetworks); err == nil {
		opts.PrivateNetworks = private
	}
	if m.Rand != nil { // nil: crypto/rand
		opts.Rand = func(b []byte) error { _, err := io.ReadFull(m.Rand, b); return err }
	}
	if m.Authority != nil {
		opts.SignIns = m.Authority
	}
	if m.Vaults != nil {
		opts.Vaults = m.Vaults // a nil *vault.Service must not become a non-nil interface
	}
	m.Portal = portal.New(opts)
	m.Portal.Mount(m.Router.Root)
	return nil
}

func (m *Main) portalBanner() []string {
	if m.Portal == nil {
		return nil
	}
	return []string{"Portal: " + m.URL + "/portal/  (people sign in; create one with: gatehouse ad user create)"}
}
