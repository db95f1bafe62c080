package directory

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Tenant is a directory tenant.
type Tenant struct {
	ID          string
	DisplayName string
	Default     bool
	Created     time.Time
}

// TenantADFS is the tenant name ADFS-shaped clients use; it means the
// default tenant.
const TenantADFS = "adfs"

// DefaultTenant returns the default tenant's id ("" before
// EnsureDefaultTenant ran anywhere).
func (d *Directory) DefaultTenant() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.defaults.TenantID
}

// Tenants lists the tenants.
func (d *Directory) Tenants() []Tenant {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Tenant, 0, len(d.tenantList))
	for _, t := range d.tenantList {
		out = append(out, Tenant{ID: t.ID, DisplayName: t.DisplayName, Created: t.Created, Default: t.ID == d.defaults.TenantID})
	}
	return out
}

// ResolveTenant maps the tenant segment of an authority URL to a tenant id:
// "adfs" is the default tenant, a GUID must name a known tenant (any case).
// ErrNotFound.
func (d *Directory) ResolveTenant(name string) (string, error) {
	if strings.EqualFold(name, TenantADFS) {
		if t := d.DefaultTenant(); t != "" {
			return t, nil
		}
		return "", notFound("The directory has no default tenant yet.")
	}
	id, ok := gatehouse.NormalizeGUID(name)
	if ok {
		d.mu.RLock()
		_, ok = d.tenantList[id]
		d.mu.RUnlock()
	}
	if !ok {
		return "", notFound("Tenant '%s' not found.", clip(name))
	}
	return id, nil
}

// tenantOrDefault resolves "" to the default tenant and checks that a given
// tenant exists.
func (d *Directory) tenantOrDefault(tenantID string) (string, error) {
	if tenantID == "" {
		if t := d.DefaultTenant(); t != "" {
			return t, nil
		}
		return "", notFound("The directory has no default tenant yet.")
	}
	return d.ResolveTenant(tenantID)
}

// EnsureDefaultTenant creates the default tenant on first start and returns
// its id; created reports whether this call created it. Safe when several
// nodes start at once: the settings record is created first, so exactly one
// tenant id wins, and a crash between the two writes is repaired by the
// next call.
func (d *Directory) EnsureDefaultTenant(ctx context.Context) (tenantID string, created bool, err error) {
	settings, err := d.settings.Get(ctx, settingsDefault)
	if errors.Is(err, storage.ErrNotFound) {
		want := defaultSettings{TenantID: gatehouse.NewGUID()}
		settings, err = d.settings.Create(ctx, &storage.Record[defaultSettings]{Key: settingsDefault, Value: want})
		if errors.Is(err, storage.ErrAlreadyExists) {
			settings, err = d.settings.Get(ctx, settingsDefault)
		} else if err == nil {
			created = true
		}
	}
	if err != nil {
		return "", false, storeError(err)
	}
	tenantID = settings.Value.TenantID
	_, err = d.tenants.Create(ctx, &storage.Record[tenantRecord]{Key: tenantID,
		Value: tenantRecord{ID: tenantID, DisplayName: "Default Directory", Created: storage.Now(d.now())}})
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return "", false, storeError(err)
	}
	if err := d.written(ctx, KindSettings, settingsDefault); err != nil {
		return "", false, err
	}
	return tenantID, created, d.written(ctx, KindTenant, tenantID)
}

// ClaimBootstrap claims the right to create the bootstrap application: it
// returns the client id the bootstrap application has or must get. claimed
// is true when this call set it (this node creates the application); a node
// that finds it set but the application missing (a crash in between) gets
// claimed=true too. Call after EnsureDefaultTenant.
func (d *Directory) ClaimBootstrap(ctx context.Context) (clientID string, claimed bool, err error) {
	candidate := gatehouse.NewGUID()
	r, err := d.settings.Update(ctx, settingsDefault, func(r *storage.Record[defaultSettings]) error {
		if r.Value.BootstrapAppID == "" {
			r.Value.BootstrapAppID = candidate
		}
		return nil
	})
	if err != nil {
		return "", false, storeError(err)
	}
	clientID = r.Value.BootstrapAppID
	if clientID == candidate {
		return clientID, true, d.written(ctx, KindSettings, settingsDefault)
	}
	if _, err := d.principals.GetByAlt(ctx, "app:"+clientID); errors.Is(err, storage.ErrNotFound) {
		return clientID, true, nil
	} else if err != nil {
		return "", false, storeError(err)
	}
	return clientID, false, nil
}
