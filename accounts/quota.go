package accounts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

// Model quotas, as Azure OpenAI's regional quota: a subscription may
// deploy, in one location, at most the catalog model's Quota of capacity
// in each deployment sku — the sum of the sku capacities of its
// deployments of the model, in every account of the subscription in that
// location. Soft-deleted accounts' deployments count until the account is
// purged, as on Azure (where "purge the deleted account" is the usual
// answer to an exhausted quota). Only deployments of catalog models count:
// a deployment with an upstream of its own uses the operator's nothing.
//
// The quota is named as Azure names it — "OpenAI.Standard.gpt-4o",
// localized "Tokens Per Minute (thousands) - gpt-4o" — in the location's
// usage list (GET …/locations/{loc}/usages; az cognitiveservices usage
// list) and in the model lists' skus[].usageName. A deployment that would
// take a quota past its limit is refused with Azure's 400
// InsufficientQuota; lowering a capacity is always allowed. A model
// without a Quota has none: its usage shows UnlimitedQuota as the limit.
//
// The check and the write are serialized on a node; two nodes creating
// deployments at the same moment may together pass the limit by what
// they create (as the gateway's rate limits, quotas are per node where
// they cannot be exact cheaply).

// UnlimitedQuota is the limit a usage shows for a model without a quota
// (Azure's own figure for a limit that is not one).
const UnlimitedQuota = math.MaxInt32

// QuotaUsage is one quota of a location's usage list.
type QuotaUsage struct {
	// Name is the quota's name ("OpenAI.Standard.gpt-4o"); LocalizedName
	// its display name ("Tokens Per Minute (thousands) - gpt-4o").
	Name, LocalizedName string
	// Model and SKU are the catalog model's name and the deployment sku
	// the quota is of.
	Model, SKU string
	// Current is the capacity deployed; Limit the quota.
	Current, Limit int
}

// QuotaName is the name of the quota of model (format/name) in sku.
func QuotaName(format, sku, model string) string { return format + "." + sku + "." + model }

// quotaDisplayName is Azure's display name of the quota of model in sku:
// Standard's carries the model's name alone, the others add the sku.
func quotaDisplayName(sku, model string) string {
	if sku == "Standard" {
		return "Tokens Per Minute (thousands) - " + model
	}
	return "Tokens Per Minute (thousands) - " + model + " - " + sku
}

// quotaKey identifies a quota: format, model name (lower case) and sku.
type quotaKey struct{ format, model, sku string }

func keyOfQuota(format, model, sku string) quotaKey {
	return quotaKey{strings.ToLower(format), strings.ToLower(model), strings.ToLower(sku)}
}

// QuotaUsages lists the quotas of the catalog's models in location for
// subscription: one per model and sku a catalog deployment may have
// (ModelSKUs), in catalog order, with the capacity deployed.
//
// Errors (*gatehouse.Error): 400 for a malformed location; 503.
func (d *Deployments) QuotaUsages(ctx context.Context, subscription, location string) ([]QuotaUsage, error) {
	loc, err := resources.NormalizeLocation(location)
	if err != nil {
		return nil, err
	}
	cat := d.catalog.Load()
	out := []QuotaUsage{}
	if cat.Len() == 0 {
		return out, nil
	}
	used, err := d.usedCapacity(ctx, subscription, loc, "")
	if err != nil {
		return nil, err
	}
	for _, m := range cat.models {
		limit := m.Quota
		if limit == 0 {
			limit = UnlimitedQuota
		}
		for _, sku := range ModelSKUs {
			out = append(out, QuotaUsage{Name: QuotaName(m.Format, sku, m.Name), LocalizedName: quotaDisplayName(sku, m.Name),
				Model: m.Name, SKU: sku, Current: used[keyOfQuota(m.Format, m.Name, sku)], Limit: limit})
		}
	}
	return out, nil
}

