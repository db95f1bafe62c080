package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/spf13/cobra"
)

// The `group` and `role` groups manage resource groups and role-based
// access, in az's shape (az group …, az role assignment …, az role
// definition …).

func newGroupCmd(env Env) *cobra.Command {
	g := newGroup("group", "Manage resource groups")
	var sub, name, location string
	var tags []string
	var yes bool
	path := func(c *apiClient, withName bool) (string, error) {
		s := firstNonEmpty(sub, c.Profile.SubscriptionID)
		if s == "" {
			return "", errors.New("--subscription is required (the profile has no default subscription)")
		}
		p := "/subscriptions/" + url.PathEscape(s) + "/resourceGroups"
		if withName {
			if name == "" {
				return "", errors.New("--name is required")
			}
			p += "/" + url.PathEscape(name)
		}
		return p + "?api-version=" + groupsAPIVersion, nil
	}
	flags := func(c *cobra.Command, withName bool) {
		c.Flags().StringVar(&sub, "subscription", "", "subscription id (default: the profile's)")
		if withName {
			c.Flags().StringVarP(&name, "name", "n", "", "resource group name")
		}
		addOutputFlags(c)
	}
	create := &cobra.Command{Use: "create", Short: "Create a resource group (or update its tags)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := path(c, true)
			if err != nil {
				return err
			}
			var out any
			if err := c.Do(cmd.Context(), "PUT", p, map[string]any{"location": location, "tags": parseTags(tags)}, &out); err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	flags(create, true)
	create.Flags().StringVarP(&location, "location", "l", "", "location (required)")
	addTagsFlag(create, &tags, "tags")
	create.MarkFlagRequired("location")
	list := &cobra.Command{Use: "list", Short: "List resource groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := path(c, false)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		}}
	flags(list, false)
	del := &cobra.Command{Use: "delete", Short: "Delete a resource group and everything in it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := path(c, true)
			if err != nil {
				return err
			}
			if !yes && !confirmed(cmd, env, fmt.Sprintf("Are you sure you want to delete resource group %q and everything in it (accounts, keys, identities, role assignments)?", name)) {
				return errors.New("not deleted (confirm, or pass --yes)")
			}
			return c.Do(cmd.Context(), "DELETE", p, nil, nil)
		}}
	flags(del, true)
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	g.AddCommand(create, list, del)
	return g
}

func newRoleCmd(env Env) *cobra.Command {
	role := newGroup("role", "Manage role-based access: role assignments and role definitions")
	assignment := newGroup("assignment", "Grant, list and remove roles of principals at scopes")
	assignment.AddCommand(newAssignmentCreateCmd(env), newAssignmentListCmd(env), newAssignmentDeleteCmd(env))
	definition := newGroup("definition", "List role definitions (Azure's built-in roles and custom roles)")
	definition.AddCommand(newDefinitionListCmd(env))
	role.AddCommand(assignment, definition, newElevateAccessCmd(env))
	return role
}

// newElevateAccessCmd is POST /providers/Microsoft.Authorization/elevateAccess
// (az has no verb for it: Azure's docs use az rest).
func newElevateAccessCmd(env Env) *cobra.Command {
	return &cobra.Command{Use: "elevate-access",
		Short: "As a directory Global Administrator, take User Access Administrator at the root scope \"/\"",
		Long: "Gives the signed-in principal, which must hold the Global Administrator directory role, User Access\n" +
			"Administrator at the root scope \"/\": the way back into subscriptions whose owners are gone. Grant\n" +
			"what is needed, then remove the root assignment:\n" +
			"  gatehouse role assignment list --scope / --assignee <your object id>\n" +
			"  gatehouse role assignment delete --ids /providers/Microsoft.Authorization/roleAssignments/<name>",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "POST", "/providers/Microsoft.Authorization/elevateAccess?api-version=2016-07-01", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, `User Access Administrator at "/" granted; remove it when done (gatehouse role assignment list --scope /).`)
			return nil
		}}
}

// scopeFlags resolve az's --scope, or -g (a group) within --subscription.
type scopeFlags struct {
	sub, group, scope string
}

