package armapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
)

// Management locks at any scope under a subscription (az lock, armlocks'
// ManagementLocksClient, Terraform's azurerm_management_lock), stored by
// resources (locks.go there). authorize enforces them on every change:
//
//	GET    {scope}/providers/Microsoft.Authorization/locks          the locks at, above and below scope
//	                                                                ($filter=atScope(): at and above only)
//	GET    {scope}/providers/Microsoft.Authorization/locks/{name}
//	PUT    {scope}/providers/Microsoft.Authorization/locks/{name}   {"properties":{"level":"CanNotDelete"|"ReadOnly","notes":…}}
//	DELETE {scope}/providers/Microsoft.Authorization/locks/{name}
//
// Only Owner and User Access Administrator (Microsoft.Authorization/*)
// manage locks, as in Azure.

const (
	actLockRead   = "Microsoft.Authorization/locks/read"
	actLockWrite  = "Microsoft.Authorization/locks/write"
	actLockDelete = "Microsoft.Authorization/locks/delete"
)

var lockRoutes = []route{
	{method: "GET", pattern: authzP + "/locks", family: famLocks, handle: listLocks},
	{method: "GET", pattern: authzP + "/locks/{name}", family: famLocks, handle: getLock},
	{method: "PUT", pattern: authzP + "/locks/{name}", family: famLocks, audit: true, handle: putLock},
	{method: "DELETE", pattern: authzP + "/locks/{name}", family: famLocks, audit: true, handle: deleteLock},
}

type lockJSON struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Properties lockPropertiesJSON `json:"properties"`
}

type lockPropertiesJSON struct {
	Level  string          `json:"level"`
	Notes  *string         `json:"notes,omitempty"`
	Owners []lockOwnerJSON `json:"owners,omitempty"`
}

type lockOwnerJSON struct {
	ApplicationID string `json:"applicationId"`
}

func lockView(l *resources.Lock) lockJSON {
	v := lockJSON{ID: l.ID(), Name: l.Name, Type: "Microsoft.Authorization/locks", Properties: lockPropertiesJSON{Level: l.Level}}
	if l.Notes != "" {
		v.Properties.Notes = &l.Notes
	}
	for _, o := range l.Owners {
		v.Properties.Owners = append(v.Properties.Owners, lockOwnerJSON{ApplicationID: o})
	}
	return v
}

// lockScope is the {scope} of a lock route: a subscription of the
// caller's tenant, or a scope under one.
func (c *call) lockScope() (*gatehouse.ResourceID, error) {
	if c.scope == nil || c.scope.Subscription == "" {
		return nil, gatehouse.BadRequestf("InvalidLockScope", "Locks are placed on a subscription, a resource group or a resource.")
	}
	if _, err := c.subscriptionByID(c.scope.Subscription); err != nil {
		return nil, err
	}
	return c.scope, nil
}

func putLock(c *call) error {
	scope, err := c.lockScope()
	if err != nil {
		return err
	}
	if err := c.authorize(actLockWrite, scope); err != nil {
		return err
	}
	if err := c.checkScope(scope); err != nil {
		return err
	}
	var body struct {
		Properties *struct {
			Level  string          `json:"level"`
			Notes  string          `json:"notes"`
			Owners []lockOwnerJSON `json:"owners"`
		} `json:"properties"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if body.Properties == nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content must have properties.level.").WithTarget("properties")
	}
	spec := resources.LockSpec{Level: body.Properties.Level, Notes: body.Properties.Notes}
	for _, o := range body.Properties.Owners {
		spec.Owners = append(spec.Owners, o.ApplicationID)
	}
	l, created, err := c.api.opts.Resources.PutLock(c.ctx(), scope, c.param("name"), spec, c.principal.ObjectID)
	if err != nil {
		return err
	}
	c.detail("name", l.Name)
	c.detail("level", l.Level)
	return c.put(created, lockView(l))
}

func getLock(c *call) error {
	scope, err := c.lockScope()
	if err != nil {
		return err
	}
	if err := c.authorize(actLockRead, scope); err != nil {
		return err
	}
	l, err := c.api.opts.Resources.GetLock(c.ctx(), scope, c.param("name"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, lockView(l))
}

func deleteLock(c *call) error {
	scope, err := c.lockScope()
	if err != nil {
		return err
	}
	if err := c.authorize(actLockDelete, scope); err != nil {
		return err
	}
	existed, err := c.api.opts.Resources.DeleteLock(c.ctx(), scope, c.param("name"))
	if err != nil {
		return err
	}
	return c.deleted(existed)
}

// listLocks lists the locks that apply at scope — at it or above it — and,
// unless $filter=atScope(), those below it, each the caller may read.
func listLocks(c *call) error {
	scope, err := c.lockScope()
	if err != nil {
		return err
	}
	atScope := false
	switch f := strings.ReplaceAll(c.r.URL.Query().Get("$filter"), " ", ""); f {
	case "":
	case "atScope()":
		atScope = true
	default:
		return gatehouse.BadRequestf("InvalidFilter", "The only filter locks take is atScope().")
	}
	locks, err := c.api.opts.Resources.Locks(c.ctx(), scope.Subscription)
	if err != nil {
		return err
	}
	out := list[lockJSON]{Value: []lockJSON{}}
	s := scope.String()
	for _, l := range locks {
		if !resources.Within(s, l.Scope) && (atScope || !resources.Within(l.Scope, s)) {
			continue
		}
		if id, err := gatehouse.ParseResourceID(l.Scope); err == nil && c.can(actLockRead, id) {
			out.Value = append(out.Value, lockView(l))
		}
	}
	return c.reply(http.StatusOK, out)
}

// checkLocks refuses action at scope when a management lock forbids it
// (authorize calls it for every change it allows; resources.CheckLocks says
// which locks count).
func (c *call) checkLocks(action string, scope *gatehouse.ResourceID) error {
	return c.api.opts.Resources.CheckLocks(c.ctx(), scope, action)
}
