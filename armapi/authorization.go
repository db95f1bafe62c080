package armapi

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

// Actions of Microsoft.Authorization.
const (
	actAssignmentRead   = "Microsoft.Authorization/roleAssignments/read"
	actAssignmentWrite  = "Microsoft.Authorization/roleAssignments/write"
	actAssignmentDelete = "Microsoft.Authorization/roleAssignments/delete"
	actRoleWrite        = "Microsoft.Authorization/roleDefinitions/write"
	actRoleDelete       = "Microsoft.Authorization/roleDefinitions/delete"
)

type assignmentJSON struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Properties assignmentPropertiesJSON `json:"properties"`
}

type assignmentPropertiesJSON struct {
	RoleDefinitionID                   string  `json:"roleDefinitionId"`
	PrincipalID                        string  `json:"principalId"`
	PrincipalType                      string  `json:"principalType"`
	Scope                              string  `json:"scope"`
	Description                        *string `json:"description"`
	Condition                          *string `json:"condition"`
	ConditionVersion                   *string `json:"conditionVersion"`
	CreatedOn                          string  `json:"createdOn"`
	UpdatedOn                          string  `json:"updatedOn"`
	CreatedBy                          string  `json:"createdBy"`
	UpdatedBy                          string  `json:"updatedBy"`
	DelegatedManagedIdentityResourceID *string `json:"delegatedManagedIdentityResourceId"`
}

func assignmentView(a *authz.Assignment) assignmentJSON {
	scope := a.ScopeID()
	v := assignmentJSON{ID: a.ID(), Name: a.Name, Type: "Microsoft.Authorization/roleAssignments",
		Properties: assignmentPropertiesJSON{
			RoleDefinitionID: authz.DefinitionID(scope, a.RoleDefinitionID), PrincipalID: a.PrincipalID,
			PrincipalType: a.PrincipalType, Scope: scope.String(),
			CreatedOn: armTime(a.CreatedOn), UpdatedOn: armTime(a.UpdatedOn), CreatedBy: a.CreatedBy, UpdatedBy: a.UpdatedBy,
		}}
	if a.Description != "" {
		d := a.Description
		v.Properties.Description = &d
	}
	return v
}

// assignmentFilter parses the $filter ARM accepts on role-assignment lists:
// atScope(), principalId eq '{id}', assignedTo('{id}'), joined by "and".
var (
	reAtScope         = regexp.MustCompile(`(?i)^atScope\(\)$`)
	rePrincipal       = regexp.MustCompile(`(?i)^principalId\s+eq\s+'((?:[^']|'')*)'$`)
	reAssignedTo      = regexp.MustCompile(`(?i)^assignedTo\('((?:[^']|'')*)'\)$`)
	reRoleName        = regexp.MustCompile(`(?i)^roleName\s+eq\s+'((?:[^']|'')*)'$`)
	reRoleType        = regexp.MustCompile(`(?i)^type\s+eq\s+'((?:[^']|'')*)'$`)
	reAtScopeAndBelow = regexp.MustCompile(`(?i)^atScopeAndBelow\(\s*\)$`)
	reAnd             = regexp.MustCompile(`(?i)\s+and\s+`)
	reQuoted          = regexp.MustCompile(`'(?:[^']|'')*'`)
)

// filterTerms splits an OData $filter at sep where sep is not inside a
// quoted string: a role named "Reader and Data Access" is one term.
func filterTerms(f string, sep *regexp.Regexp) []string {
	quoted := reQuoted.FindAllStringIndex(f, -1)
	var terms []string
	start := 0
	for _, m := range sep.FindAllStringIndex(f, -1) {
		inside := false
		for _, q := range quoted {
			if m[0] > q[0] && m[0] < q[1] {
				inside = true
				break
			}
		}
		if !inside {
			terms = append(terms, strings.TrimSpace(f[start:m[0]]))
			start = m[1]
		}
	}
	return append(terms, strings.TrimSpace(f[start:]))
}

