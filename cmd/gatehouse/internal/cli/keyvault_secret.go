package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// `gatehouse keyvault secret …`: the data plane, in az's shapes
// (--vault-name, --name, --value/--file, --version).

type secretFlags struct {
	vault, name, version string
}

func (f *secretFlags) add(c *cobra.Command, withName, withVersion bool) {
	c.Flags().StringVar(&f.vault, "vault-name", "", "vault name (required)")
	if withName {
		c.Flags().StringVarP(&f.name, "name", "n", "", "secret name (required)")
	}
	if withVersion {
		c.Flags().StringVarP(&f.version, "version", "v", "", "secret version (default: the latest)")
	}
	addOutputFlags(c)
}

// path is a data-plane path with the api-version.
func (f *secretFlags) path(prefix string, withName bool, suffix string) (string, error) {
	p := prefix
	if withName {
		if f.name == "" {
			return "", errors.New("--name is required")
		}
		p += "/" + url.PathEscape(f.name)
	}
	return p + suffix + "?api-version=" + secretsAPIVersion, nil
}

// secretRun builds a command that sends one request and prints the answer.
func secretRun(env Env, f *secretFlags, method string, build func() (path string, body any, err error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newVaultClient(cmd, env, f.vault)
		if err != nil {
			return err
		}
		p, body, err := build()
		if err != nil {
			return err
		}
		var out any
		if err := c.Do(cmd.Context(), method, p, body, &out); err != nil {
			return err
		}
		if out == nil {
			return nil
		}
		return printOutput(cmd, env.Stdout, out)
	}
}

// listAll follows nextLinks and prints every item.
func listAll(env Env, f *secretFlags, build func() (string, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newVaultClient(cmd, env, f.vault)
		if err != nil {
			return err
		}
		p, err := build()
		if err != nil {
			return err
		}
		items := []any{}
		for p != "" {
			var page struct {
				Value    []any   `json:"value"`
				NextLink *string `json:"nextLink"`
			}
			if err := c.Do(cmd.Context(), "GET", p, nil, &page); err != nil {
				return err
			}
			items = append(items, page.Value...)
			p = ""
			if page.NextLink != nil && *page.NextLink != "" {
				u, err := url.Parse(*page.NextLink)
				if err != nil {
					return fmt.Errorf("the server sent a bad nextLink: %v", err)
				}
				p = u.RequestURI()
			}
		}
		return printOutput(cmd, env.Stdout, items)
	}
}

func newSecretCmd(env Env) *cobra.Command {
	sc := newGroup("secret", "Manage the secrets of a vault (its data plane)")
	sc.AddCommand(newSecretSetCmd(env))

	var show secretFlags
	showCmd := &cobra.Command{Use: "show", Short: "Show a secret with its value", Args: cobra.NoArgs,
		RunE: secretRun(env, &show, "GET", func() (string, any, error) {
			p, err := show.path("/secrets", true, "/"+url.PathEscape(show.version))
			return p, nil, err
		})}
	show.add(showCmd, true, true)

	var list secretFlags
	listCmd := &cobra.Command{Use: "list", Short: "List the secrets of a vault (no values)", Args: cobra.NoArgs,
		RunE: listAll(env, &list, func() (string, error) { return list.path("/secrets", false, "") })}
	list.add(listCmd, false, false)

	var versions secretFlags
	versionsCmd := &cobra.Command{Use: "list-versions", Short: "List the versions of a secret (no values)", Args: cobra.NoArgs,
		RunE: listAll(env, &versions, func() (string, error) { return versions.path("/secrets", true, "/versions") })}
	versions.add(versionsCmd, true, false)

	var deleted secretFlags
	deletedCmd := &cobra.Command{Use: "list-deleted", Short: "List the soft-deleted secrets of a vault", Args: cobra.NoArgs,
		RunE: listAll(env, &deleted, func() (string, error) { return deleted.path("/deletedsecrets", false, "") })}
	deleted.add(deletedCmd, false, false)

	var del secretFlags
	delCmd := &cobra.Command{Use: "delete", Short: "Delete a secret (soft delete: recoverable until its retention ends)", Args: cobra.NoArgs,
		RunE: secretRun(env, &del, "DELETE", func() (string, any, error) {
			p, err := del.path("/secrets", true, "")
			return p, nil, err
		})}
	del.add(delCmd, true, false)

	var rec secretFlags
	recCmd := &cobra.Command{Use: "recover", Short: "Recover a soft-deleted secret", Args: cobra.NoArgs,
		RunE: secretRun(env, &rec, "POST", func() (string, any, error) {
			p, err := rec.path("/deletedsecrets", true, "/recover")
			return p, nil, err
		})}
	rec.add(recCmd, true, false)

	var purge secretFlags
	purgeCmd := &cobra.Command{Use: "purge", Short: "Permanently delete a soft-deleted secret", Args: cobra.NoArgs,
		RunE: secretRun(env, &purge, "DELETE", func() (string, any, error) {
			p, err := purge.path("/deletedsecrets", true, "")
			return p, nil, err
		})}
	purge.add(purgeCmd, true, false)

	sc.AddCommand(showCmd, listCmd, versionsCmd, deletedCmd, delCmd, recCmd, purgeCmd,
		newSecretBackupCmd(env), newSecretRestoreCmd(env))
	return sc
}

