package armapi

import (
	"maps"
	"net/http"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/vault"
)

// The Tags resource of a resource group or a resource (az tag
// create|update|list|delete --resource-id, armresources' TagsClient …AtScope):
// the tags of the scope itself, readable and writable with the
// Microsoft.Resources/tags actions alone — so Tag Contributor tags what it
// may not change — and subject to locks like any change:
//
//	GET    {scope}/providers/Microsoft.Resources/tags/default
//	PUT    {scope}/providers/Microsoft.Resources/tags/default   {"properties":{"tags":{…}}}: replaces them
//	PATCH  {scope}/providers/Microsoft.Resources/tags/default   {"operation":"Merge"|"Replace"|"Delete","properties":{"tags":{…}}}
//	DELETE {scope}/providers/Microsoft.Resources/tags/default   removes them all
//
// Merge adds the given tags and overwrites those of the same name (names
// compare case-insensitively, as ARM's do); Delete removes each given name
// whose value matches, or whatever its value when the given value is
// empty. The scope's service writes the tags, so the resource's own GET and
// list show them at once. A subscription's tags are not kept: reads answer
// none, writes are refused.

const (
	actTagsRead   = "Microsoft.Resources/tags/read"
	actTagsWrite  = "Microsoft.Resources/tags/write"
	actTagsDelete = "Microsoft.Resources/tags/delete"
)

const tagsP = "{scope*}/providers/Microsoft.Resources/tags/default"

var tagResourceRoutes = []route{
	{method: "GET", pattern: tagsP, family: famResources, handle: getTagsResource},
	{method: "PUT", pattern: tagsP, family: famResources, audit: true, handle: putTagsResource},
	{method: "PATCH", pattern: tagsP, family: famResources, audit: true, handle: patchTagsResource},
	{method: "DELETE", pattern: tagsP, family: famResources, audit: true, handle: deleteTagsResource},
}

type tagsResourceJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Tags map[string]string `json:"tags"`
	} `json:"properties"`
}

func tagsResourceView(scope *gatehouse.ResourceID, tags map[string]string) tagsResourceJSON {
	v := tagsResourceJSON{ID: scope.String() + "/providers/Microsoft.Resources/tags/default", Name: "default", Type: "Microsoft.Resources/tags"}
	v.Properties.Tags = tags
	if v.Properties.Tags == nil {
		v.Properties.Tags = map[string]string{}
	}
	return v
}

// tagged is the scope of a Tags resource: how to read and replace its tags.
type tagged struct {
	scope *gatehouse.ResourceID
	get   func() (map[string]string, error)
	set   func(map[string]string) error // nil: the scope keeps no tags
}

// tagsMu serializes this node's read-modify-writes of tags, so two merges
// at once both land (nodes of a deployment can still race each other).
var tagsMu sync.Mutex

// tagsScope resolves the {scope} of a Tags route, after authorizing action
// at it: a subscription, a resource group or a top-level resource.
func (c *call) tagsScope(action string) (*tagged, error) {
	scope := c.scope
	if scope == nil || scope.Subscription == "" {
		return nil, gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "Tags are kept on a subscription, a resource group or a resource.")
	}
	if err := c.authorize(action, scope); err != nil {
		return nil, err
	}
	if err := c.checkScope(scope); err != nil {
		return nil, err
	}
	ctx := c.ctx()
	t := &tagged{scope: scope}
	switch {
	case scope.ResourceGroup == "":
		t.get = func() (map[string]string, error) { return nil, nil }
	case scope.Namespace == "":
		t.get = func() (map[string]string, error) {
			g, err := c.api.opts.Resources.Group(ctx, scope.Subscription, scope.ResourceGroup)
			if err != nil {
				return nil, err
			}
			return g.Tags, nil
		}
		t.set = func(tags map[string]string) error {
			_, err := c.api.opts.Resources.PatchGroup(ctx, scope.Subscription, scope.ResourceGroup, tags, c.principal.ObjectID)
			return err
		}
	case scope.Scope != nil || len(scope.Types) != 1:
		return nil, gatehouse.BadRequestf("InvalidResourceType",
			"Gatehouse keeps tags on resource groups and top-level resources; '%s' is neither.", clip(scope.String()))
	default:
		switch strings.ToLower(scope.Type()) {
		case "microsoft.cognitiveservices/accounts":
			t.get = func() (map[string]string, error) {
				a, err := c.api.opts.Accounts.Get(ctx, scope)
				if err != nil {
					return nil, err
				}
				return a.Tags, nil
			}
			t.set = func(tags map[string]string) error {
				_, err := c.api.opts.Accounts.Patch(ctx, scope, accounts.Spec{Tags: tags}, c.actor())
				return err
			}
		case "microsoft.keyvault/vaults":
			if c.api.opts.Vaults == nil {
				return nil, errResourceNotFound(scope)
			}
			t.get = func() (map[string]string, error) {
				v, err := c.api.opts.Vaults.GetVault(ctx, scope)
				if err != nil {
					return nil, err
				}
				return v.Tags, nil
			}
			t.set = func(tags map[string]string) error {
				_, err := c.api.opts.Vaults.PatchVault(ctx, scope, vault.Spec{Tags: tags}, c.vaultActor())
				return err
			}
		case "microsoft.managedidentity/userassignedidentities":
			ids, err := c.identities()
			if err != nil {
				return nil, err
			}
			t.get = func() (map[string]string, error) {
				mi, ok, err := ids.GetIdentity(ctx, scope.String())
				if err == nil && !ok {
					err = errResourceNotFound(scope)
				}
				if err != nil {
					return nil, err
				}
				return mi.Tags, nil
			}
			t.set = func(tags map[string]string) error {
				mi, ok, err := ids.GetIdentity(ctx, scope.String())
				if err == nil && !ok {
					err = errResourceNotFound(scope)
				}
				if err != nil {
					return err
				}
				_, err = ids.UpdateIdentity(ctx, scope.String(), mi.Location, tags)
				return err
			}
		default:
			return nil, errResourceNotFound(scope)
		}
	}
	return t, nil
}

