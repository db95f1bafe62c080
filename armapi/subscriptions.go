package armapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
)

// Actions of Microsoft.Resources.
const (
	actSubscriptionRead = "Microsoft.Resources/subscriptions/read"
	actGroupRead        = "Microsoft.Resources/subscriptions/resourceGroups/read"
	actGroupWrite       = "Microsoft.Resources/subscriptions/resourceGroups/write"
	actGroupDelete      = "Microsoft.Resources/subscriptions/resourceGroups/delete"
)

type subscriptionJSON struct {
	ID                   string         `json:"id"`
	AuthorizationSource  string         `json:"authorizationSource"`
	ManagedByTenants     []any          `json:"managedByTenants"`
	SubscriptionID       string         `json:"subscriptionId"`
	TenantID             string         `json:"tenantId"`
	DisplayName          string         `json:"displayName"`
	State                string         `json:"state"`
	SubscriptionPolicies map[string]any `json:"subscriptionPolicies"`
}

func subscriptionView(s *resources.Subscription) subscriptionJSON {
	return subscriptionJSON{
		ID: "/subscriptions/" + s.ID, AuthorizationSource: "RoleBased", ManagedByTenants: []any{},
		SubscriptionID: s.ID, TenantID: s.TenantID, DisplayName: s.DisplayName, State: s.State,
		SubscriptionPolicies: map[string]any{"locationPlacementId": "Public_2014-09-01",
			"quotaId": "Internal_2014-09-01", "spendingLimit": "Off"},
	}
}

// visible reports whether the caller holds any role at, above or beneath
// the subscription: ARM lists a subscription to everyone who does.
func (c *call) visible(s *resources.Subscription) bool {
	return c.principal.ObjectID != "" &&
		c.api.opts.Authz.HasAssignmentWithin(c.principal.ObjectID, &gatehouse.ResourceID{Subscription: s.ID})
}

// GET /subscriptions (az login calls it with api-version 2019-11-01).
func listSubscriptions(c *call) error {
	subs, err := c.api.opts.Resources.Subscriptions(c.ctx())
	if err != nil {
		return err
	}
	out := struct {
		Value []subscriptionJSON `json:"value"`
		Count map[string]any     `json:"count"`
	}{Value: []subscriptionJSON{}}
	for _, s := range subs {
		if t := c.principal.TenantID; t != "" && !strings.EqualFold(t, s.TenantID) {
			continue
		}
		if c.visible(s) {
			out.Value = append(out.Value, subscriptionView(s))
		}
	}
	out.Count = map[string]any{"type": "Total", "value": len(out.Value)}
	return c.reply(http.StatusOK, out)
}

func getSubscription(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if !c.visible(s) {
		return errAuthorizationFailed(c.principal, actSubscriptionRead, &gatehouse.ResourceID{Subscription: s.ID})
	}
	return c.reply(http.StatusOK, subscriptionView(s))
}

// GET /tenants.
func listTenants(c *call) error {
	type tenantJSON struct {
		ID             string   `json:"id"`
		TenantID       string   `json:"tenantId"`
		TenantCategory string   `json:"tenantCategory"`
		CountryCode    string   `json:"countryCode"`
		DisplayName    string   `json:"displayName"`
		Domains        []string `json:"domains"`
		DefaultDomain  string   `json:"defaultDomain"`
		TenantType     string   `json:"tenantType"`
	}
	out := list[tenantJSON]{Value: []tenantJSON{}}
	for _, t := range c.api.opts.Tenants() {
		if p := c.principal.TenantID; p != "" && !strings.EqualFold(p, t.ID) {
			continue
		}
		out.Value = append(out.Value, tenantJSON{ID: "/tenants/" + t.ID, TenantID: t.ID, TenantCategory: "Home",
			CountryCode: "US", DisplayName: t.DisplayName, Domains: []string{t.Domain}, DefaultDomain: t.Domain, TenantType: "AAD"})
	}
	return c.reply(http.StatusOK, out)
}

