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

// Predefined tags (az tag create --name, az tag add-value; armresources'
// TagsClient.CreateOrUpdate, CreateOrUpdateValue, Delete, DeleteValue): a
// subscription's list of tag names, each with its list of values, that
// people agree to tag with before any resource carries them. ARM's tag
// list (GET {sub}/tagNames) shows them beside the names and values in use,
// with a count of 0 while nothing carries them.
//
// Names compare case-insensitively, as ARM's tag names do (the first
// spelling is kept); values exactly. A name cannot be removed while a value
// is still predefined for it, and neither while a resource carries it: the
// caller (armapi, which sees every kind of resource) checks the second.

// KindTagName holds predefined tag names. Key: {subscription}/{name},
// lower case; Ref: the subscription, lower case.
const KindTagName = "resources.tagname"

// Limits. ARM documents the name and value lengths; the counts bound what
// one subscription may store.
const (
	maxTagName       = 512
	maxTagValue      = 256
	maxTagNames      = 1000 // per subscription
	maxTagNameValues = 1000 // per name
)

// TagName is one predefined tag name and its predefined values.
type TagName struct {
	Subscription string    `json:"subscription"`
	Name         string    `json:"name"`
	Values       []string  `json:"values,omitempty"`
	CreatedOn    time.Time `json:"createdOn"`
	CreatedBy    string    `json:"createdBy,omitempty"`
	// Deleting marks a name whose delete was decided (no values were
	// left) and is under way; such a record counts as gone.
	Deleting bool `json:"deleting,omitempty"`
}

func tagNameKey(sub, name string) string {
	return strings.ToLower(sub) + "/" + strings.ToLower(name)
}

// reservedTagPrefixes are the prefixes ARM keeps for Azure's own tags.
var reservedTagPrefixes = []string{"microsoft", "azure", "windows"}

func validTagName(name string) error {
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxTagName {
		return gatehouse.BadRequestf("InvalidTagName", "A tag name has 1 to %d characters; '%s' has not.", maxTagName, clip(name))
	}
	if strings.ContainsAny(name, `<>%&\?/`) || hasControl(name) {
		return gatehouse.BadRequestf("InvalidTagNameCharacters",
			"The tag name '%s' has reserved characters '<,>,%%,&,\\,?,/' or control characters.", clip(name))
	}
	lower := strings.ToLower(name)
	for _, p := range reservedTagPrefixes {
		if strings.HasPrefix(lower, p) {
			return gatehouse.BadRequestf("InvalidTagName",
				"The tag name '%s' starts with '%s', which is reserved for Azure's own tags (so are 'microsoft', 'azure' and 'windows').", clip(name), p)
		}
	}
	return nil
}

func validTagValue(value string) error {
	if strings.TrimSpace(value) == "" || !utf8.ValidString(value) || utf8.RuneCountInString(value) > maxTagValue || hasControl(value) {
		return gatehouse.BadRequestf("InvalidTagValue", "A tag value has 1 to %d printable characters; '%s' has not.", maxTagValue, clip(value))
	}
	return nil
}

func errTagNameNotFound(name string) error {
	return gatehouse.NotFoundf("TagNameNotFound", "The tag name '%s' is not a predefined tag name of the subscription.", clip(name))
}

// PutTagName adds name to subscription sub's predefined tag names (the
// caller has checked that sub exists); created is false when it was there
// already, in any case, which is then left as it was.
//
// Errors (*gatehouse.Error): 400 InvalidTagName, InvalidTagNameCharacters,
// TagNameLimitExceeded; 503.
func (s *Service) PutTagName(ctx context.Context, sub, name, by string) (t *TagName, created bool, err error) {
	if err := validTagName(name); err != nil {
		return nil, false, err
	}
	key := tagNameKey(sub, name)
	rec, err := s.tagNames.Get(ctx, key)
	if err == nil && !rec.Value.Deleting {
		return &rec.Value, false, nil
	}
	if err == nil {
		// A delete decided but not finished (it was interrupted): finish it.
		if err := s.tagNames.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, false, unavailable(err)
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, false, unavailable(err)
	}
	existing, err := s.TagNames(ctx, sub)
	if err != nil {
		return nil, false, err
	}
	if len(existing) >= maxTagNames {
		return nil, false, gatehouse.BadRequestf("TagNameLimitExceeded", "A subscription has at most %d predefined tag names.", maxTagNames)
	}
	v := TagName{Subscription: sub, Name: name, CreatedOn: storage.Now(s.now()), CreatedBy: by}
	rec, err = s.tagNames.Create(ctx, &storage.Record[TagName]{Key: key, Ref: strings.ToLower(sub), Value: v})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return s.PutTagName(ctx, sub, name, by) // added a moment ago elsewhere
	}
	if err != nil {
		return nil, false, unavailable(err)
	}
	return &rec.Value, true, nil
}