func newSecretSetCmd(env Env) *cobra.Command {
	var f secretFlags
	var value, file, contentType, expires, notBefore string
	var disabled bool
	var tags []string
	var cmd *cobra.Command
	cmd = &cobra.Command{Use: "set", Short: "Create a new version of a secret", Args: cobra.NoArgs,
		RunE: secretRun(env, &f, "PUT", func() (string, any, error) {
			if cmd.Flags().Changed("value") == (file != "") {
				return "", nil, errors.New("give exactly one of --value and --file")
			}
			if file != "" {
				v, err := readValueFile(file, env.Stdin)
				if err != nil {
					return "", nil, err
				}
				value = v
			}
			attrs := map[string]any{"enabled": !disabled}
			for _, t := range []struct {
				flag, val, key string
			}{{"--expires", expires, "exp"}, {"--not-before", notBefore, "nbf"}} {
				if t.val == "" {
					continue
				}
				at, err := time.Parse(time.RFC3339, t.val)
				if err != nil {
					return "", nil, fmt.Errorf("%s: %q is not an RFC 3339 time (2025-01-02T15:04:05Z)", t.flag, t.val)
				}
				attrs[t.key] = at.Unix()
			}
			body := map[string]any{"value": value, "attributes": attrs}
			if contentType != "" {
				body["contentType"] = contentType
			}
			if len(tags) > 0 {
				body["tags"] = parseTags(tags)
			}
			p, err := f.path("/secrets", true, "")
			return p, body, err
		})}
	f.add(cmd, true, false)
	fl := cmd.Flags()
	fl.StringVar(&value, "value", "", "the secret's value")
	fl.StringVarP(&file, "file", "f", "", "read the value from this file (- for standard input)")
	fl.StringVar(&contentType, "content-type", "", "content type (e.g. text/plain)")
	fl.StringVar(&expires, "expires", "", "expiry (RFC 3339)")
	fl.StringVar(&notBefore, "not-before", "", "not valid before (RFC 3339)")
	fl.BoolVar(&disabled, "disabled", false, "create the version disabled")
	addTagsFlag(cmd, &tags, "tags")
	return cmd
}

func newSecretBackupCmd(env Env) *cobra.Command {
	var f secretFlags
	var file string
	cmd := &cobra.Command{Use: "backup", Short: "Back up every version of a secret to a file (opaque, sealed; restore into this deployment only)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("--file is required")
			}
			c, err := newVaultClient(cmd, env, f.vault)
			if err != nil {
				return err
			}
			p, err := f.path("/secrets", true, "/backup")
			if err != nil {
				return err
			}
			var out struct {
				Value string `json:"value"`
			}
			if err := c.Do(cmd.Context(), "POST", p, nil, &out); err != nil {
				return err
			}
			blob, err := decodeBackup(out.Value)
			if err != nil {
				return fmt.Errorf("the server sent a malformed backup: %v", err)
			}
			return os.WriteFile(file, blob, 0o600)
		}}
	f.add(cmd, true, false)
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to write the backup to (required)")
	return cmd
}

func newSecretRestoreCmd(env Env) *cobra.Command {
	var f secretFlags
	var file string
	cmd := &cobra.Command{Use: "restore", Short: "Restore a secret from a backup file", Args: cobra.NoArgs,
		RunE: secretRun(env, &f, "POST", func() (string, any, error) {
			if file == "" {
				return "", nil, errors.New("--file is required")
			}
			blob, err := os.ReadFile(file)
			if err != nil {
				return "", nil, err
			}
			p, err := f.path("/secrets", false, "/restore")
			return p, map[string]string{"value": encodeBackup(blob)}, err
		})}
	f.add(cmd, false, false)
	cmd.Flags().StringVarP(&file, "file", "f", "", "backup file (required)")
	return cmd
}
