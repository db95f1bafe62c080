package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/server"
	"github.com/spf13/cobra"
)

// The `keyvault` group manages vaults through the management API and
// secrets through a vault's data plane, in az's shape (az keyvault …,
// az keyvault secret …).
//
// Data-plane commands get a token for the vault resource https://vault.H
// and call https://{vault}.vault.H/. They connect to the server's own
// address for every *.vault.H name, so no DNS or /etc/hosts entry is
// needed on the machine running the CLI (the TLS name is still the
// vault's).

const (
	keyVaultAPIVersion = "2023-07-01"
	secretsAPIVersion  = "7.6"
)

func newKeyVaultCmd(env Env) *cobra.Command {
	kv := newGroup("keyvault", "Manage key vaults and their secrets (as az keyvault)")
	kv.AddCommand(newVaultCreateCmd(env), newVaultListCmd(env), newVaultShowCmd(env), newVaultUpdateCmd(env), newVaultDeleteCmd(env),
		newVaultListDeletedCmd(env), newVaultShowDeletedCmd(env), newVaultRecoverCmd(env), newVaultPurgeCmd(env), // deletedvaults.go
		newSecretCmd(env)) // keyvault_secret.go
	var nf vaultFlags
	kv.AddCommand(newNetworkRuleCmd(env, "vault", func(c *cobra.Command) { nf.add(c, true) }, nf.target)) // network.go
	return kv
}

// target is the vault of the flags, for the network-rule commands.
func (f *vaultFlags) target(cmd *cobra.Command, c *apiClient) (string, error) {
	return f.path(cmd.Context(), c, true)
}

func newVaultUpdateCmd(env Env) *cobra.Command {
	var f vaultFlags
	var network networkUpdate
	cmd := &cobra.Command{Use: "update", Short: "Update a key vault's network access", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			if _, err := f.path(cmd.Context(), c, true); err != nil {
				return err
			}
			props := map[string]any{}
			if err := network.apply(cmd, c, f.target, props); err != nil {
				return err
			}
			if len(props) == 0 {
				return errors.New("nothing to update: give --public-network-access or --default-action")
			}
			p, err := f.path(cmd.Context(), c, true)
			if err != nil {
				return err
			}
			return armCall(cmd, env, "PATCH", p, map[string]any{"properties": props}, true)
		}}
	f.add(cmd, true)
	network.addFlags(cmd)
	return cmd
}

// vaultFlags are the flags of the vault commands.
type vaultFlags struct {
	sub, group, name string
}

func (f *vaultFlags) add(c *cobra.Command, withName bool) {
	c.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	c.Flags().StringVarP(&f.group, "resource-group", "g", "", "resource group")
	if withName {
		c.Flags().StringVarP(&f.name, "name", "n", "", "vault name")
	}
	addOutputFlags(c)
}

// path returns the vault's path, finding its resource group by listing the
// subscription's vaults when -g is not given (as az does); without a name,
// the list path of the group or subscription.
func (f *vaultFlags) path(ctx context.Context, c *apiClient, withName bool) (string, error) {
	s := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
	if s == "" {
		return "", errors.New("--subscription is required (the profile has no default subscription)")
	}
	p := "/subscriptions/" + url.PathEscape(s)
	if !withName {
		if f.group != "" {
			p += "/resourceGroups/" + url.PathEscape(f.group)
		}
		return p + "/providers/Microsoft.KeyVault/vaults?api-version=" + keyVaultAPIVersion, nil
	}
	if f.name == "" {
		return "", errors.New("--name is required")
	}
	if f.group == "" {
		var list struct {
			Value []struct {
				ID, Name string
			} `json:"value"`
		}
		if err := c.Do(ctx, "GET", p+"/providers/Microsoft.KeyVault/vaults?api-version="+keyVaultAPIVersion, nil, &list); err != nil {
			return "", err
		}
		for _, v := range list.Value {
			if strings.EqualFold(v.Name, f.name) {
				return v.ID + "?api-version=" + keyVaultAPIVersion, nil
			}
		}
		return "", &APIError{Status: http.StatusNotFound, Code: "ResourceNotFound",
			Message: fmt.Sprintf("The Resource 'Microsoft.KeyVault/vaults/%s' was not found in subscription '%s'.", f.name, s)}
	}
	return p + "/resourceGroups/" + url.PathEscape(f.group) + "/providers/Microsoft.KeyVault/vaults/" +
		url.PathEscape(f.name) + "?api-version=" + keyVaultAPIVersion, nil
}

