package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/spf13/cobra"
)

// The `cognitiveservices` group manages AI accounts and their keys through
// the management API, in az's shape (az cognitiveservices account …).

// Management api-versions the CLI sends.
const (
	accountsAPIVersion = "2025-06-01"
	groupsAPIVersion   = "2021-04-01"
	authzAPIVersion    = "2022-04-01"
)

// recentUse is how recently a key slot must have been used for `keys
// regenerate` to ask before replacing it.
const recentUse = 15 * time.Minute

// armFlags are the flags every management command shares.
type armFlags struct {
	sub, group, name string
}

func (f *armFlags) add(c *cobra.Command, withName bool) {
	c.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	c.Flags().StringVarP(&f.group, "resource-group", "g", "", "resource group")
	if withName {
		c.Flags().StringVarP(&f.name, "name", "n", "", "account name")
	}
	addOutputFlags(c)
}

func (f *armFlags) subscription(c *apiClient) (string, error) {
	s := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
	if s == "" {
		return "", errors.New("--subscription is required (the profile has no default subscription)")
	}
	return s, nil
}

// accountPath returns the account's path (with suffix, e.g. "/listKeys")
// and api-version; without a name, the list path of the group or
// subscription.
func (f *armFlags) accountPath(c *apiClient, suffix string, withName bool) (string, error) {
	s, err := f.subscription(c)
	if err != nil {
		return "", err
	}
	p := "/subscriptions/" + url.PathEscape(s)
	if f.group != "" {
		p += "/resourceGroups/" + url.PathEscape(f.group)
	} else if withName {
		return "", errors.New("--resource-group is required")
	}
	p += "/providers/Microsoft.CognitiveServices/accounts"
	if withName {
		if f.name == "" {
			return "", errors.New("--name is required")
		}
		p += "/" + url.PathEscape(f.name)
	}
	return p + suffix + "?api-version=" + accountsAPIVersion, nil
}

func newCognitiveServicesCmd(env Env) *cobra.Command {
	cs := newGroup("cognitiveservices", "Manage AI accounts (as az cognitiveservices)")
	account := newGroup("account", "Manage AI accounts: create, list, show, update, delete (recover, purge), keys")
	keys := newGroup("keys", "List and regenerate an account's two keys, and see how each is used")
	keys.AddCommand(newKeysListCmd(env), newKeysRegenerateCmd(env), newKeysUsageCmd(env))
	account.AddCommand(newAccountCreateCmd(env), newAccountListCmd(env), newAccountShowCmd(env),
		newAccountUpdateCmd(env), newAccountDeleteCmd(env), keys)
	account.AddCommand(newAccountListDeletedCmd(env), newAccountShowDeletedCmd(env), newAccountRecoverCmd(env),
		newAccountPurgeCmd(env)) // deletedaccounts.go
	account.AddCommand(newDeploymentCmd(env), newAccountListModelsCmd(env)) // deployment.go
	var nf armFlags
	account.AddCommand(newNetworkRuleCmd(env, "account", func(c *cobra.Command) { nf.add(c, true) }, nf.accountTarget)) // network.go
	// model and usage (deployment.go): the model catalog and its quotas.
	cs.AddCommand(account, newModelCmd(env), newUsageCmd(env))
	return cs
}

// parseTags turns az's "k=v" words into a tag map ("k" alone: empty value).
func parseTags(words []string) map[string]string {
	tags := map[string]string{}
	for _, w := range words {
		if w == "" {
			continue // --tags "" clears them, as in az
		}
		k, v, _ := strings.Cut(w, "=")
		tags[k] = v
	}
	return tags
}

