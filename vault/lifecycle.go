package vault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// DeleteSecret deletes every version of the secret: a soft delete (kept
// until its scheduled purge date, recoverable) when the vault has soft
// delete, an immediate purge otherwise. It returns the deleted secret's
// latest version without its value.
//
// Errors (*gatehouse.Error): 400 BadParameter; 404 SecretNotFound; 503.
func (s *Service) DeleteSecret(ctx context.Context, v *Vault, name string) (*Secret, error) {
	if err := ValidateSecretName(name); err != nil {
		return nil, err
	}
	skey := secretKey(v, lower(name))
	now := s.now()
	rec, err := s.secrets.Update(ctx, skey, func(r *storage.Record[secretRecord]) error {
		if r.Value.State != secretActive {
			return errSecretNotFound(name, "")
		}
		r.Ref = v.InternalID + deletedRefPart
		if !v.EnableSoftDelete {
			r.Value.State = secretPurging
			return nil
		}
		r.Value.State, r.Value.DeletedDate = secretDeleted, now
		r.Value.ScheduledPurge = now.Add(time.Duration(v.RetentionDays) * 24 * time.Hour)
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSecretNotFound(name, "")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s.invalidate(skey)
	out := s.deletedView(ctx, rec)
	if rec.Value.State == secretPurging {
		if err := s.finishSecretPurge(ctx, skey); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deletedView is the latest version's attributes plus the deletion dates.
func (s *Service) deletedView(ctx context.Context, rec *storage.Record[secretRecord]) *Secret {
	out := &Secret{Name: rec.Value.Name, Version: rec.Value.Latest}
	if ver, err := s.cachedVersion(ctx, versionKey(rec.Key, rec.Value.Latest)); err == nil {
		out = ver.Value.view()
	}
	out.Name, out.DeletedDate, out.ScheduledPurgeDate = rec.Value.Name, rec.Value.DeletedDate, rec.Value.ScheduledPurge
	return out
}

// GetDeletedSecret returns a soft-deleted secret (no value).
//
// Errors (*gatehouse.Error): 400 BadParameter; 404 SecretNotFound; 503.
func (s *Service) GetDeletedSecret(ctx context.Context, v *Vault, name string) (*Secret, error) {
	if err := ValidateSecretName(name); err != nil {
		return nil, err
	}
	rec, err := s.cachedSecret(ctx, secretKey(v, lower(name)))
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Value.State != secretDeleted {
		return nil, errDeletedSecretNotFound(name)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return s.deletedView(ctx, rec), nil
}

// RecoverSecret undoes a soft delete and returns the latest version
// without its value.
//
// Errors (*gatehouse.Error): 400 BadParameter; 404 SecretNotFound; 503.
func (s *Service) RecoverSecret(ctx context.Context, v *Vault, name string) (*Secret, error) {
	if err := ValidateSecretName(name); err != nil {
		return nil, err
	}
	skey := secretKey(v, lower(name))
	rec, err := s.secrets.Update(ctx, skey, func(r *storage.Record[secretRecord]) error {
		if r.Value.State != secretDeleted {
			return errDeletedSecretNotFound(name)
		}
		r.Ref = v.InternalID
		r.Value.State, r.Value.DeletedDate, r.Value.ScheduledPurge = secretActive, time.Time{}, time.Time{}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errDeletedSecretNotFound(name)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s.invalidate(skey)
	out := s.deletedView(ctx, rec)
	out.DeletedDate, out.ScheduledPurgeDate = time.Time{}, time.Time{}
	return out, nil
}

// PurgeSecret permanently deletes a soft-deleted secret and all its
// versions. Purge protection forbids it: the purge loop purges the secret
// at its scheduled date.
//
// Errors (*gatehouse.Error): 400 BadParameter; 403 Forbidden /
// ForbiddenByPolicy (purge protection); 404 SecretNotFound; 503.
func (s *Service) PurgeSecret(ctx context.Context, v *Vault, name string) error {
	if err := ValidateSecretName(name); err != nil {
		return err
	}
	if v.EnablePurgeProtection {
		return gatehouse.Errorf(http.StatusForbidden, CodeForbidden,
			"Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.").
			WithInner(CodeForbiddenByPolicy)
	}
	return s.purgeSecret(ctx, secretKey(v, lower(name)), name, false)
}

// purgeSecret marks a deleted secret purging, then removes its versions
// and itself. due (the purge loop) also requires the scheduled date to
// have passed.
func (s *Service) purgeSecret(ctx context.Context, skey, name string, due bool) error {
	now := s.now()
	_, err := s.secrets.Update(ctx, skey, func(r *storage.Record[secretRecord]) error {
		switch {
		case r.Value.State == secretPurging:
			return nil
		case r.Value.State != secretDeleted, due && r.Value.ScheduledPurge.After(now):
			return errDeletedSecretNotFound(name)
		}
		r.Value.State = secretPurging
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return errDeletedSecretNotFound(name)
	}
	if err != nil {
		return unavailable(err)
	}
	s.invalidate(skey)
	return s.finishSecretPurge(ctx, skey)
}

// finishSecretPurge deletes a purging secret's versions, then its record:
// a crash part-way leaves a purging secret that the purge loop finishes.
func (s *Service) finishSecretPurge(ctx context.Context, skey string) error {
	if err := s.deletePrefix(ctx, KindVersion, skey+"/"); err != nil {
		return err
	}
	if err := s.secrets.Delete(ctx, skey); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return unavailable(err)
	}
	s.invalidate("")
	return nil
}

// Backups. A backup is the secret's name and every version (attributes and
// value) as JSON, sealed by the keyring under backupAAD: only a deployment
// holding the same master key can open it, and it cannot be passed off as
// any stored record. Backups survive master-key rotation as long as the
// version they were sealed under stays in the key source.
var backupAAD = keyring.AAD("vault.backup", "v1")

// MaxBackupVersions bounds the versions one backup carries.
const MaxBackupVersions = 500

type backupBlob struct {
	Format   int             `json:"format"`
	Name     string          `json:"name"`
	Latest   string          `json:"latest"`
	Versions []backupVersion `json:"versions"`
}

type backupVersion struct {
	versionRecord
	Value []byte `json:"value"`
}

// BackupSecret returns an opaque, sealed backup of every version of a live
// secret.
//
// Errors (*gatehouse.Error): 400 BadParameter (name, too many versions);
// 404 SecretNotFound; 503.
func (s *Service) BackupSecret(ctx context.Context, v *Vault, name string) ([]byte, error) {
	skey, sec, err := s.liveSecret(ctx, v, name)
	if err != nil {
		return nil, err
	}
	blob := backupBlob{Format: 1, Name: sec.Value.Name, Latest: sec.Value.Latest}
	defer func() {
		for _, bv := range blob.Versions {
			clear(bv.Value)
		}
	}()
	for r, err := range s.versions.All(ctx, storage.ListOptions{Prefix: skey + "/"}) {
		if err != nil {
			return nil, unavailable(err)
		}
		if len(blob.Versions) == MaxBackupVersions {
			return nil, gatehouse.BadRequestf(CodeBadParameter, "The secret has more than %d versions: it is too large to back up.", MaxBackupVersions)
		}
		value, err := s.opts.Sealer.Open(r.Sealed, keyring.AAD(KindVersion, r.Key))
		if err != nil {
			return nil, gatehouse.ErrInternal.WithCause(err)
		}
		blob.Versions = append(blob.Versions, backupVersion{versionRecord: r.Value, Value: value})
	}
	plain, err := json.Marshal(blob)
	if err != nil {
		return nil, gatehouse.ErrInternal.WithCause(err)
	}
	defer clear(plain)
	sealed, err := s.opts.Sealer.Seal(plain, backupAAD)
	if err != nil {
		return nil, gatehouse.ErrInternal.WithCause(err)
	}
	return sealed, nil
}

func errBadBackup() error {
	return gatehouse.BadRequestf(CodeBadParameter, "The backup blob is corrupt, or was not made by this deployment.").WithTarget("value")
}

// RestoreSecret restores a backup into v under the secret's original name
// and version ids. Versions are written first and the secret record last,
// so a crash leaves no visible secret.
//
// Errors (*gatehouse.Error): 400 BadParameter (a blob this deployment did
// not make, or altered); 409 Conflict (the name exists, live or deleted);
// 503.
func (s *Service) RestoreSecret(ctx context.Context, v *Vault, sealed []byte) (*Secret, error) {
	plain, err := s.opts.Sealer.Open(sealed, backupAAD)
	if err != nil {
		return nil, errBadBackup()
	}
	defer clear(plain)
	var blob backupBlob
	if err := json.Unmarshal(plain, &blob); err != nil || blob.Format != 1 || !ValidSecretName(blob.Name) || len(blob.Versions) == 0 {
		return nil, errBadBackup()
	}
	defer func() {
		for _, bv := range blob.Versions {
			clear(bv.Value)
		}
	}()
	skey := secretKey(v, lower(blob.Name))
	errExists := gatehouse.Errorf(http.StatusConflict, CodeConflict, "Secret %s already exists.", clip(blob.Name))
	if cur, err := s.secrets.Get(ctx, skey); err == nil {
		switch cur.Value.State {
		case secretDeleted: // as a set of the name says
			return nil, errDeletedButRecoverable(cur.Value.Name)
		case secretPurging:
			return nil, errBeingDeleted(cur.Value.Name)
		}
		return nil, errExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, unavailable(err)
	}
	var created []string
	undo := func() {
		for _, k := range created {
			_ = s.versions.Delete(context.WithoutCancel(ctx), k)
		}
		s.invalidate("")
	}
	var latest *versionRecord
	for i := range blob.Versions {
		bv := &blob.Versions[i]
		if !validVersion(bv.Version) {
			undo()
			return nil, errBadBackup()
		}
		bv.Name = blob.Name
		vkey := versionKey(skey, lower(bv.Version))
		sv, err := s.opts.Sealer.Seal(bv.Value, keyring.AAD(KindVersion, vkey))
		if err != nil {
			undo()
			return nil, gatehouse.ErrInternal.WithCause(err)
		}
		if _, err := s.versions.Create(ctx, &storage.Record[versionRecord]{Key: vkey, Value: bv.versionRecord, Sealed: sv}); err != nil {
			undo()
			if errors.Is(err, storage.ErrAlreadyExists) {
				return nil, errExists
			}
			return nil, unavailable(err)
		}
		created = append(created, vkey)
		if bv.Version == blob.Latest {
			latest = &bv.versionRecord
		}
	}
	if latest == nil {
		undo()
		return nil, errBadBackup()
	}
	_, err = s.secrets.Create(ctx, &storage.Record[secretRecord]{Key: skey, Ref: v.InternalID,
		Value: secretRecord{Name: blob.Name, Latest: blob.Latest, CreatedAt: s.now()}})
	if err != nil {
		undo()
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, errExists
		}
		return nil, unavailable(err)
	}
	s.invalidate(skey)
	return latest.view(), nil
}

// PurgeDue purges what is due: soft-deleted secrets and vaults whose
// scheduled purge date has passed (purge protection does not stop these),
// and purges a crash interrupted. It returns how many secrets and vaults
// it purged.
func (s *Service) PurgeDue(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	var errs []error
	for _, v := range s.allVaults() {
		if v.State == StatePurging || v.State == StateDeleted && !v.ScheduledPurge.After(now) {
			if err := s.purgeVault(ctx, lower(v.ID), true); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
			continue
		}
		for r, err := range s.secrets.All(ctx, storage.ListOptions{Prefix: v.InternalID + "/", Ref: v.InternalID + deletedRefPart}) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			if r.Value.State == secretPurging || !r.Value.ScheduledPurge.After(now) {
				if err := s.purgeSecret(ctx, r.Key, r.Value.Name, true); err != nil {
					errs = append(errs, err)
					continue
				}
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// Run purges what is due every interval until ctx is done (interval <= 0:
// hourly). Several nodes may run it at once: every step is idempotent.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.PurgeDue(ctx); err != nil && ctx.Err() == nil {
				s.opts.Logger.Warn("vault: scheduled purge failed", "purged", n, "err", err)
			} else if n > 0 {
				s.opts.Logger.Info("vault: purged deleted secrets and vaults past their retention", "count", n)
			}
		}
	}
}
