package vault

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

// Vault states.
const (
	StateActive = ""
	// StateDeleted: soft-deleted; the name stays reserved until the vault
	// is recovered or purged (by request, or by the purge loop once
	// ScheduledPurge has passed).
	StateDeleted = "deleted"
	// StatePurging: a purge started; the purge loop finishes it after a
	// crash.
	StatePurging = "purging"
)

// SKU is the vault's pricing tier (kept, not enforced).
type SKU struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

// Actor is who changed a vault, for systemData.
type Actor struct {
	ObjectID string `json:"objectId,omitempty"`
	Type     string `json:"type,omitempty"`
}

// Vault is a vault as services and the APIs see it. Values returned by the
// service are shared snapshots: treat them as read-only.
type Vault struct {
	ID            string
	Name          string
	Subscription  string
	ResourceGroup string
	Location      string
	Tags          map[string]string
	SKU           SKU
	TenantID      string
	// DataPlaneName is the lower-cased name: the host label of
	// {name}.vault.H, unique across the installation.
	DataPlaneName string
	// URI is the data-plane URL, https://{name}.vault.H/.
	URI string
	// InternalID identifies this instance of the vault: secrets belong to
	// it, so a vault purged and created again starts empty.
	InternalID              string
	EnableSoftDelete        bool
	RetentionDays           int
	EnablePurgeProtection   bool
	EnableRbacAuthorization bool
	PublicNetworkAccess     string
	// NetworkACLs are the vault's network rules (nil: none); Network is
	// them compiled with PublicNetworkAccess (nil: every address allowed).
	NetworkACLs          *netacl.Rules
	Network              *netacl.Policy
	State                string
	DeletedAt            time.Time
	ScheduledPurge       time.Time
	CreatedAt, UpdatedAt time.Time
	CreatedBy, UpdatedBy Actor
	Revision             int64

	scope *gatehouse.ResourceID
}

// Scope returns the vault's ARM id, parsed once: the RBAC scope of its
// data plane. Do not modify it.
func (v *Vault) Scope() *gatehouse.ResourceID { return v.scope }

// RecoveryLevel is the recoveryLevel attribute of the vault's secrets.
func (v *Vault) RecoveryLevel() string {
	if !v.EnableSoftDelete {
		return "Purgeable"
	}
	level := "Recoverable"
	if v.RetentionDays < MaxRetentionDays {
		level = "CustomizedRecoverable"
	}
	if v.EnablePurgeProtection {
		return level
	}
	return level + "+Purgeable"
}

// RecoverableDays is the recoverableDays attribute (0 without soft delete).
func (v *Vault) RecoverableDays() int {
	if !v.EnableSoftDelete {
		return 0
	}
	return v.RetentionDays
}

type vaultRecord struct {
	ID                    string            `json:"id"`
	Subscription          string            `json:"subscription"`
	ResourceGroup         string            `json:"resourceGroup"`
	Name                  string            `json:"name"`
	Location              string            `json:"location"`
	Tags                  map[string]string `json:"tags,omitempty"`
	SKU                   SKU               `json:"sku"`
	TenantID              string            `json:"tenantId"`
	InternalID            string            `json:"internalId"`
	EnableSoftDelete      bool              `json:"enableSoftDelete"`
	RetentionDays         int               `json:"retentionDays"`
	EnablePurgeProtection bool              `json:"enablePurgeProtection,omitempty"`
	PublicNetworkAccess   string            `json:"publicNetworkAccess"`
	NetworkACLs           *netacl.Rules     `json:"networkAcls,omitempty"`
	State                 string            `json:"state,omitempty"`
	DeletedAt             time.Time         `json:"deletedAt,omitzero"`
	ScheduledPurge        time.Time         `json:"scheduledPurge,omitzero"`
	CreatedAt             time.Time         `json:"createdAt"`
	UpdatedAt             time.Time         `json:"updatedAt"`
	CreatedBy             Actor             `json:"createdBy"`
	UpdatedBy             Actor             `json:"updatedBy"`
}

