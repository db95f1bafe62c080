package armapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// GET /subscriptions/{sub}/tagNames (az tag list, armresources'
// TagsClient.NewListPager): every tag name used on the subscription's
// resource groups and resources the caller may read, with its values and
// how many carry each. Tag names compare case-insensitively, as ARM's do
// (the first spelling found is shown); values exactly.

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
	var tagged []map[string]string
	groups, err := c.api.opts.Resources.Groups(c.ctx(), scope.Subscription)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if c.can(actGroupRead, g.ID()) {
			tagged = append(tagged, g.Tags)
		}
	}
	resources, err := c.readableResources(scope)
	if err != nil {
		return err
	}
	for _, r := range resources {
		tagged = append(tagged, r.Tags)
	}
	base := "/subscriptions/" + scope.Subscription + "/tagNames/"
	byName := map[string]*tagNameJSON{}
	for _, tags := range tagged {
		for name, value := range tags {
			t := byName[strings.ToLower(name)]
			if t == nil {
				t = &tagNameJSON{ID: base + url.PathEscape(name), TagName: name, Count: tagCountJSON{Type: "Total"}, Values: []tagValueJSON{}}
				byName[strings.ToLower(name)] = t
			}
			t.Count.Value++
			i := slices.IndexFunc(t.Values, func(v tagValueJSON) bool { return v.TagValue == value })
			if i < 0 {
				t.Values = append(t.Values, tagValueJSON{ID: t.ID + "/tagValues/" + url.PathEscape(value), TagValue: value, Count: tagCountJSON{Type: "Total"}})
				i = len(t.Values) - 1
			}
			t.Values[i].Count.Value++
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
