package armapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/vault"
)

// Cross-type views that az 2.45 asks for besides the resource types
// themselves (found by driving az against a node, see armtest TestAzCLI):
//
//	GET {sub}/resources, {group}/resources          Microsoft.Resources generic list ($filter, $top):
//	                                                az keyvault list/show/delete without -g (azure-mgmt-keyvault's
//	                                                vaults.list() is this call, api-version 2015-11-01), az resource list
//	GET {sub}/providers/Microsoft.CognitiveServices/skus
//	                                                az cognitiveservices account list-kinds, list-skus
//	GET {sub}|{group}/providers/Microsoft.KeyVault/managedHSMs, {sub}/…/deletedManagedHSMs
//	                                                az keyvault list, list-deleted: Gatehouse has no managed HSMs, so
//	                                                these lists are empty (a 404 made list-deleted fail and, worse,
//	                                                made `az keyvault list` print [] for a subscription with vaults)
//	GET {account}/skus, /usages                     az cognitiveservices account list-skus -n/-g, list-usage;
//	                                                armcognitiveservices' ListSKUs, ListUsages: the SKUs an
//	                                                account can move to; no quota usages
//	GET {account}/commitmentPlans, {sub}|{group}/…/commitmentPlans, {sub}/…/locations/{loc}/commitmentTiers
//	                                                az cognitiveservices commitment-tier list, account
//	                                                commitment-plan list: Gatehouse bills nothing, so there
//	                                                are no commitment tiers or plans (empty, not 404)
//
// (An account's models are the model catalog's: models.go.)
var genericRoutes = []route{
	{method: "GET", pattern: sub + "/resources", family: famResources, handle: listResources},
	{method: "GET", pattern: sub + "/tagNames", family: famResources, handle: listTagNames}, // tags.go
	{method: "PUT", pattern: sub + "/tagNames/{tagName}", family: famResources, audit: true, handle: putTagName},
	{method: "DELETE", pattern: sub + "/tagNames/{tagName}", family: famResources, audit: true, handle: deleteTagName},
	{method: "PUT", pattern: sub + "/tagNames/{tagName}/tagValues/{tagValue}", family: famResources, audit: true, handle: putTagValue},
	{method: "DELETE", pattern: sub + "/tagNames/{tagName}/tagValues/{tagValue}", family: famResources, audit: true, handle: deleteTagValue},
	{method: "GET", pattern: group + "/resources", family: famResources, handle: listResources},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/skus", family: famCognitive, handle: listSKUs},
	{method: "GET", pattern: sub + "/providers/Microsoft.KeyVault/managedHSMs", family: famKeyVault, handle: listEmpty},
	{method: "GET", pattern: group + "/providers/Microsoft.KeyVault/managedHSMs", family: famKeyVault, handle: listEmpty},
	{method: "GET", pattern: sub + "/providers/Microsoft.KeyVault/deletedManagedHSMs", family: famKeyVault, handle: listEmpty},
	{method: "GET", pattern: account + "/skus", family: famCognitive, handle: listAccountSKUs},
	{method: "GET", pattern: account + "/usages", family: famCognitive, handle: listAccountEmpty},
	{method: "GET", pattern: account + "/commitmentPlans", family: famCognitive, handle: listAccountEmpty},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/locations/{loc}/commitmentTiers", family: famCognitive, handle: listLocationEmpty},
	{method: "GET", pattern: sub + "/providers/Microsoft.CognitiveServices/commitmentPlans", family: famCognitive, handle: listEmpty},
	{method: "GET", pattern: group + "/providers/Microsoft.CognitiveServices/commitmentPlans", family: famCognitive, handle: listEmpty},
}

// genericResourceJSON is ARM's GenericResourceExpanded as the list returns
// it without $expand.
type genericResourceJSON struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Kind     string            `json:"kind,omitempty"`
	SKU      *accounts.SKU     `json:"sku,omitempty"`
	Tags     map[string]string `json:"tags"`

	group string // for $filter resourceGroup eq
}