func (r *vaultRecord) view(rev int64, uri func(string) string) *Vault {
	dp := lower(r.Name)
	v := &Vault{ID: r.ID, Name: r.Name, Subscription: r.Subscription, ResourceGroup: r.ResourceGroup,
		Location: r.Location, Tags: maps.Clone(r.Tags), SKU: r.SKU, TenantID: r.TenantID, DataPlaneName: dp,
		URI: uri(dp), InternalID: r.InternalID, EnableSoftDelete: r.EnableSoftDelete, RetentionDays: r.RetentionDays,
		EnablePurgeProtection: r.EnablePurgeProtection, EnableRbacAuthorization: true,
		PublicNetworkAccess: r.PublicNetworkAccess, NetworkACLs: r.NetworkACLs.Clone(), State: r.State, DeletedAt: r.DeletedAt,
		ScheduledPurge: r.ScheduledPurge, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy, Revision: rev}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	v.Network = netacl.Compile(v.PublicNetworkAccess, v.NetworkACLs)
	v.scope, _ = gatehouse.ParseResourceID(r.ID)
	if v.scope == nil {
		v.scope = &gatehouse.ResourceID{}
	}
	return v
}

// Spec is what a PUT or PATCH asks for. Nil fields were not given: a PUT
// gives them their defaults (or keeps the current value), a PATCH leaves
// them alone.
type Spec struct {
	Location string
	Tags     map[string]string
	SKU      *SKU
	// TenantID is properties.tenantId: required to create a vault (see
	// CallerTenantID); a vault's tenant never changes.
	TenantID string
	// CallerTenantID is the tenant a new vault gets when TenantID is empty
	// (Azure requires the property; the SDKs and az always send it).
	CallerTenantID string
	// EnableSoftDelete false is taken as true on a create, as Azure has done
	// since soft delete became mandatory, and refused on an update.
	EnableSoftDelete        *bool
	RetentionDays           *int
	EnablePurgeProtection   *bool
	EnableRbacAuthorization *bool
	PublicNetworkAccess     *string
	// NetworkACLs replaces the vault's network rules when not nil.
	NetworkACLs *netacl.Rules
	// CreateMode "recover" recovers a soft-deleted vault; "" or "default"
	// creates or updates.
	CreateMode string
	// EnabledFor are properties.enabledForDeployment,
	// enabledForDiskEncryption and enabledForTemplateDeployment: Azure
	// lets its own platforms (VMs, disk encryption, template
	// deployments) read the secrets. There are none here, so only false
	// (or absent) is taken.
	EnabledFor map[string]*bool
}

// ParseID parses a vault's ARM id; ok is false for anything else.
func ParseID(s string) (*gatehouse.ResourceID, bool) {
	id, err := gatehouse.ParseResourceID(s)
	if err != nil || id.Scope != nil || id.ResourceGroup == "" || !strings.EqualFold(id.Type(), Type) {
		return nil, false
	}
	return id, true
}

