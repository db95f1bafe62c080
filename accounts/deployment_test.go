package accounts_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

func deploymentNode(t *testing.T, s storage.Store) *accounts.Deployments {
	t.Helper()
	w := teststore.NewWatcher(s)
	d := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: sealer(t)})
	teststore.StartWatcher(t, w, d.Load)
	return d
}

func TestDeployments(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		kr := sealer(t)
		w1, w2 := teststore.NewWatcher(s), teststore.NewWatcher(s)
		n1 := accounts.NewDeployments(ctx, s, w1, accounts.DeploymentOptions{Sealer: kr})
		n2 := accounts.NewDeployments(ctx, s, w2, accounts.DeploymentOptions{Sealer: kr})
		teststore.StartWatcher(t, w1, n1.Load)
		teststore.StartWatcher(t, w2, n2.Load)
		acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai",
			Name: "oai", Kind: "OpenAI", InternalID: "abc123"}
		key := "upstream-secret"
		dep, created, err := n1.PutDeployment(ctx, acct, "Chat", accounts.DeploymentSpec{
			Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "http://127.0.0.1:8000", Key: &key}, accounts.Actor{ObjectID: "me"})
		if err != nil || !created {
			t.Fatalf("create: %v %v", created, err)
		}
		if dep.ID != acct.ID+"/deployments/Chat" || !dep.Upstream.HasKey || dep.Model.Format != "OpenAI" || dep.SKU.Name != "Standard" {
			t.Errorf("deployment %+v", dep)
		}
		dp, ok := n1.Lookup("ABC123", "chat")
		if !ok || dp.Key != key || dp.Model != "gpt-4o" || dp.Upstream.Host != "127.0.0.1:8000" {
			t.Fatalf("lookup on the writing node: %+v %v", dp, ok)
		}
		// The other node learns it through the change feed.
		if err := w2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if dp, ok := n2.Lookup("abc123", "CHAT"); !ok || dp.Key != key {
			t.Errorf("lookup on the other node: %+v %v", dp, ok)
		}

		// Replacing without a key keeps the key for the same endpoint and
		// header; for another the key must be given again (whoever may
		// write deployments must not have it sent to a server of theirs).
		dep, created, err = n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{
			Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "http://127.0.0.1:8000", UpstreamModel: "llama"}, accounts.Actor{})
		if err != nil || created || !dep.Upstream.HasKey {
			t.Fatalf("update: %+v %v %v", dep, created, err)
		}
		for _, spec := range []accounts.DeploymentSpec{
			{Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "https://attacker.example/v1", UpstreamModel: "llama"},
			{Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "http://127.0.0.1:8000", UpstreamModel: "llama", KeyHeader: "X-Logged"},
		} {
			_, _, err := n1.PutDeployment(ctx, acct, "chat", spec, accounts.Actor{})
			var ge *gatehouse.Error
			if !errors.As(err, &ge) || ge.Status != 400 || ge.Code != "InvalidUpstream" || ge.Target != "properties.upstream.key" {
				t.Errorf("%s %s without the key: %v", spec.Endpoint, spec.KeyHeader, err)
			}
		}
		if dp, _ := n1.Lookup("abc123", "chat"); dp.Key != key || dp.Upstream.Host != "127.0.0.1:8000" || dp.KeyHeader != "" {
			t.Errorf("after refused updates: %+v", dp)
		}
		dep, _, err = n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{
			Model: accounts.DeploymentModel{Name: "gpt-4o"}, Endpoint: "https://up.example/v1", UpstreamModel: "llama", KeyHeader: "api-key", Key: &key}, accounts.Actor{})
		if err != nil || !dep.Upstream.HasKey {
			t.Fatalf("update with the key again: %+v %v", dep, err)
		}
		if dp, _ := n1.Lookup("abc123", "chat"); dp.Key != key || dp.Model != "llama" || dp.KeyHeader != "api-key" || dp.Upstream.Host != "up.example" {
			t.Errorf("after update: %+v", dp)
		}
		empty := ""
		if dep, _, _ := n1.PutDeployment(ctx, acct, "chat", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"},
			Endpoint: "http://x", Key: &empty}, accounts.Actor{}); dep.Upstream.HasKey {
			t.Error("an empty key did not remove the key")
		}
		if dp, _ := n1.Lookup("abc123", "chat"); dp.Key != "" {
			t.Error("the index still has the removed key")
		}

		list, err := n1.ListDeployments(ctx, acct)
		if err != nil || len(list) != 1 {
			t.Fatalf("list %v %v", list, err)
		}
		// Another instance of the account (deleted and created again) does
		// not see the old deployments.
		again := *acct
		again.InternalID = "def456"
		if list, _ := n1.ListDeployments(ctx, &again); len(list) != 0 {
			t.Errorf("a new account instance sees %d old deployments", len(list))
		}
		if _, ok := n1.Lookup("def456", "chat"); ok {
			t.Error("a new account instance serves an old deployment")
		}

		if ok, err := n1.DeleteDeployment(ctx, acct, "CHAT"); !ok || err != nil {
			t.Fatalf("delete %v %v", ok, err)
		}
		if _, ok := n1.Lookup("abc123", "chat"); ok {
			t.Error("the writing node still serves a deleted deployment")
		}
		if _, err := n1.GetDeployment(ctx, acct, "chat"); err == nil {
			t.Error("get after delete")
		}
		if ok, _ := n1.DeleteDeployment(ctx, acct, "chat"); ok {
			t.Error("second delete reported a deletion")
		}
	})
}

