package accounts_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/accounts"
)

func TestSKUs(t *testing.T) {
	// S0 fits every kind: the CLI's default, and what tests create with.
	for _, k := range accounts.Kinds {
		if !slices.Contains(accounts.SKUNames(k), "S0") {
			t.Errorf("kind %s has no S0: %v", k, accounts.SKUNames(k))
		}
	}
	tests := []struct {
		name, kind, sku string
		want            accounts.SKU
		ok              bool
	}{
		{"language-free", "TextAnalytics", "F0", accounts.SKU{Name: "F0", Tier: "Free"}, true},
		{"language-s", "textanalytics", "s", accounts.SKU{Name: "S", Tier: "Standard"}, true},
		{"language-legacy", "TextAnalytics", "S4", accounts.SKU{Name: "S4", Tier: "Standard"}, true},
		{"openai-s0", "OpenAI", "S0", accounts.SKU{Name: "S0", Tier: "Standard"}, true},
		{"openai-has-no-free-tier", "OpenAI", "F0", accounts.SKU{}, false},
		{"unknown-sku", "AIServices", "ZZ9", accounts.SKU{}, false},
		{"unknown-kind", "Face", "S0", accounts.SKU{}, false},
		{"empty", "OpenAI", "", accounts.SKU{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := accounts.LookupSKU(tt.kind, tt.sku)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("= %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if s := accounts.SKUs("Quantum"); s != nil {
		t.Errorf("SKUs of an unknown kind: %v", s)
	}
}