func (f *scopeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	c.Flags().StringVarP(&f.group, "resource-group", "g", "", "resource group (scope: the group)")
	c.Flags().StringVar(&f.scope, "scope", "", "scope: a subscription, group or resource id (default: the subscription, or -g)")
	addOutputFlags(c)
}

func (f *scopeFlags) resolve(c *apiClient) (string, error) {
	if f.scope != "" {
		if !strings.HasPrefix(f.scope, "/") {
			return "", fmt.Errorf("--scope %q must start with /", f.scope)
		}
		return strings.TrimSuffix(f.scope, "/"), nil
	}
	s := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
	if s == "" {
		return "", errors.New("--scope or --subscription is required (the profile has no default subscription)")
	}
	scope := "/subscriptions/" + s
	if f.group != "" {
		scope += "/resourceGroups/" + f.group
	}
	return scope, nil
}

var reGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// roleDefinitions lists the role definitions visible at scope (optionally
// one name), flattened as az prints them.
func roleDefinitions(cmd *cobra.Command, c *apiClient, scope, name string) ([]map[string]any, error) {
	q := url.Values{"api-version": {authzAPIVersion}}
	if name != "" {
		q.Set("$filter", "roleName eq '"+strings.ReplaceAll(name, "'", "''")+"'")
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := c.Do(cmd.Context(), "GET", escapeScope(scope)+"/providers/Microsoft.Authorization/roleDefinitions?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	for _, d := range out.Value {
		flattenProperties(d)
		// az shows the role type as roleType and the resource type as type.
		if t, ok := d["properties.type"]; ok {
			d["roleType"] = t
			delete(d, "properties.type")
		}
	}
	return out.Value, nil
}

// flattenProperties lifts properties.* to the top, as az prints track-2
// models; a property named like a top-level field is kept as properties.X.
func flattenProperties(m map[string]any) map[string]any {
	props, ok := m["properties"].(map[string]any)
	if !ok {
		return m
	}
	delete(m, "properties")
	for k, v := range props {
		if _, clash := m[k]; clash {
			m["properties."+k] = v
			continue
		}
		m[k] = v
	}
	return m
}

// escapeScope escapes each segment of a scope path.
func escapeScope(scope string) string {
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	if len(parts) == 1 && parts[0] == "" {
		return ""
	}
	return "/" + strings.Join(parts, "/")
}

// roleID resolves --role (a GUID, a role definition id or a role name).
func roleID(cmd *cobra.Command, c *apiClient, scope, role string) (string, error) {
	if reGUID.MatchString(role) {
		return role, nil
	}
	if strings.Contains(role, "/roleDefinitions/") {
		return role[strings.LastIndex(role, "/")+1:], nil
	}
	defs, err := roleDefinitions(cmd, c, scope, role)
	if err != nil {
		return "", err
	}
	if len(defs) != 1 {
		return "", fmt.Errorf("role %q does not exist", role)
	}
	id, _ := defs[0]["name"].(string)
	return id, nil
}

func newAssignmentCreateCmd(env Env) *cobra.Command {
	var f scopeFlags
	var assignee, objectID, ptype, role, description string
	cmd := &cobra.Command{Use: "create", Short: "Grant a role to a principal at a scope", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			scope, err := f.resolve(c)
			if err != nil {
				return err
			}
			switch {
			case assignee != "" && objectID != "":
				return errors.New("give --assignee or --assignee-object-id, not both")
			case assignee != "":
				if objectID, err = resolveAssignee(cmd, env, assignee); err != nil {
					return err
				}
			case objectID == "":
				return errors.New("--assignee or --assignee-object-id is required")
			}
			rid, err := roleID(cmd, c, scope, role)
			if err != nil {
				return err
			}
			sub := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
			if s := strings.Split(strings.Trim(scope, "/"), "/"); len(s) >= 2 && strings.EqualFold(s[0], "subscriptions") {
				sub = s[1]
			}
			props := map[string]any{
				"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + rid,
				"principalId":      objectID,
			}
			if ptype != "" {
				props["principalType"] = ptype
			}
			if description != "" {
				props["description"] = description
			}
			var out map[string]any
			p := escapeScope(scope) + "/providers/Microsoft.Authorization/roleAssignments/" + gatehouse.NewGUID() + "?api-version=" + authzAPIVersion
			if err := c.Do(cmd.Context(), "PUT", p, map[string]any{"properties": props}, &out); err != nil {
				return appIDHint(cmd, env, objectID, err)
			}
			return printOutput(cmd, env.Stdout, flattenProperties(out))
		}}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&assignee, "assignee", "", "who gets the role: a person's user name, a service principal's or managed identity's appId, or an object id (looked up in the directory)")
	fl.StringVar(&objectID, "assignee-object-id", "", "object id of the principal (not looked up: for principals the directory does not show you)")
	fl.StringVar(&ptype, "assignee-principal-type", "", "ServicePrincipal, User, Group, ForeignGroup or Device")
	fl.StringVar(&role, "role", "", "role name or id (required)")
	fl.StringVar(&description, "description", "", "description of the assignment")
	cmd.MarkFlagRequired("role")
	return cmd
}

