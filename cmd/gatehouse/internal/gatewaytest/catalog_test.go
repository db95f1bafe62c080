package gatewaytest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
)

// catalogUpstreamModel is the model name the catalog sends upstream for
// gpt-4o-mini (the test upstream echoes it).
const catalogUpstreamModel = testenv.CatalogUpstreamModel

// testCatalogDeployments: a deployment made the Azure way — model and sku
// only, with armcognitiveservices' DeploymentsClient — names a model of
// the node's catalog and is served by the catalog's upstream with the
// catalog's credential; the account's model list and the location's show
// the catalog; a model the catalog lacks is refused.
func testCatalogDeployments(t *testing.T, e *env) {
	a := e.createAccount(t, "catalog-ai", "AIServices", nil)
	opts := &arm.ClientOptions{ClientOptions: e.ClientOptions()}
	deployments, err := armcognitiveservices.NewDeploymentsClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	poller, err := deployments.BeginCreateOrUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.Deployment{
		SKU: &armcognitiveservices.SKU{Name: ptr("GlobalStandard"), Capacity: ptr[int32](5)},
		Properties: &armcognitiveservices.DeploymentProperties{Model: &armcognitiveservices.DeploymentModel{
			Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := poller.PollUntilDone(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Properties.Model.Version != "2024-07-18" || *dep.SKU.Capacity != 5 || *dep.Properties.Capabilities["chatCompletion"] != "true" ||
		*dep.Properties.ProvisioningState != armcognitiveservices.DeploymentProvisioningStateSucceeded {
		t.Errorf("deployment %+v %+v", dep.Properties.Model, dep.SKU)
	}
	// Azure's defaults for what was not given; what was given is kept.
	if *dep.Properties.RaiPolicyName != "Microsoft.DefaultV2" ||
		*dep.Properties.VersionUpgradeOption != armcognitiveservices.DeploymentModelVersionUpgradeOptionOnceNewDefaultVersionAvailable {
		t.Errorf("defaults: %v %v", *dep.Properties.RaiPolicyName, *dep.Properties.VersionUpgradeOption)
	}
	// PATCH (BeginUpdate): sku and tags; the model's capacity bound holds.
	upd, err := deployments.BeginUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.PatchResourceTagsAndSKU{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](8)}, Tags: map[string]*string{"team": ptr("a")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := upd.PollUntilDone(t.Context(), nil)
	if err != nil || *patched.SKU.Capacity != 8 || *patched.SKU.Name != "Standard" || *patched.Tags["team"] != "a" ||
		*patched.Properties.Model.Version != "2024-07-18" {
		t.Fatalf("update: %+v %v", patched.SKU, err)
	}
	if _, err := deployments.BeginUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.PatchResourceTagsAndSKU{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](21)}}, nil); !isCode(err, 400, "InvalidCapacity") {
		t.Errorf("update over the model's capacity: %v", err)
	}
	// Capacity 0 would count as nothing against the quotas: refused, as
	// Azure refuses it; a PATCH of the sku's name alone keeps the capacity.
	if _, err := deployments.BeginUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.PatchResourceTagsAndSKU{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](0)}}, nil); !isCode(err, 400, "InvalidCapacity") {
		t.Errorf("update to capacity 0: %v", err)
	}
	if upd, err := deployments.BeginUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.PatchResourceTagsAndSKU{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard")}}, nil); err != nil {
		t.Errorf("update of the sku name alone: %v", err)
	} else if patched, err := upd.PollUntilDone(t.Context(), nil); err != nil || *patched.SKU.Capacity != 8 {
		t.Errorf("update of the sku name alone: %+v %v", patched.SKU, err)
	}
	// The skus it can have: its own, up to the model's capacity bound.
	if page, err := deployments.NewListSKUsPager(e.group, a.name, "mini", nil).NextPage(t.Context()); err != nil || len(page.Value) != 1 ||
		*page.Value[0].SKU.Name != "Standard" || *page.Value[0].Capacity.Maximum != 20 || *page.Value[0].Capacity.Default != 8 ||
		*page.Value[0].ResourceType != "Microsoft.CognitiveServices/accounts/deployments" {
		t.Errorf("ListSKUs: %+v %v", page.Value, err)
	}
	if _, err := deployments.NewListSKUsPager(e.group, a.name, "none", nil).NextPage(t.Context()); !isCode(err, 404, "DeploymentNotFound") {
		t.Errorf("ListSKUs of no deployment: %v", err)
	}
	if _, err := deployments.BeginUpdate(t.Context(), e.group, a.name, "none", armcognitiveservices.PatchResourceTagsAndSKU{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](1)}}, nil); !isCode(err, 404, "DeploymentNotFound") {
		t.Errorf("update of no deployment: %v", err)
	}
	// A replace with Azure's settings keeps them (a template read back
	// shows what it sent).
	poller, err = deployments.BeginCreateOrUpdate(t.Context(), e.group, a.name, "mini", armcognitiveservices.Deployment{
		SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](8)},
		Properties: &armcognitiveservices.DeploymentProperties{
			Model:                &armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini"), Version: ptr("2024-07-18")},
			RaiPolicyName:        ptr("Microsoft.Default"),
			VersionUpgradeOption: ptr(armcognitiveservices.DeploymentModelVersionUpgradeOptionNoAutoUpgrade)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := deployments.Get(t.Context(), e.group, a.name, "mini", nil); err != nil || *got.Properties.RaiPolicyName != "Microsoft.Default" ||
		*got.Properties.VersionUpgradeOption != armcognitiveservices.DeploymentModelVersionUpgradeOptionNoAutoUpgrade {
		t.Errorf("settings kept: %+v %v", got.Properties, err)
	}
	r := e.arm(t, http.MethodGet, a.id+"/deployments/mini", "")
	if strings.Contains(string(r.body), e.up.URL) || strings.Contains(string(r.body), "upstream") {
		t.Errorf("the deployment shows the catalog's upstream: %s", r.body)
	}

	// Served by the catalog's upstream, which sees its own key and never
	// the client's.
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	if reply := chat(t, c, "mini", "hello"); !strings.HasPrefix(reply, "echo from "+catalogUpstreamModel) {
		t.Errorf("reply %q", reply)
	}
	if e.up.SawSecret(a.key1) {
		t.Error("the upstream saw the client's key")
	}

	// The dated API's model list (openai-go's Models.List with the Azure
	// options) shows the catalog too.
	var ids []string
	for pager := c.Models.ListAutoPaging(t.Context()); pager.Next(); {
		m := pager.Current()
		ids = append(ids, m.ID)
		if m.ID == "gpt-4o-mini-2024-07-18" && !strings.Contains(m.RawJSON(), `"chat_completion":true`) {
			t.Errorf("model %s", m.RawJSON())
		}
	}
	if strings.Join(ids, ",") != "gpt-4o-mini-2024-07-18,gpt-4o-mini-2024-05-13,text-embedding-3-small" {
		t.Errorf("models.list: %v", ids)
	}
	if m, err := c.Models.Get(t.Context(), "text-embedding-3-small"); err != nil || m.ID != "text-embedding-3-small" {
		t.Errorf("models.retrieve: %+v %v", m, err)
	}
	var apiErr *openai.Error
	if _, err := c.Models.Get(t.Context(), "gpt-5"); !asError(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("models.retrieve of no model: %v", err)
	}

	// The lists show the catalog, one entry per version.
	accountsClient, err := armcognitiveservices.NewAccountsClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for pager := accountsClient.NewListModelsPager(e.group, a.name, nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Value {
			v := ""
			if m.Version != nil {
				v = *m.Version
			}
			names = append(names, *m.Name+"@"+v)
			if *m.Name == "gpt-4o-mini" && v == "2024-07-18" && (!*m.IsDefaultVersion || *m.MaxCapacity != 20 || len(m.SKUs) == 0 ||
				*m.SKUs[0].Capacity.Maximum != 20 || *m.Format != "OpenAI") {
				t.Errorf("model %+v", m)
			}
		}
	}
	if strings.Join(names, ",") != "gpt-4o-mini@2024-07-18,gpt-4o-mini@2024-05-13,text-embedding-3-small@" {
		t.Errorf("account models %v", names)
	}
	models, err := armcognitiveservices.NewModelsClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for pager := models.NewListPager("westus", nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Value {
			if *m.Kind != "OpenAI" && *m.Kind != "AIServices" || m.Model == nil || m.Model.Name == nil {
				t.Errorf("location model %+v", m)
			}
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d location models, want 3 per kind", n)
	}
	lang := e.createAccount(t, "catalog-lang", "TextAnalytics", nil)
	if r := e.arm(t, http.MethodGet, lang.id+"/models", ""); r.status != 200 || string(r.body) != `{"value":[]}` {
		t.Errorf("a Language account's models: %d %s", r.status, r.body)
	}

	// What the catalog does not offer is refused, and nothing is stored.
	for _, tt := range []struct {
		name  string
		model armcognitiveservices.DeploymentModel
		sku   *armcognitiveservices.SKU
		code  string
	}{
		{"unknown-model", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-5")}, nil, "DeploymentModelNotSupported"},
		{"unknown-version", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini"), Version: ptr("0613")}, nil, "DeploymentModelNotSupported"},
		{"over-capacity", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")},
			&armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](21)}, "InvalidCapacity"},
		{"zero-capacity", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")},
			&armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr[int32](0)}, "InvalidCapacity"},
		// The model lists show the catalog's models in Standard and GlobalStandard only.
		{"sku-not-listed", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")},
			&armcognitiveservices.SKU{Name: ptr("ProvisionedManaged"), Capacity: ptr[int32](1)}, "InvalidResourceProperties"},
		{"bad-upgrade-option", armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")}, nil, "InvalidVersionUpgradeOption"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			props := &armcognitiveservices.DeploymentProperties{Model: &tt.model}
			if tt.name == "bad-upgrade-option" {
				props.VersionUpgradeOption = ptr(armcognitiveservices.DeploymentModelVersionUpgradeOption("Sometimes"))
			}
			_, err := deployments.BeginCreateOrUpdate(t.Context(), e.group, a.name, "refused", armcognitiveservices.Deployment{
				SKU: tt.sku, Properties: props}, nil)
			var re *azcore.ResponseError
			if !asError(err, &re) || re.StatusCode != 400 || re.ErrorCode != tt.code {
				t.Fatalf("%v, want 400 %s", err, tt.code)
			}
			if strings.Contains(err.Error(), upstreamKey) || strings.Contains(err.Error(), e.up.URL) {
				t.Errorf("the error shows the catalog's upstream: %v", err)
			}
		})
	}
	if _, err := deployments.Get(t.Context(), e.group, a.name, "refused", nil); !isStatus(err, 404) {
		t.Errorf("a refused deployment: %v", err)
	}
	e.AssertNotLogged(t, upstreamKey, a.key1)
}

