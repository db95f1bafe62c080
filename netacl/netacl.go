// Package netacl is the network side of a resource's access control: the
// publicNetworkAccess switch and the networkAcls rule set that Azure AI
// services accounts and Key Vault vaults carry, validated as ARM takes
// them and compiled into the Policy the data planes check each request's
// client address against.
//
// Gatehouse has no virtual networks and no private endpoints. What Azure
// calls private-endpoint traffic is, here, traffic from the networks the
// server is told are private (serve --private-networks): it bypasses the
// rules and is served when public access is disabled, as Azure serves a
// private endpoint's. Everything else is public traffic: refused when the
// resource disables public access, and — when the rule set's default
// action is Deny — unless its address is in one of the IP rules.
package netacl

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Rules is networkAcls as ARM spells it, for accounts and vaults alike.
type Rules struct {
	// DefaultAction is Allow or Deny: what public traffic matching no
	// rule gets.
	DefaultAction string `json:"defaultAction"`
	// Bypass (AzureServices or None) is kept as given: Gatehouse's own
	// services never reach a resource over the network.
	Bypass              string        `json:"bypass,omitempty"`
	IPRules             []IPRule      `json:"ipRules"`
	VirtualNetworkRules []VNetRuleRef `json:"virtualNetworkRules"`
}

// IPRule allows an IPv4 or IPv6 address, or a CIDR range.
type IPRule struct {
	Value string `json:"value"`
}

// VNetRuleRef is a virtual network rule; Gatehouse has none to refer to,
// so a rule set with one is refused.
type VNetRuleRef struct {
	ID string `json:"id"`
}

// Clone returns a deep copy of r (nil for nil).
func (r *Rules) Clone() *Rules {
	if r == nil {
		return nil
	}
	c := *r
	c.IPRules = slices.Clone(r.IPRules)
	c.VirtualNetworkRules = slices.Clone(r.VirtualNetworkRules)
	return &c
}

// MaxIPRules bounds a rule set (Azure allows 400 on an AI services account
// and 1000 on a vault; one bound keeps both within what a request holds).
const MaxIPRules = 400

// Normalize validates r as given in a PUT or PATCH at target (the JSON
// path, for the error) and returns it in canonical form: Allow or Deny,
// each rule's value as Go writes the address or prefix (a host prefix —
// /32, /128 — as the bare address), duplicates dropped, order kept.
// Errors are 400s with code.
func Normalize(r Rules, code, target string) (Rules, error) {
	bad := func(format string, args ...any) error {
		return gatehouse.BadRequestf(code, format, args...).WithTarget(target)
	}
	out := Rules{IPRules: []IPRule{}, VirtualNetworkRules: []VNetRuleRef{}}
	switch {
	case strings.EqualFold(r.DefaultAction, "Allow"), r.DefaultAction == "":
		out.DefaultAction = "Allow"
	case strings.EqualFold(r.DefaultAction, "Deny"):
		out.DefaultAction = "Deny"
	default:
		return Rules{}, bad("networkAcls.defaultAction must be Allow or Deny, not '%s'.", clip(r.DefaultAction))
	}
	switch {
	case r.Bypass == "":
	case strings.EqualFold(r.Bypass, "AzureServices"):
		out.Bypass = "AzureServices"
	case strings.EqualFold(r.Bypass, "None"):
		out.Bypass = "None"
	default:
		return Rules{}, bad("networkAcls.bypass must be AzureServices or None, not '%s'.", clip(r.Bypass))
	}
	if len(r.VirtualNetworkRules) > 0 {
		return Rules{}, bad("Virtual network rules are not supported: Gatehouse has no virtual networks. Use ipRules, and serve --private-networks for the networks whose traffic counts as private.")
	}
	if len(r.IPRules) > MaxIPRules {
		return Rules{}, bad("At most %d IP rules are allowed; %d were given.", MaxIPRules, len(r.IPRules))
	}
	seen := make(map[netip.Prefix]bool, len(r.IPRules))
	for _, rule := range r.IPRules {
		p, err := ParseRule(rule.Value)
		if err != nil {
			return Rules{}, bad("The IP rule '%s' is not an IPv4 or IPv6 address or CIDR range.", clip(rule.Value))
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		out.IPRules = append(out.IPRules, IPRule{Value: format(p)})
	}
	return out, nil
}

// ParseRule parses an IP rule's value: an address ("203.0.113.7",
// "2001:db8::1") or a CIDR range ("203.0.113.0/24"), whose host bits are
// cleared. Zones are refused.
func ParseRule(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, errBadRule
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			return netip.Prefix{}, errBadRule
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return netip.Prefix{}, errBadRule
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePrefixes parses a comma-separated list of addresses and CIDR
// ranges (the --private-networks flag); "" is none.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := ParseRule(s)
		if err != nil {
			return nil, fmt.Errorf("'%s' is not an IPv4 or IPv6 address or CIDR range", clip(strings.TrimSpace(s)))
		}
		out = append(out, p)
	}
	return out, nil
}

var errBadRule = gatehouse.BadRequestf("InvalidIPRule", "not an address or CIDR range")