// listScope resolves the {sub} and optional {rg} of a list route.
func (c *call) listScope() (*gatehouse.ResourceID, error) {
	s, err := c.subscription()
	if err != nil {
		return nil, err
	}
	scope := &gatehouse.ResourceID{Subscription: s.ID}
	if rg := c.param("rg"); rg != "" {
		g, err := c.api.opts.Resources.Group(c.ctx(), s.ID, rg)
		if err != nil {
			return nil, err
		}
		scope = g.ID()
	}
	return scope, nil
}

// listResources lists the top-level resources in scope that the caller may
// read — AI accounts, vaults, user-assigned identities — ordered by id and
// narrowed by $filter. $top is the page size, as ARM's: a page that stops
// before the end has a nextLink whose $skiptoken is the last id it holds,
// and the SDKs' pagers follow it (without $top, one page holds them all).
func listResources(c *call) error {
	q := c.r.URL.Query()
	match, err := parseResourceFilter(q.Get("$filter"))
	if err != nil {
		return err
	}
	top := 0 // no page size: everything
	if t := q.Get("$top"); t != "" {
		if top, err = strconv.Atoi(t); err != nil || top < 1 || top > genericMaxTop {
			return gatehouse.BadRequestf("InvalidTopInQueryString",
				"The value '%s' of $top is not valid: give a number from 1 to %d.", clip(t), genericMaxTop).WithTarget("$top")
		}
	}
	var after string
	if t := q.Get("$skiptoken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || len(b) == 0 || len(b) > 2048 {
			return gatehouse.BadRequestf("InvalidSkipToken", "The $skiptoken is not valid.").WithTarget("$skiptoken")
		}
		after = strings.ToLower(string(b))
	}
	scope, err := c.listScope()
	if err != nil {
		return err
	}
	all, err := c.readableResources(scope)
	if err != nil {
		return err
	}
	out := list[genericResourceJSON]{Value: []genericResourceJSON{}}
	for _, r := range all {
		if after != "" && strings.ToLower(r.ID) <= after || !match(r) {
			continue
		}
		if top > 0 && len(out.Value) == top {
			next := url.Values{"api-version": {q.Get("api-version")}, "$top": {strconv.Itoa(top)},
				"$skiptoken": {base64.RawURLEncoding.EncodeToString([]byte(out.Value[top-1].ID))}}
			if f := q.Get("$filter"); f != "" {
				next.Set("$filter", f)
			}
			out.NextLink = "https://" + c.r.Host + c.r.URL.EscapedPath() + "?" + next.Encode()
			break
		}
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		out.Value = append(out.Value, r)
	}
	return c.reply(http.StatusOK, out)
}

// genericMaxTop is the largest page of the generic list, as ARM's.
const genericMaxTop = 1000

// readableResources are the top-level resources in scope the caller may
// read — AI accounts, vaults, user-assigned identities — ordered by id.
func (c *call) readableResources(scope *gatehouse.ResourceID) ([]genericResourceJSON, error) {
	return c.resourcesIn(scope, c.can)
}

