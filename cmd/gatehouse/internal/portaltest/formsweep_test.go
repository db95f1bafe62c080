package portaltest

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
)

// testFormSweep posts every form of the portal a table of malformed
// bodies — empty, badly escaped, not UTF-8, with NUL, with the field
// repeated after an invalid first value, oversized, of another content
// type — as a signed-in Owner, who could do what a valid form asks. None
// may be answered with a 5xx or anything but an HTML page, and nothing may
// change: the keys and the account's role assignments stay as they were.
func testFormSweep(t *testing.T, e *env) {
	b := e.browser(t)
	b.signIn(e.owner)
	keysBefore, err := e.Accounts.ListKeys(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	assignments := func() int { return len(e.Authz.Assignments(authz.AssignmentFilter{Scope: e.account})) }
	assignmentsBefore := assignments()
	tags := func() map[string]string {
		a, err := e.Accounts.Get(t.Context(), e.account)
		if err != nil {
			t.Fatal(err)
		}
		return a.Tags
	}
	tagsBefore := tags()

	path := e.accountPath()
	routes := []string{path + "/keys", path + "/regenerate", path + "/roles",
		path + "/roles/not-a-guid/delete", path + "/roles/00000000-0000-0000-0000-000000000000/delete",
		path + "/roles/" + strings.Repeat("a", 300) + "/delete", path + "/roles/%00/delete", "/portal/signin",
		path + "/deployments", path + "/deployments/x1/delete", path + "/deployments/%00/delete", path + "/deployments/" + strings.Repeat("d", 300) + "/delete",
		"/portal/device", "/portal/device/approve", "/portal/device/decline", "/portal/authorize",
		path + "/tags", path + "/tags/remove"}
	bodies := map[string]string{
		"empty":         "",
		"blank":         "keyName=&role=&assignee=",
		"bad-escape":    "keyName=%zz&role=%&assignee=%g0",
		"not-utf8":      "keyName=%ff%fe&role=%c3%28&assignee=%ed%a0%80",
		"nul":           "keyName=Key1%00&role=%00&assignee=%00",
		"repeated":      "keyName=Key3&keyName=Key1&role=nope&role=" + authz.RoleReader + "&assignee=x&assignee=" + e.owner.ObjectID,
		"separators":    ";;;&&&===&=&==",
		"long":          "keyName=" + strings.Repeat("K", 15000),
		"oversized":     "keyName=" + strings.Repeat("K", 20<<10),
		"role-unknown":  "role=11111111-2222-4333-8444-555555555555&assignee=" + e.owner.ObjectID,
		"assignee-junk": "role=" + authz.RoleReader + "&assignee=%27%3B--",
		"sign-in-junk":  "username=%ff&password=%00&next=%2F%2Fevil.example",
		"deploy-junk":   "deploymentName=%00x&model=a|b|c|d&capacity=-1",
		"deploy-valid":  "deploymentName=sweep&model=OpenAI|gpt-4o-mini|2024-07-18&capacity=99999999999999999999",
		"tag-junk":      "name=a%3Cb&value=x&name=ok",
		"tag-long":      "name=t&value=" + strings.Repeat("v", 300),
	}
	types := []string{"application/x-www-form-urlencoded", "text/plain", "application/json", "multipart/form-data; boundary=x", ""}
	post := func(route, ctype, body string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+route, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Origin", e.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	for _, route := range routes {
		for name, body := range bodies {
			for _, ctype := range types {
				status, got := post(route, ctype, body)
				if status >= 500 {
					t.Errorf("%s %s (%s): %d", route, name, ctype, status)
				}
				if status != http.StatusSeeOther && !strings.HasPrefix(got, "text/html") {
					t.Errorf("%s %s (%s): %d with %q, want an HTML page", route, name, ctype, status, got)
				}
			}
		}
		// The session must have survived every refusal (nothing above was
		// a valid sign-in or sign-out).
		if p := b.get(path); p.status != http.StatusOK {
			t.Fatalf("after %s: the account page answers %d", route, p.status)
		}
	}
	if after, _ := e.Accounts.ListKeys(t.Context(), e.account); after != keysBefore {
		t.Error("a malformed form changed the keys")
	}
	if after := tags(); !maps.Equal(after, tagsBefore) {
		t.Errorf("a malformed form changed the tags: %v → %v", tagsBefore, after)
	}
	if n := assignments(); n != assignmentsBefore {
		t.Errorf("a malformed form changed the role assignments: %d → %d", assignmentsBefore, n)
	}
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, `"status":500`) || strings.Contains(line, "panic") {
			t.Errorf("the node logged: %.400s", line)
		}
	}
}
