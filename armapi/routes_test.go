package armapi

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

func TestMatch(t *testing.T) {
	const subPath = "/subscriptions/11111111-2222-3333-4444-555555555555"
	acct := subPath + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a1"
	tests := []struct {
		name, method, path string
		pattern            string
		params             map[string]string
		scope              string
		allowed            string
	}{
		{"subscriptions", "GET", "/subscriptions", "/subscriptions", nil, "", ""},
		{"account", "GET", acct, account, map[string]string{"rg": "rg", "name": "a1"}, "", ""},
		{"account-lower-keywords", "PUT", strings.ToLower(acct), account, map[string]string{"rg": "rg", "name": "a1"}, "", ""},
		{"list-keys", "POST", acct + "/listKeys", account + "/listKeys", nil, "", ""},
		{"list-keys-lower", "POST", acct + "/listkeys", account + "/listKeys", nil, "", ""},
		{"list-keys-wrong-method", "GET", acct + "/listKeys", "", nil, "", "POST"},
		{"accounts-in-subscription", "GET", subPath + "/providers/Microsoft.CognitiveServices/accounts", sub + accountsP, nil, "", ""},
		{"provider", "GET", subPath + "/providers/Microsoft.CognitiveServices", sub + "/providers/{ns}", map[string]string{"ns": "Microsoft.CognitiveServices"}, "", ""},
		{"assignments-at-subscription", "GET", subPath + "/providers/Microsoft.Authorization/roleAssignments", authzP + "/roleAssignments", nil, subPath, ""},
		{"assignment-at-account", "PUT", acct + "/providers/Microsoft.Authorization/roleAssignments/x", authzP + "/roleAssignments/{name}", map[string]string{"name": "x"}, acct, ""},
		{"assignment-at-child", "GET", acct + "/deployments/d/providers/Microsoft.Authorization/roleAssignments/x", authzP + "/roleAssignments/{name}", nil, acct + "/deployments/d", ""},
		{"definition-at-root", "GET", "/providers/Microsoft.Authorization/roleDefinitions/x", authzP + "/roleDefinitions/{name}", nil, "/", ""},
		{"assignment-bad-scope", "GET", subPath + "/resourceGroups/providers/Microsoft.Authorization/roleAssignments", "", nil, "", ""},
		{"unknown", "GET", subPath + "/whatever", "", nil, "", ""},
		{"group-head", "HEAD", subPath + "/resourcegroups/rg", group, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := splitPath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			rt, params, scope, allowed := match(tt.method, segs)
			if tt.pattern == "" {
				if rt != nil {
					t.Fatalf("matched %s", rt.pattern)
				}
				if strings.Join(allowed, ",") != tt.allowed {
					t.Fatalf("allowed %v, want %s", allowed, tt.allowed)
				}
				return
			}
			if rt == nil || rt.pattern != tt.pattern {
				t.Fatalf("route %v, want %s", rt, tt.pattern)
			}
			for k, v := range tt.params {
				if params[k] != v {
					t.Errorf("param %s = %q, want %q", k, params[k], v)
				}
			}
			if tt.scope != "" && (scope == nil || !strings.EqualFold(scope.String(), tt.scope)) {
				t.Errorf("scope %v, want %s", scope, tt.scope)
			}
		})
	}
}

func TestAPIVersions(t *testing.T) {
	tests := []struct {
		name  string
		query string
		fam   family
		code  string
	}{
		{"go-sdk-accounts", "api-version=2025-06-01", famCognitive, ""},
		{"az-accounts", "api-version=2022-12-01", famCognitive, ""},
		{"go-sdk-assignments", "api-version=2022-04-01", famAuthorization, ""},
		{"az-assignments", "api-version=2020-04-01-preview", famAuthorization, ""},
		{"az-definitions", "api-version=2018-01-01-preview", famAuthorization, ""},
		{"az-subscriptions", "api-version=2019-11-01", famResources, ""},
		{"armmsi", "api-version=2024-11-30", famMSI, ""},
		{"msi-2023", "api-version=2023-01-31", famMSI, ""},
		{"escaped-name", "api%2Dversion=2025-06-01", famCognitive, ""},
		{"missing", "", famCognitive, "MissingApiVersionParameter"},
		{"unknown-provider", "api-version=2099-01-01", famCognitive, "NoRegisteredProviderFound"},
		{"unknown-resources", "api-version=2099-01-01", famResources, "InvalidApiVersionParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+tt.query, nil)
			err := checkAPIVersion(r, tt.fam)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.code) {
				t.Fatalf("err %v, want %s", err, tt.code)
			}
		})
	}
}

func TestAssignmentFilter(t *testing.T) {
	const oid = "aaaaaaaa-0000-0000-0000-000000000001"
	for _, f := range []string{"atScope()", "principalId eq '" + oid + "'", "assignedTo('" + oid + "')",
		"atScope() and principalId eq '" + oid + "'", "atScope() AND assignedTo('" + oid + "')"} {
		t.Run(f, func(t *testing.T) {
			var got authz.AssignmentFilter
			if err := parseAssignmentFilter(f, &got); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, bad := range []string{"roleName eq 'x'", "principalId ne 'x'", "atScope() or principalId eq 'x'", "1 eq 1"} {
		t.Run("bad-"+bad, func(t *testing.T) {
			var got authz.AssignmentFilter
			if err := parseAssignmentFilter(bad, &got); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzRoute: no path crashes the router, and every routed scope is a
// valid ARM scope that round-trips.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/subscriptions", "/subscriptions/x/resourceGroups/y/providers/Microsoft.CognitiveServices/accounts/z/listKeys",
		"/providers/Microsoft.Authorization/roleDefinitions/x", "/a%00b", "//x", "/subscriptions/x/resourceGroups/y/providers/A/b/c/providers/Microsoft.Authorization/roleAssignments/n"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		segs, err := splitPath(path)
		if err != nil {
			return
		}
		rt, _, scope, _ := match(method, segs)
		if rt != nil && scope != nil {
			if _, err := gatehouse.ParseResourceID(scope.String()); err != nil {
				t.Fatalf("routed scope %q does not parse: %v", scope.String(), err)
			}
		}
	})
}

// TestFilterTerms: "and" inside a quoted value is the value's (a role named
// "Reader and Data Access"), and a doubled quote is one quote.
func TestFilterTerms(t *testing.T) {
	for f, want := range map[string][]string{
		"roleName eq 'Reader and Data Access'":                   {"roleName eq 'Reader and Data Access'"},
		"roleName eq 'O''Brien and co' and type eq 'CustomRole'": {"roleName eq 'O''Brien and co'", "type eq 'CustomRole'"},
		"atScope() AND assignedTo('x')":                          {"atScope()", "assignedTo('x')"},
		"roleName eq 'a' and":                                    {"roleName eq 'a' and"}, // refused by the term's regexp
	} {
		if got := filterTerms(f, reAnd); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", f, got, want)
		}
	}
	if v := filterValue(reRoleName, "roleName eq 'O''Brien'"); v != "O'Brien" {
		t.Errorf("value %q", v)
	}
	names, err := parseUsageFilter("name.value eq 'A' or name.value eq 'b or c'")
	if err != nil || len(names) != 2 || !names["a"] || !names["b or c"] {
		t.Errorf("usage filter: %v %v", names, err)
	}
}
