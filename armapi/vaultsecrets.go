package armapi

// What Microsoft.KeyVault/vaults has besides the vault itself, as
// armkeyvault and azure-mgmt-keyvault call it (vaults.go has the vault):
//
//	GET    {vault}/secrets[?$top=N&$skiptoken=…]   Secrets_List: metadata of the live secrets, never a value
//	GET    {vault}/secrets/{secret}                Secrets_Get: the latest version's metadata
//	PUT|PATCH {vault}/secrets/{secret}             Secrets_CreateOrUpdate, Secrets_Update: refused (400
//	                                               SecretWriteNotSupported): secrets are set on the data plane
//	PUT    {vault}/accessPolicies/{add|replace|remove}   Vaults_UpdateAccessPolicy: refused, as access
//	                                               policies are in a vault's PUT (errAccessPolicies)
//	GET    {vault}/privateEndpointConnections[/{name}], {vault}/privateLinkResources
//	                                               none: empty lists, 404 for one (features.go's answers)
//
// Secret metadata is shown only to a caller the vault's network rules
// admit (serve --private-networks counts as private endpoints), as on the
// data plane and the portal: Azure's management plane ignores a vault's
// firewall, but here a firewalled vault's secret names and dates are not
// to be read from addresses its data plane refuses. Such a refusal is Key
// Vault's 403 Forbidden (innererror ForbiddenByFirewall or
// ForbiddenByConnection) and is audited, as the data plane's are.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/vault"
)

const (
	// actVaultSecretRead reads a secret's metadata through the management
	// plane ("View the properties of a secret, but not its value"): Reader
	// and Key Vault Reader have it (*/read, vaults/*/read).
	actVaultSecretRead        = "Microsoft.KeyVault/vaults/secrets/read"
	actVaultAccessPolicyWrite = "Microsoft.KeyVault/vaults/accessPolicies/write"
	vaultSecretType           = "Microsoft.KeyVault/vaults/secrets"
	// Secrets_List pages: Key Vault's data plane bounds maxresults the
	// same way.
	vaultSecretsDefaultTop = 25
	vaultSecretsMaxTop     = 25
)

var vaultSecretRoutes = []route{
	{method: "GET", pattern: vaultP + "/secrets", family: famKeyVault, handle: listVaultSecrets},
	{method: "GET", pattern: vaultP + "/secrets/{secret}", family: famKeyVault, handle: getVaultSecret},
	{method: "PUT", pattern: vaultP + "/secrets/{secret}", family: famKeyVault, handle: writeVaultSecret},
	{method: "PATCH", pattern: vaultP + "/secrets/{secret}", family: famKeyVault, handle: writeVaultSecret},
	{method: "PUT", pattern: vaultP + "/accessPolicies/{kind}", family: famKeyVault, audit: true, handle: updateAccessPolicy},
	{method: "GET", pattern: vaultP + "/privateEndpointConnections", family: famKeyVault, handle: emptyList(readVault)},
	{method: "GET", pattern: vaultP + "/privateEndpointConnections/{item}", family: famKeyVault, handle: noItem("vault", readVault, "privateEndpointConnections")},
	{method: "GET", pattern: vaultP + "/privateLinkResources", family: famKeyVault, handle: emptyList(readVault)},
}

// readVault authorizes reading the path's vault and loads it.
func readVault(c *call) error {
	id, err := c.vaultCall(actVaultRead)
	if err != nil {
		return err
	}
	_, err = c.api.opts.Vaults.GetVault(c.ctx(), id)
	return err
}

// vaultSecretsCall is the prologue of the secret routes: actVaultSecretRead
// at the vault (or at the path's secret), the vault, and its network rules.
func (c *call) vaultSecretsCall(oneSecret bool) (*vault.Vault, error) {
	var within func(*gatehouse.ResourceID) *gatehouse.ResourceID
	if oneSecret {
		within = func(v *gatehouse.ResourceID) *gatehouse.ResourceID {
			return v.Child(vault.Namespace, "secrets", c.param("secret"))
		}
	}
	id, err := c.vaultCallAt(actVaultSecretRead, within)
	if err != nil {
		return nil, err
	}
	v, err := c.api.opts.Vaults.GetVault(c.ctx(), id)
	if err != nil {
		return nil, err
	}
	return v, c.checkVaultNetwork(v)
}

// checkVaultNetwork applies the vault's network rules to the caller's
// address, and audits a refusal.
func (c *call) checkVaultNetwork(v *vault.Vault) error {
	if v.Network == nil {
		return nil
	}
	addr := netacl.RemoteAddr(c.r.RemoteAddr)
	err := v.CheckNetwork(addr, c.api.opts.PrivateNetworks.Contains(addr), vault.CallerName(c.principal))
	if err == nil {
		return nil
	}
	if e, ok := gatehouse.AsError(err); ok && e.InnerCode == vault.CodeForbiddenByFirewall {
		c.detail("reason", "firewall")
		c.detail("clientAddress", addr.String())
	} else {
		c.detail("reason", "public_access_disabled")
	}
	c.denied = true
	if !c.route.audit {
		c.api.record(c, err)
	}
	return err
}

