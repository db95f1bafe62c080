package armtest

import (
	"strings"
	"testing"
)

// testNoPolicyOrFeatures: preview features and Azure Policy, which
// Gatehouse has none of, answer as an unused subscription does — empty
// lists, 404 for one item, 400 PolicyNotSupported for an assignment —
// and only to callers who may read the scope.
func testNoPolicyOrFeatures(t *testing.T, e *env) {
	s := "/subscriptions/" + e.sub
	group := e.createGroup(t, "nopolicy")
	_, noneCred := e.principal(t, "nopolicy-none")
	noneTok := e.Token(t, noneCred, mgmtScope)
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", s + "/providers/Microsoft.Features/features?api-version=2021-07-01", "", 200, `"value":[]`},
		{"GET", s + "/providers/Microsoft.Features/providers/Microsoft.CognitiveServices/features?api-version=2021-07-01", "", 200, `"value":[]`},
		{"GET", s + "/providers/Microsoft.Features/subscriptionFeatureRegistrations?api-version=2021-07-01", "", 200, `"value":[]`},
		{"GET", s + "/providers/Microsoft.Features/providers/Microsoft.CognitiveServices/features/X?api-version=2021-07-01", "", 404, "ResourceNotFound"},
		{"POST", s + "/providers/Microsoft.Features/providers/Microsoft.CognitiveServices/features/X/register?api-version=2021-07-01", "", 404, "ResourceNotFound"},
		{"GET", s + "/providers/Microsoft.Features/features?api-version=1999-01-01", "", 400, "InvalidApiVersionParameter"},
		{"GET", s + "/providers/Microsoft.Authorization/policyAssignments?api-version=2021-06-01", "", 200, `"value":[]`},
		{"GET", s + "/resourceGroups/" + group + "/providers/Microsoft.Authorization/policyAssignments?api-version=2021-06-01", "", 200, `"value":[]`},
		{"GET", s + "/resourceGroups/no-such-group/providers/Microsoft.Authorization/policyAssignments?api-version=2021-06-01", "", 404, "ResourceGroupNotFound"},
		{"GET", s + "/providers/Microsoft.Authorization/policyDefinitions?api-version=2021-06-01", "", 200, `"value":[]`},
		{"GET", "/providers/Microsoft.Authorization/policyDefinitions?api-version=2021-06-01", "", 200, `"value":[]`},
		{"GET", s + "/providers/Microsoft.Authorization/policySetDefinitions/x?api-version=2021-06-01", "", 404, "ResourceNotFound"},
		{"PUT", s + "/providers/Microsoft.Authorization/policyAssignments/a1?api-version=2021-06-01",
			`{"properties":{"policyDefinitionId":"/providers/Microsoft.Authorization/policyDefinitions/x"}}`, 400, "PolicyNotSupported"},
		// Deny assignments and classic administrators: none (armauthorization's
		// DenyAssignmentsClient and ClassicAdministratorsClient).
		{"GET", s + "/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01", "", 200, `"value":[]`},
		{"GET", s + "/resourceGroups/" + group + "/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01&$filter=atScope()", "", 200, `"value":[]`},
		{"GET", s + "/providers/Microsoft.Authorization/denyAssignments/" + e.sub + "?api-version=2022-04-01", "", 404, "DenyAssignmentNotFound"},
		{"GET", s + "/resourceGroups/no-such-group/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01", "", 404, "ResourceGroupNotFound"},
		{"GET", s + "/providers/Microsoft.Authorization/classicAdministrators?api-version=2015-07-01", "", 200, `"value":[]`},
	} {
		r := e.do(t, request{method: c.method, path: c.path, body: c.body})
		if r.status != c.status || !strings.Contains(string(r.body), c.code) {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, r.status, r.body, c.status, c.code)
		}
	}
	// A principal with no role at the subscription reads neither.
	for _, p := range []string{
		s + "/providers/Microsoft.Features/features?api-version=2021-07-01",
		s + "/providers/Microsoft.Authorization/policyAssignments?api-version=2021-06-01",
	} {
		if r := e.do(t, request{method: "GET", path: p, token: noneTok}); r.status != 403 {
			t.Errorf("GET %s without a role: %d %s", p, r.status, r.body)
		}
	}
}
