package netacl

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestNormalize(t *testing.T) {
	got, err := Normalize(Rules{DefaultAction: "deny", Bypass: "azureservices", IPRules: []IPRule{
		{"203.0.113.7"}, {" 198.51.100.0/24 "}, {"198.51.100.9/24"}, {"2001:db8::/32"}, {"2001:DB8::1"},
		{"192.0.2.1/32"}, {"203.0.113.7"},
	}}, "InvalidNetworkAcls", "properties.networkAcls")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range got.IPRules {
		values = append(values, r.Value)
	}
	want := "203.0.113.7 198.51.100.0/24 2001:db8::/32 2001:db8::1 192.0.2.1"
	if got.DefaultAction != "Deny" || got.Bypass != "AzureServices" || strings.Join(values, " ") != want || got.VirtualNetworkRules == nil {
		t.Errorf("got %+v, want Deny, AzureServices, %s (duplicates and host bits gone)", got, want)
	}
	if got, err := Normalize(Rules{}, "C", "t"); err != nil || got.DefaultAction != "Allow" || got.IPRules == nil {
		t.Errorf("empty rules: %+v %v, want Allow with an empty ipRules", got, err)
	}

	many := make([]IPRule, MaxIPRules+1)
	for i := range many {
		many[i] = IPRule{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()}
	}
	for name, r := range map[string]Rules{
		"default-action":   {DefaultAction: "Block"},
		"bypass":           {Bypass: "Everyone"},
		"vnet-rule":        {VirtualNetworkRules: []VNetRuleRef{{ID: "/subscriptions/x/vnet"}}},
		"not-an-address":   {IPRules: []IPRule{{"example.com"}}},
		"empty-value":      {IPRules: []IPRule{{""}}},
		"bad-prefix":       {IPRules: []IPRule{{"10.0.0.0/33"}}},
		"zone":             {IPRules: []IPRule{{"fe80::1%eth0"}}},
		"mapped":           {IPRules: []IPRule{{"::ffff:10.0.0.1"}}},
		"range-with-dash":  {IPRules: []IPRule{{"10.0.0.1-10.0.0.9"}}},
		"too-many":         {IPRules: many},
		"control-char":     {IPRules: []IPRule{{"10.0.\n0.1"}}},
		"port":             {IPRules: []IPRule{{"10.0.0.1:80"}}},
		"trailing-garbage": {IPRules: []IPRule{{"10.0.0.0/8x"}}},
	} {
		_, err := Normalize(r, "InvalidNetworkAcls", "properties.networkAcls")
		e, ok := gatehouse.AsError(err)
		if !ok || e.Status != 400 || e.Code != "InvalidNetworkAcls" || e.Target != "properties.networkAcls" {
			t.Errorf("%s: %v, want a 400 InvalidNetworkAcls at properties.networkAcls", name, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	rules := func(action string, ips ...string) *Rules {
		r := Rules{DefaultAction: action}
		for _, ip := range ips {
			r.IPRules = append(r.IPRules, IPRule{ip})
		}
		n, err := Normalize(r, "C", "t")
		if err != nil {
			t.Fatal(err)
		}
		return &n
	}
	if p := Compile("Enabled", nil); p != nil {
		t.Errorf("no rules: %+v, want nil (allow all)", p)
	}
	if p := Compile("Enabled", rules("Allow", "10.0.0.0/8")); p != nil {
		t.Errorf("default action Allow: %+v, want nil (the rules do not restrict)", p)
	}
	addr := netip.MustParseAddr
	deny := Compile("Enabled", rules("Deny", "10.0.0.0/8", "2001:db8::1"))
	off := Compile("disabled", rules("Allow"))
	for _, c := range []struct {
		name    string
		p       *Policy
		addr    netip.Addr
		private bool
		want    Decision
	}{
		{"in-range", deny, addr("10.1.2.3"), false, Allowed},
		{"v4-mapped-in-range", deny, addr("::ffff:10.1.2.3"), false, Allowed},
		{"v6-exact", deny, addr("2001:db8::1"), false, Allowed},
		{"v6-neighbour", deny, addr("2001:db8::2"), false, DeniedFirewall},
		{"outside", deny, addr("192.0.2.1"), false, DeniedFirewall},
		{"no-address", deny, netip.Addr{}, false, DeniedFirewall},
		{"outside-but-private", deny, addr("192.0.2.1"), true, Allowed},
		{"public-disabled", off, addr("10.1.2.3"), false, DeniedPublicAccess},
		{"public-disabled-private", off, addr("10.1.2.3"), true, Allowed},
		{"nil-policy", nil, addr("192.0.2.1"), false, Allowed},
	} {
		if got := c.p.Check(c.addr, c.private); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParsePrefixesAndRemoteAddr(t *testing.T) {
	n, err := ParsePrefixes(" 10.0.0.0/8, ,::1 ,192.168.1.7")
	if err != nil || len(n) != 3 {
		t.Fatalf("%v %v", n, err)
	}
	if !Networks(n).Contains(netip.MustParseAddr("::ffff:10.9.9.9")) || Networks(n).Contains(netip.MustParseAddr("192.168.1.8")) {
		t.Errorf("Contains is wrong for %v", n)
	}
	if _, err := ParsePrefixes("10.0.0.0/8,nope"); err == nil {
		t.Error("a list with a bad entry was taken")
	}
	if n, err := ParsePrefixes(""); err != nil || n != nil {
		t.Errorf("empty list: %v %v", n, err)
	}
	for remote, want := range map[string]string{
		"127.0.0.1:5000": "127.0.0.1", "[::1]:443": "::1", "[::ffff:10.0.0.1]:1": "10.0.0.1", "10.0.0.2": "10.0.0.2", "pipe": "invalid IP",
	} {
		if got := RemoteAddr(remote).String(); got != want {
			t.Errorf("RemoteAddr(%q) = %s, want %s", remote, got, want)
		}
	}
}

// FuzzNormalize: any IP rule value is refused with a 400 or normalized to
// a value that normalizes to itself and that a compiled policy matches.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "203.0.113.7", "2001:db8::/32", "::1", "10.0.0.1/33", "fe80::1%eth0", "::ffff:1.2.3.4", " 1.2.3.4 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Normalize(Rules{DefaultAction: "Deny", IPRules: []IPRule{{s}}}, "C", "t")
		if err != nil {
			if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 {
				t.Fatalf("%q: %v is not a 400", s, err)
			}
			return
		}
		again, err := Normalize(got, "C", "t")
		if err != nil || again.IPRules[0] != got.IPRules[0] {
			t.Fatalf("%q → %q → %v %v: not a fixed point", s, got.IPRules[0].Value, again, err)
		}
		p, _ := ParseRule(got.IPRules[0].Value)
		if Compile("Enabled", &got).Check(p.Addr(), false) != Allowed {
			t.Fatalf("%q: the rule's own address is refused", s)
		}
	})
}

// BenchmarkCheck is the data plane's per-request cost for an account with
// a firewall of 10 rules, the client matching the last one (parsing the
// RemoteAddr included).
func BenchmarkCheck(b *testing.B) {
	r := Rules{DefaultAction: "Deny"}
	for i := range 10 {
		r.IPRules = append(r.IPRules, IPRule{netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String() + "/16"})
	}
	n, _ := Normalize(r, "C", "t")
	p := Compile("Enabled", &n)
	private := Networks{netip.MustParsePrefix("192.168.0.0/16")}
	for b.Loop() {
		a := RemoteAddr("10.9.1.2:54321")
		if p.Check(a, private.Contains(a)) != Allowed {
			b.Fatal("refused")
		}
	}
}

func TestUpstreamAllowed(t *testing.T) {
	lan := Networks{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		allowed Networks
		addr    string
		want    bool
	}{
		{nil, "127.0.0.1", true},
		{nil, "203.0.113.5", true},
		{nil, "169.254.169.254", false},
		{nil, "::ffff:169.254.169.254", false},
		{nil, "fe80::1", false},
		{nil, "fd00:ec2::254", false},      // AWS's IPv6 instance metadata
		{nil, "fd00:ec2::253", true},       // other unique-local addresses: named networks are the way to refuse them
		{nil, "100.100.100.200", false},    // Alibaba Cloud's metadata
		{nil, "100.100.100.201", true},     // the rest of the shared address space
		{nil, "168.63.129.16", false},      // Azure's WireServer
		{nil, "64:ff9b::a9fe:a9fe", false}, // 169.254.169.254 through NAT64
		{nil, "64:ff9b::cb00:7105", true},  // 203.0.113.5 through NAT64
		{lan, "10.1.2.3", true},
		{lan, "127.0.0.1", false},
		{lan, "169.254.169.254", false},
	} {
		if got := UpstreamAllowed(c.allowed, netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("UpstreamAllowed(%v, %s) = %v, want %v", c.allowed, c.addr, got, c.want)
		}
	}
	if UpstreamAllowed(nil, netip.Addr{}) {
		t.Error("an invalid address is allowed")
	}
}

func TestOutbound(t *testing.T) {
	list, err := NormalizeFQDNs([]string{"VLLM.Internal.", "10.0.0.5", "[::1]", "vllm.internal", " api.example.com "})
	if err != nil || strings.Join(list, ",") != "vllm.internal,10.0.0.5,::1,api.example.com" {
		t.Fatalf("normalized %q %v", list, err)
	}
	for _, bad := range []string{"", "https://x.example", "x.example:443", "*.example.com", "x/y", "a..b", "-a.example", "fe80::1%eth0",
		strings.Repeat("a", 64) + ".example", "ü.example"} {
		if _, err := NormalizeFQDNs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NormalizeFQDNs(make([]string, MaxAllowedFQDNs+1)); err == nil {
		t.Error("too many accepted")
	}
	var none *Outbound
	if !none.Allows("anything.example") || CompileOutbound(false, list) != nil {
		t.Error("no restriction refuses")
	}
	o := CompileOutbound(true, list)
	for host, want := range map[string]bool{"vllm.internal": true, "VLLM.INTERNAL.": true, "10.0.0.5": true, "::1": true, "[::1]": true,
		"::ffff:10.0.0.5": true, "other.internal": false, "internal": false, "10.0.0.6": false, "": false} {
		if o.Allows(host) != want {
			t.Errorf("Allows(%q) = %v", host, !want)
		}
	}
	if CompileOutbound(true, nil).Allows("x.example") {
		t.Error("an empty list allows")
	}
}