// vaultSecretJSON is armkeyvault's Secret: attributes as Unix seconds, no
// value.
type vaultSecretJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties struct {
		Attributes struct {
			Enabled   bool   `json:"enabled"`
			NotBefore *int64 `json:"nbf,omitempty"`
			Expires   *int64 `json:"exp,omitempty"`
			Created   int64  `json:"created"`
			Updated   int64  `json:"updated"`
		} `json:"attributes"`
		ContentType          string `json:"contentType,omitempty"`
		SecretURI            string `json:"secretUri"`
		SecretURIWithVersion string `json:"secretUriWithVersion"`
	} `json:"properties"`
}

func vaultSecretView(v *vault.Vault, s *vault.Secret) vaultSecretJSON {
	out := vaultSecretJSON{ID: v.ID + "/secrets/" + s.Name, Name: s.Name, Type: vaultSecretType, Location: v.Location, Tags: s.Tags}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	p := &out.Properties
	a := &p.Attributes
	a.Enabled, a.Created, a.Updated = s.Enabled, s.Created.Unix(), s.Updated.Unix()
	if !s.NotBefore.IsZero() {
		a.NotBefore = ptrTo(s.NotBefore.Unix())
	}
	if !s.Expires.IsZero() {
		a.Expires = ptrTo(s.Expires.Unix())
	}
	p.ContentType = s.ContentType
	p.SecretURI = strings.TrimSuffix(v.URI, "/") + "/secrets/" + s.Name
	p.SecretURIWithVersion = p.SecretURI + "/" + s.Version
	return out
}

func ptrTo[T any](v T) *T { return &v }

// GET {vault}/secrets: $top is the page size (1-25, default 25); a page
// that stops before the end has a nextLink with $skiptoken, the name to
// continue after.
func listVaultSecrets(c *call) error {
	q := c.r.URL.Query()
	top := vaultSecretsDefaultTop
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > vaultSecretsMaxTop {
			return gatehouse.BadRequestf("InvalidQueryParameterValue",
				"The $top must be a number from 1 to %d.", vaultSecretsMaxTop).WithTarget("$top")
		}
		top = n
	}
	after := q.Get("$skiptoken")
	if after != "" && !vault.ValidSecretName(after) {
		return gatehouse.BadRequestf("InvalidQueryParameterValue", "The $skiptoken is not valid.").WithTarget("$skiptoken")
	}
	v, err := c.vaultSecretsCall(false)
	if err != nil {
		return err
	}
	secrets, next, err := c.api.opts.Vaults.ListSecrets(c.ctx(), v, after, top)
	if err != nil {
		return err
	}
	out := list[vaultSecretJSON]{Value: []vaultSecretJSON{}}
	for _, s := range secrets {
		out.Value = append(out.Value, vaultSecretView(v, s))
	}
	if next != "" {
		link := url.Values{"api-version": {q.Get("api-version")}, "$top": {strconv.Itoa(top)}, "$skiptoken": {next}}
		out.NextLink = "https://" + c.r.Host + c.r.URL.EscapedPath() + "?" + link.Encode()
	}
	return c.reply(http.StatusOK, out)
}

// GET {vault}/secrets/{secret}: the latest version's metadata (a disabled
// one too). 404 SecretNotFound, as Key Vault's.
func getVaultSecret(c *call) error {
	v, err := c.vaultSecretsCall(true)
	if err != nil {
		return err
	}
	s, err := c.api.opts.Vaults.GetSecretProperties(c.ctx(), v, c.param("secret"), "")
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, vaultSecretView(v, s))
}

// PUT|PATCH {vault}/secrets/{secret}: Azure lets a management role that
// may write vaults set secret values here, outside the data plane's roles
// and network rules; Gatehouse does not (the body is not read).
func writeVaultSecret(c *call) error {
	v, err := c.vaultSecretsCall(true)
	if err != nil {
		return err
	}
	return gatehouse.BadRequestf("SecretWriteNotSupported",
		"Gatehouse sets secrets only on the vault's data plane (%s), under its Key Vault roles and network rules: use azsecrets' SetSecret, az keyvault secret set or gatehouse keyvault secret set.", v.URI)
}

// PUT {vault}/accessPolicies/{add|replace|remove}: refused, after the
// checks any write of the vault gets.
func updateAccessPolicy(c *call) error {
	id, err := c.vaultCall(actVaultAccessPolicyWrite)
	if err != nil {
		return err
	}
	if _, err := c.api.opts.Vaults.GetVault(c.ctx(), id); err != nil {
		return err
	}
	switch strings.ToLower(c.param("kind")) {
	case "add", "replace", "remove":
	default:
		return gatehouse.BadRequestf(gatehouse.CodeBadRequest,
			"The access policy operation '%s' is not valid: use add, replace or remove.", clip(c.param("kind"))).WithTarget("operationKind")
	}
	c.detail("name", id.Name())
	return errAccessPolicies("properties.accessPolicies")
}
