package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// msiAPIVersion is the ARM api-version of userAssignedIdentities the CLI
// sends (az's).
const msiAPIVersion = "2023-01-31"

func newIdentityCmd(env Env) *cobra.Command {
	group := newGroup("identity", "Manage user-assigned managed identities (as az identity)")
	var sub, rg, name, location string
	scopeFlags := func(c *cobra.Command, withName bool) {
		c.Flags().StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
		c.Flags().StringVarP(&rg, "resource-group", "g", "", "resource group")
		if withName {
			c.Flags().StringVarP(&name, "name", "n", "", "identity name")
		}
		addOutputFlags(c)
	}
	path := func(c *apiClient, withName bool) (string, error) {
		s := firstNonEmpty(sub, c.Profile.SubscriptionID)
		if s == "" {
			return "", errors.New("--subscription is required (the profile has no default subscription)")
		}
		p := "/subscriptions/" + url.PathEscape(s)
		if rg == "" {
			if withName {
				return "", errors.New("--resource-group is required")
			}
			return p + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=" + msiAPIVersion, nil
		}
		p += "/resourceGroups/" + url.PathEscape(rg) + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
		if withName {
			if name == "" {
				return "", errors.New("--name is required")
			}
			p += "/" + url.PathEscape(name)
		}
		return p + "?api-version=" + msiAPIVersion, nil
	}
	run := func(method string, withName bool, body func() any) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			var b func() (any, error)
			if body != nil {
				b = func() (any, error) { return body(), nil }
			}
			raw, err := sendARM(cmd, env, method, func(c *apiClient) (string, error) { return path(c, withName) }, b)
			if err != nil || method == "DELETE" {
				return err
			}
			if !withName {
				var list struct {
					Value []map[string]any `json:"value"`
				}
				if err := json.Unmarshal(raw, &list); err != nil {
					return err
				}
				for _, v := range list.Value {
					flattenIdentity(v)
				}
				return printOutput(cmd, env.Stdout, list.Value)
			}
			var one map[string]any
			if err := json.Unmarshal(raw, &one); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, flattenIdentity(one))
		}
	}
	create := &cobra.Command{Use: "create", Short: "Create a user-assigned identity", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if location == "" && rg != "" {
				// az's default: the resource group's location.
				c, err := newAPIClient(cmd, env)
				if err != nil {
					return err
				}
				s := firstNonEmpty(sub, c.Profile.SubscriptionID)
				if s == "" {
					return errors.New("--subscription is required (the profile has no default subscription)")
				}
				var g struct {
					Location string `json:"location"`
				}
				if err := c.Do(cmd.Context(), "GET", "/subscriptions/"+url.PathEscape(s)+"/resourceGroups/"+url.PathEscape(rg)+
					"?api-version="+groupsAPIVersion, nil, &g); err != nil {
					return err
				}
				location = g.Location
			}
			return run("PUT", true, func() any { return map[string]any{"location": location} })(cmd, args)
		}}
	scopeFlags(create, true)
	create.Flags().StringVarP(&location, "location", "l", "", "location (default: the resource group's, as az)")
	list := &cobra.Command{Use: "list", Short: "List user-assigned identities", Args: cobra.NoArgs, RunE: run("GET", false, nil)}
	scopeFlags(list, false)
	show := &cobra.Command{Use: "show", Short: "Show a user-assigned identity", Args: cobra.NoArgs, RunE: run("GET", true, nil)}
	scopeFlags(show, true)
	del := &cobra.Command{Use: "delete", Short: "Delete a user-assigned identity", Args: cobra.NoArgs, RunE: run("DELETE", true, nil)}
	scopeFlags(del, true)
	group.AddCommand(create, list, show, del, newFederatedCredentialCmd(env))
	return group
}