func newVaultCreateCmd(env Env) *cobra.Command {
	var f vaultFlags
	var location, sku string
	var retention int
	var purgeProtection bool
	var tags []string
	cmd := &cobra.Command{Use: "create", Short: "Create a key vault (Azure RBAC; grant yourself Key Vault Secrets Officer to write secrets)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			if f.group == "" {
				return errors.New("--resource-group is required")
			}
			p, err := f.path(cmd.Context(), c, true)
			if err != nil {
				return err
			}
			props := map[string]any{"sku": map[string]string{"family": "A", "name": sku}, "enableRbacAuthorization": true}
			if cmd.Flags().Changed("retention-days") {
				// Unsaid, a new vault gets 90 days and an existing one keeps
				// its own (which cannot change): create runs again safely.
				props["softDeleteRetentionInDays"] = retention
			}
			if c.Profile.TenantID != "" && c.Profile.TenantID != "adfs" {
				props["tenantId"] = c.Profile.TenantID
			}
			if purgeProtection {
				props["enablePurgeProtection"] = true
			}
			body := map[string]any{"location": location, "properties": props, "tags": parseTags(tags)}
			var out any
			if err := c.Do(cmd.Context(), "PUT", p, body, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	f.add(cmd, true)
	fl := cmd.Flags()
	fl.StringVarP(&location, "location", "l", "", "location (required)")
	fl.StringVar(&sku, "sku", "standard", "standard or premium")
	fl.IntVar(&retention, "retention-days", 90, "soft-delete retention in days (7-90; fixed once the vault exists)")
	fl.BoolVar(&purgeProtection, "enable-purge-protection", false, "forbid purging deleted secrets and the vault before the retention ends (cannot be undone)")
	addTagsFlag(cmd, &tags, "tags")
	cmd.MarkFlagRequired("location")
	return cmd
}

func newVaultListCmd(env Env) *cobra.Command {
	var f vaultFlags
	cmd := &cobra.Command{Use: "list", Short: "List key vaults (of a group, or of the subscription)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(cmd.Context(), c, false)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		}}
	f.add(cmd, false)
	return cmd
}

func newVaultShowCmd(env Env) *cobra.Command {
	var f vaultFlags
	cmd := &cobra.Command{Use: "show", Short: "Show a key vault", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(cmd.Context(), c, true)
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "GET", p, nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	f.add(cmd, true)
	return cmd
}

func newVaultDeleteCmd(env Env) *cobra.Command {
	var f vaultFlags
	cmd := &cobra.Command{Use: "delete", Short: "Delete a key vault (soft delete: recoverable until its retention ends)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(cmd.Context(), c, true)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", p, nil, nil)
		}}
	f.add(cmd, true)
	return cmd
}

// newVaultClient returns a client of vault's data plane: base
// https://{vault}.vault.H, token resource https://vault.H.
func newVaultClient(cmd *cobra.Command, env Env, vaultName string) (*apiClient, error) {
	if vaultName == "" {
		return nil, errors.New("--vault-name is required")
	}
	p, err := loadProfile(env)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(p.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the profile's server %q is not a URL: run `gatehouse login` again", p.Server)
	}
	public := u.Host
	if p.PublicHost != "" {
		public = p.PublicHost // the login named the server by another name (an IP address)
	}
	c, err := newClientFor(cmd, env, "https://vault."+public)
	if err != nil {
		return nil, err
	}
	c.base = "https://" + strings.ToLower(vaultName) + ".vault." + public
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		return nil, errors.New("unexpected HTTP transport")
	}
	tr = tr.Clone()
	serverAddr := u.Host
	if u.Port() == "" {
		serverAddr = net.JoinHostPort(u.Hostname(), "443")
	}
	suffix := ".vault." + strings.ToLower(server.Hostname(public))
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, _, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(strings.ToLower(h), suffix) {
			addr = serverAddr
		}
		return dialer.DialContext(ctx, network, addr)
	}
	// The token endpoint stays on the server itself.
	c.http = &http.Client{Transport: tr, Timeout: c.http.Timeout}
	return c, nil
}

// readValueFile reads --file for `secret set`.
// readValueFile reads a secret's value from path, or from stdin when path
// is "-" (so that it is neither in argv nor on disk). A read stops past
// the largest value a vault takes, which the server then refuses.
func readValueFile(path string, stdin io.Reader) (string, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func encodeBackup(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeBackup(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
}
