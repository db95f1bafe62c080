package authority

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/netacl"
	"github.com/go-jose/go-jose/v4"
)

// Federated issuers' keys are fetched from the issuer's discovery document
// (issuer + "/.well-known/openid-configuration" → jwks_uri) and cached for
// federationTTL. A kid the cache does not know triggers one refetch, at
// most every federationRefetch per issuer, so a flood of made-up kids
// cannot make Gatehouse hammer the issuer.
const (
	federationTTL     = time.Hour
	federationRefetch = time.Minute
	maxDocumentBytes  = 1 << 20
)

type federation struct {
	client *http.Client
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	keys      map[string]verifyKey
	fetched   time.Time
	attempted time.Time
	// fetching serializes fetches of one issuer.
	fetching sync.Mutex
}

func newFederation(client *http.Client, now func() time.Time, logger *slog.Logger) *federation {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &federation{client: client, now: now, logger: logger, issuers: map[string]*issuerKeys{}}
}

// key returns the verification key kid of issuer: from static (a
// configured JWKS) when given, else from the issuer's published keys. An
// empty kid matches a key set with exactly one key.
func (f *federation) key(ctx context.Context, issuer, kid string, static json.RawMessage) (verifyKey, error) {
	if len(static) > 0 {
		keys, err := parseJWKS(static)
		if err != nil {
			return verifyKey{}, err
		}
		return pick(keys, kid)
	}
	f.mu.Lock()
	ik := f.issuers[issuer]
	if ik == nil {
		ik = &issuerKeys{}
		f.issuers[issuer] = ik
	}
	f.mu.Unlock()

	ik.fetching.Lock()
	defer ik.fetching.Unlock()
	now := f.now()
	fresh := ik.keys != nil && now.Sub(ik.fetched) < federationTTL
	if fresh {
		if k, err := pick(ik.keys, kid); err == nil {
			return k, nil
		}
	}
	if !ik.attempted.IsZero() && now.Sub(ik.attempted) < federationRefetch {
		if ik.keys == nil {
			return verifyKey{}, errors.New("issuer keys unavailable (recent fetch failed)")
		}
		return pick(ik.keys, kid)
	}
	ik.attempted = now
	keys, err := f.fetch(ctx, issuer)
	if err != nil {
		if ik.keys != nil {
			// Static stability: keep using what we had.
			f.logger.Warn("federated issuer: refresh failed; using cached keys", "issuer", issuer, "err", err)
			return pick(ik.keys, kid)
		}
		return verifyKey{}, err
	}
	ik.keys, ik.fetched = keys, now
	return pick(keys, kid)
}

func pick(keys map[string]verifyKey, kid string) (verifyKey, error) {
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, nil
		}
	}
	return verifyKey{}, errors.New("no key with that kid")
}

func (f *federation) fetch(ctx context.Context, issuer string) (map[string]verifyKey, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := f.getJSON(ctx, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery document names issuer %q", doc.Issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Scheme != "https" {
		return nil, errors.New("jwks_uri is not an https URL")
	}
	var raw json.RawMessage
	if err := f.getJSON(ctx, doc.JWKSURI, &raw); err != nil {
		return nil, err
	}
	return parseJWKS(raw)
}

func (f *federation) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxDocumentBytes {
		return fmt.Errorf("GET %s: document too large", u)
	}
	return json.Unmarshal(body, v)
}

// parseJWKS keeps the signature keys (RSA and P-256) of a JWK set.
func parseJWKS(raw []byte) (map[string]verifyKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("bad JWKS: %w", err)
	}
	keys := map[string]verifyKey{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				continue
			}
		case *ecdsa.PublicKey:
		default:
			continue
		}
		keys[k.KeyID] = verifyKey{alg: k.Algorithm, pub: k.Key}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signature keys")
	}
	return keys, nil
}

// errIssuerNotAllowed: a federated issuer's address is link-local.
var errIssuerNotAllowed = errors.New("authority: a federated issuer may not be at a link-local address")

// issuerClient fetches federated issuers' discovery documents and keys.
// Anyone who may add a federated credential names an issuer URL, and the
// fetch happens on an anonymous token request, so the client is kept from
// being aimed inward: it never dials a link-local address — where cloud
// metadata services answer — whatever a name resolves to (checked on each
// connection, redirects included, as the gateway's upstream dialer does),
// and it follows at most three redirects, each to https.
func issuerClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: issuerDialControl}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	return &http.Client{Timeout: 10 * time.Second, Transport: t, CheckRedirect: issuerRedirect}
}

func issuerDialControl(_, address string, _ syscall.RawConn) error {
	if !netacl.UpstreamAllowed(nil, netacl.RemoteAddr(address)) {
		return errIssuerNotAllowed
	}
	return nil
}

func issuerRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return errors.New("authority: a federated issuer redirected to a URL that is not https")
	}
	if len(via) >= 3 {
		return errors.New("authority: a federated issuer redirected more than three times")
	}
	return nil
}
