package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/spf13/cobra"
)

// `gatehouse ad app show|update`: the application object itself, as az's
// `az ad app show|update` — its Application ID URIs (identifierUris), the
// names other apps and people ask tokens for ({uri}/.default) when it is a
// web API, and its redirect URIs, where people's sign-ins send codes.

func newAppCmd(env Env) *cobra.Command {
	app := newGroup("app", "Manage applications: the names of the API an application exposes")
	role := newGroup("role", "Grant an application's app roles to service principals, managed identities and people")
	role.AddCommand(newAppRoleAssignCmd(env), newAppRoleListCmd(env), newAppRoleRemoveCmd(env))
	app.AddCommand(newAppShowCmd(env), newAppUpdateCmd(env), role, newOwnerCmd(env, ownedApp))
	return app
}

func newAppShowCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an application (its appId, identifier URIs and credentials' metadata)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, app, err := openApp(cmd, env, id)
			if err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, app)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	addOutputFlags(cmd)
	return cmd
}

func newAppUpdateCmd(env Env) *cobra.Command {
	var id, rolesFile, scopesFile, groupClaims string
	var uris, web, public []string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change an application: its Application ID URIs, redirect URIs, app roles and delegated scopes",
		Long: `Change an application. --identifier-uris replaces the URIs that name the
application's API (api://… or https://…, unique in the tenant); tokens for
{uri}/.default then carry that audience, and the application can trade a
person's token for one (the on-behalf-of grant). api://{appId} always
names it, with or without identifier URIs.

--web-redirect-uris replaces where the authorization endpoint may send a
web app's codes (https, or http://localhost; the code is then redeemed
only with the app's own credential); --public-client-redirect-uris a
native app's (its own scheme, such as myapp://auth; redeemed with PKCE).
Loopback addresses work for every app without being registered. An empty
value (--web-redirect-uris=) clears a list.

--app-roles replaces the roles the API grants to applications and people
(the roles claim); --scopes replaces the delegated permissions it exposes
(api.oauth2PermissionScopes: value, adminConsentDisplayName, type User or
Admin, isEnabled), which a person's token names in scp — {uri}/Files.Read
for one, {uri}/.default for every enabled one. An API without scopes
offers user_impersonation. Both files are JSON arrays as Graph shows
them; an entry without an id gets a new one, and an enabled entry is
disabled (isEnabled false) before it can be removed.

--group-membership-claims asks that tokens for the application's API and
the ID tokens it receives name the principal's groups: SecurityGroup (the
groups claim: security group object ids), DirectoryRole (wids: directory
role template ids), All (both) or None. Above 200 groups a token carries
Entra's overage claims instead, pointing at Graph's getMemberObjects.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, app, err := openApp(cmd, env, id)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("identifier-uris") {
				body["identifierUris"] = append([]string{}, uris...)
			}
			if cmd.Flags().Changed("web-redirect-uris") {
				body["web"] = map[string]any{"redirectUris": append([]string{}, web...)}
			}
			if cmd.Flags().Changed("public-client-redirect-uris") {
				body["publicClient"] = map[string]any{"redirectUris": append([]string{}, public...)}
			}
			if rolesFile != "" {
				existing, _ := app["appRoles"].([]any)
				roles, err := readGraphArray(rolesFile, "--app-roles", "app roles", existing)
				if err != nil {
					return err
				}
				body["appRoles"] = roles
			}
			if scopesFile != "" {
				api, _ := app["api"].(map[string]any)
				existing, _ := api["oauth2PermissionScopes"].([]any)
				scopes, err := readGraphArray(scopesFile, "--scopes", "delegated permission scopes", existing)
				if err != nil {
					return err
				}
				body["api"] = map[string]any{"oauth2PermissionScopes": scopes}
			}
			if cmd.Flags().Changed("group-membership-claims") {
				body["groupMembershipClaims"] = groupClaims
			}
			if len(body) == 0 {
				return errors.New("nothing to change: give --identifier-uris, --web-redirect-uris, --public-client-redirect-uris, --app-roles, --scopes or --group-membership-claims")
			}
			if err := c.Do(cmd.Context(), "PATCH", "/v1.0/applications/"+url.PathEscape(app["id"].(string)), body, nil); err != nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	cmd.Flags().StringSliceVar(&uris, "identifier-uris", nil, "the application's Application ID URIs (repeat the flag or separate with commas; --identifier-uris= clears them)")
	cmd.Flags().StringSliceVar(&web, "web-redirect-uris", nil, "a web app's redirect URIs (https)")
	cmd.Flags().StringSliceVar(&public, "public-client-redirect-uris", nil, "a native app's redirect URIs")
	cmd.Flags().StringVar(&rolesFile, "app-roles", "", "@file: a JSON array of app roles (value, displayName, allowedMemberTypes, isEnabled; id made if missing) replacing the application's")
	cmd.Flags().StringVar(&groupClaims, "group-membership-claims", "", "the group claims of its tokens: None, SecurityGroup, ApplicationGroup, DirectoryRole or All")
	cmd.Flags().StringVar(&scopesFile, "scopes", "", "@file: a JSON array of delegated permission scopes (value, adminConsentDisplayName, type, isEnabled; id made if missing) replacing the application's")
	return cmd
}

// readGraphArray reads a JSON array of Graph objects from @file (or the
// file named without @) and gives each entry without an id the id of the
// existing entry with its value, else a new one (as az does for app
// roles): the same file applied again changes nothing, and one with an
// entry more adds that entry — with new ids, the server would take the
// existing entries as removed while enabled, and refuse.
func readGraphArray(file, flag, what string, existing []any) ([]map[string]any, error) {
	raw, err := os.ReadFile(strings.TrimPrefix(file, "@"))
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: %s is not a JSON array of %s: %v", flag, file, what, err)
	}
	for _, r := range out {
		if r == nil {
			return nil, fmt.Errorf("%s: %s holds a null entry", flag, file)
		}
		if r["id"] == nil || r["id"] == "" {
			r["id"] = gatehouse.NewGUID()
			value, _ := r["value"].(string)
			for _, e := range existing {
				m, _ := e.(map[string]any)
				if v, _ := m["value"].(string); value != "" && strings.EqualFold(v, value) && m["id"] != nil {
					r["id"] = m["id"]
				}
			}
		}
	}
	return out, nil
}

// appRoleID finds the id of the app role whose value (or id) is role.
func appRoleID(app map[string]any, role string) (string, error) {
	roles, _ := app["appRoles"].([]any)
	for _, r := range roles {
		m, _ := r.(map[string]any)
		if id, _ := m["id"].(string); strings.EqualFold(id, role) || strings.EqualFold(fmt.Sprint(m["value"]), role) {
			return id, nil
		}
	}
	return "", fmt.Errorf("the application defines no app role %q", role)
}

// openApp is a Graph client and the application whose id (appId or
// object id) is id, as Graph shows it (one request).
func openApp(cmd *cobra.Command, env Env, id string) (*apiClient, map[string]any, error) {
	if id == "" {
		return nil, nil, errors.New("--id is required")
	}
	c, err := newGraphClient(cmd, env)
	if err != nil {
		return nil, nil, err
	}
	var app map[string]any
	if err := c.Do(cmd.Context(), "GET", "/v1.0/applications/"+url.PathEscape(id), nil, &app); err != nil {
		if isNotFound(err) {
			return nil, nil, fmt.Errorf("no service principal or application has the id %q", id)
		}
		return nil, nil, err
	}
	if _, ok := app["id"].(string); !ok {
		return nil, nil, fmt.Errorf("the server's answer for application %q has no id", id)
	}
	return c, app, nil
}

// resourceSP is a Graph client, the service principal object id of the
// application id, and the application as Graph shows it (its appRoles).
func resourceSP(cmd *cobra.Command, env Env, id string) (*apiClient, string, map[string]any, error) {
	c, app, err := openApp(cmd, env, id)
	if err != nil {
		return nil, "", nil, err
	}
	appID, _ := app["appId"].(string)
	var sp struct {
		ID string `json:"id"`
	}
	if err := c.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+url.PathEscape(appID), nil, &sp); err != nil {
		if isNotFound(err) {
			return nil, "", nil, fmt.Errorf("the application %q has no service principal", id)
		}
		return nil, "", nil, err
	}
	return c, sp.ID, app, nil
}

func newAppRoleAssignCmd(env Env) *cobra.Command {
	var id, assignee, role string
	cmd := &cobra.Command{
		Use:   "assign",
		Short: "Grant an app role of the application (--id) to a principal (--assignee: object id, appId or user name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if assignee == "" || role == "" {
				return errors.New("--assignee and --role are required")
			}
			c, spID, app, err := resourceSP(cmd, env, id)
			if err != nil {
				return err
			}
			roleID, err := appRoleID(app, role)
			if err != nil {
				return err
			}
			principal, err := principalID(cmd, c, assignee)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Do(cmd.Context(), "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo",
				map[string]any{"principalId": principal, "resourceId": spID, "appRoleId": roleID}, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the application (API) whose role is granted: appId or object id")
	cmd.Flags().StringVar(&assignee, "assignee", "", "who gets it: a service principal's or managed identity's object id or appId, a person's user name or object id, or a group's object id (its members hold the role)")
	cmd.Flags().StringVar(&role, "role", "", "the app role's value (or id)")
	addOutputFlags(cmd)
	return cmd
}

// principalID resolves an assignee to an object id through Graph.
func principalID(cmd *cobra.Command, c *apiClient, assignee string) (string, error) {
	var obj struct {
		ID string `json:"id"`
	}
	err := c.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+url.PathEscape(assignee), nil, &obj)
	if isNotFound(err) {
		err = c.Do(cmd.Context(), "GET", "/v1.0/users/"+url.PathEscape(assignee), nil, &obj)
	}
	if isNotFound(err) {
		err = c.Do(cmd.Context(), "GET", "/v1.0/groups/"+url.PathEscape(assignee), nil, &obj)
	}
	if isNotFound(err) {
		return "", fmt.Errorf("no service principal, managed identity, person or group is %q", assignee)
	}
	return obj.ID, err
}

func newAppRoleListCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List who holds the application's app roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, spID, _, err := resourceSP(cmd, env, id)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := c.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo", nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out.Value)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the application: appId or object id")
	addOutputFlags(cmd)
	return cmd
}

func newAppRoleRemoveCmd(env Env) *cobra.Command {
	var id, assignment string
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove one grant of the application's app roles (--assignment-id, from role list)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if assignment == "" {
				return errors.New("--assignment-id is required")
			}
			c, spID, _, err := resourceSP(cmd, env, id)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignedTo/"+url.PathEscape(assignment), nil, nil)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the application: appId or object id")
	cmd.Flags().StringVar(&assignment, "assignment-id", "", "the grant's id")
	return cmd
}