// newFederatedCredentialCmd is `identity federated-credential`, as az's:
// workload identity federation on a user-assigned identity.
func newFederatedCredentialCmd(env Env) *cobra.Command {
	group := newGroup("federated-credential", "Manage the federated identity credentials of a user-assigned identity (as az identity federated-credential)")
	var sub, rg, identity, name, issuer, subject, jwksFile string
	var audiences []string
	flags := func(c *cobra.Command, withName bool) {
		c.Flags().StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
		c.Flags().StringVarP(&rg, "resource-group", "g", "", "resource group")
		c.Flags().StringVar(&identity, "identity-name", "", "the user-assigned identity")
		if withName {
			c.Flags().StringVarP(&name, "name", "n", "", "credential name")
		}
		addOutputFlags(c)
	}
	path := func(c *apiClient, withName bool) (string, error) {
		s := firstNonEmpty(sub, c.Profile.SubscriptionID)
		switch {
		case s == "":
			return "", errors.New("--subscription is required (the profile has no default subscription)")
		case rg == "" || identity == "":
			return "", errors.New("--resource-group and --identity-name are required")
		case withName && name == "":
			return "", errors.New("--name is required")
		}
		p := "/subscriptions/" + url.PathEscape(s) + "/resourceGroups/" + url.PathEscape(rg) +
			"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + url.PathEscape(identity) + "/federatedIdentityCredentials"
		if withName {
			p += "/" + url.PathEscape(name)
		}
		return p + "?api-version=" + msiAPIVersion, nil
	}
	run := func(method string, withName bool, body func() (any, error)) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			raw, err := sendARM(cmd, env, method, func(c *apiClient) (string, error) { return path(c, withName) }, body)
			if err != nil || method == "DELETE" {
				return err
			}
			var out any
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if l, ok := out.(map[string]any); ok && !withName {
				out = l["value"]
			}
			// As az prints them: issuer, subject and audiences at the top
			// too (--query subject).
			switch v := out.(type) {
			case map[string]any:
				liftProperties(v, "issuer", "subject", "audiences")
			case []any:
				for _, e := range v {
					if m, ok := e.(map[string]any); ok {
						liftProperties(m, "issuer", "subject", "audiences")
					}
				}
			}
			return printOutput(cmd, env.Stdout, out)
		}
	}
	create := &cobra.Command{Use: "create", Short: "Create or replace a federated identity credential", Args: cobra.NoArgs,
		RunE: run("PUT", true, func() (any, error) {
			props := map[string]any{"issuer": issuer, "subject": subject, "audiences": audiences}
			if jwksFile != "" {
				data, err := os.ReadFile(jwksFile)
				if err != nil {
					return nil, err
				}
				if !json.Valid(data) {
					return nil, fmt.Errorf("%s is not JSON", jwksFile)
				}
				props["jwks"] = json.RawMessage(data)
			}
			return map[string]any{"properties": props}, nil
		})}
	flags(create, true)
	create.Flags().StringVar(&issuer, "issuer", "", "the external issuer (https URL of its OpenID Connect discovery)")
	create.Flags().StringVar(&subject, "subject", "", "the subject its tokens carry (e.g. system:serviceaccount:NAMESPACE:NAME)")
	create.Flags().StringSliceVar(&audiences, "audiences", []string{"api://AzureADTokenExchange"}, "the audience its tokens carry")
	create.Flags().StringVar(&jwksFile, "jwks-file", "", "the issuer's JSON Web Key Set, for an issuer the server cannot reach (Gatehouse extension)")
	list := &cobra.Command{Use: "list", Short: "List the identity's federated identity credentials", Args: cobra.NoArgs, RunE: run("GET", false, nil)}
	flags(list, false)
	show := &cobra.Command{Use: "show", Short: "Show a federated identity credential", Args: cobra.NoArgs, RunE: run("GET", true, nil)}
	flags(show, true)
	del := &cobra.Command{Use: "delete", Short: "Delete a federated identity credential", Args: cobra.NoArgs, RunE: run("DELETE", true, nil)}
	flags(del, true)
	group.AddCommand(create, list, show, del)
	return group
}

// sendARM sends one management request for a command whose path depends
// on the profile (its default subscription) and returns the answer's body
// for the command to shape (armCall prints it as it is): the profile's
// client, the path (which may refuse missing flags), the body (nil: none).
func sendARM(cmd *cobra.Command, env Env, method string, path func(*apiClient) (string, error), body func() (any, error)) ([]byte, error) {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return nil, err
	}
	p, err := path(c)
	if err != nil {
		return nil, err
	}
	var b any
	if body != nil {
		if b, err = body(); err != nil {
			return nil, err
		}
	}
	var raw []byte
	err = c.Do(cmd.Context(), method, p, b, &raw)
	return raw, err
}

// flattenIdentity lifts clientId, principalId and tenantId to the top, as
// az identity show prints them.
func flattenIdentity(m map[string]any) map[string]any {
	liftProperties(m, "clientId", "principalId", "tenantId")
	return m
}

// liftProperties copies the named members of m's properties to m's top
// level (properties stays as it was).
func liftProperties(m map[string]any, names ...string) {
	if props, ok := m["properties"].(map[string]any); ok {
		for _, k := range names {
			if v, ok := props[k]; ok {
				m[k] = v
			}
		}
	}
}

