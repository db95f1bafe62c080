package resources_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
)

func TestResourceLocation(t *testing.T) {
	const typ = "Microsoft.CognitiveServices/accounts"
	tests := []struct {
		name, in, want, code string
	}{
		{"arm-form", "westus", "westus", ""},
		{"display-name", "West US", "westus", ""},
		{"any-case-and-spaces", " west US 2 ", "westus2", ""},
		{"local", "Local", "local", ""},
		{"unknown", "mars", "", "LocationNotAvailableForResourceType"},
		{"unknown-display-form", "West Mars", "", "LocationNotAvailableForResourceType"},
		{"empty", "", "", "LocationRequired"},
		{"malformed", "west/us", "", "InvalidLocation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resources.ResourceLocation(tt.in, typ)
			if tt.code == "" {
				if err != nil || got != tt.want {
					t.Fatalf("= %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			e, ok := gatehouse.AsError(err)
			if !ok || e.Status != 400 || e.Code != tt.code {
				t.Fatalf("err = %v, want 400 %s", err, tt.code)
			}
			if tt.code == "LocationNotAvailableForResourceType" &&
				(!strings.Contains(e.Message, "'"+tt.in+"'") || !strings.Contains(e.Message, typ) || !strings.Contains(e.Message, "westus,westus2")) {
				t.Errorf("message %q", e.Message)
			}
		})
	}
	names := resources.LocationNames()
	if len(names) != len(resources.Locations()) || !resources.KnownLocation(resources.DefaultLocation) || resources.KnownLocation("West US") {
		t.Errorf("locations: %v", names)
	}
	for _, l := range resources.Locations() {
		if n, err := resources.NormalizeLocation(l.DisplayName); err != nil || n != l.Name {
			t.Errorf("display name %q normalizes to %q %v, not %q", l.DisplayName, n, err, l.Name)
		}
	}
}
