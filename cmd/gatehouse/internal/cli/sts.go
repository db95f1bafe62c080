package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// `gatehouse sts issue` trades an account key for a 10-minute STS token:
// the key comes from the management API (listKeys, as the signed-in
// principal) or from --key-file, and the token from the account's
// /sts/v1.0/issueToken. By default the token is printed alone on a line,
// for TOKEN=$(gatehouse sts issue --account A); -o or --query print an
// object.

func newSTSCmd(env Env) *cobra.Command {
	sts := newGroup("sts", "Trade an account key for a short-lived (10-minute) token")
	sts.AddCommand(newSTSIssueCmd(env))
	return sts
}

func newSTSIssueCmd(env Env) *cobra.Command {
	var sub, group, account, keyName, keyFile string
	cmd := &cobra.Command{Use: "issue", Short: "Print an STS token for an account (Authorization: Bearer <token>)", Args: cobra.NoArgs,
		Long: `Trade an account key for a 10-minute STS token (the account's
/sts/v1.0/issueToken) and print it.

By default the token is printed alone on a line, for TOKEN=$(...). With
-o json (or table, tsv) or --query it prints an object instead, as az's
get-access-token does: accessToken, expiresOn, tokenType and account.`,
		Example: `  TOKEN=$(gatehouse sts issue --account my-language)
  gatehouse sts issue --account my-language --key-name key2 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if account == "" {
				return errors.New("--account is required")
			}
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			var key, endpoint string
			if keyFile != "" {
				data, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("--key-file: %w", err)
				}
				key = strings.TrimSpace(string(data))
				endpoint = c.base + "/ai/" + strings.ToLower(account) + "/"
			} else {
				f := armFlags{sub: sub, group: group, name: account}
				if f.group == "" {
					if f.group, err = findAccountGroup(cmd, c, &f); err != nil {
						return err
					}
				}
				p, err := f.accountPath(c, "", true)
				if err != nil {
					return err
				}
				var acct struct {
					Properties struct {
						Endpoint string `json:"endpoint"`
					} `json:"properties"`
				}
				if err := c.Do(cmd.Context(), "GET", p, nil, &acct); err != nil {
					return err
				}
				if p, err = f.accountPath(c, "/listKeys", true); err != nil {
					return err
				}
				var keys keysResult
				if err := c.Do(cmd.Context(), "POST", p, nil, &keys); err != nil {
					return err
				}
				switch strings.ToLower(keyName) {
				case "key1":
					key = keys.Key1
				case "key2":
					key = keys.Key2
				default:
					return fmt.Errorf("--key-name: %q is not key1 or key2", keyName)
				}
				endpoint = acct.Properties.Endpoint
			}
			tok, err := issueSTSToken(cmd, c, endpoint, key)
			if err != nil {
				return err
			}
			if format, _ := cmd.Flags().GetString("output"); format == "" && !cmd.Flags().Changed("query") {
				_, err := fmt.Fprintln(env.Stdout, tok)
				return err
			}
			out := map[string]any{"accessToken": tok, "account": account, "tokenType": "Bearer"}
			if exp, ok := tokenExpiry(tok); ok {
				out["expiresOn"] = exp.UTC().Format(time.RFC3339)
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	fl := cmd.Flags()
	fl.StringVar(&account, "account", "", "account name")
	fl.StringVarP(&group, "resource-group", "g", "", "resource group (default: found by account name in the subscription)")
	fl.StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
	fl.StringVar(&keyName, "key-name", "key1", "which key to trade: key1 or key2")
	fl.StringVar(&keyFile, "key-file", "", "read the key from this file instead of the management API")
	// Not addOutputFlags: the plain output is the bare token, not json.
	fl.StringP("output", "o", "", "output format: json, table, tsv or none (default: the token alone on a line)")
	fl.String("query", "", "JMESPath query applied to the JSON object (as in az); without -o, json")
	return cmd
}

type keysResult struct {
	Key1 string `json:"key1"`
	Key2 string `json:"key2"`
}

// findAccountGroup finds the resource group of the account f.name among
// the subscription's accounts.
func findAccountGroup(cmd *cobra.Command, c *apiClient, f *armFlags) (string, error) {
	p, err := f.accountPath(c, "", false)
	if err != nil {
		return "", err
	}
	var list struct {
		Value []struct{ ID, Name string } `json:"value"`
	}
	if err := c.Do(cmd.Context(), "GET", p, nil, &list); err != nil {
		return "", err
	}
	var groups []string
	for _, a := range list.Value {
		if !strings.EqualFold(a.Name, f.name) {
			continue
		}
		// /subscriptions/{s}/resourceGroups/{g}/providers/…
		parts := strings.Split(a.ID, "/")
		if len(parts) > 4 {
			groups = append(groups, parts[4])
		}
	}
	switch len(groups) {
	case 0:
		return "", fmt.Errorf("no account named %q in the subscription", f.name)
	case 1:
		return groups[0], nil
	}
	return "", fmt.Errorf("several accounts are named %q: give --resource-group (%s)", f.name, strings.Join(groups, ", "))
}

// issueSTSToken posts key to endpoint's STS.
func issueSTSToken(cmd *cobra.Command, c *apiClient, endpoint, key string) (string, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/sts/v1.0/issueToken", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", key)
	req.Header.Set("User-Agent", "gatehouse-cli/"+Version)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", parseAPIError(resp.StatusCode, data)
	}
	return strings.TrimSpace(string(data)), nil
}

// tokenExpiry reads exp from a JWT without verifying it.
func tokenExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct{ Exp int64 }
	if json.Unmarshal(payload, &c) != nil || c.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(c.Exp, 0), true
}
