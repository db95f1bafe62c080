// Package armapi is Gatehouse's management API: the HTTP shapes of Azure
// Resource Manager over the authz, resources, accounts and audit services
// and the directory's managed identities, so that armcognitiveservices/v2,
// armauthorization/v2, armmsi and az 2.45 work against it unmodified
// (azure-wire.md §5 and §6).
//
// # Request flow
//
//	authenticate (bearer token, management audiences; 401 with ARM's codes
//	              and a WWW-Authenticate challenge)
//	→ route      (case-insensitive segments; 404 InvalidResourceType, 405)
//	→ api-version (400 MissingApiVersionParameter, InvalidApiVersionParameter,
//	              NoRegisteredProviderFound)
//	→ handler:    subscription exists (400 InvalidSubscriptionId, 404
//	              SubscriptionNotFound) → authorize (authz.Decide on the
//	              operation's action at the resource's id; 403
//	              AuthorizationFailed naming principal, action and scope)
//	              → group exists (404 ResourceGroupNotFound) → names and
//	              body (400 with ARM's codes, 413 over 4 MiB) → service
//	→ audit:      every write (and listKeys, which reveals secrets) is
//	              appended to the audit log with its result — Succeeded,
//	              Failed (status, code) or Denied — never with a key
//
// List operations return what the caller may read (ARM filters lists the
// same way). Long-running operations complete synchronously: PUT answers
// 201 (created) or 200 with provisioningState Succeeded, DELETE 200 (or 204
// when there was nothing), which azcore's pollers treat as done. Every
// answer carries x-ms-correlation-request-id (api.go).
//
// # Routes
//
//	GET    /subscriptions                                   api 2019-11-01 (az login) …
//	GET    /subscriptions/{sub}
//	GET    /tenants
//	GET    /subscriptions/{sub}/providers[/{ns}]            the namespaces served, "Registered"; another {ns} is
//	                                                        404 InvalidResourceNamespace
//	GET    /subscriptions/{sub}/locations                   where groups and accounts may be (resources.Locations)
//	GET    /subscriptions/{sub}/tagNames                    tag names and values of readable groups and resources,
//	                                                        and the predefined ones (tags.go)
//	PUT|DELETE /subscriptions/{sub}/tagNames/{name}[/tagValues/{value}]  predefined tag names and values
//	GET    {sub}/providers/Microsoft.Features/…, {scope}/providers/Microsoft.Authorization/policy*
//	                                                        none: empty lists, 404 items (nopolicy.go)
//	GET    /providers/Microsoft.Authorization/providerOperations[/{ns}], /providers/{ns}/operations
//	                                                        the actions checked (operations.go)
//	POST   /subscriptions/{sub}/providers/{ns}/register|unregister   register: as GET; unregister: 400
//	                                                        ProviderUnregistrationNotSupported
//	GET    /subscriptions/{sub}/resourceGroups
//	GET|HEAD|PUT|PATCH|DELETE /subscriptions/{sub}/resourceGroups/{rg}
//	GET    {sub | sub/resourceGroups/{rg}}/providers/Microsoft.CognitiveServices/accounts
//	GET|PUT|PATCH|DELETE  …/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}
//	POST   …/accounts/{name}/listKeys                       → {"key1","key2"}
//	POST   …/accounts/{name}/regenerateKey                  {"keyName":"Key1"|"Key2"} → both keys
//	POST   …/accounts/{name}/listKeyUsage                   Gatehouse extension: usage evidence per slot
//	GET    {sub | sub/resourceGroups/{rg}}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
//	GET|PUT|PATCH|DELETE  …/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}
//	GET    …/userAssignedIdentities/{name}/federatedIdentityCredentials[/{fic}], PUT|DELETE …/{fic}   (federated.go)
//	GET    {scope}/providers/Microsoft.ManagedIdentity/identities/default   a resource's system-assigned identity
//	                                                        (an AI account's); 404 ResourceNotFound when it has none
//	                                                        (systemidentity.go)
//	GET    {sub | sub/resourceGroups/{rg}}/providers/Microsoft.KeyVault/vaults
//	GET|PUT|PATCH|DELETE  …/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}   (vaults.go)
//	GET    /subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults
//	GET    …/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}[/purge (POST)]
//	POST   /subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability   {nameAvailable, reason, message}
//	GET    …/vaults/{name}/secrets[?$top=&$skiptoken=], …/secrets/{secret}   secret metadata, never a value, to
//	                                                        callers the vault's network rules admit; PUT|PATCH of a
//	                                                        secret: 400 SecretWriteNotSupported (vaultsecrets.go)
//	PUT    …/vaults/{name}/accessPolicies/{add|replace|remove}   400 BadRequest: vaults are RBAC-only
//	GET    …/vaults/{name}/privateEndpointConnections[/{pec}], …/privateLinkResources   empty; 404 for one
//	GET    {sub | sub/resourceGroups/{rg}}/resources         generic list (accounts, vaults, identities the caller
//	                                                        may read): $filter resourceType|name|resourceGroup|
//	                                                        tagName|tagValue eq '…' [and …], $top (generic.go)
//	GET    /subscriptions/{sub}/providers/Microsoft.CognitiveServices/skus   each kind's SKUs (accounts.SKUs), in
//	                                                        every location: what an account create accepts
//	GET    {sub | sub/resourceGroups/{rg}}/providers/Microsoft.KeyVault/managedHSMs, {sub}/…/deletedManagedHSMs   always empty
//	GET    {sub}/providers/Microsoft.CognitiveServices/deletedAccounts   soft-deleted accounts (deletedaccounts.go)
//	POST   {sub}/providers/Microsoft.CognitiveServices/checkDomainAvailability, …/locations/{loc}/checkSkuAvailability
//	                                                        (check.go)
//	GET    {account}/skus (its kind's), {account}/usages                                         usages empty
//	GET    {account}/deployments/{d}/skus                    its sku, capacity up to the catalog model's bound
//	GET    {account}/privateEndpointConnections, privateLinkResources, raiPolicies, raiBlocklists,
//	       encryptionScopes, networkSecurityPerimeterConfigurations, defenderForAISettings, connections,
//	       projects; {sub}/…/locations/{loc}/raiContentFilters
//	                                                        features Gatehouse lacks: empty, 404 for one item (features.go)
//	GET    {account}/models, {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/models
//	                                                        the model catalog (serve --models): what deployments may
//	                                                        name without properties.upstream (models.go)
//	GET    {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/usages   the catalog models' quotas there,
//	                                                        capacity deployed and limit per sku (models.go,
//	                                                        accounts/quota.go)
//	GET|DELETE {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/resourceGroups/{rg}/deletedAccounts/{name}
//	                                                        one; DELETE purges it. PUT …/accounts/{name} with
//	                                                        properties.restore true recovers it
//	GET    {scope}/providers/Microsoft.Authorization/roleAssignments   $filter atScope(), principalId eq, assignedTo()
//	GET|PUT|DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{guid}
//	GET    {scope}/providers/Microsoft.Authorization/roleDefinitions   $filter roleName eq, type eq
//	GET|PUT|DELETE {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}
//	GET    {sub | group | resource}/providers/Microsoft.Authorization/permissions   the caller's own
//	                                                        permissions there, a block per role it holds
//	POST   /providers/Microsoft.Authorization/elevateAccess   a directory Global Administrator gets User Access
//	                                                        Administrator at "/"; 200, no body (elevate.go)
//	GET    {scope}/providers/Microsoft.Authorization/locks      at, above and below scope; $filter atScope() (locks.go)
//	GET|PUT|DELETE {scope}/providers/Microsoft.Authorization/locks/{name}   CanNotDelete | ReadOnly; a change a
//	                                                        lock forbids is 409 ScopeLocked (authorize)
//	GET    {root | sub}/providers/Microsoft.Authorization/auditLogs        Gatehouse extension: $top, $skipToken (auditlog.go)
//	POST   {root | sub}/providers/Microsoft.Authorization/auditLogs/verify → {"intact", "entries", "lastHash" | "brokenAt", "reason"}
//
// {scope} is any ARM scope, inserted unescaped as armauthorization and az
// do (the root, a subscription, a group, a resource, a child resource), so
// GET /{roleAssignmentId} and GET /{roleDefinitionId} are the same routes.
// The accepted api-versions per provider are listed in routes.go.
//
// # Actions checked
//
//	accounts        Microsoft.CognitiveServices/accounts/{read,write,delete},
//	                …/listKeys/action, …/regenerateKey/action, …/listKeyUsage/action
//	                (attaching a user-assigned identity also needs its
//	                …/userAssignedIdentities/assign/action: 403 LinkedAuthorizationFailed)
//	deleted         Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/{read,delete}
//	accounts        at the resource group; recover is accounts/write on the account
//	checks          Microsoft.CognitiveServices/checkDomainAvailability/action,
//	                …/locations/checkSkuAvailability/action at the subscription
//	groups          Microsoft.Resources/subscriptions/resourceGroups/{read,write,delete}
//	identities      Microsoft.ManagedIdentity/userAssignedIdentities/{read,write,delete};
//	                Microsoft.ManagedIdentity/identities/read (a system-assigned identity, at its resource)
//	vaults          Microsoft.KeyVault/vaults/{read,write,delete}, Microsoft.KeyVault/deletedVaults/read,
//	                Microsoft.KeyVault/vaults/secrets/read (at the vault, or at the secret),
//	                Microsoft.KeyVault/vaults/accessPolicies/write,
//	                Microsoft.KeyVault/locations/deletedVaults/purge/action,
//	                Microsoft.KeyVault/checkNameAvailability/read
//	assignments     Microsoft.Authorization/roleAssignments/{read,write,delete}
//	elevateAccess   the Global Administrator directory role (else 403 AuthorizationFailed for
//	                Microsoft.Authorization/elevateAccess/action, audited)
//	role defs       Microsoft.Authorization/roleDefinitions/{write,delete}; reads are
//	                open to every authenticated principal, as in Azure
//	locks           Microsoft.Authorization/locks/{read,write,delete} (Owner, User Access Administrator)
//	subscriptions   listed to principals holding any role within them
//	audit log       Microsoft.Authorization/auditLogs/read or …/auditLogs/verify/action,
//	                and Microsoft.Authorization/roleAssignments/write (access
//	                administrators: Owner, User Access Administrator) at the scope
package armapi
