package app

import "context"

// mountServices builds every service and mounts its routes. ctx is the
// start-up context; bg lives until Close (background loops).
func (m *Main) mountServices(ctx, bg context.Context) error {
	if err := m.configureDataPlane(ctx, bg); err != nil {
		return err
	}
	if err := m.mountIdentity(ctx, bg); err != nil {
		return err
	}
	if err := m.configureVault(ctx, bg); err != nil { // vault.go
		return err
	}
	if err := m.mountManagement(ctx, bg); err != nil {
		return err
	}
	if err := m.mountVault(ctx, bg); err != nil { // vault.go
		return err
	}
	if err := m.mountGateway(ctx, bg); err != nil {
		return err
	}
	if err := m.mountPortal(ctx, bg); err != nil { // portal.go
		return err
	}
	m.startUpkeep(bg) // upkeep.go
	return m.runBootstrap(ctx)
}

// bannerExtra returns lines the services add to the start-up banner.
func (m *Main) bannerExtra() []string {
	var lines []string
	lines = append(lines, m.identityBanner()...)
	lines = append(lines, m.managementBanner()...)
	lines = append(lines, m.gatewayBanner()...)
	lines = append(lines, m.vaultBanner()...)
	lines = append(lines, m.portalBanner()...)
	return lines
}
