package gatehouse_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestParseResourceID(t *testing.T) {
	tests := []struct {
		name, in, want, typ, parent string
	}{
		{"root", "/", "/", "", ""},
		{"subscription", "/subscriptions/S1", "/subscriptions/S1", "", "/"},
		{"group", "/SUBSCRIPTIONS/s/resourcegroups/RG", "/subscriptions/s/resourceGroups/RG", "", "/subscriptions/s"},
		{"account", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
			"Microsoft.CognitiveServices/accounts", "/subscriptions/s/resourceGroups/rg"},
		{"no-leading-slash", "subscriptions/s/resourceGroups/rg/", "/subscriptions/s/resourceGroups/rg", "", "/subscriptions/s"},
		{"child", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/deployments/d",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/deployments/d",
			"Microsoft.CognitiveServices/accounts/deployments",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a"},
		{"subscription-level", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/r",
			"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/r",
			"Microsoft.Authorization/roleDefinitions", "/subscriptions/s"},
		{"extension", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/providers/Microsoft.Authorization/roleAssignments/x",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/providers/Microsoft.Authorization/roleAssignments/x",
			"Microsoft.Authorization/roleAssignments",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a"},
		{"tenant-level", "/providers/Microsoft.Authorization/roleDefinitions/r",
			"/providers/Microsoft.Authorization/roleDefinitions/r", "Microsoft.Authorization/roleDefinitions", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := gatehouse.ParseResourceID(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := id.Type(); got != tt.typ {
				t.Errorf("Type() = %q, want %q", got, tt.typ)
			}
			p := id.Parent()
			got := ""
			if p != nil {
				got = p.String()
			}
			if got != tt.parent {
				t.Errorf("Parent() = %q, want %q", got, tt.parent)
			}
			if p != nil && !id.Within(p) {
				t.Errorf("%s not within its parent %s", id, p)
			}
		})
	}
}

func TestParseResourceIDRejects(t *testing.T) {
	for _, in := range []string{
		"/subscriptions", "/subscriptions/s/resourceGroups", "/subscriptions/s//x",
		"/subscriptions/s/resourceGroups/rg/providers", "/subscriptions/s/resourceGroups/rg/providers/ns",
		"/subscriptions/s/resourceGroups/rg/providers/ns/accounts", "/foo/bar", "/subscriptions/s\x00",
		"/subscriptions/s/resourceGroups/rg/extra",
	} {
		if id, err := gatehouse.ParseResourceID(in); err == nil {
			t.Errorf("ParseResourceID(%q) = %s, want error", in, id)
		}
	}
}

func TestResourceIDWithin(t *testing.T) {
	acct, _ := gatehouse.ParseResourceID("/subscriptions/S/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/a")
	for scope, want := range map[string]bool{
		"/": true, "/subscriptions/s": true, "/subscriptions/s/resourcegroups/rg": true,
		"/subscriptions/s/resourceGroups/rg2": false, "/subscriptions/s/resourceGroups/r": false,
		"/subscriptions/S/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/a": true,
	} {
		sc, err := gatehouse.ParseResourceID(scope)
		if err != nil {
			t.Fatal(err)
		}
		if got := acct.Within(sc); got != want {
			t.Errorf("Within(%s) = %v, want %v", scope, got, want)
		}
	}
	if n := len(acct.Ancestors()); n != 4 {
		t.Errorf("Ancestors() has %d scopes, want 4", n)
	}
}

func FuzzParseResourceID(f *testing.F) {
	f.Add("/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/providers/Microsoft.Authorization/roleAssignments/x")
	f.Add("/providers/a/b/c")
	f.Add("subscriptions/x/")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := gatehouse.ParseResourceID(s)
		if err != nil {
			return
		}
		// The canonical form re-parses to itself.
		again, err := gatehouse.ParseResourceID(id.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", id.String(), s, err)
		}
		if again.String() != id.String() {
			t.Fatalf("not stable: %q -> %q", id.String(), again.String())
		}
		for p := id; p != nil; p = p.Parent() {
			if !id.Within(p) {
				t.Fatalf("%q not within ancestor %q", id, p)
			}
		}
	})
}

func TestNewGUID(t *testing.T) {
	g := gatehouse.NewGUID()
	if !gatehouse.IsGUID(g) {
		t.Fatalf("%q is not a GUID", g)
	}
	if _, ok := gatehouse.NormalizeGUID("ABCDEF01-2345-6789-ABCD-EF0123456789"); !ok {
		t.Fatal("upper-case GUID rejected")
	}
}
