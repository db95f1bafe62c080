package armapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Two Azure services Gatehouse has none of, answered as a subscription
// that uses neither, so that the inventory and compliance scripts that
// list them on every subscription get answers rather than ARM's 404
// InvalidResourceType for the collection:
//
//	Preview features (Microsoft.Features; az feature list|show|register,
//	az feature registration list): none — the lists are empty, one feature
//	is 404 and so is registering it.
//
//	Azure Policy (Microsoft.Authorization/policyAssignments, policyDefinitions,
//	policySetDefinitions; az policy assignment|definition|set-definition
//	list): nothing is assigned or defined — Gatehouse evaluates no policies;
//	its controls are role assignments, locks and network rules — so the
//	lists are empty, one item is 404, and assigning or defining a policy
//	is refused with that reason.
//
//	Deny assignments and classic administrators (armauthorization's
//	DenyAssignmentsClient, ClassicAdministratorsClient): none — Gatehouse's
//	access is role assignments alone, and it never had classic
//	(co-)administrators — so the lists are empty and one deny assignment
//	is 404.

const (
	actFeaturesRead       = "Microsoft.Features/features/read"
	actPolicyRead         = "Microsoft.Authorization/policyAssignments/read"
	actDenyAssignmentRead = "Microsoft.Authorization/denyAssignments/read"
	actClassicAdminsRead  = "Microsoft.Authorization/classicAdministrators/read"
)

var noPolicyRoutes = func() []route {
	features := sub + "/providers/Microsoft.Features"
	rs := []route{
		{method: "GET", pattern: features + "/features", family: famFeatures, handle: listNoFeatures},
		{method: "GET", pattern: features + "/providers/{ns}/features", family: famFeatures, handle: listNoFeatures},
		{method: "GET", pattern: features + "/providers/{ns}/features/{name}", family: famFeatures, handle: noFeature},
		{method: "POST", pattern: features + "/providers/{ns}/features/{name}/register", family: famFeatures, handle: noFeature},
		{method: "POST", pattern: features + "/providers/{ns}/features/{name}/unregister", family: famFeatures, handle: noFeature},
		{method: "GET", pattern: features + "/subscriptionFeatureRegistrations", family: famFeatures, handle: listNoFeatures},
	}
	for _, kind := range []string{"policyAssignments", "policyDefinitions", "policySetDefinitions"} {
		p := "{scope*}/providers/Microsoft.Authorization/" + kind
		rs = append(rs,
			route{method: "GET", pattern: p, family: famPolicy, handle: listNoPolicies},
			route{method: "GET", pattern: p + "/{name}", family: famPolicy, handle: noPolicy(kind)},
			route{method: "PUT", pattern: p + "/{name}", family: famPolicy, handle: putNoPolicy})
	}
	rs = append(rs,
		route{method: "GET", pattern: authzP + "/denyAssignments", family: famAuthorization, handle: listNone(actDenyAssignmentRead)},
		route{method: "GET", pattern: authzP + "/denyAssignments/{name}", family: famAuthorization, handle: noDenyAssignment},
		route{method: "GET", pattern: authzP + "/classicAdministrators", family: famAuthorization, handle: listNone(actClassicAdminsRead)})
	return rs
}()

// listNone answers a collection of which Gatehouse has none, at a scope
// the caller may read (action) and that exists.
func listNone(action string) func(*call) error {
	return func(c *call) error {
		if err := c.noneScope(action); err != nil {
			return err
		}
		return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
	}
}

func (c *call) noneScope(action string) error {
	if c.scope == nil || c.scope.Subscription == "" {
		return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound, "Gatehouse lists these at a subscription or beneath it.")
	}
	if err := c.authorize(action, c.scope); err != nil {
		return err
	}
	return c.checkScope(c.scope)
}

func noDenyAssignment(c *call) error {
	if err := c.noneScope(actDenyAssignmentRead); err != nil {
		return err
	}
	return gatehouse.NotFoundf("DenyAssignmentNotFound", "The deny assignment '%s' does not exist: Gatehouse has no deny assignments.", clip(c.param("name")))
}

func (c *call) featureScope() error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	return c.authorize(actFeaturesRead, &gatehouse.ResourceID{Subscription: s.ID})
}

func listNoFeatures(c *call) error {
	if err := c.featureScope(); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}

func noFeature(c *call) error {
	if err := c.featureScope(); err != nil {
		return err
	}
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The feature '%s/%s' could not be found: Gatehouse has no preview features to register.", clip(c.param("ns")), clip(c.param("name")))
}

// policyScope checks that the caller may read the policies of an
// existing scope: the tenant root ("/", where built-in definitions live),
// a subscription, a resource group or a resource.
func (c *call) policyScope() error {
	if c.scope == nil || c.scope.Subscription == "" {
		return nil // the tenant's own definitions: anyone signed in lists them
	}
	if err := c.authorize(actPolicyRead, c.scope); err != nil {
		return err
	}
	return c.checkScope(c.scope)
}

func listNoPolicies(c *call) error {
	if err := c.policyScope(); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}

func noPolicy(kind string) func(*call) error {
	return func(c *call) error {
		if err := c.policyScope(); err != nil {
			return err
		}
		return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound, "The %s '%s' could not be found.", kind[:len(kind)-1], clip(c.param("name")))
	}
}

func putNoPolicy(c *call) error {
	if err := c.policyScope(); err != nil {
		return err
	}
	return gatehouse.BadRequestf("PolicyNotSupported",
		"Gatehouse evaluates no Azure Policy: control access with role assignments (az role assignment create), changes with management locks (az lock create) and networks with network rules.")
}
