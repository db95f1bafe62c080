package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Storage kinds of the records this package owns.
const (
	KindRole       = "authz.role"
	KindAssignment = "authz.assignment"
)

// Directory resolves principals by object id, so assignments name real
// principals. Optional.
type Directory interface {
	// LookupPrincipal returns the principal with that object id, and
	// ok=false when there is none. Errors are storage failures.
	LookupPrincipal(ctx context.Context, objectID string) (p gatehouse.Principal, ok bool, err error)
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time
	Logger *slog.Logger
	// Directory, when set, rejects assignments to unknown principals.
	Directory Directory
	// CacheSize bounds the decision cache (default 65536 decisions).
	CacheSize int
	// Groups, when set, makes an assignment to a group grant its role to
	// the group's members.
	Groups Groups
}

// Groups is the directory's group membership, from memory.
type Groups interface {
	// GroupsOf lists the object ids of the groups objectID is in.
	GroupsOf(objectID string) []string
	// GroupGeneration changes whenever any membership changes.
	GroupGeneration() uint64
}

// Service keeps role definitions and assignments and makes authorization
// decisions. Writes go to storage; every read, and every decision, is
// served from an in-memory index that the change feed keeps current on
// every node. It is safe for concurrent use.
type Service struct {
	roles       *storage.Table[RoleDefinition]
	assignments *storage.Table[Assignment]
	watcher     *storage.Watcher
	opts        Options
	bg          context.Context

	mu sync.RWMutex
	// gen is bumped by every applied change, under mu; it is read without
	// it (Generation).
	gen          atomic.Uint64
	byName       map[string]*Assignment
	byPrincipal  map[string][]*Assignment
	custom       map[string]*compiledRole
	customByName map[string]*compiledRole

	cache  *lru.Cache[decisionKey, cachedDecision]
	reload storage.Reloader
}

// New returns the service over store and subscribes it to w. ctx is the
// node's background context: change callbacks read the store with it. Call
// Load after w.Start and before w.Run.
func New(ctx context.Context, store storage.Objects, w *storage.Watcher, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 1 << 16
	}
	cache, _ := lru.New[decisionKey, cachedDecision](opts.CacheSize) // size > 0 cannot fail
	s := &Service{
		roles:       storage.NewTable[RoleDefinition](store, KindRole),
		assignments: storage.NewTable[Assignment](store, KindAssignment),
		watcher:     w, opts: opts, bg: ctx, cache: cache,
	}
	s.reload.Name, s.reload.Load, s.reload.Logger = "authz", s.Load, opts.Logger
	s.reset(nil, nil)
	w.Subscribe(s.apply, KindRole, KindAssignment)
	return s
}

// Load reads every custom role and assignment into memory.
func (s *Service) Load(ctx context.Context) error {
	roles, err := s.roles.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("authz: load roles: %w", err)
	}
	as, err := s.assignments.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("authz: load assignments: %w", err)
	}
	s.reset(roles, as)
	return nil
}

func (s *Service) reset(roles []*storage.Record[RoleDefinition], as []*storage.Record[Assignment]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen.Add(1)
	s.byName = make(map[string]*Assignment, len(as))
	s.byPrincipal = make(map[string][]*Assignment)
	s.custom = make(map[string]*compiledRole, len(roles))
	s.customByName = make(map[string]*compiledRole, len(roles))
	for _, r := range roles {
		s.putRoleLocked(&r.Value)
	}
	for _, r := range as {
		s.putAssignmentLocked(&r.Value)
	}
	s.cache.Purge()
}

// apply is the change-feed callback: it re-reads the changed record. A read
// failure (storage down) schedules a full reload, so the index converges.
func (s *Service) apply(c storage.Change) {
	ctx, cancel := context.WithTimeout(s.bg, 10*time.Second)
	defer cancel()
	if c.Reset {
		// Fell behind the feed's history: reload in revision order, or,
		// when storage is down, keep retrying in the background.
		if err := s.Load(ctx); err != nil {
			s.opts.Logger.Warn("authz: reload after a feed reset failed; retrying", "err", err)
			go s.reload.Soon(s.bg)
		}
		return
	}
	switch c.Kind {
	case KindRole:
		r, err := s.roles.Get(ctx, c.Key)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case errors.Is(err, storage.ErrNotFound):
			s.deleteRoleLocked(c.Key)
		case err != nil:
			s.opts.Logger.Warn("authz: re-reading a role failed; reloading", "err", err)
			go s.reload.Soon(s.bg)
			return
		default:
			s.putRoleLocked(&r.Value)
		}
	case KindAssignment:
		r, err := s.assignments.Get(ctx, c.Key)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case errors.Is(err, storage.ErrNotFound):
			s.deleteAssignmentLocked(c.Key)
		case err != nil:
			s.opts.Logger.Warn("authz: re-reading an assignment failed; reloading", "err", err)
			go s.reload.Soon(s.bg)
			return
		default:
			s.putAssignmentLocked(&r.Value)
		}
	}
	s.gen.Add(1)
	s.cache.Purge()
}

