package directory

import (
	"context"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Delegated permission grants (Graph's oauth2PermissionGrant): a record
// that a client application may act, for every person (AllPrincipals) or
// one (Principal), with some delegated scopes of an API. Consent is
// implicit in Gatehouse — any application of the tenant may ask for an
// API's scopes — so a grant decides nothing: it is kept and listed, as
// requiredResourceAccess is, so that the scripts and tools that record
// consent (az ad app permission grant, list-grants) work and read back
// what they wrote.

// MaxPermissionGrants bounds the grants of one client.
const MaxPermissionGrants = 100

// Consent types.
const (
	ConsentAllPrincipals = "AllPrincipals"
	ConsentPrincipal     = "Principal"
)

// PermissionGrant is one delegated permission grant.
type PermissionGrant struct {
	ID string `json:"id"`
	// ResourceID is the API's service principal object id.
	ResourceID  string `json:"resourceId"`
	ConsentType string `json:"consentType"`
	// PrincipalID is the person a Principal grant is for ("" for
	// AllPrincipals).
	PrincipalID string `json:"principalId,omitempty"`
	// Scope is the granted scope values, space-separated.
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
	// ClientID is the client's service principal object id (filled in on
	// reading; not stored).
	ClientID string `json:"-"`
}

// GrantSpec creates a grant.
type GrantSpec struct {
	ClientID, ResourceID, ConsentType, PrincipalID, Scope string
}

// validScope checks a grant's scope: space-separated values of printable
// characters, at most 3,850 bytes (Graph's bound).
func validScope(scope string) error {
	if len(scope) > 3850 || strings.ContainsFunc(scope, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("scope", "The scope is at most 3850 printable characters: scope values separated by spaces.")
	}
	return nil
}

// GrantPermission records a grant of the client service principal
// spec.ClientID on the API spec.ResourceID (object ids, or any id of the
// applications). ErrNotFound, ErrInvalid, ErrAlreadyExists.
func (d *Directory) GrantPermission(ctx context.Context, spec GrantSpec) (PermissionGrant, error) {
	client, res := d.findApp(spec.ClientID), d.findApp(spec.ResourceID)
	switch {
	case client == nil || !client.rec.ServicePrincipal:
		return PermissionGrant{}, invalid("clientId", "The client service principal %q does not exist.", clip(spec.ClientID))
	case res == nil || !res.rec.ServicePrincipal || res.rec.TenantID != client.rec.TenantID:
		return PermissionGrant{}, invalid("resourceId", "The resource service principal %q does not exist.", clip(spec.ResourceID))
	}
	g := PermissionGrant{ResourceID: res.rec.ObjectID, Scope: strings.Join(strings.Fields(spec.Scope), " "), Created: d.now().UTC()}
	switch {
	case strings.EqualFold(spec.ConsentType, ConsentAllPrincipals):
		g.ConsentType = ConsentAllPrincipals
		if spec.PrincipalID != "" {
			return PermissionGrant{}, invalid("principalId", "An AllPrincipals grant names no principal.")
		}
	case strings.EqualFold(spec.ConsentType, ConsentPrincipal):
		g.ConsentType = ConsentPrincipal
		oid, _ := gatehouse.NormalizeGUID(spec.PrincipalID)
		if p := d.lookup(oid); p == nil || p.rec.Kind != kindUser || p.rec.TenantID != client.rec.TenantID {
			return PermissionGrant{}, invalid("principalId", "A Principal grant names a person of the tenant; %q is not one.", clip(spec.PrincipalID))
		}
		g.PrincipalID = oid
	default:
		return PermissionGrant{}, invalid("consentType", "The consentType is AllPrincipals or Principal, not %q.", clip(spec.ConsentType))
	}
	if err := validScope(g.Scope); err != nil {
		return PermissionGrant{}, err
	}
	var raw [24]byte
	if _, err := io.ReadFull(d.rand, raw[:]); err != nil {
		return PermissionGrant{}, err
	}
	g.ID = base64.RawURLEncoding.EncodeToString(raw[:])
	_, err := d.update(ctx, client.rec.ObjectID, kindApplication, func(r *record) error {
		switch {
		case len(r.PermissionGrants) >= MaxPermissionGrants:
			return invalid("oauth2PermissionGrants", "A client has at most %d permission grants.", MaxPermissionGrants)
		case slices.ContainsFunc(r.PermissionGrants, func(x PermissionGrant) bool {
			return x.ResourceID == g.ResourceID && x.ConsentType == g.ConsentType && x.PrincipalID == g.PrincipalID
		}):
			return alreadyExists("Permission entry already exists.")
		}
		r.PermissionGrants = append(r.PermissionGrants, g)
		return nil
	})
	if err != nil {
		return PermissionGrant{}, err
	}
	g.ClientID = client.rec.ObjectID
	return g, nil
}

// PermissionGrants lists the grants of tenantID's clients, oldest first;
// those whose API's service principal is gone are left out.
func (d *Directory) PermissionGrants(tenantID string) []PermissionGrant {
	d.mu.RLock()
	var out []PermissionGrant
	for _, e := range d.byObjectID {
		if e.rec.Kind != kindApplication || !e.rec.ServicePrincipal || tenantID != "" && e.rec.TenantID != tenantID {
			continue
		}
		for _, g := range e.rec.PermissionGrants {
			if res := d.byObjectID[g.ResourceID]; res != nil && res.rec.ServicePrincipal {
				g.ClientID = e.rec.ObjectID
				out = append(out, g)
			}
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b PermissionGrant) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// grantOwner finds the client whose grant id is.
func (d *Directory) grantOwner(id string) *entry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, e := range d.byObjectID {
		if slices.ContainsFunc(e.rec.PermissionGrants, func(g PermissionGrant) bool { return g.ID == id }) {
			return e
		}
	}
	return nil
}

// UpdatePermissionGrant replaces the scope of the grant id. ErrNotFound,
// ErrInvalid.
func (d *Directory) UpdatePermissionGrant(ctx context.Context, id, scope string) error {
	scope = strings.Join(strings.Fields(scope), " ")
	if err := validScope(scope); err != nil {
		return err
	}
	return d.editGrant(ctx, id, func(r *record, i int) { r.PermissionGrants[i].Scope = scope })
}

// RemovePermissionGrant deletes the grant id. ErrNotFound.
func (d *Directory) RemovePermissionGrant(ctx context.Context, id string) error {
	return d.editGrant(ctx, id, func(r *record, i int) { r.PermissionGrants = slices.Delete(r.PermissionGrants, i, i+1) })
}

func (d *Directory) editGrant(ctx context.Context, id string, edit func(r *record, i int)) error {
	e := d.grantOwner(id)
	if e == nil {
		return notFound("The permission grant %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.PermissionGrants, func(g PermissionGrant) bool { return g.ID == id })
		if i < 0 {
			return notFound("The permission grant %q does not exist.", clip(id))
		}
		edit(r, i)
		return nil
	})
	return err
}
