package vaulttest

import (
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
)

// testOnBehalfOf: a web API reads a vault on behalf of the person calling
// it. The person signs in for the API (its identifier URI) with a public
// client; the API trades that token with azidentity's OnBehalfOfCredential
// (secret, then certificate) for the person's vault token and reads what
// the person may read — and nothing the person may not, although the API
// itself has no role on the vault at all.
func testOnBehalfOf(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "obo", nil)
	e.createVault(t, "obo-closed", nil)
	for _, v := range []string{"obo", "obo-closed"} {
		_, err := e.client(t, v, e.cred).SetSecret(ctx, "db", azsecrets.SetSecretParameters{Value: ptr("obo-value-" + v)}, nil)
		must(t, err)
	}
	const password = "an on-behalf-of test password"
	person, err := e.Directory.CreateUser(ctx, directory.UserSpec{UserName: "obo@vault.test", Password: password})
	must(t, err)
	e.assignTo(t, e.vaultScope("obo"), authz.RoleKeyVaultSecretsUser, person.ObjectID, "User")

	// The web API: an application with a secret, a certificate and an
	// Application ID URI.
	app, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "orders-api", ServicePrincipal: true})
	must(t, err)
	_, secret, err := e.Directory.AddSecret(ctx, app.AppID, directory.SecretSpec{})
	must(t, err)
	certKey, cert := testenv.SelfSignedRSA(t, "orders-api")
	_, err = e.Directory.AddCertificate(ctx, app.AppID, directory.CertificateSpec{Data: cert.Raw})
	must(t, err)
	apiURI := "api://orders-" + gatehouse.NewGUID()[:8]
	_, err = e.Directory.SetIdentifierURIs(ctx, app.AppID, []string{apiURI}, e.Authority.ReservedResource)
	must(t, err)
	tenant := e.Directory.DefaultTenant()

	// The person signs in to the API's client (here the CLI's public client).
	//lint:ignore SA1019 deprecated for MFA, still what scripts use; the GUID tenant exercises MSAL's user-realm lookup
	userOpts := &azidentity.UsernamePasswordCredentialOptions{ClientOptions: e.ClientOptions(), DisableInstanceDiscovery: true}
	userCred, err := azidentity.NewUsernamePasswordCredential(tenant, authority.CLIClientID, person.UserName, password, userOpts)
	must(t, err)
	userTok, err := userCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{apiURI + "/.default"}})
	must(t, err)
	c, err := e.Authority.Verify(ctx, userTok.Token, apiURI)
	if err != nil || c.Principal.ObjectID != person.ObjectID {
		t.Fatalf("the person's token for the API: %+v %v", c, err)
	}

	// Tenant adfs, as the vault's challenge names it (azure-wire.md §2);
	// the GUID tenant with any tenant allowed works as well.
	opts := &azidentity.OnBehalfOfCredentialOptions{ClientOptions: e.ClientOptions()}
	withSecret, err := azidentity.NewOnBehalfOfCredentialWithSecret("adfs", app.AppID, userTok.Token, secret, opts)
	must(t, err)
	withCert, err := azidentity.NewOnBehalfOfCredentialWithCertificate(tenant, app.AppID, userTok.Token, []*x509.Certificate{cert}, certKey,
		&azidentity.OnBehalfOfCredentialOptions{ClientOptions: e.ClientOptions(), DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"}})
	must(t, err)
	for name, cred := range map[string]*azidentity.OnBehalfOfCredential{"secret": withSecret, "certificate": withCert} {
		got, err := e.client(t, "obo", cred).GetSecret(ctx, "db", "", nil)
		if err != nil || *got.Value != "obo-value-obo" {
			t.Fatalf("%s: the API reading as the person: %v", name, err)
		}
		// The person has no role on obo-closed: neither does the API on their behalf.
		_, err = e.client(t, "obo-closed", cred).GetSecret(ctx, "db", "", nil)
		wantStatus(t, err, http.StatusForbidden, "Forbidden")
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e.Authority.VaultResource() + "/.default"}})
		must(t, err)
		if c, err := e.Authority.Verify(ctx, tok.Token, e.Authority.VaultAudiences()...); err != nil ||
			c.Principal.ObjectID != person.ObjectID || c.Principal.Type != gatehouse.PrincipalUser {
			t.Fatalf("%s: the token is not the person's: %+v %v", name, c, err)
		}
	}
	// The API's own identity may not read the vault: what worked was the person's right.
	_, err = e.client(t, "obo", e.adfsCredential(t, app.AppID, secret)).GetSecret(ctx, "db", "", nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")

	// Another application cannot trade a token that was not for it.
	otherApp, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "other-api", ServicePrincipal: true})
	must(t, err)
	_, otherSecret, err := e.Directory.AddSecret(ctx, otherApp.AppID, directory.SecretSpec{})
	must(t, err)
	stolen, err := azidentity.NewOnBehalfOfCredentialWithSecret("adfs", otherApp.AppID, userTok.Token, otherSecret, opts)
	must(t, err)
	_, err = stolen.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e.Authority.VaultResource() + "/.default"}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS500131") {
		t.Fatalf("another application presenting the person's token: %v", err)
	}
	e.AssertNotLogged(t, secret, otherSecret, password, userTok.Token)
}

// assignTo creates a role assignment for a principal of the given type.
func (e *env) assignTo(t testing.TB, scope, role, principal, principalType string) {
	t.Helper()
	body := map[string]any{"properties": map[string]string{
		"roleDefinitionId": "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": principalType}}
	r := e.arm(t, "PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+gatehouse.NewGUID()+"?api-version=2022-04-01", body, "")
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("assign %s at %s: %d %s", role, scope, r.status, r.body)
	}
}