// providerTypes are the resource types Gatehouse serves per provider
// namespace (lower-case), with the family whose api-versions they take.
// Generic clients read them: az resource show|tag|delete --ids picks the
// newest stable api-version of the resource's type from here.
var providerTypes = map[string][]struct {
	name string
	fam  family
}{
	"microsoft.cognitiveservices": {{"accounts", famCognitive}, {"accounts/deployments", famCognitive},
		{"deletedAccounts", famCognitive}, {"locations", famCognitive}, {"locations/models", famCognitive},
		{"locations/resourceGroups/deletedAccounts", famCognitive}, {"checkDomainAvailability", famCognitive},
		{"locations/checkSkuAvailability", famCognitive}, {"skus", famCognitive}},
	"microsoft.keyvault": {{"vaults", famKeyVault}, {"deletedVaults", famKeyVault}, {"locations", famKeyVault},
		{"locations/deletedVaults", famKeyVault}},
	"microsoft.managedidentity": {{"userAssignedIdentities", famMSI}},
	"microsoft.authorization": {{"roleAssignments", famAuthorization}, {"roleDefinitions", famAuthorization}, {"elevateAccess", famElevate},
		{"locks", famLocks}, {"policyAssignments", famPolicy}, {"policyDefinitions", famPolicy}, {"policySetDefinitions", famPolicy}},
	"microsoft.resources": {{"resourceGroups", famResources}, {"subscriptions", famResources}, {"resources", famResources}},
	"microsoft.insights": {{"eventtypes", famInsights}, {"metrics", famMetrics}, {"metricDefinitions", famMetrics},
		{"diagnosticSettings", famDiagnostics}},
	"microsoft.features": {{"features", famFeatures}, {"subscriptionFeatureRegistrations", famFeatures}},
}

type resourceTypeJSON struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
	APIVersions  []string `json:"apiVersions"`
}

// providerJSON answers resource-provider queries as registered, so a
// client's auto-registration (azure-wire.md §5.1) finds nothing to do,
// with the resource types served and their api-versions, newest first
// (as ARM lists them). ns is one of providerNamespaces.
func providerJSON(subID, ns string) map[string]any {
	types := []resourceTypeJSON{}
	for _, t := range providerTypes[strings.ToLower(ns)] {
		versions := slices.Clone(apiVersions[t.fam])
		slices.Reverse(versions)
		types = append(types, resourceTypeJSON{ResourceType: t.name, Locations: []string{}, APIVersions: versions})
	}
	return map[string]any{
		"id":                 "/subscriptions/" + subID + "/providers/" + ns,
		"namespace":          ns,
		"registrationState":  "Registered",
		"registrationPolicy": "RegistrationRequired",
		"resourceTypes":      types,
	}
}

// GET /subscriptions/{sub}/locations (az account list-locations,
// armsubscriptions' ListLocations): the locations resource groups and
// accounts may be created in (resources.Locations) — the same list a
// create with another location is refused with.
func listLocations(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if !c.visible(s) {
		return errAuthorizationFailed(c.principal, actSubscriptionRead, &gatehouse.ResourceID{Subscription: s.ID})
	}
	type locationJSON struct {
		ID                  string            `json:"id"`
		Name                string            `json:"name"`
		DisplayName         string            `json:"displayName"`
		RegionalDisplayName string            `json:"regionalDisplayName"`
		Type                string            `json:"type"`
		Metadata            map[string]string `json:"metadata"`
	}
	out := list[locationJSON]{Value: []locationJSON{}}
	for _, l := range resources.Locations() {
		out.Value = append(out.Value, locationJSON{ID: "/subscriptions/" + s.ID + "/locations/" + l.Name, Name: l.Name,
			DisplayName: l.DisplayName, RegionalDisplayName: "(" + l.Geography + ") " + l.DisplayName, Type: "Region",
			Metadata: map[string]string{"regionType": "Logical", "regionCategory": "Other", "geographyGroup": l.Geography}})
	}
	return c.reply(http.StatusOK, out)
}

