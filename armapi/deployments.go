package armapi

// Microsoft.CognitiveServices/accounts/deployments (armcognitiveservices/v2
// DeploymentsClient, `gatehouse cognitiveservices account deployment`).
// This file is the gateway engineer's (issue 5) addition to the package.
//
// A deployment maps a name clients use in /openai/deployments/{name}/… to
// an OpenAI-compatible upstream. Besides Azure's properties.model and sku,
// Gatehouse reads a properties.upstream extension:
//
//	"upstream": {"endpoint": "http://vllm:8000",   base URL; requests go to {endpoint}/v1/…
//	             "model": "meta-llama/…",           model name sent upstream (default: properties.model.name)
//	             "key": "…",                        the upstream's own key; write-only, sealed at rest
//	             "keyVaultSecret": "https://{vault}.vault.H/secrets/{name}[/{version}]",
//	                                                or: read the key from Key Vault as the account's
//	                                                managed identity (Key Vault Secrets User), at
//	                                                most a minute old and at once after a change
//	             "keyHeader": "api-key"}            header for the key (default Authorization: Bearer)
//
// Without properties.upstream the model must be one of the server's model
// catalog (models.go, accounts/catalog.go), whose upstream serves it; such
// a deployment shows no upstream. PATCH changes the sku and tags.
// raiPolicyName and versionUpgradeOption are kept and shown (Azure's
// defaults when not given), so tools that compare what they sent with what
// they read (Terraform) see no drift; Gatehouse neither filters content
// nor upgrades models.
//
// Responses show "hasKey" instead of the key, and the keyVaultSecret
// reference as it was given. PUT without "key" keeps the current one (for
// the same endpoint and keyHeader only: 400 InvalidUpstream otherwise);
// "key": "" removes it; "keyVaultSecret" replaces it (giving both is a
// 400).

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/vault"
)

const (
	actDeploymentRead   = "Microsoft.CognitiveServices/accounts/deployments/read"
	actDeploymentWrite  = "Microsoft.CognitiveServices/accounts/deployments/write"
	actDeploymentDelete = "Microsoft.CognitiveServices/accounts/deployments/delete"
)

// deploymentRoutes are added to routes (routes.go).
var deploymentRoutes = []route{
	{method: "GET", pattern: account + "/deployments", family: famCognitive, handle: listDeployments},
	{method: "GET", pattern: account + "/deployments/{deployment}", family: famCognitive, handle: getDeployment},
	{method: "PUT", pattern: account + "/deployments/{deployment}", family: famCognitive, audit: true, handle: putDeployment},
	{method: "PATCH", pattern: account + "/deployments/{deployment}", family: famCognitive, audit: true, handle: patchDeployment},
	{method: "DELETE", pattern: account + "/deployments/{deployment}", family: famCognitive, audit: true, handle: deleteDeployment},
}

type deploymentJSON struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	SKU        accounts.DeploymentSKU `json:"sku"`
	Tags       map[string]string      `json:"tags,omitempty"`
	Etag       string                 `json:"etag"`
	SystemData systemDataJSON         `json:"systemData"`
	Properties deploymentPropsJSON    `json:"properties"`
}

type deploymentPropsJSON struct {
	Model                accounts.DeploymentModel `json:"model"`
	ProvisioningState    string                   `json:"provisioningState"`
	RaiPolicyName        string                   `json:"raiPolicyName"`
	VersionUpgradeOption string                   `json:"versionUpgradeOption"`
	Capabilities         map[string]string        `json:"capabilities,omitempty"`
	// ScaleSettings repeats the sku's capacity for clients of API versions
	// before 2023-05-01 (az 2.45, azure-mgmt-cognitiveservices 13.4), which
	// read it there.
	ScaleSettings scaleSettingsJSON `json:"scaleSettings"`
	// Upstream is absent on a deployment of a catalog model.
	Upstream *accounts.Upstream `json:"upstream,omitempty"`
}

// skuBody is a deployment's sku as a request sends it: a capacity left
// out is Azure's default on a PUT (1) and the current one on a PATCH.
type skuBody struct {
	Name     string `json:"name"`
	Capacity *int   `json:"capacity"`
}

