package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Security groups: a role assignment to a group grants its role to every
// member. Members are people, service principals, managed identities and
// other groups of the group's tenant: a member of a member group is a
// member too (GroupsOf is transitive, as Azure RBAC and Graph's
// getMemberGroups are), and no group may end up inside itself. The
// memberships live in memory on every node, kept current by the change
// feed, and GroupGeneration changes with every change to any group, so
// authorization caches that depend on membership know when to decide
// again.

// KindGroup holds security groups. Key: object id. Ref: tenant id.
const KindGroup = "directory.group"

// MaxGroupMembers bounds a group's members.
const MaxGroupMembers = 10000

type groupRecord struct {
	ObjectID     string    `json:"objectId"`
	TenantID     string    `json:"tenantId"`
	DisplayName  string    `json:"displayName"`
	MailNickname string    `json:"mailNickname"`
	Description  string    `json:"description,omitempty"`
	Members      []string  `json:"members,omitempty"`
	Created      time.Time `json:"created"`
}

// Group is a read-only view of a security group.
type Group struct {
	ObjectID, TenantID, DisplayName, MailNickname, Description string
	Members                                                    []string
	Created                                                    time.Time
}

func (r *groupRecord) view() *Group {
	return &Group{ObjectID: r.ObjectID, TenantID: r.TenantID, DisplayName: r.DisplayName, MailNickname: r.MailNickname,
		Description: r.Description, Members: slices.Clone(r.Members), Created: r.Created}
}

// GroupSpec creates a group.
type GroupSpec struct {
	TenantID, DisplayName, MailNickname, Description string
}

func validMailNickname(s string) error {
	if s == "" || len(s) > 64 {
		return invalid("mailNickname", "A mail nickname has 1 to 64 characters.")
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`@()\[]";:<>,`, c) {
			return invalid("mailNickname", "A mail nickname may not contain spaces or @()\\[]\";:<>,.")
		}
	}
	return nil
}

// CreateGroup creates a security group. ErrInvalid, ErrNotFound (tenant).
func (d *Directory) CreateGroup(ctx context.Context, spec GroupSpec) (*Group, error) {
	if err := validDisplayName(spec.DisplayName); err != nil {
		return nil, err
	}
	if err := validMailNickname(spec.MailNickname); err != nil {
		return nil, err
	}
	if len(spec.Description) > 1024 {
		return nil, invalid("description", "A description has at most 1024 characters.")
	}
	tenant, err := d.tenantOrDefault(spec.TenantID)
	if err != nil {
		return nil, err
	}
	r := groupRecord{ObjectID: gatehouse.NewGUID(), TenantID: tenant, DisplayName: spec.DisplayName,
		MailNickname: spec.MailNickname, Description: spec.Description, Created: d.now().UTC()}
	if _, err := d.groups.Create(ctx, &storage.Record[groupRecord]{Key: r.ObjectID, Ref: tenant, Value: r}); err != nil {
		return nil, storeError(err)
	}
	if err := d.written(ctx, KindGroup, r.ObjectID); err != nil {
		return nil, err
	}
	return r.view(), nil
}

// Group returns the group with object id id. ErrNotFound.
func (d *Directory) Group(id string) (*Group, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if g := d.groupList[strings.ToLower(id)]; g != nil {
		return g.view(), nil
	}
	return nil, notFound("The group %q does not exist.", clip(id))
}

// Groups lists the groups of tenantID by display name.
func (d *Directory) Groups(tenantID string) []*Group {
	d.mu.RLock()
	var out []*Group
	for _, g := range d.groupList {
		if tenantID == "" || g.TenantID == tenantID {
			out = append(out, g.view())
		}
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DisplayName != out[j].DisplayName {
			return out[i].DisplayName < out[j].DisplayName
		}
		return out[i].ObjectID < out[j].ObjectID
	})
	return out
}

// GroupUpdate changes a group; nil fields are left alone.
type GroupUpdate struct {
	DisplayName, Description *string
}

// UpdateGroup changes a group's names. ErrNotFound, ErrInvalid.
func (d *Directory) UpdateGroup(ctx context.Context, id string, u GroupUpdate) (*Group, error) {
	if u.DisplayName != nil {
		if err := validDisplayName(*u.DisplayName); err != nil {
			return nil, err
		}
	}
	if u.Description != nil && len(*u.Description) > 1024 {
		return nil, invalid("description", "A description has at most 1024 characters.")
	}
	return d.updateGroup(ctx, id, func(r *groupRecord) error {
		if u.DisplayName != nil {
			r.DisplayName = *u.DisplayName
		}
		if u.Description != nil {
			r.Description = *u.Description
		}
		return nil
	})
}

