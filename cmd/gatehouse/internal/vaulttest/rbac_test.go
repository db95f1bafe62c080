package vaulttest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
)

// testRBAC: Key Vault Secrets User reads but cannot set; no role is 403
// ForbiddenByRbac; Key Vault Reader lists metadata but cannot read values;
// an assignment at one secret covers only that secret. Denials and writes
// are in the audit log, without values.
func testRBAC(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "rbac", nil)
	officer := e.client(t, "rbac", e.cred)
	_, err := officer.SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: ptr("rbac-value-1")}, nil)
	must(t, err)
	_, err = officer.SetSecret(ctx, "other", azsecrets.SetSecretParameters{Value: ptr("rbac-value-2")}, nil)
	must(t, err)

	userOID, userCred := e.principal(t, "kv-user")
	e.assign(t, e.vaultScope("rbac"), authz.RoleKeyVaultSecretsUser, userOID)
	readerOID, readerCred := e.principal(t, "kv-reader")
	e.assign(t, e.vaultScope("rbac"), authz.RoleKeyVaultReader, readerOID)
	noneOID, noneCred := e.principal(t, "kv-none")
	oneOID, oneCred := e.principal(t, "kv-one-secret")
	e.assign(t, e.vaultScope("rbac")+"/secrets/shared", authz.RoleKeyVaultSecretsUser, oneOID)

	t.Run("secrets-user", func(t *testing.T) {
		c := e.client(t, "rbac", userCred)
		got, err := c.GetSecret(ctx, "shared", "", nil)
		must(t, err)
		if *got.Value != "rbac-value-1" {
			t.Fatalf("value %q", *got.Value)
		}
		_, err = c.SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: ptr("overwrite")}, nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		if re := responseError(t, err); re.RawResponse == nil {
			t.Fatal("no response")
		}
		_, err = c.DeleteSecret(ctx, "shared", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		pager := c.NewListSecretPropertiesPager(nil)
		page, err := pager.NextPage(ctx)
		must(t, err)
		if len(page.Value) != 2 {
			t.Fatalf("list: %d items", len(page.Value))
		}
	})
	t.Run("no-role", func(t *testing.T) {
		c := e.client(t, "rbac", noneCred)
		_, err := c.GetSecret(ctx, "shared", "", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		r := e.data(t, "GET", "rbac", "/secrets/shared/?api-version=7.6", nil, e.vaultToken(t, noneCred), nil)
		if code, inner := r.code(); r.status != 403 || code != "Forbidden" || inner != "ForbiddenByRbac" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		// The message names the caller and the whole scope, down to the
		// secret, as Azure's does: what the missing assignment needs. One
		// item a line, as Azure's (JSON escapes the CR LF).
		if body := string(r.body); !strings.Contains(body, `\r\nCaller: appid=`) ||
			!strings.Contains(body, "/providers/microsoft.keyvault/vaults/rbac/secrets/shared'") ||
			!strings.Contains(body, `\r\nVault: rbac;location=westus`) {
			t.Errorf("the denial does not name the caller and the secret: %s", body)
		}
		_, err = c.NewListSecretPropertiesPager(nil).NextPage(ctx)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
	})
	t.Run("reader", func(t *testing.T) {
		c := e.client(t, "rbac", readerCred)
		_, err := c.GetSecret(ctx, "shared", "", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		page, err := c.NewListSecretPropertiesPager(nil).NextPage(ctx)
		must(t, err)
		if len(page.Value) != 2 {
			t.Fatalf("reader list: %d", len(page.Value))
		}
		vp, err := c.NewListSecretPropertiesVersionsPager("shared", nil).NextPage(ctx)
		must(t, err)
		if len(vp.Value) != 1 {
			t.Fatalf("reader versions: %d", len(vp.Value))
		}
	})
	t.Run("secret-scope", func(t *testing.T) {
		c := e.client(t, "rbac", oneCred)
		if _, err := c.GetSecret(ctx, "shared", "", nil); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetSecret(ctx, "other", "", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
	})
	t.Run("audit", func(t *testing.T) {
		var denied, set bool
		must(t, e.Audit.Each(ctx, 0, func(r *audit.Record) error {
			en := r.Entry
			if en.Surface != "vault" {
				return nil
			}
			raw, _ := json.Marshal(en)
			if containsAny(string(raw), "rbac-value-1", "rbac-value-2", "overwrite") {
				t.Fatalf("an audit entry holds a secret value: %s", raw)
			}
			if en.Principal.ObjectID == noneOID && en.Result == audit.Denied && en.Action == "Microsoft.KeyVault/vaults/secrets/getSecret/action" {
				denied = true
			}
			if en.Principal.ObjectID == e.oid && en.Result == audit.Succeeded &&
				en.Action == "Microsoft.KeyVault/vaults/secrets/setSecret/action" && en.Details["name"] == "shared" && len(en.Details["version"]) == 32 {
				set = true
			}
			return nil
		}))
		if !denied || !set {
			t.Fatalf("audit: denial recorded %v, set recorded %v", denied, set)
		}
	})
	_ = userOID
	_ = readerOID
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}
