package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/storage"
)

func testCatalog(t *testing.T, endpoint, key string) *accounts.Catalog {
	t.Helper()
	c, err := accounts.NewCatalog([]accounts.CatalogModel{
		{Name: "gpt-4o", Versions: []string{"2024-08-06", "2024-05-13"}, Capabilities: map[string]string{"chatCompletion": "true"},
			MaxCapacity: 10, Endpoint: endpoint, UpstreamModel: "llama", Key: key},
		{Format: "Meta", Name: "Llama-3", Endpoint: endpoint, KeyHeader: "api-key", Key: key},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCatalog(t *testing.T) {
	c := testCatalog(t, "http://127.0.0.1:8000", "k")
	for _, tt := range []struct {
		format, name, version string
		ok                    bool
		want                  string
	}{
		{"", "gpt-4o", "", true, "2024-08-06"}, // the default version
		{"openai", "GPT-4O", "2024-05-13", true, "2024-05-13"},
		{"OpenAI", "gpt-4o", "1", false, ""},
		{"Meta", "llama-3", "", true, ""}, // any version
		{"Meta", "Llama-3", "7", true, "7"},
		{"OpenAI", "Llama-3", "", false, ""}, // another format
		{"OpenAI", "gpt-5", "", false, ""},
	} {
		m, v, ok := c.Find(tt.format, tt.name, tt.version)
		if ok != tt.ok || v != tt.want || (ok && m == nil) {
			t.Errorf("Find(%q, %q, %q) = %v, %q, %v; want %q, %v", tt.format, tt.name, tt.version, m, v, ok, tt.want, tt.ok)
		}
	}
	offers := c.Offers()
	if len(offers) != 3 || !offers[0].IsDefaultVersion || offers[1].IsDefaultVersion || offers[1].Version != "2024-05-13" ||
		offers[2].Format != "Meta" || offers[2].Version != "" || !offers[2].IsDefaultVersion || offers[0].MaxCapacity != 10 {
		t.Errorf("offers %+v", offers)
	}
	var none *accounts.Catalog
	if none.Len() != 0 || none.Offers() != nil {
		t.Error("a nil catalog is not empty")
	}
	if _, _, ok := none.Find("", "gpt-4o", ""); ok {
		t.Error("a nil catalog found a model")
	}
}

func TestCatalogValidation(t *testing.T) {
	ok := accounts.CatalogModel{Name: "m", Endpoint: "http://10.0.0.1:8000"}
	for _, tt := range []struct {
		name   string
		models []accounts.CatalogModel
		nets   string
		want   string
	}{
		{"no-name", []accounts.CatalogModel{{Endpoint: "http://x"}}, "", "name is required"},
		{"control-name", []accounts.CatalogModel{{Name: "a\nb", Endpoint: "http://x"}}, "", "name is required"},
		{"no-endpoint", []accounts.CatalogModel{{Name: "m"}}, "", ": upstream.endpoint must be"},
		{"bad-scheme", []accounts.CatalogModel{{Name: "m", Endpoint: "ftp://x"}}, "", ": upstream.endpoint must be"},
		{"credentials-in-url", []accounts.CatalogModel{{Name: "m", Endpoint: "http://u:p@x"}}, "", ": upstream.endpoint must be"},
		{"metadata-service", []accounts.CatalogModel{{Name: "m", Endpoint: "http://169.254.169.254"}}, "", "not in the networks"},
		{"outside-networks", []accounts.CatalogModel{ok}, "192.168.0.0/16", "not in the networks"},
		{"bad-header", []accounts.CatalogModel{{Name: "m", Endpoint: "http://x", KeyHeader: "Host"}}, "", "keyHeader"},
		{"bad-key", []accounts.CatalogModel{{Name: "m", Endpoint: "http://x", Key: "a\r\nb"}}, "", "key must be"},
		{"duplicate", []accounts.CatalogModel{ok, {Name: "M", Format: "openai", Endpoint: "http://x"}}, "", "the same format and name as model 1"},
		{"empty-version", []accounts.CatalogModel{{Name: "m", Endpoint: "http://x", Versions: []string{""}}}, "", "versions must be"},
		{"repeated-version", []accounts.CatalogModel{{Name: "m", Endpoint: "http://x", Versions: []string{"1", "1"}}}, "", "versions must be"},
		{"negative-capacity", []accounts.CatalogModel{{Name: "m", Endpoint: "http://x", MaxCapacity: -1}}, "", "maxCapacity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nets, err := netacl.ParsePrefixes(tt.nets)
			if err != nil {
				t.Fatal(err)
			}
			_, err = accounts.NewCatalog(tt.models, nets)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "a\r\nb") {
				t.Error("the error shows the key")
			}
		})
	}
	// Every problem at once.
	_, err := accounts.NewCatalog([]accounts.CatalogModel{{Name: "a"}, {Name: "b", Endpoint: "http://x", MaxCapacity: -1}}, nil)
	if err == nil || !strings.Contains(err.Error(), "model 1 (a)") || !strings.Contains(err.Error(), "model 2 (b)") {
		t.Errorf("err %v", err)
	}
}

// TestCatalogDeployments: a deployment without an upstream names a catalog
// model and is served by the catalog's upstream; one made before a node's
// catalog lost the model is not served there; a catalog deployment
// replaced with an upstream of its own (and back) keeps nothing of the
// other.
func TestCatalogDeployments(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		kr := sealer(t)
		w1, w2 := teststore.NewWatcher(s), teststore.NewWatcher(s)
		n1 := accounts.NewDeployments(ctx, s, w1, accounts.DeploymentOptions{Sealer: kr, Catalog: testCatalog(t, "http://10.0.0.1:8000", "catalog-key")})
		// The second node's catalog serves gpt-4o elsewhere and lacks Llama-3.
		other, err := accounts.NewCatalog([]accounts.CatalogModel{{Name: "gpt-4o", Versions: []string{"2024-08-06"},
			Endpoint: "http://10.0.0.2:8000", Key: "other-key"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n2 := accounts.NewDeployments(ctx, s, w2, accounts.DeploymentOptions{Sealer: kr, Catalog: other})
		teststore.StartWatcher(t, w1, n1.Load)
		teststore.StartWatcher(t, w2, n2.Load)
		acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai",
			Name: "oai", Kind: "AIServices", InternalID: "cat123"}

		dep, created, err := n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{
			Model: accounts.DeploymentModel{Name: "GPT-4o"}, SKU: &accounts.DeploymentSKU{Name: "Standard", Capacity: 10}}, accounts.Actor{})
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		if !dep.Catalog || dep.Model != (accounts.DeploymentModel{Format: "OpenAI", Name: "gpt-4o", Version: "2024-08-06"}) ||
			dep.Upstream != (accounts.Upstream{}) || dep.Capabilities["chatCompletion"] != "true" {
			t.Errorf("deployment %+v", dep)
		}
		dp, ok := n1.Lookup("cat123", "chat")
		if !ok || dp.Upstream.String() != "http://10.0.0.1:8000" || dp.Model != "llama" || dp.Key != "catalog-key" || dp.Capacity != 10 {
			t.Fatalf("lookup: %+v %v", dp, ok)
		}
		if got, err := n1.GetDeployment(ctx, acct, "chat"); err != nil || !got.Catalog || got.Capabilities == nil {
			t.Errorf("get: %+v %v", got, err)
		}
		// Each node serves it with its own catalog's upstream.
		if err := w2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if dp, ok := n2.Lookup("cat123", "chat"); !ok || dp.Upstream.Host != "10.0.0.2:8000" || dp.Key != "other-key" || dp.Model != "gpt-4o" {
			t.Errorf("other node: %+v %v", dp, ok)
		}
		if _, _, err := n1.PutDeployment(ctx, acct, "llama", accounts.DeploymentSpec{
			Model: accounts.DeploymentModel{Format: "meta", Name: "llama-3", Version: "2"}}, accounts.Actor{}); err != nil {
			t.Fatal(err)
		}
		if dp, ok := n1.Lookup("cat123", "llama"); !ok || dp.KeyHeader != "api-key" || dp.Model != "Llama-3" {
			t.Errorf("llama: %+v %v", dp, ok)
		}
		if err := w2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := n2.Lookup("cat123", "llama"); ok {
			t.Error("a node whose catalog lacks the model serves it")
		}

		for _, tt := range []struct {
			name string
			spec accounts.DeploymentSpec
			code string
		}{
			{"unknown-model", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-5"}}, "DeploymentModelNotSupported"},
			{"unknown-version", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o", Version: "0613"}}, "DeploymentModelNotSupported"},
			{"other-format", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Format: "Meta", Name: "gpt-4o"}}, "DeploymentModelNotSupported"},
			{"over-capacity", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, SKU: &accounts.DeploymentSKU{Name: "Standard", Capacity: 11}}, "InvalidCapacity"},
			// The model lists offer it in Standard and GlobalStandard only.
			{"sku-not-offered", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, SKU: &accounts.DeploymentSKU{Name: "ProvisionedManaged", Capacity: 1}}, "InvalidResourceProperties"},
			{"bad-scale-type", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, ScaleType: "Huge"}, "InvalidScaleType"},
			// An upstream property without the endpoint is not a catalog deployment.
			{"key-without-endpoint", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}, KeyHeader: "api-key"}, "InvalidUpstream"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := n1.PutDeployment(ctx, acct, "bad", tt.spec, accounts.Actor{})
				var ge *gatehouse.Error
				if !errors.As(err, &ge) || ge.Status != 400 || ge.Code != tt.code {
					t.Fatalf("%v, want 400 %s", err, tt.code)
				}
				if strings.Contains(ge.Message, "catalog-key") || strings.Contains(ge.Message, "10.0.0.1") {
					t.Errorf("the error shows the upstream: %s", ge.Message)
				}
			})
		}
		if _, err := n1.GetDeployment(ctx, acct, "bad"); err == nil {
			t.Error("a refused deployment was stored")
		}

		// PATCH: sku and tags, within the model's bound; the rest stays.
		dep, err = n1.PatchDeployment(ctx, acct, "CHAT", &accounts.DeploymentSKU{Name: "GlobalStandard", Capacity: 7},
			map[string]string{"team": "a"}, accounts.Actor{ObjectID: "patcher"})
		if err != nil || dep.SKU.Capacity != 7 || dep.SKU.Name != "GlobalStandard" || dep.Tags["team"] != "a" || !dep.Catalog ||
			dep.UpdatedBy.ObjectID != "patcher" || dep.RaiPolicyName != accounts.DefaultRaiPolicy {
			t.Fatalf("patch: %+v %v", dep, err)
		}
		if dp, _ := n1.Lookup("cat123", "chat"); dp.Capacity != 7 || dp.Key != "catalog-key" {
			t.Errorf("after patch: %+v", dp)
		}
		if dep, err := n1.PatchDeployment(ctx, acct, "chat", nil, nil, accounts.Actor{}); err != nil || dep.SKU.Capacity != 7 || dep.Tags["team"] != "a" {
			t.Errorf("an empty patch changed something: %+v %v", dep, err)
		}
		// SKU names compare in any case, as Azure's do.
		if dep, err := n1.PatchDeployment(ctx, acct, "chat", &accounts.DeploymentSKU{Name: "globalstandard", Capacity: 7}, nil, accounts.Actor{}); err != nil ||
			dep.SKU.Name != "GlobalStandard" {
			t.Errorf("lower-case sku name: %+v %v", dep, err)
		}
		// A capacity alone keeps the sku's name.
		if dep, err := n1.PatchDeployment(ctx, acct, "chat", &accounts.DeploymentSKU{Capacity: 6}, nil, accounts.Actor{}); err != nil ||
			dep.SKU != (accounts.DeploymentSKU{Name: "GlobalStandard", Capacity: 6}) {
			t.Errorf("capacity alone: %+v %v", dep, err)
		}
		if _, err := n1.PatchDeployment(ctx, acct, "chat", &accounts.DeploymentSKU{Name: "GlobalStandard", Capacity: 7}, nil, accounts.Actor{}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name, deployment string
			sku              *accounts.DeploymentSKU
			status           int
			code             string
		}{
			{"over-capacity", "chat", &accounts.DeploymentSKU{Name: "Standard", Capacity: 11}, 400, "InvalidCapacity"},
			{"sku-not-offered", "chat", &accounts.DeploymentSKU{Name: "DeveloperTier", Capacity: 1}, 400, "InvalidResourceProperties"},
			{"negative-capacity", "chat", &accounts.DeploymentSKU{Name: "Standard", Capacity: -1}, 400, "InvalidCapacity"},
			{"long-sku-name", "chat", &accounts.DeploymentSKU{Name: strings.Repeat("s", 65), Capacity: 1}, 400, "InvalidSkuName"},
			{"no-deployment", "nope", &accounts.DeploymentSKU{Name: "Standard", Capacity: 1}, 404, "DeploymentNotFound"},
		} {
			t.Run("patch-"+tt.name, func(t *testing.T) {
				_, err := n1.PatchDeployment(ctx, acct, tt.deployment, tt.sku, nil, accounts.Actor{})
				var ge *gatehouse.Error
				if !errors.As(err, &ge) || ge.Status != tt.status || ge.Code != tt.code {
					t.Fatalf("%v, want %d %s", err, tt.status, tt.code)
				}
			})
		}
		if got, _ := n1.GetDeployment(ctx, acct, "chat"); got.SKU.Capacity != 7 {
			t.Errorf("a refused patch changed the sku: %+v", got.SKU)
		}
		// Azure's settings are kept, canonical; a bad one is refused.
		dep, _, err = n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"},
			RaiPolicyName: "Microsoft.Default", VersionUpgradeOption: "noautoupgrade"}, accounts.Actor{})
		if err != nil || dep.RaiPolicyName != "Microsoft.Default" || dep.VersionUpgradeOption != "NoAutoUpgrade" || dep.Tags != nil {
			t.Fatalf("settings: %+v %v", dep, err)
		}
		if _, _, err := n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"},
			VersionUpgradeOption: "Sometimes"}, accounts.Actor{}); err == nil {
			t.Error("an unknown versionUpgradeOption was kept")
		}

		// Replaced with an upstream of its own: its own key, not the catalog's.
		key := "own-key"
		dep, _, err = n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"},
			Endpoint: "http://10.0.0.3:8000", Key: &key}, accounts.Actor{})
		if err != nil || dep.Catalog || !dep.Upstream.HasKey || dep.Capabilities != nil {
			t.Fatalf("own upstream: %+v %v", dep, err)
		}
		if dp, _ := n1.Lookup("cat123", "chat"); dp.Key != key || dp.Upstream.Host != "10.0.0.3:8000" {
			t.Errorf("own upstream: %+v", dp)
		}
		// And back to the catalog: the sealed key goes.
		dep, _, err = n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}}, accounts.Actor{})
		if err != nil || !dep.Catalog || dep.Upstream.HasKey {
			t.Fatalf("back to the catalog: %+v %v", dep, err)
		}
		if dp, _ := n1.Lookup("cat123", "chat"); dp.Key != "catalog-key" {
			t.Errorf("back to the catalog: %+v", dp)
		}
	})
}

