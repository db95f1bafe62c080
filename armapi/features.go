package armapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
)

// Features of Azure AI accounts that Gatehouse does not have, answered as
// Azure answers an account that uses none of them: an empty list, and 404
// for any one item (armcognitiveservices' list pagers and Get calls, and
// tools that read them after creating an account, get answers instead of
// a 404 for the whole collection):
//
//	{account}/privateEndpointConnections, privateLinkResources,
//	networkSecurityPerimeterConfigurations, encryptionScopes, raiPolicies,
//	raiBlocklists, defenderForAISettings, connections, projects
//	{sub}/…/locations/{loc}/raiContentFilters (no content filtering)
//
// And one that it has: {account}/deployments/{deployment}/skus, the skus a
// deployment can have — its own sku name, with the capacity the model of
// the server's catalog allows (no maximum for an upstream deployment).
var featureRoutes = func() []route {
	rs := []route{
		{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/raiContentFilters", family: famCognitive, handle: listLocationEmpty},
		{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/raiContentFilters/{item}", family: famCognitive, handle: noLocationItem("raiContentFilters")},
		{method: "GET", pattern: account + "/deployments/{deployment}/skus", family: famCognitive, handle: listDeploymentSKUs},
	}
	for _, coll := range []string{"privateEndpointConnections", "privateLinkResources", "networkSecurityPerimeterConfigurations",
		"encryptionScopes", "raiPolicies", "raiBlocklists", "defenderForAISettings", "connections", "projects"} {
		rs = append(rs,
			route{method: "GET", pattern: account + "/" + coll, family: famCognitive, handle: listAccountEmpty},
			route{method: "GET", pattern: account + "/" + coll + "/{item}", family: famCognitive, handle: noAccountItem(coll)},
			// Writing one is refused by name (a 405 read as a wrong URL);
			// deleting one finds nothing to delete, as ARM answers (204).
			route{method: "PUT", pattern: account + "/" + coll + "/{item}", family: famCognitive, handle: unsupportedItem(coll)},
			route{method: "PATCH", pattern: account + "/" + coll + "/{item}", family: famCognitive, handle: unsupportedItem(coll)},
			route{method: "DELETE", pattern: account + "/" + coll + "/{item}", family: famCognitive, handle: deleteNoItem})
	}
	return rs
}()

// writeAccountItem authorizes writing the path's account and loads it
// (404 without one), for its child collections' writes.
func (c *call) writeAccountItem() error {
	id, err := c.accountCall(actAccountWrite)
	if err != nil {
		return err
	}
	_, err = c.api.opts.Accounts.Get(c.ctx(), id)
	return err
}

// unsupportedItem refuses a write of one item of a collection Gatehouse
// accounts do not have, once the caller may write the account.
func unsupportedItem(coll string) func(c *call) error {
	return func(c *call) error {
		if err := c.writeAccountItem(); err != nil {
			return err
		}
		return gatehouse.BadRequestf("FeatureNotSupported",
			"Gatehouse accounts have no %s: writing one is not supported (README: Manage accounts and access).", coll).WithTarget(coll)
	}
}

// deleteNoItem answers DELETE of an item of such a collection: 204, there
// being none.
func deleteNoItem(c *call) error {
	if err := c.writeAccountItem(); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// noAccountItem answers GET of one item of a collection an existing
// account has none of.
func noAccountItem(coll string) func(c *call) error {
	return noItem("account", func(c *call) error {
		_, err := c.readAccount()
		return err
	}, coll)
}

// noItem answers GET of one item of a collection an existing resource
// (owner: "account", "vault") has none of; read authorizes reading the
// resource and loads it.
func noItem(owner string, read func(*call) error, coll string) func(c *call) error {
	return func(c *call) error {
		if err := read(c); err != nil {
			return err
		}
		return gatehouse.NotFoundf("NotFound", "The %s '%s' of the %s was not found.", coll, clipName(c.param("item")), owner)
	}
}

// emptyList answers a collection an existing resource has none of; read
// authorizes reading the resource and loads it.
func emptyList(read func(*call) error) func(c *call) error {
	return func(c *call) error {
		if err := read(c); err != nil {
			return err
		}
		return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
	}
}

// noLocationItem is noAccountItem for a location's collection.
func noLocationItem(coll string) func(c *call) error {
	return func(c *call) error {
		if _, err := c.subscription(); err != nil {
			return err
		}
		if _, err := resources.NormalizeLocation(c.param("loc")); err != nil {
			return err
		}
		return gatehouse.NotFoundf("NotFound", "The %s '%s' was not found.", coll, clipName(c.param("item")))
	}
}

func clipName(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type skuCapacityJSON struct {
	Minimum int `json:"minimum"`
	Maximum int `json:"maximum,omitempty"`
	Step    int `json:"step"`
	Default int `json:"default"`
}

// deploymentSKUJSON is Azure's SkuResource.
type deploymentSKUJSON struct {
	ResourceType string `json:"resourceType"`
	SKU          struct {
		Name string `json:"name"`
	} `json:"sku"`
	Capacity skuCapacityJSON `json:"capacity"`
}

// listDeploymentSKUs is GET {account}/deployments/{deployment}/skus.
func listDeploymentSKUs(c *call) error {
	d, err := c.readDeployment()
	if err != nil {
		return err
	}
	var s deploymentSKUJSON
	s.ResourceType = accounts.Namespace + "/accounts/deployments"
	s.SKU.Name = d.SKU.Name
	s.Capacity = skuCapacityJSON{Minimum: 1, Step: 1, Default: max(1, d.SKU.Capacity)}
	if d.Catalog {
		if m, _, ok := c.api.opts.Deployments.Catalog().Find(d.Model.Format, d.Model.Name, d.Model.Version); ok && m.MaxCapacity > 0 {
			s.Capacity.Maximum = m.MaxCapacity
		}
	}
	return c.reply(http.StatusOK, list[deploymentSKUJSON]{Value: []deploymentSKUJSON{s}})
}
