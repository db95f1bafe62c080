package directory

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Limits per application, as in Entra.
const (
	MaxSecrets      = 20
	MaxCertificates = 20
	MaxFederated    = 20
	maxDisplayName  = 256
)

// Application is a read-only view of an application registration and its
// service principal (one object here; Graph shows it as two).
type Application struct {
	// ObjectID is the service principal's object id: the token's oid and
	// what role assignments name.
	ObjectID string
	// AppObjectID is the application object's id (Graph /applications/{id}).
	AppObjectID string
	// AppID is the application (client) id.
	AppID       string
	TenantID    string
	DisplayName string
	Enabled     bool
	// ServicePrincipal is false while the application has no service
	// principal: it cannot get tokens and is not a principal.
	ServicePrincipal bool
	Roles            []string
	Created          time.Time
	Secrets          []SecretInfo
	Certificates     []CertificateInfo
	Federated        []FederatedCredential
	// IdentifierURIs name the application's API besides its application
	// id (api.go).
	IdentifierURIs []string
	// WebRedirectURIs and PublicRedirectURIs are the registered redirect
	// URIs (api.go).
	WebRedirectURIs, PublicRedirectURIs []string
	// AppRoles it defines and AppRoleAssignments of them (approles.go).
	AppRoles           []AppRole
	AppRoleAssignments []AppRoleAssignment
	// PermissionScopes are the delegated scopes its API exposes (scopes.go).
	PermissionScopes []PermissionScope
	// GroupMembershipClaims: "" (None), SecurityGroup, DirectoryRole or
	// All: the group claims of its tokens (scopes.go).
	GroupMembershipClaims string
	// AccessTokenVersion is the API's requestedAccessTokenVersion, 1 or 2
	// (0: not set). Kept and shown; tokens here have one format either way.
	AccessTokenVersion int
	// RequiredAccess: the permissions it declares on other APIs
	// (requiredResourceAccess; informational: consent is implicit).
	RequiredAccess []RequiredResourceAccess
	// Owners and SPOwners: the object ids of the owners of the application
	// object and of its service principal, in the order they were added
	// (owner.go). They may name a principal deleted a moment ago.
	Owners, SPOwners []string
}

// SecretInfo describes a client secret. The secret itself is never kept.
type SecretInfo struct {
	KeyID       string
	DisplayName string
	// Hint is the secret's first three characters, as Graph shows.
	Hint       string
	Start, End time.Time // End zero: never expires
	// ServicePrincipal: the service principal's own secret (Graph lists it
	// on the service principal, not on the application object); either
	// kind signs the client in.
	ServicePrincipal bool
}

// ApplicationSpec creates an application.
type ApplicationSpec struct {
	DisplayName string
	// TenantID: "" = the default tenant.
	TenantID string
	// ServicePrincipal creates the service principal at once (what `ad sp
	// create` does); Graph's POST /applications leaves it false.
	ServicePrincipal bool
	Roles            []string
	// AppID is normally left empty (a new GUID); bootstrap sets it.
	AppID string
	// Owner, when set, is the object id of the principal creating it (a
	// person or service principal of the tenant): it becomes the first
	// owner of the application and of its service principal, as in Entra.
	Owner string
}

func (e *entry) application() *Application {
	r := &e.rec
	a := &Application{ObjectID: r.ObjectID, AppObjectID: r.AppObjectID, AppID: r.AppID, TenantID: r.TenantID,
		DisplayName: r.DisplayName, Enabled: r.Enabled, ServicePrincipal: r.ServicePrincipal,
		Roles: slices.Clone(r.Roles), Created: r.Created, IdentifierURIs: slices.Clone(r.IdentifierURIs),
		WebRedirectURIs: slices.Clone(r.WebRedirectURIs), PublicRedirectURIs: slices.Clone(r.PublicRedirectURIs),
		AppRoles: slices.Clone(r.AppRoles), AppRoleAssignments: slices.Clone(r.AppRoleAssignments),
		PermissionScopes: slices.Clone(r.PermissionScopes), GroupMembershipClaims: r.GroupMembershipClaims, AccessTokenVersion: r.AccessTokenVersion,
		RequiredAccess: slices.Clone(r.RequiredAccess), Owners: slices.Clone(r.Owners), SPOwners: slices.Clone(r.SPOwners)}
	for i := range a.AppRoleAssignments {
		a.AppRoleAssignments[i].ResourceID = r.ObjectID
	}
	for _, s := range r.Secrets {
		a.Secrets = append(a.Secrets, SecretInfo{KeyID: s.KeyID, DisplayName: s.DisplayName, Hint: s.Hint, Start: s.Start, End: s.End,
			ServicePrincipal: s.ServicePrincipal})
	}
	for _, c := range e.certs {
		a.Certificates = append(a.Certificates, c.Info())
	}
	for _, f := range r.Federated {
		a.Federated = append(a.Federated, f.view())
	}
	return a
}