// addTagsFlag adds --tags to cmd, taking az's forms: --tags a=b c=d (the
// words after the flag), the flag repeated, or a=b,c=d — split at commas
// only when every piece is a key=value, so "note=a,b" stays one tag.
func addTagsFlag(cmd *cobra.Command, tags *[]string, usage string) {
	cmd.Flags().Var(&tagList{tags}, "tags", usage+" (key=value: --tags a=b c=d, or repeat the flag)")
	args := cmd.Args
	cmd.Args = func(c *cobra.Command, rest []string) error {
		if len(rest) > 0 && c.Flags().Changed("tags") && !slices.ContainsFunc(rest, func(w string) bool { return !strings.Contains(w, "=") }) {
			*tags = append(*tags, rest...)
			return nil
		}
		if args == nil {
			return nil
		}
		return args(c, rest)
	}
}

// tagList is the value of --tags.
type tagList struct{ words *[]string }

func (t *tagList) Set(s string) error {
	pieces := strings.Split(s, ",")
	if len(pieces) > 1 && !slices.ContainsFunc(pieces, func(p string) bool { return !strings.Contains(p, "=") }) {
		*t.words = append(*t.words, pieces...)
		return nil
	}
	*t.words = append(*t.words, s)
	return nil
}

func (t *tagList) Type() string   { return "tags" }
func (t *tagList) String() string { return strings.Join(*t.words, " ") }

// armCall runs one request and prints the JSON answer (or nothing).
func armCall(cmd *cobra.Command, env Env, method, path string, body any, print bool) error {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return err
	}
	var out any
	if err := c.Do(cmd.Context(), method, path, body, &out); err != nil {
		return err
	}
	if !print {
		return nil
	}
	return printOutput(cmd, env.Stdout, out)
}

func newAccountCreateCmd(env Env) *cobra.Command {
	var f armFlags
	var kind, sku, location, domain string
	var tags []string
	var disableLocalAuth, assignIdentity bool
	cmd := &cobra.Command{Use: "create", Short: "Create an AI account (it gets two fresh keys)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "", true)
			if err != nil {
				return err
			}
			props := map[string]any{}
			if domain != "" {
				props["customSubDomainName"] = domain
			}
			if disableLocalAuth {
				props["disableLocalAuth"] = true
			}
			body := map[string]any{"kind": kind, "sku": map[string]string{"name": sku}, "location": location,
				"properties": props, "tags": parseTags(tags)}
			if assignIdentity {
				body["identity"] = map[string]string{"type": "SystemAssigned"}
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", p, body, &out); err != nil {
				var ae *APIError
				if errors.As(err, &ae) && ae.Code == "FlagMustBeSetForRestore" {
					// The API's words name the property; the CLI's fix is a command.
					return fmt.Errorf("%w\nA deleted account holds the name: gatehouse cognitiveservices account recover -n %s -g %s -l %s brings it back, or purge frees the name",
						err, f.name, f.group, location)
				}
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", "", "account kind: AIServices, CognitiveServices, TextAnalytics or OpenAI (required)")
	fl.StringVar(&sku, "sku", "S0", "pricing tier, one of the kind's: "+skuChoices())
	fl.StringVarP(&location, "location", "l", "", "location (required): westus, \"West US\", local, … (az account list-locations lists them)")
	fl.StringVar(&domain, "custom-domain", "", "custom subdomain: the account's data-plane name")
	addTagsFlag(cmd, &tags, "tags")
	fl.BoolVar(&disableLocalAuth, "disable-local-auth", false, "refuse keys on the data plane (identity only)")
	fl.BoolVar(&assignIdentity, "assign-identity", false, "give the account a system-assigned managed identity")
	cmd.MarkFlagRequired("kind")
	cmd.MarkFlagRequired("location")
	return cmd
}

// skuChoices lists the SKUs of each kind, as the server checks them.
func skuChoices() string {
	var parts []string
	for _, k := range accounts.Kinds {
		parts = append(parts, k+" "+strings.Join(accounts.SKUNames(k), "|"))
	}
	return strings.Join(parts, "; ")
}

func newAccountListCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "list", Short: "List AI accounts (of a group, or of the subscription)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "", false)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		}}
	f.add(cmd, false)
	return cmd
}

// accountTarget is the account of the flags, for the network-rule commands.
func (f *armFlags) accountTarget(_ *cobra.Command, c *apiClient) (string, error) {
	return f.accountPath(c, "", true)
}

func newAccountShowCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "show", Short: "Show an AI account", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "", true)
			if err != nil {
				return err
			}
			return armCall(cmd, env, "GET", p, nil, true)
		}}
	f.add(cmd, true)
	return cmd
}

