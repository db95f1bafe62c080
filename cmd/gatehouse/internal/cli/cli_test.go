package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
