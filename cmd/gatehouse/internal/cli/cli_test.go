package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/spf13/cobra"
)

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestMalformedConfigFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"bad-yaml":    "listen: [unclosed\n",
		"unknown-key": "lisen: 127.0.0.1:1\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".yaml")
			os.WriteFile(path, []byte(content), 0o600)
			data := filepath.Join(dir, name+"-data")
			code, _, errOut := run(t, nil, "serve", "--config", path, "--data-dir", data)
			if code == 0 || !strings.Contains(errOut, path) {
				t.Fatalf("exit %d, stderr %q: want a failure naming the file", code, errOut)
			}
			if _, err := os.Stat(data); err == nil {
				t.Error("the data directory was created")
			}
		})
	}
}

// TestConfigPrecedence: flags > environment > file > defaults.
func TestConfigPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:1001\nhost: file.example\nlog-format: json\nlog-level: warn\n"), 0o600)
	cmd := newServeCmd(Env{LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"GATEHOUSE_HOST": "env.example", "GATEHOUSE_LOG_LEVEL": "error"}[k]
		return v, ok
	}})
	if err := cmd.Flags().Parse([]string{"--config", path, "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), Env{LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"GATEHOUSE_HOST": "env.example", "GATEHOUSE_LOG_LEVEL": "error"}[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1001" || cfg.LogFormat != "json" {
		t.Errorf("file values lost: %+v", cfg)
	}
	if cfg.Host != "env.example" {
		t.Errorf("host %q: the environment should override the file", cfg.Host)
	}
	if cfg.LogLevel != "debug" {
		t.Errorf("log-level %q: the flag should override the environment", cfg.LogLevel)
	}
	if cfg.DataDir != "./gatehouse-data" {
		t.Errorf("default data dir lost: %q", cfg.DataDir)
	}
}

// TestSettingErrorsAtOnce: settings that do not parse — in the file, the
// environment or on the command line — are reported with each other and
// with what validation finds, before anything is written.
func TestSettingErrorsAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("refresh-token-lifetime: 5\nlog-format: xml\n"), 0o600)
	data := filepath.Join(dir, "data")
	code, _, errOut := run(t, map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": "soon"},
		"serve", "--config", path, "--data-dir", data, "--signing-alg", "XX", "--log-level", "foo", "--token-lifetime", "5")
	if code == 0 {
		t.Fatal("serve started with bad settings")
	}
	for _, want := range []string{
		"token-lifetime: \"5\" is not a duration", "log-level: \"foo\"", "signing-alg: \"XX\"",
		"GATEHOUSE_SHUTDOWN_TIMEOUT", path + ": line 1", "log-format: \"xml\"",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("the data directory was created")
	}
}

