package armtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/vault"
)

// testSDKVaultSecrets drives what armkeyvault calls on a vault besides the
// vault: the management plane's secret metadata (SecretsClient: paged list
// and get, never a value; set refused), access policies (refused, as at
// create), and private endpoint connections and link resources (none) —
// with the vault's network rules holding for the secrets as on its data
// plane.
func testSDKVaultSecrets(t *testing.T, e *env) {
	ctx := t.Context()
	group := e.createGroup(t, "sdk-vault-secrets")
	const kv = "sdk-secrets-kv"
	vaults, err := armkeyvault.NewVaultsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	poller, err := vaults.BeginCreateOrUpdate(ctx, group, kv, armkeyvault.VaultCreateOrUpdateParameters{Location: ptr("westus"),
		Properties: &armkeyvault.VaultProperties{TenantID: ptr(e.Directory.DefaultTenant()),
			SKU:                     &armkeyvault.SKU{Family: ptr(armkeyvault.SKUFamilyA), Name: ptr(armkeyvault.SKUNameStandard)},
			EnableRbacAuthorization: ptr(true)}}, nil)
	must(t, err)
	created, err := poller.PollUntilDone(ctx, nil)
	must(t, err)
	vid, err := gatehouse.ParseResourceID(*created.ID)
	must(t, err)
	v, err := e.Vaults.GetVault(ctx, vid)
	must(t, err)
	// Five secrets, one with every attribute; the values must never show.
	nbf, exp := time.Unix(1700000000, 0).UTC(), time.Unix(4100000000, 0).UTC()
	var values []string
	var latest *vault.Secret
	for i := range 5 {
		value := fmt.Sprintf("mgmt-plane-must-not-see-%d-%s", i, gatehouse.NewGUID())
		in := vault.SetInput{Value: []byte(value)}
		if i == 2 {
			in.ContentType, in.NotBefore, in.Expires, in.Tags = "text/plain", nbf, exp, map[string]string{"app": "web"}
		}
		s, err := e.Vaults.SetSecret(ctx, v, fmt.Sprintf("secret-%d", i), in)
		must(t, err)
		if i == 2 {
			latest = s
		}
		values = append(values, value)
	}

	secrets, err := armkeyvault.NewSecretsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	// Pages of two: three pages through nextLink.
	var names []string
	pages := 0
	for pager := secrets.NewListPager(group, kv, &armkeyvault.SecretsClientListOptions{Top: ptr[int32](2)}); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		pages++
		for _, s := range page.Value {
			if s.Properties == nil || s.Properties.Value != nil || *s.Type != "Microsoft.KeyVault/vaults/secrets" || *s.Location != "westus" {
				t.Fatalf("listed secret: %+v", s)
			}
			names = append(names, *s.Name)
		}
	}
	if pages != 3 || !slices.Equal(names, []string{"secret-0", "secret-1", "secret-2", "secret-3", "secret-4"}) {
		t.Fatalf("Secrets.NewListPager: %d pages, %v", pages, names)
	}
	got, err := secrets.Get(ctx, group, kv, "secret-2", nil)
	must(t, err)
	p, a := got.Properties, got.Properties.Attributes
	uri := strings.TrimSuffix(*created.Properties.VaultURI, "/") + "/secrets/secret-2"
	if *got.ID != *created.ID+"/secrets/secret-2" || *got.Name != "secret-2" || *got.Tags["app"] != "web" || p.Value != nil ||
		*p.ContentType != "text/plain" || *p.SecretURI != uri || *p.SecretURIWithVersion != uri+"/"+latest.Version ||
		!*a.Enabled || !a.NotBefore.Equal(nbf) || !a.Expires.Equal(exp) || a.Created == nil || a.Updated == nil {
		t.Fatalf("Secrets.Get: %+v %+v %+v", got.Secret, p, a)
	}
	// On the wire too: no value, whatever the client would make of it.
	for _, path := range []string{*created.ID + "/secrets", *created.ID + "/secrets/secret-2"} {
		r := e.do(t, request{method: "GET", path: path + "?api-version=2022-07-01"})
		if r.status != http.StatusOK || strings.Contains(string(r.body), `"value":"`) {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		for _, value := range values {
			if strings.Contains(string(r.body), value) {
				t.Fatalf("GET %s shows a secret's value", path)
			}
		}
	}
	if _, err := secrets.Get(ctx, group, kv, "no-such-secret", nil); !isCode(err, http.StatusNotFound, "SecretNotFound") {
		t.Fatalf("Get of a missing secret: %v", err)
	}
	if _, err := secrets.Get(ctx, group, "sdk-no-such-kv", "secret-2", nil); !isCode(err, http.StatusNotFound, "ResourceNotFound") {
		t.Fatalf("Get in an unknown vault: %v", err)
	}
	if _, err := secrets.NewListPager(group, "sdk-no-such-kv", nil).NextPage(ctx); !isCode(err, http.StatusNotFound, "ResourceNotFound") {
		t.Fatalf("list of an unknown vault: %v", err)
	}
	if r := e.do(t, request{method: "GET", path: *created.ID + "/secrets?api-version=2024-11-01&$top=26"}); r.status != http.StatusBadRequest {
		t.Fatalf("$top=26: %d %s", r.status, r.body)
	}
	// Setting a secret here is refused with the reason, not served.
	_, err = secrets.CreateOrUpdate(ctx, group, kv, "via-arm", armkeyvault.SecretCreateOrUpdateParameters{
		Properties: &armkeyvault.SecretProperties{Value: ptr("nope")}}, nil)
	if !isCode(err, http.StatusBadRequest, "SecretWriteNotSupported") {
		t.Fatalf("Secrets.CreateOrUpdate: %v", err)
	}
	if _, err := e.Vaults.GetSecretProperties(ctx, v, "via-arm", ""); err == nil {
		t.Fatal("a refused CreateOrUpdate set the secret")
	}

	// Who may read: a caller without a role may not, nor one with only a
	// data-plane role (Key Vault Secrets User holds no management action);
	// Reader of the vault may, and Key Vault Reader at one secret reads that
	// one only.
	noneOID, noneCred := e.principal(t, "kv-mgmt-none")
	none, err := armkeyvault.NewSecretsClient(e.sub, noneCred, e.armOptions())
	must(t, err)
	if _, err := none.NewListPager(group, kv, nil).NextPage(ctx); !isCode(err, http.StatusForbidden, "AuthorizationFailed") ||
		!strings.Contains(err.Error(), "Microsoft.KeyVault/vaults/secrets/read") {
		t.Fatalf("list without a role: %v", err)
	}
	assign(t, e, *created.ID, authz.RoleKeyVaultSecretsUser, noneOID)
	if _, err := none.Get(ctx, group, kv, "secret-0", nil); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("get with a data-plane role only: %v", err)
	}
	readerOID, readerCred := e.principal(t, "kv-mgmt-reader")
	reader, err := armkeyvault.NewSecretsClient(e.sub, readerCred, e.armOptions())
	must(t, err)
	assign(t, e, *created.ID, authz.RoleReader, readerOID)
	if page, err := reader.NewListPager(group, kv, nil).NextPage(ctx); err != nil || len(page.Value) != 5 || page.NextLink != nil {
		t.Fatalf("list as Reader: %+v %v", page, err)
	}
	oneOID, oneCred := e.principal(t, "kv-mgmt-one-secret")
	one, err := armkeyvault.NewSecretsClient(e.sub, oneCred, e.armOptions())
	must(t, err)
	assign(t, e, *created.ID+"/secrets/secret-1", authz.RoleKeyVaultReader, oneOID)
	if s, err := one.Get(ctx, group, kv, "secret-1", nil); err != nil || *s.Name != "secret-1" {
		t.Fatalf("get as Key Vault Reader of the secret: %+v %v", s, err)
	}
	if _, err := one.Get(ctx, group, kv, "secret-0", nil); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("get of another secret: %v", err)
	}
	if _, err := one.NewListPager(group, kv, nil).NextPage(ctx); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("list as reader of one secret: %v", err)
	}

	// Access policies: refused as at create, never 404.
	_, err = vaults.UpdateAccessPolicy(ctx, group, kv, armkeyvault.AccessPolicyUpdateKindAdd, armkeyvault.VaultAccessPolicyParameters{
		Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: []*armkeyvault.AccessPolicyEntry{{
			TenantID: ptr(e.Directory.DefaultTenant()), ObjectID: ptr(readerOID),
			Permissions: &armkeyvault.Permissions{Secrets: []*armkeyvault.SecretPermissions{ptr(armkeyvault.SecretPermissionsGet)}}}}}}, nil)
	if !isCode(err, http.StatusBadRequest, "BadRequest") || !strings.Contains(err.Error(), "access policies are not supported") {
		t.Fatalf("Vaults.UpdateAccessPolicy: %v", err)
	}
	for _, kind := range []string{"replace", "remove"} {
		r := e.do(t, request{method: "PUT", path: *created.ID + "/accessPolicies/" + kind + "?api-version=2022-07-01",
			body: map[string]any{"properties": map[string]any{"accessPolicies": []any{}}}})
		if r.status != http.StatusBadRequest || r.code() != "BadRequest" {
			t.Fatalf("accessPolicies/%s: %d %s", kind, r.status, r.body)
		}
	}
	_, err = vaults.UpdateAccessPolicy(ctx, group, "sdk-no-such-kv", armkeyvault.AccessPolicyUpdateKindAdd,
		armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{}}, nil)
	if !isCode(err, http.StatusNotFound, "ResourceNotFound") {
		t.Fatalf("UpdateAccessPolicy of an unknown vault: %v", err)
	}
	readerVaults, err := armkeyvault.NewVaultsClient(e.sub, readerCred, e.armOptions())
	must(t, err)
	_, err = readerVaults.UpdateAccessPolicy(ctx, group, kv, armkeyvault.AccessPolicyUpdateKindAdd,
		armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{}}, nil)
	if !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("UpdateAccessPolicy as Reader: %v", err)
	}
	// And in a vault's own PUT they are refused, not dropped.
	r := e.do(t, request{method: "PUT", path: *created.ID + "?api-version=2022-07-01", body: map[string]any{"location": "westus",
		"properties": map[string]any{"tenantId": e.Directory.DefaultTenant(), "sku": map[string]string{"family": "A", "name": "standard"},
			"enableRbacAuthorization": true, "accessPolicies": []map[string]any{{"tenantId": e.Directory.DefaultTenant(),
				"objectId": readerOID, "permissions": map[string]any{"secrets": []string{"get"}}}}}}})
	if r.status != http.StatusBadRequest || r.code() != "BadRequest" || !strings.Contains(string(r.body), "properties.accessPolicies") {
		t.Fatalf("PUT with access policies: %d %s", r.status, r.body)
	}

	// Private endpoint connections and link resources: none.
	pecs, err := armkeyvault.NewPrivateEndpointConnectionsClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	var n int
	for pager := pecs.NewListByResourcePager(group, kv, nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		n += len(page.Value)
	}
	if n != 0 {
		t.Fatalf("PrivateEndpointConnections.NewListByResourcePager: %d", n)
	}
	if _, err := pecs.Get(ctx, group, kv, "pec-1", nil); !isCode(err, http.StatusNotFound, "NotFound") {
		t.Fatalf("PrivateEndpointConnections.Get: %v", err)
	}
	if _, err := pecs.NewListByResourcePager(group, "sdk-no-such-kv", nil).NextPage(ctx); !isCode(err, http.StatusNotFound, "ResourceNotFound") {
		t.Fatalf("connections of an unknown vault: %v", err)
	}
	links, err := armkeyvault.NewPrivateLinkResourcesClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	if l, err := links.ListByVault(ctx, group, kv, nil); err != nil || len(l.Value) != 0 {
		t.Fatalf("PrivateLinkResources.ListByVault: %+v %v", l, err)
	}

	// A firewall that does not admit the caller's address (127.0.0.1)
	// hides the secrets here as on the data plane, and the refusal is
	// audited; admitting the address shows them again.
	setRules := func(ips ...string) {
		t.Helper()
		rules := &armkeyvault.NetworkRuleSet{DefaultAction: ptr(armkeyvault.NetworkRuleActionDeny)}
		for _, ip := range ips {
			rules.IPRules = append(rules.IPRules, &armkeyvault.IPRule{Value: ptr(ip)})
		}
		if _, err := vaults.Update(ctx, group, kv, armkeyvault.VaultPatchParameters{
			Properties: &armkeyvault.VaultPatchProperties{NetworkACLs: rules}}, nil); err != nil {
			t.Fatalf("Vaults.Update networkAcls: %v", err)
		}
	}
	// expect waits for the vault index (the change feed) to apply a
	// change; inner is the innererror of the refusal, "" for a success.
	expect := func(what, inner string) {
		t.Helper()
		var r *response
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r = e.do(t, request{method: "GET", path: *created.ID + "/secrets/secret-0?api-version=2024-11-01", token: e.Token(t, readerCred, mgmtScope)})
			if (r.status == http.StatusOK) == (inner == "") || time.Now().After(deadline) {
				break
			}
		}
		if inner == "" {
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
			return
		}
		if r.status != http.StatusForbidden || r.code() != "Forbidden" || !strings.Contains(string(r.body), inner) || strings.Contains(string(r.body), "secret-0\"") {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	setRules("10.0.0.0/8")
	expect("outside the firewall", "ForbiddenByFirewall")
	if _, err := reader.NewListPager(group, kv, nil).NextPage(ctx); !isCode(err, http.StatusForbidden, "Forbidden") ||
		!strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("list from outside the firewall: %v", err)
	}
	var denied bool
	must(t, e.Audit.Each(ctx, 0, func(rec *audit.Record) error {
		en := rec.Entry
		if en.Action == "Microsoft.KeyVault/vaults/secrets/read" && en.Result == audit.Denied && en.Principal.ObjectID == readerOID &&
			en.Details["reason"] == "firewall" && en.Details["clientAddress"] == "127.0.0.1" {
			denied = true
		}
		return nil
	}))
	if !denied {
		t.Fatal("the firewall's refusal is not in the audit log")
	}
	setRules("10.0.0.0/8", "127.0.0.0/8")
	expect("address admitted", "")
	// Public access disabled: refused whatever the rules.
	if _, err := vaults.Update(ctx, group, kv, armkeyvault.VaultPatchParameters{
		Properties: &armkeyvault.VaultPatchProperties{PublicNetworkAccess: ptr("Disabled")}}, nil); err != nil {
		t.Fatal(err)
	}
	expect("public access disabled", "ForbiddenByConnection")
	assertNotAudited(t, e, values...)
}
