package app

import (
	"testing"
	"time"
)

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		48 * time.Hour: "48h", time.Minute: "1m", 90 * time.Second: "1m30s", 10 * time.Minute: "10m",
		time.Hour + 30*time.Minute: "1h30m", 0: "0s", 1500 * time.Millisecond: "1.5s", 336 * time.Hour: "336h",
	} {
		got := shortDuration(d)
		if got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q parses to %v %v", got, back, err)
		}
	}
}
