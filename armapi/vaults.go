package armapi

// Microsoft.KeyVault/vaults (armkeyvault, az 2.45 `az keyvault`). This
// file is the key vault engineer's addition to the package; the service
// is vault.Service (Options.Vaults; nil: these routes answer 404).
//
//	GET    {sub | sub/resourceGroups/{rg}}/providers/Microsoft.KeyVault/vaults
//	GET|PUT|PATCH|DELETE  …/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}
//	GET    /subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults
//	GET    /subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}
//	POST   /subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}/purge
//
// Vaults always use Azure RBAC (enableRbacAuthorization true): access
// policies — in a PUT or PATCH, or through …/accessPolicies/{add|replace|
// remove} (vaultsecrets.go) — are refused with a 400 that says so, and
// shown as []. A PUT with properties.createMode "recover" recovers a
// soft-deleted vault.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/vault"
)

const (
	actVaultRead          = "Microsoft.KeyVault/vaults/read"
	actVaultWrite         = "Microsoft.KeyVault/vaults/write"
	actVaultDelete        = "Microsoft.KeyVault/vaults/delete"
	actDeletedVaultRead   = "Microsoft.KeyVault/deletedVaults/read"
	actDeletedVaultPurge  = "Microsoft.KeyVault/locations/deletedVaults/purge/action"
	actVaultNameCheck     = "Microsoft.KeyVault/checkNameAvailability/read"
	vaultsP               = "/providers/Microsoft.KeyVault/vaults"
	vaultP                = group + vaultsP + "/{name}"
	deletedVaultsP        = sub + "/providers/Microsoft.KeyVault/deletedVaults"
	deletedVaultP         = sub + "/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}"
	deletedVaultType      = "Microsoft.KeyVault/deletedVaults"
	keyVaultResourceTypes = "vaults"
)

// vaultRoutes are added to routes (routes.go).
var vaultRoutes = []route{
	{method: "GET", pattern: sub + vaultsP, family: famKeyVault, handle: listVaults},
	{method: "GET", pattern: group + vaultsP, family: famKeyVault, handle: listVaults},
	{method: "GET", pattern: vaultP, family: famKeyVault, handle: getVault},
	{method: "PUT", pattern: vaultP, family: famKeyVault, audit: true, handle: putVault},
	{method: "PATCH", pattern: vaultP, family: famKeyVault, audit: true, handle: patchVault},
	{method: "DELETE", pattern: vaultP, family: famKeyVault, audit: true, handle: deleteVault},
	{method: "GET", pattern: deletedVaultsP, family: famKeyVault, handle: listDeletedVaults},
	{method: "GET", pattern: deletedVaultP, family: famKeyVault, handle: getDeletedVault},
	{method: "POST", pattern: deletedVaultP + "/purge", family: famKeyVault, audit: true, handle: purgeDeletedVault},
	{method: "POST", pattern: sub + "/providers/Microsoft.KeyVault/checkNameAvailability", family: famKeyVault, handle: checkVaultName},
}

type vaultJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData systemDataJSON    `json:"systemData"`
	Properties vaultPropsJSON    `json:"properties"`
}

