package armtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAzCLI drives the real az CLI (Debian's azure-cli 2.45, when
// installed) against a node: register the node as a cloud in ADFS mode,
// log in as the bootstrap service principal, list and regenerate keys
// (azure-wire.md §6). It skips when az is not installed.
func TestAzCLI(t *testing.T) {
	azPath, err := exec.LookPath("az")
	if err != nil {
		t.Skip("az is not installed (apt-get install -y azure-cli)")
	}
	e := newEnv(t)
	group := e.createGroup(t, "az-cli")
	createAccount(t, e, group, "az-cli-acct", "TextAnalytics")

	home := t.TempDir()
	az := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, azPath, args...)
		cmd.Env = append(os.Environ(),
			"AZURE_CONFIG_DIR="+filepath.Join(home, ".azure"), "HOME="+home,
			"REQUESTS_CA_BUNDLE="+e.CAFile, "AZURE_CORE_COLLECT_TELEMETRY=false",
			"AZURE_CORE_NO_COLOR=true", "AZURE_CORE_OUTPUT=json", "AZURE_CORE_ONLY_SHOW_ERRORS=true")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			// Never print the arguments: the login carries the secret.
			t.Fatalf("az %s: %v\n%s", args[0], err, strings.ReplaceAll(errb.String(), e.Bootstrap.ClientSecret, "***"))
		}
		return out.Bytes()
	}
	az("cloud", "register", "-n", "Gatehouse",
		"--endpoint-resource-manager", e.URL+"/",
		"--endpoint-active-directory", e.URL+"/adfs",
		"--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
		"--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/")
	az("cloud", "set", "-n", "Gatehouse")
	var accounts []map[string]any
	if err := json.Unmarshal(az("login", "--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret,
		"--tenant", e.Directory.DefaultTenant()), &accounts); err != nil || len(accounts) != 1 || accounts[0]["id"] != e.sub {
		t.Fatalf("az login: %v %v", accounts, err)
	}
	var keys map[string]string
	if err := json.Unmarshal(az("cognitiveservices", "account", "keys", "list", "-n", "az-cli-acct", "-g", group), &keys); err != nil || len(keys["key1"]) != 64 {
		t.Fatalf("az keys list: %v %v", keys, err)
	}
	var after map[string]string
	if err := json.Unmarshal(az("cognitiveservices", "account", "keys", "regenerate", "-n", "az-cli-acct", "-g", group, "--key-name", "key1"), &after); err != nil {
		t.Fatal(err)
	}
	if after["key1"] == keys["key1"] || after["key2"] != keys["key2"] {
		t.Fatal("az keys regenerate --key-name key1 did not change exactly key1")
	}
	var shown map[string]any
	if err := json.Unmarshal(az("cognitiveservices", "account", "show", "-n", "az-cli-acct", "-g", group), &shown); err != nil {
		t.Fatal(err)
	}
	if props, _ := shown["properties"].(map[string]any); props["endpoint"] != e.URL+"/ai/az-cli-acct/" {
		t.Fatalf("az show: %v", shown)
	}
	// (az role assignment create fails client-side in Debian's azure-cli
	// 2.45 — "'RoleAssignmentsOperations' object has no attribute
	// 'config'" — before sending anything, and az role assignment list
	// needs a Microsoft Graph endpoint for principal names. The ARM
	// requests they would send are replayed in testAzShaped.)
	var groups []map[string]any
	if err := json.Unmarshal(az("group", "list"), &groups); err != nil || len(groups) < 2 {
		t.Fatalf("az group list: %v %v", groups, err)
	}
	e.AssertNotLogged(t, keys["key1"], keys["key2"], after["key1"], e.Bootstrap.ClientSecret)
}
