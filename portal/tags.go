package portal

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/vault"
)

// Tags on an account's or a vault's page: the resource's tags, and — for
// whoever may write tags there (Microsoft.Resources/tags/write: Owner,
// Contributor, Tag Contributor), as through ARM's Tags resource — a form
// that sets one tag and a button that removes one. The form suggests the
// subscription's predefined tag names and values (az tag create --name,
// add-value) to whoever may also read them. Changes obey locks and are
// audited like ARM's tags/write.

const (
	actTagsWrite    = "Microsoft.Resources/tags/write"
	actTagNamesRead = "Microsoft.Resources/subscriptions/tagNames/read"
)

type tagRow struct{ Name, Value string }

// tagsView is the tags section of a resource page.
type tagsView struct {
	Base     string
	Tags     []tagRow
	CanWrite bool
	// Predefined are the subscription's predefined tag names (Value "")
	// and values, for the form's suggestions.
	Predefined []tagRow
}

func (p *Portal) tagsView(q *req, base string, id *gatehouse.ResourceID, tags map[string]string) tagsView {
	v := tagsView{Base: base, CanWrite: q.can(p, actTagsWrite, id)}
	for _, name := range slices.SortedFunc(maps.Keys(tags), func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	}) {
		v.Tags = append(v.Tags, tagRow{Name: name, Value: tags[name]})
	}
	if v.CanWrite && q.can(p, actTagNamesRead, &gatehouse.ResourceID{Subscription: id.Subscription}) {
		// Suggestions only: a store that cannot list them leaves the form
		// as it is.
		if names, err := p.opts.Resources.TagNames(q.ctx(), id.Subscription); err == nil {
			for _, n := range names {
				v.Predefined = append(v.Predefined, tagRow{Name: n.Name})
				for _, val := range n.Values {
					v.Predefined = append(v.Predefined, tagRow{Name: n.Name, Value: val})
				}
			}
		}
	}
	return v
}

// tagged is a page whose resource keeps tags: how to read and replace
// them once the page's loader has checked that the user may read it.
type tagged struct {
	load roleResource
	get  func(q *req, id *gatehouse.ResourceID) (map[string]string, error)
	set  func(q *req, id *gatehouse.ResourceID, tags map[string]string) error
}

func (p *Portal) accountTags() tagged {
	return tagged{
		load: p.accountRoles(),
		get: func(q *req, id *gatehouse.ResourceID) (map[string]string, error) {
			a, err := p.opts.Accounts.Get(q.ctx(), id)
			if err != nil {
				return nil, err
			}
			return a.Tags, nil
		},
		set: func(q *req, id *gatehouse.ResourceID, tags map[string]string) error {
			_, err := p.opts.Accounts.Patch(q.ctx(), id, accounts.Spec{Tags: tags}, accounts.Actor{ObjectID: q.user.ObjectID, Type: "User"})
			return err
		},
	}
}

func (p *Portal) vaultTags() tagged {
	return tagged{
		load: p.vaultRoles(),
		get: func(q *req, id *gatehouse.ResourceID) (map[string]string, error) {
			v, err := p.opts.Vaults.GetVault(q.ctx(), id)
			if err != nil {
				return nil, err
			}
			return v.Tags, nil
		},
		set: func(q *req, id *gatehouse.ResourceID, tags map[string]string) error {
			_, err := p.opts.Vaults.PatchVault(q.ctx(), id, vault.Spec{Tags: tags}, vault.Actor{ObjectID: q.user.ObjectID, Type: "User"})
			return err
		},
	}
}

// setTag sets the form's tag (name, value) on the page's resource.
func (p *Portal) setTag(res tagged) func(*req) error {
	return p.changeTags(res, func(q *req, tags map[string]string, name string) map[string]string {
		return resources.WithTag(tags, name, q.r.PostForm.Get("value"))
	})
}

// removeTag removes the form's tag (name) from the page's resource.
func (p *Portal) removeTag(res tagged) func(*req) error {
	return p.changeTags(res, func(_ *req, tags map[string]string, name string) map[string]string {
		return resources.WithoutTag(tags, name, "")
	})
}

func (p *Portal) changeTags(res tagged, change func(q *req, tags map[string]string, name string) map[string]string) func(*req) error {
	return func(q *req) error {
		id, err := res.load.open(q)
		if err != nil {
			return err
		}
		name := strings.TrimSpace(q.r.PostForm.Get("name"))
		if name == "" {
			return gatehouse.BadRequestf("InvalidTag", "Give the tag a name.")
		}
		details := map[string]string{"tagName": clipField(name)}
		if !q.can(p, actTagsWrite, id) {
			p.auditUser(q, actTagsWrite, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, details)
			return denied(q.user, actTagsWrite, id)
		}
		if err := p.locked(q, actTagsWrite, id, details); err != nil {
			return err
		}
		cur, err := res.get(q, id)
		if err != nil {
			return err
		}
		tags := change(q, cur, name)
		if err := resources.ValidateTags(tags); err != nil {
			return err
		}
		err = res.set(q, id, tags)
		if p.auditOutcome(q, actTagsWrite, id, err, details); err != nil {
			return err
		}
		base := q.r.URL.Path[:strings.LastIndex(q.r.URL.Path, "/tags")]
		http.Redirect(q.w, q.r, base+"#tags", http.StatusSeeOther)
		return nil
	}
}