func (s *Service) putRoleLocked(def *RoleDefinition) {
	s.deleteRoleLocked(def.ID)
	c := compileRole(def)
	s.custom[def.ID] = c
	s.customByName[strings.ToLower(def.RoleName)] = c
}

func (s *Service) deleteRoleLocked(id string) {
	if old, ok := s.custom[id]; ok {
		delete(s.customByName, strings.ToLower(old.def.RoleName))
		delete(s.custom, id)
	}
}

func (s *Service) putAssignmentLocked(a *Assignment) {
	s.deleteAssignmentLocked(a.Name)
	scope, err := gatehouse.ParseResourceID(a.Scope)
	if err != nil {
		s.opts.Logger.Error("authz: stored assignment has an invalid scope; ignored", "assignment", a.Name)
		return
	}
	a.scopeID, a.scopeKey = scope, scope.Key()
	s.byName[a.Name] = a
	s.byPrincipal[a.PrincipalID] = append(s.byPrincipal[a.PrincipalID], a)
}

func (s *Service) deleteAssignmentLocked(name string) {
	old, ok := s.byName[name]
	if !ok {
		return
	}
	delete(s.byName, name)
	list := slices.DeleteFunc(slices.Clone(s.byPrincipal[old.PrincipalID]),
		func(a *Assignment) bool { return a.Name == name })
	if len(list) == 0 {
		delete(s.byPrincipal, old.PrincipalID)
	} else {
		s.byPrincipal[old.PrincipalID] = list
	}
}

// Decision is the outcome of Decide.
type Decision struct {
	Allowed bool
	// Assignment and Role are what allowed it (nil when denied). Treat them
	// as read-only.
	Assignment *Assignment
	Role       *RoleDefinition
}

type decisionKey struct {
	principal, op, scope string
	data                 bool
}

type cachedDecision struct {
	gen uint64
	d   Decision
}

// Generation changes whenever a decision may have changed: it is bumped by
// every applied change to roles or assignments (and every reload), on
// every node. A caller that keeps decisions of its own (the gateway, per
// identity and account) reads it before calling Decide and keeps the
// decision only while it is unchanged.
//
// It takes no lock (the data plane reads it on every request whose
// upstream credential comes from a vault): a change in progress may or may
// not show yet, but Decide waits for it, so a decision kept under a
// generation read before Decide is at worst recomputed once more.
func (s *Service) Generation() uint64 {
	return s.gen.Load() + s.groupGen()
}

// groupGen is the membership generation (0 without Groups). Both
// generations only grow, so their sum changes whenever either does.
func (s *Service) groupGen() uint64 {
	if s.opts.Groups == nil {
		return 0
	}
	return s.opts.Groups.GroupGeneration()
}

// Decide is the one authorization decision of Gatehouse: may the principal
// with object id principalID perform op at scope? It is allowed when some
// assignment of that principal or of one of its groups (Options.Groups),
// at scope or at any scope above it, names a
// role that permits op (actions for control-plane operations, data actions
// for data-plane ones). Decide touches no storage: results are cached in
// memory and invalidated by every change to roles or assignments, on every
// node. Safe for concurrent use.
func (s *Service) Decide(principalID string, op Operation, scope *gatehouse.ResourceID) Decision {
	key := decisionKey{principal: strings.ToLower(principalID), op: strings.ToLower(op.Name),
		scope: scope.Key(), data: op.Data}
	s.mu.RLock()
	gen := s.gen.Load() + s.groupGen()
	if c, ok := s.cache.Get(key); ok && c.gen == gen {
		s.mu.RUnlock()
		return c.d
	}
	d := s.decideLocked(key)
	s.mu.RUnlock()
	s.cache.Add(key, cachedDecision{gen: gen, d: d})
	return d
}

