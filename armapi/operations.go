package armapi

import (
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/gatehouse/gatehouse"
)

// The operations catalog: every action Gatehouse checks, by resource
// provider — what a custom role's actions and dataActions may name, and
// what a role's wildcards cover here.
//
//	GET /providers/Microsoft.Authorization/providerOperations[/{ns}]   az provider operation list|show,
//	                                                                   armauthorization's ProviderOperationsMetadataClient
//	GET /providers/{ns}/operations                                     each provider's Operations_List
//	                                                                   (armcognitiveservices', armkeyvault's, armmsi's
//	                                                                   OperationsClient)
//
// The management actions are this package's (managementActions, which a
// test holds equal to the act* constants); the data actions come from the
// data planes (Options.DataActions). Names are Azure's; the display texts
// are made from them. Any signed-in caller may read the catalog, as on
// Azure.

// managementActions are the actions the management API checks.
var managementActions = []string{
	actSubscriptionRead, actGroupRead, actGroupWrite, actGroupDelete,
	actTagsRead, actTagsWrite, actTagsDelete,
	actTagNamesRead, actTagNamesWrite, actTagNamesDelete, actTagNameValuesWrite, actTagNameValuesDelete,
	actAccountRead, actAccountWrite, actAccountDelete, actListKeys, actRegenerateKey, actListKeyUsage,
	actDeploymentRead, actDeploymentWrite, actDeploymentDelete,
	actCheckDomain, actCheckSKU, actLocationModelsRead, actLocationUsagesRead, actModelCapacitiesRead, actLocationModelCapacitiesRead, actCalculateModelCapacity,
	actDeletedAccountRead, actDeletedAccountDelete,
	actVaultRead, actVaultWrite, actVaultDelete, actDeletedVaultRead, actDeletedVaultPurge, actVaultNameCheck,
	actVaultSecretRead, actVaultAccessPolicyWrite,
	actIdentityRead, actIdentityWrite, actIdentityDelete, actIdentityAssign, actIdentityListResources, actSystemIdentityRead,
	actFederatedRead, actFederatedWrite, actFederatedDelete,
	actAssignmentRead, actAssignmentWrite, actAssignmentDelete, actRoleWrite, actRoleDelete,
	actLockRead, actLockWrite, actLockDelete, actElevateAccess, actPolicyRead, actDenyAssignmentRead, actClassicAdminsRead,
	ActionAuditLogRead, ActionAuditLogVerify,
	actActivityRead, actMetricsRead, actMetricDefinitionsRead, actDiagnosticSettingsRead,
	actFeaturesRead,
}

// catalogProviders are the namespaces the catalog has, with their display
// names and the api-versions of their Operations_List.
var catalogProviders = []struct {
	ns, display string
	fam         family
}{
	{"Microsoft.Authorization", "Microsoft Authorization", famAuthorization},
	{"Microsoft.CognitiveServices", "Microsoft Cognitive Services", famCognitive},
	{"Microsoft.Features", "Microsoft Features", famFeatures},
	{"Microsoft.Insights", "Microsoft Insights", famInsights},
	{"Microsoft.KeyVault", "Microsoft Key Vault", famKeyVault},
	{"Microsoft.ManagedIdentity", "Microsoft Managed Identity", famMSI},
	{"Microsoft.Resources", "Microsoft Resources", famResources},
}

var operationRoutes = func() []route {
	rs := []route{
		{method: "GET", pattern: "/providers/Microsoft.Authorization/providerOperations", family: famAuthorization, handle: listProviderOperations},
		{method: "GET", pattern: "/providers/Microsoft.Authorization/providerOperations/{ns}", family: famAuthorization, handle: getProviderOperations},
	}
	for _, p := range catalogProviders {
		rs = append(rs, route{method: "GET", pattern: "/providers/" + p.ns + "/operations", family: p.fam, handle: listOperations(p.ns)})
	}
	return rs
}()

// catalogOperation is one action, described.
type catalogOperation struct {
	name, resourceType string
	operation          string // display
	description        string
	data               bool
}

// operationsOf returns ns's operations, management actions first, each
// once, by name.
func (c *call) operationsOf(ns string) []catalogOperation {
	var out []catalogOperation
	add := func(name string, data bool) {
		prefix, _, _ := strings.Cut(name, "/")
		if !strings.EqualFold(prefix, ns) || slices.ContainsFunc(out, func(o catalogOperation) bool { return strings.EqualFold(o.name, name) }) {
			return
		}
		out = append(out, describeOperation(name, data))
	}
	for _, a := range managementActions {
		add(a, false)
	}
	for _, a := range c.api.opts.DataActions {
		add(a, true)
	}
	slices.SortStableFunc(out, func(a, b catalogOperation) int { return strings.Compare(a.name, b.name) })
	return out
}

// describeOperation makes the display texts of an action from its name:
// {ns}/{resource type…}/{read|write|delete} or …/{verb}/action.
func describeOperation(name string, data bool) catalogOperation {
	segs := strings.Split(name, "/")[1:]
	o := catalogOperation{name: name, data: data}
	last := segs[len(segs)-1]
	var rt []string
	switch {
	case last == "action" && len(segs) >= 2:
		rt = segs[:len(segs)-2]
		o.operation = words(segs[len(segs)-2])
	default:
		rt = segs[:len(segs)-1]
		o.operation = words(last)
	}
	o.resourceType = strings.Join(rt, "/")
	subject := o.resourceType
	if subject == "" {
		subject = "the provider"
	}
	switch last {
	case "read":
		o.description = "Reads " + subject + "."
	case "write":
		o.description = "Creates or updates " + subject + "."
	case "delete":
		o.description = "Deletes " + subject + "."
	default:
		o.description = o.operation + " on " + subject + "."
	}
	return o
}

