package directory

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// startSkew tolerates clocks of other nodes running behind the one that
// created a credential: a secret works from a few minutes before its start.
const startSkew = 5 * time.Minute

// SecretBytes is the entropy of a generated client secret (256 bits).
const SecretBytes = 32

// SecretSpec describes a new client secret.
type SecretSpec struct {
	DisplayName string
	// Start defaults to now. End zero means the secret never expires.
	Start, End time.Time
	// ServicePrincipal makes it the service principal's own secret
	// (SecretInfo.ServicePrincipal).
	ServicePrincipal bool
}

// AddSecret generates a client secret for the application (any of its ids)
// and returns it: this is the only time it is visible; only its SHA-256 is
// stored. Several secrets may be valid at once, so a secret is rotated by
// adding the new one before removing the old. ErrNotFound, ErrInvalid
// (more than MaxSecrets, End before Start).
func (d *Directory) AddSecret(ctx context.Context, id string, spec SecretSpec) (SecretInfo, string, error) {
	if spec.DisplayName != "" {
		if err := validDisplayName(spec.DisplayName); err != nil {
			return SecretInfo{}, "", err
		}
	}
	now := storage.Now(d.now())
	if spec.Start.IsZero() {
		spec.Start = now
	}
	spec.Start = storage.Now(spec.Start)
	if !spec.End.IsZero() {
		spec.End = storage.Now(spec.End)
		if !spec.End.After(spec.Start) {
			return SecretInfo{}, "", invalid("endDateTime", "The end date must be after the start date.")
		}
	}
	// A secret never starts with '-': command lines take it for an option
	// (`az login -p -x…` fails, 1 secret in 64). Drawing again keeps the
	// rest uniform and costs 0.02 bits.
	raw := make([]byte, SecretBytes)
	var secret string
	for secret == "" || secret[0] == '-' {
		if _, err := io.ReadFull(d.rand, raw); err != nil {
			return SecretInfo{}, "", err
		}
		secret = base64.RawURLEncoding.EncodeToString(raw)
	}
	sum := sha256.Sum256([]byte(secret))
	s := secretRecord{KeyID: gatehouse.NewGUID(), DisplayName: spec.DisplayName, Hint: secret[:3], Hash: sum[:],
		Start: spec.Start, End: spec.End, ServicePrincipal: spec.ServicePrincipal}
	e := d.findApp(id)
	if e == nil {
		return SecretInfo{}, "", notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if len(r.Secrets) >= MaxSecrets {
			return gatehouse.BadRequestf(CodeLimitExceeded, "An application can have at most %d client secrets.", MaxSecrets).WithCause(ErrInvalid)
		}
		r.Secrets = append(r.Secrets, s)
		return nil
	})
	if err != nil {
		return SecretInfo{}, "", err
	}
	return SecretInfo{KeyID: s.KeyID, DisplayName: s.DisplayName, Hint: s.Hint, Start: s.Start, End: s.End,
		ServicePrincipal: s.ServicePrincipal}, secret, nil
}

// RemoveSecret deletes the secret keyID of the application object, or
// with sp of its service principal (each has its own). ErrNotFound.
func (d *Directory) RemoveSecret(ctx context.Context, id, keyID string, sp bool) error {
	e := d.findApp(id)
	if e == nil {
		return notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.Secrets, func(s secretRecord) bool { return strings.EqualFold(s.KeyID, keyID) && s.ServicePrincipal == sp })
		if i < 0 {
			return notFound("The %s has no password credential with keyId %q.", ownerWord(sp), clip(keyID))
		}
		r.Secrets = slices.Delete(r.Secrets, i, i+1)
		return nil
	})
	return err
}

// Certificate is an uploaded public certificate of an application.
type Certificate struct {
	KeyID       string
	DisplayName string
	Cert        *x509.Certificate
	SHA1        [sha1.Size]byte
	SHA256      [sha256.Size]byte
	// Start and End are the window in which assertions signed with it are
	// accepted: the certificate's validity, narrowed by the registration's.
	Start, End time.Time
	// ServicePrincipal: the service principal's own (as SecretInfo's).
	ServicePrincipal bool
}