func (s *Service) decideLocked(k decisionKey) Decision {
	var best *Assignment
	var bestRole *compiledRole
	assignments := s.byPrincipal[k.principal]
	if s.opts.Groups != nil {
		// The principal's own assignments, then its groups'.
		for _, g := range s.opts.Groups.GroupsOf(k.principal) {
			if more := s.byPrincipal[g]; len(more) > 0 {
				assignments = append(slices.Clip(assignments), more...)
			}
		}
	}
	for _, a := range assignments {
		if !within(k.scope, a.scopeKey) {
			continue
		}
		role := s.roleLocked(a.RoleDefinitionID)
		if role == nil || !role.permits(k.op, k.data) {
			continue
		}
		// The closest assignment is the most useful answer to "why".
		if best == nil || len(a.scopeKey) > len(best.scopeKey) ||
			len(a.scopeKey) == len(best.scopeKey) && a.Name < best.Name {
			best, bestRole = a, role
		}
	}
	if best == nil {
		return Decision{}
	}
	return Decision{Allowed: true, Assignment: best, Role: bestRole.def}
}

// within reports whether scope key k is at or beneath scope key parent.
func within(k, parent string) bool {
	return parent == "/" || k == parent || len(k) > len(parent) && k[len(parent)] == '/' && strings.HasPrefix(k, parent)
}

func (s *Service) roleLocked(id string) *compiledRole {
	if c, ok := builtins().byID[id]; ok {
		return c
	}
	return s.custom[id]
}

// Role returns the built-in or custom role with id (a GUID, any case).
func (s *Service) Role(id string) (*RoleDefinition, bool) {
	id = strings.ToLower(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.roleLocked(id); c != nil {
		return c.def, true
	}
	return nil, false
}

// RoleFilter selects role definitions.
type RoleFilter struct {
	// Scope, when set, keeps built-ins and the custom roles assignable at
	// or beneath it (or above it).
	Scope *gatehouse.ResourceID
	// Name keeps roles with that roleName (case-insensitive).
	Name string
	// Type keeps BuiltInRole or CustomRole.
	Type RoleType
}

// Roles returns the matching role definitions: built-ins first, in their
// published order, then custom roles by name.
func (s *Service) Roles(f RoleFilter) []*RoleDefinition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*RoleDefinition
	keep := func(d *RoleDefinition) bool {
		return (f.Name == "" || strings.EqualFold(d.RoleName, f.Name)) && (f.Type == "" || f.Type == d.Type)
	}
	for _, c := range builtins().list {
		if keep(c.def) {
			out = append(out, c.def)
		}
	}
	var custom []*RoleDefinition
	for _, c := range s.custom {
		if keep(c.def) && (f.Scope == nil || relatedScope(c.def.AssignableScopes, f.Scope)) {
			custom = append(custom, c.def)
		}
	}
	slices.SortFunc(custom, func(a, b *RoleDefinition) int { return strings.Compare(a.RoleName, b.RoleName) })
	return append(out, custom...)
}

// relatedScope reports whether one of scopes is at, above or beneath scope.
func relatedScope(scopes []string, scope *gatehouse.ResourceID) bool {
	k := scope.Key()
	for _, sc := range scopes {
		sk := strings.ToLower(sc)
		if id, err := gatehouse.ParseResourceID(sc); err == nil {
			sk = id.Key()
		}
		if within(k, sk) || within(sk, k) {
			return true
		}
	}
	return false
}

// assignable reports whether role may be assigned at scope: one of its
// assignable scopes is at or above it.
func assignable(role *RoleDefinition, scope *gatehouse.ResourceID) bool {
	k := scope.Key()
	for _, sc := range role.AssignableScopes {
		sk := strings.ToLower(sc)
		if id, err := gatehouse.ParseResourceID(sc); err == nil {
			sk = id.Key()
		}
		if within(k, sk) {
			return true
		}
	}
	return false
}

// AssignmentFilter selects assignments.
type AssignmentFilter struct {
	// Scope, when set, keeps assignments at, above and (unless AtScope)
	// beneath it; ARM's default listing and its atScope() filter.
	Scope   *gatehouse.ResourceID
	AtScope bool
	// PrincipalID and RoleID keep one assignee or one role (GUIDs).
	PrincipalID string
	RoleID      string
	// AssignedTo keeps what a principal holds: its own assignments and
	// those of the groups it is in, directly or through member groups
	// (ARM's assignedTo('{objectId}')).
	AssignedTo string
}

