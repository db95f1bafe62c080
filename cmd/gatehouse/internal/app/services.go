package app

import "context"

// mountServices builds every service and mounts its routes. ctx is the
// start-up context; bg lives until Close (background loops).
func (m *Main) mountServices(ctx, bg context.Context) error {
	return nil
}

// bannerExtra returns lines the services add to the start-up banner.
func (m *Main) bannerExtra() []string { return nil }
