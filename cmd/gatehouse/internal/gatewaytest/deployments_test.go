package gatewaytest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
)

// testDeployments: Microsoft.CognitiveServices/accounts/deployments in
// the management API — created with properties.upstream, read, listed and
// deleted with armcognitiveservices' DeploymentsClient — and what the
// gateway does with each change.
func testDeployments(t *testing.T, e *env) {
	a := e.createAccount(t, "deploy-arm", "OpenAI", nil)
	path := a.id + "/deployments/gpt"
	r := e.arm(t, http.MethodPut, path, deploymentBody("gpt-4o", e.up.URL, upstreamKey))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), upstreamKey) {
		t.Error("the upstream key is in the response")
	}
	client, err := armcognitiveservices.NewDeploymentsClient(e.sub, e.Credential(t), &arm.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(t.Context(), e.group, a.name, "gpt", nil)
	if err != nil || *got.Name != "gpt" || *got.Properties.Model.Name != "gpt-4o" || *got.Properties.Model.Format != "OpenAI" ||
		*got.Type != "Microsoft.CognitiveServices/accounts/deployments" || *got.SKU.Name != "Standard" ||
		*got.Properties.ProvisioningState != armcognitiveservices.DeploymentProvisioningStateSucceeded {
		t.Fatalf("Get: %+v %v", got, err)
	}
	pager := client.NewListPager(e.group, a.name, nil)
	n := 0
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Errorf("list: %d deployments", n)
	}
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	if reply := chat(t, c, "gpt", "x"); !strings.HasPrefix(reply, "echo from gpt-4o") {
		t.Errorf("reply %q", reply)
	}

	// A PUT without the key keeps it.
	r = e.arm(t, http.MethodPut, path, jsonBody(map[string]any{"properties": map[string]any{
		"model": map[string]any{"name": "gpt-4o"}, "upstream": map[string]any{"endpoint": e.up.URL, "model": "renamed"}}}))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"hasKey":true`) {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if reply := chat(t, c, "gpt", "x"); !strings.HasPrefix(reply, "echo from renamed") {
		t.Errorf("after update: reply %q", reply)
	}
	// ... for the same endpoint only: re-pointed without the key, it would
	// send a key the writer never saw to a server of theirs.
	r = e.arm(t, http.MethodPut, path, jsonBody(map[string]any{"properties": map[string]any{
		"model": map[string]any{"name": "gpt-4o"}, "upstream": map[string]any{"endpoint": "http://127.0.0.2:9", "model": "renamed"}}}))
	if r.status != 400 || r.errorCode(t) != "InvalidUpstream" {
		t.Fatalf("re-pointed without the key: %d %s", r.status, r.body)
	}
	if reply := chat(t, c, "gpt", "x"); !strings.HasPrefix(reply, "echo from renamed") {
		t.Errorf("after a refused re-pointing: reply %q", reply)
	}

	for _, tt := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		// Without an upstream the model must be the catalog's (catalog_test.go).
		{"no-upstream-not-in-catalog", a.id + "/deployments/bad", `{"properties":{"model":{"name":"m"}}}`, 400, "DeploymentModelNotSupported"},
		{"upstream-key-without-endpoint", a.id + "/deployments/bad", `{"properties":{"model":{"name":"gpt-4o-mini"},"upstream":{"key":"k"}}}`, 400, "InvalidUpstream"},
		{"bad-endpoint", a.id + "/deployments/bad", deploymentBody("m", "ftp://x", ""), 400, "InvalidUpstream"},
		{"metadata-service-endpoint", a.id + "/deployments/bad", deploymentBody("m", "http://169.254.169.254/", ""), 400, "InvalidUpstream"},
		{"link-local-v6-endpoint", a.id + "/deployments/bad", deploymentBody("m", "http://[fe80::1]:8080/", ""), 400, "InvalidUpstream"},
		{"aws-v6-metadata-endpoint", a.id + "/deployments/bad", deploymentBody("m", "http://[fd00:ec2::254]/", ""), 400, "InvalidUpstream"},
		{"nat64-metadata-endpoint", a.id + "/deployments/bad", deploymentBody("m", "http://[64:ff9b::a9fe:a9fe]/", ""), 400, "InvalidUpstream"},
		{"bad-name", a.id + "/deployments/b@d", deploymentBody("m", e.up.URL, ""), 400, "InvalidResourceName"},
		{"no-model", a.id + "/deployments/bad", `{"properties":{"upstream":{"endpoint":"http://x"}}}`, 400, "InvalidDeploymentModel"},
		{"malformed-json", a.id + "/deployments/bad", `{"properties":`, 400, "InvalidRequestContent"},
		{"unknown-account", "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.CognitiveServices/accounts/nope/deployments/xy",
			deploymentBody("m", e.up.URL, ""), 404, "ResourceNotFound"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.arm(t, http.MethodPut, tt.path, tt.body)
			if r.status != tt.status || r.errorCode(t) != tt.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	t.Run("language-account", func(t *testing.T) {
		l := e.createAccount(t, "deploy-lang", "TextAnalytics", nil)
		r := e.arm(t, http.MethodPut, l.id+"/deployments/xy", deploymentBody("m", e.up.URL, ""))
		if r.status != 400 || r.errorCode(t) != "DeploymentNotSupported" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("openai-user-cannot-write", func(t *testing.T) {
		_, cred := e.principal(t, "deploy-user", a, authz.RoleCognitiveServicesOpenAIUser)
		r := e.do(t, call{method: http.MethodPut, url: e.URL + a.id + "/deployments/other?api-version=2025-06-01",
			header: bearer(e.Token(t, cred, "https://management.azure.com/.default")), body: deploymentBody("m", e.up.URL, "")})
		if r.status != 403 || r.errorCode(t) != "AuthorizationFailed" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})

	poller, err := client.BeginDelete(t.Context(), e.group, a.name, "gpt", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	// The gateway stops serving it at once.
	_, err = c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	var apiErr *openai.Error
	if !asError(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "DeploymentNotFound" {
		t.Errorf("after delete: %v", err)
	}
	if _, err := client.Get(t.Context(), e.group, a.name, "gpt", nil); !isStatus(err, 404) {
		t.Errorf("Get after delete: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return asError(err, &re) && re.StatusCode == status
}
