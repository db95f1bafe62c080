package gatewaytest

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
)

// testNetworkRules: an account's network rules, set with
// armcognitiveservices (networkAcls, publicNetworkAccess), are echoed by the
// management API and enforced on the data plane and the STS for the
// client's address (the test's client is 127.0.0.1).
func testNetworkRules(t *testing.T, e *env) {
	rules := func(action armcognitiveservices.NetworkRuleAction, ips ...string) *armcognitiveservices.NetworkRuleSet {
		s := &armcognitiveservices.NetworkRuleSet{DefaultAction: &action, IPRules: []*armcognitiveservices.IPRule{}}
		for _, ip := range ips {
			s.IPRules = append(s.IPRules, &armcognitiveservices.IPRule{Value: ptr(ip)})
		}
		return s
	}
	a := e.createAccount(t, "netrules", "TextAnalytics", &armcognitiveservices.AccountProperties{
		NetworkACLs: rules(armcognitiveservices.NetworkRuleActionDeny, "10.0.0.0/8", "192.0.2.9/32")})
	got, err := e.accounts.Get(t.Context(), e.group, a.name, nil)
	if err != nil {
		t.Fatal(err)
	}
	acl := got.Properties.NetworkACLs
	if acl == nil || *acl.DefaultAction != armcognitiveservices.NetworkRuleActionDeny || len(acl.IPRules) != 2 ||
		*acl.IPRules[0].Value != "10.0.0.0/8" || *acl.IPRules[1].Value != "192.0.2.9" {
		t.Fatalf("networkAcls as read back: %+v", acl)
	}
	body := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello world"}]}}`
	// expect waits for the data plane to answer status (the account index
	// follows the change feed), with message when it is a refusal.
	expect := func(what string, status int, message string) {
		t.Helper()
		var r *result
		for deadline := time.Now().Add(5 * time.Second); ; {
			r = e.do(t, call{url: a.endpoint + languagePath, header: keyHeader(a.key1), body: body})
			if r.status == status || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r.status != status {
			t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
		}
		if status == http.StatusForbidden {
			if code := r.errorCode(t); code != "403" || r.json(t)["error"].(map[string]any)["message"] != message {
				t.Fatalf("%s: %s, want 403 %q", what, r.body, message)
			}
		}
	}
	const firewall, closed = "Access denied due to Virtual Network/Firewall rules.", "Public access is disabled. Please configure private endpoint."
	expect("address not in the rules", http.StatusForbidden, firewall)
	if r := e.do(t, call{url: a.endpoint + "sts/v1.0/issueToken", header: keyHeader(a.key1)}); r.status != http.StatusForbidden {
		t.Errorf("STS at the account from an address not in the rules: %d %s", r.status, r.body)
	}

	update := func(props *armcognitiveservices.AccountProperties) error {
		p, err := e.accounts.BeginUpdate(t.Context(), e.group, a.name, armcognitiveservices.Account{Properties: props}, nil)
		if err == nil {
			_, err = p.PollUntilDone(t.Context(), nil)
		}
		return err
	}
	if err := update(&armcognitiveservices.AccountProperties{NetworkACLs: rules(armcognitiveservices.NetworkRuleActionDeny, "10.0.0.0/8", "127.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	expect("address added to the rules", http.StatusOK, "")
	if err := update(&armcognitiveservices.AccountProperties{PublicNetworkAccess: ptr(armcognitiveservices.PublicNetworkAccessDisabled)}); err != nil {
		t.Fatal(err)
	}
	expect("public access disabled", http.StatusForbidden, closed)
	if err := update(&armcognitiveservices.AccountProperties{PublicNetworkAccess: ptr(armcognitiveservices.PublicNetworkAccessEnabled),
		NetworkACLs: rules(armcognitiveservices.NetworkRuleActionAllow)}); err != nil {
		t.Fatal(err)
	}
	expect("rules lifted", http.StatusOK, "")

	// What the server cannot honour is refused, never stored and ignored.
	for name, acl := range map[string]*armcognitiveservices.NetworkRuleSet{
		"vnet-rule": {DefaultAction: ptr(armcognitiveservices.NetworkRuleActionDeny),
			VirtualNetworkRules: []*armcognitiveservices.VirtualNetworkRule{{ID: ptr("/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/virtualNetworks/v/subnets/s")}}},
		"bad-ip-rule":    rules(armcognitiveservices.NetworkRuleActionDeny, "10.0.0.0/33"),
		"bad-action":     {DefaultAction: ptr(armcognitiveservices.NetworkRuleAction("Block"))},
		"hostname-in-ip": rules(armcognitiveservices.NetworkRuleActionDeny, "intranet.example"),
	} {
		err := update(&armcognitiveservices.AccountProperties{NetworkACLs: acl})
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "InvalidNetworkAcls" {
			t.Errorf("%s: %v, want 400 InvalidNetworkAcls", name, err)
		}
	}
	expect("after the refused updates", http.StatusOK, "")
	e.AssertNotLogged(t, a.key1, a.key2)
}