func TestDeploymentValidation(t *testing.T) {
	d := deploymentNode(t, teststore.SQLite(t))
	ctx := context.Background()
	oai := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a", Kind: "OpenAI", InternalID: "i1"}
	lang := &accounts.Account{ID: oai.ID, Kind: "TextAnalytics", InternalID: "i2"}
	good := accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"}, Endpoint: "http://127.0.0.1:1"}
	bad := func(f func(*accounts.DeploymentSpec)) accounts.DeploymentSpec {
		s := good
		f(&s)
		return s
	}
	long := string(make([]byte, 5000))
	tests := []struct {
		name, dep string
		acct      *accounts.Account
		spec      accounts.DeploymentSpec
		code      string
	}{
		{"name-too-short", "a", oai, good, "InvalidResourceName"},
		{"name-bad-char", "a/b", oai, good, "InvalidResourceName"},
		{"name-leading-dash", "-ab", oai, good, "InvalidResourceName"},
		{"kind-without-deployments", "ok", lang, good, "DeploymentNotSupported"},
		{"no-model", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Model.Name = "" }), "InvalidDeploymentModel"},
		{"no-endpoint", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "" }), "InvalidUpstream"},
		{"relative-endpoint", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "/v1" }), "InvalidUpstream"},
		{"ftp-endpoint", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "ftp://x" }), "InvalidUpstream"},
		{"userinfo-endpoint", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "http://u:p@x" }), "InvalidUpstream"},
		{"query-endpoint", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "http://x/?a=1" }), "InvalidUpstream"},
		{"port-out-of-range", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "http://127.0.0.1:99999" }), "InvalidUpstream"},
		{"port-zero", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "http://x:0/v1" }), "InvalidUpstream"},
		{"port-only", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Endpoint = "http://:8080" }), "InvalidUpstream"},
		{"host-key-header", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.KeyHeader = "Host" }), "InvalidUpstream"},
		{"crlf-key-header", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.KeyHeader = "a\r\nb" }), "InvalidUpstream"},
		{"crlf-key", "ok", oai, bad(func(s *accounts.DeploymentSpec) { k := "a\nb"; s.Key = &k }), "InvalidUpstream"},
		{"huge-key", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.Key = &long }), "InvalidUpstream"},
		{"negative-capacity", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.SKU = &accounts.DeploymentSKU{Name: "Standard", Capacity: -1} }), "InvalidCapacity"},
		// Capacity 0 would count as nothing against the quotas and be served without a limit.
		{"zero-capacity", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.SKU = &accounts.DeploymentSKU{Name: "Standard"} }), "InvalidCapacity"},
		{"sku-azure-has-not", "ok", oai, bad(func(s *accounts.DeploymentSpec) { s.SKU = &accounts.DeploymentSKU{Name: "Weird", Capacity: 1} }), "InvalidResourceProperties"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := d.PutDeployment(ctx, tt.acct, tt.dep, tt.spec, accounts.Actor{})
			e, ok := gatehouse.AsError(err)
			if !ok || e.Status != 400 || e.Code != tt.code {
				t.Errorf("error %v, want 400 %s", err, tt.code)
			}
		})
	}
	if l, _ := d.ListDeployments(ctx, oai); len(l) != 0 {
		t.Errorf("a refused request stored %d deployments", len(l))
	}
}

func TestDeploymentsConcurrentCreate(t *testing.T) {
	d := deploymentNode(t, teststore.SQLite(t))
	acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a", Kind: "AIServices", InternalID: "i"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 10 {
		wg.Go(func() {
			_, c, err := d.PutDeployment(context.Background(), acct, "same", accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"}, Endpoint: "http://x"}, accounts.Actor{})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if c {
				created++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d creations reported, want 1", created)
	}
}
