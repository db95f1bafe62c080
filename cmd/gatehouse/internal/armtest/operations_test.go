package armtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
)

// testOperationsCatalog: the actions Gatehouse checks, through the SDKs'
// own clients — armauthorization's ProviderOperationsMetadataClient (az
// provider operation show) and armcognitiveservices' OperationsClient —
// management actions and the data planes' data actions, marked as such;
// an unknown namespace is 404 and a signed-in caller with no role may
// read the catalog, as on Azure.
func testOperationsCatalog(t *testing.T, e *env) {
	ctx := t.Context()
	_, noneCred := e.principal(t, "catalog-reader")
	meta, err := armauthorization.NewProviderOperationsMetadataClient(noneCred, e.armOptions())
	must(t, err)
	got, err := meta.Get(ctx, "microsoft.cognitiveservices", &armauthorization.ProviderOperationsMetadataClientGetOptions{Expand: to.Ptr("resourceTypes")})
	must(t, err)
	if got.Name == nil || *got.Name != "Microsoft.CognitiveServices" || got.Type == nil || *got.Type != "Microsoft.Authorization/providerOperations" {
		t.Fatalf("provider operations: %+v", got.ProviderOperationsMetadata)
	}
	data := map[string]bool{}
	for _, rt := range got.ResourceTypes {
		for _, op := range rt.Operations {
			data[*op.Name] = *op.IsDataAction
			if !strings.HasPrefix(*op.Name, "Microsoft.CognitiveServices/"+*rt.Name+"/") {
				t.Errorf("%s listed under resource type %s", *op.Name, *rt.Name)
			}
		}
	}
	for name, want := range map[string]bool{
		"Microsoft.CognitiveServices/accounts/listKeys/action":                            false,
		"Microsoft.CognitiveServices/accounts/regenerateKey/action":                       false,
		"Microsoft.CognitiveServices/accounts/deployments/write":                          false,
		"Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action": true,
		"Microsoft.CognitiveServices/accounts/Language/analyze-text/action":               true,
	} {
		if isData, ok := data[name]; !ok || isData != want {
			t.Errorf("%s: listed %v, isDataAction %v; want isDataAction %v", name, ok, isData, want)
		}
	}
	// Key Vault: the secrets' data actions and the vaults' management ones.
	kv, err := meta.Get(ctx, "Microsoft.KeyVault", &armauthorization.ProviderOperationsMetadataClientGetOptions{Expand: to.Ptr("resourceTypes")})
	must(t, err)
	var kvNames []string
	for _, rt := range kv.ResourceTypes {
		for _, op := range rt.Operations {
			kvNames = append(kvNames, *op.Name)
		}
	}
	for _, name := range []string{"Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/write"} {
		if !slices.Contains(kvNames, name) {
			t.Errorf("Key Vault's operations lack %s: %v", name, kvNames)
		}
	}
	pager := meta.NewListPager(&armauthorization.ProviderOperationsMetadataClientListOptions{Expand: to.Ptr("resourceTypes")})
	var namespaces []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			namespaces = append(namespaces, *p.Name)
		}
	}
	if !slices.Contains(namespaces, "Microsoft.ManagedIdentity") || !slices.Contains(namespaces, "Microsoft.Authorization") {
		t.Errorf("provider operations list: %v", namespaces)
	}
	if _, err := meta.Get(ctx, "Microsoft.Compute", nil); err == nil || !strings.Contains(err.Error(), "InvalidResourceNamespace") {
		t.Errorf("an unknown namespace: %v", err)
	}

	ops, err := armcognitiveservices.NewOperationsClient(noneCred, e.armOptions())
	must(t, err)
	var listed []*armcognitiveservices.Operation
	for p := ops.NewListPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		must(t, err)
		listed = append(listed, page.Value...)
	}
	i := slices.IndexFunc(listed, func(o *armcognitiveservices.Operation) bool {
		return *o.Name == "Microsoft.CognitiveServices/accounts/listKeys/action"
	})
	if i < 0 || *listed[i].IsDataAction || listed[i].Display == nil || *listed[i].Display.Operation != "List Keys" || *listed[i].Display.Provider != "Microsoft Cognitive Services" {
		t.Fatalf("armcognitiveservices operations: %d listed, listKeys at %d", len(listed), i)
	}

	// $expand is resourceTypes or nothing; the catalog needs a signed-in caller.
	if r := e.do(t, request{method: "GET", path: "/providers/Microsoft.Authorization/providerOperations/Microsoft.KeyVault?api-version=2022-04-01&$expand=everything"}); r.status != 400 {
		t.Errorf("$expand=everything: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "GET", path: "/providers/Microsoft.CognitiveServices/operations?api-version=2024-10-01", token: "-"}); r.status != 401 {
		t.Errorf("without a token: %d %s", r.status, r.body)
	}
}