// providerNamespaces are the namespaces Gatehouse serves, as ARM spells them.
var providerNamespaces = []string{"Microsoft.Authorization", "Microsoft.CognitiveServices", "Microsoft.Features",
	"Microsoft.Insights", "Microsoft.KeyVault", "Microsoft.ManagedIdentity", "Microsoft.Resources"}

// GET /subscriptions/{sub}/providers (az provider list, armresources'
// ProvidersClient.NewListPager, Terraform's start-up registration check):
// the namespaces served, each registered.
func listProviders(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if !c.visible(s) {
		return errAuthorizationFailed(c.principal, actSubscriptionRead, &gatehouse.ResourceID{Subscription: s.ID})
	}
	out := list[map[string]any]{Value: []map[string]any{}}
	for _, ns := range providerNamespaces {
		out.Value = append(out.Value, providerJSON(s.ID, ns))
	}
	return c.reply(http.StatusOK, out)
}

// providerNamespace returns the path's {ns} as ARM spells it, or ARM's 404
// for a namespace no provider has (here: one Gatehouse does not serve).
func (c *call) providerNamespace() (string, error) {
	ns := c.param("ns")
	for _, n := range providerNamespaces {
		if strings.EqualFold(n, ns) {
			return n, nil
		}
	}
	return "", gatehouse.NotFoundf("InvalidResourceNamespace", "The resource namespace '%s' is invalid.", clip(ns))
}

func getProvider(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if !c.visible(s) {
		return errAuthorizationFailed(c.principal, actSubscriptionRead, &gatehouse.ResourceID{Subscription: s.ID})
	}
	ns, err := c.providerNamespace()
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, providerJSON(s.ID, ns))
}

// POST …/providers/{ns}/register: every namespace served is registered
// already, so this answers as a GET does, to whoever may register it.
func registerProvider(c *call) error {
	sub, ns, err := c.providerAction("register")
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, providerJSON(sub, ns))
}

// POST …/providers/{ns}/unregister (az provider unregister): Gatehouse
// serves its namespaces to every subscription and cannot take one away,
// so this is refused, with that reason, to whoever may unregister it.
func unregisterProvider(c *call) error {
	_, ns, err := c.providerAction("unregister")
	if err != nil {
		return err
	}
	return gatehouse.BadRequestf("ProviderUnregistrationNotSupported",
		"Gatehouse serves the resource provider '%s' to every subscription; it cannot be unregistered.", ns)
}

// providerAction is the prologue of a provider's register or unregister:
// the subscription, the namespace, and the caller's right to {ns}/{verb}/action
// on the subscription.
func (c *call) providerAction(verb string) (sub, ns string, err error) {
	s, err := c.subscription()
	if err != nil {
		return "", "", err
	}
	if ns, err = c.providerNamespace(); err != nil {
		return "", "", err
	}
	if err := c.authorize(ns+"/"+verb+"/action", &gatehouse.ResourceID{Subscription: s.ID}); err != nil {
		return "", "", err
	}
	return s.ID, ns, nil
}

type groupJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties map[string]string `json:"properties"`
}

func groupView(g *resources.Group) groupJSON {
	tags := g.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return groupJSON{ID: g.ID().String(), Name: g.Name, Type: "Microsoft.Resources/resourceGroups",
		Location: g.Location, Tags: tags, Properties: map[string]string{"provisioningState": "Succeeded"}}
}

// groupFields are the fields the group list filters on (az group list
// --tag sends tagName and tagValue).
var groupFields = []string{"name", "location", "tagName", "tagValue"}

