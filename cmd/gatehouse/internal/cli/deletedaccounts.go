package cli

import (
	"errors"
	"net/url"

	"github.com/spf13/cobra"
)

// Soft-deleted accounts, as az cognitiveservices account list-deleted,
// show-deleted, recover and purge.

// deletedPath is the path of the flags' deleted account in location loc.
func (f *armFlags) deletedPath(c *apiClient, loc string) (string, error) {
	s, err := f.subscription(c)
	if err != nil {
		return "", err
	}
	switch {
	case loc == "":
		return "", errors.New("--location is required")
	case f.group == "":
		return "", errors.New("--resource-group is required")
	case f.name == "":
		return "", errors.New("--name is required")
	}
	return "/subscriptions/" + url.PathEscape(s) + "/providers/Microsoft.CognitiveServices/locations/" + url.PathEscape(loc) +
		"/resourceGroups/" + url.PathEscape(f.group) + "/deletedAccounts/" + url.PathEscape(f.name) +
		"?api-version=" + accountsAPIVersion, nil
}

func newAccountListDeletedCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "list-deleted", Short: "List the subscription's deleted accounts (recoverable until their scheduled purge date)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return providerListCall(cmd, env, &f, "deletedAccounts?api-version="+accountsAPIVersion)
		}}
	cmd.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	addOutputFlags(cmd)
	return cmd
}

// withClient is a RunE that runs run with a management API client.
func withClient(env Env, run func(cmd *cobra.Command, c *apiClient) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c, err := newAPIClient(cmd, env)
		if err != nil {
			return err
		}
		return run(cmd, c)
	}
}

// deletedCmd builds show-deleted, recover and purge: each names a deleted
// account by location, group and name.
func deletedCmd(env Env, use, short string, run func(cmd *cobra.Command, c *apiClient, f *armFlags, loc string) error) *cobra.Command {
	var f armFlags
	var loc string
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: withClient(env, func(cmd *cobra.Command, c *apiClient) error { return run(cmd, c, &f, loc) })}
	f.add(cmd, true)
	cmd.Flags().StringVarP(&loc, "location", "l", "", "the deleted account's location")
	return cmd
}

func newAccountShowDeletedCmd(env Env) *cobra.Command {
	return deletedCmd(env, "show-deleted", "Show a deleted account", func(cmd *cobra.Command, c *apiClient, f *armFlags, loc string) error {
		p, err := f.deletedPath(c, loc)
		if err != nil {
			return err
		}
		return armCall(cmd, env, "GET", p, nil, true)
	})
}

func newAccountRecoverCmd(env Env) *cobra.Command {
	return deletedCmd(env, "recover", "Recover a deleted account: the same keys, deployments and settings come back",
		func(cmd *cobra.Command, c *apiClient, f *armFlags, loc string) error {
			if loc == "" {
				return errors.New("--location is required")
			}
			p, err := f.accountPath(c, "", true)
			if err != nil {
				return err
			}
			body := map[string]any{"location": loc, "properties": map[string]any{"restore": true}}
			return armCall(cmd, env, "PUT", p, body, true)
		})
}

func newAccountPurgeCmd(env Env) *cobra.Command {
	return deletedCmd(env, "purge", "Delete a deleted account for good (its keys, deployments and role assignments; the name is free again)",
		func(cmd *cobra.Command, c *apiClient, f *armFlags, loc string) error {
			p, err := f.deletedPath(c, loc)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", p, nil, nil)
		})
}
