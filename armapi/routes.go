package armapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// route is one ARM operation. A pattern is a path of segments: literals
// (matched case-insensitively, as ARM does), {name} parameters, and a
// leading {scope*} that matches any ARM scope (possibly empty: the root).
type route struct {
	method  string
	pattern string
	family  family
	// audit: the operation changes state or reveals secrets, and is
	// recorded in the audit log.
	audit  bool
	handle func(*call) error

	segs []string
}

const (
	sub       = "/subscriptions/{sub}"
	group     = sub + "/resourceGroups/{rg}"
	accountsP = "/providers/Microsoft.CognitiveServices/accounts"
	account   = group + accountsP + "/{name}"
	msiP      = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	identity  = group + msiP + "/{name}"
	authzP    = "{scope*}/providers/Microsoft.Authorization"
)

// routes is every operation of the management API, in match order.
var routes = compile(append([]route{
	// Elevation of a directory Global Administrator (elevate.go).
	{method: "POST", pattern: "/providers/Microsoft.Authorization/elevateAccess", family: famElevate, audit: true, handle: elevateAccess},

	// Role assignments and definitions at any scope (armauthorization/v2,
	// az 2.45). Listed first: their literal tails are the most specific.
	{method: "GET", pattern: authzP + "/roleAssignments", family: famAuthorization, handle: listAssignments},
	{method: "GET", pattern: authzP + "/roleAssignments/{name}", family: famAuthorization, handle: getAssignment},
	{method: "PUT", pattern: authzP + "/roleAssignments/{name}", family: famAuthorization, audit: true, handle: putAssignment},
	{method: "DELETE", pattern: authzP + "/roleAssignments/{name}", family: famAuthorization, audit: true, handle: deleteAssignment},
	{method: "GET", pattern: authzP + "/roleDefinitions", family: famAuthorization, handle: listRoleDefinitions},
	{method: "GET", pattern: authzP + "/permissions", family: famAuthorization, handle: listPermissions},
	{method: "GET", pattern: authzP + "/roleDefinitions/{name}", family: famAuthorization, handle: getRoleDefinition},
	{method: "PUT", pattern: authzP + "/roleDefinitions/{name}", family: famAuthorization, audit: true, handle: putRoleDefinition},
	{method: "DELETE", pattern: authzP + "/roleDefinitions/{name}", family: famAuthorization, audit: true, handle: deleteRoleDefinition},

	// Subscriptions, tenants, resource providers, resource groups.
	{method: "GET", pattern: "/subscriptions", family: famResources, handle: listSubscriptions},
	{method: "GET", pattern: sub, family: famResources, handle: getSubscription},
	{method: "GET", pattern: "/tenants", family: famResources, handle: listTenants},
	{method: "GET", pattern: sub + "/locations", family: famResources, handle: listLocations},
	{method: "GET", pattern: sub + "/providers", family: famResources, handle: listProviders},
	{method: "GET", pattern: sub + "/providers/{ns}", family: famResources, handle: getProvider},
	{method: "POST", pattern: sub + "/providers/{ns}/register", family: famResources, audit: true, handle: registerProvider},
	{method: "POST", pattern: sub + "/providers/{ns}/unregister", family: famResources, audit: true, handle: unregisterProvider},
	{method: "GET", pattern: sub + "/resourceGroups", family: famResources, handle: listGroups},
	{method: "GET", pattern: group, family: famResources, handle: getGroup},
	{method: "HEAD", pattern: group, family: famResources, handle: headGroup},
	{method: "PUT", pattern: group, family: famResources, audit: true, handle: putGroup},
	{method: "PATCH", pattern: group, family: famResources, audit: true, handle: patchGroup},
	{method: "DELETE", pattern: group, family: famResources, audit: true, handle: deleteGroup},

	// Microsoft.CognitiveServices/accounts (armcognitiveservices/v2, az).
	{method: "GET", pattern: sub + accountsP, family: famCognitive, handle: listAccounts},
	{method: "GET", pattern: group + accountsP, family: famCognitive, handle: listAccounts},
	{method: "GET", pattern: account, family: famCognitive, handle: getAccount},
	{method: "PUT", pattern: account, family: famCognitive, audit: true, handle: putAccount},
	{method: "PATCH", pattern: account, family: famCognitive, audit: true, handle: patchAccount},
	{method: "DELETE", pattern: account, family: famCognitive, audit: true, handle: deleteAccount},
	{method: "POST", pattern: account + "/listKeys", family: famCognitive, audit: true, handle: listKeys},
	{method: "POST", pattern: account + "/regenerateKey", family: famCognitive, audit: true, handle: regenerateKey},
	{method: "POST", pattern: account + "/listKeyUsage", family: famCognitive, handle: listKeyUsage},

	// Microsoft.ManagedIdentity/userAssignedIdentities (armmsi).
	{method: "GET", pattern: sub + msiP, family: famMSI, handle: listIdentities},
	{method: "GET", pattern: group + msiP, family: famMSI, handle: listIdentities},
	{method: "GET", pattern: identity, family: famMSI, handle: getIdentity},
	{method: "PUT", pattern: identity, family: famMSI, audit: true, handle: putIdentity},
	{method: "PATCH", pattern: identity, family: famMSI, audit: true, handle: patchIdentity},
	{method: "DELETE", pattern: identity, family: famMSI, audit: true, handle: deleteIdentity},
	{method: "POST", pattern: identity + "/listAssociatedResources", family: famMSI, handle: listIdentityResources},
}, slices.Concat(lockRoutes, tagResourceRoutes, activityLogRoutes, metricRoutes, diagnosticRoutes, deploymentRoutes, vaultRoutes, vaultSecretRoutes, systemIdentityRoutes, auditLogRoutes, genericRoutes, deletedAccountRoutes, checkRoutes, modelRoutes, featureRoutes, federatedRoutes, noPolicyRoutes, operationRoutes)...)) // locks.go, tagsresource.go, activitylog.go, metrics.go, diagnostics.go, deployments.go, vaults.go, vaultsecrets.go, systemidentity.go, auditlog.go, generic.go, deletedaccounts.go, check.go, models.go, features.go, federated.go, nopolicy.go, operations.go

