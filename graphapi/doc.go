// Package graphapi is the Microsoft Graph-shaped subset through which the
// directory is managed (and which `gatehouse ad` drives). Tokens must be
// issued for a Graph audience (https://graph.microsoft.com, or the
// server's own https://H, which az uses as its Graph endpoint); the caller
// must hold a directory role:
//
//	read                       Global Administrator, Application Administrator, User Administrator, Directory Readers
//	applications, principals  Global Administrator, Application Administrator
//	users, groups              Global Administrator, User Administrator
//	directory role assignments Global Administrator
//
// or own the object (owners.go): the owners of an application or of a
// service principal read and manage it — update, credentials, federated
// credentials, owners, delete — unless it holds a directory role, and see
// only what they own in the lists. Creating an application still takes a
// role; its creator becomes its first owner.
//
// Routes (root host H), with Graph's shapes and error codes; every route
// of /applications/{id} and /servicePrincipals/{id} also answers at
// applications(appId='…') and servicePrincipals(appId='…') (altkey.go),
// lists take $top (nextLink paging), $select, $count, and single objects
// $select (odata.go):
//
//	GET  /v1.0/organization
//	GET|POST /v1.0/applications            ($filter: <prop> eq '…', startswith(<prop>,'…'),
//	                                        identifierUris/any(x:x eq '…'); props appId, displayName)
//	GET|PATCH|DELETE /v1.0/applications/{id}   (id: application object id, or appId, or the SP's object id;
//	                                        identifierUris, web/publicClient redirectUris, appRoles,
//	                                        api.oauth2PermissionScopes: scopes.go, groupMembershipClaims,
//	                                        requiredResourceAccess)
//	POST /v1.0/applications/{id}/addPassword | removePassword | addKey | removeKey
//	GET|POST /v1.0/applications/{id}/federatedIdentityCredentials
//	GET|PATCH|DELETE /v1.0/applications/{id}/federatedIdentityCredentials/{id or name}  (PATCH: 204; the name cannot change)
//	GET /v1.0/{applications|servicePrincipals}/{id}/owners, POST …/owners/$ref, DELETE …/owners/{oid}/$ref
//	GET /v1.0/me/ownedObjects                    what the signed-in person owns (az ad app list --show-mine)
//	GET|POST /v1.0/servicePrincipals       (managed identities listed with servicePrincipalType ManagedIdentity)
//	GET|PATCH|DELETE /v1.0/servicePrincipals/{id}   (PATCH: accountEnabled, displayName, keyCredentials — its own)
//	POST /v1.0/servicePrincipals/{id}/addPassword | removePassword   the service principal's own secrets:
//	                                        listed on it, apart from its application object's (both sign in)
//	GET|POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo, DELETE …/{aid}   grants of the API's app roles
//	GET|POST /v1.0/servicePrincipals/{id}/appRoleAssignments, DELETE …/{aid}  the app roles a principal holds
//	GET|POST /v1.0/users/{id}/appRoleAssignments, DELETE …/{aid}              (approles.go)
//	GET|POST /v1.0/groups/{id}/appRoleAssignments, DELETE …/{aid}             (members hold the role)
//	GET|POST /v1.0/users, GET|PATCH|DELETE /v1.0/users/{id or userPrincipalName}
//	POST /v1.0/users/{id}/revokeSignInSessions   ends the person's refresh-token sessions (sessions.go)
//	POST /v1.0/me/revokeSignInSessions           the same for the signed-in person (no role needed)
//	GET  /v1.0/me                                the signed-in person (no role needed; az ad signed-in-user show)
//	GET|POST /v1.0/roleManagement/directory/roleAssignments, DELETE …/{id}
//	GET|POST /v1.0/oauth2PermissionGrants, GET|PATCH|DELETE …/{id}   delegated permission grants, kept and
//	                                        listed (consent is implicit; grants.go): az ad app permission grant
//	GET|POST /v1.0/groups, GET|PATCH|DELETE /v1.0/groups/{id}     security groups (groups.go)
//	GET /v1.0/groups/{id}/members, POST …/members/$ref, DELETE …/members/{mid}/$ref
//	POST /v1.0/directoryObjects/{id}/checkMemberGroups | getMemberGroups, /users/{id}/getMemberGroups,
//	     /groups/{id}/getMemberGroups, /directoryObjects/getByIds
//	POST /v1.0/{users|servicePrincipals|directoryObjects|groups}/{id}/getMemberObjects, /v1.0/me/getMemberObjects
//	     (where a token's group overage claim points: a principal may ask about itself)
//
// Gatehouse extensions: POST /v1.0/applications accepts
// "gatehouseCreateServicePrincipal": true (create the service principal in
// the same call), and a federated credential may carry "gatehouseJwks",
// the issuer's key set, for issuers Gatehouse cannot reach. Secrets appear
// only in addPassword's answer (secretText), once.
package graphapi