// resolveAssignee turns --assignee into an object id, as az does: a
// person's user name, a service principal's appId or an object id, looked
// up in the directory. A GUID the directory does not show the caller is
// taken as an object id as it is.
func resolveAssignee(cmd *cobra.Command, env Env, assignee string) (string, error) {
	g, err := newGraphClient(cmd, env)
	if err != nil {
		return "", err
	}
	id, err := principalID(cmd, g, assignee) // adapp.go
	if err != nil && gatehouse.IsGUID(assignee) {
		return assignee, nil
	}
	return id, err
}

// appIDHint adds to a PrincipalNotFound for objectID, when it is a service
// principal's appId, the object id meant.
func appIDHint(cmd *cobra.Command, env Env, objectID string, err error) error {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "PrincipalNotFound" {
		return err
	}
	g, gerr := newGraphClient(cmd, env)
	if gerr != nil {
		return err
	}
	var sp struct {
		ID    string `json:"id"`
		AppID string `json:"appId"`
	}
	if g.Do(cmd.Context(), "GET", "/v1.0/servicePrincipals/"+url.PathEscape(objectID), nil, &sp) != nil || !strings.EqualFold(sp.AppID, objectID) {
		return err
	}
	return fmt.Errorf("%w\n%s is an application (client) id: its service principal's object id is %s (or give --assignee %s)", err, objectID, sp.ID, objectID)
}

