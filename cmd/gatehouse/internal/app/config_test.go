package app_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// TestAccountRetention: --account-retention is 0 (no soft delete) or 1h to
// 90 days, Azure's 48 hours by default.
func TestAccountRetention(t *testing.T) {
	if d := app.DefaultConfig().AccountRetention; d != 48*time.Hour {
		t.Fatalf("default %v", d)
	}
	for value, ok := range map[string]bool{"0": true, "0s": true, "1h": true, "48h": true, "2160h": true,
		"30m": false, "2161h": false, "-1h": false} {
		c := app.DefaultConfig()
		if err := c.Set("account-retention", value); err != nil {
			t.Fatalf("set %s: %v", value, err)
		}
		err := c.Validate()
		if (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "account-retention") {
			t.Errorf("account-retention %s: %v, want ok=%v", value, err, ok)
		}
	}
}

// TestHostFollowsListen: without --host the public authority is localhost
// with the port the node listens on, so every URL the banner prints —
// the --dev curl line included — reaches it; a --host given is kept.
func TestHostFollowsListen(t *testing.T) {
	if h := app.DefaultConfig().Host; h != "" {
		t.Fatalf("default host %q: it would not follow --listen", h)
	}
	t.Run("default", func(t *testing.T) {
		s := testenv.Start(t, testenv.WithConfig(func(c *app.Config) { c.Dev = true }))
		want := "https://localhost:" + strconv.Itoa(s.Addr.(*net.TCPAddr).Port)
		if s.URL != want {
			t.Fatalf("URL %s, want %s", s.URL, want)
		}
		banner := s.Banner.String()
		if !strings.Contains(banner, "'"+want+"/ai/demo-language/language/:analyze-text") || strings.Contains(banner, ":8443") {
			t.Errorf("the banner's URLs do not follow the listen port %s:\n%s", want, banner)
		}
	})
	t.Run("explicit", func(t *testing.T) {
		s := testenv.Start(t, testenv.WithConfig(func(c *app.Config) { c.Host = "gw.example:9443" }))
		if s.URL != "https://gw.example:9443" {
			t.Errorf("URL %s, want the --host given", s.URL)
		}
	})
}

// TestCheck: problems found while layering come first, then Validate's;
// a file key that does not fit its setting leaves the file's other keys
// applied.
func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("token-lifetime: 5\nlog-level: loud\n"), 0o600)
	c := app.DefaultConfig()
	fileErr := c.LoadFile(path)
	if c.LogLevel != "loud" {
		t.Errorf("log-level %q: the file's other keys were not applied", c.LogLevel)
	}
	envErr := c.ApplyEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"GATEHOUSE_SIGNING_ALG": "XX", "GATEHOUSE_DEV": "maybe"}[k]
		return v, ok
	})
	err := c.Check(fileErr, envErr, c.Set("account-retention", "2d"))
	ce, ok := errors.AsType[*app.ConfigError](err)
	if !ok {
		t.Fatalf("Check = %v, want a *ConfigError", err)
	}
	want := []string{path + ": line 1", "GATEHOUSE_DEV", "account-retention", "log-level", "signing-alg"}
	if len(ce.Problems) != len(want) {
		t.Fatalf("problems %q, want one each about %q", ce.Problems, want)
	}
	for i, w := range want {
		if !strings.Contains(ce.Problems[i], w) {
			t.Errorf("problem %d %q does not mention %q", i, ce.Problems[i], w)
		}
	}
	if c := app.DefaultConfig(); c.Check(nil, nil) != nil {
		t.Error("the defaults do not check")
	}
}

// TestCheckAddresses: a --host given as a URL, and a managed-identity
// endpoint on the listen address, are named as such (serve failed later
// with "invalid port" and "address already in use").
func TestCheckAddresses(t *testing.T) {
	for _, tt := range []struct{ listen, msi, host, want string }{
		{"127.0.0.1:8443", "127.0.0.1:8443", "", "msi-listen: \"127.0.0.1:8443\" is the listen address"},
		{"0.0.0.0:8443", "localhost:8443", "", "is the listen address"},
		{"127.0.0.1:8443", "127.0.0.1:8444", "https://example.test", "without https://"},
		{"127.0.0.1:0", "127.0.0.1:0", "", ""},
		{"127.0.0.1:8443", "[::1]:8443", "", ""},
	} {
		c := app.DefaultConfig()
		c.Listen, c.MSIListen, c.Host = tt.listen, tt.msi, tt.host
		err := c.Check()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt, err, tt.want)
		}
	}
}

// TestWorkersSetting: --workers is a whole number, 1 by default; more than
// one needs PostgreSQL.
func TestWorkersSetting(t *testing.T) {
	if n := app.DefaultConfig().Workers; n != 1 {
		t.Fatalf("default %d", n)
	}
	c := app.DefaultConfig()
	if err := c.Set("workers", "two"); err == nil || !strings.Contains(err.Error(), `workers: "two" is not a whole number`) {
		t.Errorf("workers=two: %v", err)
	}
	if err := c.Set("workers", "2"); err != nil || c.Workers != 2 {
		t.Fatalf("workers=2: %v, %d", err, c.Workers)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "needs --postgres") {
		t.Errorf("two workers on SQLite: %v", err)
	}
	c.Postgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if err := c.Validate(); err != nil {
		t.Errorf("two workers on PostgreSQL: %v", err)
	}
}