// PutTagValue adds value to the predefined values of the predefined tag
// name (in any case); created is false when it was there already.
//
// Errors (*gatehouse.Error): 400 InvalidTagValue, TagValueLimitExceeded;
// 404 TagNameNotFound; 503.
func (s *Service) PutTagValue(ctx context.Context, sub, name, value string) (t *TagName, created bool, err error) {
	if err := validTagValue(value); err != nil {
		return nil, false, err
	}
	rec, err := s.tagNames.Update(ctx, tagNameKey(sub, name), func(r *storage.Record[TagName]) error {
		created = false
		if r.Value.Deleting {
			return errTagNameNotFound(name)
		}
		if slices.Contains(r.Value.Values, value) {
			return nil
		}
		if len(r.Value.Values) >= maxTagNameValues {
			return gatehouse.BadRequestf("TagValueLimitExceeded", "A predefined tag name has at most %d predefined values.", maxTagNameValues)
		}
		r.Value.Values = append(slices.Clone(r.Value.Values), value)
		slices.Sort(r.Value.Values)
		created = true
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, errTagNameNotFound(name)
	}
	if err != nil {
		if _, ok := gatehouse.AsError(err); ok {
			return nil, false, err
		}
		return nil, false, unavailable(err)
	}
	return &rec.Value, created, nil
}

// DeleteTagName removes the predefined tag name and reports whether it
// was there. inUse reports whether a resource, group or subscription of
// sub carries a tag of that name (any case); it is asked only when the
// name exists, once its values are gone.
//
// Errors (*gatehouse.Error): 409 TagNameHasValues, TagNameInUse; 503.
func (s *Service) DeleteTagName(ctx context.Context, sub, name string, inUse func() (bool, error)) (bool, error) {
	key := tagNameKey(sub, name)
	rec, err := s.tagNames.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	if !rec.Value.Deleting {
		if err := errTagNameHasValues(&rec.Value); err != nil {
			return false, err
		}
		used, err := inUse()
		if err != nil {
			return false, err
		}
		if used {
			return false, gatehouse.Errorf(http.StatusConflict, "TagNameInUse",
				"The tag name '%s' is in use on a resource of the subscription and cannot be deleted.", clip(rec.Value.Name))
		}
		// Decided where a value added since the read would be seen: such a
		// value keeps the name.
		_, err = s.tagNames.Update(ctx, key, func(r *storage.Record[TagName]) error {
			if err := errTagNameHasValues(&r.Value); err != nil {
				return err
			}
			r.Value.Deleting = true
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			if _, ok := gatehouse.AsError(err); ok {
				return false, err
			}
			return false, unavailable(err)
		}
	}
	err = s.tagNames.Delete(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	return true, nil
}

func errTagNameHasValues(t *TagName) error {
	if len(t.Values) == 0 {
		return nil
	}
	return gatehouse.Errorf(http.StatusConflict, "TagNameHasValues",
		"The tag name '%s' still has predefined values (%d); delete them first.", clip(t.Name), len(t.Values))
}

// DeleteTagValue removes value from the predefined values of the
// predefined tag name and reports whether it was there. inUse reports
// whether anything in sub carries the tag name (any case) with that value;
// it is asked only when the value is predefined.
//
// Errors (*gatehouse.Error): 404 TagNameNotFound; 409 TagValueInUse; 503.
func (s *Service) DeleteTagValue(ctx context.Context, sub, name, value string, inUse func() (bool, error)) (bool, error) {
	key := tagNameKey(sub, name)
	rec, err := s.tagNames.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, errTagNameNotFound(name)
	}
	if err != nil {
		return false, unavailable(err)
	}
	if rec.Value.Deleting {
		return false, errTagNameNotFound(name)
	}
	if !slices.Contains(rec.Value.Values, value) {
		return false, nil
	}
	used, err := inUse()
	if err != nil {
		return false, err
	}
	if used {
		return false, gatehouse.Errorf(http.StatusConflict, "TagValueInUse",
			"The value '%s' of tag '%s' is in use on a resource of the subscription and cannot be deleted.", clip(value), clip(rec.Value.Name))
	}
	removed := false
	_, err = s.tagNames.Update(ctx, key, func(r *storage.Record[TagName]) error {
		i := slices.Index(r.Value.Values, value)
		removed = i >= 0
		if removed {
			r.Value.Values = slices.Delete(slices.Clone(r.Value.Values), i, i+1)
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return false, errTagNameNotFound(name)
	}
	if err != nil {
		return false, unavailable(err)
	}
	return removed, nil
}

// TagNames returns subscription sub's predefined tag names, by name (case
// ignored).
func (s *Service) TagNames(ctx context.Context, sub string) ([]*TagName, error) {
	recs, err := s.tagNames.Collect(ctx, storage.ListOptions{Ref: strings.ToLower(sub)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*TagName, 0, len(recs))
	for _, r := range recs {
		if !r.Value.Deleting {
			out = append(out, &r.Value)
		}
	}
	slices.SortFunc(out, func(a, b *TagName) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}
