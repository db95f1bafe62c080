package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// AssignmentSpec is what a caller asks for in a role assignment PUT.
type AssignmentSpec struct {
	// RoleDefinitionID is a role definition id in any form
	// RoleIDFromDefinitionID accepts.
	RoleDefinitionID string
	PrincipalID      string
	// PrincipalType is optional; the directory's answer, else
	// ServicePrincipal, fills it in. Given, it must be the directory's.
	PrincipalType string
	Description   string
	// Condition and ConditionVersion are ABAC conditions. Gatehouse does
	// not evaluate them, so it refuses assignments that carry one rather
	// than grant more than was asked for.
	Condition        string
	ConditionVersion string
}

// CreateAssignment creates the assignment name (a GUID) at scope, or
// returns the existing one when an assignment with that name already grants
// the same role to the same principal at the same scope (created=false; a
// new description is saved). by is the object id of the caller. When it
// returns, the assignment takes part in this node's decisions.
//
// Errors (*gatehouse.Error): 400 InvalidRoleAssignmentId, InvalidPrincipalId,
// InvalidPrincipalType, UnmatchedPrincipalType (a principalType that is not
// the directory's), RoleDefinitionDoesNotExist, PrincipalNotFound,
// RoleAssignmentConditionNotSupported, InvalidRoleAssignmentScope; 409
// RoleAssignmentExists (same grant under another name),
// RoleAssignmentUpdateNotPermitted (name reused for another grant); 503.
func (s *Service) CreateAssignment(ctx context.Context, scope *gatehouse.ResourceID, name string, spec AssignmentSpec, by string) (a *Assignment, created bool, err error) {
	name, ok := gatehouse.NormalizeGUID(name)
	if !ok {
		return nil, false, gatehouse.BadRequestf("InvalidRoleAssignmentId",
			"The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", clip(name))
	}
	if spec.Condition != "" || spec.ConditionVersion != "" {
		return nil, false, gatehouse.BadRequestf("RoleAssignmentConditionNotSupported",
			"Role assignment conditions are not supported by this server.").WithTarget("properties.condition")
	}
	roleID, ok := RoleIDFromDefinitionID(spec.RoleDefinitionID)
	if !ok {
		return nil, false, gatehouse.BadRequestf("InvalidRoleDefinitionId",
			"The role definition ID '%s' is not valid.", clip(spec.RoleDefinitionID)).WithTarget("properties.roleDefinitionId")
	}
	role, ok := s.Role(roleID)
	if !ok {
		return nil, false, errRoleNotFound(roleID)
	}
	if !assignable(role, scope) {
		return nil, false, gatehouse.BadRequestf("InvalidRoleAssignmentScope",
			"The role '%s' is not available for assignment at the requested scope '%s'.", role.RoleName, clip(scope.String()))
	}
	principal, ok := gatehouse.NormalizeGUID(spec.PrincipalID)
	if !ok {
		return nil, false, gatehouse.BadRequestf("InvalidPrincipalId",
			"The principal ID '%s' is not valid. It must be a GUID.", clip(spec.PrincipalID)).WithTarget("properties.principalId")
	}
	ptype := ""
	if spec.PrincipalType != "" {
		if ptype, ok = NormalizePrincipalType(spec.PrincipalType); !ok {
			return nil, false, gatehouse.BadRequestf("InvalidPrincipalType",
				"The principal type '%s' is not valid. It must be User, Group, ServicePrincipal, ForeignGroup or Device.",
				clip(spec.PrincipalType)).WithTarget("properties.principalType")
		}
	}
	if d := s.opts.Directory; d != nil {
		p, found, err := d.LookupPrincipal(ctx, principal)
		if err != nil {
			return nil, false, storageError(err)
		}
		if !found {
			return nil, false, gatehouse.BadRequestf("PrincipalNotFound",
				"Principal %s does not exist in the directory.", principal).WithTarget("properties.principalId")
		}
		switch {
		case ptype == "":
			ptype = string(p.Type)
		case ptype != string(p.Type) && !(ptype == "ForeignGroup" && p.Type == gatehouse.PrincipalGroup):
			// As ARM: the Python SDK's default of User for a service
			// principal, say, is refused rather than stored mislabelled.
			return nil, false, gatehouse.BadRequestf("UnmatchedPrincipalType",
				"The PrincipalId '%s' has type '%s' , which is different from specified PrincipalType '%s'.",
				principal, p.Type, ptype).WithTarget("properties.principalType")
		}
	}
	if ptype == "" {
		ptype = string(gatehouse.PrincipalServicePrincipal)
	}

	now := storage.Now(s.opts.Now())
	want := Assignment{Name: name, Scope: scope.String(), RoleDefinitionID: roleID, PrincipalID: principal,
		PrincipalType: ptype, Description: spec.Description, CreatedOn: now, UpdatedOn: now, CreatedBy: by, UpdatedBy: by}
	alt := tripleKey(scope.Key(), roleID, principal)
	rec, err := s.assignments.Create(ctx, &storage.Record[Assignment]{Key: name, Alt: alt, Ref: principal, Value: want})
	if err == nil {
		if err := s.waitFor(ctx, rec.Revision); err != nil {
			return nil, false, err
		}
		return &rec.Value, true, nil
	}
	if !errors.Is(err, storage.ErrAlreadyExists) {
		return nil, false, storageError(err)
	}
	// The name or the (scope, role, principal) triple is taken.
	rec, err = s.assignments.Update(ctx, name, func(r *storage.Record[Assignment]) error {
		if r.Alt != alt {
			return errAssignmentUpdate()
		}
		if r.Value.Description != spec.Description {
			r.Value.Description, r.Value.UpdatedOn, r.Value.UpdatedBy = spec.Description, now, by
		}
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Another name holds this grant.
		return nil, false, errRoleAssignmentExists()
	case err != nil:
		return nil, false, storageError(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, false, err
	}
	return &rec.Value, false, nil
}

// DeleteAssignment deletes the assignment name. When scope is not nil the
// assignment must be at exactly that scope. It returns the deleted
// assignment, or (nil, nil) when there was none. When it returns, the
// assignment no longer takes part in this node's decisions.
func (s *Service) DeleteAssignment(ctx context.Context, scope *gatehouse.ResourceID, name string) (*Assignment, error) {
	name, ok := gatehouse.NormalizeGUID(name)
	if !ok {
		return nil, gatehouse.BadRequestf("InvalidRoleAssignmentId",
			"The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", clip(name))
	}
	rec, err := s.assignments.Get(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storageError(err)
	}
	if scope != nil && !strings.EqualFold(rec.Value.Scope, scope.String()) {
		return nil, nil
	}
	if err := s.assignments.Delete(ctx, name); errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, storageError(err)
	}
	if err := s.watcher.Sync(ctx); err != nil {
		return nil, storageError(err)
	}
	return &rec.Value, nil
}

// DeleteAssignmentsWithin deletes every assignment at or beneath scope (a
// resource or group being deleted takes its assignments with it), and
// returns how many it deleted.
func (s *Service) DeleteAssignmentsWithin(ctx context.Context, scope *gatehouse.ResourceID) (int, error) {
	k := scope.Key()
	return s.deleteAssignments(ctx, func(a *Assignment) bool { return within(a.scopeKey, k) })
}

// DeleteAssignmentsOf deletes every assignment to principalID, and returns
// how many it deleted. Azure leaves the assignments of a deleted principal
// in place, shown as "Identity not found", since its object id never comes
// back; the directory gives a service principal created again its old
// object id, so its deletion takes its assignments here.
func (s *Service) DeleteAssignmentsOf(ctx context.Context, principalID string) (int, error) {
	oid, ok := gatehouse.NormalizeGUID(principalID)
	if !ok {
		return 0, nil
	}
	return s.deleteAssignments(ctx, func(a *Assignment) bool { return strings.EqualFold(a.PrincipalID, oid) })
}

// deleteAssignments deletes the assignments match picks, and returns how
// many it deleted; when it returns, they take no part in this node's
// decisions.
func (s *Service) deleteAssignments(ctx context.Context, match func(*Assignment) bool) (int, error) {
	s.mu.RLock()
	var names []string
	for _, a := range s.byName {
		if match(a) {
			names = append(names, a.Name)
		}
	}
	s.mu.RUnlock()
	n := 0
	for _, name := range names {
		if err := s.assignments.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, storageError(err)
		}
		n++
	}
	if n > 0 {
		if err := s.watcher.Sync(ctx); err != nil {
			return n, storageError(err)
		}
	}
	return n, nil
}

