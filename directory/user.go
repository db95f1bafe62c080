package directory

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
	"golang.org/x/crypto/argon2"
)

// Directory role template ids (Entra's own), held by principals in Roles.
// The Graph subset is authorized by them.
const (
	RoleGlobalAdministrator      = "62e90394-69f5-4237-9190-012177145e10"
	RoleApplicationAdministrator = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	RoleUserAdministrator        = "fe930be7-5e62-47db-91af-98c3a49a38b1"
	RoleDirectoryReaders         = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
)

var knownRoles = map[string]bool{
	RoleGlobalAdministrator: true, RoleApplicationAdministrator: true,
	RoleUserAdministrator: true, RoleDirectoryReaders: true,
}

// RoleNames maps the role template ids to their display names.
var RoleNames = map[string]string{
	RoleGlobalAdministrator:      "Global Administrator",
	RoleApplicationAdministrator: "Application Administrator",
	RoleUserAdministrator:        "User Administrator",
	RoleDirectoryReaders:         "Directory Readers",
}

// User is a person.
type User struct {
	ObjectID    string
	TenantID    string
	UserName    string
	DisplayName string
	Enabled     bool
	Roles       []string
	Created     time.Time
	// SignInSessionsValidFrom: sessions (refresh tokens) that began before
	// it are revoked (Graph's signInSessionsValidFromDateTime). Zero: none.
	SignInSessionsValidFrom time.Time
	// ForceChangePassword: the person must change the password at the
	// next sign-in (Graph's passwordProfile.forceChangePasswordNextSignIn).
	ForceChangePassword bool
}

// UserSpec creates a person.
type UserSpec struct {
	// UserName is the sign-in name (user principal name), unique in the
	// directory, compared case-insensitively.
	UserName    string
	DisplayName string
	Password    string
	TenantID    string
	Roles       []string
	// ForceChangePassword makes Password a temporary one: it signs in only
	// to choose another (ChangePassword).
	ForceChangePassword bool
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// PasswordParams are argon2id's cost parameters.
type PasswordParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultPasswordParams follow OWASP's argon2id minimum (19 MiB, 2 passes).
var DefaultPasswordParams = PasswordParams{Time: 2, Memory: 19 * 1024, Threads: 1}

func (e *entry) user() *User {
	r := &e.rec
	return &User{ObjectID: r.ObjectID, TenantID: r.TenantID, UserName: r.UserName, DisplayName: r.DisplayName,
		Enabled: r.Enabled, Roles: slices.Clone(r.Roles), Created: r.Created, SignInSessionsValidFrom: r.SessionsValidFrom,
		ForceChangePassword: r.MustChangePassword}
}

func validUserName(name string) error {
	if len(name) < 1 || len(name) > 113 {
		return invalid("userPrincipalName", "The user name must have 1 to 113 characters.")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.@'", c)) {
			return invalid("userPrincipalName", "The user name may contain only letters, digits and - _ . @ '.")
		}
	}
	// Entra's user principal names are alias@domain.
	alias, domain, ok := strings.Cut(name, "@")
	if !ok || alias == "" || domain == "" || strings.Contains(domain, "@") || domain[0] == '.' || domain[len(domain)-1] == '.' {
		return invalid("userPrincipalName", "The user name must be alias@domain, such as alice@contoso.test.")
	}
	return nil
}

func validPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLength || len(pw) > 256 {
		return invalid("passwordProfile", "The password must have %d to 256 characters.", MinPasswordLength)
	}
	return nil
}

