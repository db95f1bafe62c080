package vault

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// Secret states (secretRecord.State).
const (
	secretActive   = ""
	secretDeleted  = "deleted"
	secretPurging  = "purging"
	deletedRefPart = "/deleted"
)

// secretRecord is one secret name in one vault instance: which version is
// the latest, and whether the secret is soft-deleted. Its versions are
// versionRecords under the same key prefix.
type secretRecord struct {
	// Name keeps the case of the secret's first set.
	Name           string    `json:"name"`
	Latest         string    `json:"latest"`
	State          string    `json:"state,omitempty"`
	DeletedDate    time.Time `json:"deletedDate,omitzero"`
	ScheduledPurge time.Time `json:"scheduledPurge,omitzero"`
	CreatedAt      time.Time `json:"createdAt"`
}

// versionRecord is one version: its attributes in Data, its value in the
// object's Sealed blob (AAD(KindVersion, key)).
type versionRecord struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
}

// Secret is a secret version as the data plane shows it. Value is set only
// by SetSecret and GetSecret; the caller writes it out and drops it.
type Secret struct {
	Name        string
	Version     string
	Value       []byte
	ContentType string
	Tags        map[string]string
	Enabled     bool
	// NotBefore and Expires are zero when unset.
	NotBefore, Expires time.Time
	Created, Updated   time.Time
	// DeletedDate and ScheduledPurgeDate are set for deleted secrets.
	DeletedDate, ScheduledPurgeDate time.Time
}

// SetInput is a set request: a new version with these attributes.
type SetInput struct {
	Value       []byte
	ContentType string
	// Enabled defaults to true.
	Enabled            *bool
	NotBefore, Expires time.Time
	Tags               map[string]string
}

// UpdateInput changes a version's attributes; nil fields are kept.
type UpdateInput struct {
	ContentType        *string
	Enabled            *bool
	NotBefore, Expires *time.Time
	// Tags replaces the tags when not nil.
	Tags map[string]string
}

func secretKey(v *Vault, lname string) string { return v.InternalID + "/" + lname }

func versionKey(skey, version string) string { return skey + "/" + version }

func unixPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func fromUnix(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.Unix(*p, 0).UTC()
}

func (r *versionRecord) view() *Secret {
	return &Secret{Name: r.Name, Version: r.Version, ContentType: r.ContentType, Tags: maps.Clone(r.Tags),
		Enabled: r.Enabled, NotBefore: fromUnix(r.NotBefore), Expires: fromUnix(r.Expires),
		Created: r.Created, Updated: r.Updated}
}

// cachedSecret reads a secret record through the read cache.
func (s *Service) cachedSecret(ctx context.Context, key string) (*storage.Record[secretRecord], error) {
	if r, ok := s.secretCache.Get(key); ok {
		return r, nil
	}
	gen := s.gen.Load()
	r, err := s.secrets.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if s.gen.Load() == gen {
		s.secretCache.Add(key, r)
	}
	return r, nil
}

// cachedVersion reads a version record (value sealed) through the cache.
func (s *Service) cachedVersion(ctx context.Context, key string) (*storage.Record[versionRecord], error) {
	if r, ok := s.versionCache.Get(key); ok {
		return r, nil
	}
	gen := s.gen.Load()
	r, err := s.versions.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if s.gen.Load() == gen {
		s.versionCache.Add(key, r)
	}
	return r, nil
}

// liveSecret returns the active secret record name (validated), or the
// data plane's 404.
func (s *Service) liveSecret(ctx context.Context, v *Vault, name string) (string, *storage.Record[secretRecord], error) {
	if err := ValidateSecretName(name); err != nil {
		return "", nil, err
	}
	key := secretKey(v, lower(name))
	rec, err := s.cachedSecret(ctx, key)
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Value.State != secretActive {
		return key, nil, errSecretNotFound(name, "")
	}
	if err != nil {
		return key, nil, unavailable(err)
	}
	return key, rec, nil
}

// version returns the version record of an active secret; version "" is
// the latest.
func (s *Service) version(ctx context.Context, v *Vault, name, version string) (*storage.Record[versionRecord], error) {
	skey, sec, err := s.liveSecret(ctx, v, name)
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = sec.Value.Latest
	} else if !validVersion(version) {
		return nil, errSecretNotFound(name, version)
	}
	rec, err := s.cachedVersion(ctx, versionKey(skey, lower(version)))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSecretNotFound(name, version)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return rec, nil
}

