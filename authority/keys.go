package authority

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/go-jose/go-jose/v4"
)

// The signing keys live in one object, so that a rotation is one atomic
// read-modify-write (storage Update): two nodes can never both rotate, and a
// node that loses the race sees the winner's result.
const (
	kindSigningKeys = "authority.signingkeys"
	signingKeysKey  = "current"
)

// Key states. A key is published (in the JWKS and in every node's verifier)
// from the moment it is created until RemoveAfter:
//
//	next ──rotation──▶ active ──rotation──▶ retired ──RemoveAfter──▶ (gone)
//	(published,        (signs)              (published until every
//	 not signing yet)                        token it signed expired)
const (
	stateNext    = "next"
	stateActive  = "active"
	stateRetired = "retired"
)

// keySetRecord is the persisted key set. Private keys are in the object's
// Sealed blob (a JSON map kid → PKCS#8 DER), sealed with keyring.AAD of this
// object.
type keySetRecord struct {
	Keys []keyMeta `json:"keys"`
}

type keyMeta struct {
	ID      string    `json:"kid"`
	Alg     string    `json:"alg"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	// SignFrom is when the key became active (zero while next).
	SignFrom time.Time `json:"signFrom,omitzero"`
	// RemoveAfter is set when the key retires: the last moment a token it
	// signed can still be valid (plus skew).
	RemoveAfter time.Time `json:"removeAfter,omitzero"`
}

// signingKey is the active key as the issuer uses it.
type signingKey struct {
	id, alg string
	// header is the base64url JOSE header followed by '.'.
	header string
	ec     *ecdsa.PrivateKey
	rsa    *rsa.PrivateKey
}

// keyState is one immutable snapshot of the key set in memory.
type keyState struct {
	signer    *signingKey
	verifiers map[string]verifyKey
	jwks      []byte
	meta      []keyMeta
	revision  int64
}

type verifyKey struct {
	alg string
	pub crypto.PublicKey
}

// generateKey makes a new private key for alg.
func (a *Authority) generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), a.rand)
	case AlgRS256:
		return rsa.GenerateKey(a.rand, 2048)
	}
	return nil, fmt.Errorf("authority: unknown signing algorithm %q", alg)
}

// candidate is a freshly generated key that a rotation may adopt.
type candidate struct {
	meta keyMeta
	der  []byte
}

func (a *Authority) newCandidate(now time.Time) (candidate, error) {
	k, err := a.generateKey(a.alg)
	if err != nil {
		return candidate{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return candidate{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return candidate{}, err
	}
	// The kid is derived from the public key: stable, unique, not secret.
	sum := sha256.Sum256(pub)
	return candidate{meta: keyMeta{ID: b64.EncodeToString(sum[:12]), Alg: a.alg, State: stateNext,
		Created: storage.Now(now)}, der: der}, nil
}

// rotationStep applies the state machine to set at now: it promotes next to
// active when the active key has signed for a full period (or there is no
// active key, or force), retires the old active key, publishes a new next
// key, and drops retired keys past RemoveAfter. It reports whether anything
// changed. cands supplies new keys (at most two are used).
func (a *Authority) rotationStep(set *keySetRecord, privs map[string][]byte, now time.Time, force bool, cands []candidate) (bool, error) {
	changed := false
	take := func() (candidate, error) {
		if len(cands) == 0 {
			return candidate{}, errNeedCandidates
		}
		c := cands[0]
		cands = cands[1:]
		return c, nil
	}
	active := slices.IndexFunc(set.Keys, func(k keyMeta) bool { return k.State == stateActive })
	next := slices.IndexFunc(set.Keys, func(k keyMeta) bool { return k.State == stateNext })
	due := active < 0 || force || !now.Before(set.Keys[active].SignFrom.Add(a.rotation))
	if due {
		if next < 0 {
			c, err := take()
			if err != nil {
				return false, err
			}
			set.Keys = append(set.Keys, c.meta)
			privs[c.meta.ID] = c.der
			next = len(set.Keys) - 1
		}
		if active >= 0 {
			set.Keys[active].State = stateRetired
			set.Keys[active].RemoveAfter = storage.Now(now.Add(a.maxLifetime + 2*a.skew))
		}
		set.Keys[next].State = stateActive
		set.Keys[next].SignFrom = storage.Now(now)
		c, err := take()
		if err != nil {
			return false, err
		}
		set.Keys = append(set.Keys, c.meta)
		privs[c.meta.ID] = c.der
		changed = true
	}
	kept := set.Keys[:0]
	for _, k := range set.Keys {
		if k.State == stateRetired && now.After(k.RemoveAfter) {
			delete(privs, k.ID)
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	set.Keys = kept
	return changed, nil
}

var errNeedCandidates = errors.New("authority: rotation needs new keys")

// errNoChange aborts an Update that found nothing to do.
var errNoChange = errors.New("authority: no change")

// RotateKeys runs one rotation check against storage: when the active key
// has signed for a full rotation period (or force is set) the next key
// becomes active, the old one retires and a new next key is published;
// expired retired keys are dropped. It is safe on several nodes at once.
// The result is in this node's memory when it returns.
func (a *Authority) RotateKeys(ctx context.Context, force bool) error {
	now := a.now()
	if st := a.keys.Load(); st != nil && !force && !a.rotationDue(st, now) {
		return nil
	}
	// Keys are generated outside the storage update: the update function
	// may run more than once and must stay cheap and side-effect free.
	var cands []candidate
	for range 2 {
		c, err := a.newCandidate(now)
		if err != nil {
			return err
		}
		cands = append(cands, c)
	}
	aad := keyring.AAD(kindSigningKeys, signingKeysKey)
	rec, err := a.keyTable.Update(ctx, signingKeysKey, func(r *storage.Record[keySetRecord]) error {
		privs, err := a.openPrivates(r.Sealed, aad)
		if err != nil {
			return err
		}
		changed, err := a.rotationStep(&r.Value, privs, now, force, cands)
		if err != nil {
			return err
		}
		if !changed {
			return errNoChange
		}
		r.Sealed, err = a.sealPrivates(privs, aad)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		set := keySetRecord{}
		privs := map[string][]byte{}
		if _, err := a.rotationStep(&set, privs, now, true, cands); err != nil {
			return err
		}
		sealed, serr := a.sealPrivates(privs, aad)
		if serr != nil {
			return serr
		}
		rec, err = a.keyTable.Create(ctx, &storage.Record[keySetRecord]{Key: signingKeysKey, Value: set, Sealed: sealed})
		if errors.Is(err, storage.ErrAlreadyExists) {
			return a.loadKeys(ctx) // another node created it first
		}
	}
	if errors.Is(err, errNoChange) {
		return a.loadKeys(ctx)
	}
	if err != nil {
		return fmt.Errorf("authority: rotate signing keys: %w", err)
	}
	if err := a.installKeys(rec); err != nil {
		return err
	}
	a.logger.Info("signing keys rotated", "active", rec.Value.activeID(), "keys", len(rec.Value.Keys))
	return nil
}

func (s *keySetRecord) activeID() string {
	for _, k := range s.Keys {
		if k.State == stateActive {
			return k.ID
		}
	}
	return ""
}

func (a *Authority) rotationDue(st *keyState, now time.Time) bool {
	for _, k := range st.meta {
		switch {
		case k.State == stateActive && !now.Before(k.SignFrom.Add(a.rotation)):
			return true
		case k.State == stateRetired && now.After(k.RemoveAfter):
			return true
		}
	}
	return st.signer == nil
}

func (a *Authority) openPrivates(sealed, aad []byte) (map[string][]byte, error) {
	privs := map[string][]byte{}
	if len(sealed) == 0 {
		return privs, nil
	}
	plain, err := a.sealer.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("authority: open signing keys: %w", err)
	}
	if err := json.Unmarshal(plain, &privs); err != nil {
		return nil, fmt.Errorf("authority: decode signing keys: %w", err)
	}
	return privs, nil
}

func (a *Authority) sealPrivates(privs map[string][]byte, aad []byte) ([]byte, error) {
	plain, err := json.Marshal(privs)
	if err != nil {
		return nil, err
	}
	return a.sealer.Seal(plain, aad)
}

// loadKeys reads the key set from storage into memory.
func (a *Authority) loadKeys(ctx context.Context) error {
	rec, err := a.keyTable.Get(ctx, signingKeysKey)
	if err != nil {
		return fmt.Errorf("authority: load signing keys: %w", err)
	}
	return a.installKeys(rec)
}

// installKeys builds the in-memory snapshot (signer, verifiers, JWKS) from
// a stored key set, unless memory already holds a newer one.
func (a *Authority) installKeys(rec *storage.Record[keySetRecord]) error {
	if cur := a.keys.Load(); cur != nil && cur.revision >= rec.Revision {
		return nil
	}
	privs, err := a.openPrivates(rec.Sealed, keyring.AAD(kindSigningKeys, signingKeysKey))
	if err != nil {
		return err
	}
	st := &keyState{verifiers: map[string]verifyKey{}, meta: rec.Value.Keys, revision: rec.Revision}
	var jwks jose.JSONWebKeySet
	for _, m := range rec.Value.Keys {
		der, ok := privs[m.ID]
		if !ok {
			return fmt.Errorf("authority: signing key %s has no private part", m.ID)
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("authority: parse signing key %s: %w", m.ID, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return fmt.Errorf("authority: signing key %s is not a signer", m.ID)
		}
		st.verifiers[m.ID] = verifyKey{alg: m.Alg, pub: signer.Public()}
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: signer.Public(), KeyID: m.ID, Algorithm: m.Alg, Use: "sig"})
		if m.State == stateActive {
			sk := &signingKey{id: m.ID, alg: m.Alg}
			switch k := k.(type) {
			case *ecdsa.PrivateKey:
				sk.ec = k
			case *rsa.PrivateKey:
				sk.rsa = k
			}
			h, _ := json.Marshal(map[string]string{"alg": m.Alg, "kid": m.ID, "typ": "JWT"})
			sk.header = b64.EncodeToString(h) + "."
			st.signer = sk
		}
	}
	if st.jwks, err = json.Marshal(jwks); err != nil {
		return err
	}
	for {
		cur := a.keys.Load()
		if cur != nil && cur.revision >= rec.Revision {
			return nil
		}
		if a.keys.CompareAndSwap(cur, st) {
			return nil
		}
	}
}

// applyKeys is the change-feed callback for the key set.
func (a *Authority) applyKeys(c storage.Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.loadKeys(ctx); err != nil {
		a.logger.Warn("signing keys: reload failed", "err", err)
	}
}
