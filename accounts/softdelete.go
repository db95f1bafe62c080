package accounts

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

// DefaultRetention is how long Azure keeps a deleted AI account
// recoverable: 48 hours.
const DefaultRetention = 48 * time.Hour

// Soft delete, as Azure does it for Microsoft.CognitiveServices/accounts:
//
//	Delete          the record stays, marked deleted with a scheduled purge
//	                date: off the data plane at once (keys, STS tokens,
//	                identities, deployments, the data-plane name resolve to
//	                nothing), out of Get and List, its name and custom
//	                subdomain still reserved (Put → 409
//	                FlagMustBeSetForRestore, another account with the
//	                subdomain → 409 CustomDomainInUse). Deployments, usage
//	                evidence and the sealed keys are kept; the system
//	                identity is deleted, so nothing can act as a deleted
//	                account. Role assignments at the account are kept (the
//	                caller deletes them only on purge).
//	Put{Restore}    recover: the same instance comes back with the same keys
//	                (same generations, so STS tokens minted before the
//	                delete work again while unexpired), deployments and
//	                settings; a system identity is created again (a new
//	                principal: grants to the old one do not carry over).
//	Purge           what Delete did before soft delete: Options.OnPurge (the
//	                role assignments at the account), then its deployments,
//	                usage evidence and the record. It is first marked purging, so a
//	                recover racing with it loses, and PurgeExpired finishes a
//	                purge a crash interrupted.
//	PurgeExpired    the upkeep loop: purges what passed its scheduled date.
//
// Options.Retention < 0 turns soft delete off: Delete purges at once.

// SoftDelete reports whether Delete keeps deleted accounts recoverable.
func (s *Service) SoftDelete() bool { return s.opts.Retention > 0 }

