package cli

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// `gatehouse ad app owner …` and `gatehouse ad sp owner …`, as az's: the
// owners of an application (or of its service principal) read and manage
// it without a directory role — update it, add and remove its credentials,
// add and remove its owners, delete it.

// ownedKind is what an owner command works on: the Graph collection, and
// its name with and without an article for the help.
type ownedKind struct{ collection, noun, aNoun string }

var (
	ownedApp = ownedKind{"applications", "application", "an application"}
	ownedSP  = ownedKind{"servicePrincipals", "service principal", "a service principal"}
)

func newOwnerCmd(env Env, k ownedKind) *cobra.Command {
	g := newGroup("owner", "Manage the owners of "+k.aNoun+": people and service principals that manage it without a directory role")
	g.AddCommand(newOwnerListCmd(env, k), newOwnerAddCmd(env, k), newOwnerRemoveCmd(env, k))
	return g
}

// ownerPath is the owners collection of the object id names (an appId or
// an object id), with a Graph client.
func ownerPath(cmd *cobra.Command, env Env, k ownedKind, id string) (*apiClient, string, error) {
	if id == "" {
		return nil, "", errors.New("--id is required")
	}
	c, err := newGraphClient(cmd, env)
	if err != nil {
		return nil, "", err
	}
	return c, "/v1.0/" + k.collection + "/" + url.PathEscape(id) + "/owners", nil
}

// ownerNotFound words a 404 of an owner command: the object (or, with
// owner, the owner among its owners) does not exist.
func ownerNotFound(err error, k ownedKind, id, owner string) error {
	switch {
	case !isNotFound(err):
		return err
	case owner != "":
		return fmt.Errorf("%w (is %q %s's appId or object id, and %q one of its owners?)", err, id, k.aNoun, owner)
	}
	return fmt.Errorf("%w (is %q %s's appId or object id?)", err, id, k.aNoun)
}

func newOwnerListCmd(env Env, k ownedKind) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the owners of " + k.aNoun,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := ownerPath(cmd, env, k, id)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := c.Do(cmd.Context(), "GET", p, nil, &out); err != nil {
				return ownerNotFound(err, k, id, "")
			}
			return printOutput(cmd, env.Stdout, out.Value)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the "+k.noun+": appId or object id")
	addOutputFlags(cmd)
	return cmd
}

func newOwnerAddCmd(env Env, k ownedKind) *cobra.Command {
	return newOwnerChangeCmd(env, k, "add", "Make a person or service principal an owner of "+k.aNoun, "the new owner", false,
		func(cmd *cobra.Command, c *apiClient, p, oid string) error {
			// az sends Graph's own address; the server takes any host.
			ref := map[string]string{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + oid}
			return c.Do(cmd.Context(), "POST", p+"/$ref", ref, nil)
		})
}

func newOwnerRemoveCmd(env Env, k ownedKind) *cobra.Command {
	return newOwnerChangeCmd(env, k, "remove", "Remove an owner of "+k.aNoun, "the owner to remove", true,
		func(cmd *cobra.Command, c *apiClient, p, oid string) error {
			return c.Do(cmd.Context(), "DELETE", p+"/"+url.PathEscape(oid)+"/$ref", nil, nil)
		})
}

// newOwnerChangeCmd is add or remove: the object's owners collection and
// the owner's object id, then change. owned: a 404 may mean the owner is
// not one (remove).
func newOwnerChangeCmd(env Env, k ownedKind, use, short, ownerHelp string, owned bool,
	change func(cmd *cobra.Command, c *apiClient, p, oid string) error) *cobra.Command {
	var id, owner string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if owner == "" {
				return errors.New("--owner-object-id is required")
			}
			c, p, err := ownerPath(cmd, env, k, id)
			if err != nil {
				return err
			}
			oid, err := principalID(cmd, c, owner)
			if err != nil {
				return err
			}
			hint := ""
			if owned {
				hint = owner
			}
			return ownerNotFound(change(cmd, c, p, oid), k, id, hint)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the "+k.noun+": appId or object id")
	cmd.Flags().StringVar(&owner, "owner-object-id", "", ownerHelp+": an object id, a service principal's appId or a person's user name")
	return cmd
}
