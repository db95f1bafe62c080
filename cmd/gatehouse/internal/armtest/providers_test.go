package armtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// testProviders: a namespace Gatehouse serves is registered (found in any
// case, named as ARM spells it); any other is ARM's 404
// InvalidResourceNamespace, for get, register and unregister alike; a
// served one cannot be unregistered.
func testProviders(t *testing.T, e *env) {
	ctx := t.Context()
	providers, err := armresources.NewProvidersClient(e.sub, e.cred, e.armOptions())
	must(t, err)
	p, err := providers.Get(ctx, "microsoft.cognitiveservices", nil)
	if err != nil || *p.Namespace != "Microsoft.CognitiveServices" || *p.RegistrationState != "Registered" || len(p.ResourceTypes) == 0 {
		t.Fatalf("Get Microsoft.CognitiveServices: %+v %v", p, err)
	}
	if r, err := providers.Register(ctx, "Microsoft.KeyVault", nil); err != nil || *r.RegistrationState != "Registered" {
		t.Fatalf("Register Microsoft.KeyVault: %+v %v", r, err)
	}
	var listed []string
	for pager := providers.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			listed = append(listed, *p.Namespace)
			if _, err := providers.Get(ctx, *p.Namespace, nil); err != nil {
				t.Errorf("a listed namespace: %v", err)
			}
		}
	}
	if !slices.Contains(listed, "Microsoft.Insights") || slices.Contains(listed, "Microsoft.Nope") {
		t.Errorf("listed namespaces: %v", listed)
	}
	if _, err := providers.Get(ctx, "Microsoft.Nope", nil); !isCode(err, 404, "InvalidResourceNamespace") ||
		!strings.Contains(err.Error(), "The resource namespace 'Microsoft.Nope' is invalid.") {
		t.Errorf("Get Microsoft.Nope: %v", err)
	}
	if _, err := providers.Register(ctx, "Microsoft.Nope", nil); !isCode(err, 404, "InvalidResourceNamespace") {
		t.Errorf("Register Microsoft.Nope: %v", err)
	}
	if _, err := providers.Unregister(ctx, "Microsoft.Nope", nil); !isCode(err, 404, "InvalidResourceNamespace") {
		t.Errorf("Unregister Microsoft.Nope: %v", err)
	}
	if _, err := providers.Unregister(ctx, "Microsoft.CognitiveServices", nil); !isCode(err, 400, "ProviderUnregistrationNotSupported") {
		t.Errorf("Unregister Microsoft.CognitiveServices: %v", err)
	}
	if p, err := providers.Get(ctx, "Microsoft.CognitiveServices", nil); err != nil || *p.RegistrationState != "Registered" {
		t.Errorf("after the refused unregister: %+v %v", p, err)
	}
}