// TestHelpTexts: what a command's help says is what it does.
func TestHelpTexts(t *testing.T) {
	tests := []struct {
		args          []string
		want, notWant []string
	}{
		// sts issue prints the bare token unless -o or --query ask for JSON.
		{[]string{"sts", "issue", "--help"}, []string{"token alone on a line", "-o json"}, []string{`(default "json")`}},
		// backup reads the store: no serve flags, no key (values stay sealed).
		{[]string{"backup", "--help"}, []string{"--data-dir", "--postgres", "--config", "--file"},
			[]string{"--dev", "--cors-origins", "--listen", "--master-key-file string", "--signing-alg"}},
		{[]string{"restore", "--help"}, []string{"--data-dir", "--postgres", "--master-key-file", "--verify-only"},
			[]string{"--dev", "--cors-origins", "--listen"}},
		{[]string{"keyring", "rotate", "--help"}, []string{"--data-dir", "--postgres", "--master-key-file"},
			[]string{"--dev", "--listen"}},
		// --host follows --listen unless set.
		{[]string{"serve", "--help"}, []string{"default: localhost with the listen port", "--dev", "--cors-origins"},
			[]string{"localhost:8443"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:len(tt.args)-1], "-"), func(t *testing.T) {
			code, out, errOut := run(t, nil, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("help has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestSTSIssueOutput: the bare token by default (TOKEN=$(…)), an object
// with -o or --query.
func TestSTSIssueOutput(t *testing.T) {
	const tok = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln" // exp 2100-01-01
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ai/acct/sts/v1.0/issueToken" || r.Header.Get("Ocp-Apim-Subscription-Key") != "k1" {
			http.Error(w, `{"error":{"code":"NotFound","message":"no"}}`, http.StatusNotFound)
			return
		}
		io.WriteString(w, tok)
	}))
	defer srv.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("k1\n"), 0o600)
	prof, _ := json.Marshal(map[string]any{"server": srv.URL, "tenantId": "adfs", "kind": "servicePrincipal", "clientId": "c", "clientSecret": "s"})
	os.WriteFile(filepath.Join(dir, "profile.json"), prof, 0o600)
	env := map[string]string{"GATEHOUSE_CONFIG_DIR": dir}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, tok + "\n"},
		{"output-json", []string{"-o", "json"}, `"accessToken": "` + tok + `"`},
		{"query", []string{"--query", "expiresOn"}, `"2100-01-01T00:00:00Z"`},
		{"output-tsv", []string{"-o", "tsv", "--query", "accessToken"}, tok + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, env, append([]string{"sts", "issue", "--account", "acct", "--key-file", keyFile}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if tt.name == "default" && out != tt.want || !strings.Contains(out, tt.want) {
				t.Errorf("output %q, want %q", out, tt.want)
			}
		})
	}
}

// TestLoginUnknownCA: a server whose CA this machine does not trust gets
// the x509 error and what to do about it.
func TestLoginUnknownCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	env := map[string]string{"GATEHOUSE_CONFIG_DIR": t.TempDir()}
	args := []string{"login", "--server", srv.URL, "--service-principal", "-u", "c", "-p", "s"}
	code, _, errOut := run(t, env, args...)
	if code == 0 || !strings.Contains(errOut, "x509") || !strings.Contains(errOut, "pass --ca-file") || !strings.Contains(errOut, "ca.pem") {
		t.Errorf("exit %d, %q: want the x509 error with a --ca-file hint", code, errOut)
	}
	// A --ca-file that is not the server's CA is named.
	other := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mustSelfSigned(t)}), 0o600)
	code, _, errOut = run(t, env, append(args, "--ca-file", other)...)
	if code == 0 || !strings.Contains(errOut, other+" is not the CA") {
		t.Errorf("exit %d, %q: want the --ca-file named", code, errOut)
	}
	// Other errors get no hint.
	if code, _, errOut = run(t, env, "login", "--server", "https://127.0.0.1:1", "--service-principal", "-u", "c", "-p", "s"); code == 0 || strings.Contains(errOut, "--ca-file") {
		t.Errorf("exit %d, %q: a refused connection is not a CA problem", code, errOut)
	}
}

