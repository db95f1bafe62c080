package identitytest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/gatehouse/gatehouse/directory"
)

// testWorkloadIdentityMI: a user-assigned managed identity's federated
// identity credentials — created, read, replaced, listed and deleted with
// armmsi's FederatedIdentityCredentialsClient — let a workload outside
// (a Kubernetes service account here) get the identity's tokens with
// azidentity's WorkloadIdentityCredential and the identity's client id;
// deleting the credential ends that.
func (f *fixture) testWorkloadIdentityMI(t *testing.T) {
	ctx := t.Context()
	opts := &arm.ClientOptions{ClientOptions: f.s.ClientOptions()}
	cred := f.s.Credential(t)
	sub, rg := f.s.Bootstrap.SubscriptionID, f.s.Bootstrap.ResourceGroup
	ids, err := armmsi.NewUserAssignedIdentitiesClient(sub, cred, opts)
	must(t, err)
	fics, err := armmsi.NewFederatedIdentityCredentialsClient(sub, cred, opts)
	must(t, err)
	mi, err := ids.CreateOrUpdate(ctx, rg, "workload-mi", armmsi.Identity{Location: ptr("westus")}, nil)
	must(t, err)
	subject := "system:serviceaccount:apps:mi-reader"
	put := func(name, subject string) (armmsi.FederatedIdentityCredentialsClientCreateOrUpdateResponse, error) {
		return fics.CreateOrUpdate(ctx, rg, "workload-mi", name, armmsi.FederatedIdentityCredential{
			Properties: &armmsi.FederatedIdentityCredentialProperties{Issuer: ptr(f.fedIssuer), Subject: ptr(subject),
				Audiences: []*string{ptr(directory.DefaultFederatedAudience)}}}, nil)
	}
	created, err := put("aks", "system:serviceaccount:apps:old")
	if err != nil || *created.Name != "aks" || *created.Type != "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials" ||
		!strings.HasSuffix(*created.ID, "/userAssignedIdentities/workload-mi/federatedIdentityCredentials/aks") ||
		*created.Properties.Issuer != f.fedIssuer {
		t.Fatalf("create: %+v %v", created, err)
	}
	if replaced, err := put("aks", subject); err != nil || *replaced.Properties.Subject != subject {
		t.Fatalf("replace: %+v %v", replaced, err)
	}
	if got, err := fics.Get(ctx, rg, "workload-mi", "AKS", nil); err != nil || *got.Properties.Subject != subject || *got.Properties.Audiences[0] != directory.DefaultFederatedAudience {
		t.Fatalf("get: %+v %v", got, err)
	}
	if page, err := fics.NewListPager(rg, "workload-mi", nil).NextPage(ctx); err != nil || len(page.Value) != 1 {
		t.Fatalf("list: %+v %v", page.Value, err)
	}
	// Pages of $top, by name, each with the nextLink to the next.
	for _, n := range []string{"ci-b", "ci-a"} {
		if _, err := put(n, "system:serviceaccount:apps:"+n); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for pager := fics.NewListPager(rg, "workload-mi", &armmsi.FederatedIdentityCredentialsClientListOptions{Top: ptr[int32](1)}); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil || len(page.Value) != 1 {
			t.Fatalf("page of 1: %+v %v", page.Value, err)
		}
		names = append(names, *page.Value[0].Name)
	}
	if strings.Join(names, ",") != "aks,ci-a,ci-b" {
		t.Errorf("pages: %v", names)
	}
	for _, n := range []string{"ci-a", "ci-b"} {
		if _, err := fics.Delete(ctx, rg, "workload-mi", n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fics.NewListPager(rg, "workload-mi", &armmsi.FederatedIdentityCredentialsClientListOptions{Top: ptr[int32](0)}).NextPage(ctx); !isStatus(err, 400) {
		t.Errorf("$top=0: %v", err)
	}
	// Bad input: Azure's status, nothing stored.
	for name, c := range map[string]struct {
		name, issuer, subject string
		status                int
	}{
		"http issuer":      {"bad1", "http://issuer.example.test", subject, 400},
		"no subject":       {"bad2", f.fedIssuer, "", 400},
		"bad name":         {"no", f.fedIssuer, "x", 400},
		"same issuer, sub": {"other", f.fedIssuer, subject, 409},
		"missing identity": {"", "", "", 404},
	} {
		var err error
		if c.name == "" {
			_, err = fics.CreateOrUpdate(ctx, rg, "no-such-mi", "x1x", armmsi.FederatedIdentityCredential{
				Properties: &armmsi.FederatedIdentityCredentialProperties{Issuer: ptr(f.fedIssuer), Subject: ptr("s")}}, nil)
		} else {
			_, err = fics.CreateOrUpdate(ctx, rg, "workload-mi", c.name, armmsi.FederatedIdentityCredential{
				Properties: &armmsi.FederatedIdentityCredentialProperties{Issuer: ptr(c.issuer), Subject: ptr(c.subject)}}, nil)
		}
		want := map[int]string{400: "BadRequest", 409: "Conflict", 404: "ResourceNotFound"}[c.status]
		if re, ok := err.(*azcore.ResponseError); !ok || re.StatusCode != c.status || re.ErrorCode != want {
			t.Errorf("%s: %v, want %d %s", name, err, c.status, want)
		}
	}
	if _, err := fics.Get(ctx, rg, "workload-mi", "nope", nil); !isStatus(err, 404) {
		t.Fatalf("get a missing credential: %v", err)
	}

	// The exchange: the issuer's keys are given with the credential (the
	// Gatehouse extension properties.jwks: this test's issuer is not on the
	// network), then the workload's token buys the identity's.
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(f.fedKey.N.Bytes()), "e": "AQAB"}}})
	body, _ := json.Marshal(map[string]any{"properties": map[string]any{"issuer": f.fedIssuer, "subject": subject,
		"audiences": []string{directory.DefaultFederatedAudience}, "jwks": json.RawMessage(jwks)}})
	mgmt := f.s.Token(t, cred, "https://management.azure.com/.default")
	path := *mi.ID + "/federatedIdentityCredentials/aks?api-version=2023-01-31"
	if status, out := f.httpDo(t, "PUT", path, mgmt, strings.NewReader(string(body))); status != http.StatusOK || strings.Contains(string(out), "jwks") {
		t.Fatalf("PUT with jwks: %d %s", status, out)
	}
	file := filepath.Join(t.TempDir(), "token")
	tok := f.federatedToken(t, func(_, c map[string]any) { c["sub"] = subject })
	f.addSecret(tok)
	must(t, os.WriteFile(file, []byte(tok), 0o600))
	wl, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: f.s.ClientOptions(),
		TenantID: f.tenant, ClientID: *mi.Properties.ClientID, TokenFilePath: file, DisableInstanceDiscovery: true})
	must(t, err)
	got, err := wl.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	f.addSecret(got.Token)
	c := f.claims(t, got.Token)
	var payload struct {
		MIRID string `json:"xms_mirid"`
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(got.Token, ".")[1])
	_ = json.Unmarshal(raw, &payload)
	if c.Principal.ObjectID != *mi.Properties.PrincipalID || !c.Principal.ManagedIdentity || !strings.EqualFold(payload.MIRID, *mi.ID) {
		t.Fatalf("workload token: %+v xms_mirid %q", c.Principal, payload.MIRID)
	}

	// Deleted: 200, then 204; the workload gets no new token.
	if _, err := fics.Delete(ctx, rg, "workload-mi", "aks", nil); err != nil {
		t.Fatal(err)
	}
	if status, _ := f.httpDo(t, "DELETE", path, mgmt, nil); status != http.StatusNoContent {
		t.Fatalf("second delete: %d", status)
	}
	again, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: f.s.ClientOptions(),
		TenantID: f.tenant, ClientID: *mi.Properties.ClientID, TokenFilePath: file, DisableInstanceDiscovery: true})
	must(t, err)
	if _, err := again.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}); err == nil {
		t.Fatal("a token after the credential was deleted")
	}

	// The same from gatehouse's CLI.
	cli := newCLI(t)
	cli.mustRun(t, "login", "--server", f.s.URL, "--ca-file", f.s.CAFile, "--tenant", f.tenant,
		"--service-principal", "-u", f.s.Bootstrap.ClientID, "-p", f.s.Bootstrap.ClientSecret, "-o", "none")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	must(t, os.WriteFile(jwksFile, jwks, 0o600))
	out := cli.mustRun(t, "identity", "federated-credential", "create", "-g", rg, "--identity-name", "workload-mi", "-n", "ci-job",
		"--issuer", f.fedIssuer, "--subject", subject, "--jwks-file", jwksFile)
	if !strings.Contains(out, `"subject": "`+subject+`"`) || strings.Contains(out, "jwks") {
		t.Fatalf("cli create: %s", out)
	}
	if out := cli.mustRun(t, "identity", "federated-credential", "list", "-g", rg, "--identity-name", "workload-mi", "--query", "[].name", "-o", "tsv"); strings.TrimSpace(out) != "ci-job" {
		t.Fatalf("cli list: %q", out)
	}
	// As az prints it: the subject at the top too.
	if out := cli.mustRun(t, "identity", "federated-credential", "show", "-g", rg, "--identity-name", "workload-mi", "-n", "ci-job", "--query", "subject", "-o", "tsv"); strings.TrimSpace(out) != subject {
		t.Fatalf("cli show --query subject: %q", out)
	}
	if _, err := wl.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{f.s.Authority.VaultResource() + "/.default"}}); err != nil {
		t.Fatalf("a token with the CLI's credential: %v", err)
	}
	cli.mustRun(t, "identity", "federated-credential", "delete", "-g", rg, "--identity-name", "workload-mi", "-n", "ci-job")
	if code, _, errOut := cli.run(t, "identity", "federated-credential", "show", "-g", rg, "--identity-name", "workload-mi", "-n", "ci-job"); code == 0 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("cli show after delete: %d %q", code, errOut)
	}
	if code, _, errOut := cli.run(t, "identity", "federated-credential", "list", "-g", rg); code == 0 || !strings.Contains(errOut, "--identity-name") {
		t.Fatalf("cli list without the identity: %d %q", code, errOut)
	}
}

func ptr[T any](v T) *T { return &v }

func isStatus(err error, status int) bool {
	re, ok := err.(*azcore.ResponseError)
	return ok && re.StatusCode == status
}