// listAssignments lists assignments at scope (all beneath it too when all)
// for assignee, flattened, with roleDefinitionName added.
func listAssignments(cmd *cobra.Command, c *apiClient, scope, assignee string, all bool) ([]map[string]any, error) {
	var terms []string
	if !all {
		terms = append(terms, "atScope()")
	}
	if assignee != "" {
		terms = append(terms, "principalId eq '"+assignee+"'")
	}
	q := url.Values{"api-version": {authzAPIVersion}}
	if len(terms) > 0 {
		q.Set("$filter", strings.Join(terms, " and "))
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := c.Do(cmd.Context(), "GET", escapeScope(scope)+"/providers/Microsoft.Authorization/roleAssignments?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	names := map[string]string{}
	if defs, err := roleDefinitions(cmd, c, scope, ""); err == nil {
		for _, d := range defs {
			id, _ := d["name"].(string)
			names[strings.ToLower(id)], _ = d["roleName"].(string)
		}
	}
	for _, a := range out.Value {
		flattenProperties(a)
		if rd, ok := a["roleDefinitionId"].(string); ok {
			a["roleDefinitionName"] = names[strings.ToLower(rd[strings.LastIndex(rd, "/")+1:])]
		}
	}
	if out.Value == nil {
		out.Value = []map[string]any{}
	}
	return out.Value, nil
}

func newAssignmentListCmd(env Env) *cobra.Command {
	var f scopeFlags
	var assignee string
	var all bool
	cmd := &cobra.Command{Use: "list", Short: "List role assignments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			scope, err := f.resolve(c)
			if err != nil {
				return err
			}
			if assignee != "" {
				if assignee, err = resolveAssignee(cmd, env, assignee); err != nil {
					return err
				}
			}
			list, err := listAssignments(cmd, c, scope, assignee, all)
			if err != nil {
				return err
			}
			return printOutput(cmd, env.Stdout, list)
		}}
	f.add(cmd)
	cmd.Flags().StringVar(&assignee, "assignee", "", "a person's user name, a service principal's appId, or an object id")
	cmd.Flags().BoolVar(&all, "all", false, "also list assignments beneath the scope")
	return cmd
}

func newAssignmentDeleteCmd(env Env) *cobra.Command {
	var f scopeFlags
	var ids []string
	var assignee, role string
	cmd := &cobra.Command{Use: "delete", Short: "Remove role assignments (by --ids, or by --assignee/--role at a scope)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			for _, id := range ids {
				// The DELETE goes wherever the id points: it must be a
				// role assignment's (a role definition's id would delete
				// the role).
				if !isAssignmentID(id) {
					return fmt.Errorf("--ids: %q is not a role assignment id (…/providers/Microsoft.Authorization/roleAssignments/<guid>)", id)
				}
			}
			if len(ids) == 0 {
				if assignee == "" && role == "" {
					return errors.New("give --ids, or --assignee and/or --role")
				}
				scope, err := f.resolve(c)
				if err != nil {
					return err
				}
				if assignee != "" {
					if assignee, err = resolveAssignee(cmd, env, assignee); err != nil {
						return err
					}
				}
				rid := ""
				if role != "" {
					if rid, err = roleID(cmd, c, scope, role); err != nil {
						return err
					}
				}
				list, err := listAssignments(cmd, c, scope, assignee, false)
				if err != nil {
					return err
				}
				for _, a := range list {
					rd, _ := a["roleDefinitionId"].(string)
					sc, _ := a["scope"].(string)
					if (rid == "" || strings.HasSuffix(strings.ToLower(rd), strings.ToLower(rid))) && strings.EqualFold(sc, scope) {
						id, _ := a["id"].(string)
						ids = append(ids, id)
					}
				}
				if len(ids) == 0 {
					return errors.New("no matching role assignment at that scope")
				}
			}
			for _, id := range ids {
				if err := c.Do(cmd.Context(), "DELETE", escapeScope(id)+"?api-version="+authzAPIVersion, nil, nil); err != nil {
					return err
				}
			}
			return nil
		}}
	f.add(cmd)
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "role assignment ids")
	cmd.Flags().StringVar(&assignee, "assignee", "", "a person's user name, a service principal's appId, or an object id")
	cmd.Flags().StringVar(&role, "role", "", "role name or id")
	return cmd
}

func newDefinitionListCmd(env Env) *cobra.Command {
	var f scopeFlags
	var name string
	var customOnly bool
	cmd := &cobra.Command{Use: "list", Short: "List role definitions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			scope, err := f.resolve(c)
			if err != nil {
				return err
			}
			defs, err := roleDefinitions(cmd, c, scope, name)
			if err != nil {
				return err
			}
			out := []map[string]any{}
			for _, d := range defs {
				if !customOnly || d["roleType"] == "CustomRole" {
					out = append(out, d)
				}
			}
			return printOutput(cmd, env.Stdout, out)
		}}
	f.add(cmd)
	cmd.Flags().StringVarP(&name, "name", "n", "", "role name")
	cmd.Flags().BoolVar(&customOnly, "custom-role-only", false, "list custom roles only")
	return cmd
}

// confirmed asks question on stderr and reports whether the answer on
// stdin is yes.
func confirmed(cmd *cobra.Command, env Env, question string) bool {
	fmt.Fprint(env.Stderr, question+" [y/N] ")
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	fmt.Fprintln(env.Stderr)
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// isAssignmentID reports whether id is a role assignment's ARM id: a scope
// (or none) then /providers/Microsoft.Authorization/roleAssignments/{guid}.
func isAssignmentID(id string) bool {
	const marker = "/providers/microsoft.authorization/roleassignments/"
	i := strings.LastIndex(strings.ToLower(id), marker)
	return i >= 0 && strings.HasPrefix(id, "/") && gatehouse.IsGUID(id[i+len(marker):])
}
