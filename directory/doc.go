// Package directory holds Gatehouse's directory: tenants, service
// principals (applications) and their credentials, managed identities, and
// people. It is the Entra ID data model behind the identity authority.
//
// Records (storage kinds) and their indexes:
//
//	kind                 key            alt                              ref
//	directory.tenant     tenant id      —                                —
//	directory.settings   "default"      —                                —   (default tenant, bootstrap client id)
//	directory.principal  object id      app:{clientId} | mi:{resourceId} tenant id
//	                                    | user:{username}
//
// One principal record holds an application together with its service
// principal (ObjectID is the service principal's object id — the token's
// oid — and AppObjectID the application object's), a managed identity, or
// a person. The record also holds the owner lists of the application
// object and of its service principal (owner.go): owners are a property of
// the object, so they need no table or index of their own — every backend
// stores them as part of the record's document, and the lists go with it.
// Secrets are stored as SHA-256 only (they are 256-bit random,
// so a slow hash adds nothing); people's passwords as argon2id; uploaded
// certificates as DER.
//
// Reads come from memory: Load fills the cache and subscribes to the
// change feed, and every write re-reads what it wrote before returning, so
// the writing node sees it at once and the others within the feed's delay.
// The token endpoint's hot path (Client, CheckSecret) touches no database.
//
// Errors are *gatehouse.Error values (renderable as they are) whose cause
// is one of the sentinels ErrNotFound, ErrAlreadyExists, ErrInvalid; test
// with errors.Is and re-map the code for your surface. Credential checks
// return the plain sentinels ErrUnknownClient, ErrDisabled,
// ErrInvalidSecret, ErrSecretExpired, … which the token endpoint turns into
// AADSTS errors.
//
// Use from other services (the management API):
//
//	d.Principal(ctx, oid)                 → gatehouse.Principal (ErrNotFound)
//	d.DefaultTenant()                     → tenant id
//	d.CreateManagedIdentity(ctx, spec)    → *ManagedIdentity (ErrAlreadyExists)
//	d.GetManagedIdentity(ctx, resourceID) / ListManagedIdentities(ctx, scope)
//	d.UpdateManagedIdentity / DeleteManagedIdentity
package directory
