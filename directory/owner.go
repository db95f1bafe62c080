package directory

import (
	"context"
	"errors"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// Owners, as in Entra: an application object and its service principal each
// have a list of owners — people and service principals (managed identities
// included) of the same tenant — whom the Graph surface lets manage that
// object without a directory role. The lists live in the principal record
// (Owners, SPOwners), so deleting the application deletes them with it;
// deleting a principal removes it from every list (dropOwnerships), and so
// does deleting a service principal, whose object id comes back if it is
// created again. What owning grants is decided by the Graph surface; here
// IsOwner answers only for an owner that still exists and is enabled.

// MaxOwners bounds each owner list.
const MaxOwners = 100

// OwnedObject says which of an application record's two directory objects
// an owner list belongs to.
type OwnedObject int

const (
	// OwnedApplication is the application object (Graph /applications/{id}/owners).
	OwnedApplication OwnedObject = iota
	// OwnedServicePrincipal is its service principal (/servicePrincipals/{id}/owners).
	OwnedServicePrincipal
)

func (o OwnedObject) list(r *record) *[]string {
	if o == OwnedServicePrincipal {
		return &r.SPOwners
	}
	return &r.Owners
}

func (o OwnedObject) name() string {
	if o == OwnedServicePrincipal {
		return "service principal"
	}
	return "application"
}

// livePrincipal reports whether e is a principal that can act: a person,
// a managed identity or an application with its service principal,
// enabled. d.mu is held (or e is a snapshot).
func livePrincipal(e *entry) bool {
	return e != nil && e.rec.Enabled && e.isPrincipal()
}

// canOwn reports whether e may be made an owner of an object of tenant: a
// person, managed identity or application with its service principal, of
// that tenant (disabled ones too, as in Entra; they hold nothing while
// disabled).
func canOwn(e *entry, tenant string) bool {
	return e != nil && e.rec.TenantID == tenant && e.isPrincipal()
}

// AddOwner makes ownerID (the object id of a person or service principal of
// the object's tenant) an owner of the application id (any of its ids) or
// of its service principal. ErrNotFound (no such application, service
// principal or owner), ErrAlreadyExists (already an owner), ErrInvalid
// (more than MaxOwners).
func (d *Directory) AddOwner(ctx context.Context, id string, obj OwnedObject, ownerID string) (*Application, error) {
	e := d.findApp(id)
	if e == nil || obj == OwnedServicePrincipal && !e.rec.ServicePrincipal {
		return nil, notFound("The %s %q does not exist.", obj.name(), clip(id))
	}
	oid, ok := gatehouse.NormalizeGUID(ownerID)
	if !ok || !canOwn(d.lookup(oid), e.rec.TenantID) {
		return nil, notFound("The directory object %q does not exist.", clip(ownerID))
	}
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		list := obj.list(r)
		switch {
		case obj == OwnedServicePrincipal && !r.ServicePrincipal:
			return notFound("The service principal %q does not exist.", r.ObjectID)
		case slices.Contains(*list, oid):
			return alreadyExists("One or more added object references already exist for the following modified properties: 'owners'.")
		case len(*list) >= MaxOwners:
			return gatehouse.BadRequestf(CodeLimitExceeded, "An %s has at most %d owners.", obj.name(), MaxOwners).WithCause(ErrInvalid)
		}
		*list = append(*list, oid)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// RemoveOwner removes ownerID from the owners of the application id (any of
// its ids) or of its service principal. An object may be left without
// owners, as in Entra. ErrNotFound (no such object, or not an owner).
func (d *Directory) RemoveOwner(ctx context.Context, id string, obj OwnedObject, ownerID string) (*Application, error) {
	e := d.findApp(id)
	if e == nil || obj == OwnedServicePrincipal && !e.rec.ServicePrincipal {
		return nil, notFound("The %s %q does not exist.", obj.name(), clip(id))
	}
	oid, _ := gatehouse.NormalizeGUID(ownerID)
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		list := obj.list(r)
		i := slices.Index(*list, oid)
		if oid == "" || i < 0 {
			return notFound("%q is not an owner of the %s.", clip(ownerID), obj.name())
		}
		*list = slices.Delete(*list, i, i+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// IsOwner reports, from memory, whether principalID owns the application
// id (any of its ids) or its service principal, and still exists and is
// enabled.
func (d *Directory) IsOwner(id string, obj OwnedObject, principalID string) bool {
	e := d.findApp(id)
	if e == nil || obj == OwnedServicePrincipal && !e.rec.ServicePrincipal {
		return false
	}
	oid, ok := gatehouse.NormalizeGUID(principalID)
	if !ok || !slices.Contains(*obj.list(&e.rec), oid) {
		return false
	}
	owner := d.lookup(oid)
	return livePrincipal(owner) && owner.rec.TenantID == e.rec.TenantID
}

// OwnedBy lists the applications principalID owns (obj
// OwnedApplication) or whose service principal it owns
// (OwnedServicePrincipal), by display name.
func (d *Directory) OwnedBy(principalID string, obj OwnedObject) []*Application {
	oid, ok := gatehouse.NormalizeGUID(principalID)
	if !ok {
		return nil
	}
	return d.applicationsWhere(func(r *record) bool {
		return slices.Contains(*obj.list(r), oid) && (obj == OwnedApplication || r.ServicePrincipal)
	})
}

// dropOwnerships removes objectID, a principal that has just ceased to
// exist, from every owner list. It runs after the deletion, so a crash in
// between leaves links to a principal that IsOwner no longer counts; a
// later deletion of the same principal (or of its service principal)
// sweeps again.
func (d *Directory) dropOwnerships(ctx context.Context, objectID string) error {
	var owned []string
	d.mu.RLock()
	for _, e := range d.byObjectID {
		if e.rec.Kind == kindApplication && (slices.Contains(e.rec.Owners, objectID) || slices.Contains(e.rec.SPOwners, objectID)) {
			owned = append(owned, e.rec.ObjectID)
		}
	}
	d.mu.RUnlock()
	for _, id := range owned {
		_, err := d.update(ctx, id, kindApplication, func(r *record) error {
			n, m := len(r.Owners), len(r.SPOwners)
			r.Owners = slices.DeleteFunc(r.Owners, func(x string) bool { return x == objectID })
			r.SPOwners = slices.DeleteFunc(r.SPOwners, func(x string) bool { return x == objectID })
			if len(r.Owners) == n && len(r.SPOwners) == m {
				return errNoChange
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