func listGroups(c *call) error {
	match, err := parseFilter(c.r.URL.Query().Get("$filter"), groupFields)
	if err != nil {
		return err
	}
	s, err := c.subscription()
	if err != nil {
		return err
	}
	groups, err := c.api.opts.Resources.Groups(c.ctx(), s.ID)
	if err != nil {
		return err
	}
	out := list[groupJSON]{Value: []groupJSON{}}
	for _, g := range groups {
		if match(filterable{name: g.Name, location: g.Location, tags: g.Tags}) && c.can(actGroupRead, g.ID()) {
			out.Value = append(out.Value, groupView(g))
		}
	}
	return c.reply(http.StatusOK, out)
}

func (c *call) groupID() *gatehouse.ResourceID {
	return &gatehouse.ResourceID{Subscription: strings.ToLower(c.param("sub")), ResourceGroup: c.param("rg")}
}

func getGroup(c *call) error {
	if _, err := c.subscription(); err != nil {
		return err
	}
	if !c.can(actGroupRead, c.groupID()) {
		return errAuthorizationFailed(c.principal, actGroupRead, c.groupID())
	}
	g, err := c.group()
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, groupView(g))
}

// HEAD …/resourceGroups/{rg}: 204 when it exists, 404 when not.
func headGroup(c *call) error {
	if _, err := c.subscription(); err != nil {
		return err
	}
	if !c.can(actGroupRead, c.groupID()) {
		return errAuthorizationFailed(c.principal, actGroupRead, c.groupID())
	}
	if _, err := c.group(); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

type groupBody struct {
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

func putGroup(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if err := c.authorize(actGroupWrite, c.groupID()); err != nil {
		return err
	}
	var body groupBody
	if err := c.decode(&body); err != nil {
		return err
	}
	g, created, err := c.api.opts.Resources.PutGroup(c.ctx(), s.ID, c.param("rg"), resources.GroupSpec{Location: body.Location, Tags: body.Tags}, c.principal.ObjectID)
	if err != nil {
		return err
	}
	c.detail("location", g.Location)
	return c.put(created, groupView(g))
}

func patchGroup(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	if err := c.authorize(actGroupWrite, c.groupID()); err != nil {
		return err
	}
	var body groupBody
	if err := c.decode(&body); err != nil {
		return err
	}
	g, err := c.api.opts.Resources.PatchGroup(c.ctx(), s.ID, c.param("rg"), body.Tags, c.principal.ObjectID)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, groupView(g))
}

// DELETE …/resourceGroups/{rg} deletes what the group contains (accounts,
// identities, role assignments), then the group, and completes
// synchronously (200; ARM would answer 202 and poll).
func deleteGroup(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	gid := c.groupID()
	if err := c.authorize(actGroupDelete, gid); err != nil {
		return err
	}
	g, err := c.api.opts.Resources.Group(c.ctx(), s.ID, c.param("rg"))
	if err != nil {
		return err
	}
	gid = g.ID()
	// Children first: a crash part-way leaves a group with fewer
	// resources, never resources without a group.
	if _, err := c.api.opts.Accounts.DeleteWithin(c.ctx(), gid); err != nil {
		return err
	}
	if vs := c.api.opts.Vaults; vs != nil {
		if _, err := vs.DeleteVaultsWithin(c.ctx(), gid); err != nil {
			return err
		}
	}
	if ids := c.api.opts.Identities; ids != nil {
		list, err := ids.ListIdentities(c.ctx(), gid.String())
		if err != nil {
			return err
		}
		for _, mi := range list {
			if isUserAssigned(mi.ResourceID) {
				if _, err := ids.DeleteIdentity(c.ctx(), mi.ResourceID); err != nil {
					return err
				}
			}
		}
	}
	if _, err := c.api.opts.Authz.DeleteAssignmentsWithin(c.ctx(), gid); err != nil {
		return err
	}
	if _, err := c.api.opts.Resources.DeleteGroup(c.ctx(), s.ID, g.Name); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}