// CertificateInfo describes a certificate for listings.
type CertificateInfo struct {
	KeyID       string
	DisplayName string
	// Thumbprint is the upper-case hex SHA-1 (what Azure shows as
	// customKeyIdentifier); ThumbprintSHA256 the hex SHA-256.
	Thumbprint       string
	ThumbprintSHA256 string
	Subject          string
	Start, End       time.Time
	DER              []byte
	ServicePrincipal bool
}

func newCertificate(c certRecord, cert *x509.Certificate) *Certificate {
	return &Certificate{KeyID: c.KeyID, DisplayName: c.DisplayName, Cert: cert,
		SHA1: sha1.Sum(c.DER), SHA256: sha256.Sum256(c.DER), Start: c.Start, End: c.End, ServicePrincipal: c.ServicePrincipal}
}

// Info returns the listing view.
func (c *Certificate) Info() CertificateInfo {
	return CertificateInfo{KeyID: c.KeyID, DisplayName: c.DisplayName,
		Thumbprint: strings.ToUpper(hex.EncodeToString(c.SHA1[:])), ThumbprintSHA256: hex.EncodeToString(c.SHA256[:]),
		Subject: c.Cert.Subject.String(), Start: c.Start, End: c.End, DER: c.Cert.Raw, ServicePrincipal: c.ServicePrincipal}
}

// CertificateSpec describes a certificate to add. Data is a PEM
// certificate or its DER bytes (or base64 of DER, as Graph's keyCredentials
// carry it).
type CertificateSpec struct {
	Data        []byte
	DisplayName string
	// Start and End narrow the certificate's own validity (zero: as is).
	Start, End time.Time
	// KeyID keeps an existing credential in SetCertificates (Data empty).
	KeyID string
	// ServicePrincipal makes it the service principal's own certificate
	// (as SecretSpec's).
	ServicePrincipal bool
}

// ownerWord names a credential's owner in messages.
func ownerWord(sp bool) string {
	if sp {
		return "service principal"
	}
	return "application"
}

// ParseCertificate accepts PEM, DER or base64 DER and returns the X.509
// certificate. It must carry an RSA public key: client assertions are
// RS256/PS256. ErrInvalid.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE" {
			return nil, invalid("key", "The PEM block is a %q, not a CERTIFICATE (upload the public certificate, never the private key).", clip(b.Type))
		}
		der = b.Bytes
	} else if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err == nil {
		der = dec
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, invalid("key", "The key credential is not a valid X.509 certificate.")
	}
	if cert.PublicKeyAlgorithm != x509.RSA {
		return nil, invalid("key", "The certificate must carry an RSA public key.")
	}
	return cert, nil
}

func (d *Directory) certRecord(spec CertificateSpec) (certRecord, error) {
	cert, err := ParseCertificate(spec.Data)
	if err != nil {
		return certRecord{}, err
	}
	if spec.DisplayName != "" {
		if err := validDisplayName(spec.DisplayName); err != nil {
			return certRecord{}, err
		}
	}
	start, end := cert.NotBefore, cert.NotAfter
	if !spec.Start.IsZero() && spec.Start.After(start) {
		start = spec.Start
	}
	if !spec.End.IsZero() && spec.End.Before(end) {
		end = spec.End
	}
	if !end.After(start) {
		return certRecord{}, invalid("endDateTime", "The certificate's validity window is empty.")
	}
	if !end.After(d.now()) {
		return certRecord{}, invalid("endDateTime", "The certificate has expired.")
	}
	return certRecord{KeyID: gatehouse.NewGUID(), DisplayName: spec.DisplayName, DER: cert.Raw,
		Start: storage.Now(start), End: storage.Now(end), ServicePrincipal: spec.ServicePrincipal}, nil
}

// AddCertificate uploads a public certificate. ErrNotFound, ErrInvalid.
func (d *Directory) AddCertificate(ctx context.Context, id string, spec CertificateSpec) (CertificateInfo, error) {
	c, err := d.certRecord(spec)
	if err != nil {
		return CertificateInfo{}, err
	}
	e := d.findApp(id)
	if e == nil {
		return CertificateInfo{}, notFound("The application %q does not exist.", clip(id))
	}
	sum := sha256.Sum256(c.DER)
	_, err = d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if len(r.Certificates) >= MaxCertificates {
			return gatehouse.BadRequestf(CodeLimitExceeded, "An application can have at most %d certificates.", MaxCertificates).WithCause(ErrInvalid)
		}
		for _, have := range r.Certificates {
			if sha256.Sum256(have.DER) == sum {
				return alreadyExists("The certificate is already registered (keyId %s).", have.KeyID)
			}
		}
		r.Certificates = append(r.Certificates, c)
		return nil
	})
	if err != nil {
		return CertificateInfo{}, err
	}
	cert, _ := x509.ParseCertificate(c.DER)
	return newCertificate(c, cert).Info(), nil
}