// resourcesIn are the top-level resources in scope that keep (given the
// read action of its type and its id) keeps, ordered by id.
func (c *call) resourcesIn(scope *gatehouse.ResourceID, keep func(action string, id *gatehouse.ResourceID) bool) ([]genericResourceJSON, error) {
	var all []genericResourceJSON
	accts, err := c.api.opts.Accounts.List(c.ctx(), scope)
	if err != nil {
		return nil, err
	}
	for _, a := range accts {
		if id, ok := accounts.ParseID(a.ID); ok && keep(actAccountRead, id) {
			all = append(all, genericResourceJSON{ID: id.String(), Name: a.Name, Type: accounts.Type, Location: a.Location,
				Kind: a.Kind, SKU: &accounts.SKU{Name: a.SKU.Name, Tier: a.SKU.Tier}, Tags: a.Tags, group: a.ResourceGroup})
		}
	}
	if c.api.opts.Vaults != nil {
		vaults, err := c.api.opts.Vaults.ListVaults(c.ctx(), scope)
		if err != nil {
			return nil, err
		}
		for _, v := range vaults {
			if keep(actVaultRead, v.Scope()) {
				all = append(all, genericResourceJSON{ID: v.ID, Name: v.Name, Type: vault.Type, Location: v.Location,
					Tags: v.Tags, group: v.ResourceGroup})
			}
		}
	}
	if c.api.opts.Identities != nil {
		ids, err := c.api.opts.Identities.ListIdentities(c.ctx(), scope.String())
		if err != nil {
			return nil, err
		}
		for _, mi := range ids {
			id, err := gatehouse.ParseResourceID(mi.ResourceID)
			if err != nil || !isUserAssigned(mi.ResourceID) || !keep(actIdentityRead, id) {
				continue
			}
			all = append(all, genericResourceJSON{ID: id.String(), Name: id.Name(), Type: identityType, Location: mi.Location,
				Tags: mi.Tags, group: id.ResourceGroup})
		}
	}
	slices.SortFunc(all, func(a, b genericResourceJSON) int {
		return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID))
	})
	return all, nil
}

// maxFilterClauses bounds the $filter a list accepts.
const maxFilterClauses = 8

// resourceFields are the fields the generic resource list filters on.
var resourceFields = []string{"resourceType", "name", "resourceGroup", "location", "tagName", "tagValue"}

// parseResourceFilter is the generic list's $filter.
func parseResourceFilter(f string) (func(genericResourceJSON) bool, error) {
	match, err := parseFilter(f, resourceFields)
	if err != nil {
		return nil, err
	}
	return func(r genericResourceJSON) bool {
		return match(filterable{typ: r.Type, name: r.Name, group: r.group, location: r.Location, tags: r.Tags})
	}, nil
}

// filterable is what a $filter clause looks at.
type filterable struct {
	typ, name, group, location string
	tags                       map[string]string
}

// parseFilter understands the OData subset az and the SDKs send to ARM's
// lists: clauses "field eq 'value'" joined by "and", with the fields the
// list takes (of resourceType, name, resourceGroup, location, tagName and
// tagValue; values compared case-insensitively, as ARM does, a tag's
// value exactly; a doubled quote escapes one). Anything else is 400
// InvalidFilterInQueryString, never silently ignored: a script that
// deletes what a filtered list returns must not get everything.
func parseFilter(f string, fields []string) (func(filterable) bool, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return func(filterable) bool { return true }, nil
	}
	bad := func() (func(filterable) bool, error) {
		return nil, gatehouse.BadRequestf("InvalidFilterInQueryString",
			"The $filter '%s' is not supported: use clauses field eq 'value' joined by 'and', with field %s.", clip(f), orList(fields))
	}
	type clause struct{ field, value string }
	var clauses []clause
	rest := f
	for {
		field, after, ok := strings.Cut(strings.TrimSpace(rest), " ")
		if !ok {
			return bad()
		}
		after = strings.TrimSpace(after)
		op, after, ok := strings.Cut(after, " ")
		if !ok || !strings.EqualFold(op, "eq") {
			return bad()
		}
		after = strings.TrimSpace(after)
		if !strings.HasPrefix(after, "'") {
			return bad()
		}
		var value strings.Builder
		i := 1
		for ; i < len(after); i++ {
			if after[i] == '\'' {
				if i+1 < len(after) && after[i+1] == '\'' {
					value.WriteByte('\'')
					i++
					continue
				}
				break
			}
			value.WriteByte(after[i])
		}
		if i >= len(after) {
			return bad() // unterminated string
		}
		if !slices.ContainsFunc(fields, func(name string) bool { return strings.EqualFold(name, field) }) {
			return bad()
		}
		clauses = append(clauses, clause{strings.ToLower(field), value.String()})
		if len(clauses) > maxFilterClauses {
			return bad()
		}
		rest = strings.TrimSpace(after[i+1:])
		if rest == "" {
			break
		}
		conj, next, ok := strings.Cut(rest, " ")
		if !ok || !strings.EqualFold(conj, "and") {
			return bad()
		}
		rest = next
	}
	return func(r filterable) bool {
		tagName := ""
		for _, c := range clauses {
			switch c.field {
			case "resourcetype":
				if !strings.EqualFold(r.typ, c.value) {
					return false
				}
			case "name":
				if !strings.EqualFold(r.name, c.value) {
					return false
				}
			case "resourcegroup":
				if !strings.EqualFold(r.group, c.value) {
					return false
				}
			case "location":
				if !strings.EqualFold(r.location, c.value) {
					return false
				}
			case "tagname":
				tagName = c.value
				if _, ok := tagFold(r.tags, c.value); !ok {
					return false
				}
			case "tagvalue":
				if v, ok := tagFold(r.tags, tagName); tagName == "" || !ok || v != c.value {
					return false
				}
			}
		}
		return true
	}, nil
}