// filterValue is the string a regexp's first group matched, its doubled
// single quotes (OData escapes a quote by doubling it) undone.
func filterValue(re *regexp.Regexp, term string) string {
	return strings.ReplaceAll(re.FindStringSubmatch(term)[1], "''", "'")
}

func errFilter(f string) error {
	return gatehouse.BadRequestf("UnsupportedQuery", "The $filter '%s' is not supported.", clip(f)).WithTarget("$filter")
}

func parseAssignmentFilter(f string, out *authz.AssignmentFilter) error {
	if strings.TrimSpace(f) == "" {
		return nil
	}
	for _, term := range filterTerms(strings.TrimSpace(f), reAnd) {
		switch {
		case reAtScope.MatchString(term):
			out.AtScope = true
		case rePrincipal.MatchString(term):
			out.PrincipalID = filterValue(rePrincipal, term)
		case reAssignedTo.MatchString(term):
			// Held directly or through a group, as ARM lists them.
			out.AssignedTo = filterValue(reAssignedTo, term)
		default:
			return errFilter(f)
		}
	}
	return nil
}

// GET {scope}/providers/Microsoft.Authorization/roleAssignments: the
// assignments at, above and beneath scope (atScope(): at and above).
func listAssignments(c *call) error {
	// Authorization first, as ARM does: a caller without rights learns
	// nothing about what exists.
	if !c.can(actAssignmentRead, c.scope) {
		return errAuthorizationFailed(c.principal, actAssignmentRead, c.scope)
	}
	if err := c.checkScope(c.scope); err != nil {
		return err
	}
	f := authz.AssignmentFilter{Scope: c.scope}
	if err := parseAssignmentFilter(c.r.URL.Query().Get("$filter"), &f); err != nil {
		return err
	}
	if c.scope.IsRoot() && !f.AtScope {
		f.Scope = nil // everything is at or beneath the root
	}
	out := list[assignmentJSON]{Value: []assignmentJSON{}}
	for _, a := range c.api.opts.Authz.Assignments(f) {
		out.Value = append(out.Value, assignmentView(a))
	}
	return c.reply(http.StatusOK, out)
}

func (c *call) assignmentName() (string, error) {
	name, ok := gatehouse.NormalizeGUID(c.param("name"))
	if !ok {
		return "", gatehouse.BadRequestf("InvalidRoleAssignmentId",
			"The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", clip(c.param("name")))
	}
	return name, nil
}

// GET {scope}/providers/Microsoft.Authorization/roleAssignments/{name},
// also reached as GET /{roleAssignmentId}.
func getAssignment(c *call) error {
	name, err := c.assignmentName()
	if err != nil {
		return err
	}
	if !c.can(actAssignmentRead, c.scope) {
		return errAuthorizationFailed(c.principal, actAssignmentRead, c.scope)
	}
	a, ok := c.api.opts.Authz.Assignment(name)
	if !ok || !strings.EqualFold(a.ScopeID().Key(), c.scope.Key()) {
		return gatehouse.NotFoundf("RoleAssignmentNotFound", "The role assignment '%s' is not found.", name)
	}
	return c.reply(http.StatusOK, assignmentView(a))
}

type assignmentBody struct {
	Properties *struct {
		RoleDefinitionID string  `json:"roleDefinitionId"`
		PrincipalID      string  `json:"principalId"`
		PrincipalType    string  `json:"principalType"`
		Description      *string `json:"description"`
		Condition        *string `json:"condition"`
		ConditionVersion *string `json:"conditionVersion"`
	} `json:"properties"`
}

// PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}:
// 201 when created, 200 when it already existed as asked.
func putAssignment(c *call) error {
	name, err := c.assignmentName()
	if err != nil {
		return err
	}
	if err := c.authorize(actAssignmentWrite, c.scope); err != nil {
		return err
	}
	if err := c.checkScope(c.scope); err != nil {
		return err
	}
	var body assignmentBody
	if err := c.decode(&body); err != nil {
		return err
	}
	p := body.Properties
	if p == nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content must have properties.").WithTarget("properties")
	}
	spec := authz.AssignmentSpec{RoleDefinitionID: p.RoleDefinitionID, PrincipalID: p.PrincipalID, PrincipalType: p.PrincipalType}
	if p.Description != nil {
		spec.Description = *p.Description
	}
	if p.Condition != nil {
		spec.Condition = *p.Condition
	}
	if p.ConditionVersion != nil {
		spec.ConditionVersion = *p.ConditionVersion
	}
	c.detail("principalId", clip(p.PrincipalID))
	if id, ok := authz.RoleIDFromDefinitionID(p.RoleDefinitionID); ok {
		c.detail("roleDefinitionId", id)
	}
	a, created, err := c.api.opts.Authz.CreateAssignment(c.ctx(), c.scope, name, spec, c.principal.ObjectID)
	if err != nil {
		return err
	}
	c.detail("name", a.Name)
	c.detail("principalType", a.PrincipalType)
	return c.put(created, assignmentView(a))
}

// DELETE …/roleAssignments/{name}: 200 with the deleted assignment, 204
// when there was none.
func deleteAssignment(c *call) error {
	name, err := c.assignmentName()
	if err != nil {
		return err
	}
	if err := c.authorize(actAssignmentDelete, c.scope); err != nil {
		return err
	}
	c.detail("name", name)
	a, err := c.api.opts.Authz.DeleteAssignment(c.ctx(), c.scope, name)
	if err != nil {
		return err
	}
	if a == nil {
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	c.detail("principalId", a.PrincipalID)
	c.detail("roleDefinitionId", a.RoleDefinitionID)
	return c.reply(http.StatusOK, assignmentView(a))
}

type roleJSON struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Properties rolePropertiesJSON `json:"properties"`
}

type rolePropertiesJSON struct {
	RoleName         string             `json:"roleName"`
	Type             string             `json:"type"`
	Description      string             `json:"description"`
	AssignableScopes []string           `json:"assignableScopes"`
	Permissions      []authz.Permission `json:"permissions"`
	CreatedOn        *string            `json:"createdOn"`
	UpdatedOn        *string            `json:"updatedOn"`
	CreatedBy        *string            `json:"createdBy"`
	UpdatedBy        *string            `json:"updatedBy"`
}

