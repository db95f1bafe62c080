package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// `gatehouse tag …`, in az tag's shape: with --resource-id, the tags of a
// resource group or a resource (its Tags resource); with --name, the
// subscription's predefined tag names and values.
//
//	tag list [--resource-id ID]                 the subscription's tag names and values (or a scope's tags)
//	tag create --name N | --resource-id ID --tags k=v…
//	tag update --resource-id ID --operation merge|replace|delete --tags k=v…
//	tag delete --name N | --resource-id ID [--yes]
//	tag add-value | remove-value --name N --value V

const tagsAPIVersion = "2021-04-01"

func newTagCmd(env Env) *cobra.Command {
	g := newGroup("tag", "Tag resources, and predefine the subscription's tag names and values (as az tag)")
	var sub, resourceID, name, value, operation string
	var tags []string
	var yes bool

	// tagNames is the path of the subscription's tag names, or of name's
	// value (rel "" or "/tagValues/{value}").
	tagNames := func(c *apiClient, rel string) (string, error) {
		s := firstNonEmpty(sub, c.Profile.SubscriptionID)
		if s == "" {
			return "", errors.New("--subscription is required (the profile has no default subscription)")
		}
		p := "/subscriptions/" + url.PathEscape(s) + "/tagNames"
		if name != "" {
			p += "/" + url.PathEscape(name) + rel
		}
		return p + "?api-version=" + tagsAPIVersion, nil
	}
	tagsResource := func() (string, error) {
		if !strings.HasPrefix(strings.ToLower(resourceID), "/subscriptions/") {
			return "", errors.New("--resource-id is an ARM id: /subscriptions/{id}/resourceGroups/{group}[/providers/…]")
		}
		return strings.TrimSuffix(resourceID, "/") + "/providers/Microsoft.Resources/tags/default?api-version=" + tagsAPIVersion, nil
	}
	// nameOrResource checks that exactly one of --name and --resource-id
	// was given.
	nameOrResource := func() error {
		if (name == "") == (resourceID == "") {
			return errors.New("give --name (a predefined tag name) or --resource-id (a resource's tags)")
		}
		return nil
	}
	// send sends method to --resource-id's Tags resource, or else to the
	// subscription's tag names (rel under tagNames/{name}), with one API
	// client, and prints the answer when print is set (the list of names,
	// for a GET of them all).
	send := func(cmd *cobra.Command, method, rel string, body any, print bool) error {
		c, err := newAPIClient(cmd, env)
		if err != nil {
			return err
		}
		var p string
		if resourceID != "" {
			p, err = tagsResource()
		} else {
			p, err = tagNames(c, rel)
		}
		if err != nil {
			return err
		}
		if method == "GET" && resourceID == "" && name == "" {
			return listCall(cmd, env, c, p)
		}
		var out any
		if err := c.Do(cmd.Context(), method, p, body, &out); err != nil || !print {
			return err
		}
		return printOutput(cmd, env.Stdout, out)
	}
	subFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
		addOutputFlags(c)
	}

	list := &cobra.Command{Use: "list", Short: "List the subscription's tag names and values, or a resource's tags", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd, "GET", "", nil, true)
		}}
	subFlag(list)
	list.Flags().StringVar(&resourceID, "resource-id", "", "a resource group's or resource's id: its tags")

	create := &cobra.Command{Use: "create", Short: "Predefine a tag name (--name), or set a resource's tags (--resource-id --tags)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nameOrResource(); err != nil {
				return err
			}
			var body any
			if resourceID != "" {
				// Without --tags the PUT would replace every tag with none.
				if !cmd.Flags().Changed("tags") {
					return errors.New("--tags is required with --resource-id (they replace the current ones; gatehouse tag delete --resource-id removes them all)")
				}
				body = map[string]any{"properties": map[string]any{"tags": parseTags(tags)}}
			}
			return send(cmd, "PUT", "", body, true)
		}}
	subFlag(create)
	create.Flags().StringVarP(&name, "name", "n", "", "the tag name to predefine")
	create.Flags().StringVar(&resourceID, "resource-id", "", "a resource group's or resource's id")
	addTagsFlag(create, &tags, "with --resource-id: the tags, replacing the current ones")

	update := &cobra.Command{Use: "update", Short: "Merge, replace or delete some of a resource's tags", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if resourceID == "" {
				return errors.New("--resource-id is required")
			}
			op := strings.ToLower(operation)
			if op != "merge" && op != "replace" && op != "delete" {
				return errors.New("--operation is merge, replace or delete")
			}
			body := map[string]any{"operation": strings.ToUpper(op[:1]) + op[1:], "properties": map[string]any{"tags": parseTags(tags)}}
			return send(cmd, "PATCH", "", body, true)
		}}
	update.Flags().StringVar(&resourceID, "resource-id", "", "a resource group's or resource's id")
	update.Flags().StringVar(&operation, "operation", "", "merge (add or overwrite), replace (all of them) or delete (these names; with =value, only that value)")
	addTagsFlag(update, &tags, "tags (with --operation delete, names alone too)")
	addOutputFlags(update)

	del := &cobra.Command{Use: "delete", Short: "Delete a predefined tag name (--name), or all of a resource's tags (--resource-id)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nameOrResource(); err != nil {
				return err
			}
			what := fmt.Sprintf("the predefined tag name %q", name)
			if resourceID != "" {
				what = "every tag of " + resourceID
			}
			if !yes && !confirmed(cmd, env, "Are you sure you want to delete "+what+"?") {
				return errors.New("not deleted (confirm, or pass --yes)")
			}
			return send(cmd, "DELETE", "", nil, false)
		}}
	subFlag(del)
	del.Flags().StringVarP(&name, "name", "n", "", "the predefined tag name (it must have no values left and be on nothing)")
	del.Flags().StringVar(&resourceID, "resource-id", "", "a resource group's or resource's id")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")

	valueCmd := func(use, short, method string) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				if name == "" || value == "" {
					return errors.New("--name and --value are required")
				}
				return send(cmd, method, "/tagValues/"+url.PathEscape(value), nil, method == "PUT")
			}}
		subFlag(c)
		c.Flags().StringVarP(&name, "name", "n", "", "the predefined tag name")
		c.Flags().StringVar(&value, "value", "", "the value")
		return c
	}
	g.AddCommand(list, create, update, del,
		valueCmd("add-value", "Predefine a value of a predefined tag name", "PUT"),
		valueCmd("remove-value", "Remove a predefined value (it must be on nothing)", "DELETE"))
	return g
}