// usedCapacity sums the sku capacity of the catalog deployments of every
// account of subscription in location (normalized), soft-deleted ones
// included, by quota; the deployment with storage key except is left out.
func (d *Deployments) usedCapacity(ctx context.Context, subscription, location, except string) (map[quotaKey]int, error) {
	accts, err := d.accounts.Collect(ctx, storage.ListOptions{Prefix: "/subscriptions/" + strings.ToLower(subscription) + "/"})
	if err != nil {
		return nil, unavailable(err)
	}
	used := map[quotaKey]int{}
	for _, a := range accts {
		if loc, err := resources.NormalizeLocation(a.Value.Location); err != nil || loc != location || a.Value.InternalID == "" {
			continue
		}
		deps, err := d.table.Collect(ctx, storage.ListOptions{Ref: a.Value.InternalID})
		if err != nil {
			return nil, unavailable(err)
		}
		for _, r := range deps {
			if r.Value.Catalog && r.Key != except {
				used[keyOfQuota(r.Value.Model.Format, r.Value.Model.Name, r.Value.SKU.Name)] += r.Value.SKU.Capacity
			}
		}
	}
	return used, nil
}

// checkQuota refuses giving the catalog deployment key of acct (whose
// capacity in that quota is now old: 0 for a new one, or one of another
// model or sku) the model m and sku, when that takes the quota past m's
// limit. Callers hold quotaMu.
func (d *Deployments) checkQuota(ctx context.Context, acct *Account, key string, m *CatalogModel, sku DeploymentSKU, old int) error {
	if m.Quota == 0 || sku.Capacity <= old {
		return nil
	}
	rid, err := gatehouse.ParseResourceID(acct.ID)
	if err != nil {
		return fmt.Errorf("accounts: the account's id %q: %w", acct.ID, err)
	}
	loc, err := resources.NormalizeLocation(acct.Location)
	if err != nil {
		return err
	}
	used, err := d.usedCapacity(ctx, rid.Subscription, loc, key)
	if err != nil {
		return err
	}
	others := used[keyOfQuota(m.Format, m.Name, sku.Name)]
	if others+sku.Capacity <= m.Quota {
		return nil
	}
	name := quotaDisplayName(sku.Name, m.Name)
	// Azure's words (its grammar too), with the figures it gives.
	return badRequest("InsufficientQuota", "sku.capacity",
		"This operation require %d new capacity in quota %s, which is bigger than the current available capacity %d. The current quota usage is %d and the quota limit is %d for quota %s.",
		sku.Capacity-old, name, max(0, m.Quota-others-old), others+old, m.Quota, name)
}

// quotaModel returns the catalog model whose quota a catalog deployment
// of model in sku draws on, nil when it has none.
func quotaModel(cat *Catalog, model DeploymentModel, sku DeploymentSKU) *CatalogModel {
	m, _, ok := cat.Find(model.Format, model.Name, model.Version)
	if !ok || m.Quota == 0 || !slices.Contains(ModelSKUs, sku.Name) {
		return nil
	}
	return m
}

// quotaHeld is the capacity the deployment with storage key holds in the
// quota of m in sku: its capacity when it is a catalog deployment of m in
// sku, else 0 (none, or another quota's).
func (d *Deployments) quotaHeld(ctx context.Context, key string, m *CatalogModel, sku string) int {
	r, err := d.table.Get(ctx, key)
	if err != nil || !r.Value.Catalog || r.Value.SKU.Name != sku ||
		!strings.EqualFold(r.Value.Model.Format, m.Format) || !strings.EqualFold(r.Value.Model.Name, m.Name) {
		return 0
	}
	return r.Value.SKU.Capacity
}

// checkPatchQuota is checkQuota for a PATCH of the deployment key's sku
// to sku (without a name: its capacity alone). What the PATCH itself
// refuses (no such deployment, a bad sku) is left to it.
func (d *Deployments) checkPatchQuota(ctx context.Context, acct *Account, key string, sku DeploymentSKU) error {
	r, err := d.table.Get(ctx, key)
	if err != nil || !r.Value.Catalog {
		return nil
	}
	if sku.Name == "" {
		sku.Name = r.Value.SKU.Name
	}
	if checkDeploymentSKU(&sku) != nil {
		return nil
	}
	m := quotaModel(d.catalog.Load(), r.Value.Model, sku)
	if m == nil {
		return nil
	}
	old := 0
	if r.Value.SKU.Name == sku.Name {
		old = r.Value.SKU.Capacity
	}
	return d.checkQuota(ctx, acct, key, m, sku, old)
}