// words turns "listKeys" into "List Keys" and "analyze-text" into
// "Analyze Text".
func words(s string) string {
	var b strings.Builder
	up := true
	for i, r := range s {
		switch {
		case r == '-' || r == '_':
			b.WriteByte(' ')
			up = true
			continue
		case unicode.IsUpper(r) && i > 0 && !unicode.IsUpper(rune(s[i-1])):
			b.WriteByte(' ')
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

type operationDisplayJSON struct {
	Provider    string `json:"provider"`
	Resource    string `json:"resource"`
	Operation   string `json:"operation"`
	Description string `json:"description"`
}

type operationJSON struct {
	Name         string               `json:"name"`
	IsDataAction bool                 `json:"isDataAction"`
	Display      operationDisplayJSON `json:"display"`
	Origin       string               `json:"origin"`
}

func listOperations(ns string) func(*call) error {
	return func(c *call) error {
		display := providerDisplay(ns)
		out := list[operationJSON]{Value: []operationJSON{}}
		for _, o := range c.operationsOf(ns) {
			out.Value = append(out.Value, operationJSON{Name: o.name, IsDataAction: o.data, Origin: "user,system",
				Display: operationDisplayJSON{Provider: display, Resource: o.resourceType, Operation: o.operation, Description: o.description}})
		}
		return c.reply(http.StatusOK, out)
	}
}

func providerDisplay(ns string) string {
	for _, p := range catalogProviders {
		if strings.EqualFold(p.ns, ns) {
			return p.display
		}
	}
	return ns
}

type providerOperationJSON struct {
	Name         string `json:"name"`
	DisplayName  string `json:"displayName"`
	Description  string `json:"description"`
	Origin       string `json:"origin"`
	IsDataAction bool   `json:"isDataAction"`
}

type resourceTypeOperationsJSON struct {
	Name        string                  `json:"name"`
	DisplayName string                  `json:"displayName"`
	Operations  []providerOperationJSON `json:"operations"`
}

type providerOperationsJSON struct {
	ID            string                       `json:"id"`
	Name          string                       `json:"name"`
	Type          string                       `json:"type"`
	DisplayName   string                       `json:"displayName"`
	ResourceTypes []resourceTypeOperationsJSON `json:"resourceTypes,omitempty"`
	Operations    []providerOperationJSON      `json:"operations"`
}

// providerOperations is ns's metadata: operations on the provider itself
// in operations, the others by resource type when expanded
// ($expand=resourceTypes, which az always asks for), else all in
// operations.
func (c *call) providerOperations(ns, display string, expand bool) providerOperationsJSON {
	p := providerOperationsJSON{ID: "/providers/Microsoft.Authorization/providerOperations/" + ns, Name: ns,
		Type: "Microsoft.Authorization/providerOperations", DisplayName: display, Operations: []providerOperationJSON{}}
	if expand {
		p.ResourceTypes = []resourceTypeOperationsJSON{}
	}
	for _, o := range c.operationsOf(ns) {
		op := providerOperationJSON{Name: o.name, DisplayName: o.operation, Description: o.description, Origin: "user,system", IsDataAction: o.data}
		if !expand || o.resourceType == "" {
			p.Operations = append(p.Operations, op)
			continue
		}
		i := slices.IndexFunc(p.ResourceTypes, func(rt resourceTypeOperationsJSON) bool { return rt.Name == o.resourceType })
		if i < 0 {
			p.ResourceTypes = append(p.ResourceTypes, resourceTypeOperationsJSON{Name: o.resourceType, DisplayName: o.resourceType})
			i = len(p.ResourceTypes) - 1
		}
		p.ResourceTypes[i].Operations = append(p.ResourceTypes[i].Operations, op)
	}
	return p
}

// expandResourceTypes reads $expand: "resourceTypes" or nothing.
func (c *call) expandResourceTypes() (bool, error) {
	switch e := c.r.URL.Query().Get("$expand"); {
	case e == "":
		return false, nil
	case strings.EqualFold(e, "resourceTypes"):
		return true, nil
	default:
		return false, gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The $expand '%s' is not supported: it is resourceTypes or nothing.", clip(e))
	}
}

func listProviderOperations(c *call) error {
	expand, err := c.expandResourceTypes()
	if err != nil {
		return err
	}
	out := list[providerOperationsJSON]{Value: []providerOperationsJSON{}}
	for _, p := range catalogProviders {
		out.Value = append(out.Value, c.providerOperations(p.ns, p.display, expand))
	}
	return c.reply(http.StatusOK, out)
}

func getProviderOperations(c *call) error {
	expand, err := c.expandResourceTypes()
	if err != nil {
		return err
	}
	ns := c.param("ns")
	for _, p := range catalogProviders {
		if strings.EqualFold(p.ns, ns) {
			return c.reply(http.StatusOK, c.providerOperations(p.ns, p.display, expand))
		}
	}
	return gatehouse.NotFoundf("InvalidResourceNamespace", "The resource namespace '%s' is invalid: Gatehouse serves %s.", clip(ns), servedNamespaces())
}

func servedNamespaces() string {
	names := make([]string, len(catalogProviders))
	for i, p := range catalogProviders {
		names[i] = p.ns
	}
	return strings.Join(names, ", ")
}