// GetVault returns the live vault id, read from storage.
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) GetVault(ctx context.Context, id *gatehouse.ResourceID) (*Vault, error) {
	rec, err := s.vaults.Get(ctx, id.Key())
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Value.State != StateActive {
		return nil, errVaultNotFound(id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return rec.Value.view(rec.Revision, s.opts.VaultURI), nil
}

// ListVaults returns the live vaults in scope (a subscription or a group),
// ordered by id.
func (s *Service) ListVaults(ctx context.Context, scope *gatehouse.ResourceID) ([]*Vault, error) {
	return s.listState(ctx, scope, StateActive)
}

// DeletedVaults returns the soft-deleted vaults of a subscription.
func (s *Service) DeletedVaults(ctx context.Context, sub string) ([]*Vault, error) {
	return s.listState(ctx, &gatehouse.ResourceID{Subscription: sub}, StateDeleted)
}

func (s *Service) listState(ctx context.Context, scope *gatehouse.ResourceID, state string) ([]*Vault, error) {
	recs, err := s.vaults.Collect(ctx, storage.ListOptions{Prefix: scope.Key() + "/"})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Vault, 0, len(recs))
	for _, r := range recs {
		if r.Value.State == state {
			out = append(out, r.Value.view(r.Revision, s.opts.VaultURI))
		}
	}
	return out, nil
}

// PutVault creates the vault id, replaces its settable state, or — with
// CreateMode "recover" — recovers it from soft delete (ARM PUT). Settings a
// PUT leaves out keep their current value. Soft delete and purge
// protection cannot be turned off once on, and the retention period cannot
// change after creation (as in Azure). The caller checks that the
// resource group exists.
//
// Errors (*gatehouse.Error): 400 VaultNameNotValid, LocationRequired,
// InvalidLocation, InvalidTag, BadRequest (sku, tenantId, retention, RBAC,
// createMode, immutable settings); 404 ResourceNotFound (recover without a
// deleted vault); 409 VaultAlreadyExists, ConflictError (a deleted vault
// holds the name); 503.
func (s *Service) PutVault(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Vault, bool, error) {
	if err := ValidateVaultName(id.Name()); err != nil {
		return nil, false, err
	}
	mode := strings.ToLower(spec.CreateMode)
	if mode != "" && mode != "default" && mode != "recover" {
		return nil, false, badRequest("properties.createMode", "The createMode '%s' is not valid: use default or recover.", clip(spec.CreateMode))
	}
	// A recovery brings the deleted vault back as it was: the body's other
	// settings are not applied, so they are not judged either, as in
	// Azure (the Python SDK's VaultProperties, for one, always sends its
	// defaults, enableRbacAuthorization false among them).
	validated := false
	validate := func() error {
		if validated {
			return nil
		}
		loc, err := resources.NormalizeLocation(spec.Location)
		if err != nil {
			return err
		}
		spec.Location = loc
		if err := validateSpec(&spec); err != nil {
			return err
		}
		validated = true
		return nil
	}
	for attempt := 0; ; attempt++ {
		rec, err := s.vaults.Get(ctx, id.Key())
		switch {
		case err == nil && rec.Value.State == StateDeleted && mode == "recover":
			v, err := s.recoverVault(ctx, id, by)
			return v, false, err
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return nil, false, unavailable(err)
		case err != nil && mode == "recover":
			return nil, false, gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
				"No deleted vault named '%s' was found in this resource group to recover.", clip(id.Name()))
		}
		if verr := validate(); verr != nil {
			return nil, false, verr
		}
		switch {
		case err == nil && rec.Value.State != StateActive:
			return nil, false, errDeletedVaultHoldsName(id.Name())
		case err == nil:
			v, err := s.updateVault(ctx, id, spec, by)
			return v, false, err
		}
		// A new vault goes only where the server's locations list says
		// (an existing one keeps its location: it cannot change).
		if _, err := resources.ResourceLocation(spec.Location, "Microsoft.KeyVault/vaults"); err != nil {
			return nil, false, err
		}
		v, err := s.createVault(ctx, id, spec, by)
		if errors.Is(err, errRaced) && attempt == 0 {
			continue // created meanwhile by another request: update it
		}
		return v, err == nil, err
	}
}

var errRaced = errors.New("vault: created concurrently")

func badRequest(target, format string, args ...any) error {
	return gatehouse.BadRequestf(gatehouse.CodeBadRequest, format, args...).WithTarget(target)
}

// NameAvailable answers Key Vault's checkNameAvailability: whether a new
// vault may take name, and why not ("AccountNameInvalid", or
// "AlreadyExists" for a name a vault — live or deleted and not yet purged
// — holds; vault names are unique across the installation).
func (s *Service) NameAvailable(ctx context.Context, name string) (ok bool, reason, message string, err error) {
	if verr := ValidateVaultName(name); verr != nil {
		msg := verr.Error()
		if e, isGH := gatehouse.AsError(verr); isGH {
			msg = e.Message
		}
		return false, "AccountNameInvalid", msg, nil
	}
	holder, gerr := s.vaults.GetByAlt(ctx, lower(name))
	switch {
	case errors.Is(gerr, storage.ErrNotFound):
		return true, "", "", nil
	case gerr != nil:
		return false, "", "", unavailable(gerr)
	case holder.Value.State != StateActive:
		return false, "AlreadyExists", "The vault name '" + clip(name) + "' is already in use by a vault in deleted state: recover or purge it first.", nil
	}
	return false, "AlreadyExists", "The vault name '" + clip(name) + "' is already in use. Vault names are globally unique so it is possible that the name is already taken.", nil
}

func errDeletedVaultHoldsName(name string) error {
	return gatehouse.Errorf(http.StatusConflict, "ConflictError",
		"A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault. Vault name: '%s'.", clip(name))
}

