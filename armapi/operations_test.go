package armapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCatalogHasEveryAction: the operations catalog lists every action
// this package checks — each string constant named act* or Action* in its
// sources — and nothing else, so a custom role's author finds what
// Gatehouse enforces.
func TestCatalogHasEveryAction(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "act") && !strings.HasPrefix(name.Name, "Action") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					if strings.HasPrefix(v, "Microsoft.") && !slices.Contains(declared, v) {
						declared = append(declared, v)
					}
				}
			}
			return true
		})
	}
	if len(declared) < 40 {
		t.Fatalf("found only %d action constants: the scan is broken", len(declared))
	}
	for _, a := range declared {
		if !slices.Contains(managementActions, a) {
			t.Errorf("%s is checked but not in the operations catalog", a)
		}
	}
	for _, a := range managementActions {
		if !slices.Contains(declared, a) {
			t.Errorf("%s is in the operations catalog but no constant declares it", a)
		}
		if !slices.ContainsFunc(catalogProviders, func(p struct {
			ns, display string
			fam         family
		}) bool {
			return strings.HasPrefix(a, p.ns+"/")
		}) {
			t.Errorf("%s: its namespace is not one of the catalog's providers", a)
		}
	}
}

func TestDescribeOperation(t *testing.T) {
	for _, c := range []struct {
		name, rt, op, desc string
	}{
		{"Microsoft.CognitiveServices/accounts/listKeys/action", "accounts", "List Keys", "List Keys on accounts."},
		{"Microsoft.CognitiveServices/accounts/read", "accounts", "Read", "Reads accounts."},
		{"Microsoft.CognitiveServices/accounts/Language/analyze-text/action", "accounts/Language", "Analyze Text", "Analyze Text on accounts/Language."},
		{"Microsoft.CognitiveServices/checkDomainAvailability/action", "", "Check Domain Availability", "Check Domain Availability on the provider."},
		{"Microsoft.Resources/subscriptions/tagNames/tagValues/delete", "subscriptions/tagNames/tagValues", "Delete", "Deletes subscriptions/tagNames/tagValues."},
	} {
		o := describeOperation(c.name, false)
		if o.resourceType != c.rt || o.operation != c.op || o.description != c.desc {
			t.Errorf("%s: %+v", c.name, o)
		}
	}
}