func compile(rs []route) []*route {
	out := make([]*route, len(rs))
	for i := range rs {
		r := rs[i]
		r.segs = strings.Split(strings.TrimPrefix(r.pattern, "/"), "/")
		out[i] = &r
	}
	return out
}

// match finds the route for method and path segments. When the path
// matches only under other methods it returns them in allowed (405).
func match(method string, segs []string) (*route, map[string]string, *gatehouse.ResourceID, []string) {
	var allowed []string
	for _, rt := range routes {
		params, scope, ok := rt.matchPath(segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return rt, params, scope, nil
		}
		if !slices.Contains(allowed, rt.method) {
			allowed = append(allowed, rt.method)
		}
	}
	return nil, nil, nil, allowed
}

func (rt *route) matchPath(segs []string) (map[string]string, *gatehouse.ResourceID, bool) {
	pat := rt.segs
	var scope *gatehouse.ResourceID
	if pat[0] == "{scope*}" {
		tail := pat[1:]
		if len(segs) < len(tail) {
			return nil, nil, false
		}
		head := segs[:len(segs)-len(tail)]
		id, err := gatehouse.ParseResourceID("/" + strings.Join(head, "/"))
		if err != nil {
			return nil, nil, false
		}
		scope, pat, segs = id, tail, segs[len(segs)-len(tail):]
	}
	if len(pat) != len(segs) {
		return nil, nil, false
	}
	params := map[string]string{}
	for i, p := range pat {
		if strings.HasPrefix(p, "{") {
			params[p[1:len(p)-1]] = segs[i]
		} else if !strings.EqualFold(p, segs[i]) {
			return nil, nil, false
		}
	}
	return params, scope, true
}

// family groups routes by the api-versions they accept.
type family int

const (
	famResources family = iota
	famCognitive
	famAuthorization
	famMSI
	famKeyVault
	famElevate
	famLocks
	famInsights
	famMetrics
	famDiagnostics
	famFeatures
	famPolicy
)

