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
	used, err := d.capacityByLocation(ctx, subscription, func(loc string) bool { return loc == location }, except)
	if err != nil {
		return nil, err
	}
	return used[location], nil
}

// capacityByLocation is usedCapacity for every location keep accepts, by
// location.
func (d *Deployments) capacityByLocation(ctx context.Context, subscription string, keep func(loc string) bool, except string) (map[string]map[quotaKey]int, error) {
	accts, err := d.accounts.Collect(ctx, storage.ListOptions{Prefix: "/subscriptions/" + strings.ToLower(subscription) + "/"})
	if err != nil {
		return nil, unavailable(err)
	}
	used := map[string]map[quotaKey]int{}
	for _, a := range accts {
		loc, err := resources.NormalizeLocation(a.Value.Location)
		if err != nil || !keep(loc) || a.Value.InternalID == "" {
			continue
		}
		deps, err := d.table.Collect(ctx, storage.ListOptions{Ref: a.Value.InternalID})
		if err != nil {
			return nil, unavailable(err)
		}
		for _, r := range deps {
			if r.Value.Catalog && r.Key != except {
				if used[loc] == nil {
					used[loc] = map[quotaKey]int{}
				}
				used[loc][keyOfQuota(r.Value.Model.Format, r.Value.Model.Name, r.Value.SKU.Name)] += r.Value.SKU.Capacity
			}
		}
	}
	return used, nil
}

// ModelCapacity is the capacity of a catalog model that a subscription
// may still deploy in one location and sku (Azure's model capacities).
type ModelCapacity struct {
	// Location is the location's ARM name; SKU the deployment sku.
	Location, SKU string
	// Format, Name and Version are the model's, in the catalog's spelling
	// (Version as asked when the model offers any version).
	Format, Name, Version string
	// Available is what is left of the quota in that location and sku,
	// bounded by what one deployment may have (MaxCapacity); a model with
	// neither a quota nor a bound shows UnlimitedQuota.
	Available int
}

// ModelCapacities lists, for every location (or only location, when it
// is not ""), the capacity of the catalog's model format/name/version
// that subscription may still deploy in each of ModelSKUs. A model the
// catalog does not offer (in that version) has none: the list is empty,
// as Azure's is for a model it does not have.
//
// Errors (*gatehouse.Error): 400 for a malformed location; 503.
func (d *Deployments) ModelCapacities(ctx context.Context, subscription, location, format, name, version string) ([]ModelCapacity, error) {
	locs := resources.LocationNames()
	if location != "" {
		loc, err := resources.NormalizeLocation(location)
		if err != nil {
			return nil, err
		}
		locs = nil
		if resources.KnownLocation(loc) {
			locs = []string{loc}
		}
	}
	out := []ModelCapacity{}
	m, v, ok := d.catalog.Load().Find(format, name, version)
	if !ok || len(locs) == 0 {
		return out, nil
	}
	used := map[string]map[quotaKey]int{}
	if m.Quota != 0 {
		var err error
		used, err = d.capacityByLocation(ctx, subscription, func(loc string) bool { return slices.Contains(locs, loc) }, "")
		if err != nil {
			return nil, err
		}
	}
	for _, loc := range locs {
		for _, sku := range ModelSKUs {
			avail := UnlimitedQuota
			if m.Quota != 0 {
				avail = max(0, m.Quota-used[loc][keyOfQuota(m.Format, m.Name, sku)])
			}
			if m.MaxCapacity != 0 {
				avail = min(avail, m.MaxCapacity)
			}
			out = append(out, ModelCapacity{Location: loc, SKU: sku, Format: m.Format, Name: m.Name, Version: v, Available: avail})
		}
	}
	return out, nil
}

// CapacityWorkload is one kind of request a deployment is to serve, as
// Azure's capacity calculator takes it: how many a minute, and the
// average prompt and generated tokens of each.
type CapacityWorkload struct {
	RequestsPerMinute, PromptTokens, GeneratedTokens int64
}

// CapacityEstimate is the capacity a deployment of a catalog model needs
// for a set of workloads: Value units cover the workloads' tokens and
// requests a minute (gatehouse.CapacityTokensPerMinute and
// CapacityRequestsPerMinute a unit), Deployable is the capacity to create
// the deployment with (at least 1).
type CapacityEstimate struct {
	Format, Name, Version, SKU string
	Value, Deployable          int
}

// Bounds of a capacity estimate's input: enough for any real workload,
// small enough that the sums cannot overflow.
const (
	maxCapacityWorkloads = 100
	maxWorkloadFigure    = 1 << 30
)

// EstimateCapacity works out the capacity a deployment of the catalog's
// model format/name/version in sku needs for workloads, by the units the
// gateway enforces (Azure's calculator sizes provisioned deployments in
// its own way; Gatehouse's catalog offers Standard and GlobalStandard).
//
// Errors (*gatehouse.Error): 400 DeploymentModelNotSupported (not in the
// catalog), InvalidResourceProperties (a sku the model is not offered
// in), InvalidRequestContent (no workloads, too many, or a figure that is
// negative or too large).
func (d *Deployments) EstimateCapacity(format, name, version, sku string, workloads []CapacityWorkload) (*CapacityEstimate, error) {
	cat := d.catalog.Load()
	if cat.Len() == 0 {
		return nil, badRequest("DeploymentModelNotSupported", "model", "This server offers no model catalog (serve --models).")
	}
	m, v, ok := cat.Find(format, name, version)
	if !ok {
		return nil, badRequest("DeploymentModelNotSupported", "model",
			"The model 'Format: %s, Name: %s, Version: %s' is not offered by this server. Offered: %s.",
			clip(format), clip(name), clip(version), cat.describe())
	}
	s := DeploymentSKU{Name: sku}
	if err := checkModelSKU(&s, m, v); err != nil {
		return nil, err
	}
	if len(workloads) == 0 || len(workloads) > maxCapacityWorkloads {
		return nil, badRequest("InvalidRequestContent", "workloads", "workloads must list 1 to %d workloads.", maxCapacityWorkloads)
	}
	var tokens, requests int64
	for _, w := range workloads {
		for _, f := range []int64{w.RequestsPerMinute, w.PromptTokens, w.GeneratedTokens} {
			if f < 0 || f > maxWorkloadFigure {
				return nil, badRequest("InvalidRequestContent", "workloads",
					"A workload's requestPerMinute, avgPromptTokens and avgGeneratedTokens must be from 0 to %d.", maxWorkloadFigure)
			}
		}
		requests += w.RequestsPerMinute
		tokens += w.RequestsPerMinute * (w.PromptTokens + w.GeneratedTokens)
	}
	units := max(ceilDiv(tokens, gatehouse.CapacityTokensPerMinute), ceilDiv(requests, gatehouse.CapacityRequestsPerMinute))
	value := int(min(units, UnlimitedQuota))
	return &CapacityEstimate{Format: m.Format, Name: m.Name, Version: v, SKU: s.Name, Value: value, Deployable: max(1, value)}, nil
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

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
	if sku.Capacity == 0 {
		sku.Capacity = max(r.Value.SKU.Capacity, 1) // as PatchDeployment keeps it
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