func newAccountUpdateCmd(env Env) *cobra.Command {
	var f armFlags
	var sku, domain, disableLocalAuth, restrictOutbound string
	var allowedFQDNs []string
	var tags []string
	var network networkUpdate
	cmd := &cobra.Command{Use: "update", Short: "Update an AI account's sku, tags, custom domain, local auth or network access", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "", true)
			if err != nil {
				return err
			}
			body := map[string]any{}
			props := map[string]any{}
			if sku != "" {
				body["sku"] = map[string]string{"name": sku}
			}
			if cmd.Flags().Changed("tags") {
				body["tags"] = parseTags(tags)
			}
			if domain != "" {
				props["customSubDomainName"] = domain
			}
			if err := setBool(props, "disableLocalAuth", "disable-local-auth", disableLocalAuth); err != nil {
				return err
			}
			if err := setBool(props, "restrictOutboundNetworkAccess", "restrict-outbound-network-access", restrictOutbound); err != nil {
				return err
			}
			if cmd.Flags().Changed("allowed-fqdns") {
				props["allowedFqdnList"] = allowedFQDNs
			}
			if err := network.apply(cmd, c, f.accountTarget, props); err != nil {
				return err
			}
			if len(props) > 0 {
				body["properties"] = props
			}
			return armCall(cmd, env, "PATCH", p, body, true)
		}}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&sku, "sku", "", "pricing tier, one of the kind's: "+skuChoices())
	fl.StringVar(&domain, "custom-domain", "", "custom subdomain (can be set once)")
	addTagsFlag(cmd, &tags, "tags, replacing the current ones")
	fl.StringVar(&disableLocalAuth, "disable-local-auth", "", "true: refuse keys on the data plane; false: accept them")
	fl.StringVar(&restrictOutbound, "restrict-outbound-network-access", "", "true: forward only to upstreams whose host is in --allowed-fqdns (data loss prevention; the model catalog's are exempt); false: any")
	fl.StringSliceVar(&allowedFQDNs, "allowed-fqdns", nil, "hosts (names or addresses) the account's own upstreams may be at, replacing the current list")
	network.addFlags(cmd)
	return cmd
}

// setBool sets props[key] from a true/false flag's value ("" leaves it out).
func setBool(props map[string]any, key, flag, value string) error {
	switch strings.ToLower(value) {
	case "":
	case "true", "false":
		props[key] = strings.EqualFold(value, "true")
	default:
		return fmt.Errorf("--%s: %q is not true or false", flag, value)
	}
	return nil
}

func newAccountDeleteCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "delete", Short: "Delete an AI account: its keys stop working at once; it stays recoverable (recover) until purged", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "", true)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", p, nil, nil)
		}}
	f.add(cmd, true)
	return cmd
}

func newKeysListCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "list", Short: "List an account's keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "/listKeys", true)
			if err != nil {
				return err
			}
			return armCall(cmd, env, "POST", p, nil, true)
		}}
	f.add(cmd, true)
	return cmd
}

// keyUsage is one slot of listKeyUsage.
type keyUsage struct {
	KeyName             string   `json:"keyName"`
	Generation          int64    `json:"generation"`
	RegeneratedAt       string   `json:"regeneratedAt"`
	LastUsed            *string  `json:"lastUsed"`
	RequestsLastHour    int64    `json:"requestsLastHour"`
	RequestsLast24Hours int64    `json:"requestsLast24Hours"`
	RequestsTotal       int64    `json:"requestsTotal"`
	TokensLast24Hours   int64    `json:"tokensLast24Hours"`
	ClientAddresses     []string `json:"recentClientAddresses"`
	UserAgents          []string `json:"recentUserAgents"`
}