// testModelQuota: the catalog's quota of gpt-4o-mini (50 a subscription
// and location per sku) shows in armcognitiveservices' UsagesClient with
// the usageName the model lists give, fills with the deployments of every
// account in the location, and refuses one more with Azure's 400
// InsufficientQuota; a deployment freed by a delete is free again. Its
// own location keeps it apart from the other scenarios' deployments.
func testModelQuota(t *testing.T, e *env) {
	const location = "northeurope"
	opts := &arm.ClientOptions{ClientOptions: e.ClientOptions()}
	usages, err := armcognitiveservices.NewUsagesClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	deployments, err := armcognitiveservices.NewDeploymentsClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	usage := func(name string) *armcognitiveservices.Usage {
		t.Helper()
		var found *armcognitiveservices.Usage
		n := 0
		for pager := usages.NewListPager(location, nil); pager.More(); {
			page, err := pager.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Value {
				n++
				if *u.Name.Value == name {
					found = u
				}
			}
		}
		if n != 4 || found == nil {
			t.Fatalf("%d usages, %s among them: %v", n, name, found != nil)
		}
		return found
	}
	u := usage("OpenAI.Standard.gpt-4o-mini")
	if *u.CurrentValue != 0 || *u.Limit != 50 || *u.Unit != armcognitiveservices.UnitTypeCount ||
		*u.Name.LocalizedValue != "Tokens Per Minute (thousands) - gpt-4o-mini" {
		t.Errorf("usage %+v %+v", u, u.Name)
	}
	if u := usage("OpenAI.GlobalStandard.text-embedding-3-small"); *u.Limit != 2147483647 {
		t.Errorf("a model without a quota: limit %v", *u.Limit)
	}
	// $filter names usages (name.value eq, joined by or), as the SDKs document it.
	filtered := func(f string) (names []string, err error) {
		page, err := usages.NewListPager(location, &armcognitiveservices.UsagesClientListOptions{Filter: &f}).NextPage(t.Context())
		for _, u := range page.Value {
			names = append(names, *u.Name.Value)
		}
		return names, err
	}
	if got, err := filtered("name.value eq 'OpenAI.Standard.gpt-4o-mini'"); err != nil || len(got) != 1 || got[0] != "OpenAI.Standard.gpt-4o-mini" {
		t.Errorf("filtered usages: %v %v", got, err)
	}
	if got, err := filtered("name.value eq 'openai.standard.gpt-4o-mini' or name.value eq 'OpenAI.GlobalStandard.text-embedding-3-small'"); err != nil || len(got) != 2 {
		t.Errorf("usages filtered by two names: %v %v", got, err)
	}
	if _, err := filtered("kind eq 'x'"); !isCode(err, 400, "UnsupportedQuery") {
		t.Errorf("an unsupported usages filter: %v", err)
	}
	// A location the server does not have is refused, as creating there is.
	if _, err := usages.NewListPager("mars", nil).NextPage(t.Context()); !isCode(err, 400, "LocationNotAvailableForResourceType") {
		t.Errorf("usages of an unknown location: %v", err)
	}

	deploy := func(account, name string, capacity int32) error {
		poller, err := deployments.BeginCreateOrUpdate(t.Context(), e.group, account, name, armcognitiveservices.Deployment{
			SKU: &armcognitiveservices.SKU{Name: ptr("Standard"), Capacity: ptr(capacity)},
			Properties: &armcognitiveservices.DeploymentProperties{Model: &armcognitiveservices.DeploymentModel{
				Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini")}}}, nil)
		if err == nil {
			_, err = poller.PollUntilDone(t.Context(), nil)
		}
		return err
	}
	var names []string
	for i, kind := range []string{"OpenAI", "AIServices"} {
		name := fmt.Sprintf("quota-%d", i)
		poller, err := e.accounts.BeginCreate(t.Context(), e.group, name, armcognitiveservices.Account{
			Kind: ptr(kind), Location: ptr(location), SKU: &armcognitiveservices.SKU{Name: ptr("S0")}}, nil)
		if err == nil {
			_, err = poller.PollUntilDone(t.Context(), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	for _, d := range []struct {
		account, name string
		capacity      int32
	}{{names[0], "a", 20}, {names[0], "b", 20}, {names[1], "c", 10}} {
		if err := deploy(d.account, "mini-"+d.name, d.capacity); err != nil {
			t.Fatal(err)
		}
	}
	if u := usage("OpenAI.Standard.gpt-4o-mini"); *u.CurrentValue != 50 {
		t.Errorf("usage after 50: %v", *u.CurrentValue)
	}
	err = deploy(names[1], "mini-d", 1)
	var re *azcore.ResponseError
	if !asError(err, &re) || re.StatusCode != 400 || re.ErrorCode != "InsufficientQuota" ||
		!strings.Contains(err.Error(), "The current quota usage is 50 and the quota limit is 50 for quota Tokens Per Minute (thousands) - gpt-4o-mini.") {
		t.Fatalf("over the quota: %v", err)
	}
	poller, err := deployments.BeginDelete(t.Context(), e.group, names[0], "mini-b", nil)
	if err == nil {
		_, err = poller.PollUntilDone(t.Context(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := deploy(names[1], "mini-d", 20); err != nil {
		t.Errorf("after a delete freed 20: %v", err)
	}
	if u := usage("OpenAI.Standard.gpt-4o-mini"); *u.CurrentValue != 50 {
		t.Errorf("usage: %v", *u.CurrentValue)
	}
	testModelCapacities(t, e, location)
}

// testModelCapacities: armcognitiveservices' model capacity clients show
// what is left of a catalog model's quota in each location and sku —
// none of gpt-4o-mini's Standard quota in location, which testModelQuota
// filled; in GlobalStandard the most one deployment may have (its
// maxCapacity, 20) — and the capacity calculator sizes a workload in the
// gateway's units (1,000 tokens and 6 requests a minute).
func testModelCapacities(t *testing.T, e *env, location string) {
	opts := &arm.ClientOptions{ClientOptions: e.ClientOptions()}
	local, err := armcognitiveservices.NewLocationBasedModelCapacitiesClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for pager := local.NewListPager(location, "OpenAI", "gpt-4o-mini", "2024-07-18", nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Value {
			p := v.Properties
			got = append(got, fmt.Sprintf("%s %s %s/%s/%s %g", *v.Location, *p.SKUName, *p.Model.Format, *p.Model.Name, *p.Model.Version, *p.AvailableCapacity))
			if *v.Name != *p.SKUName || *v.Type != "Microsoft.CognitiveServices/locations/models/skuCapacities" ||
				*v.ID != "/subscriptions/"+e.sub+"/providers/Microsoft.CognitiveServices/locations/"+location+"/models/OpenAI.gpt-4o-mini.2024-07-18/skuCapacities/"+*p.SKUName {
				t.Errorf("capacity %s %s %s", *v.ID, *v.Name, *v.Type)
			}
		}
	}
	if strings.Join(got, "; ") != location+" Standard OpenAI/gpt-4o-mini/2024-07-18 0; "+location+" GlobalStandard OpenAI/gpt-4o-mini/2024-07-18 20" {
		t.Errorf("capacities in %s: %v", location, got)
	}
	every, err := armcognitiveservices.NewModelCapacitiesClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	locations := map[string]bool{}
	for pager := every.NewListPager("OpenAI", "gpt-4o-mini", "2024-07-18", nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Value {
			locations[*v.Location] = true
			if *v.Location == location && *v.Properties.SKUName == "Standard" && *v.Properties.AvailableCapacity != 0 {
				t.Errorf("%s Standard: %g", location, *v.Properties.AvailableCapacity)
			}
		}
	}
	if !locations[location] || !locations["eastus"] || len(locations) < 10 {
		t.Errorf("the subscription's capacities name %d locations", len(locations))
	}
	for pager := every.NewListPager("OpenAI", "no-such-model", "1", nil); pager.More(); {
		page, err := pager.NextPage(t.Context())
		if err != nil || len(page.Value) != 0 {
			t.Errorf("a model the catalog lacks: %v %v", page.Value, err)
		}
	}
	if r := e.do(t, call{method: http.MethodGet, header: bearer(e.mgmtToken),
		url: e.URL + "/subscriptions/" + e.sub + "/providers/Microsoft.CognitiveServices/modelCapacities?modelFormat=OpenAI&api-version=2025-06-01"}); r.status != 400 ||
		!strings.Contains(string(r.body), `"code":"MissingRequiredParameter"`) {
		t.Errorf("without modelName: %d %s", r.status, r.body)
	}

	mgmt, err := armcognitiveservices.NewManagementClient(e.sub, e.Credential(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	workload := func(rpm, prompt, generated int64) *armcognitiveservices.ModelCapacityCalculatorWorkload {
		return &armcognitiveservices.ModelCapacityCalculatorWorkload{RequestPerMinute: ptr(rpm),
			RequestParameters: &armcognitiveservices.ModelCapacityCalculatorWorkloadRequestParam{AvgPromptTokens: ptr(prompt), AvgGeneratedTokens: ptr(generated)}}
	}
	res, err := mgmt.CalculateModelCapacity(t.Context(), armcognitiveservices.CalculateModelCapacityParameter{
		Model:     &armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4o-mini"), Version: ptr("2024-07-18")},
		SKUName:   ptr("GlobalStandard"),
		Workloads: []*armcognitiveservices.ModelCapacityCalculatorWorkload{workload(10, 300, 500), workload(20, 600, 200)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 24,000 tokens and 30 requests a minute: 24 units and 5.
	if est := res.EstimatedCapacity; *est.Value != 24 || *est.DeployableValue != 24 || *res.SKUName != "GlobalStandard" || *res.Model.Name != "gpt-4o-mini" {
		t.Errorf("estimate %+v %s", est, *res.SKUName)
	}
	_, err = mgmt.CalculateModelCapacity(t.Context(), armcognitiveservices.CalculateModelCapacityParameter{
		Model:     &armcognitiveservices.DeploymentModel{Format: ptr("OpenAI"), Name: ptr("gpt-4"), Version: ptr("0613")},
		SKUName:   ptr("ProvisionedManaged"),
		Workloads: []*armcognitiveservices.ModelCapacityCalculatorWorkload{workload(10, 30, 50)}}, nil)
	if !isCode(err, 400, "DeploymentModelNotSupported") {
		t.Errorf("a model the catalog lacks: %v", err)
	}
}

func isCode(err error, status int, code string) bool {
	var re *azcore.ResponseError
	return asError(err, &re) && re.StatusCode == status && re.ErrorCode == code
}

// TestCatalogReload: serve's SIGHUP (Main.ReloadModels) rereads the
// catalog file; a deployment of a catalog model is then served by the new
// upstream with the new key at once, an invalid file changes nothing, and
// a model the catalog no longer offers is no longer served.
func TestCatalogReload(t *testing.T) {
	e := newEnv(t)
	a := e.createAccount(t, "reload", "OpenAI", nil)
	r := e.arm(t, http.MethodPut, a.id+"/deployments/mini", `{"properties":{"model":{"name":"gpt-4o-mini"}}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	if reply := chat(t, c, "mini", "x"); !strings.HasPrefix(reply, "echo from "+catalogUpstreamModel) {
		t.Fatalf("reply %q", reply)
	}

	// The operator moves the model to another server with another key.
	moved := testenv.NewUpstream(t, "rotated-upstream-key-91f")
	keyFile := filepath.Join(t.TempDir(), "key")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile, moved.Key)
	write(e.Config.Models, "models:\n  - name: gpt-4o-mini\n    versions: [\"2024-07-18\"]\n    upstream: {endpoint: \""+moved.URL+"\", model: moved-model, keyFile: \""+keyFile+"\"}\n")
	if err := e.ReloadModels(t.Context()); err != nil {
		t.Fatal(err)
	}
	if reply := chat(t, c, "mini", "x"); !strings.HasPrefix(reply, "echo from moved-model") {
		t.Errorf("after reload: reply %q", reply)
	}

	// An invalid file is refused, naming the problem; the catalog stays.
	write(e.Config.Models, "models:\n  - name: gpt-4o-mini\n    upstream: {endpoint: \"ftp://x\"}\n")
	if err := e.ReloadModels(t.Context()); err == nil || !strings.Contains(err.Error(), "model 1 (gpt-4o-mini)") {
		t.Errorf("invalid catalog: %v", err)
	}
	if reply := chat(t, c, "mini", "x"); !strings.HasPrefix(reply, "echo from moved-model") {
		t.Errorf("after a refused reload: reply %q", reply)
	}

	// Withdrawn: the deployment stays in the API, the gateway stops
	// serving it, and deploying the model is refused.
	write(e.Config.Models, "models: []\n")
	if err := e.ReloadModels(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	var apiErr *openai.Error
	if !asError(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("a withdrawn model: %v", err)
	}
	if r := e.arm(t, http.MethodGet, a.id+"/deployments/mini", ""); r.status != 200 {
		t.Errorf("the deployment: %d %s", r.status, r.body)
	}
	if r := e.arm(t, http.MethodPut, a.id+"/deployments/other", `{"properties":{"model":{"name":"gpt-4o-mini"}}}`); r.status != 400 {
		t.Errorf("deploying a withdrawn model: %d %s", r.status, r.body)
	}
	e.AssertNotLogged(t, moved.Key, upstreamKey, a.key1)
}
