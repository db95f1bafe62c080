// Package authz is Gatehouse's role-based access control: role definitions
// (Azure's built-in roles with their own GUIDs and permission lists, plus
// custom roles), role assignments at any ARM scope, and the one decision
// function every surface uses.
//
// # Decision flow
//
//	Decide(principal, op, scope)
//	  → cache hit for (principal, op, scope) at the current generation? return it
//	  → for each assignment of the principal whose scope is scope or above it
//	       (root "/" → subscription → group → resource → child resource)
//	       role permits op? (Actions − NotActions for actions,
//	                         DataActions − NotDataActions for data actions,
//	                         '*' wildcards, case-insensitive, union of blocks)
//	  → allow with the closest such assignment, else deny
//
// Nothing on this path touches storage. Roles and assignments live in an
// in-memory index loaded at start (Load) and kept current by the change
// feed (kinds authz.role and authz.assignment): every change re-reads its
// record, bumps a generation and invalidates cached decisions, on every
// node. Writes wait for their own change to reach the local index before
// returning, so a caller that creates an assignment and then acts on it is
// never refused by its own node.
//
// # Records
//
//	kind              key            alt                                  ref
//	authz.role        role GUID      lower-cased role name (unique)       -
//	authz.assignment  name GUID      SHA-256(scope ‖ role ‖ principal)    principal id
//
// The alternate key makes ARM's rule — one assignment per scope, role and
// principal — a storage constraint, so two nodes cannot both create it.
//
// ABAC conditions are not evaluated, so assignments that carry one are
// refused instead of granting more than they say.
package authz
