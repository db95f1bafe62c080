package graphapi_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestAlternateKey drives applications(appId='…') and
// servicePrincipals(appId='…') on both backends: each answers as the
// object id's route does — reads, writes and sub-resources, the same
// authorization (an owner without a role, a stranger), 404 for an appId
// that names nothing — and a malformed key is Graph's 400.
func TestAlternateKey(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		w := newWorld(t, store)
		_, adminTok := w.user("admin", directory.RoleApplicationAdministrator)
		alice, aliceTok := w.user("alice")
		_, bobTok := w.user("bob")
		app := w.call(adminTok, "POST", "/v1.0/applications", `{"displayName":"keyed","gatehouseCreateServicePrincipal":true}`, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		a, err := w.dir.Application(id)
		must(t, err)
		spID := a.ObjectID
		appKey := "/v1.0/applications(appId='" + appID + "')"
		spKey := "/v1.0/servicePrincipals(appId=%27" + strings.ToUpper(appID) + "%27)" // quotes encoded, appId in upper case

		if got := w.call(adminTok, "GET", appKey, "", 200); got["id"] != id || got["appId"] != appID {
			t.Fatalf("application by appId: %v", got)
		}
		if got := w.call(adminTok, "GET", spKey, "", 200); got["id"] != spID || got["@odata.context"] != "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity" {
			t.Fatalf("service principal by appId: %v", got)
		}
		// Writes and sub-resources, as the id routes serve them.
		w.call(adminTok, "PATCH", appKey, `{"displayName":"keyed, renamed"}`, 204)
		w.call(adminTok, "POST", spKey+"/owners/$ref", ref(alice.ObjectID), 204)
		if got := ids(w.call(adminTok, "GET", spKey+"/owners", "", 200)); !slices.Contains(got, alice.ObjectID) {
			t.Fatalf("owners by appId: %v", got)
		}
		// alice owns the service principal, not the application: the same
		// answers as by object id.
		if got := w.call(aliceTok, "GET", spKey, "", 200); got["displayName"] != "keyed, renamed" {
			t.Fatalf("the owner reads %v", got)
		}
		w.call(aliceTok, "GET", appKey, "", 403)
		w.call(aliceTok, "GET", "/v1.0/applications/"+id, "", 403)
		pw := w.call(aliceTok, "POST", spKey+"/addPassword", `{"passwordCredential":{"displayName":"by key"}}`, 200)
		if sp := w.call(adminTok, "GET", "/v1.0/servicePrincipals/"+spID, "", 200); len(sp["passwordCredentials"].([]any)) != 1 {
			t.Fatalf("the secret added by appId is not the service principal's: %v", sp["passwordCredentials"])
		}
		w.call(aliceTok, "POST", spKey+"/removePassword", `{"keyId":"`+pw["keyId"].(string)+`"}`, 204)
		w.call(bobTok, "GET", spKey, "", 403)
		w.call(bobTok, "PATCH", spKey, `{"accountEnabled":false}`, 403)
		w.call(adminTok, "POST", appKey+"/federatedIdentityCredentials", `{"name":"by-key","issuer":"https://ci.example.test","subject":"s"}`, 201)
		if got := w.call(adminTok, "GET", appKey+"/federatedIdentityCredentials/by-key", "", 200); got["name"] != "by-key" {
			t.Fatalf("federated credential by appId: %v", got)
		}

		// A managed identity's service principal, by its client id.
		mi, err := w.dir.CreateManagedIdentity(t.Context(), directory.ManagedIdentitySpec{
			ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/keyed"})
		must(t, err)
		if got := w.call(adminTok, "GET", "/v1.0/servicePrincipals(appId='"+mi.ClientID+"')", "", 200); got["id"] != mi.PrincipalID {
			t.Fatalf("managed identity by appId: %v", got)
		}

		// An appId that names nothing: 404 naming it, after authorization
		// (a caller without a role learns nothing: 403 as for an id).
		unknown := gatehouse.NewGUID()
		for _, p := range []string{"/v1.0/applications(appId='" + unknown + "')", "/v1.0/servicePrincipals(appId='" + unknown + "')/owners"} {
			m := w.call(adminTok, "GET", p, "", 404)
			if code, msg := errOf(m); code != "Request_ResourceNotFound" || !strings.Contains(msg, unknown) {
				t.Fatalf("%s: %v", p, m)
			}
			w.call(bobTok, "GET", p, "", 403)
		}
		// An object id is not an appId.
		w.call(adminTok, "GET", "/v1.0/applications(appId='"+id+"')", "", 404)
		w.call(adminTok, "DELETE", "/v1.0/applications(appId='"+unknown+"')", "", 404)

		for _, tt := range []struct{ name, path string }{
			{"unquoted", "/v1.0/servicePrincipals(appId=" + appID + ")"},
			{"one-quote", "/v1.0/servicePrincipals(appId='" + appID + ")"},
			{"not-a-guid", "/v1.0/servicePrincipals(appId='abc')"},
			{"empty", "/v1.0/applications(appId='')"},
			{"no-value", "/v1.0/applications()"},
			{"unclosed", "/v1.0/applications(appId='" + appID + "'"},
			{"other-key", "/v1.0/applications(uniqueName='x')"},
			{"encoded-slash", "/v1.0/applications(appId=%27a%2Fb%27)"},
			{"sub-resource", "/v1.0/applications(appId=x)/owners"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				m := w.call(adminTok, "GET", tt.path, "", 400)
				if code, _ := errOf(m); code != "Request_BadRequest" {
					t.Fatalf("%v", m)
				}
				w.call("", "GET", tt.path, "", 401)
			})
		}

		w.call(adminTok, "DELETE", spKey, "", 204)
		w.call(adminTok, "GET", spKey, "", 404)
		w.call(adminTok, "DELETE", appKey, "", 204)
		w.call(adminTok, "GET", "/v1.0/applications/"+id, "", 404)
	})
}

