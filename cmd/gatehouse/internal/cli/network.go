package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/netacl"
	"github.com/spf13/cobra"
)

// Network rules of accounts and vaults (properties.networkAcls), as az's
// `network-rule add|list|remove`: each change reads the resource's rule set,
// edits it and writes it back with a PATCH. As with az, the first rule added
// to a resource without a rule set turns the firewall on (default action
// Deny): an IP rule under Allow would restrict nothing.

// networkRuleTarget is how a network-rule command finds its resource: the
// path (with api-version) of the flags' resource.
type networkRuleTarget func(cmd *cobra.Command, c *apiClient) (string, error)

func newNetworkRuleCmd(env Env, noun string, flags func(*cobra.Command), target networkRuleTarget) *cobra.Command {
	group := newGroup("network-rule", "Manage the "+noun+"'s IP rules (networkAcls): who may call its data plane when the default action is Deny")
	var addIP, removeIP string
	add := &cobra.Command{Use: "add", Short: "Allow an IPv4/IPv6 address or CIDR range", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := ipFlag(addIP)
			if err != nil {
				return err
			}
			return editNetworkRules(cmd, env, target, func(r *netacl.Rules, present bool) error {
				if !present {
					r.DefaultAction = "Deny"
				}
				if ruleIndex(r, p) < 0 {
					r.IPRules = append(r.IPRules, netacl.IPRule{Value: addIP})
				}
				return nil
			})
		}}
	add.Flags().StringVar(&addIP, "ip-address", "", "address or CIDR range to allow (required)")
	flags(add)
	remove := &cobra.Command{Use: "remove", Short: "Remove an IP rule", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := ipFlag(removeIP)
			if err != nil {
				return err
			}
			return editNetworkRules(cmd, env, target, func(r *netacl.Rules, _ bool) error {
				i := ruleIndex(r, p)
				if i < 0 {
					return &APIError{Status: http.StatusNotFound, Code: "NotFound", Message: fmt.Sprintf("There is no IP rule %s to remove.", removeIP)}
				}
				r.IPRules = slices.Delete(r.IPRules, i, i+1)
				return nil
			})
		}}
	remove.Flags().StringVar(&removeIP, "ip-address", "", "address or CIDR range to remove (required)")
	flags(remove)
	list := &cobra.Command{Use: "list", Short: "Show the network rule set", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			rules, _, _, err := readNetworkRules(cmd, c, target)
			if err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, rules)
		}}
	flags(list)
	group.AddCommand(add, list, remove)
	return group
}

// ipFlag parses --ip-address before anything is read from the server.
func ipFlag(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("--ip-address is required: an IPv4 or IPv6 address or CIDR range")
	}
	p, err := netacl.ParseRule(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("--ip-address: %q is not an IPv4 or IPv6 address or CIDR range", s)
	}
	return p, nil
}

// ruleIndex returns the index of the rule for p in r (rules compare as
// parsed: "10.0.0.1" and "10.0.0.1/32" are one), or -1.
func ruleIndex(r *netacl.Rules, p netip.Prefix) int {
	return slices.IndexFunc(r.IPRules, func(rule netacl.IPRule) bool {
		q, err := netacl.ParseRule(rule.Value)
		return err == nil && q == p
	})
}

// readNetworkRules returns the resource's rule set (Allow with no rules, and
// present false, when it has none) and its path.
func readNetworkRules(cmd *cobra.Command, c *apiClient, target networkRuleTarget) (rules netacl.Rules, path string, present bool, err error) {
	p, err := target(cmd, c)
	if err != nil {
		return netacl.Rules{}, "", false, err
	}
	var res struct {
		Properties struct {
			NetworkACLs *netacl.Rules `json:"networkAcls"`
		} `json:"properties"`
	}
	if err := c.Do(cmd.Context(), "GET", p, nil, &res); err != nil {
		return netacl.Rules{}, "", false, err
	}
	rules = netacl.Rules{DefaultAction: "Allow", IPRules: []netacl.IPRule{}, VirtualNetworkRules: []netacl.VNetRuleRef{}}
	if r := res.Properties.NetworkACLs; r != nil {
		rules = *r
	}
	return rules, p, res.Properties.NetworkACLs != nil, nil
}

// editNetworkRules reads the rule set, applies edit and writes it back,
// printing the resource as the server answers.
func editNetworkRules(cmd *cobra.Command, env Env, target networkRuleTarget, edit func(r *netacl.Rules, present bool) error) error {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return err
	}
	rules, p, present, err := readNetworkRules(cmd, c, target)
	if err != nil {
		return err
	}
	if err := edit(&rules, present); err != nil {
		return err
	}
	return armCall(cmd, env, "PATCH", p, map[string]any{"properties": map[string]any{"networkAcls": rules}}, true)
}

// networkUpdate holds update's --public-network-access and --default-action.
type networkUpdate struct{ publicAccess, defaultAction string }

func (n *networkUpdate) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&n.publicAccess, "public-network-access", "", "Disabled: only clients in the server's --private-networks may call the data plane; Enabled: the network rules decide")
	cmd.Flags().StringVar(&n.defaultAction, "default-action", "", "Deny: only addresses in the IP rules (network-rule add) may call the data plane; Allow: any")
}

// apply adds the flags' properties to props; the default action needs the
// current rule set (read through target).
func (n *networkUpdate) apply(cmd *cobra.Command, c *apiClient, target networkRuleTarget, props map[string]any) error {
	if n.publicAccess != "" {
		switch {
		case strings.EqualFold(n.publicAccess, "Enabled"):
			props["publicNetworkAccess"] = "Enabled"
		case strings.EqualFold(n.publicAccess, "Disabled"):
			props["publicNetworkAccess"] = "Disabled"
		default:
			return fmt.Errorf("--public-network-access: %q is not Enabled or Disabled", n.publicAccess)
		}
	}
	if n.defaultAction != "" {
		if !strings.EqualFold(n.defaultAction, "Allow") && !strings.EqualFold(n.defaultAction, "Deny") {
			return fmt.Errorf("--default-action: %q is not Allow or Deny", n.defaultAction)
		}
		rules, _, _, err := readNetworkRules(cmd, c, target)
		if err != nil {
			return err
		}
		rules.DefaultAction = n.defaultAction
		props["networkAcls"] = rules
	}
	return nil
}
