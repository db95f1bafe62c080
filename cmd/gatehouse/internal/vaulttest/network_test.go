package vaulttest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// testNetworkRules: a vault's network rules (networkAcls,
// publicNetworkAccess) set through the management API are echoed and
// applied by the data plane to the client's address (127.0.0.1), with Key
// Vault's 403s as azsecrets reports them.
func testNetworkRules(t *testing.T, e *env) {
	ctx := t.Context()
	v := e.createVault(t, "net-rules", map[string]any{"networkAcls": map[string]any{
		"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": []map[string]string{{"value": "10.0.0.0/8"}}}})
	acl, _ := v["properties"].(map[string]any)["networkAcls"].(map[string]any)
	if acl == nil || acl["defaultAction"] != "Deny" || acl["bypass"] != "AzureServices" || len(acl["ipRules"].([]any)) != 1 {
		t.Fatalf("networkAcls as created: %v", v["properties"])
	}
	c := e.client(t, "net-rules", e.cred)
	// expect waits for the vault index (the change feed) to apply a change:
	// inner is the innererror code of a refusal, "" for a success.
	expect := func(what, inner string) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; {
			_, err = c.SetSecret(ctx, "s1", azsecrets.SetSecretParameters{Value: ptr("v1")}, nil)
			if (err == nil) == (inner == "") || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if inner == "" {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return
		}
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		if !strings.Contains(err.Error(), inner) {
			t.Fatalf("%s: %v, want innererror %s", what, err, inner)
		}
	}
	expect("address not in the rules", "ForbiddenByFirewall")
	patch := func(props map[string]any) {
		t.Helper()
		r := e.arm(t, "PATCH", e.vaultPath("net-rules")+"?api-version="+vaultAPI, map[string]any{"properties": props}, "")
		if r.status != http.StatusOK {
			t.Fatalf("PATCH %v: %d %s", props, r.status, r.body)
		}
	}
	patch(map[string]any{"networkAcls": map[string]any{"defaultAction": "Deny", "ipRules": []map[string]string{{"value": "10.0.0.0/8"}, {"value": "127.0.0.0/8"}}}})
	expect("address added", "")
	patch(map[string]any{"publicNetworkAccess": "Disabled"})
	expect("public access disabled", "ForbiddenByConnection")
	patch(map[string]any{"publicNetworkAccess": "Enabled", "networkAcls": map[string]any{"defaultAction": "Allow"}})
	expect("rules lifted", "")

	r := e.arm(t, "PATCH", e.vaultPath("net-rules")+"?api-version="+vaultAPI, map[string]any{"properties": map[string]any{
		"networkAcls": map[string]any{"defaultAction": "Deny", "virtualNetworkRules": []map[string]string{{"id": "/subscriptions/x/vnet"}}}}}, "")
	armCode(t, r, http.StatusBadRequest, "BadRequest")
}
