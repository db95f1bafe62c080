package armapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
)

// A subscription's tags as ARM lists them, and its predefined tags
// (resources/tagnames.go):
//
//	GET    {sub}/tagNames                                  az tag list, armresources' TagsClient.NewListPager
//	PUT    {sub}/tagNames/{tagName}                        az tag create --name; 201, or 200 if predefined already
//	DELETE {sub}/tagNames/{tagName}                        az tag delete --name; 409 while it has predefined
//	                                                       values or anything carries it
//	PUT    {sub}/tagNames/{tagName}/tagValues/{tagValue}   az tag add-value; 404 unless the name is predefined
//	DELETE {sub}/tagNames/{tagName}/tagValues/{tagValue}   az tag remove-value; 409 while anything carries it
//
// The list is every tag name used on the subscription's resource groups
// and resources the caller may read, with its values and how many carry
// each, and — for a caller who may read the subscription's tag names —
// the predefined names and values, counted 0 while nothing carries them.
// Tag names compare case-insensitively, as ARM's do (a predefined
// spelling is shown, else the first found); values exactly. Whether a
// name or value is in use is decided over every resource, readable or
// not. Tag values are not audited, only the name.

const (
	actTagNamesRead        = "Microsoft.Resources/subscriptions/tagNames/read"
	actTagNamesWrite       = "Microsoft.Resources/subscriptions/tagNames/write"
	actTagNamesDelete      = "Microsoft.Resources/subscriptions/tagNames/delete"
	actTagNameValuesWrite  = "Microsoft.Resources/subscriptions/tagNames/tagValues/write"
	actTagNameValuesDelete = "Microsoft.Resources/subscriptions/tagNames/tagValues/delete"
)

type tagCountJSON struct {
	Type  string `json:"type"`
	Value int    `json:"value"`
}

type tagValueJSON struct {
	ID       string       `json:"id"`
	TagValue string       `json:"tagValue"`
	Count    tagCountJSON `json:"count"`
}

type tagNameJSON struct {
	ID      string         `json:"id"`
	TagName string         `json:"tagName"`
	Count   tagCountJSON   `json:"count"`
	Values  []tagValueJSON `json:"values"`
}

func listTagNames(c *call) error {
	scope, err := c.listScope()
	if err != nil {
		return err
	}
	byName, err := c.tagSummary(scope.Subscription, c.can)
	if err != nil {
		return err
	}
	if c.can(actTagNamesRead, &gatehouse.ResourceID{Subscription: scope.Subscription}) {
		predefined, err := c.api.opts.Resources.TagNames(c.ctx(), scope.Subscription)
		if err != nil {
			return err
		}
		for _, p := range predefined {
			t := byName.entry(scope.Subscription, p.Name)
			t.respell(scope.Subscription, p.Name)
			for _, v := range p.Values {
				t.value(v)
			}
		}
	}
	out := list[tagNameJSON]{Value: []tagNameJSON{}}
	for _, t := range byName {
		slices.SortFunc(t.Values, func(a, b tagValueJSON) int { return strings.Compare(a.TagValue, b.TagValue) })
		out.Value = append(out.Value, *t)
	}
	slices.SortFunc(out.Value, func(a, b tagNameJSON) int {
		return strings.Compare(strings.ToLower(a.TagName), strings.ToLower(b.TagName))
	})
	return c.reply(http.StatusOK, out)
}

// tagSummaries are tag names by their lower-case form.
type tagSummaries map[string]*tagNameJSON

// entry returns name's summary, counted 0 if new.
func (m tagSummaries) entry(sub, name string) *tagNameJSON {
	t := m[strings.ToLower(name)]
	if t == nil {
		t = &tagNameJSON{ID: "/subscriptions/" + sub + "/tagNames/" + url.PathEscape(name), TagName: name,
			Count: tagCountJSON{Type: "Total"}, Values: []tagValueJSON{}}
		m[strings.ToLower(name)] = t
	}
	return t
}

// respell shows t under name (the predefined spelling), ids included.
func (t *tagNameJSON) respell(sub, name string) {
	t.TagName = name
	t.ID = "/subscriptions/" + sub + "/tagNames/" + url.PathEscape(name)
	for i := range t.Values {
		t.Values[i].ID = t.ID + "/tagValues/" + url.PathEscape(t.Values[i].TagValue)
	}
}

