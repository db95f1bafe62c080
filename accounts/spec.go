package accounts

import (
	"math"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

// Spec is what a PUT or PATCH asks for. Nil fields were not given: a PUT
// resets them to their defaults (but see Put for the SKU, the identity and
// the custom subdomain), a PATCH leaves them alone.
type Spec struct {
	Kind     string
	Location string
	SKU      *SKU
	// Tags replaces the account's tags when not nil (an empty map clears).
	Tags       map[string]string
	Identity   *IdentitySpec
	Properties Properties
	// Restore asks Put to recover the soft-deleted account of that id
	// (ARM's properties.restore); only Location is read with it.
	Restore bool
	// put: the spec is a PUT's (a property left out is reset).
	put bool
	// unlisted refuses Location, which is not one of resources.Locations,
	// to anything but an account already there (Spec.location).
	unlisted error
}

// Properties are the settable account properties.
type Properties struct {
	CustomSubDomainName *string
	DisableLocalAuth    *bool
	PublicNetworkAccess *string
	// NetworkACLs replaces the account's network rules when not nil (a PUT
	// without it removes them).
	NetworkACLs *netacl.Rules
	RateLimits  *[]ThrottlingRule
	// RestrictOutboundNetworkAccess and AllowedFQDNList are Azure's data
	// loss prevention: restricted, the account forwards only to upstreams
	// whose host is in the list (a PUT without them lifts the restriction).
	RestrictOutboundNetworkAccess *bool
	AllowedFQDNList               *[]string
}

// IdentitySpec asks for managed identities: Type is None, SystemAssigned,
// UserAssigned or "SystemAssigned, UserAssigned"; UserAssigned lists the
// user-assigned identities' ARM ids.
type IdentitySpec struct {
	Type         string
	UserAssigned []string
}

func badRequest(code, target, format string, args ...any) error {
	return gatehouse.BadRequestf(code, format, args...).WithTarget(target)
}

// ValidateName applies Azure's rule for account names: 2 to 64
// characters, letters, digits, '-', '_' and '.', starting with a letter or
// a digit.
func ValidateName(name string) error {
	if len(name) < 2 || len(name) > 64 || !alnum(name[0]) {
		return badRequest("InvalidResourceName", "name",
			"The account name '%s' is invalid: it must be 2 to 64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit.", clip(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return badRequest("InvalidResourceName", "name",
				"The account name '%s' is invalid: it must be 2 to 64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit.", clip(name))
		}
	}
	return nil
}

// validateSubDomain: a DNS label of 2 to 63 characters (letters, digits,
// '-'), starting and ending with a letter or digit.
func validateSubDomain(s string) error {
	ok := len(s) >= 2 && len(s) <= 63 && alnum(s[0]) && alnum(s[len(s)-1])
	for i := 0; ok && i < len(s); i++ {
		ok = alnum(s[i]) || s[i] == '-'
	}
	if !ok {
		return badRequest("InvalidCustomSubDomainName", "properties.customSubDomainName",
			"The custom subdomain name '%s' is invalid: it must be 2 to 63 letters, digits or '-', starting and ending with a letter or digit.", clip(s))
	}
	return nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// normalizeKind returns the canonical spelling of a supported kind.
func normalizeKind(kind string) (string, error) {
	if kind == "" {
		return "", badRequest("KindRequired", "kind", "The kind property is required. Supported kinds: %s.", strings.Join(Kinds, ", "))
	}
	for _, k := range Kinds {
		if strings.EqualFold(k, kind) {
			return k, nil
		}
	}
	// Azure's code and sentence for a kind it does not offer; the list of
	// the kinds served here is Gatehouse's addition.
	return "", badRequest("InvalidApiSetId", "kind", "The account type '%s' is either invalid or unavailable in given region. Supported kinds: %s.", clip(kind), strings.Join(Kinds, ", "))
}

func normalizeNetworkAccess(s string) (string, error) {
	for _, v := range []string{"Enabled", "Disabled"} {
		if strings.EqualFold(s, v) {
			return v, nil
		}
	}
	return "", badRequest("InvalidPublicNetworkAccess", "properties.publicNetworkAccess",
		"publicNetworkAccess must be Enabled or Disabled, not '%s'.", clip(s))
}

// Limits on rate-limit rules.
const (
	maxRateLimitRules = 20
	maxMatchPatterns  = 20
)

func validateRateLimits(rules []ThrottlingRule) error {
	const target = "properties.rateLimits"
	if len(rules) > maxRateLimitRules {
		return badRequest("InvalidRateLimits", target, "At most %d rate-limit rules are allowed.", maxRateLimitRules)
	}
	seen := map[string]bool{}
	for i, r := range rules {
		k := strings.ToLower(r.Key)
		switch {
		case r.Key == "" || len(r.Key) > 128:
			return badRequest("InvalidRateLimits", target, "Rule %d needs a key of 1 to 128 characters.", i)
		case seen[k]:
			return badRequest("InvalidRateLimits", target, "The key '%s' appears twice.", clip(r.Key))
		case !finite(r.RenewalPeriod) || r.RenewalPeriod <= 0 || r.RenewalPeriod > 86400:
			return badRequest("InvalidRateLimits", target, "Rule '%s': renewalPeriod must be between 0 and 86400 seconds.", clip(r.Key))
		case !finite(r.Count) || r.Count < 0 || r.Count > 1e9 || !finite(r.MinCount) || r.MinCount < 0 || r.MinCount > r.Count:
			return badRequest("InvalidRateLimits", target, "Rule '%s': count must be between 0 and 1e9 (and minCount at most count).", clip(r.Key))
		case len(r.MatchPatterns) > maxMatchPatterns:
			return badRequest("InvalidRateLimits", target, "Rule '%s' has more than %d match patterns.", clip(r.Key), maxMatchPatterns)
		}
		for _, p := range r.MatchPatterns {
			if len(p.Path) > 512 || len(p.Method) > 16 {
				return badRequest("InvalidRateLimits", target, "Rule '%s' has a match pattern that is too long.", clip(r.Key))
			}
		}
		seen[k] = true
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func normalizeIdentityType(t string) (string, error) {
	switch strings.ToLower(strings.ReplaceAll(t, " ", "")) {
	case "none", "":
		return IdentityNone, nil
	case "systemassigned":
		return IdentitySystemAssigned, nil
	case "userassigned":
		return IdentityUserAssigned, nil
	case "systemassigned,userassigned":
		return IdentitySystemAndUserAssigned, nil
	}
	return "", badRequest("InvalidIdentityType", "identity.type",
		"The identity type '%s' is invalid. It must be None, SystemAssigned, UserAssigned or 'SystemAssigned, UserAssigned'.", clip(t))
}

func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func errNotFound(id *gatehouse.ResourceID) error {
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		Type, clip(id.Name()), clip(id.ResourceGroup))
}
