package vaulttest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
)

// testReference: vault.ResolveSecretReference, the gateway's way to read
// an upstream credential as an account's managed identity — RBAC like any
// other reader, versioned and latest references, refusals.
func testReference(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "refs", nil)
	c := e.client(t, "refs", e.cred)
	s1, err := c.SetSecret(ctx, "upstream-key", azsecrets.SetSecretParameters{Value: ptr("sk-upstream-1")}, nil)
	must(t, err)
	_, err = c.SetSecret(ctx, "upstream-key", azsecrets.SetSecretParameters{Value: ptr("sk-upstream-2")}, nil)
	must(t, err)
	past := time.Now().Add(-time.Hour)
	_, err = c.SetSecret(ctx, "expired", azsecrets.SetSecretParameters{Value: ptr("old"),
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &past}}, nil)
	must(t, err)
	mi, err := e.Directory.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
		ResourceID: "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/refs-mi",
		Location:   "westus"})
	must(t, err)
	p := gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, ObjectID: mi.PrincipalID, ClientID: mi.ClientID,
		TenantID: mi.TenantID, ManagedIdentity: true}
	base := e.vaultURL("refs") + "secrets/"
	resolve := func(uri string) (string, string, int) {
		v, ver, err := e.Vaults.ResolveSecretReference(ctx, p, uri)
		if err != nil {
			return "", "", gatehouse.ErrorStatus(err)
		}
		return string(v), ver, 200
	}
	if _, _, status := resolve(base + "upstream-key"); status != 403 {
		t.Fatalf("without a role: %d", status)
	}
	e.assign(t, e.vaultScope("refs"), authz.RoleKeyVaultSecretsUser, mi.PrincipalID)
	for _, tt := range []struct {
		name, uri, value string
		status           int
	}{
		{"latest", base + "upstream-key", "sk-upstream-2", 200},
		{"latest-trailing-slash", base + "upstream-key/", "sk-upstream-2", 200},
		{"version", base + "upstream-key/" + s1.ID.Version(), "sk-upstream-1", 200},
		{"expired", base + "expired", "", 403},
		{"missing", base + "nope", "", 404},
		{"other-vault", e.vaultURL("no-such-vault") + "secrets/x", "", 404},
		{"http", strings.Replace(base, "https", "http", 1) + "upstream-key", "", 400},
		{"other-host", "https://refs.vault.example.test/secrets/upstream-key", "", 400},
		{"keys-path", e.vaultURL("refs") + "keys/upstream-key", "", 400},
		{"bad-version", base + "upstream-key/zz", "", 400},
		{"query", base + "upstream-key?api-version=7.6", "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, _, status := resolve(tt.uri)
			if status != tt.status || v != tt.value {
				t.Fatalf("%d %q, want %d %q", status, v, tt.status, tt.value)
			}
		})
	}

	// The gateway's hook: an AI account reads as its system-assigned identity.
	t.Run("account-identity", func(t *testing.T) {
		id, err := gatehouse.ParseResourceID("/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.CognitiveServices/accounts/refs-chat")
		must(t, err)
		acct, _, err := e.Accounts.Put(ctx, id, accounts.Spec{SKU: &accounts.SKU{Name: "S0"}, Kind: "OpenAI", Location: "westus",
			Identity: &accounts.IdentitySpec{Type: accounts.IdentitySystemAssigned}}, accounts.Actor{ObjectID: e.oid})
		must(t, err)
		if _, _, err := e.ResolveUpstreamSecret(ctx, acct, base+"upstream-key"); gatehouse.ErrorStatus(err) != 403 {
			t.Fatalf("before the role: %v", err)
		}
		e.assign(t, e.vaultScope("refs")+"/secrets/upstream-key", authz.RoleKeyVaultSecretsUser, acct.Identity.System.PrincipalID)
		v, _, err := e.ResolveUpstreamSecret(ctx, acct, base+"upstream-key")
		if err != nil || string(v) != "sk-upstream-2" {
			t.Fatalf("%q %v", v, err)
		}
		plain, _, err := e.Accounts.Put(ctx, id.Parent().Child("Microsoft.CognitiveServices", "accounts", "refs-plain"),
			accounts.Spec{SKU: &accounts.SKU{Name: "S0"}, Kind: "OpenAI", Location: "westus"}, accounts.Actor{ObjectID: e.oid})
		must(t, err)
		if _, _, err := e.ResolveUpstreamSecret(ctx, plain, base+"upstream-key"); gatehouse.ErrorStatus(err) != 403 {
			t.Fatalf("without an identity: %v", err)
		}
	})
}

// TestHelperProcess is not a test: it is the program `gatehouse run
// --identity` starts in testManagedIdentity (the test binary re-executed
// with "-- kv-helper ADDR VAULT_URL SECRET"). It reads the secret with
// ManagedIdentityCredential and prints the outcome as one JSON line
// prefixed with HELPER:.
func TestHelperProcess(t *testing.T) {
	args := flag.Args()
	if len(args) != 4 || args[0] != "kv-helper" {
		return
	}
	addr, vaultURL, name := args[1], args[2], args[3]
	out := map[string]string{}
	// The child trusts the CA through SSL_CERT_FILE (set by `gatehouse
	// run`) and dials every host to the node, as /etc/hosts would.
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, "localhost") {
				a = addr
			}
			return dialer.DialContext(ctx, network, a)
		}}}
	opts := azcore.ClientOptions{Transport: hc, Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: os.Getenv("AZURE_AUTHORITY_HOST") + "/"}}
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts})
	if err == nil {
		var c *azsecrets.Client
		if c, err = azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: opts}); err == nil {
			var got azsecrets.GetSecretResponse
			if got, err = c.GetSecret(context.Background(), name, "", nil); err == nil {
				out["value"] = *got.Value
			}
		}
	}
	if err != nil {
		out["error"] = err.Error()
	}
	b, _ := json.Marshal(out)
	fmt.Printf("HELPER:%s\n", b)
	os.Exit(0)
}

// testManagedIdentity: an app run with `gatehouse run --identity` reads a
// secret with ManagedIdentityCredential once the identity holds Key Vault
// Secrets User.
func testManagedIdentity(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "mi-vault", nil)
	c := e.client(t, "mi-vault", e.cred)
	_, err := c.SetSecret(ctx, "for-app", azsecrets.SetSecretParameters{Value: ptr("app-secret")}, nil)
	must(t, err)
	mi, err := e.Directory.CreateManagedIdentity(ctx, directory.ManagedIdentitySpec{
		ResourceID: "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv-app",
		Location:   "westus"})
	must(t, err)
	cli := e.login(t)
	run := func() map[string]string {
		code, out, errOut := cli.run(t, "", "run", "--identity", mi.ResourceID, "--", os.Args[0], "-test.run=^TestHelperProcess$",
			"--", "kv-helper", e.Addr.String(), e.vaultURL("mi-vault"), "for-app")
		if code != 0 {
			t.Fatalf("run: exit %d: %s %s", code, out, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, "HELPER:"); ok {
				var m map[string]string
				must(t, json.Unmarshal([]byte(rest), &m))
				return m
			}
		}
		t.Fatalf("no helper output: %s %s", out, errOut)
		return nil
	}
	if res := run(); !strings.Contains(res["error"], "403") {
		t.Fatalf("without a role: %v", res)
	}
	e.assign(t, e.vaultScope("mi-vault"), authz.RoleKeyVaultSecretsUser, mi.PrincipalID)
	if res := run(); res["value"] != "app-secret" || res["error"] != "" {
		t.Fatalf("with Key Vault Secrets User: %v", res)
	}
}