type vaultPropsJSON struct {
	TenantID                     string        `json:"tenantId"`
	SKU                          vault.SKU     `json:"sku"`
	AccessPolicies               []struct{}    `json:"accessPolicies"`
	VaultURI                     string        `json:"vaultUri"`
	EnabledForDeployment         bool          `json:"enabledForDeployment"`
	EnabledForDiskEncryption     bool          `json:"enabledForDiskEncryption"`
	EnabledForTemplateDeployment bool          `json:"enabledForTemplateDeployment"`
	EnableSoftDelete             bool          `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays    int           `json:"softDeleteRetentionInDays"`
	EnableRbacAuthorization      bool          `json:"enableRbacAuthorization"`
	EnablePurgeProtection        *bool         `json:"enablePurgeProtection,omitempty"`
	PublicNetworkAccess          string        `json:"publicNetworkAccess"`
	NetworkACLs                  *netacl.Rules `json:"networkAcls,omitempty"`
	ProvisioningState            string        `json:"provisioningState"`
}

func vaultView(v *vault.Vault) vaultJSON {
	out := vaultJSON{ID: v.ID, Name: v.Name, Type: vault.Type, Location: v.Location, Tags: v.Tags,
		SystemData: systemDataJSON{
			CreatedAt: armTime(v.CreatedAt), CreatedBy: v.CreatedBy.ObjectID, CreatedByType: v.CreatedBy.Type,
			LastModifiedAt: armTime(v.UpdatedAt), LastModifiedBy: v.UpdatedBy.ObjectID, LastModifiedByType: v.UpdatedBy.Type,
		},
		Properties: vaultPropsJSON{TenantID: v.TenantID, SKU: v.SKU, AccessPolicies: []struct{}{}, VaultURI: v.URI,
			EnableSoftDelete: v.EnableSoftDelete, SoftDeleteRetentionInDays: v.RetentionDays,
			EnableRbacAuthorization: true, PublicNetworkAccess: v.PublicNetworkAccess, NetworkACLs: v.NetworkACLs,
			ProvisioningState: "Succeeded"}}
	if v.EnablePurgeProtection {
		out.Properties.EnablePurgeProtection = &v.EnablePurgeProtection
	}
	return out
}

// vaultBody is a PUT or PATCH body (VaultCreateOrUpdateParameters,
// VaultPatchParameters).
type vaultBody struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		TenantID                  string        `json:"tenantId"`
		SKU                       *vault.SKU    `json:"sku"`
		EnableSoftDelete          *bool         `json:"enableSoftDelete"`
		SoftDeleteRetentionInDays *int          `json:"softDeleteRetentionInDays"`
		EnablePurgeProtection     *bool         `json:"enablePurgeProtection"`
		EnableRbacAuthorization   *bool         `json:"enableRbacAuthorization"`
		PublicNetworkAccess       *string       `json:"publicNetworkAccess"`
		NetworkACLs               *netacl.Rules `json:"networkAcls"`
		CreateMode                string        `json:"createMode"`
		// Refused when not empty (errAccessPolicies).
		AccessPolicies []json.RawMessage `json:"accessPolicies"`
		// Refused when true (vault.Spec.EnabledFor).
		EnabledForDeployment         *bool `json:"enabledForDeployment"`
		EnabledForDiskEncryption     *bool `json:"enabledForDiskEncryption"`
		EnabledForTemplateDeployment *bool `json:"enabledForTemplateDeployment"`
	} `json:"properties"`
}

// errAccessPolicies refuses access policies, wherever they are sent: the
// 400 BadRequest a vault with enableRbacAuthorization false gets, since
// access policies are the model that setting chooses.
func errAccessPolicies(target string) error {
	return gatehouse.BadRequestf(gatehouse.CodeBadRequest,
		"Gatehouse vaults use Azure role-based access control only: access policies are not supported (grant a Key Vault role, such as Key Vault Secrets User, at the vault or at one secret instead).").WithTarget(target)
}

// check refuses what the body asks for that Gatehouse does not do and
// the vault service does not see.
func (b *vaultBody) check() error {
	if b.Properties != nil && len(b.Properties.AccessPolicies) > 0 {
		return errAccessPolicies("properties.accessPolicies")
	}
	return nil
}

func (b *vaultBody) spec(p gatehouse.Principal) vault.Spec {
	s := vault.Spec{Location: b.Location, Tags: b.Tags}
	if pr := b.Properties; pr != nil {
		s.TenantID, s.SKU, s.EnableSoftDelete, s.RetentionDays = pr.TenantID, pr.SKU, pr.EnableSoftDelete, pr.SoftDeleteRetentionInDays
		s.EnablePurgeProtection, s.EnableRbacAuthorization = pr.EnablePurgeProtection, pr.EnableRbacAuthorization
		s.PublicNetworkAccess, s.NetworkACLs, s.CreateMode = pr.PublicNetworkAccess, pr.NetworkACLs, pr.CreateMode
		s.EnabledFor = map[string]*bool{"enabledForDeployment": pr.EnabledForDeployment,
			"enabledForDiskEncryption": pr.EnabledForDiskEncryption, "enabledForTemplateDeployment": pr.EnabledForTemplateDeployment}
	}
	s.CallerTenantID = p.TenantID
	return s
}

func (c *call) vaultActor() vault.Actor {
	return vault.Actor{ObjectID: c.principal.ObjectID, Type: actorType(c.principal)}
}

// vaultCall is the common prologue: the service exists, subscription,
// authorization at the vault, resource group, name.
func (c *call) vaultCall(action string) (*gatehouse.ResourceID, error) {
	return c.vaultCallAt(action, nil)
}

// vaultCallAt is vaultCall authorizing action at within(vault id) — a
// child of the vault, such as one secret — when within is not nil.
func (c *call) vaultCallAt(action string, within func(*gatehouse.ResourceID) *gatehouse.ResourceID) (*gatehouse.ResourceID, error) {
	if c.api.opts.Vaults == nil {
		return nil, errNoRoute(c.r.URL.Path)
	}
	if _, err := c.subscription(); err != nil {
		return nil, err
	}
	id := &gatehouse.ResourceID{Subscription: strings.ToLower(c.param("sub")), ResourceGroup: c.param("rg"),
		Namespace: vault.Namespace, Types: []string{keyVaultResourceTypes}, Names: []string{c.param("name")}}
	target := id
	if within != nil {
		target = within(id)
	}
	if err := c.authorize(action, target); err != nil {
		return nil, err
	}
	if _, err := c.group(); err != nil {
		return nil, err
	}
	return id, vault.ValidateVaultName(c.param("name"))
}

func listVaults(c *call) error {
	if c.api.opts.Vaults == nil {
		return errNoRoute(c.r.URL.Path)
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
	all, err := c.api.opts.Vaults.ListVaults(c.ctx(), scope)
	if err != nil {
		return err
	}
	var readable []*vault.Vault
	for _, v := range all {
		if c.can(actVaultRead, v.Scope()) {
			readable = append(readable, v)
		}
	}
	// Vaults_ListBySubscription and _ListByResourceGroup take $top.
	page, next, err := pageOf(c, readable, func(v *vault.Vault) string { return v.Name })
	if err != nil {
		return err
	}
	out := list[vaultJSON]{Value: []vaultJSON{}, NextLink: next}
	for _, v := range page {
		out.Value = append(out.Value, vaultView(v))
	}
	return c.reply(http.StatusOK, out)
}

func getVault(c *call) error {
	id, err := c.vaultCall(actVaultRead)
	if err != nil {
		return err
	}
	v, err := c.api.opts.Vaults.GetVault(c.ctx(), id)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, vaultView(v))
}

// PUT completes synchronously: 201 (created) or 200 (updated, recovered).
func putVault(c *call) error {
	id, err := c.vaultCall(actVaultWrite)
	if err != nil {
		return err
	}
	var body vaultBody
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := body.check(); err != nil {
		return err
	}
	if err := c.knownTenant(body); err != nil {
		return err
	}
	v, created, err := c.api.opts.Vaults.PutVault(c.ctx(), id, body.spec(c.principal), c.vaultActor())
	if err != nil {
		return err
	}
	c.vaultDetails(v)
	return c.put(created, vaultView(v))
}

// knownTenant refuses a tenantId that is not one of the directory's: the
// vault's data plane would take tokens of that tenant only, so nobody could
// ever use it.
func (c *call) knownTenant(body vaultBody) error {
	if body.Properties == nil || body.Properties.TenantID == "" {
		return nil
	}
	tenants := c.api.opts.Tenants()
	if len(tenants) == 0 || slices.ContainsFunc(tenants, func(t Tenant) bool { return strings.EqualFold(t.ID, body.Properties.TenantID) }) {
		return nil
	}
	return gatehouse.BadRequestf(gatehouse.CodeBadRequest,
		"The tenant '%s' is not a tenant of this directory: a vault's tenantId names the tenant whose tokens its data plane accepts.",
		clip(body.Properties.TenantID)).WithTarget("properties.tenantId")
}

func patchVault(c *call) error {
	id, err := c.vaultCall(actVaultWrite)
	if err != nil {
		return err
	}
	var body vaultBody
	if err := c.decode(&body); err != nil {
		return err
	}
	if err := body.check(); err != nil {
		return err
	}
	spec := body.spec(gatehouse.Principal{})
	v, err := c.api.opts.Vaults.PatchVault(c.ctx(), id, spec, c.vaultActor())
	if err != nil {
		return err
	}
	c.vaultDetails(v)
	return c.reply(http.StatusOK, vaultView(v))
}

func (c *call) vaultDetails(v *vault.Vault) {
	c.detail("name", v.Name)
	c.detail("sku", v.SKU.Name)
	c.detail("location", v.Location)
}

// DELETE: 200 when deleted (soft-deleted when the vault has soft delete),
// 204 when there was nothing. Role assignments at the vault stay while it
// can be recovered, as in Azure; the vault service removes them when it
// purges the vault (vault.Options.OnVaultPurged).
func deleteVault(c *call) error {
	id, err := c.vaultCall(actVaultDelete)
	if err != nil {
		return err
	}
	existed, err := c.api.opts.Vaults.DeleteVault(c.ctx(), id)
	if err != nil {
		return err
	}
	if !existed {
		c.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	c.detail("name", id.Name())
	c.w.WriteHeader(http.StatusOK)
	return nil
}

type deletedVaultJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		VaultID                string            `json:"vaultId"`
		Location               string            `json:"location"`
		DeletionDate           string            `json:"deletionDate"`
		ScheduledPurgeDate     string            `json:"scheduledPurgeDate"`
		Tags                   map[string]string `json:"tags"`
		PurgeProtectionEnabled bool              `json:"purgeProtectionEnabled"`
	} `json:"properties"`
}

func deletedVaultView(v *vault.Vault) deletedVaultJSON {
	out := deletedVaultJSON{ID: "/subscriptions/" + v.Subscription + "/providers/Microsoft.KeyVault/locations/" + v.Location +
		"/deletedVaults/" + v.Name, Name: v.Name, Type: deletedVaultType}
	p := &out.Properties
	p.VaultID, p.Location, p.Tags, p.PurgeProtectionEnabled = v.ID, v.Location, v.Tags, v.EnablePurgeProtection
	p.DeletionDate, p.ScheduledPurgeDate = armTime(v.DeletedAt), armTime(v.ScheduledPurge)
	return out
}

// deletedVaultCall authorizes an operation on deleted vaults at the
// subscription (a deleted vault's own scope is gone from ARM's view).
func (c *call) deletedVaultCall(action string) error {
	if c.api.opts.Vaults == nil {
		return errNoRoute(c.r.URL.Path)
	}
	s, err := c.subscription()
	if err != nil {
		return err
	}
	return c.authorize(action, &gatehouse.ResourceID{Subscription: s.ID})
}

func listDeletedVaults(c *call) error {
	if err := c.deletedVaultCall(actDeletedVaultRead); err != nil {
		return err
	}
	all, err := c.api.opts.Vaults.DeletedVaults(c.ctx(), strings.ToLower(c.param("sub")))
	if err != nil {
		return err
	}
	out := list[deletedVaultJSON]{Value: []deletedVaultJSON{}}
	for _, v := range all {
		out.Value = append(out.Value, deletedVaultView(v))
	}
	return c.reply(http.StatusOK, out)
}

func getDeletedVault(c *call) error {
	if err := c.deletedVaultCall(actDeletedVaultRead); err != nil {
		return err
	}
	v, err := c.api.opts.Vaults.GetDeletedVault(c.ctx(), strings.ToLower(c.param("sub")), c.param("loc"), c.param("name"))
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, deletedVaultView(v))
}

// POST …/purge: done synchronously (200), with the vault's secrets and the
// role assignments at it (OnVaultPurged).
func purgeDeletedVault(c *call) error {
	if err := c.deletedVaultCall(actDeletedVaultPurge); err != nil {
		return err
	}
	v, err := c.api.opts.Vaults.GetDeletedVault(c.ctx(), strings.ToLower(c.param("sub")), c.param("loc"), c.param("name"))
	if err != nil {
		return err
	}
	if err := c.api.opts.Vaults.PurgeDeletedVault(c.ctx(), v.Subscription, v.Location, v.Name); err != nil {
		return err
	}
	c.detail("name", v.Name)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// POST {sub}/providers/Microsoft.KeyVault/checkNameAvailability
// {"name", "type": "Microsoft.KeyVault/vaults"} → {"nameAvailable",
// "reason", "message"} (armkeyvault's VaultsClient.CheckNameAvailability).
func checkVaultName(c *call) error {
	if c.api.opts.Vaults == nil {
		return errNoRoute(c.r.URL.Path)
	}
	if err := c.checkCall(actVaultNameCheck); err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if !strings.EqualFold(body.Type, vault.Type) {
		return gatehouse.BadRequestf("InvalidResourceType", "The type '%s' is not valid: use %s.", clip(body.Type), vault.Type).WithTarget("type")
	}
	ok, reason, msg, err := c.api.opts.Vaults.NameAvailable(c.ctx(), body.Name)
	if err != nil {
		return err
	}
	out := struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason,omitempty"`
		Message       string `json:"message,omitempty"`
	}{ok, reason, msg}
	return c.reply(http.StatusOK, out)
}
