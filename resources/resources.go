package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Storage kinds of the records this package owns.
const (
	KindSubscription = "resources.subscription"
	KindGroup        = "resources.group"
	KindDefaults     = "resources.defaults"
)

// DefaultGroup is the name of the resource group created on first start.
const DefaultGroup = "default"

// DefaultLocation is the location of what Gatehouse creates by itself.
const DefaultLocation = "local"

// Subscription is an ARM subscription.
type Subscription struct {
	// ID is the subscription GUID (lower case).
	ID          string    `json:"id"`
	DisplayName string    `json:"displayName"`
	TenantID    string    `json:"tenantId"`
	State       string    `json:"state"`
	CreatedOn   time.Time `json:"createdOn"`
}

// Group is a resource group.
type Group struct {
	Subscription string            `json:"subscription"`
	Name         string            `json:"name"`
	Location     string            `json:"location"`
	Tags         map[string]string `json:"tags,omitempty"`
	CreatedOn    time.Time         `json:"createdOn"`
	UpdatedOn    time.Time         `json:"updatedOn"`
	CreatedBy    string            `json:"createdBy,omitempty"`
	UpdatedBy    string            `json:"updatedBy,omitempty"`
}

// ID returns the group's ARM id.
func (g *Group) ID() *gatehouse.ResourceID {
	return &gatehouse.ResourceID{Subscription: g.Subscription, ResourceGroup: g.Name}
}

// Defaults records what the first start created.
type Defaults struct {
	Subscription string `json:"subscription"`
	Group        string `json:"group"`
	Bootstrapped bool   `json:"bootstrapped"`
}

// Options configure a Service.
type Options struct {
	Now func() time.Time
}

// Service stores subscriptions and resource groups. Management calls read
// them from storage (they are not on any hot path). Safe for concurrent use.
type Service struct {
	subs     *storage.Table[Subscription]
	groups   *storage.Table[Group]
	defaults *storage.Table[Defaults]
	locks    *storage.Table[Lock]
	tagNames *storage.Table[TagName]
	now      func() time.Time
}

// New returns the service over store.
func New(store storage.Objects, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{
		subs:     storage.NewTable[Subscription](store, KindSubscription),
		groups:   storage.NewTable[Group](store, KindGroup),
		defaults: storage.NewTable[Defaults](store, KindDefaults),
		locks:    storage.NewTable[Lock](store, KindLock),
		tagNames: storage.NewTable[TagName](store, KindTagName),
		now:      opts.Now,
	}
}

// EnsureDefaults creates, once per installation, the default subscription
// in tenantID and the resource group "default", and runs bootstrap (which
// grants the bootstrap principal its role) before recording that it is
// done. It returns the defaults. See doc.go for why it is safe to repeat.
func (s *Service) EnsureDefaults(ctx context.Context, tenantID string, bootstrap func(ctx context.Context, sub *Subscription, group *Group) error) (*Defaults, error) {
	rec, err := s.defaults.Create(ctx, &storage.Record[Defaults]{Key: "default",
		Value: Defaults{Subscription: gatehouse.NewGUID(), Group: DefaultGroup}})
	if errors.Is(err, storage.ErrAlreadyExists) {
		rec, err = s.defaults.Get(ctx, "default")
	}
	if err != nil {
		return nil, fmt.Errorf("resources: defaults: %w", err)
	}
	d := rec.Value
	now := storage.Now(s.now())
	sub := &Subscription{ID: d.Subscription, DisplayName: "Gatehouse", TenantID: tenantID, State: "Enabled", CreatedOn: now}
	if _, err := s.subs.Create(ctx, &storage.Record[Subscription]{Key: sub.ID, Value: *sub}); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return nil, fmt.Errorf("resources: default subscription: %w", err)
	}
	if d.Bootstrapped {
		return &d, nil
	}
	group := &Group{Subscription: sub.ID, Name: d.Group, Location: DefaultLocation, CreatedOn: now, UpdatedOn: now}
	if _, err := s.groups.Create(ctx, &storage.Record[Group]{Key: groupKey(sub.ID, d.Group), Ref: sub.ID, Value: *group}); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return nil, fmt.Errorf("resources: default group: %w", err)
	}
	if bootstrap != nil {
		if err := bootstrap(ctx, sub, group); err != nil {
			return nil, fmt.Errorf("resources: bootstrap: %w", err)
		}
	}
	rec, err = s.defaults.Update(ctx, "default", func(r *storage.Record[Defaults]) error {
		r.Value.Bootstrapped = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resources: defaults: %w", err)
	}
	return &rec.Value, nil
}