func getTagsResource(c *call) error {
	t, err := c.tagsScope(actTagsRead)
	if err != nil {
		return err
	}
	tags, err := t.get()
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, tagsResourceView(t.scope, tags))
}

// tagsBody is the body of PUT and PATCH.
type tagsBody struct {
	Operation  string `json:"operation"`
	Properties *struct {
		Tags map[string]string `json:"tags"`
	} `json:"properties"`
}

func (c *call) tagsBody() (*tagsBody, error) {
	var body tagsBody
	if err := c.decode(&body); err != nil {
		return nil, err
	}
	if body.Properties == nil || body.Properties.Tags == nil {
		return nil, gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content must have properties.tags.").WithTarget("properties.tags")
	}
	return &body, nil
}

// writeTags computes the new tags from the current ones under tagsMu and
// stores them.
func (c *call) writeTags(t *tagged, next func(cur map[string]string) (map[string]string, error)) (map[string]string, error) {
	if t.set == nil {
		return nil, gatehouse.BadRequestf("InvalidResourceType", "Gatehouse keeps no tags on subscriptions; tag its resource groups and resources.")
	}
	tagsMu.Lock()
	defer tagsMu.Unlock()
	cur, err := t.get()
	if err != nil {
		return nil, err
	}
	tags, err := next(maps.Clone(cur))
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	if err := resources.ValidateTags(tags); err != nil {
		return nil, err
	}
	if err := t.set(tags); err != nil {
		return nil, err
	}
	return tags, nil
}

func putTagsResource(c *call) error {
	t, err := c.tagsScope(actTagsWrite)
	if err != nil {
		return err
	}
	body, err := c.tagsBody()
	if err != nil {
		return err
	}
	tags, err := c.writeTags(t, func(map[string]string) (map[string]string, error) { return body.Properties.Tags, nil })
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, tagsResourceView(t.scope, tags))
}

func patchTagsResource(c *call) error {
	t, err := c.tagsScope(actTagsWrite)
	if err != nil {
		return err
	}
	body, err := c.tagsBody()
	if err != nil {
		return err
	}
	op := strings.ToLower(body.Operation)
	if op != "merge" && op != "replace" && op != "delete" {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The operation '%s' is not valid: use Merge, Replace or Delete.", clip(body.Operation)).WithTarget("operation")
	}
	c.detail("operation", op)
	tags, err := c.writeTags(t, func(cur map[string]string) (map[string]string, error) {
		switch op {
		case "replace":
			return body.Properties.Tags, nil
		case "merge":
			for name, value := range body.Properties.Tags {
				cur = resources.WithTag(cur, name, value)
			}
		default:
			for name, value := range body.Properties.Tags {
				cur = resources.WithoutTag(cur, name, value)
			}
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, tagsResourceView(t.scope, tags))
}

func deleteTagsResource(c *call) error {
	t, err := c.tagsScope(actTagsDelete)
	if err != nil {
		return err
	}
	if _, err := c.writeTags(t, func(map[string]string) (map[string]string, error) { return nil, nil }); err != nil {
		return err
	}
	return c.deleted(true) // 200, as ARM answers, tags or not
}