// RoleSpec is what a caller asks for in a custom role PUT.
type RoleSpec struct {
	RoleName         string
	Description      string
	Type             string
	Permissions      []Permission
	AssignableScopes []string
}

// Limits on custom roles.
const (
	maxRoleNameLength = 512
	maxPatterns       = 200
	maxPatternLength  = 512
)

// PutRole creates or replaces the custom role id (a GUID). by is the
// caller's object id.
//
// Errors (*gatehouse.Error): 400 InvalidRoleDefinitionId,
// RoleDefinitionNameRequired, InvalidRoleDefinition, InvalidAssignableScopes,
// BuiltInRoleCannotBeModified; 409 RoleDefinitionWithSameNameExists; 503.
func (s *Service) PutRole(ctx context.Context, id string, spec RoleSpec, by string) (def *RoleDefinition, created bool, err error) {
	id, ok := gatehouse.NormalizeGUID(id)
	if !ok {
		return nil, false, gatehouse.BadRequestf("InvalidRoleDefinitionId",
			"The role definition ID '%s' is not valid. It must be a GUID.", clip(id))
	}
	if _, builtin := builtins().byID[id]; builtin {
		return nil, false, gatehouse.BadRequestf("BuiltInRoleCannotBeModified", "Built-in role definitions cannot be changed.")
	}
	if err := validateRoleSpec(&spec); err != nil {
		return nil, false, err
	}
	lname := strings.ToLower(spec.RoleName)
	if _, taken := builtins().byName[lname]; taken {
		return nil, false, errRoleNameTaken(spec.RoleName)
	}
	// An update may not leave an assignment of the role outside its
	// assignable scopes (as Azure refuses it).
	newRole := &RoleDefinition{AssignableScopes: spec.AssignableScopes}
	for _, a := range s.Assignments(AssignmentFilter{RoleID: id}) {
		if !assignable(newRole, a.ScopeID()) {
			return nil, false, gatehouse.BadRequestf("InvalidAssignableScopes",
				"The role is assigned at '%s', which the new assignable scopes do not cover: remove that assignment first.", clip(a.Scope)).WithTarget("properties.assignableScopes")
		}
	}
	now := storage.Now(s.opts.Now())
	value := RoleDefinition{ID: id, RoleName: spec.RoleName, Description: spec.Description, Type: CustomRole,
		Permissions: spec.Permissions, AssignableScopes: spec.AssignableScopes,
		CreatedOn: now, UpdatedOn: now, CreatedBy: by, UpdatedBy: by}
	rec, err := s.roles.Create(ctx, &storage.Record[RoleDefinition]{Key: id, Alt: lname, Value: value})
	created = err == nil
	if errors.Is(err, storage.ErrAlreadyExists) {
		rec, err = s.roles.Update(ctx, id, func(r *storage.Record[RoleDefinition]) error {
			value.CreatedOn, value.CreatedBy = r.Value.CreatedOn, r.Value.CreatedBy
			r.Alt, r.Value = lname, value
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			// Not ours by id: the name belongs to another role.
			return nil, false, errRoleNameTaken(spec.RoleName)
		}
	}
	if errors.Is(err, storage.ErrConflict) {
		return nil, false, errRoleNameTaken(spec.RoleName)
	}
	if err != nil {
		return nil, false, storageError(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, false, err
	}
	return &rec.Value, created, nil
}

func errRoleNameTaken(name string) error {
	return gatehouse.Errorf(http.StatusConflict, "RoleDefinitionWithSameNameExists",
		"A custom role with the same name '%s' already exists.", clip(name))
}

func validateRoleSpec(spec *RoleSpec) error {
	if strings.TrimSpace(spec.RoleName) == "" {
		return gatehouse.BadRequestf("RoleDefinitionNameRequired", "The role name is required.").WithTarget("properties.roleName")
	}
	if len(spec.RoleName) > maxRoleNameLength {
		return gatehouse.BadRequestf("InvalidRoleDefinition", "The role name is longer than %d characters.", maxRoleNameLength)
	}
	if !printable(spec.RoleName) {
		return gatehouse.BadRequestf("InvalidRoleDefinition", "The role name may not contain control characters.").WithTarget("properties.roleName")
	}
	if spec.Type != "" && !strings.EqualFold(spec.Type, string(CustomRole)) {
		return gatehouse.BadRequestf("InvalidRoleDefinition", "Only custom roles (type CustomRole) can be created.").WithTarget("properties.type")
	}
	if len(spec.Permissions) == 0 {
		return gatehouse.BadRequestf("InvalidRoleDefinition", "A role definition needs at least one permission.").WithTarget("properties.permissions")
	}
	n := 0
	for _, p := range spec.Permissions {
		for _, list := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			for _, a := range list {
				n++
				if !validPattern(a) || n > maxPatterns {
					return gatehouse.BadRequestf("InvalidActionOrNotAction",
						"'%s' is not a valid action pattern.", clip(a)).WithTarget("properties.permissions")
				}
			}
		}
	}
	if len(spec.AssignableScopes) == 0 {
		return gatehouse.BadRequestf("InvalidAssignableScopes", "A custom role needs at least one assignable scope.").WithTarget("properties.assignableScopes")
	}
	for i, sc := range spec.AssignableScopes {
		id, err := gatehouse.ParseResourceID(sc)
		if err != nil || id.IsRoot() || id.Subscription == "" {
			return gatehouse.BadRequestf("InvalidAssignableScopes",
				"The assignable scope '%s' is not valid: it must be a subscription, a resource group or a resource.", clip(sc)).WithTarget("properties.assignableScopes")
		}
		spec.AssignableScopes[i] = id.String()
	}
	return nil
}

// validPattern accepts action patterns as Azure writes them: letters,
// digits and . / * _ - characters.
func validPattern(p string) bool {
	if p == "" || len(p) > maxPatternLength {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("./*_-", c) >= 0) {
			return false
		}
	}
	return true
}

// DeleteRole deletes the custom role id. It returns the deleted role, or
// (nil, nil) when there was none.
//
// Errors (*gatehouse.Error): 400 BuiltInRoleCannotBeModified; 409
// RoleDefinitionHasAssignments; 503.
func (s *Service) DeleteRole(ctx context.Context, id string) (*RoleDefinition, error) {
	id = strings.ToLower(id)
	if _, builtin := builtins().byID[id]; builtin {
		return nil, gatehouse.BadRequestf("BuiltInRoleCannotBeModified", "Built-in role definitions cannot be deleted.")
	}
	if len(s.Assignments(AssignmentFilter{RoleID: id})) > 0 {
		return nil, gatehouse.Errorf(http.StatusConflict, "RoleDefinitionHasAssignments",
			"There are existing role assignments referencing role definition '%s'.", clip(id))
	}
	rec, err := s.roles.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storageError(err)
	}
	if err := s.roles.Delete(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, storageError(err)
	}
	if err := s.watcher.Sync(ctx); err != nil {
		return nil, storageError(err)
	}
	return &rec.Value, nil
}

// printable reports whether s is UTF-8 text without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
