package directory

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Store is what the directory needs of storage.
type Store interface {
	storage.Objects
}

// Watcher is what the directory needs of the change feed
// (*storage.Watcher).
type Watcher interface {
	Subscribe(fn func(storage.Change), kinds ...string)
}

// Options configure a Directory.
type Options struct {
	Store   Store
	Watcher Watcher
	Logger  *slog.Logger
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
	// PasswordParams tunes argon2id for people's passwords (zero: the
	// default, DefaultPasswordParams).
	PasswordParams PasswordParams
}

// Directory holds tenants and principals. Reads come from memory (loaded by
// Load, kept current by the change feed); writes go to storage and return
// only after this node's cache reflects them (read-your-writes: the writer
// re-reads the object, as the feed callback does, so it works before the
// watcher runs too). Safe for concurrent use.
type Directory struct {
	store      Store
	watcher    Watcher
	logger     *slog.Logger
	now        func() time.Time
	rand       io.Reader
	pwParams   PasswordParams
	pwSem      chan struct{}
	principals *storage.Table[record]
	tenants    *storage.Table[tenantRecord]
	settings   *storage.Table[defaultSettings]
	groups     *storage.Table[groupRecord]

	// refreshMu serializes re-reads (feed callbacks and writers), so the
	// cache moves forward only: a re-read sees the store at least as new
	// as the one before it.
	refreshMu sync.Mutex

	mu            sync.RWMutex
	byObjectID    map[string]*entry
	byAppID       map[string]*entry // lower-case client id
	byAppObjectID map[string]*entry
	byResourceID  map[string]*entry // resource id key
	byUserName    map[string]*entry // lower-case
	// byIdentifierURI: tenant id + " " + normalized identifier URI (api.go).
	byIdentifierURI map[string]*entry
	// groupList and memberOf: groups by object id, and the groups each
	// member is in (group.go); groupGen counts their changes.
	groupList  map[string]*groupRecord
	memberOf   map[string][]string
	groupGen   atomic.Uint64
	tenantList map[string]tenantRecord
	defaults   defaultSettings
}

// New returns a directory over opts.Store. Call Load before use.
func New(opts Options) *Directory {
	d := &Directory{
		store:    opts.Store,
		watcher:  opts.Watcher,
		logger:   opts.Logger,
		now:      opts.Now,
		rand:     opts.Rand,
		pwParams: opts.PasswordParams,
	}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	if d.pwParams == (PasswordParams{}) {
		d.pwParams = DefaultPasswordParams
	}
	// argon2id is memory-hard on purpose: bound how many run at once so a
	// burst of password sign-ins cannot exhaust memory.
	d.pwSem = make(chan struct{}, 2)
	d.principals = storage.NewTable[record](opts.Store, KindPrincipal)
	d.tenants = storage.NewTable[tenantRecord](opts.Store, KindTenant)
	d.settings = storage.NewTable[defaultSettings](opts.Store, KindSettings)
	d.groups = storage.NewTable[groupRecord](opts.Store, KindGroup)
	d.reset()
	return d
}

func (d *Directory) reset() {
	d.byObjectID = map[string]*entry{}
	d.byAppID = map[string]*entry{}
	d.byAppObjectID = map[string]*entry{}
	d.byResourceID = map[string]*entry{}
	d.byUserName = map[string]*entry{}
	d.byIdentifierURI = map[string]*entry{}
	d.groupList = map[string]*groupRecord{}
	d.memberOf = map[string][]string{}
	d.groupGen.Add(1)
	d.tenantList = map[string]tenantRecord{}
}

// Load subscribes to the change feed and loads every tenant and principal.
// Call it after the watcher's Start and before its Run.
func (d *Directory) Load(ctx context.Context) error {
	if d.watcher != nil {
		d.watcher.Subscribe(d.apply, KindPrincipal, KindTenant, KindSettings, KindGroup)
	}
	return d.reload(ctx)
}

func (d *Directory) reload(ctx context.Context) error {
	// Serialized with refresh: a change delivered while the lists are read
	// is re-read after them, never overwritten by them.
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	principals, err := d.principals.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("directory: load principals: %w", err)
	}
	tenants, err := d.tenants.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("directory: load tenants: %w", err)
	}
	defaults, err := d.settings.Get(ctx, settingsDefault)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("directory: load settings: %w", err)
	}
	groups, err := d.groups.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("directory: load groups: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reset()
	for _, r := range principals {
		d.put(newEntry(&r.Value, r.Revision))
	}
	for _, t := range tenants {
		d.tenantList[t.Key] = t.Value
	}
	for _, g := range groups {
		v := g.Value
		d.putGroup(&v)
	}
	if defaults != nil {
		d.defaults = defaults.Value
	}
	return nil
}

// apply is the change-feed callback: it re-reads the changed object.
func (d *Directory) apply(c storage.Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.Reset {
		if err := d.reload(ctx); err != nil {
			d.logger.Warn("directory: reload failed", "err", err)
		}
		return
	}
	if err := d.refresh(ctx, c.Kind, c.Key); err != nil {
		d.logger.Warn("directory: re-read failed", "kind", c.Kind, "key", c.Key, "err", err)
	}
}