func validateSpec(spec *Spec) error {
	if err := resources.ValidateTags(spec.Tags); err != nil {
		return err
	}
	if spec.SKU != nil {
		switch strings.ToLower(spec.SKU.Name) {
		case "standard":
			spec.SKU.Name = "standard"
		case "premium":
			spec.SKU.Name = "premium"
		default:
			return badRequest("properties.sku.name", "The sku name '%s' is not valid: use standard or premium.", clip(spec.SKU.Name))
		}
		if spec.SKU.Family == "" || strings.EqualFold(spec.SKU.Family, "A") {
			spec.SKU.Family = "A"
		} else {
			return badRequest("properties.sku.family", "The sku family '%s' is not valid: use A.", clip(spec.SKU.Family))
		}
	}
	if spec.TenantID != "" {
		t, ok := gatehouse.NormalizeGUID(spec.TenantID)
		if !ok {
			return badRequest("properties.tenantId", "The tenantId '%s' is not a GUID.", clip(spec.TenantID))
		}
		spec.TenantID = t
	}
	if d := spec.RetentionDays; d != nil && (*d < MinRetentionDays || *d > MaxRetentionDays) {
		return badRequest("properties.softDeleteRetentionInDays",
			"The 'softDeleteRetentionInDays' property must be between %d and %d.", MinRetentionDays, MaxRetentionDays)
	}
	for _, name := range []string{"enabledForDeployment", "enabledForDiskEncryption", "enabledForTemplateDeployment"} {
		if on := spec.EnabledFor[name]; on != nil && *on {
			return badRequest("properties."+name,
				"Gatehouse has no Azure platform to let read a vault's secrets: %s must be false (grant an identity a Key Vault role instead).", name)
		}
	}
	if r := spec.EnableRbacAuthorization; r != nil && !*r {
		return badRequest("properties.enableRbacAuthorization",
			"Gatehouse vaults use Azure role-based access control only: enableRbacAuthorization must be true (access policies are not supported).")
	}
	if p := spec.PublicNetworkAccess; p != nil {
		switch strings.ToLower(*p) {
		case "enabled":
			*p = "Enabled"
		case "disabled":
			*p = "Disabled"
		default:
			return badRequest("properties.publicNetworkAccess", "The publicNetworkAccess '%s' is not valid: use Enabled or Disabled.", clip(*p))
		}
	}
	if n := spec.NetworkACLs; n != nil {
		v, err := netacl.Normalize(*n, gatehouse.CodeBadRequest, "properties.networkAcls")
		if err != nil {
			return err
		}
		*n = v
	}
	// Azure's own words: templates that send false fail there, so they
	// fail here first.
	if pp := spec.EnablePurgeProtection; pp != nil && !*pp {
		return badRequest("properties.enablePurgeProtection",
			`The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.`)
	}
	return nil
}

