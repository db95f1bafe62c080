package graphapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/graphapi"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// world is one node's directory, authority and Graph API over a store,
// called in process.
type world struct {
	t     *testing.T
	dir   *directory.Directory
	auth  *authority.Authority
	mux   *http.ServeMux
	audit *memAudit
}

func newWorld(t *testing.T, store storage.Store) *world {
	t.Helper()
	k, err := keyring.Generate(rand.Reader, 1)
	must(t, err)
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	must(t, err)
	w := teststore.NewWatcher(store)
	dir := directory.New(directory.Options{Store: store, Watcher: w, PasswordParams: directory.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	auth, err := authority.New(authority.Options{Store: store, Watcher: w, Sealer: kr, Directory: dir, Host: "gatehouse.test"})
	must(t, err)
	teststore.StartWatcher(t, w, dir.Load, func(ctx context.Context) error {
		_, _, err := dir.EnsureDefaultTenant(ctx)
		return err
	}, auth.Start)
	api := graphapi.New(dir, auth, nil)
	wd := &world{t: t, dir: dir, auth: auth, mux: http.NewServeMux(), audit: &memAudit{}}
	api.Audit = wd.audit
	api.Mount(wd.mux)
	// As the server's not-found hook does (app/identity.go).
	wd.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !api.ServeAlternateKey(w, r) {
			http.NotFound(w, r)
		}
	}))
	return wd
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// user creates a person with roles and returns them with a Graph token.
func (w *world) user(name string, roles ...string) (*directory.User, string) {
	w.t.Helper()
	u, err := w.dir.CreateUser(w.t.Context(), directory.UserSpec{UserName: name + "@owners.test", Password: "a long enough password", Roles: roles})
	must(w.t, err)
	return u, w.token(gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: u.ObjectID, TenantID: u.TenantID, Name: u.UserName})
}

func (w *world) token(p gatehouse.Principal) string {
	w.t.Helper()
	tok, _, err := w.auth.Issue(w.t.Context(), p, "https://graph.microsoft.com", time.Hour, nil)
	must(w.t, err)
	return tok
}

// call sends a Graph request and checks the status; it returns the decoded
// body (nil when empty).
func (w *world) call(tok, method, path, body string, want int) map[string]any {
	w.t.Helper()
	r := httptest.NewRequest(method, "https://gatehouse.test"+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	w.mux.ServeHTTP(rec, r)
	if rec.Code != want {
		w.t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
	}
	if rec.Body.Len() == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		w.t.Fatalf("%s %s: not JSON: %q", method, path, rec.Body)
	}
	return m
}

func errOf(m map[string]any) (code, msg string) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

func ids(m map[string]any) []string {
	var out []string
	for _, v := range m["value"].([]any) {
		out = append(out, v.(map[string]any)["id"].(string))
	}
	return out
}

// ref is the body az ad app owner add sends: the object's URL at the
// Graph endpoint az was given (here, the server itself).
func ref(oid string) string {
	return `{"@odata.id": "https://gatehouse.test/v1.0/directoryObjects/` + oid + `"}`
}