// sku returns the sku with its capacity, def when left out; a capacity
// sent below 1 is refused (InvalidCapacity), as accounts refuses it.
func (b *skuBody) sku(def int) (*accounts.DeploymentSKU, error) {
	if b == nil {
		return nil, nil
	}
	s := &accounts.DeploymentSKU{Name: b.Name, Capacity: def}
	if b.Capacity != nil {
		if err := accounts.CheckDeploymentCapacity(*b.Capacity); err != nil {
			return nil, err
		}
		s.Capacity = *b.Capacity
	}
	return s, nil
}

type deploymentBody struct {
	SKU        *skuBody          `json:"sku"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		Model                *accounts.DeploymentModel `json:"model"`
		RaiPolicyName        string                    `json:"raiPolicyName"`
		VersionUpgradeOption string                    `json:"versionUpgradeOption"`
		// ScaleSettings is the sku of API versions before 2023-05-01 (az
		// 2.45 sends it): its capacity is the Standard sku's.
		ScaleSettings *struct {
			ScaleType string `json:"scaleType"`
			Capacity  *int   `json:"capacity"`
		} `json:"scaleSettings"`
		Upstream *struct {
			Endpoint       string  `json:"endpoint"`
			Model          string  `json:"model"`
			KeyHeader      string  `json:"keyHeader"`
			Key            *string `json:"key"`
			KeyVaultSecret string  `json:"keyVaultSecret"`
		} `json:"upstream"`
	} `json:"properties"`
}

func deploymentView(d *accounts.Deployment) deploymentJSON {
	return deploymentJSON{ID: d.ID, Name: d.Name, Type: accounts.DeploymentType, SKU: d.SKU, Tags: d.Tags, Etag: etag(d.Revision),
		SystemData: systemDataJSON{
			CreatedAt: armTime(d.CreatedAt), CreatedBy: d.CreatedBy.ObjectID, CreatedByType: d.CreatedBy.Type,
			LastModifiedAt: armTime(d.UpdatedAt), LastModifiedBy: d.UpdatedBy.ObjectID, LastModifiedByType: d.UpdatedBy.Type,
		},
		Properties: deploymentPropsJSON{Model: d.Model, ProvisioningState: "Succeeded", Capabilities: d.Capabilities,
			RaiPolicyName: d.RaiPolicyName, VersionUpgradeOption: d.VersionUpgradeOption,
			ScaleSettings: scaleSettingsJSON{ScaleType: d.ScaleType, Capacity: d.SKU.Capacity}, Upstream: upstreamView(d)}}
}

type scaleSettingsJSON struct {
	ScaleType string `json:"scaleType,omitempty"`
	Capacity  int    `json:"capacity"`
}

func upstreamView(d *accounts.Deployment) *accounts.Upstream {
	if d.Catalog {
		return nil
	}
	return &d.Upstream
}

// deploymentCall is the prologue of a deployment operation: subscription,
// authorization at the deployment's scope (or the account's, for a list),
// resource group, account.
func (c *call) deploymentCall(action string, child bool) (*accounts.Account, error) {
	if c.api.opts.Deployments == nil {
		return nil, errNoRoute(c.r.URL.Path)
	}
	if _, err := c.subscription(); err != nil {
		return nil, err
	}
	id, nameErr := c.accountID()
	scope := id
	if child {
		scope = id.Child(accounts.Namespace, "deployments", c.param("deployment"))
	}
	if err := c.authorize(action, scope); err != nil {
		return nil, err
	}
	if _, err := c.group(); err != nil {
		return nil, err
	}
	if nameErr != nil {
		return nil, nameErr
	}
	if child {
		if err := accounts.ValidateDeploymentName(c.param("deployment")); err != nil {
			return nil, err
		}
	}
	return c.api.opts.Accounts.Get(c.ctx(), id)
}

func listDeployments(c *call) error {
	a, err := c.deploymentCall(actDeploymentRead, false)
	if err != nil {
		return err
	}
	all, err := c.api.opts.Deployments.ListDeployments(c.ctx(), a)
	if err != nil {
		return err
	}
	out := list[deploymentJSON]{Value: []deploymentJSON{}}
	for _, d := range all {
		out.Value = append(out.Value, deploymentView(d))
	}
	return c.reply(http.StatusOK, out)
}

func getDeployment(c *call) error {
	d, err := c.readDeployment()
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, deploymentView(d))
}

// readDeployment is the {deployment} of the route, for a caller who may
// read it.
func (c *call) readDeployment() (*accounts.Deployment, error) {
	a, err := c.deploymentCall(actDeploymentRead, true)
	if err != nil {
		return nil, err
	}
	return c.api.opts.Deployments.GetDeployment(c.ctx(), a, c.param("deployment"))
}

// PUT completes synchronously: 201 (created) or 200 (replaced) with
// provisioningState Succeeded.
func putDeployment(c *call) error {
	a, err := c.deploymentCall(actDeploymentWrite, true)
	if err != nil {
		return err
	}
	var body deploymentBody
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := resources.ValidateTags(body.Tags); err != nil {
		return err
	}
	sku, err := body.SKU.sku(1)
	if err != nil {
		return err
	}
	spec := accounts.DeploymentSpec{SKU: sku, Tags: body.Tags}
	if p := body.Properties; p != nil {
		spec.RaiPolicyName, spec.VersionUpgradeOption = p.RaiPolicyName, p.VersionUpgradeOption
		if p.Model != nil {
			spec.Model = *p.Model
		}
		if ss := p.ScaleSettings; ss != nil {
			spec.ScaleType = ss.ScaleType
			if ss.Capacity != nil && spec.SKU == nil {
				spec.SKU = &accounts.DeploymentSKU{Name: "Standard", Capacity: *ss.Capacity}
			}
		}
		if u := p.Upstream; u != nil {
			spec.Endpoint, spec.UpstreamModel, spec.KeyHeader, spec.Key = u.Endpoint, u.Model, u.KeyHeader, u.Key
			spec.KeyVaultSecret = u.KeyVaultSecret
		}
	}
	if err := c.authorizeSecretReference(spec.KeyVaultSecret); err != nil {
		return err
	}
	d, created, err := c.api.opts.Deployments.PutDeployment(c.ctx(), a, c.param("deployment"), spec, c.actor())
	if err != nil {
		return err
	}
	c.detail("name", d.Name)
	return c.put(created, deploymentView(d))
}

// authorizeSecretReference: naming a Key Vault secret as a deployment's
// upstream credential needs the right to read that secret (403
// LinkedAuthorizationFailed, as ARM answers for a linked scope). The
// gateway reads it as the account's identity and sends it to the
// deployment's endpoint, which the same caller chooses: without this,
// anyone who may write deployments could have any secret the account's
// identity may read sent to a server of theirs.
func (c *call) authorizeSecretReference(ref string) error {
	vs := c.api.opts.Vaults
	if ref == "" || vs == nil {
		return nil
	}
	r, err := vs.ParseReference(ref)
	if err != nil {
		return nil // not a reference of this server: the service refuses it with a 400
	}
	scope := &gatehouse.ResourceID{Namespace: "Microsoft.KeyVault", Types: []string{"vaults", "secrets"}, Names: []string{r.Vault, r.Name}}
	if v, ok := vs.VaultByName(r.Vault); ok {
		scope = v.Scope().Child("Microsoft.KeyVault", "secrets", r.Name)
		if c.api.opts.Authz.Decide(c.principal.ObjectID, authz.DataAction(vault.ActionGetSecret), scope).Allowed {
			return nil
		}
	}
	return c.linkedAuthorizationFailed(vault.ActionGetSecret, scope)
}

// PATCH (DeploymentsClient.BeginUpdate) changes the sku and the tags, and
// answers 200 with provisioningState Succeeded.
func patchDeployment(c *call) error {
	a, err := c.deploymentCall(actDeploymentWrite, true)
	if err != nil {
		return err
	}
	var body struct {
		SKU  *skuBody          `json:"sku"`
		Tags map[string]string `json:"tags"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := resources.ValidateTags(body.Tags); err != nil {
		return err
	}
	sku, err := body.SKU.sku(0) // 0: PatchDeployment keeps the capacity
	if err != nil {
		return err
	}
	d, err := c.api.opts.Deployments.PatchDeployment(c.ctx(), a, c.param("deployment"), sku, body.Tags, c.actor())
	if err != nil {
		return err
	}
	c.detail("name", d.Name)
	return c.reply(http.StatusOK, deploymentView(d))
}

// DELETE: 200 when deleted, 204 when there was nothing.
func deleteDeployment(c *call) error {
	a, err := c.deploymentCall(actDeploymentDelete, true)
	if err != nil {
		return err
	}
	existed, err := c.api.opts.Deployments.DeleteDeployment(c.ctx(), a, c.param("deployment"))
	if err != nil {
		return err
	}
	c.detail("name", c.param("deployment"))
	return c.deleted(existed)
}
