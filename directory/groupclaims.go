package directory

import (
	"context"
	"slices"
	"strings"
)

// Group claims: an application may ask that tokens for its API, and the ID
// tokens it receives, name the signed-in principal's groups (Graph's
// groupMembershipClaims): SecurityGroup puts the object ids of its
// security groups in the groups claim, DirectoryRole the template ids of
// its directory roles in wids, All both. Groups here are all security
// groups; the list holds the groups it is in through member groups too
// (GroupsOf). ApplicationGroup names only the groups that hold one of the
// application's app roles.

// Group claim settings.
const (
	GroupClaimsNone          = "None"
	GroupClaimsSecurityGroup = "SecurityGroup"
	GroupClaimsDirectoryRole = "DirectoryRole"
	GroupClaimsAll           = "All"
	GroupClaimsApplication   = "ApplicationGroup"
)

// SetGroupMembershipClaims sets which group claims the application's
// tokens carry: None (or ""), SecurityGroup, DirectoryRole, All or
// ApplicationGroup, in any case. ErrNotFound, ErrInvalid.
func (d *Directory) SetGroupMembershipClaims(ctx context.Context, id, value string) (*Application, error) {
	var v string
	for _, c := range []string{GroupClaimsNone, GroupClaimsSecurityGroup, GroupClaimsDirectoryRole, GroupClaimsAll, GroupClaimsApplication} {
		if strings.EqualFold(strings.TrimSpace(value), c) {
			v = c
		}
	}
	switch {
	case strings.TrimSpace(value) == "":
		v = GroupClaimsNone
	case v == "":
		return nil, invalid("groupMembershipClaims", "groupMembershipClaims is None, SecurityGroup, DirectoryRole, All or ApplicationGroup, not %q.", clip(value))
	}
	if v == GroupClaimsNone {
		v = ""
	}
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	e, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if r.GroupMembershipClaims == v {
			return errNoChange
		}
		r.GroupMembershipClaims = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// GroupClaims reports which group claims the application's tokens carry:
// groups (security group ids; with ApplicationGroup only those holding
// one of its app roles, AssignedGroups) and wids (directory role
// template ids).
func (a *Application) GroupClaims() (groups, wids bool) {
	switch a.GroupMembershipClaims {
	case GroupClaimsSecurityGroup, GroupClaimsApplication:
		return true, false
	case GroupClaimsDirectoryRole:
		return false, true
	case GroupClaimsAll:
		return true, true
	}
	return false, false
}

// DirectoryRolesOf lists the directory role template ids the principal
// with objectID holds (none when it is disabled or unknown): the wids
// claim.
func (d *Directory) DirectoryRolesOf(objectID string) []string {
	e := d.lookup(objectID)
	if e == nil || !e.rec.Enabled || !e.isPrincipal() {
		return nil
	}
	return slices.Clone(e.rec.Roles)
}