// DeleteGroup removes a group (its role assignments stop granting at
// once) and its membership in other groups. ErrNotFound.
func (d *Directory) DeleteGroup(ctx context.Context, id string) error {
	g, err := d.Group(id)
	if err != nil {
		return err
	}
	d.mu.RLock()
	parents := slices.Clone(d.memberOf[g.ObjectID])
	d.mu.RUnlock()
	for _, p := range parents {
		if _, err := d.RemoveGroupMember(ctx, p, g.ObjectID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := d.groups.Delete(ctx, g.ObjectID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storeError(err)
	}
	return d.written(ctx, KindGroup, g.ObjectID)
}

// AddGroupMember adds a person, service principal or managed identity of
// the group's tenant. ErrNotFound, ErrAlreadyExists, ErrInvalid (a group,
// the limit).
func (d *Directory) AddGroupMember(ctx context.Context, groupID, memberID string) (*Group, error) {
	oid, _ := gatehouse.NormalizeGUID(memberID)
	g, err := d.Group(groupID)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	sub, isGroup := d.groupList[oid]
	d.mu.RUnlock()
	if isGroup {
		if sub.TenantID != g.TenantID {
			return nil, notFound("The directory object %q does not exist.", clip(memberID))
		}
	} else if p := d.lookup(oid); p == nil || p.rec.TenantID != g.TenantID || !p.isPrincipal() {
		return nil, notFound("The directory object %q does not exist.", clip(memberID))
	}
	return d.updateGroup(ctx, g.ObjectID, func(r *groupRecord) error {
		switch {
		case isGroup && (oid == r.ObjectID || slices.Contains(d.GroupsOf(r.ObjectID), oid)):
			// Checked against this node's view: two nodes adding the two
			// halves of a cycle at once can still make one, which GroupsOf
			// walks safely; removing either membership undoes it.
			return invalid("members", "Adding this group would put a group inside itself.")
		case slices.Contains(r.Members, oid):
			return alreadyExists("One or more added object references already exist for the following modified properties: 'members'.")
		case len(r.Members) >= MaxGroupMembers:
			return invalid("members", "A group has at most %d members.", MaxGroupMembers)
		}
		r.Members = append(r.Members, oid)
		return nil
	})
}

// RemoveGroupMember removes a member. ErrNotFound.
func (d *Directory) RemoveGroupMember(ctx context.Context, groupID, memberID string) (*Group, error) {
	oid, _ := gatehouse.NormalizeGUID(memberID)
	return d.updateGroup(ctx, groupID, func(r *groupRecord) error {
		i := slices.Index(r.Members, oid)
		if i < 0 {
			return notFound("%q is not a member of the group.", clip(memberID))
		}
		r.Members = slices.Delete(r.Members, i, i+1)
		return nil
	})
}

func (d *Directory) updateGroup(ctx context.Context, id string, fn func(r *groupRecord) error) (*Group, error) {
	oid, ok := gatehouse.NormalizeGUID(id)
	if !ok {
		return nil, notFound("The group %q does not exist.", clip(id))
	}
	rec, err := d.groups.Update(ctx, oid, func(sr *storage.Record[groupRecord]) error { return fn(&sr.Value) })
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, notFound("The group %q does not exist.", oid)
	case err != nil:
		return nil, storeError(err)
	}
	if err := d.written(ctx, KindGroup, oid); err != nil {
		return nil, err
	}
	return rec.Value.view(), nil
}

// DirectGroupsOf lists the groups objectID is itself a member of: what an
// app role granted to a group reaches (as in Entra, app role grants do not
// flow through member groups).
func (d *Directory) DirectGroupsOf(objectID string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.memberOf[strings.ToLower(objectID)])
}

// GroupsOf lists the groups objectID (a principal or a group) is a member
// of, directly or through member groups (object ids; direct ones first).
func (d *Directory) GroupsOf(objectID string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := slices.Clone(d.memberOf[strings.ToLower(objectID)])
	var seen map[string]bool
	for i := 0; i < len(out); i++ {
		for _, parent := range d.memberOf[out[i]] {
			if seen == nil {
				seen = make(map[string]bool, len(out)+8)
				for _, g := range out {
					seen[g] = true
				}
			}
			if !seen[parent] {
				seen[parent] = true
				out = append(out, parent)
			}
		}
	}
	return out
}

// GroupGeneration changes whenever any group or membership changes.
func (d *Directory) GroupGeneration() uint64 { return d.groupGen.Load() }

// putGroup and removeGroup maintain the group indexes; d.mu is held.
func (d *Directory) putGroup(g *groupRecord) {
	d.groupList[g.ObjectID] = g
	for _, m := range g.Members {
		d.memberOf[m] = append(d.memberOf[m], g.ObjectID)
	}
	d.groupGen.Add(1)
}

func (d *Directory) removeGroup(id string) {
	g := d.groupList[id]
	if g == nil {
		return
	}
	delete(d.groupList, id)
	for _, m := range g.Members {
		list := slices.DeleteFunc(d.memberOf[m], func(x string) bool { return x == id })
		if len(list) == 0 {
			delete(d.memberOf, m)
		} else {
			d.memberOf[m] = list
		}
	}
	d.groupGen.Add(1)
}

// refreshGroup re-reads one group; d.refreshMu is held.
func (d *Directory) refreshGroup(ctx context.Context, key string) error {
	r, err := d.groups.Get(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("directory: group %s: %w", key, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeGroup(key)
	if err == nil {
		v := r.Value
		d.putGroup(&v)
	}
	return nil
}
