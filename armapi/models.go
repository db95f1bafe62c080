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
//	GET {sub}/providers/Microsoft.CognitiveServices/modelCapacities?modelFormat=&modelName=&modelVersion=
//	GET {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/modelCapacities?…
//	                                                       ModelCapacitiesClient, LocationBasedModelCapacitiesClient:
//	                                                       what is left of a model's quota, by location and sku
//	POST {sub}/providers/Microsoft.CognitiveServices/calculateModelCapacity
//	                                                       ManagementClient.CalculateModelCapacity: the capacity
//	                                                       a set of workloads needs, in the gateway's units
//
// Both show one entry per offered version, without anything of the
// upstream that serves it. Accounts of kinds without deployments (Language
// and the like) have no models.

import (
	"net/http"

	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
)

const (
	actLocationModelsRead          = "Microsoft.CognitiveServices/locations/models/read"
	actLocationUsagesRead          = "Microsoft.CognitiveServices/locations/usages/read"
	actModelCapacitiesRead         = "Microsoft.CognitiveServices/modelCapacities/read"
	actLocationModelCapacitiesRead = "Microsoft.CognitiveServices/locations/modelCapacities/read"
	actCalculateModelCapacity      = "Microsoft.CognitiveServices/calculateModelCapacity/action"
)

var modelRoutes = []route{
	{method: "GET", pattern: account + "/models", family: famCognitive, handle: listAccountModels},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/models", family: famCognitive, handle: listLocationModels},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/usages", family: famCognitive, handle: listLocationUsages},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/modelCapacities", family: famCognitive, handle: listModelCapacities},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/modelCapacities", family: famCognitive, handle: listModelCapacities},
	{method: "POST", pattern: sub + "/providers/Microsoft.CognitiveServices/calculateModelCapacity", family: famCognitive, handle: calculateModelCapacity},
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

// locationParam refuses a {loc} the server does not have with ARM's 400
// LocationNotAvailableForResourceType, as creating there is refused (a
// read of "mars" answered like a real location's).
func (c *call) locationParam(typ string) error {
	_, err := resources.ResourceLocation(c.param("loc"), "Microsoft.CognitiveServices/"+typ)
	return err
}

func listLocationModels(c *call) error {
	if err := c.checkCall(actLocationModelsRead); err != nil {
		return err
	}
	if err := c.locationParam("locations/models"); err != nil {
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
	if err := c.locationParam("locations/usages"); err != nil {
		return err
	}
	if c.api.opts.Deployments == nil {
		return c.reply(http.StatusOK, list[usageJSON]{Value: []usageJSON{}})
	}
	names, err := parseUsageFilter(c.r.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	us, err := c.api.opts.Deployments.QuotaUsages(c.ctx(), c.param("sub"), c.param("loc"))
	if err != nil {
		return err
	}
	out := list[usageJSON]{Value: make([]usageJSON, 0, len(us))}
	for _, u := range us {
		if names != nil && !names[strings.ToLower(u.Name)] {
			continue
		}
		out.Value = append(out.Value, usageJSON{Name: usageNameJSON{Value: u.Name, LocalizedValue: u.LocalizedName},
			CurrentValue: u.Current, Limit: u.Limit, Unit: "Count"})
	}
	return c.reply(http.StatusOK, out)
}

var (
	reUsageName = regexp.MustCompile(`(?i)^name\.value\s+eq\s+'((?:[^']|'')*)'$`)
	reOr        = regexp.MustCompile(`(?i)\s+or\s+`)
)

// parseUsageFilter parses the $filter of usage lists, as the SDKs document
// it: name.value eq '{name}', several joined by "or". It returns the names
// (lower case), nil without a filter.
func parseUsageFilter(f string) (map[string]bool, error) {
	if strings.TrimSpace(f) == "" {
		return nil, nil
	}
	names := map[string]bool{}
	for _, term := range filterTerms(strings.TrimSpace(f), reOr) {
		if !reUsageName.MatchString(term) {
			return nil, errFilter(f)
		}
		names[strings.ToLower(filterValue(reUsageName, term))] = true
	}
	return names, nil
}

// modelCapacityJSON is one entry of a model capacities list, as Azure
// shows it (a skuCapacities sub-resource of the location's model).
type modelCapacityItemJSON struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	Location   string                 `json:"location"`
	Properties modelCapacityPropsJSON `json:"properties"`
}

type modelCapacityPropsJSON struct {
	Model             accounts.DeploymentModel `json:"model"`
	SKUName           string                   `json:"skuName"`
	AvailableCapacity int                      `json:"availableCapacity"`
	// Gatehouse does not fine-tune: nothing is available for it.
	AvailableFinetuneCapacity int `json:"availableFinetuneCapacity"`
}

// requiredQuery returns the query parameter name, which the operation
// requires (400 MissingRequiredParameter, as ARM's providers answer).
func (c *call) requiredQuery(name string) (string, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return "", gatehouse.BadRequestf("MissingRequiredParameter", "The query parameter '%s' is required.", name).WithTarget(name)
	}
	return v, nil
}

