package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// Keys are an account's two keys. Never log them.
type Keys struct {
	Key1, Key2 string
}

// KeyBytes is the entropy of a key: 256 bits, written as 64 hex digits.
const KeyBytes = 32

// newKey draws a fresh key.
func (s *Service) newKey() (string, error) {
	b := make([]byte, KeyBytes)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		return "", fmt.Errorf("accounts: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}

// seal seals both keys for the record with storage key key. The blob is
// bound to that record (keyring.AAD), as the master-key rotation expects.
func (s *Service) seal(key string, keys sealedKeys) ([]byte, error) {
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	sealed, err := s.opts.Sealer.Seal(plain, keyring.AAD(KindAccount, key))
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("accounts: seal keys: %w", err)
	}
	return sealed, nil
}

func (s *Service) open(key string, sealed []byte) (sealedKeys, error) {
	var keys sealedKeys
	plain, err := s.opts.Sealer.Open(sealed, keyring.AAD(KindAccount, key))
	if err != nil {
		return keys, fmt.Errorf("accounts: open keys of %s: %w", key, err)
	}
	defer clear(plain)
	if err := json.Unmarshal(plain, &keys); err != nil {
		return keys, fmt.Errorf("accounts: keys of %s do not decode: %w", key, err)
	}
	return keys, nil
}

// ListKeys returns the account's keys. An account with disableLocalAuth
// has none to give: Azure answers its listKeys with 400 BadRequest
// "Failed to list key. disableLocalAuth is set to be true" (which tools
// such as Terraform's azurerm provider expect), so the keys, useless on
// the data plane until local auth is enabled again, are not handed out.
// RegenerateKey still works: rotating keys that may have leaked is what
// one does before enabling local auth again.
//
// Errors (*gatehouse.Error): 400 BadRequest (disableLocalAuth); 404
// ResourceNotFound; 500 when the keys do not open (wrong master key); 503.
func (s *Service) ListKeys(ctx context.Context, id *gatehouse.ResourceID) (Keys, error) {
	rec, err := s.accounts.Get(ctx, id.Key())
	if errors.Is(err, storage.ErrNotFound) || err == nil && rec.Value.deleted() {
		return Keys{}, errNotFound(id)
	}
	if err != nil {
		return Keys{}, unavailable(err)
	}
	if rec.Value.DisableLocalAuth {
		return Keys{}, errLocalAuthDisabled()
	}
	keys, err := s.open(rec.Key, rec.Sealed)
	if err != nil {
		return Keys{}, err
	}
	return Keys(keys), nil
}

// RegenerateKey replaces the key in slot (Key1 or Key2) with a fresh one,
// increments the slot's generation and returns both keys. The other slot
// is untouched, so clients on it keep working. When it returns, this node's
// key index already refuses the old key and accepts the new one; other
// nodes follow through the change feed.
//
// Concurrent regenerations of one account are serialized by storage: each
// one replaces the slot's key then current, none is lost, and both slots
// always hold distinct, valid keys.
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) RegenerateKey(ctx context.Context, id *gatehouse.ResourceID, slot int, by Actor) (Keys, *Account, error) {
	if slot != Key1 && slot != Key2 {
		return Keys{}, nil, badRequest("InvalidKeyName", "keyName", "The key name must be Key1 or Key2.")
	}
	fresh, err := s.newKey()
	if err != nil {
		return Keys{}, nil, err
	}
	now := storage.Now(s.opts.Now())
	var out sealedKeys
	rec, err := s.accounts.Update(ctx, id.Key(), func(r *storage.Record[record]) error {
		if r.Value.deleted() {
			return storage.ErrNotFound
		}
		keys, err := s.open(r.Key, r.Sealed)
		if err != nil {
			return err
		}
		other := keys.Key2
		if slot == Key2 {
			other = keys.Key1
		}
		k := fresh
		if k == other {
			// 2^-256; but "distinct" is an invariant, so it is enforced.
			return errors.New("accounts: fresh key equals the other slot's key")
		}
		if slot == Key1 {
			keys.Key1 = k
		} else {
			keys.Key2 = k
		}
		sealed, err := s.seal(r.Key, keys)
		if err != nil {
			return err
		}
		sl := &r.Value.Slots[slot]
		sl.Generation++
		sl.RegeneratedAt = now
		sl.Hash = hashKey(k)
		r.Value.UpdatedAt, r.Value.UpdatedBy = now, actorRecord(by)
		r.Sealed = sealed
		out = keys
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return Keys{}, nil, errNotFound(id)
	}
	if err != nil {
		return Keys{}, nil, unavailable(err)
	}
	if err := s.waitFor(ctx, rec.Revision); err != nil {
		return Keys{}, nil, err
	}
	return Keys(out), rec.Value.view(rec.Revision, s.opts.Endpoint), nil
}

// errLocalAuthDisabled is ListKeys' answer for an account with
// disableLocalAuth, in Azure's words.
func errLocalAuthDisabled() error {
	return gatehouse.BadRequestf(gatehouse.CodeBadRequest, "Failed to list key. disableLocalAuth is set to be true")
}