// SetCertificates replaces the certificates of the application object,
// or with sp of its service principal, as Graph's PATCH keyCredentials
// does: specs with a KeyID and no Data keep that existing certificate,
// specs with Data add one; the rest of that owner's are removed (the
// other owner's stay). ErrNotFound, ErrInvalid.
func (d *Directory) SetCertificates(ctx context.Context, id string, specs []CertificateSpec, sp bool) error {
	if len(specs) > MaxCertificates {
		return gatehouse.BadRequestf(CodeLimitExceeded, "An application can have at most %d certificates.", MaxCertificates).WithCause(ErrInvalid)
	}
	var added []certRecord
	var keep []string
	for _, s := range specs {
		if len(s.Data) == 0 {
			if s.KeyID == "" {
				return invalid("keyCredentials", "Each key credential needs a key or the keyId of an existing one.")
			}
			keep = append(keep, lower(s.KeyID))
			continue
		}
		s.ServicePrincipal = sp
		c, err := d.certRecord(s)
		if err != nil {
			return err
		}
		added = append(added, c)
	}
	e := d.findApp(id)
	if e == nil {
		return notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		var next []certRecord
		for _, c := range r.Certificates {
			if c.ServicePrincipal != sp {
				next = append(next, c) // the other owner's
			}
		}
		for _, k := range keep {
			i := slices.IndexFunc(r.Certificates, func(c certRecord) bool { return lower(c.KeyID) == k && c.ServicePrincipal == sp })
			if i < 0 {
				return invalid("keyCredentials", "The %s has no key credential with keyId %q.", ownerWord(sp), clip(k))
			}
			next = append(next, r.Certificates[i])
		}
		if next = append(next, added...); len(next) > MaxCertificates {
			return gatehouse.BadRequestf(CodeLimitExceeded, "An application can have at most %d certificates.", MaxCertificates).WithCause(ErrInvalid)
		}
		r.Certificates = next
		return nil
	})
	return err
}

// RemoveCertificate deletes the certificate keyID of the application
// object, or with sp of its service principal. ErrNotFound.
func (d *Directory) RemoveCertificate(ctx context.Context, id, keyID string, sp bool) error {
	e := d.findApp(id)
	if e == nil {
		return notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.Certificates, func(c certRecord) bool { return strings.EqualFold(c.KeyID, keyID) && c.ServicePrincipal == sp })
		if i < 0 {
			return notFound("The %s has no key credential with keyId %q.", ownerWord(sp), clip(keyID))
		}
		r.Certificates = slices.Delete(r.Certificates, i, i+1)
		return nil
	})
	return err
}

// FederatedCredential trusts tokens from an external OIDC issuer: a
// client_assertion whose iss is Issuer, sub is Subject and aud contains one
// of Audiences stands in for a secret.
type FederatedCredential struct {
	ID          string
	Name        string
	Issuer      string
	Subject     string
	Audiences   []string
	Description string
	// JWKS, when set, is the issuer's key set, used instead of fetching
	// the issuer's discovery document (offline use; a Gatehouse extension).
	JWKS json.RawMessage
}

// DefaultFederatedAudience is Entra's default audience for federated
// credentials.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// Is reports whether idOrName names f (its id or its name, any case), as
// Graph's routes take either.
func (f FederatedCredential) Is(idOrName string) bool {
	return strings.EqualFold(f.ID, idOrName) || strings.EqualFold(f.Name, idOrName)
}

func (f federatedRecord) view() FederatedCredential {
	return FederatedCredential{ID: f.ID, Name: f.Name, Issuer: f.Issuer, Subject: f.Subject,
		Audiences: slices.Clone(f.Audiences), Description: f.Description, JWKS: f.JWKS}
}

