package directory

import (
	"context"
	"maps"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// ManagedIdentity is a managed identity: a service principal without
// credentials whose tokens only the managed-identity endpoint hands out.
// It is named by an ARM resource id: a user-assigned identity's own id
// (…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}) or,
// for a system-assigned identity, the id of the resource it belongs to.
type ManagedIdentity struct {
	// ResourceID is the ARM id as given at creation (case kept).
	ResourceID string
	Name       string
	TenantID   string
	// ClientID is the application (client) id; PrincipalID the object id
	// (the token's oid, what role assignments name).
	ClientID    string
	PrincipalID string
	Location    string
	Tags        map[string]string
	Created     time.Time
}

// ManagedIdentitySpec creates a managed identity.
type ManagedIdentitySpec struct {
	// ResourceID is required.
	ResourceID string
	// Name defaults to the resource id's last name.
	Name string
	// TenantID: "" = the default tenant.
	TenantID string
	// Location and Tags are kept for the ARM view; the directory does not
	// interpret them.
	Location string
	Tags     map[string]string
}

func (e *entry) identity() *ManagedIdentity {
	r := &e.rec
	return &ManagedIdentity{ResourceID: r.ResourceID, Name: r.DisplayName, TenantID: r.TenantID, ClientID: r.AppID,
		PrincipalID: r.ObjectID, Location: r.Location, Tags: maps.Clone(r.Tags), Created: r.Created}
}

// CreateManagedIdentity creates a managed identity for spec.ResourceID.
// ErrAlreadyExists when that resource id already has one (a concurrent
// create loses here: the store enforces it); ErrInvalid (bad resource id or
// name); ErrNotFound (tenant).
func (d *Directory) CreateManagedIdentity(ctx context.Context, spec ManagedIdentitySpec) (*ManagedIdentity, error) {
	id, err := gatehouse.ParseResourceID(spec.ResourceID)
	if err != nil || id.Name() == "" || id.IsRoot() {
		return nil, invalid("resourceId", "%q is not an ARM resource id.", clip(spec.ResourceID))
	}
	name := spec.Name
	if name == "" {
		name = id.Name()
	}
	if err := validDisplayName(name); err != nil {
		return nil, err
	}
	tenant, err := d.tenantOrDefault(spec.TenantID)
	if err != nil {
		return nil, err
	}
	oid := gatehouse.NewGUID()
	r := record{Kind: kindManagedIdentity, TenantID: tenant, ObjectID: oid, AppID: gatehouse.NewGUID(),
		ServicePrincipal: true, DisplayName: name, Enabled: true, ResourceID: id.String(),
		Location: spec.Location, Tags: maps.Clone(spec.Tags), Created: storage.Now(d.now())}
	e, err := d.create(ctx, &r)
	if err != nil {
		return nil, err
	}
	return e.identity(), nil
}

// GetManagedIdentity returns the identity of resourceID (any case), from
// memory. ErrNotFound.
func (d *Directory) GetManagedIdentity(ctx context.Context, resourceID string) (*ManagedIdentity, error) {
	d.mu.RLock()
	e := d.byResourceID[resourceKey(resourceID)]
	d.mu.RUnlock()
	if e == nil {
		return nil, notFound("The managed identity %q does not exist.", clip(resourceID))
	}
	return e.identity(), nil
}

// ManagedIdentityByID returns the identity whose client id, object id or
// resource id is id. ErrNotFound.
func (d *Directory) ManagedIdentityByID(id string) (*ManagedIdentity, error) {
	d.mu.RLock()
	var e *entry
	for _, m := range []map[string]*entry{d.byAppID, d.byObjectID} {
		if c := m[lower(id)]; c != nil && c.rec.Kind == kindManagedIdentity {
			e = c
			break
		}
	}
	if e == nil {
		e = d.byResourceID[resourceKey(id)]
	}
	d.mu.RUnlock()
	if e == nil {
		return nil, notFound("The managed identity %q does not exist.", clip(id))
	}
	return e.identity(), nil
}

// ListManagedIdentities returns the identities whose resource id lies
// within scope (an ARM scope such as /subscriptions/{sub}/resourceGroups/{rg};
// "" or "/" = all), ordered by resource id. ErrInvalid (bad scope).
func (d *Directory) ListManagedIdentities(ctx context.Context, scope string) ([]*ManagedIdentity, error) {
	var sc *gatehouse.ResourceID
	if scope != "" && scope != "/" {
		var err error
		if sc, err = gatehouse.ParseResourceID(scope); err != nil {
			return nil, invalid("scope", "%q is not an ARM scope.", clip(scope))
		}
	}
	d.mu.RLock()
	var out []*ManagedIdentity
	for _, e := range d.byResourceID {
		if sc != nil {
			id, err := gatehouse.ParseResourceID(e.rec.ResourceID)
			if err != nil || !id.Within(sc) {
				continue
			}
		}
		out = append(out, e.identity())
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return resourceKey(out[i].ResourceID) < resourceKey(out[j].ResourceID) })
	return out, nil
}

// UpdateManagedIdentity replaces the identity's location and tags (its ids
// never change). ErrNotFound.
func (d *Directory) UpdateManagedIdentity(ctx context.Context, resourceID, location string, tags map[string]string) (*ManagedIdentity, error) {
	cur, err := d.GetManagedIdentity(ctx, resourceID)
	if err != nil {
		return nil, err
	}
	e, err := d.update(ctx, cur.PrincipalID, kindManagedIdentity, func(r *record) error {
		r.Location, r.Tags = location, maps.Clone(tags)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.identity(), nil
}

// DeleteManagedIdentity deletes the identity of resourceID. Tokens already
// issued stay valid until they expire (as in Azure); identity headers bound
// to it stop working. ErrNotFound.
func (d *Directory) DeleteManagedIdentity(ctx context.Context, resourceID string) error {
	cur, err := d.GetManagedIdentity(ctx, resourceID)
	if err != nil {
		return err
	}
	return d.delete(ctx, cur.PrincipalID)
}
