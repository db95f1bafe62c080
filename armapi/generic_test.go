package armapi

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestParseResourceFilter(t *testing.T) {
	kv := genericResourceJSON{Name: "KV1", Type: "Microsoft.KeyVault/vaults", group: "Team-A", Location: "westus", Tags: map[string]string{"Env": "prod"}}
	tests := []struct {
		name, filter string
		match        bool
		bad          bool
	}{
		{"empty", "", true, false},
		{"type", "resourceType eq 'Microsoft.KeyVault/vaults'", true, false},
		{"type-case", "resourcetype EQ 'microsoft.keyvault/VAULTS'", true, false},
		{"other-type", "resourceType eq 'Microsoft.CognitiveServices/accounts'", false, false},
		{"az-resource-exists", "resourceGroup eq 'team-a' and name eq 'kv1' and resourceType eq 'Microsoft.KeyVault/vaults'", true, false},
		{"wrong-group", "resourceGroup eq 'team-b' and name eq 'kv1'", false, false},
		{"tag", "tagName eq 'env' and tagValue eq 'prod'", true, false},
		{"tag-other-value", "tagName eq 'env' and tagValue eq 'dev'", false, false},
		{"quoted-quote", "name eq 'it''s'", false, false},
		{"tag-value-alone", "tagValue eq 'prod'", false, false},
		{"location", "location eq 'WestUS'", true, false},
		{"other-location", "location eq 'eastus' and resourceType eq 'Microsoft.KeyVault/vaults'", false, false},
		{"unknown-field", "kind eq 'OpenAI'", false, true},
		{"or", "name eq 'a' or name eq 'b'", false, true},
		{"unterminated", "name eq 'kv1", false, true},
		{"unquoted", "name eq kv1", false, true},
		{"function", "substringof('kv', name)", false, true},
		{"trailing-and", "name eq 'kv1' and", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, err := parseResourceFilter(tt.filter)
			if tt.bad {
				if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 || e.Code != "InvalidFilterInQueryString" {
					t.Fatalf("want 400 InvalidFilterInQueryString, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := match(kv); got != tt.match {
				t.Fatalf("match %v, want %v", got, tt.match)
			}
		})
	}
}

// TestGroupFilter: the group list takes its fields only.
func TestGroupFilter(t *testing.T) {
	g := filterable{name: "g1", location: "westus", tags: map[string]string{"team": "a"}}
	for filter, want := range map[string]bool{
		"tagname eq 'team' and tagvalue eq 'a'": true,
		"tagName eq 'Team'":                     true,
		"tagname eq 'team' and tagvalue eq 'b'": false,
		"tagname eq 'c'":                        false,
		"name eq 'G1' and location eq 'westus'": true,
	} {
		match, err := parseFilter(filter, groupFields)
		if err != nil || match(g) != want {
			t.Errorf("%s: %v %v, want %v", filter, match != nil && match(g), err, want)
		}
	}
	if _, err := parseFilter("resourceType eq 'Microsoft.KeyVault/vaults'", groupFields); gatehouse.ErrorStatus(err) != 400 {
		t.Errorf("a resource type filter on groups: %v", err)
	}
}

// FuzzParseResourceFilter: any $filter is understood or refused with a
// 400; nothing panics.
func FuzzParseResourceFilter(f *testing.F) {
	for _, s := range []string{"resourceType eq 'Microsoft.KeyVault/vaults'", "name eq 'a''b' and tagName eq 'x'", "name eq '", "'", " and ", "eq eq eq"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		match, err := parseResourceFilter(filter)
		if err != nil {
			if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 {
				t.Fatalf("error %v is not a 400 *gatehouse.Error", err)
			}
			return
		}
		match(genericResourceJSON{Name: "x", Tags: map[string]string{"a": "b"}})
	})
}