// GetSecret returns a version of the secret with its value (version "" =
// the latest). The read path touches storage only on a cache miss and
// never writes; the plaintext exists only in the returned Secret.
//
// Errors (*gatehouse.Error): 400 BadParameter (name); 403 Forbidden /
// SecretDisabled; 404 SecretNotFound; 503.
func (s *Service) GetSecret(ctx context.Context, v *Vault, name, version string) (*Secret, error) {
	rec, err := s.version(ctx, v, name, version)
	if err != nil {
		return nil, err
	}
	if !rec.Value.Enabled {
		return nil, errDisabled()
	}
	value, err := s.opts.Sealer.Open(rec.Sealed, keyring.AAD(KindVersion, rec.Key))
	if err != nil {
		return nil, gatehouse.ErrInternal.WithCause(err)
	}
	out := rec.Value.view()
	out.Value = value
	return out, nil
}

// GetSecretProperties returns a version's attributes without its value
// (readMetadata). Disabled versions are shown.
func (s *Service) GetSecretProperties(ctx context.Context, v *Vault, name, version string) (*Secret, error) {
	rec, err := s.version(ctx, v, name, version)
	if err != nil {
		return nil, err
	}
	return rec.Value.view(), nil
}

func validateSet(name string, in *SetInput) error {
	if err := ValidateSecretName(name); err != nil {
		return err
	}
	if len(in.Value) > MaxValueBytes {
		return gatehouse.BadRequestf(CodeBadParameter, "The secret value is %d bytes, more than the maximum of %d bytes.", len(in.Value), MaxValueBytes).WithTarget("value")
	}
	if err := validateContentType(in.ContentType); err != nil {
		return err
	}
	if err := validateTimes(in.NotBefore, in.Expires); err != nil {
		return err
	}
	return validateTags(in.Tags)
}

// validateTimes refuses an expiry before the not-before time, and a time
// outside 1970 through 9999 (what the wire's Unix seconds carry).
func validateTimes(nbf, exp time.Time) error {
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"nbf", nbf}, {"exp", exp}} {
		if !t.at.IsZero() && (t.at.Before(time.Unix(0, 0)) || t.at.Year() > 9999) {
			return gatehouse.BadRequestf(CodeBadParameter, "The attribute '%s' is out of range: a time from 1970 through 9999 is required.", t.name).WithTarget("attributes." + t.name)
		}
	}
	if !nbf.IsZero() && !exp.IsZero() && exp.Before(nbf) {
		return gatehouse.BadRequestf(CodeBadParameter, "The expiry time (exp) must be after the not-before time (nbf).").WithTarget("attributes")
	}
	return nil
}

// SetSecret creates a new version of the secret (and the secret, on its
// first set) and makes it the latest. Storage order: the version record
// first, then the secret's pointer to it, so a crash can leave an unused
// version, never a secret pointing at nothing.
//
// Errors (*gatehouse.Error): 400 BadParameter (name, value size, content
// type, tags, times); 409 Conflict / ObjectIsDeletedButRecoverable,
// ObjectIsBeingDeleted; 503.
func (s *Service) SetSecret(ctx context.Context, v *Vault, name string, in SetInput) (*Secret, error) {
	if err := validateSet(name, &in); err != nil {
		return nil, err
	}
	skey := secretKey(v, lower(name))
	cur, err := s.secrets.Get(ctx, skey)
	switch {
	case err == nil && cur.Value.State == secretDeleted:
		return nil, errDeletedButRecoverable(name)
	case err == nil && cur.Value.State == secretPurging:
		return nil, errBeingDeleted(name)
	case err == nil:
		name = cur.Value.Name
	case !errors.Is(err, storage.ErrNotFound):
		return nil, unavailable(err)
	}
	version, err := s.newID()
	if err != nil {
		return nil, err
	}
	vkey := versionKey(skey, version)
	now := s.now()
	vr := versionRecord{Name: name, Version: version, ContentType: in.ContentType, Tags: maps.Clone(in.Tags),
		Enabled: in.Enabled == nil || *in.Enabled, NotBefore: unixPtr(in.NotBefore), Expires: unixPtr(in.Expires),
		Created: now, Updated: now}
	sealed, err := s.opts.Sealer.Seal(in.Value, keyring.AAD(KindVersion, vkey))
	if err != nil {
		return nil, gatehouse.ErrInternal.WithCause(err)
	}
	if _, err := s.versions.Create(ctx, &storage.Record[versionRecord]{Key: vkey, Value: vr, Sealed: sealed}); err != nil {
		return nil, unavailable(err)
	}
	if err := s.pointLatest(ctx, v, skey, name, version, now); err != nil {
		// Best effort: the version is unreachable anyway.
		_ = s.versions.Delete(context.WithoutCancel(ctx), vkey)
		s.invalidate(vkey)
		return nil, err
	}
	s.invalidate(skey)
	out := vr.view()
	out.Value = in.Value
	return out, nil
}

