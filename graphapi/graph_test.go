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
	}{
		{"none", "", "", "", true},
		{"app-id", "appId eq 'abc'", "appId", "abc", true},
		{"case-insensitive-property", "APPID eq 'abc'", "appId", "abc", true},
		{"escaped-quote", "displayName eq 'O''Brien'", "displayName", "O'Brien", true},
		{"spaces", "  displayName   eq   'a b'  ", "displayName", "a b", true},
		{"unknown-property", "secret eq 'x'", "", "", false},
		{"function", "startswith(displayName,'a')", "", "", false},
		{"unterminated", "appId eq 'abc", "", "", false},
		{"two-clauses", "appId eq 'a' and displayName eq 'b'", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(tt.filter), nil)
			prop, val, err := filter(r, "appId", "displayName")
			if (err == nil) != tt.ok || prop != tt.prop || val != tt.value {
				t.Fatalf("filter(%q) = %q, %q, %v", tt.filter, prop, val, err)
			}
		})
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("appId eq 'x'")
	f.Add("displayName eq 'a''b'")
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(s), nil)
		prop, _, err := filter(r, "appId", "displayName")
		if err == nil && prop != "" && prop != "appId" && prop != "displayName" {
			t.Fatalf("property %q not allowed", prop)
		}
	})
}
