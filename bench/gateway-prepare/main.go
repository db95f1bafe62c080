// Command gateway-prepare sets up a running Gatehouse node for
// bench/gateway.sh through its public APIs only, as an operator would: with
// the bootstrap principal's credentials it creates an OpenAI account, a
// deployment "chat" forwarding to the benchmark upstream, and a Cognitive
// Services OpenAI User assignment for itself; then it obtains the three
// credentials the benchmark sends — the account's key, an STS token traded
// for it, and an identity token of the bootstrap principal — and writes
// them as shell assignments (KEY=…, STS=…, IDENTITY=…, CHAT_URL=…).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
)

// bootstrap is the file `gatehouse serve --bootstrap-file` writes.
type bootstrap struct {
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	AuthorityHost  string `json:"authorityHost"`
	CAFile         string `json:"caFile"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	ARMEndpoint    string `json:"armEndpoint"`
}

const openAIUserRole = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd" // Cognitive Services OpenAI User

func main() {
	bootFile := flag.String("bootstrap", "", "bootstrap file of the node")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "upstream base URL")
	account := flag.String("account", "bench", "account name")
	out := flag.String("out", "", "file to write the shell assignments to (default stdout)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var b bootstrap
	data, err := os.ReadFile(*bootFile)
	check(err)
	check(json.Unmarshal(data, &b))
	pem, err := os.ReadFile(b.CAFile)
	check(err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute}
	opts := azcore.ClientOptions{Transport: hc, Cloud: cloud.Configuration{
		ActiveDirectoryAuthorityHost: b.AuthorityHost + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: b.ARMEndpoint, Audience: "https://management.azure.com"},
		}}}
	cred, err := azidentity.NewClientSecretCredential(b.TenantID, b.ClientID, b.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	check(err)

	accounts, err := armcognitiveservices.NewAccountsClient(b.SubscriptionID, cred, &arm.ClientOptions{ClientOptions: opts})
	check(err)
	poller, err := accounts.BeginCreate(ctx, b.ResourceGroup, *account, armcognitiveservices.Account{
		Kind: ptr("OpenAI"), Location: ptr("local"), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}, nil)
	check(err)
	acct, err := poller.PollUntilDone(ctx, nil)
	check(err)
	keys, err := accounts.ListKeys(ctx, b.ResourceGroup, *account, nil)
	check(err)
	endpoint := *acct.Properties.Endpoint

	// The deployment, through the management API's properties.upstream
	// extension (the SDK's Deployment type has no field for it).
	mgmt, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	check(err)
	body, _ := json.Marshal(map[string]any{"sku": map[string]any{"name": "Standard", "capacity": 1},
		"properties": map[string]any{"model": map[string]any{"format": "OpenAI", "name": "stub"},
			"upstream": map[string]any{"endpoint": *upstream, "key": "bench-upstream-key"}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, b.ARMEndpoint+*acct.ID+"/deployments/chat?api-version=2025-06-01", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+mgmt.Token)
	req.Header.Set("Content-Type", "application/json")
	mustOK(hc.Do(req))

	// The bootstrap principal may chat with its identity.
	assignments, err := armauthorization.NewRoleAssignmentsClient(b.SubscriptionID, cred, &arm.ClientOptions{ClientOptions: opts})
	check(err)
	_, err = assignments.Create(ctx, *acct.ID, newGUID(), armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: ptr("/subscriptions/" + b.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + openAIUserRole),
			PrincipalID:      ptr(oid(mgmt.Token)),
		}}, nil)
	check(err)

	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"sts/v1.0/issueToken", nil)
	req.Header.Set("Ocp-Apim-Subscription-Key", *keys.Key1)
	sts := mustOK(hc.Do(req))
	ident, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://cognitiveservices.azure.com/.default"}})
	check(err)

	w := os.Stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		check(err)
		defer f.Close()
		w = f
	}
	fmt.Fprintf(w, "KEY=%s\nSTS=%s\nIDENTITY=%s\nCHAT_URL=%s\n", *keys.Key1, strings.TrimSpace(sts), ident.Token,
		endpoint+"openai/deployments/chat/chat/completions?api-version=2024-10-21")
}

func mustOK(resp *http.Response, err error) string {
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		log.Fatalf("%s %s: %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b)
	}
	return string(b)
}

// oid reads the object id from an access token (no verification: it is
// our own token from our own server).
func oid(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		log.Fatal("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	check(err)
	var c struct{ OID string }
	check(json.Unmarshal(payload, &c))
	return c.OID
}

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		log.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func ptr[T any](v T) *T { return &v }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
