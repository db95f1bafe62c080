package directory

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// App roles: the roles a web API defines (Graph's appRoles) and grants to
// applications and people (appRoleAssignments). A token for the API
// carries, in its roles claim, the values of the enabled roles its subject
// holds on it; the API decides what each role allows.

// Limits, as Entra's.
const (
	MaxAppRoles           = 100
	MaxAppRoleAssignments = 1000
	maxAppRoleValue       = 120
)

// AppRole is one role an application defines.
type AppRole struct {
	ID          string `json:"id"`
	Value       string `json:"value"`
	DisplayName string `json:"displayName"`
	Description string `json:"description,omitempty"`
	// AllowedMemberTypes: "Application" and/or "User".
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	IsEnabled          bool     `json:"isEnabled"`
}

// AppRoleAssignment grants a principal one role of a resource application.
type AppRoleAssignment struct {
	ID          string    `json:"id"`
	PrincipalID string    `json:"principalId"`
	AppRoleID   string    `json:"appRoleId"`
	Created     time.Time `json:"created"`
	// ResourceID is the resource application's service principal object
	// id (filled in on reading; not stored).
	ResourceID string `json:"-"`
}

func validAppRoles(roles []AppRole, old []AppRole, scopes []PermissionScope) ([]AppRole, error) {
	if len(roles) > MaxAppRoles {
		return nil, invalid("appRoles", "An application defines at most %d app roles.", MaxAppRoles)
	}
	out := make([]AppRole, 0, len(roles))
	ids, values := map[string]bool{}, map[string]bool{}
	for _, r := range roles {
		id, ok := gatehouse.NormalizeGUID(r.ID)
		switch {
		case !ok:
			return nil, invalid("appRoles.id", "App role id %q is not a GUID.", clip(r.ID))
		case r.Value == "" || len(r.Value) > maxAppRoleValue || strings.ContainsAny(r.Value, " \t\r\n\"") || r.Value[0] == '.':
			return nil, invalid("appRoles.value", "App role value %q must have 1 to %d characters, no spaces or quotes, and not start with a dot.", clip(r.Value), maxAppRoleValue)
		case validDisplayName(r.DisplayName) != nil:
			return nil, invalid("appRoles.displayName", "App role %q needs a display name.", clip(r.Value))
		case len(r.Description) > 1024:
			return nil, invalid("appRoles.description", "An app role's description has at most 1024 characters.")
		case len(r.AllowedMemberTypes) == 0:
			return nil, invalid("appRoles.allowedMemberTypes", "App role %q must allow Application, User or both.", clip(r.Value))
		case ids[id]:
			return nil, invalid("appRoles.id", "App role id %s is listed twice.", id)
		case slices.ContainsFunc(scopes, func(s PermissionScope) bool { return s.ID == id }):
			return nil, invalid("appRoles.id", "App role id %s is the id of one of the application's permission scopes; ids are unique across both.", id)
		case values[strings.ToLower(r.Value)]:
			return nil, invalid("appRoles.value", "App role value %q is listed twice.", clip(r.Value))
		}
		for _, m := range r.AllowedMemberTypes {
			if m != "Application" && m != "User" {
				return nil, invalid("appRoles.allowedMemberTypes", "Allowed member types are Application and User, not %q.", clip(m))
			}
		}
		ids[id], values[strings.ToLower(r.Value)] = true, true
		r.ID = id
		r.AllowedMemberTypes = slices.Compact(slices.Sorted(slices.Values(r.AllowedMemberTypes)))
		out = append(out, r)
	}
	// As Graph: an enabled role is disabled before it is removed.
	for _, o := range old {
		if o.IsEnabled && !ids[o.ID] {
			return nil, invalid("appRoles", "App role %q is enabled: disable it (isEnabled false) before removing it.", clip(o.Value))
		}
	}
	return out, nil
}