type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (m *memAudit) Append(ctx context.Context, e audit.Entry) (*audit.Record, error) {
	for name := range e.Details {
		if !audit.AllowedDetails[name] {
			return nil, audit.ErrInvalidEntry
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return &audit.Record{Entry: e}, nil
}

func (m *memAudit) find(action, result string) []audit.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Entry
	for _, e := range m.entries {
		if e.Action == action && string(e.Result) == result {
			out = append(out, e)
		}
	}
	return out
}

// TestOwners drives the owner routes and what owning grants, on both
// backends: an administrator creates an application (and owns it), makes
// a person without a role its owner, who then manages it — credentials,
// federated credentials, owners, its service principal — while a person
// who owns nothing is refused everything, and an owner is refused every
// write on an application that holds a directory role.
func TestOwners(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		w := newWorld(t, store)
		admin, adminTok := w.user("admin", directory.RoleApplicationAdministrator)
		alice, aliceTok := w.user("alice")
		bob, bobTok := w.user("bob")

		app := w.call(adminTok, "POST", "/v1.0/applications", `{"displayName":"owned"}`, 201)
		id, appID := app["id"].(string), app["appId"].(string)
		if got := ids(w.call(adminTok, "GET", "/v1.0/applications/"+id+"/owners", "", 200)); len(got) != 1 || got[0] != admin.ObjectID {
			t.Fatalf("the creator is not the owner: %v", got)
		}
		// Before alice owns it, she sees nothing of it.
		w.call(aliceTok, "GET", "/v1.0/applications/"+id, "", 403)
		if got := w.call(aliceTok, "GET", "/v1.0/applications", "", 200); len(ids(got)) != 0 {
			t.Fatalf("alice lists %v", ids(got))
		}
		w.call(aliceTok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref(alice.ObjectID), 403)

		w.call(adminTok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref(alice.ObjectID), 204)
		m := w.call(adminTok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref(alice.ObjectID), 400)
		if code, msg := errOf(m); code != "Request_BadRequest" || msg != "One or more added object references already exist for the following modified properties: 'owners'." {
			t.Fatalf("adding an owner twice: %v", m)
		}
		owners := w.call(aliceTok, "GET", "/v1.0/applications/"+appID+"/owners", "", 200)
		if got := ids(owners); len(got) != 2 || got[1] != alice.ObjectID {
			t.Fatalf("owners: %v", got)
		}
		if v := owners["value"].([]any)[1].(map[string]any); v["@odata.type"] != "#microsoft.graph.user" || v["userPrincipalName"] != alice.UserName {
			t.Fatalf("an owner's view: %v", v)
		}

		// What alice may now do, as its owner.
		if got := ids(w.call(aliceTok, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+appID+"'"), "", 200)); len(got) != 1 || got[0] != id {
			t.Fatalf("alice's filtered list: %v", got)
		}
		w.call(aliceTok, "GET", "/v1.0/applications/"+id, "", 200)
		w.call(aliceTok, "PATCH", "/v1.0/applications/"+id, `{"displayName":"renamed by alice"}`, 204)
		pw := w.call(aliceTok, "POST", "/v1.0/applications/"+id+"/addPassword", `{"passwordCredential":{"displayName":"alice"}}`, 200)
		w.call(aliceTok, "POST", "/v1.0/applications/"+id+"/removePassword", `{"keyId":"`+pw["keyId"].(string)+`"}`, 204)
		w.call(aliceTok, "POST", "/v1.0/applications/"+id+"/federatedIdentityCredentials",
			`{"name":"ci-main","issuer":"https://ci.example.test","subject":"main"}`, 201)
		w.call(aliceTok, "GET", "/v1.0/applications/"+id+"/federatedIdentityCredentials", "", 200)
		w.call(aliceTok, "DELETE", "/v1.0/applications/"+id+"/federatedIdentityCredentials/ci-main", "", 204)
		w.call(aliceTok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref(bob.ObjectID), 204)
		w.call(aliceTok, "DELETE", "/v1.0/applications/"+id+"/owners/"+bob.ObjectID+"/$ref", "", 204)
		w.call(aliceTok, "DELETE", "/v1.0/applications/"+id+"/owners/"+bob.ObjectID+"/$ref", "", 404)
		// Its service principal: alice creates it and owns it.
		sp := w.call(aliceTok, "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`, 201)
		spID := sp["id"].(string)
		if got := ids(w.call(aliceTok, "GET", "/v1.0/servicePrincipals/"+spID+"/owners", "", 200)); len(got) != 1 || got[0] != alice.ObjectID {
			t.Fatalf("service principal owners: %v", got)
		}
		if got := ids(w.call(aliceTok, "GET", "/v1.0/servicePrincipals", "", 200)); len(got) != 1 || got[0] != spID {
			t.Fatalf("alice's service principals: %v", got)
		}
		w.call(aliceTok, "PATCH", "/v1.0/servicePrincipals/"+spID, `{"accountEnabled":true}`, 204)
		w.call(aliceTok, "POST", "/v1.0/servicePrincipals/"+spID+"/addPassword", `{}`, 200)
		mine := w.call(aliceTok, "GET", "/v1.0/me/ownedObjects", "", 200)["value"].([]any)
		if len(mine) != 2 || mine[0].(map[string]any)["@odata.type"] != "#microsoft.graph.application" || mine[1].(map[string]any)["@odata.type"] != "#microsoft.graph.servicePrincipal" {
			t.Fatalf("alice's owned objects: %v", mine)
		}

		// Bob owns nothing: refused, and an unknown id looks the same.
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1.0/applications/" + id, ""},
			{"GET", "/v1.0/applications/" + id + "/owners", ""},
			{"PATCH", "/v1.0/applications/" + id, `{"displayName":"bob's"}`},
			{"POST", "/v1.0/applications/" + id + "/addPassword", `{}`},
			{"POST", "/v1.0/applications/" + id + "/addKey", `{"keyCredential":{"key":"AAAA"},"proof":""}`},
			{"POST", "/v1.0/applications/" + id + "/federatedIdentityCredentials", `{"name":"bob","issuer":"https://b.example.test","subject":"s"}`},
			{"POST", "/v1.0/applications/" + id + "/owners/$ref", ref(bob.ObjectID)},
			{"DELETE", "/v1.0/applications/" + id + "/owners/" + alice.ObjectID + "/$ref", ""},
			{"DELETE", "/v1.0/applications/" + id, ""},
			{"POST", "/v1.0/servicePrincipals", `{"appId":"` + appID + `"}`},
			{"POST", "/v1.0/servicePrincipals/" + spID + "/addPassword", `{}`},
			{"POST", "/v1.0/servicePrincipals/" + spID + "/owners/$ref", ref(bob.ObjectID)},
			{"DELETE", "/v1.0/servicePrincipals/" + spID, ""},
			{"POST", "/v1.0/applications/" + gatehouse.NewGUID() + "/addPassword", `{}`},
			{"POST", "/v1.0/servicePrincipals", `{"appId":"` + gatehouse.NewGUID() + `"}`},
		} {
			if code, _ := errOf(w.call(bobTok, c.method, c.path, c.body, 403)); code != "Authorization_RequestDenied" {
				t.Fatalf("bob's %s %s: %s", c.method, c.path, code)
			}
		}
		// An application owner does not own its service principal.
		w.call(adminTok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref(bob.ObjectID), 204)
		w.call(bobTok, "POST", "/v1.0/servicePrincipals/"+spID+"/addPassword", `{}`, 403)
		w.call(bobTok, "POST", "/v1.0/applications/"+id+"/addPassword", `{}`, 200)

		// An application that holds a directory role is written only by
		// administrators, whoever owns it; its owners may still read it.
		roles := []string{directory.RoleDirectoryReaders}
		_, err := w.dir.UpdateApplication(t.Context(), appID, directory.ApplicationUpdate{Roles: &roles})
		must(t, err)
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1.0/applications/" + id + "/addPassword", `{}`},
			{"POST", "/v1.0/servicePrincipals/" + spID + "/addPassword", `{}`},
			{"PATCH", "/v1.0/applications/" + id, `{"keyCredentials":[]}`},
			{"POST", "/v1.0/applications/" + id + "/federatedIdentityCredentials", `{"name":"xyz","issuer":"https://x.example.test","subject":"s"}`},
			{"POST", "/v1.0/applications/" + id + "/owners/$ref", ref(admin.ObjectID)},
			{"PATCH", "/v1.0/servicePrincipals/" + spID, `{"accountEnabled":true}`},
			{"DELETE", "/v1.0/applications/" + id, ""},
		} {
			m := w.call(aliceTok, c.method, c.path, c.body, 403)
			if code, msg := errOf(m); code != "Authorization_RequestDenied" || !strings.Contains(msg, "directory role") {
				t.Fatalf("an owner's %s %s on an application with a directory role: %v", c.method, c.path, m)
			}
		}
		w.call(aliceTok, "GET", "/v1.0/applications/"+id, "", 200)
		w.call(adminTok, "POST", "/v1.0/applications/"+id+"/addPassword", `{}`, 200)
		roles = nil
		_, err = w.dir.UpdateApplication(t.Context(), appID, directory.ApplicationUpdate{Roles: &roles})
		must(t, err)

		// Deleting a person takes them off the lists; an owner deletes the
		// application.
		must(t, w.dir.DeleteUser(t.Context(), bob.ObjectID))
		if got := ids(w.call(adminTok, "GET", "/v1.0/applications/"+id+"/owners", "", 200)); len(got) != 2 {
			t.Fatalf("owners after bob's deletion: %v", got)
		}
		w.call(aliceTok, "DELETE", "/v1.0/applications/"+id, "", 204)
		w.call(adminTok, "GET", "/v1.0/applications/"+id+"/owners", "", 404)

		// The writes are audited; those ownership let through say so.
		granted := w.audit.find("POST /v1.0/applications/{id}/addPassword", "Succeeded")
		if len(granted) != 3 || granted[0].Details["grantedBy"] != "owner" || granted[2].Details["grantedBy"] != "" {
			t.Fatalf("addPassword audit entries: %+v", granted)
		}
		added := w.audit.find("POST /v1.0/applications/{id}/owners/$ref", "Succeeded")
		if len(added) != 3 || added[0].Details["principalId"] != alice.ObjectID || added[1].Details["grantedBy"] != "owner" {
			t.Fatalf("owner add audit entries: %+v", added)
		}
		if d := w.audit.find("POST /v1.0/applications/{id}/addPassword", "Denied"); len(d) < 3 {
			t.Fatalf("denied addPassword entries: %d", len(d))
		}
		if d := w.audit.find("DELETE /v1.0/applications/{id}/owners/{oid}/$ref", "Failed"); len(d) != 1 || d[0].Status != 404 {
			t.Fatalf("a failed owner removal: %+v", d)
		}
	})
}

