package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCatalog: the --models file, its keys from a file or the
// environment, and every way it can be wrong — refused at start with the
// file and the model named, never the key.
func TestLoadCatalog(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "vllm.key")
	const key = "sk-catalog-0123456789"
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VLLM_KEY": " " + key + " "}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write("good.yaml", `
models:
  - name: gpt-4o
    versions: ["2024-08-06"]
    capabilities: {chatCompletion: "true"}
    maxCapacity: 20
    upstream: {endpoint: "http://10.0.0.1:8000", model: llama, keyFile: `+keyFile+`}
  - name: embed
    format: Meta
    upstream: {endpoint: "https://up.example", keyHeader: api-key, keyEnv: VLLM_KEY}
`)
	c, err := loadCatalog(good, lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, v, ok := c.Find("OpenAI", "gpt-4o", "")
	if !ok || v != "2024-08-06" || m.Key != key || m.UpstreamModel != "llama" || m.MaxCapacity != 20 || m.Capabilities["chatCompletion"] != "true" {
		t.Errorf("gpt-4o: %+v %q %v", m, v, ok)
	}
	if m, _, ok := c.Find("Meta", "embed", ""); !ok || m.Key != key || m.KeyHeader != "api-key" {
		t.Errorf("embed: %+v %v", m, ok)
	}
	if c, err := loadCatalog("", lookup, nil); c != nil || err != nil {
		t.Errorf("no file: %v %v", c, err)
	}
	if c, err := loadCatalog(write("empty.yaml", ""), lookup, nil); err != nil || c.Len() != 0 {
		t.Errorf("empty file: %v %v", c, err)
	}

	for _, tt := range []struct{ name, text, want string }{
		{"unknown-field", "models:\n  - name: m\n    upstream: {endpoint: http://x, key: " + key + "}\n", "line 3: unknown key key"},
		{"not-yaml", "models: [", "did not find"},
		{"both-key-sources", "models:\n  - name: m\n    upstream: {endpoint: http://x, keyFile: " + keyFile + ", keyEnv: VLLM_KEY}\n", "not both"},
		{"key-env-unset", "models:\n  - name: m\n    upstream: {endpoint: http://x, keyEnv: NOPE}\n", "NOPE is not set"},
		{"key-file-missing", "models:\n  - name: m\n    upstream: {endpoint: http://x, keyFile: /nonexistent/key}\n", "no such file"},
		{"key-file-not-a-key", "models:\n  - name: m\n    upstream: {endpoint: http://x, keyFile: /dev/zero}\n", "larger than 8 KiB"},
		{"bad-endpoint", "models:\n  - name: m\n    upstream: {endpoint: 'file:///etc/passwd', keyFile: " + keyFile + "}\n", "model 1 (m)"},
		{"duplicate", "models:\n  - {name: m, upstream: {endpoint: http://x}}\n  - {name: M, upstream: {endpoint: http://y}}\n", "model 2 (M): the same format and name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.name+".yaml", tt.text)
			_, err := loadCatalog(p, lookup, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err %v, want %q and the file name", err, tt.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
	// Every problem at once, one a line: an unknown key, an unset key
	// variable, a duplicate, an endpoint outside the networks.
	p := write("all.yaml", "models:\n  - {name: m1, foo: 1, upstream: {endpoint: 'http://169.254.169.254', keyEnv: NOPE}}\n"+
		"  - {name: m1, upstream: {endpoint: http://x}}\n")
	_, err = loadCatalog(p, lookup, nil)
	for _, want := range []string{"line 2: unknown key foo", "NOPE is not set", "model 2 (m1): the same format and name", "169.254.169.254"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("every problem: %v, want %q among them", err, want)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "struct") || strings.Count(err.Error(), "\n  - ") < 4) {
		t.Errorf("every problem, one a line, no Go types: %v", err)
	}
	if _, err := loadCatalog(filepath.Join(dir, "missing.yaml"), lookup, nil); err == nil {
		t.Error("a missing file loaded")
	}

	// serve refuses a bad catalog with the other configuration problems.
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Models = filepath.Join(dir, "duplicate.yaml")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "models: ") {
		t.Errorf("Validate: %v", err)
	}
}