func (s *Service) createVault(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Vault, error) {
	if spec.TenantID == "" {
		spec.TenantID = spec.CallerTenantID
	}
	if spec.TenantID == "" {
		return nil, badRequest("properties.tenantId", "properties.tenantId is required.")
	}
	inst, err := s.newID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := vaultRecord{ID: id.String(), Subscription: lower(id.Subscription), ResourceGroup: id.ResourceGroup,
		Name: id.Name(), Location: spec.Location, Tags: maps.Clone(spec.Tags), SKU: SKU{Family: "A", Name: "standard"},
		TenantID: spec.TenantID, InternalID: inst, EnableSoftDelete: true, RetentionDays: DefaultRetentionDays,
		PublicNetworkAccess: "Enabled", CreatedAt: now, UpdatedAt: now, CreatedBy: by, UpdatedBy: by}
	if spec.SKU != nil {
		r.SKU = *spec.SKU
	}
	// Soft delete is always on (EnableSoftDelete false included): a vault
	// deleted without it would be gone with its secrets at once.
	if spec.RetentionDays != nil {
		r.RetentionDays = *spec.RetentionDays
	}
	if spec.EnablePurgeProtection != nil {
		r.EnablePurgeProtection = *spec.EnablePurgeProtection
	}
	if spec.PublicNetworkAccess != nil {
		r.PublicNetworkAccess = *spec.PublicNetworkAccess
	}
	r.NetworkACLs = spec.NetworkACLs
	rec, err := s.vaults.Create(ctx, &storage.Record[vaultRecord]{Key: id.Key(), Alt: lower(id.Name()), Ref: r.Subscription, Value: r})
	if errors.Is(err, storage.ErrAlreadyExists) {
		if _, gerr := s.vaults.Get(ctx, id.Key()); gerr == nil {
			return nil, errRaced
		}
		if holder, gerr := s.vaults.GetByAlt(ctx, lower(id.Name())); gerr == nil && holder.Value.State != StateActive {
			return nil, errDeletedVaultHoldsName(id.Name())
		}
		return nil, gatehouse.Errorf(http.StatusConflict, "VaultAlreadyExists",
			"The vault name '%s' is already in use. Vault names are globally unique so it is possible that the name is already taken.", clip(id.Name()))
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return rec.Value.view(rec.Revision, s.opts.VaultURI), nil
}

// PatchVault changes what spec gives and leaves the rest (ARM PATCH).
//
// Errors: as PutVault; 404 ResourceNotFound.
func (s *Service) PatchVault(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Vault, error) {
	if spec.Location != "" {
		loc, err := resources.NormalizeLocation(spec.Location)
		if err != nil {
			return nil, err
		}
		spec.Location = loc
	}
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	return s.updateVault(ctx, id, spec, by)
}

func (s *Service) updateVault(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Vault, error) {
	rec, err := s.vaults.Update(ctx, id.Key(), func(r *storage.Record[vaultRecord]) error {
		v := &r.Value
		if v.State != StateActive {
			return errVaultNotFound(id)
		}
		if spec.Location != "" && spec.Location != v.Location {
			return gatehouse.Errorf(http.StatusConflict, "InvalidResourceLocation",
				"The resource '%s' already exists in location '%s'. A resource with the same name cannot be created in location '%s'.",
				clip(id.Name()), v.Location, spec.Location)
		}
		if spec.TenantID != "" && spec.TenantID != v.TenantID {
			return badRequest("properties.tenantId", "The tenantId of a vault cannot be changed.")
		}
		if spec.Tags != nil {
			v.Tags = maps.Clone(spec.Tags)
		}
		if spec.SKU != nil {
			v.SKU = *spec.SKU
		}
		if sd := spec.EnableSoftDelete; sd != nil {
			if v.EnableSoftDelete && !*sd {
				return badRequest("properties.enableSoftDelete",
					`The property "enableSoftDelete" cannot be set to false. Enabling the soft delete for a vault is an irreversible action.`)
			}
			v.EnableSoftDelete = *sd
		}
		if d := spec.RetentionDays; d != nil && *d != v.RetentionDays {
			return badRequest("properties.softDeleteRetentionInDays", "The soft delete retention period cannot be changed after the vault was created.")
		}
		if pp := spec.EnablePurgeProtection; pp != nil {
			if v.EnablePurgeProtection && !*pp {
				return badRequest("properties.enablePurgeProtection", "Purge protection cannot be disabled once it is enabled.")
			}
			v.EnablePurgeProtection = *pp
		}
		if v.EnablePurgeProtection && !v.EnableSoftDelete {
			return badRequest("properties.enablePurgeProtection", "Purge protection requires soft delete to be enabled.")
		}
		if spec.PublicNetworkAccess != nil {
			v.PublicNetworkAccess = *spec.PublicNetworkAccess
		}
		if spec.NetworkACLs != nil {
			v.NetworkACLs = spec.NetworkACLs
		}
		v.UpdatedAt, v.UpdatedBy = s.now(), by
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errVaultNotFound(id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return rec.Value.view(rec.Revision, s.opts.VaultURI), nil
}

// DeleteVault deletes the vault: soft-deletes it when soft delete is on
// (its secrets are kept, its name stays reserved until the scheduled purge
// date), purges it otherwise. existed is false when there was no live vault.
func (s *Service) DeleteVault(ctx context.Context, id *gatehouse.ResourceID) (existed bool, err error) {
	var soft bool
	rec, err := s.vaults.Update(ctx, id.Key(), func(r *storage.Record[vaultRecord]) error {
		v := &r.Value
		if v.State != StateActive {
			return storage.ErrNotFound
		}
		now := s.now()
		if soft = v.EnableSoftDelete; soft {
			v.State, v.DeletedAt = StateDeleted, now
			v.ScheduledPurge = now.Add(time.Duration(v.RetentionDays) * 24 * time.Hour)
		} else {
			v.State = StatePurging
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	if !soft {
		if err := s.finishVaultPurge(ctx, rec.Key, rec.Value.InternalID); err != nil {
			return true, err
		}
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return true, err
	}
	return true, nil
}

// DeleteVaultsWithin deletes every live vault in scope (a resource group
// being deleted) and returns their ids.
func (s *Service) DeleteVaultsWithin(ctx context.Context, scope *gatehouse.ResourceID) ([]string, error) {
	list, err := s.ListVaults(ctx, scope)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, v := range list {
		if _, err := s.DeleteVault(ctx, v.Scope()); err != nil {
			return ids, err
		}
		ids = append(ids, v.ID)
	}
	return ids, nil
}

func (s *Service) recoverVault(ctx context.Context, id *gatehouse.ResourceID, by Actor) (*Vault, error) {
	rec, err := s.vaults.Update(ctx, id.Key(), func(r *storage.Record[vaultRecord]) error {
		v := &r.Value
		if v.State != StateDeleted {
			return errDeletedVaultHoldsName(id.Name())
		}
		v.State, v.DeletedAt, v.ScheduledPurge = StateActive, time.Time{}, time.Time{}
		v.UpdatedAt, v.UpdatedBy = s.now(), by
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return rec.Value.view(rec.Revision, s.opts.VaultURI), nil
}

// GetDeletedVault returns the soft-deleted vault name of subscription sub
// in location (any case).
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) GetDeletedVault(ctx context.Context, sub, location, name string) (*Vault, error) {
	rec, err := s.vaults.GetByAlt(ctx, lower(name))
	notFound := gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource 'Microsoft.KeyVault/deletedVaults/%s' was not found in location '%s'.", clip(name), clip(location))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	v := &rec.Value
	if v.State != StateDeleted || !strings.EqualFold(v.Subscription, sub) || !strings.EqualFold(v.Location, location) {
		return nil, notFound
	}
	return v.view(rec.Revision, s.opts.VaultURI), nil
}

// PurgeDeletedVault purges a soft-deleted vault and every secret in it,
// now. Purge protection forbids it until the scheduled purge date.
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 409 ConflictError
// (purge protection); 503.
func (s *Service) PurgeDeletedVault(ctx context.Context, sub, location, name string) error {
	v, err := s.GetDeletedVault(ctx, sub, location, name)
	if err != nil {
		return err
	}
	return s.purgeVault(ctx, strings.ToLower(v.ID), false)
}

// purgeVault marks the vault purging (unless purge protection forbids it
// and force is false), then deletes its secrets, versions and itself.
func (s *Service) purgeVault(ctx context.Context, key string, force bool) error {
	rec, err := s.vaults.Update(ctx, key, func(r *storage.Record[vaultRecord]) error {
		v := &r.Value
		switch {
		case v.State == StateActive:
			return gatehouse.Errorf(http.StatusConflict, "ConflictError", "The vault '%s' is not deleted.", clip(v.Name))
		case v.State == StateDeleted && v.EnablePurgeProtection && !force:
			return gatehouse.Errorf(http.StatusConflict, "ConflictError",
				"Operation 'DeletedVaultPurge' is not allowed as purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.")
		}
		v.State = StatePurging
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable(err)
	}
	return s.finishVaultPurge(ctx, key, rec.Value.InternalID)
}

// finishVaultPurge deletes a purging vault's versions, then its secrets,
// then the vault record: a crash part-way leaves a purging vault that the
// purge loop finishes.
func (s *Service) finishVaultPurge(ctx context.Context, key, inst string) error {
	if err := s.deletePrefix(ctx, KindVersion, inst+"/"); err != nil {
		return err
	}
	if err := s.deletePrefix(ctx, KindSecret, inst+"/"); err != nil {
		return err
	}
	if err := s.vaults.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return unavailable(err)
	}
	s.invalidate("")
	if s.opts.OnVaultPurged != nil {
		if id, err := gatehouse.ParseResourceID(key); err == nil {
			return s.opts.OnVaultPurged(ctx, id)
		}
	}
	return nil
}

// deletePrefix deletes every object of kind whose key starts with prefix.
func (s *Service) deletePrefix(ctx context.Context, kind, prefix string) error {
	for {
		page, err := s.store.List(ctx, storage.ListOptions{Kind: kind, Prefix: prefix, Limit: storage.MaxPageSize})
		if err != nil {
			return unavailable(err)
		}
		for _, o := range page.Objects {
			if err := s.store.Delete(ctx, kind, o.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return unavailable(err)
			}
		}
		if page.Next == "" {
			return nil
		}
	}
}
