package armtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/gatehouse/gatehouse/authz"
)

// testSDKSystemIdentities drives armmsi's SystemAssignedIdentitiesClient:
// an account's system-assigned identity read through its scope, 404 for
// every resource that has none, 403 for a caller who may not read it, and
// the api-versions azure-mgmt-msi sends.
func testSDKSystemIdentities(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-system-identities")
	poller, err := e.accounts.BeginCreate(ctx, group, "with-system-id", armcognitiveservices.Account{
		Kind: ptr("OpenAI"), Location: ptr("westus"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")},
		Identity: &armcognitiveservices.Identity{Type: ptr(armcognitiveservices.ResourceIdentityTypeSystemAssigned)},
	}, nil)
	must(t, err)
	acct, err := poller.PollUntilDone(ctx, nil)
	must(t, err)
	plain := createAccount(t, e, group, "without-system-id", "OpenAI")
	ua, err := e.msi.CreateOrUpdate(ctx, group, "sys-id-user-assigned", armmsi.Identity{Location: ptr("westus")}, nil)
	must(t, err)

	sys, err := armmsi.NewSystemAssignedIdentitiesClient(e.cred, e.armOptions())
	must(t, err)
	mi, err := e.Directory.GetManagedIdentity(ctx, *acct.ID)
	must(t, err)
	// The scope as armmsi's examples pass it (with its leading slash) and
	// as armauthorization's do (without).
	for _, scope := range []string{*acct.ID, strings.TrimPrefix(*acct.ID, "/")} {
		got, err := sys.GetByScope(ctx, scope, nil)
		if err != nil {
			t.Fatalf("GetByScope(%s): %v", scope, err)
		}
		p := got.Properties
		if *got.ID != *acct.ID+"/providers/Microsoft.ManagedIdentity/identities/default" || *got.Name != "default" ||
			*got.Type != "Microsoft.ManagedIdentity/identities" || *got.Location != "westus" || got.Tags == nil || p == nil ||
			*p.PrincipalID != *acct.Identity.PrincipalID || *p.PrincipalID != mi.PrincipalID || *p.ClientID != mi.ClientID ||
			*p.TenantID != e.Directory.DefaultTenant() || p.ClientSecretURL != nil {
			t.Fatalf("GetByScope(%s): %+v %+v", scope, got.SystemAssignedIdentity, p)
		}
	}
	// The api-versions azure-mgmt-msi 6.1 sends (its default profile is
	// 2018-11-30), and armmsi's.
	for _, v := range []string{"2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31", "2023-07-31-preview", "2024-11-30"} {
		r := e.do(t, request{method: "GET", path: *acct.ID + "/providers/Microsoft.ManagedIdentity/identities/default?api-version=" + v})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), mi.ClientID) {
			t.Fatalf("api-version %s: %d %s", v, r.status, r.body)
		}
	}

	// What has no system-assigned identity: 404.
	for _, tc := range []struct{ name, scope, code string }{
		{"account-without-identity", *plain.ID, "ResourceNotFound"},
		{"user-assigned-identity", *ua.ID, "ResourceNotFound"},
		{"resource-group", "/subscriptions/" + e.sub + "/resourceGroups/" + group, "ResourceNotFound"},
		{"unknown-account", e.accountPath(group, "no-such-account"), "ResourceNotFound"},
		{"unknown-group", e.accountPath("sys-id-no-such-group", "x"), "ResourceGroupNotFound"},
		{"unknown-type", "/subscriptions/" + e.sub + "/resourceGroups/" + group + "/providers/Microsoft.Web/sites/app", "ResourceNotFound"},
	} {
		if _, err := sys.GetByScope(ctx, tc.scope, nil); !isCode(err, http.StatusNotFound, tc.code) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}

	// A caller without a role is refused; a Reader of the account reads it.
	oid, cred := e.principal(t, "sys-id-reader")
	other, err := armmsi.NewSystemAssignedIdentitiesClient(cred, e.armOptions())
	must(t, err)
	if _, err := other.GetByScope(ctx, *acct.ID, nil); !isCode(err, http.StatusForbidden, "AuthorizationFailed") ||
		!strings.Contains(err.Error(), "Microsoft.ManagedIdentity/identities/read") {
		t.Fatalf("without a role: %v", err)
	}
	assign(t, e, *acct.ID, authz.RoleReader, oid)
	if got, err := other.GetByScope(ctx, *acct.ID, nil); err != nil || *got.Properties.PrincipalID != mi.PrincipalID {
		t.Fatalf("as Reader of the account: %+v %v", got, err)
	}
	// Reading the account does not reach the next one.
	if _, err := other.GetByScope(ctx, *plain.ID, nil); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("Reader of another account: %v", err)
	}

	// Turned off, it is gone.
	up, err := e.accounts.BeginUpdate(ctx, group, "with-system-id", armcognitiveservices.Account{
		Identity: &armcognitiveservices.Identity{Type: ptr(armcognitiveservices.ResourceIdentityTypeNone)}}, nil)
	must(t, err)
	if _, err := up.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("Update identity None: %v", err)
	}
	if _, err := sys.GetByScope(ctx, *acct.ID, nil); !isCode(err, http.StatusNotFound, "ResourceNotFound") {
		t.Fatalf("after identity None: %v", err)
	}
}