func groupKey(sub, name string) string {
	return "/subscriptions/" + strings.ToLower(sub) + "/resourcegroups/" + strings.ToLower(name)
}

// Subscription returns the subscription id (a GUID, any case).
//
// Errors (*gatehouse.Error): 400 InvalidSubscriptionId, 404
// SubscriptionNotFound, 503.
func (s *Service) Subscription(ctx context.Context, id string) (*Subscription, error) {
	key, ok := gatehouse.NormalizeGUID(id)
	if !ok {
		return nil, gatehouse.BadRequestf("InvalidSubscriptionId",
			"The provided subscription identifier '%s' is malformed or invalid.", clip(id))
	}
	rec, err := s.subs.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, gatehouse.NotFoundf("SubscriptionNotFound", "The subscription '%s' could not be found.", key)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &rec.Value, nil
}

// Subscriptions returns every subscription.
func (s *Service) Subscriptions(ctx context.Context) ([]*Subscription, error) {
	recs, err := s.subs.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Subscription, len(recs))
	for i, r := range recs {
		out[i] = &r.Value
	}
	return out, nil
}

// Group returns the group name in subscription sub (which must exist).
//
// Errors (*gatehouse.Error): 404 ResourceGroupNotFound, 503.
func (s *Service) Group(ctx context.Context, sub, name string) (*Group, error) {
	rec, err := s.groups.Get(ctx, groupKey(sub, name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errGroupNotFound(name)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &rec.Value, nil
}

func errGroupNotFound(name string) error {
	return gatehouse.NotFoundf("ResourceGroupNotFound", "Resource group '%s' could not be found.", clip(name))
}

// Groups returns the groups of subscription sub, ordered by name.
func (s *Service) Groups(ctx context.Context, sub string) ([]*Group, error) {
	recs, err := s.groups.Collect(ctx, storage.ListOptions{Prefix: groupKey(sub, "")})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Group, len(recs))
	for i, r := range recs {
		out[i] = &r.Value
	}
	return out, nil
}

// GroupSpec is what a caller asks for in a group PUT or PATCH.
type GroupSpec struct {
	Location string
	// Tags replaces the group's tags when not nil.
	Tags map[string]string
}

// PutGroup creates the group or updates its tags (a group's location cannot
// change). by is the caller's object id.
//
// A new group must be in one of Locations; one that exists keeps the
// location it has (which may predate the list).
//
// Errors (*gatehouse.Error): 400 InvalidResourceGroup, LocationRequired,
// InvalidLocation, LocationNotAvailableForResourceGroup, InvalidTag; 409
// InvalidResourceGroupLocation; 503.
func (s *Service) PutGroup(ctx context.Context, sub, name string, spec GroupSpec, by string) (g *Group, created bool, err error) {
	if err := ValidateGroupName(name); err != nil {
		return nil, false, err
	}
	loc, err := NormalizeLocation(spec.Location)
	if err != nil {
		return nil, false, err
	}
	if err := ValidateTags(spec.Tags); err != nil {
		return nil, false, err
	}
	now := storage.Now(s.now())
	value := Group{Subscription: strings.ToLower(sub), Name: name, Location: loc, Tags: maps.Clone(spec.Tags),
		CreatedOn: now, UpdatedOn: now, CreatedBy: by, UpdatedBy: by}
	key := groupKey(sub, name)
	known := KnownLocation(loc)
	if known {
		rec, err := s.groups.Create(ctx, &storage.Record[Group]{Key: key, Ref: value.Subscription, Value: value})
		if err == nil {
			return &rec.Value, true, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return nil, false, unavailable(err)
		}
	}
	rec, err := s.groups.Update(ctx, key, func(r *storage.Record[Group]) error {
		if r.Value.Location != loc {
			return gatehouse.Errorf(http.StatusConflict, "InvalidResourceGroupLocation",
				"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", loc, r.Value.Location)
		}
		if spec.Tags != nil {
			r.Value.Tags = maps.Clone(spec.Tags)
		}
		r.Value.UpdatedOn, r.Value.UpdatedBy = now, by
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) && !known {
		return nil, false, errGroupLocation(spec.Location)
	}
	if err != nil {
		return nil, false, groupError(err, name)
	}
	return &rec.Value, false, nil
}

// PatchGroup replaces the tags of an existing group.
func (s *Service) PatchGroup(ctx context.Context, sub, name string, tags map[string]string, by string) (*Group, error) {
	if err := ValidateTags(tags); err != nil {
		return nil, err
	}
	now := storage.Now(s.now())
	rec, err := s.groups.Update(ctx, groupKey(sub, name), func(r *storage.Record[Group]) error {
		if tags != nil {
			r.Value.Tags = maps.Clone(tags)
		}
		r.Value.UpdatedOn, r.Value.UpdatedBy = now, by
		return nil
	})
	if err != nil {
		return nil, groupError(err, name)
	}
	return &rec.Value, nil
}

// DeleteGroup deletes the group's record and reports whether it existed.
// The caller deletes what the group contains first.
func (s *Service) DeleteGroup(ctx context.Context, sub, name string) (bool, error) {
	err := s.groups.Delete(ctx, groupKey(sub, name))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	return true, nil
}

func groupError(err error, name string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errGroupNotFound(name)
	}
	return unavailable(err)
}

func unavailable(err error) error {
	if _, ok := gatehouse.AsError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return gatehouse.ErrUnavailable.WithCause(err)
}

// ValidateGroupName applies ARM's rule: 1 to 90 characters; letters
// and digits (Unicode), '-', '_', '.', '(' and ')'; not ending in '.'.
func ValidateGroupName(name string) error {
	bad := func(why string) error {
		return gatehouse.BadRequestf("InvalidResourceGroup",
			"The provided resource group name '%s' is invalid: %s. The name can only be a letter, digit, '-', '.', '(', ')' or '_', up to 90 characters, and cannot end in '.'.",
			clip(name), why)
	}
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		return bad("it is not valid UTF-8")
	case n == 0 || n > 90:
		return bad("its length is out of range")
	case strings.HasSuffix(name, "."):
		return bad("it ends in '.'")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.()", r) {
			return bad("it has invalid characters")
		}
	}
	return nil
}

