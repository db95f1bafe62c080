package gatehouse

// PrincipalType is the kind of a security principal, with the names ARM
// uses in a role assignment's principalType.
type PrincipalType string

const (
	// PrincipalServicePrincipal is an application's identity; managed
	// identities are service principals too (with ManagedIdentity set).
	PrincipalServicePrincipal PrincipalType = "ServicePrincipal"
	// PrincipalUser is a person.
	PrincipalUser PrincipalType = "User"
	// PrincipalGroup is a security group: never a token's subject, only
	// an assignee whose role assignments grant its members.
	PrincipalGroup PrincipalType = "Group"
)

// Principal is who a verified token or credential stands for. Role
// assignments name principals by ObjectID.
type Principal struct {
	Type PrincipalType
	// TenantID is the directory tenant (lower-case GUID).
	TenantID string
	// ObjectID is the principal's object id (the token's oid).
	ObjectID string
	// ClientID is the application (client) id of a service principal or
	// managed identity (the token's appid); "" for people.
	ClientID string
	// Name is the display name or user name, for messages and logs.
	Name string
	// ManagedIdentity marks a managed identity's service principal.
	ManagedIdentity bool
}

// ClientName is how ARM's AuthorizationFailed message names the client
// ("The client '…' with object id '…'"): an application or managed
// identity by its client id, a person by user name, else the object id.
func (p Principal) ClientName() string {
	switch {
	case p.ClientID != "":
		return p.ClientID
	case p.Type == PrincipalUser && p.Name != "":
		return p.Name
	}
	return p.ObjectID
}
