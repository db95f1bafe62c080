package vaulttest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
)

func armCode(t *testing.T, r *response, status int, code string) {
	t.Helper()
	if c, _ := r.code(); r.status != status || c != code {
		t.Fatalf("%d %s, want %d %s: %s", r.status, c, status, code, r.body)
	}
}

// testARMVaults: Microsoft.KeyVault/vaults through the management API —
// create, get, list, update, name rules, global uniqueness, soft delete of
// the vault, recover, purge.
func testARMVaults(t *testing.T, e *env) {
	ctx := t.Context()
	created := e.createVault(t, "Arm-Vault1", map[string]any{"softDeleteRetentionInDays": 30})
	props := created["properties"].(map[string]any)
	if created["type"] != "Microsoft.KeyVault/vaults" || created["name"] != "Arm-Vault1" ||
		props["vaultUri"] != "https://arm-vault1.vault."+e.Host+"/" || props["tenantId"] != e.Directory.DefaultTenant() ||
		props["enableRbacAuthorization"] != true || props["enableSoftDelete"] != true ||
		props["softDeleteRetentionInDays"] != float64(30) || props["provisioningState"] != "Succeeded" {
		t.Fatalf("created: %v", created)
	}
	path := e.vaultPath("Arm-Vault1") + "?api-version=" + vaultAPI
	r := e.arm(t, "GET", path, nil, "")
	if r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/subscriptions/" + e.sub + "/providers/Microsoft.KeyVault/vaults?api-version=2022-07-01",
		"/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.KeyVault/vaults?api-version=2024-11-01"} {
		r := e.arm(t, "GET", p, nil, "")
		if r.status != 200 || !strings.Contains(string(r.body), `"name":"Arm-Vault1"`) {
			t.Fatalf("list %s: %d %s", p, r.status, r.body)
		}
	}
	// $top pages the list (armkeyvault's ListBySubscription Top): the
	// pages hold every vault once.
	var paged []string
	next := "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.KeyVault/vaults?api-version=" + vaultAPI + "&$top=1"
	for pages := 0; next != "" && pages < 100; pages++ {
		r := e.arm(t, "GET", strings.TrimPrefix(next, e.URL), nil, "")
		var l struct {
			Value    []struct{ Name string }
			NextLink string
		}
		r.json(t, &l)
		if r.status != 200 || len(l.Value) > 1 {
			t.Fatalf("a page of $top=1: %d %s", r.status, r.body)
		}
		for _, v := range l.Value {
			paged = append(paged, v.Name)
		}
		next = l.NextLink
	}
	if !slices.Contains(paged, "Arm-Vault1") || len(paged) != len(slices.Compact(slices.Clone(paged))) {
		t.Fatalf("vaults paged by $top=1: %v", paged)
	}
	armCode(t, e.arm(t, "GET", "/subscriptions/"+e.sub+"/providers/Microsoft.KeyVault/vaults?api-version="+vaultAPI+"&$top=0", nil, ""),
		400, "InvalidTopInQueryString")
	r = e.arm(t, "PATCH", path, map[string]any{"tags": map[string]string{"team": "x"}}, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"team":"x"`) {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	// Azure's refusals: purge protection false (even on a vault without
	// it), soft delete off, and another tenant — by PUT as by PATCH.
	for _, body := range []map[string]any{
		{"properties": map[string]any{"enablePurgeProtection": false}},
		{"properties": map[string]any{"enableSoftDelete": false}},
		{"properties": map[string]any{"tenantId": gatehouse.NewGUID()}},
		{"location": "westus", "properties": map[string]any{"tenantId": gatehouse.NewGUID()}},
	} {
		method := "PATCH"
		if body["location"] != nil {
			method = "PUT"
		}
		armCode(t, e.arm(t, method, path, body, ""), 400, "BadRequest")
	}
	// A vault asked for without soft delete gets it anyway, as on Azure
	// since soft delete became mandatory; one of a tenant the directory
	// does not have is refused.
	noSoft := e.createVault(t, "arm-nosoft", map[string]any{"enableSoftDelete": false})
	if p := noSoft["properties"].(map[string]any); p["enableSoftDelete"] != true {
		t.Fatalf("enableSoftDelete false on create: %v", p)
	}
	armCode(t, e.arm(t, "PUT", e.vaultPath("arm-othertenant")+"?api-version="+vaultAPI, map[string]any{"location": "westus",
		"properties": map[string]any{"tenantId": gatehouse.NewGUID(), "sku": map[string]string{"family": "A", "name": "standard"}}}, ""), 400, "BadRequest")
	// PUT again: 200, settings kept.
	r = e.arm(t, "PUT", path, map[string]any{"location": "westus", "properties": map[string]any{"sku": map[string]string{"name": "premium"}}}, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"name":"premium"`) || !strings.Contains(string(r.body), `"softDeleteRetentionInDays":30`) {
		t.Fatalf("put again: %d %s", r.status, r.body)
	}

	for _, tt := range []struct {
		name, vault string
		props       map[string]any
		status      int
		code        string
	}{
		{"name-too-short", "ab", nil, 400, "VaultNameNotValid"},
		{"name-too-long", strings.Repeat("a", 25), nil, 400, "VaultNameNotValid"},
		{"name-starts-with-digit", "1vault", nil, 400, "VaultNameNotValid"},
		{"name-double-hyphen", "a--b", nil, 400, "VaultNameNotValid"},
		{"name-ends-with-hyphen", "vault-", nil, 400, "VaultNameNotValid"},
		{"retention-too-short", "ret-short", map[string]any{"softDeleteRetentionInDays": 6}, 400, "BadRequest"},
		{"retention-too-long", "ret-long", map[string]any{"softDeleteRetentionInDays": 91}, 400, "BadRequest"},
		{"access-policies-model", "no-rbac", map[string]any{"enableRbacAuthorization": false}, 400, "BadRequest"},
		{"bad-sku", "bad-sku", map[string]any{"sku": map[string]string{"name": "gold"}}, 400, "BadRequest"},
		{"bad-tenant", "bad-tenant", map[string]any{"tenantId": "nope"}, 400, "BadRequest"},
		{"retention-changed", "Arm-Vault1", map[string]any{"softDeleteRetentionInDays": 60}, 400, "BadRequest"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			props := map[string]any{"tenantId": e.Directory.DefaultTenant(), "sku": map[string]string{"family": "A", "name": "standard"}}
			for k, v := range tt.props {
				props[k] = v
			}
			r := e.arm(t, "PUT", e.vaultPath(tt.vault)+"?api-version="+vaultAPI, map[string]any{"location": "westus", "properties": props}, "")
			armCode(t, r, tt.status, tt.code)
		})
	}
	r = e.arm(t, "GET", e.vaultPath("Arm-Vault1")+"?api-version=2015-01-01", nil, "")
	armCode(t, r, 400, "NoRegisteredProviderFound")

	// Names are unique across the installation, whatever the group.
	other := e.arm(t, "PUT", "/subscriptions/"+e.sub+"/resourceGroups/kv-other?api-version=2021-04-01", map[string]any{"location": "westus"}, "")
	if other.status != 201 && other.status != 200 {
		t.Fatalf("group: %d %s", other.status, other.body)
	}
	dup := e.arm(t, "PUT", "/subscriptions/"+e.sub+"/resourceGroups/kv-other/providers/Microsoft.KeyVault/vaults/ARM-VAULT1?api-version="+vaultAPI,
		map[string]any{"location": "westus", "properties": map[string]any{}}, "")
	armCode(t, dup, 409, "VaultAlreadyExists")

	// A principal without a role.
	_, cred := e.principal(t, "arm-no-role")
	r = e.arm(t, "GET", path, nil, e.Token(t, cred, mgmtScope))
	armCode(t, r, 403, "AuthorizationFailed")

	// Soft delete of the vault keeps its secrets; recover brings them back.
	c := e.client(t, "arm-vault1", e.cred)
	_, err := c.SetSecret(ctx, "kept", azsecrets.SetSecretParameters{Value: ptr("still-here")}, nil)
	must(t, err)
	oldOID, oldCred := e.principal(t, "arm-old-reader")
	e.assign(t, e.vaultScope("Arm-Vault1"), authz.RoleKeyVaultSecretsUser, oldOID)
	r = e.arm(t, "DELETE", path, nil, "")
	if r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	armCode(t, e.arm(t, "GET", path, nil, ""), 404, "ResourceNotFound")
	if r := e.arm(t, "DELETE", path, nil, ""); r.status != 204 {
		t.Fatalf("delete again: %d", r.status)
	}
	if r := e.data(t, "GET", "arm-vault1", "/secrets/kept/?api-version=7.6", nil, e.vaultToken(t, e.cred), nil); r.status != 404 {
		t.Fatalf("data plane of a deleted vault: %d %s", r.status, r.body)
	}
	deleted := "/subscriptions/" + e.sub + "/providers/Microsoft.KeyVault/deletedVaults?api-version=" + vaultAPI
	if r := e.arm(t, "GET", deleted, nil, ""); r.status != 200 || !strings.Contains(string(r.body), `"name":"Arm-Vault1"`) ||
		!strings.Contains(string(r.body), `"scheduledPurgeDate"`) {
		t.Fatalf("deleted vaults: %d %s", r.status, r.body)
	}
	one := "/subscriptions/" + e.sub + "/providers/Microsoft.KeyVault/locations/westus/deletedVaults/Arm-Vault1?api-version=" + vaultAPI
	if r := e.arm(t, "GET", one, nil, ""); r.status != 200 {
		t.Fatalf("deleted vault: %d %s", r.status, r.body)
	}
	// The name stays reserved while the vault can be recovered.
	r = e.arm(t, "PUT", path, map[string]any{"location": "westus", "properties": map[string]any{}}, "")
	armCode(t, r, 409, "ConflictError")
	// The body azure-mgmt-keyvault's VaultProperties sends: its defaults
	// (access policies, no soft delete) would be refused on a create, but a
	// recovery brings the vault back as it was and judges none of them.
	r = e.arm(t, "PUT", path, map[string]any{"location": "westus", "properties": map[string]any{"createMode": "recover",
		"tenantId": e.Bootstrap.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}, "accessPolicies": []any{},
		"enabledForDeployment": false, "enableSoftDelete": false, "softDeleteRetentionInDays": 3, "enableRbacAuthorization": false}}, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"enableRbacAuthorization":true`) || !strings.Contains(string(r.body), `"enableSoftDelete":true`) {
		t.Fatalf("recover: %d %s", r.status, r.body)
	}
	got, err := c.GetSecret(ctx, "kept", "", nil)
	must(t, err)
	if *got.Value != "still-here" {
		t.Fatalf("after recover: %q", *got.Value)
	}
	// Delete and purge: the secrets go with it and the name is free.
	if r := e.arm(t, "DELETE", path, nil, ""); r.status != 200 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := e.arm(t, "POST", strings.Replace(one, "?", "/purge?", 1), nil, ""); r.status != 200 {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	armCode(t, e.arm(t, "GET", one, nil, ""), 404, "ResourceNotFound")
	e.createVault(t, "Arm-Vault1", nil)
	_, err = c.GetSecret(ctx, "kept", "", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	// Role assignments at the purged vault went with it.
	_, err = c.SetSecret(ctx, "new", azsecrets.SetSecretParameters{Value: ptr("n")}, nil)
	must(t, err)
	_, err = e.client(t, "arm-vault1", oldCred).GetSecret(ctx, "new", "", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
}

// testPurgeProtection: purge protection forbids purging secrets and the
// vault, and cannot be turned off.
func testPurgeProtection(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "protected", map[string]any{"enablePurgeProtection": true})
	c := e.client(t, "protected", e.cred)
	set, err := c.SetSecret(ctx, "p", azsecrets.SetSecretParameters{Value: ptr("v")}, nil)
	must(t, err)
	if *set.Attributes.RecoveryLevel != "Recoverable" {
		t.Fatalf("recovery level %s", *set.Attributes.RecoveryLevel)
	}
	_, err = c.DeleteSecret(ctx, "p", nil)
	must(t, err)
	_, err = c.PurgeDeletedSecret(ctx, "p", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	if _, err := c.GetDeletedSecret(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	path := e.vaultPath("protected") + "?api-version=" + vaultAPI
	armCode(t, e.arm(t, "PATCH", path, map[string]any{"properties": map[string]any{"enablePurgeProtection": false}}, ""), 400, "BadRequest")
	armCode(t, e.arm(t, "PATCH", path, map[string]any{"properties": map[string]any{"enableSoftDelete": false}}, ""), 400, "BadRequest")
	if r := e.arm(t, "DELETE", path, nil, ""); r.status != 200 {
		t.Fatalf("delete: %d", r.status)
	}
	purge := "/subscriptions/" + e.sub + "/providers/Microsoft.KeyVault/locations/westus/deletedVaults/protected/purge?api-version=" + vaultAPI
	armCode(t, e.arm(t, "POST", purge, nil, ""), 409, "ConflictError")
}
