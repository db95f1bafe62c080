package vaulttest

import (
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// testGroupAccess: a role assigned to a security group grants it to the
// group's members — a person and a service principal read a vault's
// secret as members, and lose it the moment they leave the group (or the
// group is deleted), on every node's cached decisions.
func testGroupAccess(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "grouped", nil)
	_, err := e.client(t, "grouped", e.cred).SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: ptr("group-value")}, nil)
	must(t, err)
	group, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "vault readers", MailNickname: "vault-readers"})
	must(t, err)
	e.assignTo(t, e.vaultScope("grouped"), authz.RoleKeyVaultSecretsUser, group.ObjectID, "Group")

	const password = "a group member's password"
	person, err := e.Directory.CreateUser(ctx, directory.UserSpec{UserName: "member@vault.test", Password: password})
	must(t, err)
	//lint:ignore SA1019 the person's password sign-in, as scripts do
	personOpts := &azidentity.UsernamePasswordCredentialOptions{ClientOptions: e.ClientOptions()}
	personCred, err := azidentity.NewUsernamePasswordCredential("adfs", "04b07795-8ddb-461a-bbee-02f9e1bf7b46", person.UserName, password, personOpts)
	must(t, err)
	spOID, spCred := e.principal(t, "group-member-app")

	for name, member := range map[string]struct {
		oid  string
		cred azcore.TokenCredential
	}{"person": {person.ObjectID, personCred}, "service principal": {spOID, spCred}} {
		// Not yet a member: no access.
		_, err := e.client(t, "grouped", member.cred).GetSecret(ctx, "shared", "", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		_, err = e.Directory.AddGroupMember(ctx, group.ObjectID, member.oid)
		must(t, err)
		got, err := e.client(t, "grouped", member.cred).GetSecret(ctx, "shared", "", nil)
		if err != nil || *got.Value != "group-value" {
			t.Fatalf("%s as a member: %v", name, err)
		}
		// The group grants reading, not writing.
		_, err = e.client(t, "grouped", member.cred).SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
	}
	_, err = e.Directory.RemoveGroupMember(ctx, group.ObjectID, spOID)
	must(t, err)
	_, err = e.client(t, "grouped", spCred).GetSecret(ctx, "shared", "", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	// Through a nested group: the service principal is in a team that is in
	// the group; taking the team out ends its access at the next request.
	team, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "vault team", MailNickname: "vault-team"})
	must(t, err)
	_, err = e.Directory.AddGroupMember(ctx, team.ObjectID, spOID)
	must(t, err)
	_, err = e.Directory.AddGroupMember(ctx, group.ObjectID, team.ObjectID)
	must(t, err)
	if got, err := e.client(t, "grouped", spCred).GetSecret(ctx, "shared", "", nil); err != nil || *got.Value != "group-value" {
		t.Fatalf("through a nested group: %v", err)
	}
	_, err = e.Directory.RemoveGroupMember(ctx, group.ObjectID, team.ObjectID)
	must(t, err)
	_, err = e.client(t, "grouped", spCred).GetSecret(ctx, "shared", "", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	must(t, e.Directory.DeleteGroup(ctx, team.ObjectID))
	must(t, e.Directory.DeleteGroup(ctx, group.ObjectID))
	_, err = e.client(t, "grouped", personCred).GetSecret(ctx, "shared", "", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	e.AssertNotLogged(t, password, "group-value")
}