// orList is "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// tagFold looks a tag up by name, case-insensitively (ARM tag names are).
func tagFold(tags map[string]string, name string) (string, bool) {
	for k, v := range tags {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// resourceSKUJSON is a Microsoft.CognitiveServices ResourceSku.
type resourceSKUJSON struct {
	ResourceType string   `json:"resourceType"`
	Name         string   `json:"name"`
	Tier         string   `json:"tier"`
	Kind         string   `json:"kind"`
	Locations    []string `json:"locations"`
	Restrictions []any    `json:"restrictions"`
}

// listSKUs answers the SKU list: every SKU of every kind Gatehouse serves
// (accounts.SKUs), each in every location an account may be created in
// (resources.Locations), spelled in capitals as ARM spells them here.
func listSKUs(c *call) error {
	if _, err := c.listScope(); err != nil {
		return err
	}
	locs := resources.LocationNames()
	for i, l := range locs {
		locs[i] = strings.ToUpper(l)
	}
	out := list[resourceSKUJSON]{Value: []resourceSKUJSON{}}
	for _, kind := range accounts.Kinds {
		for _, s := range accounts.SKUs(kind) {
			out.Value = append(out.Value, resourceSKUJSON{ResourceType: "accounts", Name: s.Name, Tier: s.Tier, Kind: kind,
				Locations: locs, Restrictions: []any{}})
		}
	}
	return c.reply(http.StatusOK, out)
}

// listEmpty answers the lists of what Gatehouse never has: managed HSMs.
func listEmpty(c *call) error {
	if _, err := c.listScope(); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}

// accountSKUJSON is ARM's AccountSku.
type accountSKUJSON struct {
	ResourceType string       `json:"resourceType"`
	SKU          accounts.SKU `json:"sku"`
}

// listAccountSKUs answers the SKUs an existing account can change to: its
// kind's.
func listAccountSKUs(c *call) error {
	a, err := c.readAccount()
	if err != nil {
		return err
	}
	out := list[accountSKUJSON]{Value: []accountSKUJSON{}}
	for _, s := range accounts.SKUs(a.Kind) {
		out.Value = append(out.Value, accountSKUJSON{ResourceType: "Microsoft.CognitiveServices/accounts", SKU: s})
	}
	return c.reply(http.StatusOK, out)
}

// listLocationEmpty answers a list at a valid location: empty.
func listLocationEmpty(c *call) error {
	if _, err := c.subscription(); err != nil {
		return err
	}
	if _, err := resources.NormalizeLocation(c.param("loc")); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}

// listAccountEmpty answers an existing account's usages and commitment
// plans: none.
func listAccountEmpty(c *call) error {
	if _, err := c.readAccount(); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}
