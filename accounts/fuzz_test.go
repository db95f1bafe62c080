package accounts

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// FuzzValidate: the validators of names and settings never panic, and
// whatever they reject is a 400 *gatehouse.Error.
func FuzzValidate(f *testing.F) {
	f.Add("lang-1", "my-sub", "OpenAI", "Enabled", "SystemAssigned, UserAssigned", `[{"key":"account","renewalPeriod":60,"count":10}]`)
	f.Add("-x", "a_b", "", "maybe", "both", `[{"key":"","renewalPeriod":-1}]`)
	f.Fuzz(func(t *testing.T, name, subdomain, kind, network, identity, rules string) {
		check := func(err error) {
			if err == nil {
				return
			}
			if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 {
				t.Fatalf("validator error %v is not a 400", err)
			}
		}
		check(ValidateName(name))
		check(validateSubDomain(subdomain))
		_, err := normalizeKind(kind)
		check(err)
		_, err = normalizeNetworkAccess(network)
		check(err)
		_, err = normalizeIdentityType(identity)
		check(err)
		var rs []ThrottlingRule
		if json.Unmarshal([]byte(rules), &rs) == nil {
			check(validateRateLimits(rs))
		}
		if slot, ok := ParseKeyName(name); ok && SlotName(slot) != strings.ToLower(name) {
			t.Fatalf("ParseKeyName(%q) = %d", name, slot)
		}
	})
}