// Assignments returns the matching assignments ordered by scope, then name.
// Treat them as read-only.
func (s *Service) Assignments(f AssignmentFilter) []*Assignment {
	var key string
	if f.Scope != nil {
		key = f.Scope.Key()
	}
	principal, role := strings.ToLower(f.PrincipalID), strings.ToLower(f.RoleID)
	var holders map[string]bool
	if f.AssignedTo != "" {
		id := strings.ToLower(f.AssignedTo)
		holders = map[string]bool{id: true}
		if s.opts.Groups != nil {
			for _, g := range s.opts.Groups.GroupsOf(id) {
				holders[g] = true
			}
		}
	}
	s.mu.RLock()
	var out []*Assignment
	for _, a := range s.byName {
		if principal != "" && a.PrincipalID != principal || role != "" && a.RoleDefinitionID != role ||
			holders != nil && !holders[a.PrincipalID] {
			continue
		}
		if f.Scope != nil && !within(key, a.scopeKey) && (f.AtScope || !within(a.scopeKey, key)) {
			continue
		}
		out = append(out, a)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Assignment) int {
		if c := strings.Compare(a.scopeKey, b.scopeKey); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Assignment returns the assignment named name (a GUID).
func (s *Service) Assignment(name string) (*Assignment, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.byName[strings.ToLower(name)]
	return a, ok
}

// HasAssignmentWithin reports whether the principal holds any assignment at
// a scope related to scope (at, above or beneath it). ARM lists a
// subscription to everyone who holds a role anywhere in it.
func (s *Service) HasAssignmentWithin(principalID string, scope *gatehouse.ResourceID) bool {
	k := scope.Key()
	ids := []string{strings.ToLower(principalID)}
	if s.opts.Groups != nil {
		ids = append(ids, s.opts.Groups.GroupsOf(ids[0])...)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		for _, a := range s.byPrincipal[id] {
			if within(k, a.scopeKey) || within(a.scopeKey, k) {
				return true
			}
		}
	}
	return false
}

// Permissions returns what the principal may do at scope: the permissions
// of every role it holds there (assigned at the scope or above it, to it or
// to one of its groups), each role once, closest assignment first. ARM's
// "permissions" list (armauthorization's PermissionsClient).
func (s *Service) Permissions(principalID string, scope *gatehouse.ResourceID) []Permission {
	k := scope.Key()
	principal := strings.ToLower(principalID)
	var groups []string
	if s.opts.Groups != nil {
		groups = s.opts.Groups.GroupsOf(principal)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	assignments := slices.Clone(s.byPrincipal[principal])
	for _, g := range groups {
		assignments = append(assignments, s.byPrincipal[g]...)
	}
	assignments = slices.DeleteFunc(assignments, func(a *Assignment) bool { return !within(k, a.scopeKey) })
	slices.SortStableFunc(assignments, func(a, b *Assignment) int { return len(b.scopeKey) - len(a.scopeKey) })
	out := []Permission{}
	seen := map[string]bool{}
	for _, a := range assignments {
		role := s.roleLocked(a.RoleDefinitionID)
		if role == nil || seen[a.RoleDefinitionID] {
			continue
		}
		seen[a.RoleDefinitionID] = true
		for _, p := range role.def.Permissions {
			out = append(out, Permission{Actions: orEmpty(p.Actions), NotActions: orEmpty(p.NotActions),
				DataActions: orEmpty(p.DataActions), NotDataActions: orEmpty(p.NotDataActions)})
		}
	}
	return out
}

// orEmpty is a copy of xs that is never nil (ARM shows [] for none).
func orEmpty(xs []string) []string {
	return append([]string{}, xs...)
}

// waitFor makes a write visible in this node's index before returning
// (read-your-writes).
func (s *Service) waitFor(ctx context.Context, rev int64) error {
	if err := s.watcher.WaitFor(ctx, rev); err != nil {
		return fmt.Errorf("authz: wait for change %d: %w", rev, err)
	}
	return nil
}

// storageError maps a storage failure to a public error.
func storageError(err error) error {
	if _, ok := gatehouse.AsError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return gatehouse.ErrUnavailable.WithCause(err)
}

// tripleKey is the assignment's alternate key: one assignment per
// (scope, role, principal), as ARM enforces.
func tripleKey(scopeKey, roleID, principalID string) string {
	sum := sha256.Sum256([]byte(scopeKey + "\x00" + roleID + "\x00" + principalID))
	return hex.EncodeToString(sum[:])
}
