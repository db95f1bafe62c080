package accounts

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

// Get returns the account id (read from storage: management reads are
// authoritative).
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) Get(ctx context.Context, id *gatehouse.ResourceID) (*Account, error) {
	rec, err := s.accounts.Get(ctx, id.Key())
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Value.deleted() {
		return nil, errNotFound(id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return rec.Value.view(rec.Revision, s.opts.Endpoint), nil
}

// List returns the accounts in scope (a subscription or a resource group),
// ordered by id.
func (s *Service) List(ctx context.Context, scope *gatehouse.ResourceID) ([]*Account, error) {
	recs, err := s.accounts.Collect(ctx, storage.ListOptions{Prefix: scope.Key() + "/"})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Account, 0, len(recs))
	for _, r := range recs {
		if !r.Value.deleted() {
			out = append(out, r.Value.view(r.Revision, s.opts.Endpoint))
		}
	}
	return out, nil
}

// Put creates the account id or replaces its settable state (ARM PUT):
// settings the spec leaves out return to their defaults, except the
// custom subdomain (which cannot be removed once set), the identity
// (kept, so that a PUT without one cannot silently delete a system
// identity that roles were granted to) and the SKU, which a new account
// must be given (one of its kind's SKUs) and an existing one keeps. The
// location must be one of resources.Locations, or the one the account is
// already in. A new account gets two fresh keys at generation 1. The
// caller checks that the resource group exists.
//
// Errors (*gatehouse.Error): 400 InvalidResourceName, KindRequired,
// InvalidApiSetId (an unknown kind, as Azure names it), LocationRequired, InvalidLocation,
// LocationNotAvailableForResourceType, InvalidSkuId, InvalidTag,
// InvalidCustomSubDomainName, InvalidPublicNetworkAccess, InvalidNetworkAcls, InvalidRateLimits,
// InvalidIdentityType, InvalidUserAssignedIdentity,
// CustomSubDomainNameCannotBeChanged; 409 CustomDomainInUse,
// InvalidResourceLocation, KindCannotBeChanged; 503.
func (s *Service) Put(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Account, bool, error) {
	if err := ValidateName(id.Name()); err != nil {
		return nil, false, err
	}
	if spec.Restore {
		return s.recover(ctx, id, spec.Location, by)
	}
	kind, err := normalizeKind(spec.Kind)
	if err != nil {
		return nil, false, err
	}
	loc, err := spec.location()
	if err != nil {
		return nil, false, err
	}
	spec.Kind, spec.Location = kind, loc
	if spec.SKU != nil {
		if spec.SKU, err = resolveSKU(kind, spec.SKU); err != nil {
			return nil, false, err
		}
	}
	if spec.Tags == nil {
		spec.Tags = map[string]string{}
	}
	p := &spec.Properties
	if p.DisableLocalAuth == nil {
		p.DisableLocalAuth = new(bool)
	}
	if p.PublicNetworkAccess == nil {
		p.PublicNetworkAccess = ptr("Enabled")
	}
	if p.RateLimits == nil {
		p.RateLimits = &[]ThrottlingRule{}
	}
	if p.RestrictOutboundNetworkAccess == nil {
		p.RestrictOutboundNetworkAccess = new(bool)
	}
	if p.AllowedFQDNList == nil {
		p.AllowedFQDNList = &[]string{}
	}
	spec.put = true
	if err := validateSpec(&spec); err != nil {
		return nil, false, err
	}
	key := id.Key()
	for attempt := 0; ; attempt++ {
		cur, err := s.accounts.Get(ctx, key)
		if err == nil && cur.Value.deleted() {
			return nil, false, errRestoreRequired(id)
		}
		if err == nil {
			a, err := s.update(ctx, id, spec, by)
			return a, false, err
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, false, unavailable(err)
		}
		a, err := s.create(ctx, id, spec, by)
		if errors.Is(err, errRaced) && attempt == 0 {
			continue // created meanwhile by another request: update it
		}
		return a, err == nil, err
	}
}

// Patch changes what spec gives and leaves the rest (ARM PATCH). Kind and
// location, when given, must be unchanged; a SKU must be one of the
// account's kind's.
//
// Errors: as Put's, and 404 ResourceNotFound.
func (s *Service) Patch(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Account, error) {
	if spec.Kind != "" {
		kind, err := normalizeKind(spec.Kind)
		if err != nil {
			return nil, err
		}
		spec.Kind = kind
	}
	if spec.Location != "" {
		loc, err := spec.location()
		if err != nil {
			return nil, err
		}
		spec.Location = loc
	}
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	return s.update(ctx, id, spec, by)
}

// location returns ARM's form of spec.Location. One outside
// resources.Locations is refused (400 LocationNotAvailableForResourceType)
// unless the account is already there — an account made before the list
// was checked keeps its location — so the refusal is kept in
// spec.unlisted for create and update to return.
func (spec *Spec) location() (string, error) {
	loc, err := resources.NormalizeLocation(spec.Location)
	if err != nil {
		return "", err
	}
	if !resources.KnownLocation(loc) {
		_, spec.unlisted = resources.ResourceLocation(spec.Location, Type)
	}
	return loc, nil
}

func validateSpec(spec *Spec) error {
	if err := resources.ValidateTags(spec.Tags); err != nil {
		return err
	}
	p := &spec.Properties
	if p.CustomSubDomainName != nil && *p.CustomSubDomainName != "" {
		if err := validateSubDomain(*p.CustomSubDomainName); err != nil {
			return err
		}
	}
	if p.PublicNetworkAccess != nil {
		v, err := normalizeNetworkAccess(*p.PublicNetworkAccess)
		if err != nil {
			return err
		}
		p.PublicNetworkAccess = &v
	}
	if p.NetworkACLs != nil {
		v, err := netacl.Normalize(*p.NetworkACLs, "InvalidNetworkAcls", "properties.networkAcls")
		if err != nil {
			return err
		}
		p.NetworkACLs = &v
	}
	if p.RateLimits != nil {
		if err := validateRateLimits(*p.RateLimits); err != nil {
			return err
		}
	}
	if p.AllowedFQDNList != nil {
		v, err := netacl.NormalizeFQDNs(*p.AllowedFQDNList)
		if err != nil {
			return err
		}
		p.AllowedFQDNList = &v
	}
	if spec.Identity != nil {
		t, err := normalizeIdentityType(spec.Identity.Type)
		if err != nil {
			return err
		}
		spec.Identity.Type = t
		wantUser := strings.HasSuffix(t, IdentityUserAssigned)
		if wantUser != (len(spec.Identity.UserAssigned) > 0) {
			return badRequest("InvalidUserAssignedIdentity", "identity.userAssignedIdentities",
				"userAssignedIdentities must be given exactly when the identity type includes UserAssigned.")
		}
		for _, u := range spec.Identity.UserAssigned {
			rid, err := gatehouse.ParseResourceID(u)
			if err != nil || !strings.EqualFold(rid.Type(), "Microsoft.ManagedIdentity/userAssignedIdentities") {
				return badRequest("InvalidUserAssignedIdentity", "identity.userAssignedIdentities",
					"'%s' is not the id of a user-assigned identity.", clip(u))
			}
		}
	}
	return nil
}

var errRaced = errors.New("accounts: created concurrently")

func ptr[T any](v T) *T { return &v }

func (s *Service) create(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Account, error) {
	if spec.unlisted != nil {
		return nil, spec.unlisted
	}
	if spec.SKU == nil {
		_, err := resolveSKU(spec.Kind, nil)
		return nil, err
	}
	key := id.Key()
	now := storage.Now(s.opts.Now())
	r := record{
		ID: id.String(), Subscription: strings.ToLower(id.Subscription), ResourceGroup: id.ResourceGroup, Name: id.Name(),
		Kind: spec.Kind, Location: spec.Location, SKU: *spec.SKU, Tags: maps.Clone(spec.Tags),
		DisableLocalAuth: *spec.Properties.DisableLocalAuth, PublicNetworkAccess: *spec.Properties.PublicNetworkAccess,
		NetworkACLs: spec.Properties.NetworkACLs,
		RateLimits:  slices.Clone(*spec.Properties.RateLimits), InternalID: strings.ReplaceAll(gatehouse.NewGUID(), "-", ""),
		RestrictOutbound: *spec.Properties.RestrictOutboundNetworkAccess, AllowedFQDNs: slices.Clone(*spec.Properties.AllowedFQDNList),
		CreatedAt: now, UpdatedAt: now, CreatedBy: actorRecord(by), UpdatedBy: actorRecord(by),
	}
	if sd := spec.Properties.CustomSubDomainName; sd != nil {
		r.CustomSubDomainName = *sd
	}
	ident, err := s.resolveIdentity(ctx, id, spec.Location, spec.Identity, nil)
	if err != nil {
		return nil, err
	}
	r.Identity = ident
	var keys sealedKeys
	if keys.Key1, err = s.newKey(); err != nil {
		return nil, err
	}
	if keys.Key2, err = s.newKey(); err != nil {
		return nil, err
	}
	for slot, k := range []string{keys.Key1, keys.Key2} {
		r.Slots[slot] = slotRecord{Slot: Slot{Generation: 1, RegeneratedAt: now}, Hash: hashKey(k)}
	}
	sealed, err := s.seal(key, keys)
	if err != nil {
		return nil, err
	}
	rec, err := s.accounts.Create(ctx, &storage.Record[record]{Key: key, Alt: r.dataPlaneName(), Ref: strings.ToLower(id.Subscription), Value: r, Sealed: sealed})
	if errors.Is(err, storage.ErrAlreadyExists) {
		if _, gerr := s.accounts.Get(ctx, key); gerr == nil {
			return nil, errRaced
		}
		return nil, errNameInUse(r.dataPlaneName())
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return rec.Value.view(rec.Revision, s.opts.Endpoint), nil
}

func errNameInUse(name string) error {
	return gatehouse.Errorf(http.StatusConflict, "CustomDomainInUse",
		"Please pick a different name. The subdomain name '%s' is not available as it's already used by a resource.", clip(name))
}

// update applies spec to an existing account: replace semantics for the
// fields Put filled in, merge semantics for a Patch (nil = unchanged).
func (s *Service) update(ctx context.Context, id *gatehouse.ResourceID, spec Spec, by Actor) (*Account, error) {
	key := id.Key()
	cur, err := s.accounts.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) || err == nil && cur.Value.deleted() {
		return nil, errNotFound(id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	// Identities are created before the record names them, and deleted
	// after it stops naming them: a crash in between leaves at worst an
	// unused identity, never an account naming a missing one.
	ident, err := s.resolveIdentity(ctx, id, cur.Value.Location, spec.Identity, cur.Value.Identity)
	if err != nil {
		return nil, err
	}
	now := storage.Now(s.opts.Now())
	rec, err := s.accounts.Update(ctx, key, func(r *storage.Record[record]) error {
		v := &r.Value
		if v.deleted() {
			return errNotFound(id) // deleted meanwhile
		}
		if spec.Kind != "" && spec.Kind != v.Kind {
			return gatehouse.Errorf(http.StatusConflict, "KindCannotBeChanged",
				"The kind of account '%s' is %s and cannot be changed to %s.", v.Name, v.Kind, spec.Kind)
		}
		if spec.Location != "" && spec.Location != v.Location && spec.unlisted != nil {
			return spec.unlisted
		}
		if spec.Location != "" && spec.Location != v.Location {
			return gatehouse.Errorf(http.StatusConflict, "InvalidResourceLocation",
				"The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'. Please select a new resource name.",
				v.Name, v.Location, v.ResourceGroup, spec.Location)
		}
		p := spec.Properties
		if sd := p.CustomSubDomainName; sd != nil && *sd != "" && !strings.EqualFold(*sd, v.CustomSubDomainName) {
			if v.CustomSubDomainName != "" {
				return badRequest("CustomSubDomainNameCannotBeChanged", "properties.customSubDomainName",
					"The custom subdomain name of account '%s' is '%s' and cannot be changed.", v.Name, v.CustomSubDomainName)
			}
			v.CustomSubDomainName = *sd
		}
		if spec.SKU != nil {
			sku, err := resolveSKU(v.Kind, spec.SKU)
			if err != nil {
				return err
			}
			v.SKU = *sku
		}
		if spec.Tags != nil {
			v.Tags = maps.Clone(spec.Tags)
		}
		if p.DisableLocalAuth != nil {
			v.DisableLocalAuth = *p.DisableLocalAuth
		}
		if p.PublicNetworkAccess != nil {
			v.PublicNetworkAccess = *p.PublicNetworkAccess
		}
		if p.NetworkACLs != nil || spec.put {
			v.NetworkACLs = p.NetworkACLs
		}
		if p.RateLimits != nil {
			v.RateLimits = slices.Clone(*p.RateLimits)
		}
		if p.RestrictOutboundNetworkAccess != nil {
			v.RestrictOutbound = *p.RestrictOutboundNetworkAccess
		}
		if p.AllowedFQDNList != nil {
			v.AllowedFQDNs = slices.Clone(*p.AllowedFQDNList)
		}
		if spec.Identity != nil {
			v.Identity = cloneIdentity(ident)
		}
		v.UpdatedAt, v.UpdatedBy = now, actorRecord(by)
		r.Alt = v.dataPlaneName()
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errNotFound(id)
	case errors.Is(err, storage.ErrConflict):
		name := id.Name()
		if p := spec.Properties.CustomSubDomainName; p != nil {
			name = *p
		}
		return nil, errNameInUse(strings.ToLower(name))
	case err != nil:
		return nil, unavailable(err)
	}
	if spec.Identity != nil && cur.Value.Identity.hasSystem() && !ident.hasSystem() && s.opts.Identities != nil {
		if err := s.opts.Identities.DeleteSystemIdentity(ctx, id.String()); err != nil {
			s.opts.Logger.Warn("accounts: deleting a system identity failed", "account", key, "err", err)
		}
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return rec.Value.view(rec.Revision, s.opts.Endpoint), nil
}

// resolveIdentity turns an identity request into the identities to record:
// it creates the system identity when asked for one and looks up each
// user-assigned one. A nil spec keeps cur.
func (s *Service) resolveIdentity(ctx context.Context, id *gatehouse.ResourceID, location string, spec *IdentitySpec, cur *Identity) (*Identity, error) {
	if spec == nil {
		return cloneIdentity(cur), nil
	}
	if spec.Type == IdentityNone {
		return nil, nil
	}
	if s.opts.Identities == nil {
		return nil, badRequest("InvalidIdentityType", "identity.type", "Managed identities are not available on this server.")
	}
	out := &Identity{Type: spec.Type}
	if strings.HasPrefix(spec.Type, IdentitySystemAssigned) {
		ref, err := s.opts.Identities.EnsureSystemIdentity(ctx, id.String(), location)
		if err != nil {
			return nil, unavailable(err)
		}
		out.System = &ref
	}
	for _, u := range spec.UserAssigned {
		ref, ok, err := s.opts.Identities.UserIdentity(ctx, u)
		if err != nil {
			return nil, unavailable(err)
		}
		if !ok {
			return nil, badRequest("InvalidUserAssignedIdentity", "identity.userAssignedIdentities",
				"The user-assigned identity '%s' does not exist.", clip(u))
		}
		if out.UserAssigned == nil {
			out.UserAssigned = map[string]IdentityRef{}
		}
		rid, _ := gatehouse.ParseResourceID(u)
		out.UserAssigned[rid.String()] = ref
	}
	return out, nil
}

// purge deletes the account record key and everything that hangs off it
// — its deployments (with their sealed upstream credentials), its usage
// evidence and its system identity — and reports whether it existed. When
// it returns, this node's key index no longer accepts its keys and its
// gateway serves none of its deployments. Options.OnPurge runs first (the
// role assignments at the account).
//
// Order: the deployments go first, so a crash part-way leaves an account
// with fewer deployments (deleting it again finishes the job), never
// sealed upstream credentials that no account owns; after the account
// record is gone its deployments are swept once more, for a PUT that raced
// with the delete. PurgeOrphans removes anything a crash still left.
func (s *Service) purge(ctx context.Context, key string) (bool, error) {
	cur, err := s.accounts.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	if s.opts.OnPurge != nil {
		if err := s.opts.OnPurge(ctx, cur.Value.ID); err != nil {
			return false, unavailable(err)
		}
	}
	if err := s.deleteDeployments(ctx, cur.Value.InternalID); err != nil {
		return false, unavailable(err)
	}
	if err := s.accounts.Delete(ctx, key); errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, unavailable(err)
	}
	if err := s.deleteDeployments(ctx, cur.Value.InternalID); err != nil {
		s.opts.Logger.Warn("accounts: deleting deployments of a deleted account failed", "account", key, "err", err)
	}
	if err := s.usage.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.opts.Logger.Warn("accounts: deleting usage evidence failed", "account", key, "err", err)
	}
	if cur.Value.Identity.hasSystem() && s.opts.Identities != nil {
		if err := s.opts.Identities.DeleteSystemIdentity(ctx, cur.Value.ID); err != nil {
			s.opts.Logger.Warn("accounts: deleting a system identity failed", "account", key, "err", err)
		}
	}
	if err := s.watcher.Sync(ctx); err != nil {
		return true, unavailable(err)
	}
	return true, nil
}

// deleteDeployments deletes every deployment of the account instance
// internalID (sealed upstream credentials included).
func (s *Service) deleteDeployments(ctx context.Context, internalID string) error {
	if internalID == "" {
		return nil
	}
	recs, err := s.deployments.Collect(ctx, storage.ListOptions{Ref: internalID})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := s.deployments.Delete(ctx, r.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// PurgeOrphans deletes what a deleted account left behind when a crash or
// an outage interrupted Delete: deployments of account instances that no
// longer exist, and usage evidence of accounts that no longer exist. It
// returns how many records it deleted. Safe to run on any node at any
// time: deployments are listed before accounts, so a deployment of an
// account created meanwhile is never taken for an orphan (its account was
// created before it, and is in the later listing).
func (s *Service) PurgeOrphans(ctx context.Context) (int, error) {
	deps, err := s.deployments.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return 0, unavailable(err)
	}
	usage, err := s.usage.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return 0, unavailable(err)
	}
	accts, err := s.accounts.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return 0, unavailable(err)
	}
	instances, keys := map[string]bool{}, map[string]bool{}
	for _, a := range accts {
		instances[strings.ToLower(a.Value.InternalID)] = true
		keys[a.Key] = true
	}
	n := 0
	for _, d := range deps {
		if instances[strings.ToLower(d.Ref)] {
			continue
		}
		if err := s.deployments.Delete(ctx, d.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, unavailable(err)
		}
		n++
	}
	for _, u := range usage {
		if keys[u.Key] {
			continue
		}
		// A flush may recreate evidence of an account deleted a moment
		// ago; RecordUsage drops usage of unknown accounts, so this one is
		// the last.
		if err := s.usage.Delete(ctx, u.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, unavailable(err)
		}
		n++
	}
	return n, nil
}

// DeleteWithin deletes every account in scope (a resource group being
// deleted) and returns their ids.
func (s *Service) DeleteWithin(ctx context.Context, scope *gatehouse.ResourceID) ([]string, error) {
	list, err := s.List(ctx, scope)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range list {
		id, ok := ParseID(a.ID)
		if !ok {
			continue
		}
		if _, err := s.Delete(ctx, id); err != nil {
			return ids, err
		}
		ids = append(ids, a.ID)
	}
	return ids, nil
}