// mustSelfSigned returns a new self-signed CA certificate (DER).
func mustSelfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestFirstLoginFromBanner: the README's first login is the line a first
// `serve` prints (no --bootstrap-file), after its export lines; it works
// as printed.
func TestFirstLoginFromBanner(t *testing.T) {
	var banner bytes.Buffer
	m := app.NewMain()
	m.Config.DataDir = t.TempDir()
	m.Config.Listen, m.Config.MSIListen = "127.0.0.1:0", "127.0.0.1:0"
	m.Stdout, m.Logger = &banner, app.NewLogger(io.Discard, "text", "error")
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var secret, login string
	for _, line := range strings.Split(banner.String(), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "export AZURE_CLIENT_SECRET="); ok {
			secret = v
		}
		if strings.HasPrefix(line, "gatehouse login ") {
			login = line
		}
	}
	if secret == "" || !strings.Contains(login, "--server "+m.URL+" --ca-file ") {
		t.Fatalf("the banner has no secret or login line for %s:\n%s", m.URL, banner.String())
	}
	args := strings.Fields(strings.ReplaceAll(strings.TrimPrefix(login, "gatehouse "), `"$AZURE_CLIENT_SECRET"`, secret))
	if code, out, errOut := run(t, map[string]string{"GATEHOUSE_CONFIG_DIR": t.TempDir()}, args...); code != 0 {
		t.Fatalf("%s: exit %d: %s%s", login, code, out, errOut)
	}
	// The same login with the CA file relative to the working directory
	// (as the README writes it): later commands run from anywhere.
	i := slices.Index(args, "--ca-file")
	ca := args[i+1]
	t.Chdir(filepath.Dir(ca))
	args[i+1] = filepath.Base(ca)
	env := map[string]string{"GATEHOUSE_CONFIG_DIR": t.TempDir()}
	if code, out, errOut := run(t, env, args...); code != 0 {
		t.Fatalf("relative --ca-file: exit %d: %s%s", code, out, errOut)
	}
	t.Chdir(t.TempDir())
	if code, out, errOut := run(t, env, "group", "list"); code != 0 {
		t.Fatalf("a command from another directory: exit %d: %s%s", code, out, errOut)
	}
}

// TestOutputListRows: a --query multiselect list ([].[a, b]) prints one
// row a result, as az prints it: tab-separated in tsv, under Column1,
// Column2, ... in a table.
func TestOutputListRows(t *testing.T) {
	doc := []any{[]any{"Standard", 20.0}, []any{"GlobalStandard", 5.0, true}}
	var tsv, table strings.Builder
	if err := printTSV(&tsv, doc, nil); err != nil {
		t.Fatal(err)
	}
	if tsv.String() != "Standard\t20\nGlobalStandard\t5\ttrue\n" {
		t.Errorf("tsv %q", tsv.String())
	}
	if err := printTable(&table, doc, nil); err != nil {
		t.Fatal(err)
	}
	if want := "Column1         Column2  Column3\n-------         -------  -------\nStandard        20       \nGlobalStandard  5        true\n"; table.String() != want {
		t.Errorf("table\n%s\nwant\n%s", table.String(), want)
	}
}