// TestNoCatalog: without a catalog, a deployment needs its upstream.
func TestNoCatalog(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		d := deploymentNode(t, s)
		acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai",
			Name: "oai", Kind: "OpenAI", InternalID: "nocat"}
		_, _, err := d.PutDeployment(context.Background(), acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}}, accounts.Actor{})
		var ge *gatehouse.Error
		if !errors.As(err, &ge) || ge.Code != "InvalidUpstream" || !strings.Contains(ge.Message, "--models") {
			t.Errorf("%v", err)
		}
	})
}

// TestSetCatalogConcurrent: catalog swaps (serve's SIGHUP) while the
// gateway looks deployments up and the API writes them — for the race
// detector, and so that no change is lost to a concurrent reload.
func TestSetCatalogConcurrent(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		w := teststore.NewWatcher(s)
		a, b := testCatalog(t, "http://10.0.0.1:8000", "key-a"), testCatalog(t, "http://10.0.0.2:8000", "key-b")
		d := accounts.NewDeployments(ctx, s, w, accounts.DeploymentOptions{Sealer: sealer(t), Catalog: a})
		teststore.StartWatcher(t, w, d.Load)
		acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai",
			Name: "oai", Kind: "OpenAI", InternalID: "swap1"}
		if _, _, err := d.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}}, accounts.Actor{}); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the gateway
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if dp, ok := d.Lookup("swap1", "chat"); !ok || (dp.Key != "key-a" && dp.Key != "key-b") {
					t.Errorf("lookup during swaps: %+v %v", dp, ok)
					return
				}
			}
		}()
		go func() { // the API
			defer wg.Done()
			for i := range 20 {
				if _, _, err := d.PutDeployment(ctx, acct, fmt.Sprintf("d%d", i), accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "gpt-4o"}}, accounts.Actor{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for i := range 20 {
			c := a
			if i%2 == 0 {
				c = b
			}
			if err := d.SetCatalog(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		if err := d.SetCatalog(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		// Every deployment written during the swaps is served, by the last catalog.
		for i := range 20 {
			if dp, ok := d.Lookup("swap1", fmt.Sprintf("d%d", i)); !ok || dp.Key != "key-b" {
				t.Errorf("d%d after the swaps: %+v %v", i, dp, ok)
			}
		}
	})
}