// SetAppRoles replaces the app roles of the application whose id is id.
// Assignments of a removed role are removed with it. ErrNotFound,
// ErrInvalid.
func (d *Directory) SetAppRoles(ctx context.Context, id string, roles []AppRole) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		out, err := validAppRoles(roles, r.AppRoles, r.PermissionScopes)
		if err != nil {
			return err
		}
		r.AppRoles = out
		r.AppRoleAssignments = slices.DeleteFunc(r.AppRoleAssignments, func(a AppRoleAssignment) bool {
			return !slices.ContainsFunc(out, func(role AppRole) bool { return role.ID == a.AppRoleID })
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// AssignAppRole grants principalID (a service principal, managed identity,
// person or security group of the resource's tenant) the role roleID of
// the resource application resourceID (any of its ids). A group's members
// hold the role while they are members; a group takes roles that allow
// User, as in Entra. ErrNotFound, ErrInvalid, ErrAlreadyExists.
func (d *Directory) AssignAppRole(ctx context.Context, resourceID, principalID, roleID string) (AppRoleAssignment, error) {
	res := d.findApp(resourceID)
	if res == nil || !res.rec.ServicePrincipal {
		return AppRoleAssignment{}, notFound("The resource service principal %q does not exist.", clip(resourceID))
	}
	oid, _ := gatehouse.NormalizeGUID(principalID)
	d.mu.RLock()
	grp := d.groupList[oid]
	d.mu.RUnlock()
	p := d.lookup(oid)
	var asUser bool
	switch {
	case grp != nil && grp.TenantID == res.rec.TenantID:
		asUser = true
	case p == nil || p.rec.TenantID != res.rec.TenantID || !p.isPrincipal():
		return AppRoleAssignment{}, notFound("The principal %q does not exist.", clip(principalID))
	default:
		asUser = p.rec.Kind == kindUser
	}
	role, _ := gatehouse.NormalizeGUID(roleID)
	a := AppRoleAssignment{ID: gatehouse.NewGUID(), PrincipalID: oid, AppRoleID: role, Created: d.now().UTC()}
	_, err := d.update(ctx, res.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.AppRoles, func(x AppRole) bool { return x.ID == role })
		switch {
		case i < 0:
			return invalid("appRoleId", "The application defines no app role %q.", clip(roleID))
		case !r.AppRoles[i].IsEnabled:
			return invalid("appRoleId", "App role %q is disabled.", r.AppRoles[i].Value)
		case asUser && !slices.Contains(r.AppRoles[i].AllowedMemberTypes, "User"),
			!asUser && !slices.Contains(r.AppRoles[i].AllowedMemberTypes, "Application"):
			return invalid("appRoleId", "App role %q cannot be assigned to this kind of principal (allowedMemberTypes).", r.AppRoles[i].Value)
		case len(r.AppRoleAssignments) >= MaxAppRoleAssignments:
			return invalid("appRoleAssignments", "An application has at most %d app role assignments.", MaxAppRoleAssignments)
		case slices.ContainsFunc(r.AppRoleAssignments, func(x AppRoleAssignment) bool { return x.PrincipalID == a.PrincipalID && x.AppRoleID == role }):
			return alreadyExists("Permission being assigned already exists on the object.")
		}
		r.AppRoleAssignments = append(r.AppRoleAssignments, a)
		return nil
	})
	if err != nil {
		return AppRoleAssignment{}, err
	}
	a.ResourceID = res.rec.ObjectID
	return a, nil
}

// RemoveAppRoleAssignment removes the assignment assignmentID of the
// resource application resourceID. ErrNotFound.
func (d *Directory) RemoveAppRoleAssignment(ctx context.Context, resourceID, assignmentID string) error {
	res := d.findApp(resourceID)
	if res == nil {
		return notFound("The resource service principal %q does not exist.", clip(resourceID))
	}
	_, err := d.update(ctx, res.rec.ObjectID, kindApplication, func(r *record) error {
		n := len(r.AppRoleAssignments)
		r.AppRoleAssignments = slices.DeleteFunc(r.AppRoleAssignments, func(x AppRoleAssignment) bool { return strings.EqualFold(x.ID, assignmentID) })
		if len(r.AppRoleAssignments) == n {
			return notFound("The app role assignment %q does not exist.", clip(assignmentID))
		}
		return nil
	})
	return err
}

// AppRoleAssignmentsOf lists the assignments held by principalID, across
// every resource application of its tenant.
func (d *Directory) AppRoleAssignmentsOf(principalID string) []AppRoleAssignment {
	principalID = strings.ToLower(principalID)
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []AppRoleAssignment
	for _, e := range d.byObjectID {
		for _, a := range e.rec.AppRoleAssignments {
			if a.PrincipalID == principalID {
				a.ResourceID = e.rec.ObjectID
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b AppRoleAssignment) int { return a.Created.Compare(b.Created) })
	return out
}

// AppRoleValues are the values of the enabled roles principalID holds on
// the application api, itself or through one of groups (the groups it is
// a member of), in the order the application defines them.
func (a *Application) AppRoleValues(principalID string, groups []string) []string {
	var out []string
	for _, r := range a.AppRoles {
		if r.IsEnabled && slices.ContainsFunc(a.AppRoleAssignments, func(x AppRoleAssignment) bool {
			return x.AppRoleID == r.ID && (strings.EqualFold(x.PrincipalID, principalID) || slices.Contains(groups, x.PrincipalID))
		}) {
			out = append(out, r.Value)
		}
	}
	return out
}

// AssignedGroups are those of groups (object ids) that hold an app role of
// the application: the groups claim of its ApplicationGroup setting.
func (a *Application) AssignedGroups(groups []string) []string {
	var out []string
	for _, g := range groups {
		if slices.ContainsFunc(a.AppRoleAssignments, func(x AppRoleAssignment) bool { return x.PrincipalID == g }) {
			out = append(out, g)
		}
	}
	return out
}