// CreateUser creates a person with an argon2id password hash. ErrInvalid,
// ErrAlreadyExists, ErrNotFound (tenant).
func (d *Directory) CreateUser(ctx context.Context, spec UserSpec) (*User, error) {
	if err := validUserName(spec.UserName); err != nil {
		return nil, err
	}
	if spec.DisplayName == "" {
		spec.DisplayName = spec.UserName
	}
	if err := validDisplayName(spec.DisplayName); err != nil {
		return nil, err
	}
	if err := validPassword(spec.Password); err != nil {
		return nil, err
	}
	if err := validRoles(spec.Roles); err != nil {
		return nil, err
	}
	tenant, err := d.tenantOrDefault(spec.TenantID)
	if err != nil {
		return nil, err
	}
	hash, err := d.hashPassword(spec.Password)
	if err != nil {
		return nil, err
	}
	r := record{Kind: kindUser, TenantID: tenant, ObjectID: gatehouse.NewGUID(), UserName: spec.UserName,
		DisplayName: spec.DisplayName, Enabled: true, Roles: slices.Clone(spec.Roles), PasswordHash: hash,
		MustChangePassword: spec.ForceChangePassword, Created: storage.Now(d.now())}
	e, err := d.create(ctx, &r)
	if err != nil {
		return nil, err
	}
	return e.user(), nil
}

// User returns the person whose object id or user name is id. ErrNotFound.
func (d *Directory) User(id string) (*User, error) {
	d.mu.RLock()
	e := d.byObjectID[lower(id)]
	if e == nil || e.rec.Kind != kindUser {
		e = d.byUserName[lower(id)]
	}
	d.mu.RUnlock()
	if e == nil {
		return nil, notFound("The user %q does not exist.", clip(id))
	}
	return e.user(), nil
}

// Users lists the people of tenant ("" = all), by user name.
func (d *Directory) Users(tenantID string) []*User {
	d.mu.RLock()
	var out []*User
	for _, e := range d.byUserName {
		if tenantID == "" || e.rec.TenantID == tenantID {
			out = append(out, e.user())
		}
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return lower(out[i].UserName) < lower(out[j].UserName) })
	return out
}

// UserUpdate changes a person; nil fields are left alone.
type UserUpdate struct {
	DisplayName *string
	Enabled     *bool
	Password    *string
	// ForceChangePassword sets or clears "must change the password at the
	// next sign-in", with or without a new Password.
	ForceChangePassword *bool
	Roles               *[]string
}