// identityHeader is the server's answer to POST /gatehouse/v1/identityHeaders.
type identityHeader struct {
	ID          string `json:"id"`
	Header      string `json:"header"`
	Endpoint    string `json:"endpoint"`
	ClientID    string `json:"clientId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	ExpiresOn   int64  `json:"expiresOn"`
}

// childEnvDrop are variables `run` removes from the command's environment:
// they would make DefaultAzureCredential pick another credential (or send
// a client id that is not the identity's).
var childEnvDrop = []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_PASSWORD",
	"AZURE_TENANT_ID", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT",
	"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TOKEN_CREDENTIALS"}

func newRunCmd(env Env) *cobra.Command {
	var identity string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "run --identity NAME|CLIENT_ID -- COMMAND [ARGS...]",
		Short: "Run a command as a managed identity",
		Long: `Run a command as a managed identity: obtain an identity header for it from the
server and run the command with IDENTITY_ENDPOINT and IDENTITY_HEADER set (the
App Service managed-identity protocol) and MSI_ENDPOINT (the Cloud Shell
protocol, for az login --identity), plus AZURE_AUTHORITY_HOST and the
server's CA in SSL_CERT_FILE, NODE_EXTRA_CA_CERTS and REQUESTS_CA_BUNDLE, so
ManagedIdentityCredential and DefaultAzureCredential inside it get tokens for
that identity and can use them against the server. The header is revoked when the command
exits; --max-duration bounds it if the CLI is killed.

The managed-identity endpoint listens on the server's loopback interface
(--msi-listen): run this on the server's machine.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("no command to run: give it after --, e.g. gatehouse run --identity NAME -- python app.py")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if identity == "" {
				return errors.New("--identity is required")
			}
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			var h identityHeader
			body := map[string]any{"identity": identity, "lifetimeSeconds": int64(lifetime / time.Second)}
			if err := c.Do(cmd.Context(), "POST", "/gatehouse/v1/identityHeaders", body, &h); err != nil {
				return err
			}
			// Revoke on every way out, with a context of its own: the
			// command's may be cancelled by the signal that ends it.
			defer func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
				defer cancel()
				if err := c.Do(ctx, "DELETE", "/gatehouse/v1/identityHeaders/"+h.ID, nil, nil); err != nil && !isNotFound(err) {
					fmt.Fprintf(env.Stderr, "gatehouse: could not revoke the identity header (it expires at %s): %v\n",
						time.Unix(h.ExpiresOn, 0).Format(time.RFC3339), err)
				}
			}()
			child := exec.Command(args[0], args[1:]...)
			child.Stdin, child.Stdout, child.Stderr = cmd.InOrStdin(), env.Stdout, env.Stderr
			set := map[string]string{
				"IDENTITY_ENDPOINT":    h.Endpoint,
				"IDENTITY_HEADER":      h.Header,
				"AZURE_AUTHORITY_HOST": c.Profile.Server,
				// The Cloud Shell protocol for `az login --identity` (az
				// 2.45 knows only that one and IMDS); the SDKs prefer
				// IDENTITY_ENDPOINT. The header rides in the query, which
				// the server never logs.
				"MSI_ENDPOINT": msiEndpoint(h.Endpoint, h.Header),
			}
			// The CA for every runtime: Go and OpenSSL (SSL_CERT_FILE),
			// Node.js, which ignores SSL_CERT_FILE (NODE_EXTRA_CA_CERTS),
			// and Python requests, az (REQUESTS_CA_BUNDLE). Without the
			// Node one, a Node app's managed-identity token was useless:
			// its calls to Key Vault failed with SELF_SIGNED_CERT_IN_CHAIN.
			if c.Profile.CAFile != "" {
				for _, k := range []string{"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"} {
					set[k] = c.Profile.CAFile
				}
			}
			child.Env = childEnv(os.Environ(), set)
			if err := child.Start(); err != nil {
				return err
			}
			// Forward interrupts to the child; the CLI waits for it and
			// then revokes.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			done := make(chan error, 1)
			go func() { done <- child.Wait() }()
			cancelled := cmd.Context().Done()
			for {
				select {
				case s := <-sigs:
					child.Process.Signal(s)
				case <-cancelled:
					cancelled = nil
					child.Process.Signal(syscall.SIGTERM)
				case err := <-done:
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						code := ee.ExitCode()
						if code < 0 {
							code = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
						}
						return &exitError{code: code}
					}
					return err
				}
			}
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "the managed identity: name, client id, object id or resource id")
	cmd.Flags().DurationVar(&lifetime, "max-duration", 12*time.Hour, "the identity header's lifetime if it is never revoked")
	return cmd
}

// msiEndpoint is endpoint with the identity header in its query.
func msiEndpoint(endpoint, header string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("identity-header", header)
	u.RawQuery = q.Encode()
	return u.String()
}

// childEnv returns base without the variables of childEnvDrop, plus set
// (empty values are left out).
func childEnv(base []string, set map[string]string) []string {
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, d := range childEnvDrop {
			if k == d {
				drop = true
				break
			}
		}
		if _, ok := set[k]; ok {
			drop = true
		}
		if !drop {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}
