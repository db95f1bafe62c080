package graphapi

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestFilter(t *testing.T) {
	eq := func(prop, value string) filterClause { return filterClause{Prop: prop, Value: value} }
	tests := []struct {
		name, filter string
		want         graphFilter // nil with ok false: an error
		ok           bool
	}{
		{"none", "", nil, true},
		{"app-id", "appId eq 'abc'", graphFilter{eq("appId", "abc")}, true},
		{"case-insensitive-property", "APPID eq 'abc'", graphFilter{eq("appId", "abc")}, true},
		{"escaped-quote", "displayName eq 'O''Brien'", graphFilter{eq("displayName", "O'Brien")}, true},
		{"spaces", "  displayName   eq   'a b'  ", graphFilter{eq("displayName", "a b")}, true},
		{"unknown-property", "secret eq 'x'", nil, false},
		{"startswith", "startswith(displayName,'a''b')", graphFilter{{Prop: "displayName", Value: "a'b", Prefix: true}}, true},
		{"any", "identifierUris/any(c:c eq 'api://x')", graphFilter{eq("identifierUris", "api://x")}, true},
		{"any-other-variable", "identifierUris/any(c:d eq 'api://x')", nil, false},
		{"other-function", "endswith(displayName,'a')", nil, false},
		{"unterminated", "appId eq 'abc", nil, false},
		{"two-clauses", "appId eq 'a' and displayName eq 'b and c'", graphFilter{eq("appId", "a"), eq("displayName", "b and c")}, true},
		{"or", "appId eq 'a' or displayName eq 'b'", nil, false},
		{"dangling-and", "appId eq 'a' and ", nil, false},
		{"five-clauses", strings.Repeat("appId eq 'a' and ", 4) + "appId eq 'a'", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(tt.filter), nil)
			f, err := filter(r, "appId", "displayName", "identifierUris")
			if (err == nil) != tt.ok || !slices.Equal(f, tt.want) {
				t.Fatalf("filter(%q) = %+v, %v", tt.filter, f, err)
			}
		})
	}
	f := graphFilter{eq("displayName", "Team"), {Prop: "mailNickname", Value: "te", Prefix: true}}
	if !f.keeps("displayName", "team") || !f.keeps("mailNickname", "Team-a") || f.keeps("mailNickname", "x") || !f.keeps("appId", "anything") {
		t.Fatal("keeps")
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("appId eq 'x'")
	f.Add("displayName eq 'a''b'")
	f.Add("appId eq 'a' and startswith(displayName,'b')")
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "/v1.0/applications?$filter="+url.QueryEscape(s), nil)
		f, err := filter(r, "appId", "displayName")
		if err != nil {
			return
		}
		for _, c := range f {
			if c.Prop != "appId" && c.Prop != "displayName" {
				t.Fatalf("property %q not allowed", c.Prop)
			}
			if !(graphFilter{c}).keeps(c.Prop, c.Value) {
				t.Fatalf("%+v does not keep its own value", c)
			}
		}
	})
}

func FuzzRefObjectID(f *testing.F) {
	f.Add("https://graph.microsoft.com/v1.0/directoryObjects/0b3f6e4e-5d8a-4b2f-9c1a-2e7d9f0a1b2c")
	f.Add("https://localhost:8443/v1.0/users/0B3F6E4E-5D8A-4B2F-9C1A-2E7D9F0A1B2C/")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, s string) {
		oid, ok := refObjectID(s)
		if ok != (oid != "") || ok && strings.ToLower(oid) != oid {
			t.Fatalf("refObjectID(%q) = %q, %v", s, oid, ok)
		}
	})
}