func newKeysRegenerateCmd(env Env) *cobra.Command {
	var f armFlags
	var keyName string
	var yes bool
	cmd := &cobra.Command{Use: "regenerate", Short: "Regenerate one key (the other keeps working)",
		Long: `Regenerate key1 or key2. Clients using the other key are not affected, so a
rotation without downtime is: move clients to key2, regenerate key1, move
them back to key1, regenerate key2.

If the key was used in the last 15 minutes, the command shows who used it
and asks for confirmation (or pass --yes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var slot string
			switch strings.ToLower(keyName) {
			case "key1", "key2":
				slot = strings.ToLower(keyName)
			default:
				return fmt.Errorf("--key-name: %q is not key1 or key2", keyName)
			}
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			usagePath, err := f.accountPath(c, "/listKeyUsage", true)
			if err != nil {
				return err
			}
			if !yes {
				var usage struct {
					Value []keyUsage `json:"value"`
				}
				if err := c.Do(cmd.Context(), "POST", usagePath, nil, &usage); err != nil {
					return err
				}
				for _, u := range usage.Value {
					if u.KeyName != slot || u.LastUsed == nil {
						continue
					}
					last, err := time.Parse(time.RFC3339, *u.LastUsed)
					if err != nil || time.Since(last) > recentUse {
						continue
					}
					if err := confirmRegenerate(cmd, env, u, last); err != nil {
						return err
					}
				}
			}
			p, _ := f.accountPath(c, "/regenerateKey", true)
			var out any
			// az sends "Key1"/"Key2".
			if err := c.Do(cmd.Context(), "POST", p, map[string]string{"keyName": "K" + slot[1:]}, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	f.add(cmd, true)
	cmd.Flags().StringVar(&keyName, "key-name", "", "key1 or key2 (required)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask, even if the key is in use")
	cmd.MarkFlagRequired("key-name")
	return cmd
}

// confirmRegenerate shows the slot's recent use on stderr and asks on
// stdin; anything but y/yes aborts.
func confirmRegenerate(cmd *cobra.Command, env Env, u keyUsage, last time.Time) error {
	w := env.Stderr
	tokens := ""
	if u.TokensLast24Hours > 0 {
		tokens = fmt.Sprintf(", %d tokens", u.TokensLast24Hours)
	}
	requests := "requests"
	if u.RequestsLastHour == 1 {
		requests = "request"
	}
	fmt.Fprintf(w, "%s was used %s ago (%d %s in the last hour, %d in the last 24 hours%s).\n",
		u.KeyName, time.Since(last).Round(time.Second), u.RequestsLastHour, requests, u.RequestsLast24Hours, tokens)
	if len(u.ClientAddresses) > 0 {
		fmt.Fprintf(w, "Recent client addresses: %s\n", strings.Join(u.ClientAddresses, ", "))
	}
	if len(u.UserAgents) > 0 {
		fmt.Fprintf(w, "Recent user agents: %s\n", strings.Join(u.UserAgents, ", "))
	}
	fmt.Fprintf(w, "Clients still using %s will fail once it is regenerated. Regenerate it? [y/N] ", u.KeyName)
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	fmt.Fprintln(w)
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("not regenerated: %s is in use (confirm, or pass --yes)", u.KeyName)
}

func newKeysUsageCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "usage", Short: "Show how each key slot was used recently (last use, counts, clients)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "/listKeyUsage", true)
			if err != nil {
				return err
			}
			var raw []byte
			if err := c.Do(cmd.Context(), "POST", p, nil, &raw); err != nil {
				return err
			}
			var usage struct {
				Value []map[string]any `json:"value"`
			}
			if err := json.Unmarshal(raw, &usage); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, usage.Value)
		}}
	f.add(cmd, true)
	return cmd
}
