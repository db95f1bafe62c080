package vault

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// ActionGetSecret is the data action that reads a secret's value.
const ActionGetSecret = "Microsoft.KeyVault/vaults/secrets/getSecret/action"

// SecretScope returns the RBAC scope of one secret:
// {vault id}/secrets/{name}. Role assignments at the vault (or above)
// cover it.
func SecretScope(v *Vault, name string) *gatehouse.ResourceID {
	return v.Scope().Child(Namespace, "secrets", name)
}

// Reference is a parsed secret reference URI,
// https://{vault}.vault.H/secrets/{name}[/{version}].
type Reference struct {
	Vault   string // data-plane name (lower case)
	Name    string
	Version string // "" = the latest
}

// ParseReference parses a secret reference against this deployment's
// vault host form. It accepts exactly the ids the data plane returns (with
// or without version, with or without a trailing slash).
//
// Errors (*gatehouse.Error): 400 BadParameter.
func (s *Service) ParseReference(uri string) (Reference, error) {
	bad := gatehouse.BadRequestf(CodeBadParameter,
		"'%s' is not a Key Vault secret reference of this deployment: expected https://{vault}.vault.{host}/secrets/{name}[/{version}].", clip(uri))
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Reference{}, bad
	}
	host := strings.ToLower(u.Host)
	label, _, ok := strings.Cut(host, ".")
	if !ok || label == "" {
		return Reference{}, bad
	}
	want, err := url.Parse(s.opts.VaultURI(label))
	if err != nil || !strings.EqualFold(want.Host, host) {
		return Reference{}, bad
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) < 2 || len(segs) > 3 || !strings.EqualFold(segs[0], "secrets") || !ValidSecretName(segs[1]) {
		return Reference{}, bad
	}
	ref := Reference{Vault: label, Name: segs[1]}
	if len(segs) == 3 {
		if !validVersion(segs[2]) {
			return Reference{}, bad
		}
		ref.Version = lower(segs[2])
	}
	return ref, nil
}

// ResolveSecretReference reads the secret a reference URI names, as the
// principal (typically an AI account's managed identity) — authorized
// through RBAC like any other reader: the principal needs
// Microsoft.KeyVault/vaults/secrets/getSecret/action at the secret, the
// vault or above (Key Vault Secrets User). Unlike the data plane, it also
// refuses a version that is not yet valid (nbf) or expired (exp).
//
// It returns the value and the version read. The value is plaintext: use
// it for the request at hand and do not keep it; calling this per request
// is cheap (no storage access on a cache hit, one AES-GCM open), and picks
// up a new latest version at once.
//
// Errors (*gatehouse.Error): 400 BadParameter (not a reference of this
// deployment); 403 Forbidden / ForbiddenByRbac, SecretDisabled, and
// Forbidden / SecretNotValid (nbf, exp); 404 SecretNotFound or NotFound
// (no such vault); 503.
func (s *Service) ResolveSecretReference(ctx context.Context, principal gatehouse.Principal, uri string) (value []byte, version string, err error) {
	ref, err := s.ParseReference(uri)
	if err != nil {
		return nil, "", err
	}
	v, ok := s.VaultByName(ref.Vault)
	if !ok {
		return nil, "", gatehouse.NotFoundf(gatehouse.CodeNotFound, "The vault '%s' was not found.", clip(ref.Vault))
	}
	if s.opts.Authorizer == nil || principal.ObjectID == "" ||
		!s.opts.Authorizer.AuthorizeData(principal.ObjectID, ActionGetSecret, SecretScope(v, ref.Name)) {
		return nil, "", ErrForbiddenByRbac(principal, ActionGetSecret, SecretScope(v, ref.Name), v)
	}
	sec, err := s.GetSecret(ctx, v, ref.Name, ref.Version)
	if err != nil {
		return nil, "", err
	}
	now := s.opts.Now()
	if !sec.NotBefore.IsZero() && now.Before(sec.NotBefore) || !sec.Expires.IsZero() && !now.Before(sec.Expires) {
		clear(sec.Value)
		return nil, "", gatehouse.Errorf(http.StatusForbidden, CodeForbidden,
			"The secret %s/%s is not valid now (nbf/exp).", clip(ref.Name), sec.Version).WithInner("SecretNotValid")
	}
	return sec.Value, sec.Version, nil
}

// ErrForbiddenByRbac is the data plane's 403 for a principal that lacks
// a data action at scope (in vault v): Azure's words and layout, one item
// a line as its network refusals (CheckNetwork), with the whole scope (the
// server's own, of validated names, down to the secret) and the caller as
// Azure names it (appid and oid), so that the message says which role
// assignment is missing.
func ErrForbiddenByRbac(p gatehouse.Principal, action string, scope *gatehouse.ResourceID, v *Vault) error {
	return gatehouse.Errorf(http.StatusForbidden, CodeForbidden,
		"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"+
			"Caller: %s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\nVault: %s;location=%s\r\n",
		CallerName(p), action, strings.ToLower(scope.String()), v.Name, v.Location).WithInner("ForbiddenByRbac")
}