// NormalizeLocation returns ARM's form of a location ("West US" → "westus").
//
// Errors (*gatehouse.Error): 400 LocationRequired, InvalidLocation.
func NormalizeLocation(loc string) (string, error) {
	loc = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(loc), " ", ""))
	if loc == "" {
		return "", gatehouse.BadRequestf("LocationRequired", "The location property is required for this definition.").WithTarget("location")
	}
	if len(loc) > 64 {
		return "", gatehouse.BadRequestf("InvalidLocation", "The location '%s' is not valid.", clip(loc)).WithTarget("location")
	}
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", gatehouse.BadRequestf("InvalidLocation", "The location '%s' is not valid.", clip(loc)).WithTarget("location")
		}
	}
	return loc, nil
}

// ValidateTags applies ARM's limits: at most 50 tags, names of 1 to 512
// characters without < > % & \ ? /, values of at most 256 characters; and
// no two names that differ only in case, since ARM's tag names compare
// case-insensitively (a later Merge or Delete would take both as one).
func ValidateTags(tags map[string]string) error {
	if len(tags) > 50 {
		return gatehouse.BadRequestf("InvalidTag", "A resource can have at most 50 tags.").WithTarget("tags")
	}
	seen := make(map[string]string, len(tags))
	for k, v := range tags {
		if other, ok := seen[strings.ToLower(k)]; ok {
			a, b := min(k, other), max(k, other) // the same message whatever the map's order
			return gatehouse.BadRequestf("InvalidTag", "The tag names '%s' and '%s' differ only in case: tag names are case-insensitive.", clip(a), clip(b)).WithTarget("tags")
		}
		seen[strings.ToLower(k)] = k
		if k == "" || utf8.RuneCountInString(k) > 512 || strings.ContainsAny(k, `<>%&\?/`) || !utf8.ValidString(k) {
			return gatehouse.BadRequestf("InvalidTag", "The tag name '%s' is not valid.", clip(k)).WithTarget("tags")
		}
		if utf8.RuneCountInString(v) > 256 || !utf8.ValidString(v) {
			return gatehouse.BadRequestf("InvalidTag", "The value of tag '%s' is longer than 256 characters.", clip(k)).WithTarget("tags")
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// WithTag returns a copy of tags with name set to value, replacing any tag
// of that name in another case (ARM's tag names compare
// case-insensitively).
func WithTag(tags map[string]string, name, value string) map[string]string {
	out := WithoutTag(tags, name, "")
	out[name] = value
	return out
}

// WithoutTag returns a copy of tags without the tags named name, in any
// case, whose value is value — or whatever their value when value is "".
func WithoutTag(tags map[string]string, name, value string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		if !strings.EqualFold(k, name) || (value != "" && v != value) {
			out[k] = v
		}
	}
	return out
}