// roleView renders a role definition as seen from scope: its id lives
// under the scope's subscription (or the root), as ARM answers.
func roleView(scope *gatehouse.ResourceID, d *authz.RoleDefinition) roleJSON {
	v := roleJSON{ID: authz.DefinitionID(scope, d.ID), Name: d.ID, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: rolePropertiesJSON{RoleName: d.RoleName, Type: string(d.Type), Description: d.Description,
			AssignableScopes: d.AssignableScopes, Permissions: make([]authz.Permission, len(d.Permissions))}}
	for i, p := range d.Permissions {
		v.Properties.Permissions[i] = authz.Permission{Actions: nonNil(p.Actions), NotActions: nonNil(p.NotActions),
			DataActions: nonNil(p.DataActions), NotDataActions: nonNil(p.NotDataActions)}
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	v.Properties.CreatedOn, v.Properties.UpdatedOn = opt(armTime(d.CreatedOn)), opt(armTime(d.UpdatedOn))
	v.Properties.CreatedBy, v.Properties.UpdatedBy = opt(d.CreatedBy), opt(d.UpdatedBy)
	return v
}

// Role definitions are readable by every authenticated principal (Azure
// publishes its built-in roles to everyone).
func listRoleDefinitions(c *call) error {
	if err := c.checkScope(c.scope); err != nil {
		return err
	}
	f := authz.RoleFilter{Scope: c.scope}
	if q := strings.TrimSpace(c.r.URL.Query().Get("$filter")); q != "" {
		for _, term := range filterTerms(q, reAnd) {
			switch {
			case reRoleName.MatchString(term):
				f.Name = filterValue(reRoleName, term)
			case reRoleType.MatchString(term):
				f.Type = authz.RoleType(filterValue(reRoleType, term))
			case reAtScopeAndBelow.MatchString(term):
				// The list already has the roles assignable beneath the
				// scope (RoleFilter.Scope): Get-AzRoleDefinition
				// -AtScopeAndBelow and the REST reference's filter ask
				// for no more.
			default:
				return errFilter(q)
			}
		}
	}
	out := list[roleJSON]{Value: []roleJSON{}}
	for _, d := range c.api.opts.Authz.Roles(f) {
		out.Value = append(out.Value, roleView(c.scope, d))
	}
	return c.reply(http.StatusOK, out)
}

func getRoleDefinition(c *call) error {
	id, ok := gatehouse.NormalizeGUID(c.param("name"))
	if !ok {
		return gatehouse.BadRequestf("InvalidRoleDefinitionId", "The role definition ID '%s' is not valid. It must be a GUID.", clip(c.param("name")))
	}
	if err := c.checkScope(c.scope); err != nil {
		return err
	}
	d, ok := c.api.opts.Authz.Role(id)
	if !ok {
		return gatehouse.NotFoundf("RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", id)
	}
	return c.reply(http.StatusOK, roleView(c.scope, d))
}

type roleBody struct {
	Properties *struct {
		RoleName         string             `json:"roleName"`
		Description      string             `json:"description"`
		Type             string             `json:"type"`
		Permissions      []authz.Permission `json:"permissions"`
		AssignableScopes []string           `json:"assignableScopes"`
	} `json:"properties"`
}

// PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}: a
// custom role. The caller needs roleDefinitions/write at the request scope
// and at every assignable scope. armauthorization accepts only 201.
func putRoleDefinition(c *call) error {
	if err := c.authorize(actRoleWrite, c.scope); err != nil {
		return err
	}
	if err := c.checkScope(c.scope); err != nil {
		return err
	}
	var body roleBody
	if err := c.decode(&body); err != nil {
		return err
	}
	p := body.Properties
	if p == nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content must have properties.").WithTarget("properties")
	}
	for _, s := range p.AssignableScopes {
		sid, err := gatehouse.ParseResourceID(s)
		if err != nil {
			continue // the service rejects it with a 400
		}
		if !c.can(actRoleWrite, sid) {
			c.denied = true
			return errAuthorizationFailed(c.principal, actRoleWrite, sid)
		}
	}
	if err := c.roleScopesAllow(actRoleWrite, c.param("name")); err != nil {
		return err
	}
	if err := c.checkActionKinds(p.Permissions); err != nil {
		return err
	}
	c.detail("roleName", clip(p.RoleName))
	d, _, err := c.api.opts.Authz.PutRole(c.ctx(), c.param("name"), authz.RoleSpec{RoleName: p.RoleName, Description: p.Description,
		Type: p.Type, Permissions: p.Permissions, AssignableScopes: p.AssignableScopes}, c.principal.ObjectID)
	if err != nil {
		return err
	}
	c.detail("roleDefinitionId", d.ID)
	return c.reply(http.StatusCreated, roleView(c.scope, d))
}