// UpdateUser changes the person id (object id or user name). ErrNotFound,
// ErrInvalid.
func (d *Directory) UpdateUser(ctx context.Context, id string, u UserUpdate) (*User, error) {
	cur, err := d.User(id)
	if err != nil {
		return nil, err
	}
	if u.DisplayName != nil {
		if err := validDisplayName(*u.DisplayName); err != nil {
			return nil, err
		}
	}
	if u.Roles != nil {
		if err := validRoles(*u.Roles); err != nil {
			return nil, err
		}
	}
	var hash string
	if u.Password != nil {
		if err := validPassword(*u.Password); err != nil {
			return nil, err
		}
		if hash, err = d.hashPassword(*u.Password); err != nil {
			return nil, err
		}
	}
	e, err := d.update(ctx, cur.ObjectID, kindUser, func(r *record) error {
		if u.DisplayName != nil {
			r.DisplayName = *u.DisplayName
		}
		if u.Enabled != nil {
			if r.Enabled && !*u.Enabled {
				// Disabling ends the person's sessions (portal, refresh
				// tokens) for good: enabling again does not revive them.
				r.SessionsValidFrom = storage.Now(d.now())
			}
			r.Enabled = *u.Enabled
		}
		if hash != "" {
			// A new password ends the sessions the old one started.
			r.PasswordHash, r.SessionsValidFrom = hash, storage.Now(d.now())
		}
		if u.ForceChangePassword != nil {
			r.MustChangePassword = *u.ForceChangePassword
		}
		if u.Roles != nil {
			r.Roles = slices.Clone(*u.Roles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.user(), nil
}

// RevokeSignInSessions ends every session the person id (object id or
// user name) has (Graph's revokeSignInSessions): refresh tokens issued
// before now are refused from now on. Access tokens already issued stay
// valid until they expire, as in Entra. ErrNotFound.
func (d *Directory) RevokeSignInSessions(ctx context.Context, id string) (*User, error) {
	cur, err := d.User(id)
	if err != nil {
		return nil, err
	}
	e, err := d.update(ctx, cur.ObjectID, kindUser, func(r *record) error {
		r.SessionsValidFrom = storage.Now(d.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.user(), nil
}

// DeleteUser deletes the person id. ErrNotFound.
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	cur, err := d.User(id)
	if err != nil {
		return err
	}
	return d.delete(ctx, cur.ObjectID)
}

// CheckPassword signs a person in: user name (case-insensitive) and
// password, in tenant. It runs argon2id even for an unknown user, so timing
// does not reveal which names exist. Errors (plain sentinels):
// ErrInvalidPassword, ErrDisabled, ErrPasswordExpired (the password is
// right and must be changed: ChangePassword); ctx.Err() when it gave up
// waiting for a hashing slot.
func (d *Directory) CheckPassword(ctx context.Context, tenantID, userName, password string) (gatehouse.Principal, error) {
	e, err := d.checkPassword(ctx, tenantID, userName, password)
	if err != nil {
		return gatehouse.Principal{}, err
	}
	if e.rec.MustChangePassword {
		return gatehouse.Principal{}, ErrPasswordExpired
	}
	return e.principal, nil
}

// ChangePassword is a person changing their own password: the current one
// (right, even if it must be changed) for next, which must differ from it.
// It ends the person's other sessions and clears "must change". Errors:
// CheckPassword's (but ErrPasswordExpired), ErrInvalid for next.
func (d *Directory) ChangePassword(ctx context.Context, tenantID, userName, current, next string) (gatehouse.Principal, error) {
	if err := validPassword(next); err != nil {
		return gatehouse.Principal{}, err
	}
	e, err := d.checkPassword(ctx, tenantID, userName, current)
	if err != nil {
		return gatehouse.Principal{}, err
	}
	if next == current {
		return gatehouse.Principal{}, invalid("newPassword", "The new password must differ from the current one.")
	}
	hash, err := d.hashPassword(next)
	if err != nil {
		return gatehouse.Principal{}, err
	}
	_, err = d.update(ctx, e.rec.ObjectID, kindUser, func(r *record) error {
		if r.PasswordHash != e.rec.PasswordHash {
			// Changed meanwhile (an administrator's reset, another
			// change): current is no longer the password.
			return ErrInvalidPassword
		}
		r.PasswordHash, r.SessionsValidFrom, r.MustChangePassword = hash, storage.Now(d.now()), false
		return nil
	})
	if errors.Is(err, ErrInvalidPassword) {
		return gatehouse.Principal{}, ErrInvalidPassword // not the store's failure
	}
	if err != nil {
		return gatehouse.Principal{}, err
	}
	return e.principal, nil
}

// checkPassword is CheckPassword without the "must change" check.
func (d *Directory) checkPassword(ctx context.Context, tenantID, userName, password string) (*entry, error) {
	d.mu.RLock()
	e := d.byUserName[lower(userName)]
	d.mu.RUnlock()
	hash := dummyHash
	if e != nil && e.rec.TenantID == tenantID {
		hash = e.rec.PasswordHash
	} else {
		e = nil
	}
	select {
	case d.pwSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ok := verifyPassword(hash, password)
	<-d.pwSem
	if !ok || e == nil {
		return nil, ErrInvalidPassword
	}
	if !e.rec.Enabled {
		return nil, ErrDisabled
	}
	return e, nil
}

// dummyHash is verified against for unknown users (a random salt and hash
// nobody knows the password of).
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$" +
	"aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

func (d *Directory) hashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(d.rand, salt); err != nil {
		return "", err
	}
	p := d.pwParams
	sum := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// verifyPassword checks pw against a PHC-encoded argon2id hash, using the
// parameters recorded in it (so raising the defaults keeps old hashes
// working).
func verifyPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory > 1<<20 || p.Time > 16 || p.Threads == 0 || p.Threads > 16 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
