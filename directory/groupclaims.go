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
// groups and are not nested, so the list is the principal's direct
// memberships. ApplicationGroup (only groups assigned to the application)
// has nothing to name: app roles are granted to principals, not groups.

// Group claim settings.
const (
	GroupClaimsNone          = "None"
	GroupClaimsSecurityGroup = "SecurityGroup"
	GroupClaimsDirectoryRole = "DirectoryRole"
	GroupClaimsAll           = "All"
)

// SetGroupMembershipClaims sets which group claims the application's
// tokens carry: None (or ""), SecurityGroup, DirectoryRole or All, in any
// case. ErrNotFound, ErrInvalid.
func (d *Directory) SetGroupMembershipClaims(ctx context.Context, id, value string) (*Application, error) {
	var v string
	for _, c := range []string{GroupClaimsNone, GroupClaimsSecurityGroup, GroupClaimsDirectoryRole, GroupClaimsAll} {
		if strings.EqualFold(strings.TrimSpace(value), c) {
			v = c
		}
	}
	switch {
	case strings.TrimSpace(value) == "":
		v = GroupClaimsNone
	case strings.EqualFold(strings.TrimSpace(value), "ApplicationGroup"):
		return nil, invalid("groupMembershipClaims", "ApplicationGroup names the groups assigned to the application, and app roles are granted to principals here, not groups: use SecurityGroup.")
	case v == "":
		return nil, invalid("groupMembershipClaims", "groupMembershipClaims is None, SecurityGroup, DirectoryRole or All, not %q.", clip(value))
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
// groups (security group ids) and wids (directory role template ids).
func (a *Application) GroupClaims() (groups, wids bool) {
	switch a.GroupMembershipClaims {
	case GroupClaimsSecurityGroup:
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
	if e == nil || !e.rec.Enabled {
		return nil
	}
	return slices.Clone(e.rec.Roles)
}
