package directory

import (
	"crypto/x509"
	"encoding/json"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Storage kinds. Every directory object lives in one of them.
const (
	// KindPrincipal holds applications (with their service principal),
	// managed identities and people. Key: object id. Alt: "app:"+client id
	// for applications, "mi:"+resource id key for managed identities,
	// "user:"+lower-case user name for people. Ref: tenant id.
	KindPrincipal = "directory.principal"
	// KindTenant holds tenants. Key: tenant id.
	KindTenant = "directory.tenant"
	// KindSettings holds the directory's singletons (the default tenant and
	// the bootstrap principal). Key: a fixed name.
	KindSettings = "directory.settings"
)

// principalKind tells the three kinds of principal records apart.
type principalKind string

const (
	kindApplication     principalKind = "application"
	kindManagedIdentity principalKind = "managedIdentity"
	kindUser            principalKind = "user"
)

// record is the persisted form of a principal. It holds hashes and is never
// serialized to a client: the Graph layer has its own view types.
type record struct {
	Kind        principalKind `json:"kind"`
	TenantID    string        `json:"tenantId"`
	ObjectID    string        `json:"objectId"`
	DisplayName string        `json:"displayName"`
	Enabled     bool          `json:"enabled"`
	// Roles are directory role template ids (RoleGlobalAdministrator, ...).
	Roles   []string  `json:"roles,omitempty"`
	Created time.Time `json:"created"`

	// Applications and managed identities.
	AppID string `json:"appId,omitempty"`
	// AppObjectID is the application object's id (Graph /applications/{id});
	// ObjectID is the service principal's (the token's oid).
	AppObjectID string `json:"appObjectId,omitempty"`
	// ServicePrincipal is false for an application whose service principal
	// was not created (or was deleted): it cannot get tokens.
	ServicePrincipal bool              `json:"servicePrincipal,omitempty"`
	Secrets          []secretRecord    `json:"secrets,omitempty"`
	Certificates     []certRecord      `json:"certificates,omitempty"`
	Federated        []federatedRecord `json:"federated,omitempty"`
	// IdentifierURIs name the application's API (api.go).
	IdentifierURIs []string `json:"identifierUris,omitempty"`
	// WebRedirectURIs and PublicRedirectURIs: where codes may go (api.go).
	WebRedirectURIs    []string `json:"webRedirectUris,omitempty"`
	PublicRedirectURIs []string `json:"publicRedirectUris,omitempty"`
	// AppRoles and the assignments of them (approles.go).
	AppRoles           []AppRole           `json:"appRoles,omitempty"`
	AppRoleAssignments []AppRoleAssignment `json:"appRoleAssignments,omitempty"`
	// PermissionGrants: the delegated permission grants of this client
	// (grants.go).
	PermissionGrants []PermissionGrant `json:"permissionGrants,omitempty"`
	// PermissionScopes are the delegated scopes its API exposes (scopes.go).
	PermissionScopes []PermissionScope `json:"oauth2PermissionScopes,omitempty"`
	// GroupMembershipClaims: "" (None), SecurityGroup, DirectoryRole or All (scopes.go).
	GroupMembershipClaims string `json:"groupMembershipClaims,omitempty"`
	// AccessTokenVersion: the API's requestedAccessTokenVersion as set
	// (0: never set; scopes.go).
	AccessTokenVersion int `json:"accessTokenVersion,omitempty"`
	// RequiredAccess: the permissions it declares on other APIs (scopes.go).
	RequiredAccess []RequiredResourceAccess `json:"requiredResourceAccess,omitempty"`
	// Owners and SPOwners: object ids of the people and service principals
	// that own the application object and its service principal (owner.go).
	Owners   []string `json:"owners,omitempty"`
	SPOwners []string `json:"spOwners,omitempty"`

	// Managed identities.
	ResourceID string            `json:"resourceId,omitempty"`
	Location   string            `json:"location,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`

	// People.
	UserName string `json:"userName,omitempty"`
	// PasswordHash is an argon2id PHC string.
	PasswordHash string `json:"passwordHash,omitempty"`
	// SessionsValidFrom revokes the person's sessions (refresh tokens)
	// that began before it: set by a password change and by
	// RevokeSignInSessions.
	SessionsValidFrom time.Time `json:"sessionsValidFrom,omitzero"`
	// MustChangePassword: the password was set by an administrator with
	// forceChangePasswordNextSignIn; it signs in only to be changed.
	MustChangePassword bool `json:"mustChangePassword,omitempty"`
}

// secretRecord is a client secret: only its SHA-256 is kept.
type secretRecord struct {
	KeyID       string    `json:"keyId"`
	DisplayName string    `json:"displayName,omitempty"`
	Hint        string    `json:"hint"`
	Hash        []byte    `json:"hash"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end,omitzero"`
	// ServicePrincipal: the service principal's own credential (Graph's
	// servicePrincipals/{id}/addPassword), not the application object's.
	ServicePrincipal bool `json:"servicePrincipal,omitempty"`
}

// certRecord is an uploaded public certificate.
type certRecord struct {
	KeyID       string    `json:"keyId"`
	DisplayName string    `json:"displayName,omitempty"`
	DER         []byte    `json:"der"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	// ServicePrincipal: as secretRecord's.
	ServicePrincipal bool `json:"servicePrincipal,omitempty"`
}

// federatedRecord trusts tokens of an external OIDC issuer.
type federatedRecord struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Issuer      string          `json:"issuer"`
	Subject     string          `json:"subject"`
	Audiences   []string        `json:"audiences"`
	Description string          `json:"description,omitempty"`
	JWKS        json.RawMessage `json:"jwks,omitempty"`
}

// tenantRecord is a directory tenant.
type tenantRecord struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"displayName"`
	Created     time.Time `json:"created"`
}

// defaultSettings is KindSettings/"default": which tenant is the default
// and which application was created by bootstrap.
type defaultSettings struct {
	TenantID string `json:"tenantId"`
	// BootstrapAppID is claimed (set) before the bootstrap application is
	// created, so that only one node creates it.
	BootstrapAppID string `json:"bootstrapAppId,omitempty"`
}

const settingsDefault = "default"

func altFor(r *record) string {
	switch r.Kind {
	case kindApplication:
		return "app:" + r.AppID
	case kindManagedIdentity:
		return "mi:" + resourceKey(r.ResourceID)
	case kindUser:
		return "user:" + lower(r.UserName)
	}
	return ""
}

// entry is a cached principal: the record plus what the hot paths derive
// from it once. Entries are immutable; a change replaces the entry.
type entry struct {
	rec       record
	revision  int64
	principal gatehouse.Principal
	certs     []*Certificate
}

// isPrincipal reports whether the entry is a principal now: a person, a
// managed identity, or an application that has its service principal.
func (e *entry) isPrincipal() bool {
	return e.rec.Kind != kindApplication || e.rec.ServicePrincipal
}

func newEntry(r *record, revision int64) *entry {
	e := &entry{rec: *r, revision: revision}
	e.principal = gatehouse.Principal{
		TenantID: r.TenantID,
		ObjectID: r.ObjectID,
		Name:     r.DisplayName,
	}
	switch r.Kind {
	case kindUser:
		e.principal.Type = gatehouse.PrincipalUser
		e.principal.Name = r.UserName
	case kindManagedIdentity:
		e.principal.Type = gatehouse.PrincipalServicePrincipal
		e.principal.ClientID = r.AppID
		e.principal.ManagedIdentity = true
	default:
		e.principal.Type = gatehouse.PrincipalServicePrincipal
		e.principal.ClientID = r.AppID
	}
	for _, c := range r.Certificates {
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			continue // validated on upload; a bad blob just never matches
		}
		e.certs = append(e.certs, newCertificate(c, cert))
	}
	return e
}