// TestTopAndSelect pages lists with $top through their nextLinks, on
// both backends, and selects properties of lists and of single objects.
func TestTopAndSelect(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		w := newWorld(t, store)
		_, adminTok := w.user("admin", directory.RoleGlobalAdministrator)
		grp := w.call(adminTok, "POST", "/v1.0/groups", `{"displayName":"paged","mailNickname":"paged"}`, 201)["id"].(string)
		var want []string
		for _, name := range []string{"u1", "u2", "u3", "u4", "u5"} {
			u, _ := w.user(name)
			want = append(want, u.ObjectID)
			w.call(adminTok, "POST", "/v1.0/groups/"+grp+"/members/$ref", ref(u.ObjectID), 204)
		}

		// follow pages path with $top, checking each page's size, and
		// returns the ids seen and the number of pages.
		follow := func(path string, top int) (seen []string, pages int) {
			t.Helper()
			for path != "" {
				m := w.call(adminTok, "GET", path, "", 200)
				if n := len(m["value"].([]any)); n > top || n == 0 {
					t.Fatalf("%s: %d items", path, n)
				}
				seen = append(seen, ids(m)...)
				pages++
				next, _ := m["@odata.nextLink"].(string)
				if next != "" {
					rest, ok := strings.CutPrefix(next, "https://gatehouse.test/v1.0/")
					if !ok || !strings.Contains(next, "$skiptoken=") || !strings.Contains(next, "$top=") {
						t.Fatalf("nextLink %q", next)
					}
					next = "/v1.0/" + rest
				}
				path = next
			}
			return seen, pages
		}
		members, pages := follow("/v1.0/groups/"+grp+"/members?$top=2", 2)
		if pages != 3 || !sameSet(members, want) {
			t.Fatalf("members in %d pages: %v, want %v", pages, members, want)
		}
		users, _ := follow("/v1.0/users?$top=1&$select=id", 1)
		all := ids(w.call(adminTok, "GET", "/v1.0/users", "", 200))
		if !sameSet(users, all) || len(all) != 6 {
			t.Fatalf("users paged %v, whole %v", users, all)
		}
		if m := w.call(adminTok, "GET", "/v1.0/users?$top=999", "", 200); m["@odata.nextLink"] != nil || len(ids(m)) != 6 {
			t.Fatalf("one page: %v", m)
		}
		m := w.call(adminTok, "GET", "/v1.0/users?$top=4&$count=true", "", 200)
		if m["@odata.count"] != float64(6) || len(ids(m)) != 4 {
			t.Fatalf("$count with $top: %v", m)
		}
		// A member removed between two pages hides no other.
		first := w.call(adminTok, "GET", "/v1.0/groups/"+grp+"/members?$top=2", "", 200)
		gone := ids(first)[1]
		w.call(adminTok, "DELETE", "/v1.0/groups/"+grp+"/members/"+gone+"/$ref", "", 204)
		rest, _ := follow("/v1.0/"+strings.TrimPrefix(first["@odata.nextLink"].(string), "https://gatehouse.test/v1.0/"), 2)
		if got := append(ids(first), rest...); !sameSet(got, want) {
			t.Fatalf("after a removal: %v, want %v", got, want)
		}

		// $select on an object and on a list.
		u := want[0]
		one := w.call(adminTok, "GET", "/v1.0/users/"+u+"?$select=displayName,ID", "", 200)
		if len(one) != 3 || one["id"] != u || one["displayName"] == nil || one["@odata.context"] != "https://graph.microsoft.com/v1.0/$metadata#users(displayName,id)/$entity" {
			t.Fatalf("selected user: %v", one)
		}
		for _, v := range w.call(adminTok, "GET", "/v1.0/users?$select=userPrincipalName", "", 200)["value"].([]any) {
			if o := v.(map[string]any); len(o) != 1 || o["userPrincipalName"] == nil {
				t.Fatalf("selected list item: %v", o)
			}
		}
		sp := w.call(adminTok, "POST", "/v1.0/applications", `{"displayName":"sel","gatehouseCreateServicePrincipal":true}`, 201)
		got := w.call(adminTok, "GET", "/v1.0/servicePrincipals(appId='"+sp["appId"].(string)+"')?$select=appId", "", 200)
		if len(got) != 2 || got["appId"] != sp["appId"] {
			t.Fatalf("selected by appId: %v", got)
		}
		if m := w.call(adminTok, "GET", "/v1.0/groups/"+grp+"/members?$select=displayName,userPrincipalName&$top=1", "", 200); len(m["value"].([]any)[0].(map[string]any)) != 3 {
			t.Fatalf("members with $select keep their @odata.type: %v", m)
		}

		for _, tt := range []struct{ name, path, code, msg string }{
			{"top-zero", "/v1.0/users?$top=0", "Request_UnsupportedQuery", "Invalid page size specified: '0'. Must be between 1 and 999 inclusive."},
			{"top-too-big", "/v1.0/groups/" + grp + "/members?$top=1000", "Request_UnsupportedQuery", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."},
			{"top-negative", "/v1.0/applications?$top=-1", "Request_UnsupportedQuery", ""},
			{"top-not-a-number", "/v1.0/servicePrincipals?$top=ten", "Request_BadRequest", ""},
			{"top-huge", "/v1.0/users?$top=99999999999999999999999", "Request_BadRequest", ""},
			{"skiptoken-garbage", "/v1.0/users?$top=1&$skiptoken=abc", "Request_BadRequest", ""},
			{"skiptoken-bad-hex", "/v1.0/users?$skiptoken=X%27ZZ%27", "Request_BadRequest", ""},
			{"skiptoken-no-prefix", "/v1.0/users?$skiptoken=3031%27", "Request_BadRequest", ""},
			{"select-unknown", "/v1.0/users?$select=id,passwordHash", "Request_BadRequest", "Could not find a property named 'passwordHash' on type 'microsoft.graph.user'."},
			{"select-unknown-object", "/v1.0/groups/" + grp + "?$select=owners", "Request_BadRequest", "Could not find a property named 'owners' on type 'microsoft.graph.group'."},
			{"select-unknown-sp", "/v1.0/servicePrincipals?$select=secret", "Request_BadRequest", "Could not find a property named 'secret' on type 'microsoft.graph.servicePrincipal'."},
			{"select-annotation", "/v1.0/users?$select=" + url.QueryEscape("@odata.context"), "Request_BadRequest", ""},
			{"select-empty-item", "/v1.0/users?$select=id,,displayName", "Request_BadRequest", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				m := w.call(adminTok, "GET", tt.path, "", 400)
				if code, msg := errOf(m); code != tt.code || tt.msg != "" && msg != tt.msg {
					t.Fatalf("%v", m)
				}
			})
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
