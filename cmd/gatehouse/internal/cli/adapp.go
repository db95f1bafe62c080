package cli

import (
	"errors"
	"net/url"

	"github.com/spf13/cobra"
)

// `gatehouse ad app show|update`: the application object itself, as az's
// `az ad app show|update` — its Application ID URIs (identifierUris), the
// names other apps and people ask tokens for ({uri}/.default) when it is a
// web API, and its redirect URIs, where people's sign-ins send codes.

func newAppCmd(env Env) *cobra.Command {
	app := newGroup("app", "Manage applications: the names of the API an application exposes")
	app.AddCommand(newAppShowCmd(env), newAppUpdateCmd(env))
	return app
}

func newAppShowCmd(env Env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an application (its appId, identifier URIs and credentials' metadata)",
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
			var out map[string]any
			if err := c.Do(cmd.Context(), "GET", "/v1.0/applications/"+url.PathEscape(app.ID), nil, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	addOutputFlags(cmd)
	return cmd
}

func newAppUpdateCmd(env Env) *cobra.Command {
	var id string
	var uris, web, public []string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change an application: its Application ID URIs and redirect URIs",
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
value (--web-redirect-uris=) clears a list.`,
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
			if len(body) == 0 {
				return errors.New("nothing to change: give --identifier-uris, --web-redirect-uris or --public-client-redirect-uris")
			}
			if err := c.Do(cmd.Context(), "PATCH", "/v1.0/applications/"+url.PathEscape(app.ID), body, nil); err != nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "appId or object id")
	cmd.Flags().StringSliceVar(&uris, "identifier-uris", nil, "the application's Application ID URIs (repeat the flag or separate with commas; --identifier-uris= clears them)")
	cmd.Flags().StringSliceVar(&web, "web-redirect-uris", nil, "a web app's redirect URIs (https)")
	cmd.Flags().StringSliceVar(&public, "public-client-redirect-uris", nil, "a native app's redirect URIs")
	return cmd
}