// Delete deletes the account id — soft-deletes it when soft delete is on
// (see above), else purges it — and reports whether it existed (a
// soft-deleted account does not). When it returns, this node's key index
// no longer accepts the account's keys and its gateway serves none of its
// deployments; other nodes follow through the change feed.
//
// Errors (*gatehouse.Error): 503.
func (s *Service) Delete(ctx context.Context, id *gatehouse.ResourceID) (bool, error) {
	if !s.SoftDelete() {
		return s.purge(ctx, id.Key())
	}
	now := storage.Now(s.opts.Now())
	var had *Identity
	rec, err := s.accounts.Update(ctx, id.Key(), func(r *storage.Record[record]) error {
		if r.Value.deleted() {
			return storage.ErrNotFound
		}
		had = cloneIdentity(r.Value.Identity)
		r.Value.DeletedAt, r.Value.ScheduledPurge = now, now.Add(s.opts.Retention)
		if had.hasSystem() && s.opts.Identities != nil {
			// Deleted below; recover creates a new one.
			r.Value.Identity = cloneIdentity(had)
			r.Value.Identity.System = nil
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	if had.hasSystem() && s.opts.Identities != nil {
		if err := s.opts.Identities.DeleteSystemIdentity(ctx, rec.Value.ID); err != nil {
			s.opts.Logger.Warn("accounts: deleting the system identity of a deleted account failed", "account", rec.Key, "err", err)
		}
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return true, err
	}
	return true, nil
}

// recover brings the soft-deleted account id back (Put with Restore).
// location, when given, must be the account's. The answer's bool (created)
// is false: the account is the one that was deleted.
func (s *Service) recover(ctx context.Context, id *gatehouse.ResourceID, location string, by Actor) (*Account, bool, error) {
	if location != "" {
		loc, err := resources.NormalizeLocation(location)
		if err != nil {
			return nil, false, err
		}
		location = loc
	}
	key := id.Key()
	cur, err := s.accounts.Get(ctx, key)
	switch {
	case errors.Is(err, storage.ErrNotFound) || err == nil && cur.Value.Purging:
		return nil, false, errNoDeletedAccount(id)
	case err != nil:
		return nil, false, unavailable(err)
	case !cur.Value.deleted():
		// Already active: a retried recover, or one that raced with
		// another. Answer the account as it is.
		return cur.Value.view(cur.Revision, s.opts.Endpoint), false, nil
	case location != "" && location != cur.Value.Location:
		return nil, false, gatehouse.Errorf(http.StatusConflict, "InvalidResourceLocation",
			"The deleted resource '%s' is in location '%s'; it cannot be restored in location '%s'.",
			cur.Value.Name, cur.Value.Location, location)
	}
	var ident *Identity
	if cur.Value.Identity.hasSystem() && s.opts.Identities != nil {
		ref, err := s.opts.Identities.EnsureSystemIdentity(ctx, id.String(), cur.Value.Location)
		if err != nil {
			return nil, false, unavailable(err)
		}
		ident = cloneIdentity(cur.Value.Identity)
		ident.System = &ref
	}
	now := storage.Now(s.opts.Now())
	rec, err := s.accounts.Update(ctx, key, func(r *storage.Record[record]) error {
		v := &r.Value
		if !v.deleted() || v.Purging {
			return storage.ErrNotFound
		}
		v.DeletedAt, v.ScheduledPurge = time.Time{}, time.Time{}
		if ident != nil {
			v.Identity = cloneIdentity(ident)
		}
		v.UpdatedAt, v.UpdatedBy = now, actorRecord(by)
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		// Purged, or recovered by another request, meanwhile.
		if a, gerr := s.Get(ctx, id); gerr == nil {
			return a, false, nil
		}
		return nil, false, errNoDeletedAccount(id)
	}
	if err != nil {
		return nil, false, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return nil, false, err
	}
	return rec.Value.view(rec.Revision, s.opts.Endpoint), false, nil
}

// ListDeleted returns the soft-deleted accounts of subscription sub,
// ordered by id (purging ones excluded).
func (s *Service) ListDeleted(ctx context.Context, sub string) ([]*Account, error) {
	recs, err := s.accounts.Collect(ctx, storage.ListOptions{Prefix: (&gatehouse.ResourceID{Subscription: sub}).Key() + "/"})
	if err != nil {
		return nil, unavailable(err)
	}
	var out []*Account
	for _, r := range recs {
		if r.Value.deleted() && !r.Value.Purging {
			out = append(out, r.Value.view(r.Revision, s.opts.Endpoint))
		}
	}
	return out, nil
}

// GetDeleted returns the soft-deleted account id, which must be in
// location (ARM's deletedAccounts path names it).
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) GetDeleted(ctx context.Context, id *gatehouse.ResourceID, location string) (*Account, error) {
	rec, err := s.accounts.Get(ctx, id.Key())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoDeletedAccount(id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	loc, lerr := resources.NormalizeLocation(location)
	if !rec.Value.deleted() || rec.Value.Purging || lerr != nil || loc != rec.Value.Location {
		return nil, errNoDeletedAccount(id)
	}
	return rec.Value.view(rec.Revision, s.opts.Endpoint), nil
}

// Purge deletes the soft-deleted account id in location for good (see
// above).
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) Purge(ctx context.Context, id *gatehouse.ResourceID, location string) error {
	if _, err := s.GetDeleted(ctx, id, location); err != nil {
		return err
	}
	return s.purgeDeleted(ctx, id.Key(), func(*record) bool { return true })
}

// purgeDeleted marks the account key purging, when it is soft-deleted
// and due(it) holds, then purges it. 404 when it is not (any more) a
// deleted account.
func (s *Service) purgeDeleted(ctx context.Context, key string, due func(*record) bool) error {
	_, err := s.accounts.Update(ctx, key, func(r *storage.Record[record]) error {
		if !r.Value.deleted() || !due(&r.Value) {
			return storage.ErrNotFound
		}
		r.Value.Purging = true
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		id, _ := gatehouse.ParseResourceID(key)
		if id == nil {
			id = &gatehouse.ResourceID{}
		}
		return errNoDeletedAccount(id)
	}
	if err != nil {
		return unavailable(err)
	}
	_, err = s.purge(ctx, key)
	return err
}

// PurgeExpired purges every soft-deleted account whose scheduled purge
// date has passed, and every purge a crash interrupted, and returns their
// ids. Safe on any node at any time.
func (s *Service) PurgeExpired(ctx context.Context) ([]string, error) {
	recs, err := s.accounts.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return nil, unavailable(err)
	}
	now := s.opts.Now()
	due := func(r *record) bool { return r.Purging || !r.ScheduledPurge.After(now) }
	var ids []string
	for _, r := range recs {
		if !r.Value.deleted() || !due(&r.Value) {
			continue
		}
		err := s.purgeDeleted(ctx, r.Key, due)
		if e, ok := gatehouse.AsError(err); ok && e.Status == http.StatusNotFound {
			continue // recovered or purged meanwhile
		}
		if err != nil {
			return ids, err
		}
		ids = append(ids, r.Value.ID)
	}
	return ids, nil
}

func errNoDeletedAccount(id *gatehouse.ResourceID) error {
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource 'Microsoft.CognitiveServices/deletedAccounts/%s' under resource group '%s' was not found.",
		clip(id.Name()), clip(id.ResourceGroup))
}

func errRestoreRequired(id *gatehouse.ResourceID) error {
	return gatehouse.Errorf(http.StatusConflict, "FlagMustBeSetForRestore",
		"An existing resource with ID '%s' has been soft-deleted. To restore the resource, you must specify 'restore' to be 'true' in the property. If you don't want to restore existing resource, please purge it first.",
		id.String()) // validated names: at most a few hundred characters
}

// DomainAvailable reports whether name is free as a custom subdomain (a
// data-plane name), and when it is not, why: an account uses it, or a
// deleted account holds it until it is purged or recovered.
//
// Errors (*gatehouse.Error): 400 InvalidCustomSubDomainName; 503.
func (s *Service) DomainAvailable(ctx context.Context, name string) (bool, string, error) {
	if err := validateSubDomain(name); err != nil {
		return false, "", err
	}
	rec, err := s.accounts.GetByAlt(ctx, strings.ToLower(name))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return true, "", nil
	case err != nil:
		return false, "", unavailable(err)
	case rec.Value.deleted():
		return false, "The subdomain name '" + clip(name) + "' is held by a deleted account until it is purged or recovered.", nil
	}
	return false, "The subdomain name '" + clip(name) + "' is already used by a resource.", nil
}