// refresh re-reads one object from storage into the cache.
func (d *Directory) refresh(ctx context.Context, kind, key string) error {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	switch kind {
	case KindPrincipal:
		r, err := d.principals.Get(ctx, key)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if old := d.byObjectID[key]; old != nil {
			if err == nil && old.revision >= r.Revision {
				return nil
			}
			d.remove(old)
		}
		if err == nil {
			d.put(newEntry(&r.Value, r.Revision))
		}
	case KindTenant:
		r, err := d.tenants.Get(ctx, key)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if err == nil {
			d.tenantList[key] = r.Value
		} else {
			delete(d.tenantList, key)
		}
	case KindGroup:
		return d.refreshGroup(ctx, key)
	case KindSettings:
		r, err := d.settings.Get(ctx, settingsDefault)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err == nil {
			d.mu.Lock()
			d.defaults = r.Value
			d.mu.Unlock()
		}
	}
	return nil
}

// put and remove maintain the indexes; d.mu is held.
func (d *Directory) put(e *entry) {
	d.byObjectID[e.rec.ObjectID] = e
	if e.rec.AppID != "" {
		d.byAppID[lower(e.rec.AppID)] = e
	}
	if e.rec.AppObjectID != "" {
		d.byAppObjectID[e.rec.AppObjectID] = e
	}
	if e.rec.ResourceID != "" {
		d.byResourceID[resourceKey(e.rec.ResourceID)] = e
	}
	if e.rec.UserName != "" {
		d.byUserName[lower(e.rec.UserName)] = e
	}
	for _, u := range e.rec.IdentifierURIs {
		d.byIdentifierURI[apiKey(e.rec.TenantID, NormalizeIdentifierURI(u))] = e
	}
}

func (d *Directory) remove(e *entry) {
	delete(d.byObjectID, e.rec.ObjectID)
	if d.byAppID[lower(e.rec.AppID)] == e {
		delete(d.byAppID, lower(e.rec.AppID))
	}
	if d.byAppObjectID[e.rec.AppObjectID] == e {
		delete(d.byAppObjectID, e.rec.AppObjectID)
	}
	if d.byResourceID[resourceKey(e.rec.ResourceID)] == e {
		delete(d.byResourceID, resourceKey(e.rec.ResourceID))
	}
	if d.byUserName[lower(e.rec.UserName)] == e {
		delete(d.byUserName, lower(e.rec.UserName))
	}
	for _, u := range e.rec.IdentifierURIs {
		if k := apiKey(e.rec.TenantID, NormalizeIdentifierURI(u)); d.byIdentifierURI[k] == e {
			delete(d.byIdentifierURI, k)
		}
	}
}

// written makes this node's cache show a write before the writer returns.
func (d *Directory) written(ctx context.Context, kind, key string) error {
	if err := d.refresh(ctx, kind, key); err != nil {
		return storeError(err)
	}
	return nil
}

func (d *Directory) lookup(objectID string) *entry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.byObjectID[lower(objectID)]
}

// Principal returns the principal with object id objectID (the token's oid):
// a service principal, a managed identity or a person. It reads memory and,
// on a miss, storage (an object created on another node a moment ago).
// ErrNotFound.
func (d *Directory) Principal(ctx context.Context, objectID string) (gatehouse.Principal, error) {
	oid, ok := gatehouse.NormalizeGUID(objectID)
	if !ok {
		return gatehouse.Principal{}, notFound("The principal %q does not exist.", clip(objectID))
	}
	if e := d.lookup(oid); e != nil && e.isPrincipal() {
		return e.principal, nil
	}
	r, err := d.principals.Get(ctx, oid)
	if errors.Is(err, storage.ErrNotFound) {
		return gatehouse.Principal{}, notFound("The principal %q does not exist.", oid)
	}
	if err != nil {
		return gatehouse.Principal{}, storeError(err)
	}
	if r.Value.Kind == kindApplication && !r.Value.ServicePrincipal {
		return gatehouse.Principal{}, notFound("The principal %q does not exist.", oid)
	}
	return newEntry(&r.Value, r.Revision).principal, nil
}

// PrincipalByClientID returns the service principal or managed identity
// whose application (client) id is clientID, from memory. ErrNotFound.
func (d *Directory) PrincipalByClientID(clientID string) (gatehouse.Principal, error) {
	d.mu.RLock()
	e := d.byAppID[lower(clientID)]
	d.mu.RUnlock()
	if e == nil || (e.rec.Kind == kindApplication && !e.rec.ServicePrincipal) {
		return gatehouse.Principal{}, notFound("No service principal has the application id %q.", clip(clientID))
	}
	return e.principal, nil
}

// HasRole reports whether the principal with objectID holds any of the
// directory roles (template ids). Disabled principals hold none.
func (d *Directory) HasRole(objectID string, roles ...string) bool {
	e := d.lookup(objectID)
	if e == nil || !e.rec.Enabled || !e.isPrincipal() {
		return false
	}
	for _, have := range e.rec.Roles {
		for _, want := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

func lower(s string) string { return strings.ToLower(s) }

func resourceKey(id string) string {
	if id == "" {
		return ""
	}
	if p, err := gatehouse.ParseResourceID(id); err == nil {
		return p.Key()
	}
	return strings.ToLower(id)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
