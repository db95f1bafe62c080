package armapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
)

// Soft-deleted accounts (accounts/softdelete.go), as Azure serves them:
//
//	GET    /subscriptions/{sub}/providers/Microsoft.CognitiveServices/deletedAccounts
//	GET    …/providers/Microsoft.CognitiveServices/locations/{loc}/resourceGroups/{rg}/deletedAccounts/{name}
//	DELETE the same: purge (200; role assignments at the account go first)
//	PUT    …/accounts/{name} {"location", "properties": {"restore": true}}: recover (accounts.go)
//
// Authorization is at the resource group (the account's own scope is gone
// from ARM's view): …/deletedAccounts/read to see, …/deletedAccounts/delete
// to purge; the list shows the deleted accounts of the groups the caller may
// read them in.
const (
	actDeletedAccountRead   = "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/read"
	actDeletedAccountDelete = "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete"
	deletedAccountsP        = "/providers/Microsoft.CognitiveServices/deletedAccounts"
	deletedAccount          = "/providers/Microsoft.CognitiveServices/locations/{loc}/resourceGroups/{rg}/deletedAccounts/{name}"
)

var deletedAccountRoutes = []route{
	{method: "GET", pattern: sub + deletedAccountsP, family: famCognitive, handle: listDeletedAccounts},
	{method: "GET", pattern: sub + deletedAccount, family: famCognitive, handle: getDeletedAccount},
	{method: "DELETE", pattern: sub + deletedAccount, family: famCognitive, audit: true, handle: purgeDeletedAccount},
}

// deletedAccountJSON is an account as the deletedAccounts operations answer
// it: its id under the location, the deletion and purge dates.
type deletedAccountJSON struct {
	accountJSON
}

func deletedAccountView(a *accounts.Account) deletedAccountJSON {
	v := deletedAccountJSON{accountView(a)}
	v.ID = "/subscriptions/" + a.Subscription + "/providers/" + accounts.Namespace + "/locations/" + a.Location +
		"/resourceGroups/" + a.ResourceGroup + "/deletedAccounts/" + a.Name
	v.Properties.ProvisioningState = "Deleted"
	v.Properties.DeletionDate, v.Properties.ScheduledPurgeDate = armTime(a.DeletedAt), armTime(a.ScheduledPurge)
	return v
}

func groupScope(subID, rg string) *gatehouse.ResourceID {
	return &gatehouse.ResourceID{Subscription: subID, ResourceGroup: rg}
}

func listDeletedAccounts(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	all, err := c.api.opts.Accounts.ListDeleted(c.ctx(), s.ID)
	if err != nil {
		return err
	}
	out := list[deletedAccountJSON]{Value: []deletedAccountJSON{}}
	for _, a := range all {
		if c.can(actDeletedAccountRead, groupScope(s.ID, a.ResourceGroup)) {
			out.Value = append(out.Value, deletedAccountView(a))
		}
	}
	return c.reply(http.StatusOK, out)
}

// deletedAccountCall authorizes action at the path's resource group and
// returns the account id the path names.
func (c *call) deletedAccountCall(action string) (*gatehouse.ResourceID, error) {
	if _, err := c.subscription(); err != nil {
		return nil, err
	}
	if err := c.authorize(action, c.groupID()); err != nil {
		return nil, err
	}
	id, err := c.accountID()
	if err != nil {
		return nil, err
	}
	return id, nil
}

func getDeletedAccount(c *call) error {
	id, err := c.deletedAccountCall(actDeletedAccountRead)
	if err != nil {
		return err
	}
	a, err := c.api.opts.Accounts.GetDeleted(c.ctx(), id, c.param("loc"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, deletedAccountView(a))
}

// purgeDeletedAccount: 200 once purged (azcore's poller is done), 404
// when there is no such deleted account.
func purgeDeletedAccount(c *call) error {
	id, err := c.deletedAccountCall(actDeletedAccountDelete)
	if err != nil {
		return err
	}
	// The role assignments at the account go first (accounts.Options.OnPurge).
	if err := c.api.opts.Accounts.Purge(c.ctx(), id, c.param("loc")); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}
