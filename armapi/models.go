package armapi

// The model catalog's lists (accounts/catalog.go): the models an account's
// deployments may name without properties.upstream.
//
//	GET {account}/models                                   az cognitiveservices account list-models,
//	                                                       armcognitiveservices AccountsClient.NewListModelsPager
//	GET {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/models
//	                                                       ModelsClient.NewListPager, az cognitiveservices model list
//	GET {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/usages
//	                                                       UsagesClient.NewListPager, az cognitiveservices usage list:
//	                                                       the models' quotas in the location (accounts/quota.go),
//	                                                       each sku's usageName in the model lists
//
// Both show one entry per offered version, without anything of the
// upstream that serves it. Accounts of kinds without deployments (Language
// and the like) have no models.

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
)

const (
	actLocationModelsRead = "Microsoft.CognitiveServices/locations/models/read"
	actLocationUsagesRead = "Microsoft.CognitiveServices/locations/usages/read"
)

var modelRoutes = []route{
	{method: "GET", pattern: account + "/models", family: famCognitive, handle: listAccountModels},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/models", family: famCognitive, handle: listLocationModels},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/usages", family: famCognitive, handle: listLocationUsages},
}

type accountModelJSON struct {
	Format           string            `json:"format"`
	Name             string            `json:"name"`
	Version          string            `json:"version,omitempty"`
	IsDefaultVersion bool              `json:"isDefaultVersion"`
	LifecycleStatus  string            `json:"lifecycleStatus"`
	Capabilities     map[string]string `json:"capabilities,omitempty"`
	MaxCapacity      int               `json:"maxCapacity,omitempty"`
	SKUs             []modelSKUJSON    `json:"skus"`
}

type modelSKUJSON struct {
	Name      string            `json:"name"`
	UsageName string            `json:"usageName"`
	Capacity  modelCapacityJSON `json:"capacity"`
}

type modelCapacityJSON struct {
	Default int `json:"default"`
	Maximum int `json:"maximum,omitempty"`
}

type locationModelJSON struct {
	Kind    string           `json:"kind"`
	SKUName string           `json:"skuName"`
	Model   accountModelJSON `json:"model"`
}

func accountModelView(o accounts.ModelOffer) accountModelJSON {
	v := accountModelJSON{Format: o.Format, Name: o.Name, Version: o.Version, IsDefaultVersion: o.IsDefaultVersion,
		LifecycleStatus: "GenerallyAvailable", Capabilities: o.Capabilities, MaxCapacity: o.MaxCapacity}
	for _, s := range accounts.ModelSKUs { // what a deployment of it may use
		v.SKUs = append(v.SKUs, modelSKUJSON{Name: s, UsageName: accounts.QuotaName(o.Format, s, o.Name),
			Capacity: modelCapacityJSON{Default: 1, Maximum: o.MaxCapacity}})
	}
	return v
}

func (c *call) catalogOffers() []accounts.ModelOffer {
	if c.api.opts.Deployments == nil {
		return nil
	}
	return c.api.opts.Deployments.Catalog().Offers()
}

func listAccountModels(c *call) error {
	a, err := c.readAccount()
	if err != nil {
		return err
	}
	out := list[accountModelJSON]{Value: []accountModelJSON{}}
	if slices.ContainsFunc(accounts.DeploymentKinds, func(k string) bool { return strings.EqualFold(k, a.Kind) }) {
		for _, o := range c.catalogOffers() {
			out.Value = append(out.Value, accountModelView(o))
		}
	}
	return c.reply(http.StatusOK, out)
}

func listLocationModels(c *call) error {
	if err := c.checkCall(actLocationModelsRead); err != nil {
		return err
	}
	if _, err := resources.NormalizeLocation(c.param("loc")); err != nil {
		return err
	}
	out := list[locationModelJSON]{Value: []locationModelJSON{}}
	for _, o := range c.catalogOffers() {
		for _, kind := range accounts.DeploymentKinds {
			out.Value = append(out.Value, locationModelJSON{Kind: kind, SKUName: "S0", Model: accountModelView(o)})
		}
	}
	return c.reply(http.StatusOK, out)
}

// usageJSON is one quota of a location's usages, as Azure shows it.
type usageJSON struct {
	Name         usageNameJSON `json:"name"`
	CurrentValue int           `json:"currentValue"`
	Limit        int           `json:"limit"`
	Unit         string        `json:"unit"`
}

type usageNameJSON struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

func listLocationUsages(c *call) error {
	if err := c.checkCall(actLocationUsagesRead); err != nil {
		return err
	}
	if c.api.opts.Deployments == nil {
		if _, err := resources.NormalizeLocation(c.param("loc")); err != nil {
			return err
		}
		return c.reply(http.StatusOK, list[usageJSON]{Value: []usageJSON{}})
	}
	us, err := c.api.opts.Deployments.QuotaUsages(c.ctx(), c.param("sub"), c.param("loc"))
	if err != nil {
		return err
	}
	out := list[usageJSON]{Value: make([]usageJSON, 0, len(us))}
	for _, u := range us {
		out.Value = append(out.Value, usageJSON{Name: usageNameJSON{Value: u.Name, LocalizedValue: u.LocalizedName},
			CurrentValue: u.Current, Limit: u.Limit, Unit: "Count"})
	}
	return c.reply(http.StatusOK, out)
}
