package gatewaytest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
)

// testOutboundRestriction: an account's data loss prevention
// (restrictOutboundNetworkAccess with allowedFqdnList, set with
// armcognitiveservices) holds its own deployments to the hosts listed —
// at once on the data plane, and when a deployment is created — while
// the model catalog's deployments, the operator's, are not restricted.
func testOutboundRestriction(t *testing.T, e *env) {
	a := e.createAccount(t, "dlp", "OpenAI", nil)
	e.deploy(t, a, "own", "own-model")
	if r := e.arm(t, http.MethodPut, a.id+"/deployments/mini", `{"properties":{"model":{"name":"gpt-4o-mini"}}}`); r.status != http.StatusCreated {
		t.Fatalf("catalog deployment: %d %s", r.status, r.body)
	}
	update := func(restrict bool, fqdns ...string) *armcognitiveservices.Account {
		t.Helper()
		list := []*string{}
		for _, f := range fqdns {
			list = append(list, ptr(f))
		}
		poller, err := e.accounts.BeginUpdate(t.Context(), e.group, a.name, armcognitiveservices.Account{
			Properties: &armcognitiveservices.AccountProperties{RestrictOutboundNetworkAccess: ptr(restrict), AllowedFqdnList: list}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := poller.PollUntilDone(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return &res.Account
	}
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	marker := "dlp-marker-5c1e"
	send := func(deployment string) error {
		_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: deployment,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}}, option.WithHeader("X-Test-Marker", marker+"-"+deployment))
		return err
	}

	// The upstream's host is listed: served.
	got := update(true, "LOCALHOST", "127.0.0.1.")
	if !*got.Properties.RestrictOutboundNetworkAccess || len(got.Properties.AllowedFqdnList) != 2 || *got.Properties.AllowedFqdnList[1] != "127.0.0.1" {
		t.Fatalf("as read back: %+v", got.Properties)
	}
	if err := send("own"); err != nil {
		t.Fatalf("an allowed upstream: %v", err)
	}

	// Not listed: refused before anything is sent upstream.
	update(true, "models.example.com")
	var apiErr *openai.Error
	if err := send("own"); !asError(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Code != "OutboundNetworkAccessRestricted" {
		t.Errorf("a restricted upstream: %v", err)
	} else if strings.Contains(apiErr.Message, "127.0.0.1") {
		t.Errorf("the refusal names the upstream: %s", apiErr.Message)
	}
	if e.up.SawSecret(marker + "-own") {
		t.Error("the request reached the upstream")
	}
	// The catalog's deployments are the operator's: not restricted.
	if err := send("mini"); err != nil {
		t.Errorf("a catalog deployment under the restriction: %v", err)
	}
	// Nor may a new deployment point elsewhere.
	r := e.arm(t, http.MethodPut, a.id+"/deployments/other", deploymentBody("m", e.up.URL, upstreamKey))
	if r.status != 400 || r.errorCode(t) != "OutboundNetworkAccessRestricted" {
		t.Errorf("deploy to a restricted upstream: %d %s", r.status, r.body)
	}

	// Lifted: served again.
	update(false)
	if err := send("own"); err != nil {
		t.Errorf("after the restriction is lifted: %v", err)
	}

	// The gatehouse CLI sets the same.
	cli := &cliRunner{dir: t.TempDir(), env: map[string]string{}}
	cli.mustRun(t, "", "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret)
	out := cli.mustRun(t, "", "cognitiveservices", "account", "update", "-g", e.group, "-n", a.name, "--subscription", e.sub,
		"--restrict-outbound-network-access", "true", "--allowed-fqdns", "models.example.com,127.0.0.1",
		"--query", "properties.allowedFqdnList", "-o", "tsv")
	if strings.Join(strings.Fields(out), ",") != "models.example.com,127.0.0.1" {
		t.Errorf("cli update: %q", out)
	}
	if err := send("own"); err != nil {
		t.Errorf("allowed by the CLI: %v", err)
	}
	if code, _, errOut := cli.run(t, "", "cognitiveservices", "account", "update", "-g", e.group, "-n", a.name, "--subscription", e.sub,
		"--restrict-outbound-network-access", "maybe"); code == 0 || !strings.Contains(errOut, "not true or false") {
		t.Errorf("cli bad flag: %d %s", code, errOut)
	}

	for _, bad := range []string{`["https://x.example"]`, `["x.example:443"]`, `["*.example.com"]`, `"x"`} {
		r := e.arm(t, http.MethodPatch, a.id, `{"properties":{"restrictOutboundNetworkAccess":true,"allowedFqdnList":`+bad+`}}`)
		if r.status != 400 {
			t.Errorf("allowedFqdnList %s: %d %s", bad, r.status, r.body)
		}
	}
}
