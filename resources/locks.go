package resources

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Management locks (Microsoft.Authorization/locks): a lock on a scope — a
// subscription, a resource group or a resource — protects it and
// everything under it from the management API. CanNotDelete refuses
// deletes; ReadOnly refuses every change, including actions such as
// listing or regenerating keys (POST), as ARM's do. The data planes are
// not affected: a locked account's keys keep working.
//
// Locks are stored per subscription (Ref) and read from storage when a
// write is decided: writes are rare, and a lock must hold on every node
// the moment it is created.

// KindLock holds management locks. Key: the lock's id, lower case.
const KindLock = "resources.lock"

// Lock levels.
const (
	LockCanNotDelete = "CanNotDelete"
	LockReadOnly     = "ReadOnly"
)

// Limits, as ARM's.
const (
	maxLockName  = 260
	maxLockNotes = 512
	maxLocks     = 1000 // per subscription
)

// Lock is one management lock.
type Lock struct {
	// Scope is the locked scope's id, as it was written.
	Scope string `json:"scope"`
	Name  string `json:"name"`
	// Level is CanNotDelete or ReadOnly.
	Level string `json:"level"`
	Notes string `json:"notes,omitempty"`
	// Owners are the applicationIds the lock names as its owners (for the
	// record; anyone allowed Microsoft.Authorization/locks/* manages it).
	Owners    []string  `json:"owners,omitempty"`
	CreatedOn time.Time `json:"createdOn"`
	CreatedBy string    `json:"createdBy,omitempty"`
	UpdatedOn time.Time `json:"updatedOn"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

// ID is the lock's resource id.
func (l *Lock) ID() string {
	return strings.TrimSuffix(l.Scope, "/") + "/providers/Microsoft.Authorization/locks/" + l.Name
}

func lockKey(scope, name string) string {
	return strings.ToLower(strings.TrimSuffix(scope, "/") + "/providers/microsoft.authorization/locks/" + name)
}

// LockSpec is what a caller asks for in a lock PUT.
type LockSpec struct {
	Level, Notes string
	Owners       []string
}

func validLock(name string, spec *LockSpec) error {
	if name == "" || len(name) > maxLockName || strings.ContainsAny(name, "<>*%&:\\?/+#") || !utf8.ValidString(name) || hasControl(name) {
		return gatehouse.BadRequestf("InvalidLockName", "The lock name '%s' is invalid: 1 to %d characters, none of <>*%%&:\\?/+#.", clip(name), maxLockName)
	}
	switch {
	case strings.EqualFold(spec.Level, LockCanNotDelete):
		spec.Level = LockCanNotDelete
	case strings.EqualFold(spec.Level, LockReadOnly):
		spec.Level = LockReadOnly
	default:
		return gatehouse.BadRequestf("InvalidLockLevel", "The lock level '%s' is invalid: it is CanNotDelete or ReadOnly.", clip(spec.Level))
	}
	if len(spec.Notes) > maxLockNotes || !utf8.ValidString(spec.Notes) || hasControl(spec.Notes) {
		return gatehouse.BadRequestf("InvalidLockNotes", "A lock's notes have at most %d printable characters.", maxLockNotes)
	}
	if len(spec.Owners) > 10 {
		return gatehouse.BadRequestf("InvalidLockOwners", "A lock has at most 10 owners.")
	}
	for i, o := range spec.Owners {
		id, ok := gatehouse.NormalizeGUID(o)
		if !ok {
			return gatehouse.BadRequestf("InvalidLockOwners", "A lock owner's applicationId '%s' is not a GUID.", clip(o))
		}
		spec.Owners[i] = id
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// PutLock creates or replaces the lock name at scope (a subscription,
// group or resource id the caller has checked exists). by is the
// caller's object id.
//
// Errors (*gatehouse.Error): 400 InvalidLockName, InvalidLockLevel,
// InvalidLockNotes, InvalidLockOwners, LockLimitExceeded; 503.
func (s *Service) PutLock(ctx context.Context, scope *gatehouse.ResourceID, name string, spec LockSpec, by string) (*Lock, bool, error) {
	spec.Owners = slices.Clone(spec.Owners)
	if err := validLock(name, &spec); err != nil {
		return nil, false, err
	}
	now := storage.Now(s.now())
	l := Lock{Scope: scope.String(), Name: name, Level: spec.Level, Notes: spec.Notes, Owners: spec.Owners,
		CreatedOn: now, CreatedBy: by, UpdatedOn: now, UpdatedBy: by}
	key, ref := lockKey(l.Scope, name), strings.ToLower(scope.Subscription)
	rec, err := s.locks.Update(ctx, key, func(r *storage.Record[Lock]) error {
		r.Value.Level, r.Value.Notes, r.Value.Owners, r.Value.UpdatedOn, r.Value.UpdatedBy = l.Level, l.Notes, l.Owners, now, by
		return nil
	})
	if err == nil {
		return &rec.Value, false, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, false, unavailable(err)
	}
	existing, err := s.Locks(ctx, scope.Subscription)
	if err != nil {
		return nil, false, err
	}
	if len(existing) >= maxLocks {
		return nil, false, gatehouse.BadRequestf("LockLimitExceeded", "A subscription has at most %d locks.", maxLocks)
	}
	rec, err = s.locks.Create(ctx, &storage.Record[Lock]{Key: key, Ref: ref, Value: l})
	if errors.Is(err, storage.ErrAlreadyExists) {
		// Created a moment ago elsewhere: this PUT replaces it.
		return s.PutLock(ctx, scope, name, spec, by)
	}
	if err != nil {
		return nil, false, unavailable(err)
	}
	return &rec.Value, true, nil
}

// GetLock returns the lock name at scope. 404 LockNotFound.
func (s *Service) GetLock(ctx context.Context, scope *gatehouse.ResourceID, name string) (*Lock, error) {
	rec, err := s.locks.Get(ctx, lockKey(scope.String(), name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, gatehouse.NotFoundf("LockNotFound", "The lock '%s' could not be found.", clip(name))
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &rec.Value, nil
}

// DeleteLock deletes the lock name at scope and reports whether it
// existed.
func (s *Service) DeleteLock(ctx context.Context, scope *gatehouse.ResourceID, name string) (bool, error) {
	err := s.locks.Delete(ctx, lockKey(scope.String(), name))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	return true, nil
}

// Locks returns every lock of subscription sub, by id.
func (s *Service) Locks(ctx context.Context, sub string) ([]*Lock, error) {
	recs, err := s.locks.Collect(ctx, storage.ListOptions{Ref: strings.ToLower(sub)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Lock, len(recs))
	for i, r := range recs {
		out[i] = &r.Value
	}
	slices.SortFunc(out, func(a, b *Lock) int { return strings.Compare(strings.ToLower(a.ID()), strings.ToLower(b.ID())) })
	return out, nil
}

// Within reports whether scope is ancestor or the same as it (ids compared
// case-insensitively).
func Within(scope, ancestor string) bool {
	s, a := strings.ToLower(strings.TrimSuffix(scope, "/")), strings.ToLower(strings.TrimSuffix(ancestor, "/"))
	return s == a || strings.HasPrefix(s, a+"/")
}

// CheckLocks refuses action at target when a management lock forbids it
// (the error is ARM's 409 ScopeLocked): a ReadOnly lock on target or above
// it forbids any change, a CanNotDelete one a delete. Deleting target
// itself (action is its own type's delete) is also refused when any lock
// sits below it, since a group's resources go with it; deleting something
// target merely holds (a subscription's predefined tag name, a resource's
// tags, a purge of a group's deleted account) is not, as a lock on another
// resource there has nothing to do with it. Reads, and the authorization
// provider's own operations (role assignments, locks), are never locked
// out.
func (s *Service) CheckLocks(ctx context.Context, target *gatehouse.ResourceID, action string) error {
	a := strings.ToLower(action)
	if target == nil || target.Subscription == "" || strings.HasSuffix(a, "/read") || strings.HasPrefix(a, "microsoft.authorization/") {
		return nil
	}
	deleting := strings.HasSuffix(a, "/delete")
	whole := deleting && strings.EqualFold(strings.TrimSuffix(a, "/delete"), typeOf(target))
	locks, err := s.Locks(ctx, target.Subscription)
	if err != nil || len(locks) == 0 {
		return err
	}
	t := target.String()
	var held []string
	for _, l := range locks {
		above := Within(t, l.Scope)
		if above && (l.Level == LockReadOnly || deleting) || whole && Within(l.Scope, t) {
			if !slices.ContainsFunc(held, func(h string) bool { return strings.EqualFold(h, l.Scope) }) {
				held = append(held, l.Scope)
			}
		}
	}
	if len(held) == 0 {
		return nil
	}
	op := "write"
	if deleting {
		op = "delete"
	}
	// The ids are the request's path and stored scopes, not free text:
	// shown whole (clip would cut them where they matter), within reason.
	return gatehouse.Errorf(http.StatusConflict, "ScopeLocked",
		"The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove the lock and try again.",
		clipID(t), op, clipID(strings.Join(held, "','")))
}

// typeOf is id's resource type as its delete action names it:
// "Microsoft.Resources/subscriptions/resourceGroups" for a group.
func typeOf(id *gatehouse.ResourceID) string {
	switch {
	case id.IsSubscription():
		return "Microsoft.Resources/subscriptions"
	case id.IsResourceGroup():
		return "Microsoft.Resources/subscriptions/resourceGroups"
	}
	return id.Type()
}

func clipID(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "…"
	}
	return s
}