// listModelCapacities answers ModelCapacities_List (every location) and
// LocationBasedModelCapacities_List ({loc}).
func listModelCapacities(c *call) error {
	action := actModelCapacitiesRead
	if c.param("loc") != "" {
		action = actLocationModelCapacitiesRead
	}
	if err := c.checkCall(action); err != nil {
		return err
	}
	if c.param("loc") != "" {
		if err := c.locationParam("locations/modelCapacities"); err != nil {
			return err
		}
	}
	var model [3]string
	for i, q := range []string{"modelFormat", "modelName", "modelVersion"} {
		v, err := c.requiredQuery(q)
		if err != nil {
			return err
		}
		model[i] = v
	}
	out := list[modelCapacityItemJSON]{Value: []modelCapacityItemJSON{}}
	if c.api.opts.Deployments == nil {
		return c.reply(http.StatusOK, out)
	}
	caps, err := c.api.opts.Deployments.ModelCapacities(c.ctx(), c.param("sub"), c.param("loc"), model[0], model[1], model[2])
	if err != nil {
		return err
	}
	for _, m := range caps {
		out.Value = append(out.Value, modelCapacityItemJSON{
			ID: "/subscriptions/" + c.param("sub") + "/providers/Microsoft.CognitiveServices/locations/" + m.Location +
				"/models/" + m.Format + "." + m.Name + "." + m.Version + "/skuCapacities/" + m.SKU,
			Name: m.SKU, Type: "Microsoft.CognitiveServices/locations/models/skuCapacities", Location: m.Location,
			Properties: modelCapacityPropsJSON{Model: accounts.DeploymentModel{Format: m.Format, Name: m.Name, Version: m.Version},
				SKUName: m.SKU, AvailableCapacity: m.Available}})
	}
	return c.reply(http.StatusOK, out)
}

// calculateModelCapacity answers Management_CalculateModelCapacity.
func calculateModelCapacity(c *call) error {
	if err := c.checkCall(actCalculateModelCapacity); err != nil {
		return err
	}
	var body struct {
		Model     *accounts.DeploymentModel `json:"model"`
		SKUName   string                    `json:"skuName"`
		Workloads []struct {
			RequestPerMinute  int64 `json:"requestPerMinute"`
			RequestParameters struct {
				AvgPromptTokens    int64 `json:"avgPromptTokens"`
				AvgGeneratedTokens int64 `json:"avgGeneratedTokens"`
			} `json:"requestParameters"`
		} `json:"workloads"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if body.Model == nil || body.Model.Name == "" {
		return gatehouse.BadRequestf("InvalidRequestContent", "model.name is required.").WithTarget("model.name")
	}
	if body.SKUName == "" {
		return gatehouse.BadRequestf("InvalidRequestContent", "skuName is required.").WithTarget("skuName")
	}
	if c.api.opts.Deployments == nil {
		return gatehouse.BadRequestf("DeploymentModelNotSupported", "This server offers no model catalog.").WithTarget("model")
	}
	ws := make([]accounts.CapacityWorkload, len(body.Workloads))
	for i, w := range body.Workloads {
		ws[i] = accounts.CapacityWorkload{RequestsPerMinute: w.RequestPerMinute,
			PromptTokens: w.RequestParameters.AvgPromptTokens, GeneratedTokens: w.RequestParameters.AvgGeneratedTokens}
	}
	est, err := c.api.opts.Deployments.EstimateCapacity(body.Model.Format, body.Model.Name, body.Model.Version, body.SKUName, ws)
	if err != nil {
		return err
	}
	type estimatedJSON struct {
		Value           int `json:"value"`
		DeployableValue int `json:"deployableValue"`
	}
	return c.reply(http.StatusOK, struct {
		Model             accounts.DeploymentModel `json:"model"`
		SKUName           string                   `json:"skuName"`
		EstimatedCapacity estimatedJSON            `json:"estimatedCapacity"`
	}{accounts.DeploymentModel{Format: est.Format, Name: est.Name, Version: est.Version}, est.SKU, estimatedJSON{est.Value, est.Deployable}})
}
