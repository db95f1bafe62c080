package armapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
)

// Name and SKU checks before a create, as armcognitiveservices'
// ManagementClient calls them:
//
//	POST {sub}/providers/Microsoft.CognitiveServices/checkDomainAvailability
//	     {"subdomainName", "type": "Microsoft.CognitiveServices/accounts"[, "kind"]}
//	     → {"isSubdomainAvailable", "reason", …}: taken by an account, or held
//	     by a deleted one until it is purged or recovered
//	POST {sub}/providers/Microsoft.CognitiveServices/locations/{loc}/checkSkuAvailability
//	     {"skus": [...], "kind", "type"} → {"value": [{"skuName", "skuAvailable", …}]}:
//	     the kind's SKUs (accounts.SKUs) at the locations accounts may be in
//	     (resources.Locations) — what an account create accepts
const (
	actCheckDomain = "Microsoft.CognitiveServices/checkDomainAvailability/action"
	actCheckSKU    = "Microsoft.CognitiveServices/locations/checkSkuAvailability/action"
)

var checkRoutes = []route{
	{method: "POST", pattern: sub + "/providers/Microsoft.CognitiveServices/checkDomainAvailability", family: famCognitive, handle: checkDomain},
	{method: "POST", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/checkSkuAvailability", family: famCognitive, handle: checkSKU},
}

// checkCall authorizes action at the path's subscription.
func (c *call) checkCall(action string) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	return c.authorize(action, &gatehouse.ResourceID{Subscription: s.ID})
}

// checkType requires the accounts type (any case), as ARM does.
func checkType(t string) error {
	if !strings.EqualFold(t, accounts.Type) {
		return gatehouse.BadRequestf("InvalidResourceType", "The type '%s' is not valid: use %s.", clip(t), accounts.Type).WithTarget("type")
	}
	return nil
}

func checkDomain(c *call) error {
	if err := c.checkCall(actCheckDomain); err != nil {
		return err
	}
	var body struct {
		SubdomainName string `json:"subdomainName"`
		Type          string `json:"type"`
		Kind          string `json:"kind"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := checkType(body.Type); err != nil {
		return err
	}
	ok, reason, err := c.api.opts.Accounts.DomainAvailable(c.ctx(), body.SubdomainName)
	if err != nil {
		return err
	}
	out := map[string]any{"isSubdomainAvailable": ok, "subdomainName": body.SubdomainName, "type": accounts.Type}
	if reason != "" {
		out["reason"] = reason
	}
	if body.Kind != "" {
		out["kind"] = body.Kind
	}
	return c.reply(http.StatusOK, out)
}

type skuAvailabilityJSON struct {
	Kind         string `json:"kind"`
	Type         string `json:"type"`
	SKUName      string `json:"skuName"`
	SKUAvailable bool   `json:"skuAvailable"`
	Reason       string `json:"reason,omitempty"`
	Message      string `json:"message,omitempty"`
}

func checkSKU(c *call) error {
	if err := c.checkCall(actCheckSKU); err != nil {
		return err
	}
	loc, err := resources.NormalizeLocation(c.param("loc"))
	if err != nil {
		return err
	}
	var body struct {
		SKUs []string `json:"skus"`
		Kind string   `json:"kind"`
		Type string   `json:"type"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := checkType(body.Type); err != nil {
		return err
	}
	if len(body.SKUs) == 0 || len(body.SKUs) > 100 {
		return gatehouse.BadRequestf(gatehouse.CodeBadRequest, "Give 1 to 100 SKU names in skus.").WithTarget("skus")
	}
	known := slices.ContainsFunc(accounts.Kinds, func(k string) bool { return strings.EqualFold(k, body.Kind) })
	out := list[skuAvailabilityJSON]{Value: []skuAvailabilityJSON{}}
	for _, s := range body.SKUs {
		v := skuAvailabilityJSON{Kind: body.Kind, Type: accounts.Type, SKUName: s}
		_, ok := accounts.LookupSKU(body.Kind, s)
		switch {
		case !known:
			v.Reason, v.Message = "InvalidApiSetId", "The account type '"+clip(body.Kind)+"' is either invalid or unavailable in given region. Supported kinds: "+strings.Join(accounts.Kinds, ", ")+"."
		case !ok:
			v.Reason, v.Message = "SkuNotAvailable", "The SKU '"+clip(s)+"' is not available for kind '"+body.Kind+"': use "+
				orList(accounts.SKUNames(body.Kind))+"."
		case !resources.KnownLocation(loc):
			v.Reason, v.Message = "SkuNotAvailable", "The SKU '"+clip(s)+"' is not available in location '"+clip(c.param("loc"))+
				"': accounts may be in "+strings.Join(resources.LocationNames(), ", ")+"."
		default:
			v.SKUAvailable = true
		}
		out.Value = append(out.Value, v)
	}
	return c.reply(http.StatusOK, out)
}
