package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// Soft-deleted vaults, as az keyvault list-deleted, show-deleted, recover
// and purge. A deleted vault lives under its location at the subscription
// (Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}); like az, the
// commands find the location themselves when --location is not given.

// deletedVault is what the commands read of a deleted vault.
type deletedVault struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		VaultID  string `json:"vaultId"`
		Location string `json:"location"`
	} `json:"properties"`
}

func (f *vaultFlags) deletedVaultsPath(c *apiClient) (string, error) {
	s := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
	if s == "" {
		return "", errors.New("--subscription is required (the profile has no default subscription)")
	}
	return "/subscriptions/" + url.PathEscape(s) + "/providers/Microsoft.KeyVault/deletedVaults?api-version=" + keyVaultAPIVersion, nil
}

// findDeleted returns the deleted vault of the flags' name (in loc when
// given), listing the subscription's deleted vaults.
func (f *vaultFlags) findDeleted(ctx context.Context, c *apiClient, loc string) (*deletedVault, error) {
	if f.name == "" {
		return nil, errors.New("--name is required")
	}
	p, err := f.deletedVaultsPath(c)
	if err != nil {
		return nil, err
	}
	var list struct {
		Value []deletedVault `json:"value"`
	}
	if err := c.Do(ctx, "GET", p, nil, &list); err != nil {
		return nil, err
	}
	for i, v := range list.Value {
		if strings.EqualFold(v.Name, f.name) && (loc == "" || strings.EqualFold(normalizeLocation(v.Properties.Location), normalizeLocation(loc))) {
			return &list.Value[i], nil
		}
	}
	if loc != "" {
		return nil, fmt.Errorf("no deleted vault %q in location %s", f.name, loc)
	}
	return nil, fmt.Errorf("no deleted vault %q in the subscription", f.name)
}

// normalizeLocation is ARM's form of a location: "West Europe" is westeurope.
func normalizeLocation(loc string) string {
	return strings.ToLower(strings.ReplaceAll(loc, " ", ""))
}

func newVaultListDeletedCmd(env Env) *cobra.Command {
	var f vaultFlags
	cmd := &cobra.Command{Use: "list-deleted", Short: "List the subscription's soft-deleted vaults (recoverable until their scheduled purge date)",
		Args: cobra.NoArgs,
		RunE: withClient(env, func(cmd *cobra.Command, c *apiClient) error {
			p, err := f.deletedVaultsPath(c)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		})}
	cmd.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	addOutputFlags(cmd)
	return cmd
}

// deletedVaultCmd builds show-deleted, recover and purge: each names a
// deleted vault by name, and by location when two share the name.
func deletedVaultCmd(env Env, use, short string, run func(cmd *cobra.Command, c *apiClient, f *vaultFlags, v *deletedVault) error) *cobra.Command {
	var f vaultFlags
	var loc string
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: withClient(env, func(cmd *cobra.Command, c *apiClient) error {
			v, err := f.findDeleted(cmd.Context(), c, loc)
			if err != nil {
				return err
			}
			return run(cmd, c, &f, v)
		})}
	cmd.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	cmd.Flags().StringVarP(&f.name, "name", "n", "", "vault name")
	cmd.Flags().StringVarP(&loc, "location", "l", "", "the deleted vault's location (default: found by name)")
	addOutputFlags(cmd)
	return cmd
}

func newVaultShowDeletedCmd(env Env) *cobra.Command {
	return deletedVaultCmd(env, "show-deleted", "Show a soft-deleted vault", func(cmd *cobra.Command, c *apiClient, f *vaultFlags, v *deletedVault) error {
		return armCall(cmd, env, "GET", v.ID+"?api-version="+keyVaultAPIVersion, nil, true)
	})
}

func newVaultRecoverCmd(env Env) *cobra.Command {
	return deletedVaultCmd(env, "recover", "Recover a soft-deleted vault: its secrets, settings and role assignments come back",
		func(cmd *cobra.Command, c *apiClient, f *vaultFlags, v *deletedVault) error {
			if v.Properties.VaultID == "" {
				return fmt.Errorf("the deleted vault %q does not name the vault it was", v.Name)
			}
			body := map[string]any{"location": v.Properties.Location, "properties": map[string]any{"createMode": "recover"}}
			return armCall(cmd, env, "PUT", v.Properties.VaultID+"?api-version="+keyVaultAPIVersion, body, true)
		})
}

func newVaultPurgeCmd(env Env) *cobra.Command {
	return deletedVaultCmd(env, "purge", "Delete a soft-deleted vault for good, with its secrets (refused while purge protection holds it)",
		func(cmd *cobra.Command, c *apiClient, f *vaultFlags, v *deletedVault) error {
			return c.Do(cmd.Context(), "POST", v.ID+"/purge?api-version="+keyVaultAPIVersion, nil, nil)
		})
}