// apiVersions are the versions each family accepts: the ones the official
// clients send (azure-wire.md §5, the Go SDKs' sources, az 2.45) and their
// published neighbours. The shapes Gatehouse returns are the same for all.
var apiVersions = map[family][]string{
	famResources: {"2014-04-01", "2015-01-01", "2015-11-01", "2016-02-01", "2016-06-01", "2016-09-01", "2018-02-01", "2018-05-01",
		"2019-05-01", "2019-05-10", "2019-06-01", "2019-07-01", "2019-08-01", "2019-10-01", "2019-11-01", "2020-01-01",
		"2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-01-01", "2022-09-01", "2022-12-01", "2023-07-01",
		"2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01"},
	famCognitive: {"2016-02-01-preview", "2017-04-18", "2021-04-30", "2021-10-01", "2022-03-01", "2022-10-01",
		"2022-12-01", "2023-05-01", "2023-10-01-preview", "2024-04-01-preview", "2024-06-01-preview", "2024-10-01",
		"2025-04-01-preview", "2025-06-01", "2025-07-01-preview", "2025-09-01"},
	famAuthorization: {"2015-06-01", "2015-07-01", "2017-05-01", "2018-01-01-preview", "2018-07-01",
		"2018-09-01-preview", "2020-03-01-preview", "2020-04-01-preview", "2020-08-01-preview", "2020-10-01",
		"2020-10-01-preview", "2021-03-01-preview", "2022-04-01", "2022-05-01-preview", "2022-08-01-preview"},
	famMSI: {"2015-08-31-preview", "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31",
		"2023-07-31-preview", "2024-11-30", "2025-01-31-preview"},
	// elevateAccess: armauthorization sends 2015-07-01, Azure's docs (az
	// rest) use 2016-07-01.
	famElevate: {"2015-07-01", "2016-07-01"},
	// Management locks: az 2.45 sends 2016-09-01, armlocks 2020-05-01.
	famLocks: {"2015-01-01", "2016-09-01", "2020-05-01"},
	// The activity log: az 2.45 (azure-mgmt-monitor) and armmonitor send 2015-04-01.
	famInsights: {"2015-04-01"},
	// Metrics: az 2.45 (azure-mgmt-monitor) sends 2018-01-01, armmonitor 2023-10-01.
	famMetrics: {"2018-01-01", "2019-07-01", "2021-05-01", "2023-10-01", "2024-02-01"},
	// Diagnostic settings: az 2.45 sends 2021-05-01-preview.
	famDiagnostics: {"2017-05-01-preview", "2021-05-01-preview"},
	// Preview features: az 2.45 sends 2021-07-01.
	famFeatures: {"2015-12-01", "2021-07-01"},
	// Azure Policy: az 2.45 sends 2021-06-01.
	famPolicy: {"2019-09-01", "2020-09-01", "2021-06-01", "2022-06-01", "2023-04-01"},
	// Key Vault: az 2.45 sends 2022-07-01, armkeyvault 2023-07-01 / 2024-11-01.
	famKeyVault: {"2016-10-01", "2018-02-14", "2019-09-01", "2021-04-01-preview", "2021-06-01-preview", "2021-10-01",
		"2021-11-01-preview", "2022-02-01-preview", "2022-07-01", "2022-11-01", "2023-02-01", "2023-07-01",
		"2024-04-01-preview", "2024-11-01", "2024-12-01-preview", "2025-05-01"},
}

var familyTypes = map[family]string{
	famCognitive: "accounts", famMSI: "userAssignedIdentities", famKeyVault: "vaults",
}

func checkAPIVersion(r *http.Request, f family) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return gatehouse.BadRequestf("MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	if slices.Contains(apiVersions[f], v) {
		return nil
	}
	supported := "'" + strings.Join(apiVersions[f], ", ") + "'"
	if t, ok := familyTypes[f]; ok {
		return gatehouse.BadRequestf("NoRegisteredProviderFound",
			"No registered resource provider found for location 'global' and API version '%s' for type '%s'. The supported api-versions are %s.",
			clip(v), t, supported)
	}
	return gatehouse.BadRequestf("InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are %s.", clip(v), supported)
}