func validFederated(f *FederatedCredential) error {
	if n := len(f.Name); n < 3 || n > 120 {
		return invalid("name", "The name must have 3 to 120 characters.")
	}
	for _, c := range f.Name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return invalid("name", "The name may contain only letters, digits, '-' and '_'.")
		}
	}
	u, err := url.Parse(f.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || len(f.Issuer) > 600 || u.RawQuery != "" || u.Fragment != "" {
		return invalid("issuer", "The issuer must be an https URL without query or fragment.")
	}
	if f.Subject == "" || len(f.Subject) > 600 {
		return invalid("subject", "The subject must have 1 to 600 characters.")
	}
	if len(f.Audiences) == 0 {
		f.Audiences = []string{DefaultFederatedAudience}
	}
	if len(f.Audiences) != 1 || f.Audiences[0] == "" || len(f.Audiences[0]) > 600 {
		return invalid("audiences", "Exactly one audience (1 to 600 characters) is required.")
	}
	if len(f.Description) > 600 {
		return invalid("description", "The description must have at most 600 characters.")
	}
	if len(f.JWKS) > 0 {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if len(f.JWKS) > 64<<10 || json.Unmarshal(f.JWKS, &set) != nil || len(set.Keys) == 0 {
			return invalid("jwks", "The jwks must be a JSON Web Key Set with at least one key.")
		}
	}
	return nil
}

// AddFederated adds a federated identity credential. ErrNotFound,
// ErrInvalid, ErrAlreadyExists (name taken).
func (d *Directory) AddFederated(ctx context.Context, id string, f FederatedCredential) (FederatedCredential, error) {
	if err := validFederated(&f); err != nil {
		return FederatedCredential{}, err
	}
	rec := federatedRecord{ID: gatehouse.NewGUID(), Name: f.Name, Issuer: f.Issuer, Subject: f.Subject,
		Audiences: slices.Clone(f.Audiences), Description: f.Description, JWKS: f.JWKS}
	e := d.findApp(id)
	if e == nil {
		return FederatedCredential{}, notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if len(r.Federated) >= MaxFederated {
			return gatehouse.BadRequestf(CodeLimitExceeded, "An application can have at most %d federated identity credentials.", MaxFederated).WithCause(ErrInvalid)
		}
		for _, have := range r.Federated {
			if strings.EqualFold(have.Name, rec.Name) {
				return alreadyExists("A federated identity credential named %q already exists.", rec.Name)
			}
			if have.Issuer == rec.Issuer && have.Subject == rec.Subject {
				return alreadyExists("A federated identity credential with this issuer and subject already exists.")
			}
		}
		r.Federated = append(r.Federated, rec)
		return nil
	})
	if err != nil {
		return FederatedCredential{}, err
	}
	return rec.view(), nil
}

// FederatedPatch is what an update of a federated credential changes: nil
// fields are left as they are. Name, when given, must be the credential's
// own (it cannot change, as in Entra).
type FederatedPatch struct {
	Name, Issuer, Subject, Description *string
	Audiences                          *[]string
	JWKS                               json.RawMessage
}

// UpdateFederated changes the federated credential whose id or name is
// ficID, validated as a new one is. ErrNotFound, ErrInvalid,
// ErrAlreadyExists (another credential has the issuer and subject).
func (d *Directory) UpdateFederated(ctx context.Context, id, ficID string, p FederatedPatch) (FederatedCredential, error) {
	e := d.findApp(id)
	if e == nil {
		return FederatedCredential{}, notFound("The application %q does not exist.", clip(id))
	}
	var out federatedRecord
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.Federated, func(f federatedRecord) bool { return FederatedCredential(f).Is(ficID) })
		if i < 0 {
			return notFound("The application has no federated identity credential %q.", clip(ficID))
		}
		f := r.Federated[i].view()
		if p.Name != nil && !strings.EqualFold(*p.Name, f.Name) {
			return invalid("name", "The name of a federated identity credential cannot be changed.")
		}
		for dst, src := range map[*string]*string{&f.Issuer: p.Issuer, &f.Subject: p.Subject, &f.Description: p.Description} {
			if src != nil {
				*dst = *src
			}
		}
		if p.Audiences != nil {
			f.Audiences = slices.Clone(*p.Audiences)
		}
		if p.JWKS != nil {
			f.JWKS = p.JWKS
		}
		if err := validFederated(&f); err != nil {
			return err
		}
		for j, have := range r.Federated {
			if j != i && have.Issuer == f.Issuer && have.Subject == f.Subject {
				return alreadyExists("A federated identity credential with this issuer and subject already exists.")
			}
		}
		out = federatedRecord(f)
		fed := slices.Clone(r.Federated)
		fed[i] = out
		r.Federated = fed
		return nil
	})
	if err != nil {
		return FederatedCredential{}, err
	}
	return out.view(), nil
}

