package cli

import (
	"errors"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// `gatehouse lock create|list|show|delete`: management locks, in az lock's
// shape. A lock on a subscription, a resource group or a resource keeps
// it and everything under it from being deleted (CanNotDelete) or changed
// at all (ReadOnly, which also stops key listing and regeneration) until
// the lock is removed.

const locksAPIVersion = "2016-09-01"

func newLockCmd(env Env) *cobra.Command {
	g := newGroup("lock", "Protect subscriptions, resource groups and resources from deletion or change")
	var sub, group, account, vault, scope, name, level, notes string
	scopeOf := func(c *apiClient) (string, error) {
		if scope != "" {
			if group != "" || account != "" || vault != "" {
				return "", errors.New("give --scope, or --resource-group with --account or --vault, not both")
			}
			if !strings.HasPrefix(strings.ToLower(scope), "/subscriptions/") {
				return "", errors.New("--scope is an ARM id under a subscription: /subscriptions/{id}[/resourceGroups/{group}[/providers/…]]")
			}
			return strings.TrimSuffix(scope, "/"), nil
		}
		s := firstNonEmpty(sub, c.Profile.SubscriptionID)
		if s == "" {
			return "", errors.New("--subscription is required (the profile has no default subscription)")
		}
		p := "/subscriptions/" + url.PathEscape(s)
		switch {
		case account != "" && vault != "":
			return "", errors.New("give --account or --vault, not both")
		case group == "" && (account != "" || vault != ""):
			return "", errors.New("--resource-group is required with --account or --vault")
		case group != "":
			p += "/resourceGroups/" + url.PathEscape(group)
		}
		switch {
		case account != "":
			p += "/providers/Microsoft.CognitiveServices/accounts/" + url.PathEscape(account)
		case vault != "":
			p += "/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(vault)
		}
		return p, nil
	}
	path := func(c *apiClient, withName bool) (string, error) {
		p, err := scopeOf(c)
		if err != nil {
			return "", err
		}
		p += "/providers/Microsoft.Authorization/locks"
		if withName {
			if name == "" {
				return "", errors.New("--name is required")
			}
			p += "/" + url.PathEscape(name)
		}
		return p + "?api-version=" + locksAPIVersion, nil
	}
	flags := func(c *cobra.Command, withName bool) {
		c.Flags().StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
		c.Flags().StringVarP(&group, "resource-group", "g", "", "the resource group (alone: the group itself)")
		c.Flags().StringVar(&account, "account", "", "a Cognitive Services account of the group")
		c.Flags().StringVar(&vault, "vault", "", "a key vault of the group")
		c.Flags().StringVar(&scope, "scope", "", "any ARM id under a subscription, instead of the flags above")
		if withName {
			c.Flags().StringVarP(&name, "name", "n", "", "lock name")
		}
		addOutputFlags(c)
	}
	run := func(method string, withName bool, body func() (any, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := path(c, withName)
			if err != nil {
				return err
			}
			if method == "GET" && !withName {
				return listCall(cmd, env, c, p)
			}
			var b any
			if body != nil {
				if b, err = body(); err != nil {
					return err
				}
			}
			var out any
			if err := c.Do(cmd.Context(), method, p, b, &out); err != nil {
				return err
			}
			if method == "DELETE" {
				return nil
			}
			return printOutput(cmd, env.Stdout, out)
		}
	}
	create := &cobra.Command{Use: "create", Short: "Lock a scope (CanNotDelete or ReadOnly)", Args: cobra.NoArgs,
		RunE: run("PUT", true, func() (any, error) {
			if level == "" {
				return nil, errors.New("--lock-type is required: CanNotDelete or ReadOnly")
			}
			return map[string]any{"properties": map[string]any{"level": level, "notes": notes}}, nil
		})}
	flags(create, true)
	create.Flags().StringVarP(&level, "lock-type", "t", "", "CanNotDelete (no deletes) or ReadOnly (no changes at all)")
	create.Flags().StringVar(&notes, "notes", "", "why the lock is there")
	list := &cobra.Command{Use: "list", Short: "List the locks at, above and below a scope", Args: cobra.NoArgs, RunE: run("GET", false, nil)}
	flags(list, false)
	show := &cobra.Command{Use: "show", Short: "Show a lock", Args: cobra.NoArgs, RunE: run("GET", true, nil)}
	flags(show, true)
	del := &cobra.Command{Use: "delete", Short: "Remove a lock", Args: cobra.NoArgs, RunE: run("DELETE", true, nil)}
	flags(del, true)
	g.AddCommand(create, list, show, del)
	return g
}
