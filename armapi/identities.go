package armapi

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/resources"
)

// ManagedIdentity is a user-assigned identity as the API shows it.
type ManagedIdentity struct {
	ResourceID  string
	Name        string
	TenantID    string
	ClientID    string
	PrincipalID string
	Location    string
	Tags        map[string]string
	Created     time.Time
}

// Identities stores managed identities (the directory). Errors that are
// *gatehouse.Error are rendered as they are.
type Identities interface {
	// GetIdentity returns the identity with ARM id resourceID (any case),
	// ok=false when there is none.
	GetIdentity(ctx context.Context, resourceID string) (mi *ManagedIdentity, ok bool, err error)
	// ListIdentities returns the identities within scope, ordered by id.
	ListIdentities(ctx context.Context, scope string) ([]*ManagedIdentity, error)
	// CreateIdentity creates it; created=false when it already existed (a
	// concurrent PUT), in which case mi is the existing one.
	CreateIdentity(ctx context.Context, resourceID, location string, tags map[string]string) (mi *ManagedIdentity, created bool, err error)
	// UpdateIdentity replaces its location and tags.
	UpdateIdentity(ctx context.Context, resourceID, location string, tags map[string]string) (*ManagedIdentity, error)
	// DeleteIdentity deletes it and reports whether it existed.
	DeleteIdentity(ctx context.Context, resourceID string) (bool, error)

	// ListFederated, PutFederated and DeleteFederated keep the federated
	// identity credentials of an existing identity (federated.go). Put
	// reports whether it created the credential; Delete whether it
	// existed. Errors that are *gatehouse.Error are rendered as they are.
	ListFederated(ctx context.Context, resourceID string) ([]FederatedCredential, error)
	PutFederated(ctx context.Context, resourceID string, f FederatedCredential) (FederatedCredential, bool, error)
	DeleteFederated(ctx context.Context, resourceID, name string) (bool, error)
}

// Actions of Microsoft.ManagedIdentity/userAssignedIdentities.
const (
	actIdentityRead   = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
	actIdentityWrite  = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
	actIdentityDelete = "Microsoft.ManagedIdentity/userAssignedIdentities/delete"
	identityType      = "Microsoft.ManagedIdentity/userAssignedIdentities"
)

func isUserAssigned(resourceID string) bool {
	id, err := gatehouse.ParseResourceID(resourceID)
	return err == nil && id.Scope == nil && strings.EqualFold(id.Type(), identityType)
}

type identityResourceJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties struct {
		TenantID       string `json:"tenantId"`
		PrincipalID    string `json:"principalId"`
		ClientID       string `json:"clientId"`
		IsolationScope string `json:"isolationScope"`
	} `json:"properties"`
	SystemData struct {
		CreatedAt string `json:"createdAt,omitempty"`
	} `json:"systemData"`
}