// pointLatest makes version the latest of the secret, creating the secret
// record on its first set.
func (s *Service) pointLatest(ctx context.Context, v *Vault, skey, name, version string, now time.Time) error {
	_, err := s.secrets.Create(ctx, &storage.Record[secretRecord]{Key: skey, Ref: v.InternalID,
		Value: secretRecord{Name: name, Latest: version, CreatedAt: now}})
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrAlreadyExists) {
		return unavailable(err)
	}
	_, err = s.secrets.Update(ctx, skey, func(r *storage.Record[secretRecord]) error {
		switch r.Value.State {
		case secretDeleted:
			return errDeletedButRecoverable(r.Value.Name)
		case secretPurging:
			return errBeingDeleted(r.Value.Name)
		}
		r.Value.Latest = version
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return errBeingDeleted(name) // purged between the two writes
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// UpdateSecret changes a version's attributes (version "" = the latest)
// and returns it without its value.
//
// Errors (*gatehouse.Error): 400 BadParameter; 404 SecretNotFound; 503.
func (s *Service) UpdateSecret(ctx context.Context, v *Vault, name, version string, in UpdateInput) (*Secret, error) {
	if in.ContentType != nil {
		if err := validateContentType(*in.ContentType); err != nil {
			return nil, err
		}
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	cur, err := s.version(ctx, v, name, version)
	if err != nil {
		return nil, err
	}
	rec, err := s.versions.Update(ctx, cur.Key, func(r *storage.Record[versionRecord]) error {
		x := &r.Value
		if in.ContentType != nil {
			x.ContentType = *in.ContentType
		}
		if in.Enabled != nil {
			x.Enabled = *in.Enabled
		}
		if in.NotBefore != nil {
			x.NotBefore = unixPtr(*in.NotBefore)
		}
		if in.Expires != nil {
			x.Expires = unixPtr(*in.Expires)
		}
		if in.Tags != nil {
			x.Tags = maps.Clone(in.Tags)
		}
		if err := validateTimes(fromUnix(x.NotBefore), fromUnix(x.Expires)); err != nil {
			return err
		}
		x.Updated = s.now()
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSecretNotFound(name, version)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s.invalidate(cur.Key)
	return rec.Value.view(), nil
}

// ListSecrets returns up to limit live secrets after the secret named
// after ("" = from the start), each with its latest version's attributes,
// and the name to continue after ("" at the end).
func (s *Service) ListSecrets(ctx context.Context, v *Vault, after string, limit int) ([]*Secret, string, error) {
	return s.listSecrets(ctx, v, v.InternalID, after, limit, secretActive)
}

// ListDeletedSecrets is ListSecrets for soft-deleted secrets.
func (s *Service) ListDeletedSecrets(ctx context.Context, v *Vault, after string, limit int) ([]*Secret, string, error) {
	return s.listSecrets(ctx, v, v.InternalID+deletedRefPart, after, limit, secretDeleted)
}

func (s *Service) listSecrets(ctx context.Context, v *Vault, ref, after string, limit int, state string) ([]*Secret, string, error) {
	opts := storage.ListOptions{Prefix: v.InternalID + "/", Ref: ref, Limit: limit}
	if after != "" {
		opts.After = secretKey(v, lower(after))
	}
	recs, next, err := s.secrets.List(ctx, opts)
	if err != nil {
		return nil, "", unavailable(err)
	}
	out := make([]*Secret, 0, len(recs))
	for _, r := range recs {
		if r.Value.State != state {
			continue // purging
		}
		ver, err := s.cachedVersion(ctx, versionKey(r.Key, r.Value.Latest))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", unavailable(err)
		}
		sec := ver.Value.view()
		sec.Name, sec.DeletedDate, sec.ScheduledPurgeDate = r.Value.Name, r.Value.DeletedDate, r.Value.ScheduledPurge
		out = append(out, sec)
	}
	if next != "" && len(recs) > 0 {
		next = lower(recs[len(recs)-1].Value.Name)
	}
	return out, next, nil
}

// ListVersions returns up to limit versions of a live secret after the
// version after, and the version to continue after ("" at the end). A name
// with no live secret (none, or a deleted one) has no versions: an empty
// list, as Azure answers (the SDKs' pagers expect it), never the kept
// versions of a deleted secret.
//
// Errors (*gatehouse.Error): 400 BadParameter; 503.
func (s *Service) ListVersions(ctx context.Context, v *Vault, name, after string, limit int) ([]*Secret, string, error) {
	skey, _, err := s.liveSecret(ctx, v, name)
	if e, ok := errors.AsType[*gatehouse.Error](err); ok && e.Code == CodeSecretNotFound {
		return []*Secret{}, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	opts := storage.ListOptions{Prefix: skey + "/", Limit: limit}
	if after != "" {
		opts.After = versionKey(skey, lower(after))
	}
	recs, next, err := s.versions.List(ctx, opts)
	if err != nil {
		return nil, "", unavailable(err)
	}
	out := make([]*Secret, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Value.view())
	}
	if next != "" && len(recs) > 0 {
		next = recs[len(recs)-1].Value.Version
	}
	return out, next, nil
}