func validDisplayName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("displayName", "The display name must not be empty.")
	}
	if utf8.RuneCountInString(name) > maxDisplayName || !utf8.ValidString(name) {
		return invalid("displayName", "The display name must be valid UTF-8 of at most %d characters.", maxDisplayName)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return invalid("displayName", "The display name must not contain control characters.")
		}
	}
	return nil
}

func validRoles(roles []string) error {
	for _, r := range roles {
		if !knownRoles[r] {
			return invalid("roles", "%q is not a directory role template id.", clip(r))
		}
	}
	return nil
}

// CreateApplication registers an application (and, with
// spec.ServicePrincipal, its service principal). ErrInvalid,
// ErrAlreadyExists (spec.AppID taken), ErrNotFound (tenant, spec.Owner).
func (d *Directory) CreateApplication(ctx context.Context, spec ApplicationSpec) (*Application, error) {
	if err := validDisplayName(spec.DisplayName); err != nil {
		return nil, err
	}
	if err := validRoles(spec.Roles); err != nil {
		return nil, err
	}
	tenant, err := d.tenantOrDefault(spec.TenantID)
	if err != nil {
		return nil, err
	}
	appID := spec.AppID
	if appID == "" {
		appID = gatehouse.NewGUID()
	} else if id, ok := gatehouse.NormalizeGUID(appID); ok {
		appID = id
	} else {
		return nil, invalid("appId", "The application id must be a GUID.")
	}
	r := record{Kind: kindApplication, TenantID: tenant, ObjectID: gatehouse.NewGUID(), AppObjectID: gatehouse.NewGUID(),
		AppID: appID, DisplayName: spec.DisplayName, Enabled: true, ServicePrincipal: spec.ServicePrincipal,
		Roles: slices.Clone(spec.Roles), Created: storage.Now(d.now())}
	if spec.Owner != "" {
		oid, ok := gatehouse.NormalizeGUID(spec.Owner)
		if !ok || !canOwn(d.lookup(oid), tenant) {
			return nil, notFound("The owner %q does not exist.", clip(spec.Owner))
		}
		r.Owners = []string{oid}
		if spec.ServicePrincipal {
			r.SPOwners = []string{oid}
		}
	}
	e, err := d.create(ctx, &r)
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

func (d *Directory) create(ctx context.Context, r *record) (*entry, error) {
	rec, err := d.principals.Create(ctx, &storage.Record[record]{Key: r.ObjectID, Alt: altFor(r), Ref: r.TenantID, Value: *r})
	if errors.Is(err, storage.ErrAlreadyExists) {
		switch r.Kind {
		case kindManagedIdentity:
			return nil, alreadyExists("The managed identity %q already exists.", r.ResourceID)
		case kindUser:
			return nil, alreadyExists("A user named %q already exists.", r.UserName)
		default:
			return nil, alreadyExists("An application with id %q already exists.", r.AppID)
		}
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := d.written(ctx, KindPrincipal, rec.Key); err != nil {
		return nil, err
	}
	return newEntry(&rec.Value, rec.Revision), nil
}

// errNoChange aborts an update whose function found nothing to do.
var errNoChange = errors.New("directory: no change")

// update applies fn to the principal with objectID (of kind want, "" = any)
// and waits until this node's cache shows the result.
func (d *Directory) update(ctx context.Context, objectID string, want principalKind, fn func(r *record) error) (*entry, error) {
	oid, ok := gatehouse.NormalizeGUID(objectID)
	if !ok {
		return nil, notFound("The object %q does not exist.", clip(objectID))
	}
	rec, err := d.principals.Update(ctx, oid, func(sr *storage.Record[record]) error {
		if want != "" && sr.Value.Kind != want {
			return notFound("The object %q does not exist.", oid)
		}
		if err := fn(&sr.Value); err != nil {
			return err
		}
		sr.Alt = altFor(&sr.Value)
		return nil
	})
	if errors.Is(err, errNoChange) {
		if e := d.lookup(oid); e != nil {
			return e, nil
		}
		rec, err = d.principals.Get(ctx, oid)
		if err == nil {
			return newEntry(&rec.Value, rec.Revision), nil
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("The object %q does not exist.", oid)
	}
	if errors.Is(err, storage.ErrConflict) {
		return nil, alreadyExists("The change conflicts with another object.")
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := d.written(ctx, KindPrincipal, oid); err != nil {
		return nil, err
	}
	return newEntry(&rec.Value, rec.Revision), nil
}

// Application returns the application whose service principal object id,
// application object id or application (client) id is id. ErrNotFound.
func (d *Directory) Application(id string) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	return e.application(), nil
}

func (d *Directory) findApp(id string) *entry {
	id = lower(id)
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, m := range []map[string]*entry{d.byObjectID, d.byAppObjectID, d.byAppID} {
		if e := m[id]; e != nil && e.rec.Kind == kindApplication {
			return e
		}
	}
	return nil
}

// Applications lists the applications of tenant ("" = every tenant),
// ordered by display name.
func (d *Directory) Applications(tenantID string) []*Application {
	return d.applicationsWhere(func(r *record) bool { return tenantID == "" || r.TenantID == tenantID })
}

// applicationsWhere lists the applications whose record keep accepts,
// ordered by display name (then application id).
func (d *Directory) applicationsWhere(keep func(r *record) bool) []*Application {
	d.mu.RLock()
	var out []*Application
	for _, e := range d.byObjectID {
		if e.rec.Kind == kindApplication && keep(&e.rec) {
			out = append(out, e.application())
		}
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DisplayName != out[j].DisplayName {
			return out[i].DisplayName < out[j].DisplayName
		}
		return out[i].AppID < out[j].AppID
	})
	return out
}

// ApplicationUpdate changes an application; nil fields are left alone.
type ApplicationUpdate struct {
	DisplayName *string
	Enabled     *bool
	// ServicePrincipal creates (true) or deletes (false) the service
	// principal. Deleting it ends its owners and its ownership of other
	// objects, as deleting the object does in Entra.
	ServicePrincipal *bool
	// ServicePrincipalOwner, with ServicePrincipal true, is the principal
	// creating the service principal: its first owner.
	ServicePrincipalOwner string
	Roles                 *[]string
}

// UpdateApplication changes the application whose id (any of its three
// ids) is id. ErrNotFound, ErrInvalid.
func (d *Directory) UpdateApplication(ctx context.Context, id string, u ApplicationUpdate) (*Application, error) {
	if u.DisplayName != nil {
		if err := validDisplayName(*u.DisplayName); err != nil {
			return nil, err
		}
	}
	if u.Roles != nil {
		if err := validRoles(*u.Roles); err != nil {
			return nil, err
		}
	}
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	var spOwner string
	if u.ServicePrincipalOwner != "" && u.ServicePrincipal != nil && *u.ServicePrincipal {
		oid, ok := gatehouse.NormalizeGUID(u.ServicePrincipalOwner)
		if !ok || !canOwn(d.lookup(oid), e.rec.TenantID) {
			return nil, notFound("The owner %q does not exist.", clip(u.ServicePrincipalOwner))
		}
		spOwner = oid
	}
	var deletedSP bool
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if u.DisplayName != nil {
			r.DisplayName = *u.DisplayName
		}
		if u.Enabled != nil {
			r.Enabled = *u.Enabled
		}
		if u.ServicePrincipal != nil {
			deletedSP = r.ServicePrincipal && !*u.ServicePrincipal
			if r.ServicePrincipal != *u.ServicePrincipal {
				r.SPOwners = nil
				if spOwner != "" {
					r.SPOwners = []string{spOwner}
				}
			}
			if deletedSP {
				spGone(r)
			}
			r.ServicePrincipal = *u.ServicePrincipal
		}
		if u.Roles != nil {
			r.Roles = slices.Clone(*u.Roles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if deletedSP {
		// The service principal is gone; its object id comes back if it is
		// created again, so its ownerships, memberships and grants must not.
		if err := d.dropOwnerships(ctx, e.rec.ObjectID); err != nil {
			return nil, err
		}
		if err := d.dropLinks(ctx, e.rec.ObjectID); err != nil {
			return nil, err
		}
	}
	return e.application(), nil
}

// spGone removes from r what belongs to its service principal object, which
// is being deleted: its directory roles, its own credentials (the
// application object's stay, as in Entra: a service principal created
// again signs in with them), the app role assignments made to its API and
// its delegated permission grants. In Entra these go with the deleted
// object; here the object id comes back when the service principal is
// created again, so they would come back with it.
func spGone(r *record) {
	r.Roles = nil
	r.Secrets = slices.DeleteFunc(r.Secrets, func(s secretRecord) bool { return s.ServicePrincipal })
	r.Certificates = slices.DeleteFunc(r.Certificates, func(c certRecord) bool { return c.ServicePrincipal })
	r.AppRoleAssignments = nil
	r.PermissionGrants = nil
}

// dropLinks removes objectID, a service principal that has just been
// deleted, from what other objects hold of it: group memberships, app role
// assignments it holds on other APIs, and delegated grants to it as an
// API. Like dropOwnerships it runs after the deletion, and a later
// deletion sweeps again.
func (d *Directory) dropLinks(ctx context.Context, objectID string) error {
	d.mu.RLock()
	groups := slices.Clone(d.memberOf[objectID])
	var apps []string
	for _, e := range d.byObjectID {
		if slices.ContainsFunc(e.rec.AppRoleAssignments, func(a AppRoleAssignment) bool { return a.PrincipalID == objectID }) ||
			slices.ContainsFunc(e.rec.PermissionGrants, func(g PermissionGrant) bool { return g.ResourceID == objectID }) {
			apps = append(apps, e.rec.ObjectID)
		}
	}
	d.mu.RUnlock()
	for _, g := range groups {
		_, err := d.RemoveGroupMember(ctx, g, objectID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	for _, id := range apps {
		_, err := d.update(ctx, id, kindApplication, func(r *record) error {
			n, m := len(r.AppRoleAssignments), len(r.PermissionGrants)
			r.AppRoleAssignments = slices.DeleteFunc(r.AppRoleAssignments, func(a AppRoleAssignment) bool { return a.PrincipalID == objectID })
			r.PermissionGrants = slices.DeleteFunc(r.PermissionGrants, func(g PermissionGrant) bool { return g.ResourceID == objectID })
			if len(r.AppRoleAssignments) == n && len(r.PermissionGrants) == m {
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

// DeleteApplication removes an application with its service principal and
// credentials. ErrNotFound.
func (d *Directory) DeleteApplication(ctx context.Context, id string) error {
	e := d.findApp(id)
	if e == nil {
		return notFound("The application %q does not exist.", clip(id))
	}
	return d.delete(ctx, e.rec.ObjectID)
}

// delete removes a principal record, then the principal from the owner
// lists of other objects (its own lists go with the record).
func (d *Directory) delete(ctx context.Context, objectID string) error {
	err := d.principals.Delete(ctx, objectID)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("The object %q does not exist.", objectID)
	}
	if err != nil {
		return storeError(err)
	}
	if err := d.written(ctx, KindPrincipal, objectID); err != nil {
		return err
	}
	return d.dropOwnerships(ctx, objectID)
}