func identityView(mi *ManagedIdentity) identityResourceJSON {
	v := identityResourceJSON{ID: mi.ResourceID, Name: mi.Name, Type: identityType, Location: mi.Location, Tags: mi.Tags}
	if id, err := gatehouse.ParseResourceID(mi.ResourceID); err == nil {
		v.ID, v.Name = id.String(), id.Name()
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	v.Properties.TenantID, v.Properties.PrincipalID, v.Properties.ClientID = mi.TenantID, mi.PrincipalID, mi.ClientID
	v.Properties.IsolationScope = "None"
	v.SystemData.CreatedAt = armTime(mi.Created)
	return v
}

func (c *call) identities() (Identities, error) {
	if c.api.opts.Identities == nil {
		return nil, errNoRoute(c.r.URL.Path)
	}
	return c.api.opts.Identities, nil
}

// validateIdentityName applies Azure's rule: 3 to 128 characters, letters,
// digits, '-' and '_', starting with a letter or digit.
func validateIdentityName(name string) error {
	ok := len(name) >= 3 && len(name) <= 128 && isAlnum(name[0])
	for i := 0; ok && i < len(name); i++ {
		ok = isAlnum(name[i]) || name[i] == '-' || name[i] == '_'
	}
	if !ok {
		return gatehouse.BadRequestf("InvalidResourceName",
			"The identity name '%s' is invalid: it must be 3 to 128 letters, digits, '-' or '_', starting with a letter or digit.", clip(name)).WithTarget("name")
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func listIdentities(c *call) error {
	ids, err := c.identities()
	if err != nil {
		return err
	}
	s, err := c.subscription()
	if err != nil {
		return err
	}
	scope := &gatehouse.ResourceID{Subscription: s.ID}
	if rg := c.param("rg"); rg != "" {
		g, err := c.api.opts.Resources.Group(c.ctx(), s.ID, rg)
		if err != nil {
			return err
		}
		scope = g.ID()
	}
	all, err := ids.ListIdentities(c.ctx(), scope.String())
	if err != nil {
		return err
	}
	out := list[identityResourceJSON]{Value: []identityResourceJSON{}}
	for _, mi := range all {
		id, err := gatehouse.ParseResourceID(mi.ResourceID)
		if err != nil || !isUserAssigned(mi.ResourceID) || !c.can(actIdentityRead, id) {
			continue // system-assigned identities are listed with their resource
		}
		out.Value = append(out.Value, identityView(mi))
	}
	return c.reply(http.StatusOK, out)
}

// identityCall is the common prologue of the single-identity routes.
func (c *call) identityCall(action string) (Identities, *gatehouse.ResourceID, error) {
	ids, err := c.identities()
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.subscription(); err != nil {
		return nil, nil, err
	}
	id := &gatehouse.ResourceID{Subscription: strings.ToLower(c.param("sub")), ResourceGroup: c.param("rg"),
		Namespace: "Microsoft.ManagedIdentity", Types: []string{"userAssignedIdentities"}, Names: []string{c.param("name")}}
	if err := c.authorize(action, id); err != nil {
		return nil, nil, err
	}
	if _, err := c.group(); err != nil {
		return nil, nil, err
	}
	return ids, id, validateIdentityName(c.param("name"))
}

func getIdentity(c *call) error {
	ids, id, err := c.identityCall(actIdentityRead)
	if err != nil {
		return err
	}
	mi, ok, err := ids.GetIdentity(c.ctx(), id.String())
	if err != nil {
		return err
	}
	if !ok {
		return errResourceNotFound(id)
	}
	return c.reply(http.StatusOK, identityView(mi))
}

type identityResourceBody struct {
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

// PUT creates (201) or updates (200) the identity; armmsi is not an LRO.
func putIdentity(c *call) error {
	ids, id, err := c.identityCall(actIdentityWrite)
	if err != nil {
		return err
	}
	var body identityResourceBody
	if err := c.decode(&body); err != nil {
		return err
	}
	loc, err := resources.NormalizeLocation(body.Location)
	if err != nil {
		return err
	}
	if err := resources.ValidateTags(body.Tags); err != nil {
		return err
	}
	c.detail("location", loc)
	mi, ok, err := ids.GetIdentity(c.ctx(), id.String())
	if err != nil {
		return err
	}
	if ok {
		if mi, err = ids.UpdateIdentity(c.ctx(), id.String(), mi.Location, body.Tags); err != nil {
			return err
		}
		return c.reply(http.StatusOK, identityView(mi))
	}
	// A new identity goes only where the server's locations list says (an
	// existing one keeps its own).
	if loc, err = resources.ResourceLocation(body.Location, identityType); err != nil {
		return err
	}
	mi, created, err := ids.CreateIdentity(c.ctx(), id.String(), loc, body.Tags)
	if err != nil {
		return err
	}
	c.detail("principalId", mi.PrincipalID)
	return c.put(created, identityView(mi))
}

func patchIdentity(c *call) error {
	ids, id, err := c.identityCall(actIdentityWrite)
	if err != nil {
		return err
	}
	var body identityResourceBody
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := resources.ValidateTags(body.Tags); err != nil {
		return err
	}
	mi, ok, err := ids.GetIdentity(c.ctx(), id.String())
	if err != nil {
		return err
	}
	if !ok {
		return errResourceNotFound(id)
	}
	tags := body.Tags
	if tags == nil {
		tags = mi.Tags
	}
	if mi, err = ids.UpdateIdentity(c.ctx(), id.String(), mi.Location, tags); err != nil {
		return err
	}
	return c.reply(http.StatusOK, identityView(mi))
}

// DELETE: 200 when deleted, 204 when there was none. Assignments at the
// identity's scope go with it (assignments naming it as principal stay, as
// in Azure).
func deleteIdentity(c *call) error {
	ids, id, err := c.identityCall(actIdentityDelete)
	if err != nil {
		return err
	}
	existed, err := ids.DeleteIdentity(c.ctx(), id.String())
	if err != nil {
		return err
	}
	if _, err := c.api.opts.Authz.DeleteAssignmentsWithin(c.ctx(), id); err != nil {
		return err
	}
	return c.deleted(existed)
}

// actIdentityListResources lists what a user-assigned identity is
// assigned to (az identity list-resources).
const actIdentityListResources = "Microsoft.ManagedIdentity/userAssignedIdentities/listAssociatedResources/action"

// associatedResourceJSON is one resource the identity is assigned to, in
// Azure's AzureResource shape.
type associatedResourceJSON struct {
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	Type                    string `json:"type"`
	ResourceGroup           string `json:"resourceGroup"`
	SubscriptionID          string `json:"subscriptionId"`
	SubscriptionDisplayName string `json:"subscriptionDisplayName"`
}

// listIdentityResources is POST {identity}/listAssociatedResources: the
// accounts of the subscription that hold the identity and that the caller
// may read, by id; $top and $skip page them ($filter and $orderby are
// refused).
func listIdentityResources(c *call) error {
	ids, id, err := c.identityCall(actIdentityListResources)
	if err != nil {
		return err
	}
	if _, ok, err := ids.GetIdentity(c.ctx(), id.String()); err != nil {
		return err
	} else if !ok {
		return errResourceNotFound(id)
	}
	q := c.r.URL.Query()
	for _, p := range []string{"$filter", "$orderby", "$skiptoken"} {
		if q.Get(p) != "" {
			return gatehouse.BadRequestf("UnsupportedQuery", "%s is not supported here: the list is ordered by resource id.", p).WithTarget(p)
		}
	}
	number := func(p string, least int) (int, error) {
		v := q.Get(p)
		if v == "" {
			return -1, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			return 0, gatehouse.BadRequestf("InvalidParameter", "The value '%s' of %s is not valid: give a whole number of at least %d.", clip(v), p, least).WithTarget(p)
		}
		return n, nil
	}
	top, err := number("$top", 1)
	if err != nil {
		return err
	}
	skip, err := number("$skip", 0)
	if err != nil {
		return err
	}
	s, err := c.subscription()
	if err != nil {
		return err
	}
	all, err := c.api.opts.Accounts.List(c.ctx(), &gatehouse.ResourceID{Subscription: s.ID})
	if err != nil {
		return err
	}
	out := []associatedResourceJSON{}
	for _, a := range all {
		aid, ok := accounts.ParseID(a.ID)
		if !ok || a.Identity == nil || !c.can(actAccountRead, aid) {
			continue
		}
		for uai := range a.Identity.UserAssigned {
			if strings.EqualFold(uai, id.String()) {
				out = append(out, associatedResourceJSON{ID: a.ID, Name: a.Name, Type: accounts.Type,
					ResourceGroup: aid.ResourceGroup, SubscriptionID: s.ID, SubscriptionDisplayName: s.DisplayName})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].ID) < strings.ToLower(out[j].ID) })
	total := len(out)
	if skip > 0 {
		out = out[min(skip, len(out)):]
	}
	if top > 0 && top < len(out) {
		out = out[:top]
	}
	return c.reply(http.StatusOK, struct {
		TotalCount int                      `json:"totalCount"`
		Value      []associatedResourceJSON `json:"value"`
	}{total, out})
}
