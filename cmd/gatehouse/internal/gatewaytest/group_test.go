package gatewaytest

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// testGroupIdentity: an identity token whose principal holds a data role
// only through a group — admitted while it is a member, refused at the
// next request after it leaves (the gateway's own decision cache follows
// the membership generation), admitted again when it rejoins.
func testGroupIdentity(t *testing.T, e *env) {
	ctx := t.Context()
	a := e.createAccount(t, "lang-group", "TextAnalytics", nil)
	oid, cred := e.principal(t, "lang-group-member", a, "")
	group, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "language users", MailNickname: "language-users"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Authz.CreateAssignment(ctx, a.rid, gatehouse.NewGUID(), authz.AssignmentSpec{
		RoleDefinitionID: authz.DefinitionID(a.rid, authz.RoleCognitiveServicesUser), PrincipalID: group.ObjectID,
		PrincipalType: "Group"}, e.Bootstrap.ClientID); err != nil {
		t.Fatal(err)
	}
	token := e.Token(t, cred, "https://cognitiveservices.azure.com/.default")
	detect := func() int {
		return e.do(t, call{url: a.endpoint + languagePath, header: bearer(token),
			body: `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"0","text":"Hello there, how are you?"}]}}`}).status
	}
	if got := detect(); got != 401 {
		t.Fatalf("before joining the group: %d, want 401 PermissionDenied", got)
	}
	if _, err := e.Directory.AddGroupMember(ctx, group.ObjectID, oid); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the cached decision too
		if got := detect(); got != 200 {
			t.Fatalf("as a member: %d", got)
		}
	}
	if _, err := e.Directory.RemoveGroupMember(ctx, group.ObjectID, oid); err != nil {
		t.Fatal(err)
	}
	if got := detect(); got != 401 {
		t.Fatalf("after leaving the group: %d, want 401", got)
	}
	if _, err := e.Directory.AddGroupMember(ctx, group.ObjectID, oid); err != nil {
		t.Fatal(err)
	}
	if got := detect(); got != 200 {
		t.Fatalf("after rejoining: %d", got)
	}
	e.AssertNotLogged(t, token)
}