func format(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Decision is what a policy says about one request.
type Decision int

const (
	// Allowed: serve the request.
	Allowed Decision = iota
	// DeniedPublicAccess: the resource disables public network access and
	// the request is public.
	DeniedPublicAccess
	// DeniedFirewall: the rule set's default action is Deny and the
	// request's address matches no IP rule.
	DeniedFirewall
)

// Policy is a resource's compiled network access: nil allows everything
// (public access enabled, no rule set or default action Allow), which is
// what nearly every resource has and costs a nil check.
type Policy struct {
	publicDisabled bool
	deny           bool
	allow          []netip.Prefix
}

// Compile returns the policy of publicNetworkAccess ("Disabled" disables;
// anything else enables) and rules (nil: none), or nil when it allows
// everything. rules must have passed Normalize.
func Compile(publicNetworkAccess string, rules *Rules) *Policy {
	p := &Policy{publicDisabled: strings.EqualFold(publicNetworkAccess, "Disabled")}
	if rules != nil && rules.DefaultAction == "Deny" {
		p.deny = true
		for _, r := range rules.IPRules {
			if pre, err := ParseRule(r.Value); err == nil {
				p.allow = append(p.allow, pre)
			}
		}
	}
	if !p.publicDisabled && !p.deny {
		return nil
	}
	return p
}

// Check decides for a request from addr; private reports whether addr is
// in the server's private networks. An address that is not valid (a
// request from a Unix socket or a test's fake address) is public and
// matches no rule.
func (p *Policy) Check(addr netip.Addr, private bool) Decision {
	if p == nil || private {
		return Allowed
	}
	if p.publicDisabled {
		return DeniedPublicAccess
	}
	if p.deny {
		addr = addr.Unmap()
		for _, pre := range p.allow {
			if pre.Contains(addr) {
				return Allowed
			}
		}
		return DeniedFirewall
	}
	return Allowed
}

// Networks is a set of address ranges: the server's private networks.
type Networks []netip.Prefix

// Contains reports whether addr is in one of the ranges.
func (n Networks) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	return slices.ContainsFunc(n, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// RemoteAddr returns the address of a request's RemoteAddr ("ip:port");
// the zero Addr when it has none.
func RemoteAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// UpstreamAllowed reports whether the gateway may connect to addr, an
// upstream's resolved address: one of allowed when the server names any
// (serve --upstream-networks), else any address but a link-local one or
// another of the cloud platforms' own (platformNetworks) — where metadata
// services answer (169.254.169.254, fe80::/10, AWS's fd00:ec2::254,
// Alibaba's 100.100.100.200, Azure's 168.63.129.16), which no model
// server has reason to use and an account owner must not be able to aim
// the gateway at. An IPv4 address inside the NAT64 prefix 64:ff9b::/96 is
// judged as the IPv4 address it reaches.
func UpstreamAllowed(allowed Networks, addr netip.Addr) bool {
	addr = addr.Unmap()
	if len(allowed) > 0 {
		return allowed.Contains(addr)
	}
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	return addr.IsValid() && !addr.IsLinkLocalUnicast() && !addr.IsLinkLocalMulticast() && !platformNetworks.Contains(addr)
}

// nat64 is the well-known NAT64 prefix (RFC 6052).
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// platformNetworks are cloud platforms' service addresses outside the
// link-local ranges: AWS's IPv6 instance metadata, Alibaba Cloud's
// metadata, and Azure's WireServer (168.63.129.16, which also answers DNS
// and health probes: it has no model server either).
var platformNetworks = Networks{
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("168.63.129.16/32"),
}

// MaxAllowedFQDNs bounds an allowedFqdnList.
const MaxAllowedFQDNs = 1000

// NormalizeFQDNs checks an allowedFqdnList as ARM takes it: at most
// MaxAllowedFQDNs host names or IP addresses (no scheme, port, path or
// wildcard), returned lower-case, without a trailing dot, deduplicated, in
// the order given.
//
// Errors (*gatehouse.Error): 400 InvalidAllowedFqdnList.
func NormalizeFQDNs(list []string) ([]string, error) {
	if len(list) > MaxAllowedFQDNs {
		return nil, gatehouse.BadRequestf("InvalidAllowedFqdnList", "allowedFqdnList may name at most %d hosts.", MaxAllowedFQDNs).
			WithTarget("properties.allowedFqdnList")
	}
	out := make([]string, 0, len(list))
	for _, h := range list {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if a, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil && a.Zone() == "" {
			n = a.Unmap().String()
		}
		if !validHost(n) {
			return nil, gatehouse.BadRequestf("InvalidAllowedFqdnList",
				"'%s' in allowedFqdnList is not a host name or an IP address (give only the host: no scheme, port, path or wildcard).", clip(h)).
				WithTarget("properties.allowedFqdnList")
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Outbound is an account's outbound restriction — Azure's
// restrictOutboundNetworkAccess with its allowedFqdnList, for data loss
// prevention: the upstream hosts the account may forward to. A nil
// *Outbound allows every host.
type Outbound struct {
	hosts map[string]struct{}
}

// CompileOutbound returns the restriction (nil when restrict is false);
// fqdns are NormalizeFQDNs' output.
func CompileOutbound(restrict bool, fqdns []string) *Outbound {
	if !restrict {
		return nil
	}
	o := &Outbound{hosts: make(map[string]struct{}, len(fqdns))}
	for _, h := range fqdns {
		o.hosts[h] = struct{}{}
	}
	return o
}

// Allows reports whether host (a URL's Hostname()) may be reached.
func (o *Outbound) Allows(host string) bool {
	if o == nil {
		return true
	}
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		h = a.Unmap().String()
	}
	_, ok := o.hosts[h]
	return ok
}
