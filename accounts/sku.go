package accounts

import (
	"strings"
)

// kindSKUs are the pricing tiers each kind offers, as Azure's SKU list
// (Microsoft.CognitiveServices/skus) names them: Language (TextAnalytics)
// has a free tier, the S tier of today and the S0–S4 of its older price
// list; Azure OpenAI, the AI Services and the multi-service account have
// S0 only. Gatehouse charges nothing and enforces no tier; it keeps the
// name, and refuses one the kind does not have, as Azure does. The first
// standard tier of each kind is S0, so S0 fits every kind.
var kindSKUs = map[string][]SKU{
	"AIServices":        {{Name: "S0", Tier: "Standard"}},
	"CognitiveServices": {{Name: "S0", Tier: "Standard"}},
	"OpenAI":            {{Name: "S0", Tier: "Standard"}},
	"TextAnalytics": {{Name: "F0", Tier: "Free"}, {Name: "S", Tier: "Standard"}, {Name: "S0", Tier: "Standard"},
		{Name: "S1", Tier: "Standard"}, {Name: "S2", Tier: "Standard"}, {Name: "S3", Tier: "Standard"}, {Name: "S4", Tier: "Standard"}},
}

// SKUs returns the SKUs accounts of kind (any case) may have, with their
// tiers, in the order Azure lists them; none for a kind Gatehouse does not
// serve. The caller may keep the slice.
func SKUs(kind string) []SKU {
	for k, skus := range kindSKUs {
		if strings.EqualFold(k, kind) {
			return append([]SKU(nil), skus...)
		}
	}
	return nil
}

// LookupSKU returns kind's SKU called name, both in any case, with its
// canonical name and tier.
func LookupSKU(kind, name string) (SKU, bool) {
	for _, s := range SKUs(kind) {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return SKU{}, false
}

// SKUNames returns the names of kind's SKUs.
func SKUNames(kind string) []string {
	skus := SKUs(kind)
	out := make([]string, len(skus))
	for i, s := range skus {
		out[i] = s.Name
	}
	return out
}

// resolveSKU returns s with its name in canonical form, or Azure's 400
// InvalidSkuId when kind (canonical) has no SKU of that name. A nil s
// (no sku given) is refused the same way: Sku.name is "required for
// account creation" (Microsoft.CognitiveServices 2017-04-18
// CognitiveServicesAccountCreateParameters). A tier, when given, is
// replaced by the SKU's own (Azure derives it from the name).
func resolveSKU(kind string, s *SKU) (*SKU, error) {
	name := ""
	if s != nil {
		name = s.Name
	}
	want, ok := LookupSKU(kind, name)
	if s == nil {
		return nil, badRequest("InvalidSkuId", "sku.name", "A new account needs a SKU: %s accounts have the SKUs %s.",
			kind, strings.Join(SKUNames(kind), ", "))
	}
	if !ok {
		// Azure's message ("The SKU name 'N0' in account type 'Face' is
		// invalid."), then the choices.
		return nil, badRequest("InvalidSkuId", "sku.name", "The SKU name '%s' in account type '%s' is invalid. %s accounts have the SKUs %s.",
			clip(name), kind, kind, strings.Join(SKUNames(kind), ", "))
	}
	out := &SKU{Name: want.Name}
	if s.Tier != "" {
		out.Tier = want.Tier
	}
	return out, nil
}
