package authz

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Assignment grants a role to a principal at a scope and everything
// beneath it.
type Assignment struct {
	// Name is the assignment's GUID (lower case), chosen by the caller.
	Name string `json:"name"`
	// Scope is the ARM scope in canonical form (ResourceID.String()).
	Scope string `json:"scope"`
	// RoleDefinitionID is the role's GUID (lower case).
	RoleDefinitionID string `json:"roleDefinitionId"`
	// PrincipalID is the assignee's object id (lower case).
	PrincipalID   string    `json:"principalId"`
	PrincipalType string    `json:"principalType"`
	Description   string    `json:"description,omitempty"`
	CreatedOn     time.Time `json:"createdOn"`
	UpdatedOn     time.Time `json:"updatedOn"`
	CreatedBy     string    `json:"createdBy,omitempty"`
	UpdatedBy     string    `json:"updatedBy,omitempty"`

	scopeKey string // lower-cased Scope, set when indexed
	scopeID  *gatehouse.ResourceID
}

// ScopeID returns the parsed scope.
func (a *Assignment) ScopeID() *gatehouse.ResourceID {
	if a.scopeID != nil {
		return a.scopeID
	}
	id, err := gatehouse.ParseResourceID(a.Scope)
	if err != nil {
		return &gatehouse.ResourceID{}
	}
	return id
}

// ID returns the assignment's ARM id: {scope}/providers/Microsoft.Authorization/roleAssignments/{name}.
func (a *Assignment) ID() string {
	return a.ScopeID().Extension(Namespace, "roleAssignments", a.Name).String()
}

// Namespace is the resource provider of roles and assignments.
const Namespace = "Microsoft.Authorization"

// principalTypes are the values ARM accepts for principalType.
var principalTypes = map[string]string{
	"user": "User", "group": "Group", "serviceprincipal": "ServicePrincipal",
	"foreigngroup": "ForeignGroup", "device": "Device",
}

// NormalizePrincipalType returns ARM's spelling of t, or false.
func NormalizePrincipalType(t string) (string, bool) {
	v, ok := principalTypes[strings.ToLower(t)]
	return v, ok
}

// RoleIDFromDefinitionID extracts the role GUID from a role definition id
// in any of the forms clients send:
//
//	/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}
//	/providers/Microsoft.Authorization/roleDefinitions/{guid}
//	{any scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}
//	{guid}
func RoleIDFromDefinitionID(s string) (string, bool) {
	if id, ok := gatehouse.NormalizeGUID(s); ok {
		return id, true
	}
	rid, err := gatehouse.ParseResourceID(s)
	if err != nil || !strings.EqualFold(rid.Namespace, Namespace) || len(rid.Types) != 1 ||
		!strings.EqualFold(rid.Types[0], "roleDefinitions") {
		return "", false
	}
	return gatehouse.NormalizeGUID(rid.Names[0])
}

// DefinitionID returns the ARM id of role id as seen from scope: under the
// scope's subscription when it has one (what ARM returns in assignments),
// else at the tenant root.
func DefinitionID(scope *gatehouse.ResourceID, roleID string) string {
	if scope != nil && scope.Subscription != "" {
		return "/subscriptions/" + scope.Subscription + "/providers/" + Namespace + "/roleDefinitions/" + roleID
	}
	return "/providers/" + Namespace + "/roleDefinitions/" + roleID
}

// Errors with ARM's codes (azure-wire.md §5.3; codes partly UNVERIFIED).
func errRoleAssignmentExists() error {
	return gatehouse.Errorf(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists.")
}

func errAssignmentUpdate() error {
	return gatehouse.Errorf(http.StatusConflict, "RoleAssignmentUpdateNotPermitted",
		"Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
}

func errRoleNotFound(id string) error {
	return gatehouse.BadRequestf("RoleDefinitionDoesNotExist",
		"The specified role definition with ID '%s' does not exist.", clip(id))
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
