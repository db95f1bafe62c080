package vaulttest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// testBadInput: malformed requests get Key Vault's 4xx codes — never a
// 500 — and change nothing.
func testBadInput(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "badinput", nil)
	c := e.client(t, "badinput", e.cred)
	_, err := c.SetSecret(ctx, "good", azsecrets.SetSecretParameters{Value: ptr("good-value")}, nil)
	must(t, err)
	tok := e.vaultToken(t, e.cred)
	snapshot := func() string {
		v, _ := e.Vaults.VaultByName("badinput")
		list, _, err := e.Vaults.ListSecrets(ctx, v, "", 25)
		must(t, err)
		var b strings.Builder
		for _, s := range list {
			vers, _, err := e.Vaults.ListVersions(ctx, v, s.Name, "", 25)
			must(t, err)
			fmt.Fprintf(&b, "%s:%d:%v:%s;", s.Name, len(vers), s.Enabled, s.ContentType)
		}
		del, _, err := e.Vaults.ListDeletedSecrets(ctx, v, "", 25)
		must(t, err)
		fmt.Fprintf(&b, "deleted:%d", len(del))
		return b.String()
	}
	before := snapshot()
	tags16 := map[string]string{}
	for i := range 16 {
		tags16[fmt.Sprint("t", i)] = "v"
	}
	const q = "?api-version=7.6"
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"name-too-long", "PUT", "/secrets/" + strings.Repeat("a", 128) + q, `{"value":"x"}`, 400, "BadParameter"},
		{"name-underscore", "PUT", "/secrets/bad_name" + q, `{"value":"x"}`, 400, "BadParameter"},
		{"name-dot", "GET", "/secrets/bad.name/" + q, nil, 400, "BadParameter"},
		{"name-encoded-nul", "GET", "/secrets/%00/" + q, nil, 400, "BadParameter"},
		{"name-unicode", "PUT", "/secrets/%C3%A9t%C3%A9" + q, `{"value":"x"}`, 400, "BadParameter"},
		{"value-too-large", "PUT", "/secrets/big" + q, map[string]string{"value": strings.Repeat("x", 25*1024+1)}, 400, "BadParameter"},
		{"value-missing", "PUT", "/secrets/novalue" + q, `{"contentType":"text/plain"}`, 400, "BadParameter"},
		{"value-null", "PUT", "/secrets/novalue" + q, `{"value":null}`, 400, "BadParameter"},
		{"value-number", "PUT", "/secrets/novalue" + q, `{"value":12}`, 400, "BadParameter"},
		{"content-type-too-long", "PUT", "/secrets/ct" + q, map[string]string{"value": "x", "contentType": strings.Repeat("c", 256)}, 400, "BadParameter"},
		{"too-many-tags", "PUT", "/secrets/tags" + q, map[string]any{"value": "x", "tags": tags16}, 400, "BadParameter"},
		{"tag-value-too-long", "PUT", "/secrets/tags" + q, map[string]any{"value": "x", "tags": map[string]string{"k": strings.Repeat("v", 257)}}, 400, "BadParameter"},
		{"nbf-float", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"nbf":1.5}}`, 400, "BadParameter"},
		{"nbf-past-9999", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"nbf":9223372036854775807,"exp":100}}`, 400, "BadParameter"},
		{"exp-negative", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"exp":-99999999999999}}`, 400, "BadParameter"},
		{"nbf-year-one", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"nbf":-62135596800}}`, 400, "BadParameter"},
		{"patch-exp-past-9999", "PATCH", "/secrets/good/" + q, `{"attributes":{"exp":253402300800}}`, 400, "BadParameter"},
		{"value-lone-surrogate", "PUT", "/secrets/times" + q, `{"value":"pw-\ud800-end"}`, 400, "BadParameter"},
		{"name-encoded-slash", "GET", "/secrets/%2F" + q, nil, 400, "BadParameter"},
		{"deleted-name-encoded-slash", "GET", "/deletedsecrets/%2F" + q, nil, 400, "BadParameter"},
		{"exp-before-nbf", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"nbf":2000000000,"exp":1000000000}}`, 400, "BadParameter"},
		{"enabled-string", "PUT", "/secrets/times" + q, `{"value":"x","attributes":{"enabled":"yes"}}`, 400, "BadParameter"},
		{"bad-json", "PUT", "/secrets/json" + q, `{"value":`, 400, "BadParameter"},
		{"json-array", "PUT", "/secrets/json" + q, `["value"]`, 400, "BadParameter"},
		{"trailing-data", "PUT", "/secrets/json" + q, `{"value":"x"} {}`, 400, "BadParameter"},
		{"empty-body", "PUT", "/secrets/json" + q, "", 400, "BadParameter"},
		{"body-too-large", "PUT", "/secrets/huge" + q, `{"value":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "RequestEntityTooLarge"},
		{"patch-too-many-tags", "PATCH", "/secrets/good/" + q, map[string]any{"tags": tags16}, 400, "BadParameter"},
		{"patch-bad-json", "PATCH", "/secrets/good/" + q, `{`, 400, "BadParameter"},
		{"patch-exp-before-nbf", "PATCH", "/secrets/good/" + q, `{"attributes":{"nbf":2000000000,"exp":1000000000}}`, 400, "BadParameter"},
		{"unknown-api-version", "GET", "/secrets/good/?api-version=7.99", nil, 400, "BadParameter"},
		{"bad-date-api-version", "GET", "/secrets/good/?api-version=2025-13-45", nil, 400, "BadParameter"},
		{"junk-api-version", "GET", "/secrets/good/?api-version=latest", nil, 400, "BadParameter"},
		{"missing-api-version", "GET", "/secrets/good/", nil, 400, "BadParameter"},
		{"set-unknown-api-version", "PUT", "/secrets/good?api-version=9.0", `{"value":"changed"}`, 400, "BadParameter"},
		{"maxresults-zero", "GET", "/secrets" + q + "&maxresults=0", nil, 400, "BadParameter"},
		{"maxresults-26", "GET", "/secrets" + q + "&maxresults=26", nil, 400, "BadParameter"},
		{"maxresults-junk", "GET", "/secrets" + q + "&maxresults=ten", nil, 400, "BadParameter"},
		{"skiptoken-junk", "GET", "/secrets" + q + "&$skiptoken=!!!", nil, 400, "BadParameter"},
		{"version-junk", "GET", "/secrets/good/zz" + q, nil, 404, "SecretNotFound"},
		{"version-long", "GET", "/secrets/good/" + strings.Repeat("a", 300) + q, nil, 404, "SecretNotFound"},
		{"patch-unknown-version", "PATCH", "/secrets/good/" + strings.Repeat("0", 32) + q, `{"contentType":"x"}`, 404, "SecretNotFound"},
		{"restore-garbage", "POST", "/secrets/restore" + q, `{"value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, 400, "BadParameter"},
		{"restore-not-base64", "POST", "/secrets/restore" + q, `{"value":"***"}`, 400, "BadParameter"},
		{"restore-empty", "POST", "/secrets/restore" + q, `{}`, 400, "BadParameter"},
		{"recover-live", "POST", "/deletedsecrets/good/recover" + q, nil, 404, "SecretNotFound"},
		{"purge-live", "DELETE", "/deletedsecrets/good" + q, nil, 404, "SecretNotFound"},
		{"delete-missing", "DELETE", "/secrets/missing" + q, nil, 404, "SecretNotFound"},
		{"backup-missing", "POST", "/secrets/missing/backup" + q, nil, 404, "SecretNotFound"},
		{"unknown-path", "GET", "/keys" + q, nil, 404, "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.data(t, tt.method, "badinput", tt.path, tt.body, tok, nil)
			code, _ := r.code()
			if r.status != tt.status || code != tt.code || r.header.Get("x-ms-error-code") != tt.code {
				t.Fatalf("%d %s, want %d %s: %.300s", r.status, code, tt.status, tt.code, r.body)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Fatalf("bad input changed the vault:\nbefore %s\nafter  %s", before, after)
	}
	got, err := c.GetSecret(ctx, "good", "", nil)
	must(t, err)
	if *got.Value != "good-value" {
		t.Fatal("the good secret changed")
	}
	if strings.Contains(e.Logs.String(), `"status":500`) {
		t.Fatal("a request was answered 500")
	}
}
