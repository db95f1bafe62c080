package gatewaytest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
	"github.com/openai/openai-go/v3/azure"
)

// cliRunner runs `gatehouse …` in-process with a profile directory of its
// own and the given extra environment.
type cliRunner struct {
	dir string
	env map[string]string
}

func (c *cliRunner) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), args, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		LookupEnv: func(k string) (string, bool) {
			if k == "GATEHOUSE_CONFIG_DIR" {
				return c.dir, true
			}
			v, ok := c.env[k]
			return v, ok
		}})
	return code, out.String(), errb.String()
}

func (c *cliRunner) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := c.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// testCLI: `gatehouse cognitiveservices account deployment create|list|
// show|delete` and `gatehouse sts issue`.
func testCLI(t *testing.T, e *env) {
	a := e.createAccount(t, "cli-oai", "OpenAI", nil)
	c := &cliRunner{dir: t.TempDir(), env: map[string]string{}}
	c.mustRun(t, "", "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret)
	acct := []string{"-g", e.group, "-n", a.name, "--subscription", e.sub}
	dep := func(args ...string) []string {
		return append(append([]string{"cognitiveservices", "account", "deployment"}, args...), acct...)
	}

	// The key arrives on stdin, never on the command line.
	out := c.mustRun(t, upstreamKey+"\n", dep("create", "--deployment-name", "cli-chat", "--model-name", "gpt-4o",
		"--upstream-endpoint", e.up.URL, "--upstream-model", "cli-model", "--upstream-key-file", "-")...)
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["name"] != "cli-chat" ||
		!strings.Contains(out, `"hasKey": true`) || strings.Contains(out, upstreamKey) {
		t.Fatalf("deployment create: %s", out)
	}
	if got := strings.TrimSpace(c.mustRun(t, "", dep("list", "--query", "[].name", "-o", "tsv")...)); got != "cli-chat" {
		t.Errorf("deployment list: %q", got)
	}
	show := c.mustRun(t, "", dep("show", "--deployment-name", "cli-chat", "--query", "properties.upstream.model", "-o", "tsv")...)
	if strings.TrimSpace(show) != "cli-model" {
		t.Errorf("deployment show: %q", show)
	}
	if reply := chat(t, e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1)), "cli-chat", "x"); !strings.HasPrefix(reply, "echo from cli-model") {
		t.Errorf("reply %q", reply)
	}
	// A replace with the key from the environment.
	c.env["GATEHOUSE_UPSTREAM_KEY"] = upstreamKey
	c.mustRun(t, "", dep("create", "--deployment-name", "cli-chat2", "--model-name", "m", "--upstream-endpoint", e.up.URL)...)
	delete(c.env, "GATEHOUSE_UPSTREAM_KEY")
	if reply := chat(t, e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1)), "cli-chat2", "x"); !strings.HasPrefix(reply, "echo from m") {
		t.Errorf("reply %q", reply)
	}

	// A model of the server's catalog, by name alone; the upstream flags
	// need the endpoint.
	models := c.mustRun(t, "", append([]string{"cognitiveservices", "account", "list-models", "--query", "[].name", "-o", "tsv"}, acct...)...)
	if strings.Fields(models)[0] != "gpt-4o-mini" || len(strings.Fields(models)) != 3 {
		t.Errorf("list-models: %q", models)
	}
	out = c.mustRun(t, "", dep("create", "--deployment-name", "cli-catalog", "--model-name", "gpt-4o-mini", "--sku-capacity", "2")...)
	if !strings.Contains(out, `"version": "2024-07-18"`) || strings.Contains(out, "upstream") {
		t.Errorf("catalog deployment: %s", out)
	}
	if reply := chat(t, e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1)), "cli-catalog", "x"); !strings.HasPrefix(reply, "echo from "+catalogUpstreamModel) {
		t.Errorf("reply %q", reply)
	}
	// Its quota, as the location's usages show it (other scenarios deploy
	// in westus at the same time: the limit is what is fixed).
	if out := c.mustRun(t, "", "cognitiveservices", "usage", "list", "-l", "westus",
		"--query", "[?name.value=='OpenAI.Standard.gpt-4o-mini'].limit", "-o", "tsv"); strings.TrimSpace(out) != "50" {
		t.Errorf("usage list: %q", out)
	}
	if code, _, errOut := c.run(t, "", dep("create", "--deployment-name", "cli-x", "--model-name", "gpt-4o-mini", "--upstream-model", "y")...); code == 0 ||
		!strings.Contains(errOut, "--upstream-endpoint") {
		t.Errorf("--upstream-model without the endpoint: %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", dep("create", "--deployment-name", "cli-x", "--model-name", "gpt-5")...); code == 0 ||
		!strings.Contains(errOut, "DeploymentModelNotSupported") {
		t.Errorf("a model outside the catalog: %d %s", code, errOut)
	}
	locModels := c.mustRun(t, "", "cognitiveservices", "model", "list", "-l", "westus", "--subscription", e.sub, "--query", "[?kind=='OpenAI'].model.name", "-o", "tsv")
	if len(strings.Fields(locModels)) != 3 {
		t.Errorf("model list: %q", locModels)
	}
	// What is left of its quota: 50 deployed at most, 20 in one deployment.
	if out := c.mustRun(t, "", "cognitiveservices", "model", "capacity", "list", "--model-name", "gpt-4o-mini", "--model-version", "2024-07-18",
		"-l", "japaneast", "--query", "[].[properties.skuName, properties.availableCapacity]", "-o", "tsv"); out != "Standard\t20\nGlobalStandard\t20\n" {
		t.Errorf("model capacity list: %q", out)
	}
	if code, _, errOut := c.run(t, "", "cognitiveservices", "model", "capacity", "list", "--model-name", "gpt-4o-mini"); code == 0 || !strings.Contains(errOut, "--model-version") {
		t.Errorf("model capacity list without a version: %d %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", "cognitiveservices", "model", "list", "--subscription", e.sub); code == 0 || !strings.Contains(errOut, "--location") {
		t.Errorf("model list without a location: %d %s", code, errOut)
	}

	// sts issue: the token works on the data plane, from either key.
	for _, args := range [][]string{
		{"sts", "issue", "--account", a.name, "--subscription", e.sub},
		{"sts", "issue", "--account", a.name, "-g", e.group, "--subscription", e.sub, "--key-name", "key2"},
	} {
		tok := strings.TrimSpace(c.mustRun(t, "", args...))
		r := e.do(t, call{url: a.endpoint + "openai/deployments/cli-chat/chat/completions?api-version=" + openAIVersion,
			header: bearer(tok), body: `{"messages":[{"role":"user","content":"x"}]}`})
		if r.status != 200 {
			t.Errorf("%v: token refused: %d %s", args, r.status, r.body)
		}
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(a.key1+"\n"), 0o600)
	js := c.mustRun(t, "", "sts", "issue", "--account", a.name, "--key-file", keyFile, "-o", "json")
	var tok struct{ AccessToken, ExpiresOn string }
	if err := json.Unmarshal([]byte(js), &tok); err != nil || tok.AccessToken == "" || tok.ExpiresOn == "" {
		t.Errorf("sts issue -o json: %s", js)
	}
	if code, _, errOut := c.run(t, "", "sts", "issue", "--account", "no-such-account", "--subscription", e.sub); code == 0 ||
		!strings.Contains(errOut, "no account named") {
		t.Errorf("unknown account: exit %d %s", code, errOut)
	}

	c.mustRun(t, "", dep("delete", "--deployment-name", "cli-chat")...)
	c.mustRun(t, "", dep("delete", "--deployment-name", "cli-catalog")...)
	if got := strings.TrimSpace(c.mustRun(t, "", dep("list", "--query", "[].name", "-o", "tsv")...)); got != "cli-chat2" {
		t.Errorf("after delete: %q", got)
	}
}

// testCLINetworkRules: `gatehouse cognitiveservices account network-rule
// add|list|remove` and `account update --default-action
// --public-network-access`, with the data plane applying the result.
func testCLINetworkRules(t *testing.T, e *env) {
	a := e.createAccount(t, "cli-net", "TextAnalytics", nil)
	c := &cliRunner{dir: t.TempDir(), env: map[string]string{}}
	c.mustRun(t, "", "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret)
	acct := []string{"-g", e.group, "-n", a.name, "--subscription", e.sub}
	run := func(args ...string) string { return c.mustRun(t, "", append(args, acct...)...) }
	rule := func(args ...string) string {
		return run(append([]string{"cognitiveservices", "account", "network-rule"}, args...)...)
	}
	list := func() (rules struct {
		DefaultAction string
		IPRules       []struct{ Value string }
	}) {
		t.Helper()
		if err := json.Unmarshal([]byte(rule("list", "-o", "json")), &rules); err != nil {
			t.Fatal(err)
		}
		return rules
	}
	if r := list(); r.DefaultAction != "Allow" || len(r.IPRules) != 0 {
		t.Fatalf("list without rules: %+v", r)
	}
	// The first rule turns the firewall on, as with az; the same range
	// written another way is not added twice.
	rule("add", "--ip-address", "10.0.0.0/8")
	rule("add", "--ip-address", "10.1.2.3/8")
	if r := list(); r.DefaultAction != "Deny" || len(r.IPRules) != 1 || r.IPRules[0].Value != "10.0.0.0/8" {
		t.Fatalf("list after add: %+v", r)
	}
	status := func(want int) {
		t.Helper()
		var r *result
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r = e.do(t, call{url: a.endpoint + languagePath, header: keyHeader(a.key1),
				body: `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello world"}]}}`})
			if r.status == want || time.Now().After(deadline) {
				break
			}
		}
		if r.status != want {
			t.Fatalf("data plane: %d %s, want %d", r.status, r.body, want)
		}
	}
	status(http.StatusForbidden)
	rule("add", "--ip-address", "127.0.0.1")
	status(http.StatusOK)
	run("cognitiveservices", "account", "update", "--public-network-access", "Disabled")
	status(http.StatusForbidden)
	run("cognitiveservices", "account", "update", "--public-network-access", "Enabled", "--default-action", "Allow")
	rule("remove", "--ip-address", "10.0.0.0/8")
	if r := list(); r.DefaultAction != "Allow" || len(r.IPRules) != 1 || r.IPRules[0].Value != "127.0.0.1" {
		t.Fatalf("list after remove: %+v", r)
	}
	status(http.StatusOK)
	// Refusals name the problem and change nothing.
	for _, args := range [][]string{{"add", "--ip-address", "intranet"}, {"remove", "--ip-address", "192.0.2.1"}} {
		if code, _, errOut := c.run(t, "", append(append([]string{"cognitiveservices", "account", "network-rule"}, args...), acct...)...); code == 0 || errOut == "" {
			t.Errorf("network-rule %v: exit %d %q", args, code, errOut)
		}
	}
	if code, _, errOut := c.run(t, "", append([]string{"cognitiveservices", "account", "update", "--default-action", "Block"}, acct...)...); code == 0 || !strings.Contains(errOut, "--default-action") {
		t.Errorf("update --default-action Block: exit %d %q", code, errOut)
	}
}
