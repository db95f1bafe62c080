package directory

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
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

// Federated identity credentials of a user-assigned managed identity
// (Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials):
// workload identity federation — a workload outside (a Kubernetes service
// account, a CI job) presents its issuer's token as a client assertion
// with the identity's client id and gets the identity's tokens. The same
// rules as an application's: at most MaxFederated, names unique (any case),
// issuer and subject unique. The token endpoint checks them through
// Client.Federated like an application's.

// IdentityFederated returns the federated credentials of the identity
// resourceID. ErrNotFound.
func (d *Directory) IdentityFederated(ctx context.Context, resourceID string) ([]FederatedCredential, error) {
	cur, err := d.GetManagedIdentity(ctx, resourceID)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	e := d.byObjectID[lower(cur.PrincipalID)]
	d.mu.RUnlock()
	if e == nil {
		return nil, notFound("The managed identity %q does not exist.", clip(resourceID))
	}
	return (&Client{e: e}).Federated(), nil
}

// PutIdentityFederated creates the federated credential f.Name of the
// identity resourceID, or replaces the one of that name (its id kept), and
// reports whether it created it. ErrNotFound, ErrInvalid, ErrAlreadyExists
// (another credential has the issuer and subject).
func (d *Directory) PutIdentityFederated(ctx context.Context, resourceID string, f FederatedCredential) (FederatedCredential, bool, error) {
	if err := validFederated(&f); err != nil {
		return FederatedCredential{}, false, err
	}
	cur, err := d.GetManagedIdentity(ctx, resourceID)
	if err != nil {
		return FederatedCredential{}, false, err
	}
	rec := federatedRecord{ID: gatehouse.NewGUID(), Name: f.Name, Issuer: f.Issuer, Subject: f.Subject,
		Audiences: slices.Clone(f.Audiences), Description: f.Description, JWKS: f.JWKS}
	created := false
	_, err = d.update(ctx, cur.PrincipalID, kindManagedIdentity, func(r *record) error {
		created = true
		i := slices.IndexFunc(r.Federated, func(have federatedRecord) bool { return strings.EqualFold(have.Name, rec.Name) })
		for j, have := range r.Federated {
			if j != i && have.Issuer == rec.Issuer && have.Subject == rec.Subject {
				return alreadyExists("A federated identity credential with this issuer and subject already exists.")
			}
		}
		if i >= 0 {
			created = false
			rec.ID, rec.Name = r.Federated[i].ID, r.Federated[i].Name
			r.Federated[i] = rec
			return nil
		}
		if len(r.Federated) >= MaxFederated {
			return gatehouse.BadRequestf(CodeLimitExceeded, "A managed identity can have at most %d federated identity credentials.", MaxFederated).WithCause(ErrInvalid)
		}
		r.Federated = append(r.Federated, rec)
		return nil
	})
	if err != nil {
		return FederatedCredential{}, false, err
	}
	return rec.view(), created, nil
}

// RemoveIdentityFederated deletes the federated credential name of the
// identity resourceID. ErrNotFound (no identity, or no such credential).
func (d *Directory) RemoveIdentityFederated(ctx context.Context, resourceID, name string) error {
	cur, err := d.GetManagedIdentity(ctx, resourceID)
	if err != nil {
		return err
	}
	_, err = d.update(ctx, cur.PrincipalID, kindManagedIdentity, func(r *record) error {
		i := slices.IndexFunc(r.Federated, func(f federatedRecord) bool { return strings.EqualFold(f.Name, name) })
		if i < 0 {
			return notFound("The managed identity has no federated identity credential %q.", clip(name))
		}
		r.Federated = slices.Delete(r.Federated, i, i+1)
		return nil
	})
	return err
}
