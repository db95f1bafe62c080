package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
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