// TestOwnersBadInput: malformed and unknown references are 400 and 404 as
// Graph answers them, never a 500, and change nothing.
func TestOwnersBadInput(t *testing.T) {
	w := newWorld(t, teststore.SQLite(t))
	_, adminTok := w.user("admin", directory.RoleGlobalAdministrator)
	app := w.call(adminTok, "POST", "/v1.0/applications", `{"displayName":"target","gatehouseCreateServicePrincipal":true}`, 201)
	id := app["id"].(string)
	grp, err := w.dir.CreateGroup(t.Context(), directory.GroupSpec{DisplayName: "g", MailNickname: "g"})
	must(t, err)
	noSP, err := w.dir.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "nosp"})
	must(t, err)
	mi, err := w.dir.CreateManagedIdentity(t.Context(), directory.ManagedIdentitySpec{
		ResourceID: "/subscriptions/" + gatehouse.NewGUID() + "/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi"})
	must(t, err)
	unknown := gatehouse.NewGUID()
	owners := "/v1.0/applications/" + id + "/owners"
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"unknown-object", "POST", owners + "/$ref", ref(unknown), 404, "Request_ResourceNotFound",
			"Resource '" + unknown + "' does not exist or one of its queried reference-property objects are not present."},
		{"application-without-service-principal", "POST", owners + "/$ref", ref(noSP.ObjectID), 404, "Request_ResourceNotFound", ""},
		{"group", "POST", owners + "/$ref", ref(grp.ObjectID), 400, "Request_BadRequest", ""},
		{"not-json", "POST", owners + "/$ref", `{"@odata.id":`, 400, "Request_BadRequest", ""},
		{"not-an-object", "POST", owners + "/$ref", `["x"]`, 400, "Request_BadRequest", ""},
		{"empty-body", "POST", owners + "/$ref", ``, 400, "Request_BadRequest", ""},
		{"no-reference", "POST", owners + "/$ref", `{}`, 400, "Request_BadRequest", ""},
		{"reference-not-a-string", "POST", owners + "/$ref", `{"@odata.id":5}`, 400, "Request_InvalidValue", ""},
		{"reference-not-an-id", "POST", owners + "/$ref", `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/alice"}`, 400, "Request_BadRequest", ""},
		{"reference-with-query", "POST", owners + "/$ref", `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/` + unknown + `?x=1"}`, 400, "Request_BadRequest", ""},
		{"reference-unparseable", "POST", owners + "/$ref", `{"@odata.id":"%zz"}`, 400, "Request_BadRequest", ""},
		{"unknown-field", "POST", owners + "/$ref", `{"@odata.id":"x","extra":1}`, 400, "Request_BadRequest", ""},
		{"unknown-application", "POST", "/v1.0/applications/" + unknown + "/owners/$ref", ref(unknown), 404, "Request_ResourceNotFound", ""},
		{"unknown-application-list", "GET", "/v1.0/applications/" + unknown + "/owners", "", 404, "Request_ResourceNotFound", ""},
		{"remove-non-owner", "DELETE", owners + "/" + unknown + "/$ref", "", 404, "Request_ResourceNotFound", ""},
		{"remove-malformed", "DELETE", owners + "/not-a-guid/$ref", "", 404, "Request_ResourceNotFound", ""},
		{"sp-unknown", "GET", "/v1.0/servicePrincipals/" + unknown + "/owners", "", 404, "Request_ResourceNotFound", ""},
		{"sp-managed-identity-add", "POST", "/v1.0/servicePrincipals/" + mi.PrincipalID + "/owners/$ref", ref(unknown), 400, "Request_BadRequest", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := w.call(adminTok, tt.method, tt.path, tt.body, tt.status)
			if code, msg := errOf(m); code != tt.code || tt.msg != "" && msg != tt.msg {
				t.Fatalf("%s %s", code, msg)
			}
		})
	}
	// /me is a person's.
	a, err := w.dir.Application(id)
	must(t, err)
	spTok := w.token(gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: a.ObjectID, TenantID: a.TenantID, ClientID: a.AppID})
	if code, _ := errOf(w.call(spTok, "GET", "/v1.0/me/ownedObjects", "", 400)); code != "Request_BadRequest" {
		t.Fatalf("/me/ownedObjects with an application's token: %s", code)
	}
	if got := ids(w.call(adminTok, "GET", "/v1.0/servicePrincipals/"+mi.PrincipalID+"/owners", "", 200)); len(got) != 0 {
		t.Fatalf("a managed identity's owners: %v", got)
	}
	if a, _ := w.dir.Application(id); len(a.Owners) != 1 || len(a.SPOwners) != 1 {
		t.Fatalf("bad input changed the owners: %v %v", a.Owners, a.SPOwners)
	}
}
