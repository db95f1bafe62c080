package armapi

import (
	"strings"
	"testing"
	"time"
)

func TestParseActivityFilter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	good := []struct {
		filter   string
		from, to time.Time
		eq       map[string]string
	}{
		// az 2.45: Python's isoformat(), unquoted, no zone.
		{"eventTimestamp ge 2026-12-01T06:00:00.123456 and eventTimestamp le 2026-12-01T12:00:00.123456 and resourceGroupName eq 'rg1'",
			time.Date(2026, 12, 1, 6, 0, 0, 123456000, time.UTC), time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC), map[string]string{"resourcegroupname": "rg1"}},
		// Azure's documented form: quoted, with a zone.
		{"eventTimestamp ge '2026-11-30T00:00:00Z' AND resourceUri eq '/subscriptions/s/resourceGroups/a and b' and status eq 'Failed'",
			time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), now, map[string]string{"resourceuri": "/subscriptions/s/resourceGroups/a and b", "status": "Failed"}},
		{"eventTimestamp gt '2026-11-30T00:00:00+01:00' and caller eq 'o''brien@example.test' and eventChannels eq 'Admin, Operation'",
			time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC), now, map[string]string{"caller": "o'brien@example.test", "eventchannels": "Admin, Operation"}},
	}
	for _, g := range good {
		f, err := parseActivityFilter(g.filter, now)
		if err != nil {
			t.Errorf("%q: %v", g.filter, err)
			continue
		}
		if !f.from.Equal(g.from) || !f.to.Equal(g.to) || len(f.eq) != len(g.eq) {
			t.Errorf("%q: from %v to %v eq %v", g.filter, f.from, f.to, f.eq)
		}
		for k, v := range g.eq {
			if f.eq[k] != v {
				t.Errorf("%q: %s = %q, want %q", g.filter, k, f.eq[k], v)
			}
		}
	}
	for _, bad := range []string{
		"",
		"resourceGroupName eq 'rg1'",
		"eventTimestamp ge 'yesterday'",
		"eventTimestamp ge '2026-01-01T00:00:00Z'", // beyond 90 days
		"eventTimestamp eq '2026-12-01T00:00:00Z'",
		"eventTimestamp ge '2026-12-01T00:00:00Z' and eventTimestamp le '2026-11-30T00:00:00Z'",
		"eventTimestamp ge '2026-12-01T00:00:00Z' and secret eq 'x'",
		"eventTimestamp ge '2026-12-01T00:00:00Z' and resourceGroupName ne 'x'",
		"eventTimestamp ge '2026-12-01T00:00:00Z' and",
		"eventTimestamp ge '2026-12-01T00:00:00Z' or caller eq 'x'",
		strings.Repeat("eventTimestamp ge ", 100),
	} {
		if _, err := parseActivityFilter(bad, now); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func FuzzParseActivityFilter(f *testing.F) {
	f.Add("eventTimestamp ge '2026-11-30T00:00:00Z' and resourceGroupName eq 'rg'")
	f.Add("eventTimestamp ge 2026-11-30T00:00:00 and caller eq 'a''b'")
	f.Fuzz(func(t *testing.T, s string) {
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		if fl, err := parseActivityFilter(s, now); err == nil && (fl.from.IsZero() || fl.to.Before(fl.from)) {
			t.Fatalf("%q: accepted with from %v to %v", s, fl.from, fl.to)
		}
	})
}