// TestSearch: $search's "<property>:<term>" clauses, with Graph's
// ConsistencyLevel header, match a prefix of any word of the property.
func TestSearch(t *testing.T) {
	s := func(prop, term string) filterClause { return filterClause{Prop: prop, Value: term, Search: true} }
	for _, tt := range []struct {
		name, search string
		eventual     bool
		want         graphFilter
		ok           bool
	}{
		{"one", `"displayName:web"`, true, graphFilter{s("displayName", "web")}, true},
		{"two", `"displayName:web" AND "appId:12"`, true, graphFilter{s("displayName", "web"), s("appId", "12")}, true},
		{"without-the-header", `"displayName:web"`, false, nil, false},
		{"unquoted", `displayName:web`, true, nil, false},
		{"or", `"displayName:a" OR "displayName:b"`, true, nil, false},
		{"unknown-property", `"secret:x"`, true, nil, false},
		{"trailing-and", `"displayName:a" AND`, true, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1.0/applications?$search="+url.QueryEscape(tt.search), nil)
			if tt.eventual {
				r.Header.Set("ConsistencyLevel", "eventual")
			}
			f, err := filter(r, "appId", "displayName")
			if (err == nil) != tt.ok || !slices.Equal(f, tt.want) {
				t.Fatalf("$search %q = %+v, %v", tt.search, f, err)
			}
		})
	}
	f := graphFilter{s("displayName", "web")}
	for v, want := range map[string]bool{"Contoso Web App": true, "webhooks": true, "my-web": true, "cobweb": false, "": false} {
		if f.keeps("displayName", v) != want {
			t.Errorf("%q: keeps %v, want %v", v, !want, want)
		}
	}
}

func FuzzParseAltKey(f *testing.F) {
	f.Add("(appId='0B3F6E4E-5D8A-4B2F-9C1A-2E7D9F0A1B2C')")
	f.Add("(appId=x)")
	f.Add("(uniqueName='x')")
	f.Add("(')")
	f.Fuzz(func(t *testing.T, key string) {
		id, err := parseAltKey("applications", key)
		if (err == nil) != (id != "") || err == nil && (!gatehouse.IsGUID(id) || strings.ToLower(id) != id) {
			t.Fatalf("parseAltKey(%q) = %q, %v", key, id, err)
		}
		if err != nil && gatehouse.ErrorStatus(err) != 400 {
			t.Fatalf("parseAltKey(%q): %v", key, err)
		}
	})
}

// FuzzQueryOptions: $top, $skiptoken and $select never panic, and what
// they accept is in range (a 400 otherwise).
func FuzzQueryOptions(f *testing.F) {
	f.Add("5", "X'3031'", "id,displayName")
	f.Add("0", "X''", "*")
	f.Add("1000", "abc", "id,,x")
	f.Fuzz(func(t *testing.T, top, token, sel string) {
		q := url.Values{"$top": {top}, "$skiptoken": {token}, "$select": {sel}}
		if n, err := parseTop(q, true); err == nil && (n < 1 || n > maxTop) || err != nil && gatehouse.ErrorStatus(err) != 400 {
			t.Fatalf("parseTop(%q) = %d, %v", top, n, err)
		}
		if after, ok, err := parseSkipToken(q, true); err == nil && (!ok || skipToken(after) != strings.ToUpper(skipToken(after))) || err != nil && gatehouse.ErrorStatus(err) != 400 {
			t.Fatalf("parseSkipToken(%q) = %q, %v, %v", token, after, ok, err)
		}
		known := []string{"id", "displayName"}
		s, err := parseSelect(q, "microsoft.graph.user", known)
		if err != nil && gatehouse.ErrorStatus(err) != 400 {
			t.Fatal(err)
		}
		for _, p := range s {
			if !slices.Contains(known, p) {
				t.Fatalf("parseSelect(%q) selects %q", sel, p)
			}
		}
	})
}

func TestSkipTokenRoundTrip(t *testing.T) {
	for _, id := range []string{"0b3f6e4e-5d8a-4b2f-9c1a-2e7d9f0a1b2c", "role_0b3f6e4e", "ü"} {
		q := url.Values{"$skiptoken": {skipToken(id)}}
		if got, ok, err := parseSkipToken(q, true); err != nil || !ok || got != strings.ToLower(id) {
			t.Fatalf("%q: %q %v %v", id, got, ok, err)
		}
	}
}