// value returns the summary of one of t's values, counted 0 if new.
func (t *tagNameJSON) value(v string) *tagValueJSON {
	i := slices.IndexFunc(t.Values, func(x tagValueJSON) bool { return x.TagValue == v })
	if i < 0 {
		t.Values = append(t.Values, tagValueJSON{ID: t.ID + "/tagValues/" + url.PathEscape(v), TagValue: v, Count: tagCountJSON{Type: "Total"}})
		i = len(t.Values) - 1
	}
	return &t.Values[i]
}

// tagSummary counts the tags on sub's resource groups and resources that
// keep keeps (c.can: those the caller may read).
func (c *call) tagSummary(sub string, keep func(string, *gatehouse.ResourceID) bool) (tagSummaries, error) {
	var tagged []map[string]string
	groups, err := c.api.opts.Resources.Groups(c.ctx(), sub)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if keep(actGroupRead, g.ID()) {
			tagged = append(tagged, g.Tags)
		}
	}
	resources, err := c.resourcesIn(&gatehouse.ResourceID{Subscription: sub}, keep)
	if err != nil {
		return nil, err
	}
	for _, r := range resources {
		tagged = append(tagged, r.Tags)
	}
	byName := tagSummaries{}
	for _, tags := range tagged {
		for name, value := range tags {
			t := byName.entry(sub, name)
			t.Count.Value++
			t.value(value).Count.Value++
		}
	}
	return byName, nil
}

// everything is tagSummary's keep for deciding what is in use.
func everything(string, *gatehouse.ResourceID) bool { return true }

// tagNameScope resolves the {sub} of a predefined-tag route and authorizes
// action at it.
func (c *call) tagNameScope(action string) (*gatehouse.ResourceID, string, error) {
	s, err := c.subscription()
	if err != nil {
		return nil, "", err
	}
	scope := &gatehouse.ResourceID{Subscription: s.ID}
	if err := c.authorize(action, scope); err != nil {
		return nil, "", err
	}
	name := c.param("tagName")
	c.detail("tagName", name)
	return scope, name, nil
}

func putTagName(c *call) error {
	scope, name, err := c.tagNameScope(actTagNamesWrite)
	if err != nil {
		return err
	}
	t, created, err := c.api.opts.Resources.PutTagName(c.ctx(), scope.Subscription, name, c.principal.ObjectID)
	if err != nil {
		return err
	}
	view, err := c.predefinedTagView(scope.Subscription, t)
	if err != nil {
		return err
	}
	return c.put(created, view)
}

// predefinedTagView is t as the list shows it, with the counts of the
// resources the caller may read.
func (c *call) predefinedTagView(sub string, t *resources.TagName) (*tagNameJSON, error) {
	byName, err := c.tagSummary(sub, c.can)
	if err != nil {
		return nil, err
	}
	v := byName.entry(sub, t.Name)
	v.respell(sub, t.Name)
	for _, x := range t.Values {
		v.value(x)
	}
	slices.SortFunc(v.Values, func(a, b tagValueJSON) int { return strings.Compare(a.TagValue, b.TagValue) })
	return v, nil
}

func deleteTagName(c *call) error {
	scope, name, err := c.tagNameScope(actTagNamesDelete)
	if err != nil {
		return err
	}
	existed, err := c.api.opts.Resources.DeleteTagName(c.ctx(), scope.Subscription, name, func() (bool, error) {
		byName, err := c.tagSummary(scope.Subscription, everything)
		return byName[strings.ToLower(name)] != nil, err
	})
	if err != nil {
		return err
	}
	return c.deleted(existed)
}

func putTagValue(c *call) error {
	scope, name, err := c.tagNameScope(actTagNameValuesWrite)
	if err != nil {
		return err
	}
	t, created, err := c.api.opts.Resources.PutTagValue(c.ctx(), scope.Subscription, name, c.param("tagValue"))
	if err != nil {
		return err
	}
	view, err := c.predefinedTagView(scope.Subscription, t)
	if err != nil {
		return err
	}
	return c.put(created, view.value(c.param("tagValue")))
}

func deleteTagValue(c *call) error {
	scope, name, err := c.tagNameScope(actTagNameValuesDelete)
	if err != nil {
		return err
	}
	value := c.param("tagValue")
	existed, err := c.api.opts.Resources.DeleteTagValue(c.ctx(), scope.Subscription, name, value, func() (bool, error) {
		byName, err := c.tagSummary(scope.Subscription, everything)
		if t := byName[strings.ToLower(name)]; t != nil {
			return slices.ContainsFunc(t.Values, func(v tagValueJSON) bool { return v.TagValue == value }), err
		}
		return false, err
	})
	if err != nil {
		return err
	}
	return c.deleted(existed)
}