// RemoveFederated deletes the federated credential whose id or name is
// ficID. ErrNotFound.
func (d *Directory) RemoveFederated(ctx context.Context, id, ficID string) error {
	e := d.findApp(id)
	if e == nil {
		return notFound("The application %q does not exist.", clip(id))
	}
	_, err := d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		i := slices.IndexFunc(r.Federated, func(f federatedRecord) bool { return FederatedCredential(f).Is(ficID) })
		if i < 0 {
			return notFound("The application has no federated identity credential %q.", clip(ficID))
		}
		r.Federated = slices.Delete(r.Federated, i, i+1)
		return nil
	})
	return err
}

// Client is a confidential client as the token endpoint sees it: an
// immutable snapshot taken from memory.
type Client struct{ e *entry }

// Client returns the confidential client clientID of tenant tenantID, from
// memory. Errors (plain sentinels, not public): ErrUnknownClient (no such
// application in that tenant), ErrNoServicePrincipal, ErrDisabled.
func (d *Directory) Client(tenantID, clientID string) (*Client, error) {
	d.mu.RLock()
	e := d.byAppID[lower(clientID)]
	d.mu.RUnlock()
	if e == nil || e.rec.TenantID != tenantID || e.rec.Kind == kindUser {
		return nil, ErrUnknownClient
	}
	if e.rec.Kind == kindApplication && !e.rec.ServicePrincipal {
		return nil, ErrNoServicePrincipal
	}
	if !e.rec.Enabled {
		return nil, ErrDisabled
	}
	return &Client{e: e}, nil
}

// Principal is the service principal the client stands for.
func (c *Client) Principal() gatehouse.Principal { return c.e.principal }

// CheckSecret compares secret with the client's secrets (SHA-256, constant
// time). ErrInvalidSecret; ErrSecretExpired when it matches a secret outside
// its validity.
func (c *Client) CheckSecret(secret string, now time.Time) error {
	sum := sha256.Sum256([]byte(secret))
	match := -1
	for i := range c.e.rec.Secrets {
		if subtle.ConstantTimeCompare(sum[:], c.e.rec.Secrets[i].Hash) == 1 {
			match = i
		}
	}
	if match < 0 {
		return ErrInvalidSecret
	}
	s := &c.e.rec.Secrets[match]
	if now.Before(s.Start.Add(-startSkew)) || (!s.End.IsZero() && !now.Before(s.End)) {
		return ErrSecretExpired
	}
	return nil
}

// Certificate returns the client's certificate whose SHA-1 (sha1 != nil) or
// SHA-256 thumbprint matches. ErrUnknownCertificate; ErrCertificateExpired
// when it matches outside its validity.
func (c *Client) Certificate(sha1Sum, sha256Sum []byte, now time.Time) (*Certificate, error) {
	for _, cert := range c.e.certs {
		if (sha256Sum != nil && subtle.ConstantTimeCompare(sha256Sum, cert.SHA256[:]) == 1) ||
			(sha1Sum != nil && subtle.ConstantTimeCompare(sha1Sum, cert.SHA1[:]) == 1) {
			if now.Before(cert.Start.Add(-startSkew)) || !now.Before(cert.End) {
				return nil, ErrCertificateExpired
			}
			return cert, nil
		}
	}
	return nil, ErrUnknownCertificate
}

// Federated returns the client's federated credentials.
func (c *Client) Federated() []FederatedCredential {
	out := make([]FederatedCredential, len(c.e.rec.Federated))
	for i, f := range c.e.rec.Federated {
		out[i] = f.view()
	}
	return out
}
