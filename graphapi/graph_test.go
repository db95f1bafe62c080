package graphapi

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name, filter, prop, value string
		ok                        bool
		prefix                    bool
	}{
		{"none", "", "", "", true, false},
		{"app-id", "appId eq 'abc'", "appId", "abc", true, false},
		{"case-insensitive-property", "APPID eq 'abc'", "appId", "abc", true, false},
		{"escaped-quote", "displayName eq 'O''Brien'", "displayName", "O'Brien", true, false},
		{"spaces", "  displayName   eq   'a b'  ", "displayName", "a b", true, false},
		{"unknown-property", "secret eq 'x'", "", "", false, false},
		{"startswith", "startswith(displayName,'a''b')", "displayName", "a'b", true, true},
		{"any", "identifierUris/any(c:c eq 'api://x')", "identifierUris", "api://x", true, false},
		{"any-other-variable", "identifierUris/any(c:d eq 'api://x')", "", "", false, false},
		{"other-function", "endswith(displayName,'a')", "", "", false, false},
		{"unterminated", "appId eq 'abc", "", "", false, false},
		{"two-clauses", "appId eq 'a' and displayName eq 'b'", "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(tt.filter), nil)
			f, err := filter(r, "appId", "displayName", "identifierUris")
			if (err == nil) != tt.ok || f.Prop != tt.prop || f.Value != tt.value || f.Prefix != tt.prefix {
				t.Fatalf("filter(%q) = %+v, %v", tt.filter, f, err)
			}
		})
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("appId eq 'x'")
	f.Add("displayName eq 'a''b'")
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(s), nil)
		f, err := filter(r, "appId", "displayName")
		if err == nil && f.Prop != "" && f.Prop != "appId" && f.Prop != "displayName" {
			t.Fatalf("property %q not allowed", f.Prop)
		}
		if err == nil && f.Prop != "" && !f.keeps(f.Prop, f.Value) {
			t.Fatalf("%+v does not keep its own value", f)
		}
	})
}