func deleteRoleDefinition(c *call) error {
	if err := c.authorize(actRoleDelete, c.scope); err != nil {
		return err
	}
	if err := c.roleScopesAllow(actRoleDelete, c.param("name")); err != nil {
		return err
	}
	c.detail("roleDefinitionId", clip(c.param("name")))
	d, err := c.api.opts.Authz.DeleteRole(c.ctx(), c.param("name"))
	if err != nil {
		return err
	}
	if d == nil {
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return c.reply(http.StatusOK, roleView(c.scope, d))
}

// roleScopesAllow refuses action on the existing custom role id unless the
// caller may perform it at every scope the role is assignable at now, as
// Azure does: a role is changed or deleted only by someone who could have
// written it everywhere it applies — not through a scope of the caller's
// own, which let the Owner of one group rewrite a role assigned at the
// subscription into "*" and so make themselves its Owner.
func (c *call) roleScopesAllow(action, id string) error {
	d, ok := c.api.opts.Authz.Role(id)
	if !ok || d.Type != authz.CustomRole {
		return nil // a new role, or a built-in one (which the service refuses)
	}
	for _, s := range d.AssignableScopes {
		sid, err := gatehouse.ParseResourceID(s)
		if err != nil {
			continue
		}
		if !c.can(action, sid) {
			c.denied = true
			return errAuthorizationFailed(c.principal, action, sid)
		}
	}
	return nil
}

// GET {scope}/providers/Microsoft.Authorization/permissions: what the
// caller itself may do at a subscription, resource group or resource — the
// permissions of each role it holds there (armauthorization's
// PermissionsClient, what a program asks before it tries). Anyone may ask
// about themselves. Only a caller who may read the scope learns whether it
// exists (ARM's 404); any other gets its roles' permissions (or an empty
// list) for any name, so a data-only role cannot probe names.
func listPermissions(c *call) error {
	if c.scope.Subscription == "" {
		return gatehouse.BadRequestf("InvalidScope", "Permissions are listed at a subscription, resource group or resource, not at '%s'.", clip(c.scope.String()))
	}
	perms := c.api.opts.Authz.Permissions(c.principal.ObjectID, c.scope)
	if read := scopeReadAction(c.scope); len(perms) > 0 && read != "" && c.can(read, c.scope) {
		if err := c.checkScope(c.scope); err != nil {
			return err
		}
	}
	return c.reply(http.StatusOK, list[authz.Permission]{Value: perms})
}

// scopeReadAction is the action that reads what scope names (its top-level
// resource for a child or extension scope); "" for a type Gatehouse does
// not serve.
func scopeReadAction(scope *gatehouse.ResourceID) string {
	top := topResource(scope)
	switch {
	case top == nil && scope.ResourceGroup == "":
		return actSubscriptionRead
	case top == nil:
		return actGroupRead
	}
	switch strings.ToLower(top.Type()) {
	case "microsoft.cognitiveservices/accounts":
		return actAccountRead
	case "microsoft.keyvault/vaults":
		return actVaultRead
	case "microsoft.managedidentity/userassignedidentities":
		return actIdentityRead
	}
	return ""
}

// checkActionKinds refuses, as ARM does, a custom role that lists one of
// the catalog's data actions among its actions (the usual slip: Key
// Vault's secrets/getSecret/action as an action grants nothing) or one of
// its management actions among its data actions. Actions the catalog does
// not know are kept: they may be Azure's, of providers Gatehouse does not
// serve.
func (c *call) checkActionKinds(perms []authz.Permission) error {
	in := func(list []string, a string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, a) })
	}
	for _, p := range perms {
		for _, a := range slices.Concat(p.Actions, p.NotActions) {
			if in(c.api.opts.DataActions, a) {
				return gatehouse.BadRequestf("InvalidActionOrNotAction",
					"'%s' is a data action: list it in dataActions (or notDataActions), not in actions.", clip(a)).WithTarget("properties.permissions")
			}
		}
		for _, a := range slices.Concat(p.DataActions, p.NotDataActions) {
			if in(managementActions, a) {
				return gatehouse.BadRequestf("InvalidDataActionOrNotDataAction",
					"'%s' is not a data action: list it in actions (or notActions), not in dataActions.", clip(a)).WithTarget("properties.permissions")
			}
		}
	}
	return nil
}