// TestOutputHashOrder: a --query multiselect hash's columns come in the
// order the query wrote them, as az prints them (tsv scripts read them
// by position).
func TestOutputHashOrder(t *testing.T) {
	for q, want := range map[string][]string{
		"[].{n:name, l:location}":                       {"n", "l"},
		"[?name=='a,b'].{Zed: name, \"A b\": location}": {"Zed", "A b"},
		"{z: a, y: b[0], x: {p: q}}":                    {"z", "y", "x"},
		"[].name":                                       nil,
		"[].[a, b]":                                     nil,
	} {
		if got := hashKeys(q); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	doc := []any{map[string]any{"n": "acct", "l": "westus"}}
	var tsv strings.Builder
	if err := printTSV(&tsv, doc, hashKeys("[].{n:name,l:location}")); err != nil || tsv.String() != "acct\twestus\n" {
		t.Errorf("tsv %q %v", tsv.String(), err)
	}
}

// TestOutputTableView: -o table of a command with a table view shows its
// columns (nested values included); --query replaces it; json ignores it.
func TestOutputTableView(t *testing.T) {
	doc := []any{map[string]any{"name": map[string]any{"value": "OpenAI.Standard.gpt-4o-mini"}, "limit": 50.0}}
	run := func(args ...string) string {
		cmd := withTable(&cobra.Command{Use: "list"}, "[].{Name: name.value, Limit: limit}")
		addOutputFlags(cmd)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := printOutput(cmd, &out, doc); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got := run("-o", "table"); !strings.HasPrefix(got, "Name") || !strings.Contains(got, "OpenAI.Standard.gpt-4o-mini  50") {
		t.Errorf("table view:\n%s", got)
	}
	if got := run("-o", "table", "--query", "[].limit"); strings.Contains(got, "gpt-4o-mini") {
		t.Errorf("--query did not replace the table view:\n%s", got)
	}
	if got := run("-o", "json"); !strings.Contains(got, `"value": "OpenAI.Standard.gpt-4o-mini"`) {
		t.Errorf("json:\n%s", got)
	}
}

// TestIsAssignmentID: role assignment delete --ids deletes only role
// assignments (a role definition's id would have deleted the role).
func TestIsAssignmentID(t *testing.T) {
	const g = "0b3f6e4e-5d8a-4b2f-9c1a-2e7d9f0a1b2c"
	for id, want := range map[string]bool{
		"/subscriptions/" + g + "/providers/Microsoft.Authorization/roleAssignments/" + g:                  true,
		"/subscriptions/" + g + "/resourceGroups/g/providers/microsoft.authorization/ROLEASSIGNMENTS/" + g: true,
		"/providers/Microsoft.Authorization/roleAssignments/" + g:                                          true,
		"/subscriptions/" + g + "/providers/Microsoft.Authorization/roleDefinitions/" + g:                  false,
		"/subscriptions/" + g + "/resourceGroups/g":                                                        false,
		"/subscriptions/" + g + "/providers/Microsoft.Authorization/roleAssignments/" + g + "/x":           false,
		"/subscriptions/" + g + "/providers/Microsoft.Authorization/roleAssignments/not-a-guid":            false,
		"subscriptions/" + g + "/providers/Microsoft.Authorization/roleAssignments/" + g:                   false,
		"garbage": false,
	} {
		if isAssignmentID(id) != want {
			t.Errorf("isAssignmentID(%q) = %v", id, !want)
		}
	}
}

// TestLegacyLiterals: --query takes az's unquoted literals
// ([?kind==`TextAnalytics`]) as strings; JSON literals, raw strings and
// quoted names are left alone.
func TestLegacyLiterals(t *testing.T) {
	for in, want := range map[string]string{
		"[?kind==`TextAnalytics`]":        "[?kind==`\"TextAnalytics\"`]",
		"[?n==`3`]":                       "[?n==`3`]",
		"[?b==`true`]":                    "[?b==`true`]",
		"[?s==`\"x\"`]":                   "[?s==`\"x\"`]",
		"[?s=='a`b`c']":                   "[?s=='a`b`c']",
		"\"we`ird\".x":                    "\"we`ird\".x",
		"[?k==` spaced out`]":             "[?k==`\"spaced out\"`]",
		"[?k==`unterminated":              "[?k==`unterminated",
		"[?a==`foo`] | [?b==`{\"c\":1}`]": "[?a==`\"foo\"`] | [?b==`{\"c\":1}`]",
	} {
		if got := legacyLiterals(in); got != want {
			t.Errorf("legacyLiterals(%q) = %q, want %q", in, got, want)
		}
	}
	doc := []any{map[string]any{"kind": "TextAnalytics", "name": "a"}, map[string]any{"kind": "OpenAI", "name": "b"}}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	addOutputFlags(cmd)
	cmd.Flags().Set("query", "[?kind==`TextAnalytics`].name")
	cmd.Flags().Set("output", "tsv")
	if err := printOutput(cmd, &out, doc); err != nil || strings.TrimSpace(out.String()) != "a" {
		t.Fatalf("--query with a legacy literal: %q %v", out.String(), err)
	}
}

// TestCPUProfile: serve --cpu-profile writes a pprof profile (gzip) of the
// run when it stops, and a path it cannot write stops serve before it
// starts, naming the flag.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := run(t, nil, "serve", "--data-dir", filepath.Join(dir, "data"),
		"--cpu-profile", filepath.Join(dir, "missing", "cpu.pprof"))
	if code == 0 || !strings.Contains(errOut, "--cpu-profile") {
		t.Fatalf("exit %d, stderr %q: want a failure naming --cpu-profile", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the data directory was created")
	}
	path := filepath.Join(dir, "cpu.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1e6; i++ {
		_ = strings.Repeat("x", i%7)
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile: %v, %d bytes: want a gzip-compressed pprof profile", err, len(b))
	}
}
