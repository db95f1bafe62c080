package cli

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The `ad` group manages the directory through the server's Graph subset,
// in az's shape (az ad sp …, az ad user …).

func newADCmd(env Env) *cobra.Command {
	ad := newGroup("ad", "Manage the directory: service principals, their credentials, applications' APIs, and people")
	sp := newGroup("sp", "Manage service principals (applications)")
	sp.AddCommand(newSPCreateCmd(env), newSPListCmd(env), newSPShowCmd(env), newSPDeleteCmd(env),
		newSPCredentialCmd(env), newSPFederatedCmd(env), newOwnerCmd(env, ownedSP))
	user := newGroup("user", "Manage people")
	user.AddCommand(newUserCreateCmd(env), newUserListCmd(env), newUserShowCmd(env), newUserDeleteCmd(env))
	ad.AddCommand(sp, newAppCmd(env), user)
	return ad
}

// newGroup returns a command group: without a subcommand it prints its
// help; an unknown subcommand is an error (cobra would print help and exit
// 0).
func newGroup(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
}

// graphApp is the part of Graph's application the CLI reads.
type graphApp struct {
	ID                  string           `json:"id"`
	AppID               string           `json:"appId"`
	DisplayName         string           `json:"displayName"`
	PasswordCredentials []map[string]any `json:"passwordCredentials"`
	KeyCredentials      []map[string]any `json:"keyCredentials"`
}

// findApp resolves an appId, service principal object id or application
// object id to the application.
func findApp(cmd *cobra.Command, c *apiClient, id string) (*graphApp, error) {
	if id == "" {
		return nil, errors.New("--id is required")
	}
	var app graphApp
	if err := c.Do(cmd.Context(), "GET", "/v1.0/applications/"+url.PathEscape(id), nil, &app); err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("no service principal or application has the id %q", id)
		}
		return nil, err
	}
	return &app, nil
}

func secretEnd(years int, endDate string) (string, error) {
	if endDate != "" {
		t, err := time.Parse("2006-01-02", endDate)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, endDate); err != nil {
				return "", fmt.Errorf("--end-date %q is not a date (2006-01-02) or RFC 3339 time", endDate)
			}
		}
		return t.UTC().Format(time.RFC3339), nil
	}
	if years < 1 || years > 100 {
		return "", errors.New("--years must be between 1 and 100")
	}
	return time.Now().UTC().AddDate(years, 0, 0).Format(time.RFC3339), nil
}

type passwordResult struct {
	SecretText string `json:"secretText"`
	KeyID      string `json:"keyId"`
}

func newSPCreateCmd(env Env) *cobra.Command {
	var name, endDate string
	var years int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a service principal with a client secret (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return errors.New("--display-name is required")
			}
			end, err := secretEnd(years, endDate)
			if err != nil {
				return err
			}
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			var app graphApp
			if err := c.Do(cmd.Context(), "POST", "/v1.0/applications",
				map[string]any{"displayName": name, "gatehouseCreateServicePrincipal": true}, &app); err != nil {
				return err
			}
			var pw passwordResult
			if err := c.Do(cmd.Context(), "POST", "/v1.0/applications/"+app.ID+"/addPassword",
				map[string]any{"passwordCredential": map[string]any{"displayName": "rbac", "endDateTime": end}}, &pw); err != nil {
				return err
			}
			var sp struct {
				ID string `json:"id"`
			}
			if err := c.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+app.AppID, nil, &sp); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, map[string]any{"appId": app.AppID, "displayName": app.DisplayName,
				"password": pw.SecretText, "tenant": c.Profile.TenantID, "id": sp.ID})
		},
	}
	cmd.Flags().StringVarP(&name, "display-name", "n", "", "display name")
	cmd.Flags().IntVar(&years, "years", 1, "years the secret is valid")
	cmd.Flags().StringVar(&endDate, "end-date", "", "secret expiry (2006-01-02 or RFC 3339); overrides --years")
	addOutputFlags(cmd)
	return cmd
}

func newSPListCmd(env Env) *cobra.Command {
	var name, filter string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List service principals (applications and managed identities)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			path := "/v1.0/servicePrincipals"
			if name != "" {
				filter = "displayName eq '" + strings.ReplaceAll(name, "'", "''") + "'"
			}
			if filter != "" {
				path += "?$filter=" + url.QueryEscape(filter)
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := c.Do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out.Value)
		},
	}
	cmd.Flags().StringVar(&name, "display-name", "", "only those with this display name")
	cmd.Flags().StringVar(&filter, "filter", "", "OData filter: <property> eq '<value>' (appId, displayName, servicePrincipalType)")
	addOutputFlags(cmd)
	return cmd
}

func newSPShowCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if id == "" {
				return errors.New("--id is required")
			}
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+url.PathEscape(id), nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	addOutputFlags(cmd)
	return cmd
}

func newSPDeleteCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a service principal with its application and credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, id)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/v1.0/applications/"+app.ID, nil, nil)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	return cmd
}

func newSPCredentialCmd(env Env) *cobra.Command {
	group := newGroup("credential", "Manage a service principal's secrets and certificates")

	var id, name, endDate, certFile string
	var years int
	var appendCred bool
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Add a new secret (or certificate) and, without --append, remove the others",
		Long: `Add a new client secret, shown once, and remove the others unless --append is
given. Rotate without downtime: reset --append, move clients to the new secret,
then credential delete the old one.

With --cert PEM, upload that certificate instead (public part only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, id)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if certFile != "" {
				der, err := readCertificate(certFile)
				if err != nil {
					return err
				}
				kc := map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(der), "displayName": name}
				if appendCred {
					var added map[string]any
					if err := c.Do(ctx, "POST", "/v1.0/applications/"+app.ID+"/addKey", map[string]any{"keyCredential": kc, "proof": ""}, &added); err != nil {
						return err
					}
					return printOutput(cmd, env.Stdout, map[string]any{"appId": app.AppID, "keyId": added["keyId"],
						"thumbprint": added["customKeyIdentifier"], "tenant": c.Profile.TenantID})
				}
				if err := c.Do(ctx, "PATCH", "/v1.0/applications/"+app.ID, map[string]any{"keyCredentials": []any{kc}}, nil); err != nil {
					return err
				}
				app, err = findApp(cmd, c, app.ID)
				if err != nil {
					return err
				}
				out := map[string]any{"appId": app.AppID, "tenant": c.Profile.TenantID}
				if len(app.KeyCredentials) > 0 {
					out["keyId"], out["thumbprint"] = app.KeyCredentials[0]["keyId"], app.KeyCredentials[0]["customKeyIdentifier"]
				}
				return printOutput(cmd, env.Stdout, out)
			}
			end, err := secretEnd(years, endDate)
			if err != nil {
				return err
			}
			pc := map[string]any{"endDateTime": end}
			if name != "" {
				pc["displayName"] = name
			}
			var pw passwordResult
			if err := c.Do(ctx, "POST", "/v1.0/applications/"+app.ID+"/addPassword", map[string]any{"passwordCredential": pc}, &pw); err != nil {
				return err
			}
			if !appendCred {
				for _, old := range app.PasswordCredentials {
					if err := c.Do(ctx, "POST", "/v1.0/applications/"+app.ID+"/removePassword", map[string]any{"keyId": old["keyId"]}, nil); err != nil && !isNotFound(err) {
						return err
					}
				}
			}
			return printOutput(cmd, env.Stdout, map[string]any{"appId": app.AppID, "password": pw.SecretText,
				"keyId": pw.KeyID, "tenant": c.Profile.TenantID})
		},
	}
	reset.Flags().StringVar(&id, "id", "", "appId or object id")
	reset.Flags().StringVar(&name, "display-name", "", "the credential's display name")
	reset.Flags().IntVar(&years, "years", 1, "years the secret is valid")
	reset.Flags().StringVar(&endDate, "end-date", "", "secret expiry (2006-01-02 or RFC 3339); overrides --years")
	reset.Flags().BoolVar(&appendCred, "append", false, "keep the existing credentials")
	reset.Flags().StringVar(&certFile, "cert", "", "upload this PEM certificate instead of creating a secret")
	addOutputFlags(reset)

	var listID string
	var listCert bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List a service principal's secrets (or, with --cert, certificates); secrets are never shown",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, listID)
			if err != nil {
				return err
			}
			if listCert {
				return printOutput(cmd, env.Stdout, app.KeyCredentials)
			}
			return printOutput(cmd, env.Stdout, app.PasswordCredentials)
		},
	}
	list.Flags().StringVar(&listID, "id", "", "appId or object id")
	list.Flags().BoolVar(&listCert, "cert", false, "list certificates")
	addOutputFlags(list)

	var delID, keyID string
	var delCert bool
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete one secret (or, with --cert, certificate) by key id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyID == "" {
				return errors.New("--key-id is required")
			}
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, delID)
			if err != nil {
				return err
			}
			if delCert {
				return c.Do(cmd.Context(), "POST", "/v1.0/applications/"+app.ID+"/removeKey", map[string]any{"keyId": keyID, "proof": ""}, nil)
			}
			return c.Do(cmd.Context(), "POST", "/v1.0/applications/"+app.ID+"/removePassword", map[string]any{"keyId": keyID}, nil)
		},
	}
	del.Flags().StringVar(&delID, "id", "", "appId or object id")
	del.Flags().StringVar(&keyID, "key-id", "", "the credential's key id")
	del.Flags().BoolVar(&delCert, "cert", false, "delete a certificate")
	group.AddCommand(reset, list, del)
	return group
}

func newSPFederatedCmd(env Env) *cobra.Command {
	group := newGroup("federated-credential", "Manage federated identity credentials (workload identity)")
	var id, name, issuer, subject, audience, desc, jwksFile string
	create := &cobra.Command{
		Use:   "create",
		Short: "Trust tokens of an external OIDC issuer for this service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, id)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name, "issuer": issuer, "subject": subject, "audiences": []string{audience}, "description": desc}
			if jwksFile != "" {
				data, err := os.ReadFile(jwksFile)
				if err != nil {
					return err
				}
				body["gatehouseJwks"] = json.RawMessage(data)
			}
			var out map[string]any
			if err := c.Do(cmd.Context(), "POST", "/v1.0/applications/"+app.ID+"/federatedIdentityCredentials", body, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	create.Flags().StringVar(&id, "id", "", "appId or object id")
	create.Flags().StringVar(&name, "name", "", "credential name")
	create.Flags().StringVar(&issuer, "issuer", "", "the external issuer (https URL)")
	create.Flags().StringVar(&subject, "subject", "", "the subject its tokens must carry")
	create.Flags().StringVar(&audience, "audience", "api://AzureADTokenExchange", "the audience its tokens must carry")
	create.Flags().StringVar(&desc, "description", "", "description")
	create.Flags().StringVar(&jwksFile, "jwks-file", "", "the issuer's JWKS, for issuers the server cannot reach")
	addOutputFlags(create)

	var listID string
	list := &cobra.Command{
		Use:   "list",
		Short: "List federated identity credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, listID)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := c.Do(cmd.Context(), "GET", "/v1.0/applications/"+app.ID+"/federatedIdentityCredentials", nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out.Value)
		},
	}
	list.Flags().StringVar(&listID, "id", "", "appId or object id")
	addOutputFlags(list)

	var delID, cred string
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete a federated identity credential",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			app, err := findApp(cmd, c, delID)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/v1.0/applications/"+app.ID+"/federatedIdentityCredentials/"+url.PathEscape(cred), nil, nil)
		},
	}
	del.Flags().StringVar(&delID, "id", "", "appId or object id")
	del.Flags().StringVar(&cred, "federated-credential-id", "", "the credential's id or name")
	group.AddCommand(create, list, del)
	return group
}

// readCertificate reads the first certificate of a PEM file (a private key
// in the same file is ignored and never sent).
func readCertificate(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s holds no PEM CERTIFICATE", path)
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes, nil
		}
	}
}

func newUserCreateCmd(env Env) *cobra.Command {
	var upn, name, password string
	var passStdin, forceChange bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a person who signs in with a password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if passStdin {
				var err error
				if password, err = readPasswordStdin(cmd); err != nil {
					return err
				}
			}
			if password == "" {
				return errors.New("--password or --password-stdin is required")
			}
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			var out map[string]any
			body := map[string]any{"userPrincipalName": upn, "displayName": firstNonEmpty(name, upn), "accountEnabled": true,
				"passwordProfile": map[string]any{"password": password, "forceChangePasswordNextSignIn": forceChange}}
			if err := c.Do(cmd.Context(), "POST", "/v1.0/users", body, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	cmd.Flags().StringVar(&upn, "user-principal-name", "", "sign-in name")
	cmd.Flags().StringVar(&name, "display-name", "", "display name")
	cmd.Flags().StringVar(&password, "password", "", "initial password (at least 12 characters)")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "read the initial password from standard input")
	cmd.Flags().BoolVar(&forceChange, "force-change-password-next-sign-in", false,
		"make the password temporary: the person chooses a new one when signing in to the portal")
	cmd.MarkFlagRequired("user-principal-name")
	cmd.MarkFlagsMutuallyExclusive("password", "password-stdin")
	addOutputFlags(cmd)
	return cmd
}

func newUserListCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List people",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := c.Do(cmd.Context(), "GET", "/v1.0/users", nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out.Value)
		},
	}
	addOutputFlags(cmd)
	return cmd
}

func newUserShowCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a person",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Do(cmd.Context(), "GET", "/v1.0/users/"+url.PathEscape(id), nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or user principal name")
	cmd.MarkFlagRequired("id") // without it the request would go to the users collection
	addOutputFlags(cmd)
	return cmd
}

func newUserDeleteCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a person",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newGraphClient(cmd, env)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/v1.0/users/"+url.PathEscape(id), nil, nil)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or user principal name")
	cmd.MarkFlagRequired("id") // without it the request would go to the users collection
	return cmd
}
