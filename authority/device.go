package authority

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
	"golang.org/x/time/rate"
)

// The device authorization grant (RFC 8628, as Entra ID serves it): a
// person signs a CLI or a headless app in from another device's browser,
// without giving the app their password.
//
//	app:    POST {tenant}/oauth2/v2.0/devicecode (or /adfs/oauth2/devicecode)
//	        client_id, scope → device_code, user_code, verification_uri
//	        (https://H/portal/device), expires_in 900, interval 5, message
//	person: opens the page, signs in to the portal, enters the user code,
//	        sees which app asks for which resource, and approves or declines
//	app:    polls the token endpoint with grant_type
//	        urn:ietf:params:oauth:grant-type:device_code (MSAL Go sends
//	        "device_code", which Entra takes too) and device_code:
//	        400 authorization_pending (AADSTS70016) until the person
//	        decides, then the person's token (and a session, when the
//	        scope asked for offline_access) once, or 400
//	        authorization_declined (AADSTS70000), expired_token (AADSTS70020)
//
// This is azidentity's DeviceCodeCredential, @azure/identity's, and
// `gatehouse login --use-device-code`. MSAL derives the endpoint from the
// token endpoint ("token" → "devicecode"), so both URL forms are served.
//
// The device code is 256 random bits, stored only as its SHA-256 (kind
// authority.devicecode, key = hex of the hash), so a database read gives
// nothing to poll with; the user code (9 characters of an unambiguous
// alphabet, ~2^44) is the record's alternate key, and typing wrong ones
// is throttled by the portal like wrong passwords. Both are valid for
// DeviceCodeLifetime. A code is redeemed once (an atomic update), by the
// client it was issued to, and the person's state (enabled, sessions
// valid from) is checked again when it is redeemed. Requests for new
// codes are limited per client address (they are unauthenticated writes).

const (
	kindDeviceCode = "authority.devicecode"
	// GrantDeviceCode is the token endpoint's grant_type for RFC 8628.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// DeviceCodeLifetime is how long a device code can be approved and
	// redeemed: Entra's 15 minutes.
	DeviceCodeLifetime = 15 * time.Minute
	// deviceCodeInterval is the polling interval the response asks for.
	deviceCodeInterval = 5
	// deviceCodesPerMinute bounds new device codes per client address.
	deviceCodesPerMinute = 30
	// DevicePagePath is the verification page (served by the portal).
	DevicePagePath = "/portal/device"
)

// userCodeAlphabet has no 0/O, 1/I/L, U or V: easy to read and type.
const userCodeAlphabet = "ABCDEFGHJKMNPQRSTWXYZ23456789"

const userCodeLen = 9

// Device request states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDeclined = "declined"
	deviceRedeemed = "redeemed"
)

type deviceRecord struct {
	TenantID   string    `json:"tenantId"`
	ClientID   string    `json:"clientId"`
	ClientName string    `json:"clientName"`
	Scope      string    `json:"scope"`
	Resource   string    `json:"resource"`
	ADFS       bool      `json:"adfs,omitempty"`
	Expires    time.Time `json:"expires"`
	State      string    `json:"state"`
	// ObjectID is the person who approved or declined; AuthTime when.
	ObjectID string    `json:"objectId,omitempty"`
	AuthTime time.Time `json:"authTime,omitzero"`
}

// DeviceRequest is a pending device sign-in as the verification page
// shows it.
type DeviceRequest struct {
	UserCode   string
	TenantID   string
	ClientID   string
	ClientName string
	// Resource is the audience the app asks a token for.
	Resource string
	// OfflineAccess: the app asks for a session (a refresh token).
	OfflineAccess bool
	Expires       time.Time
	State         string
	// APIName and Permissions: when Resource is an application's API, its
	// name and the delegated scopes the app asks for.
	APIName     string
	Permissions []Permission
}

// Errors of DeviceRequest and DecideDevice.
var (
	// ErrDeviceCodeUnknown: no such user code, or it expired.
	ErrDeviceCodeUnknown = gatehouse.NotFoundf("DeviceCodeNotFound",
		"That code is not valid or has expired. Check the code, or start the sign-in on your device again.")
	// ErrDeviceCodeDecided: the code was already approved or declined.
	ErrDeviceCodeDecided = gatehouse.Errorf(http.StatusConflict, "DeviceCodeAlreadyUsed",
		"That code was already used. Start the sign-in on your device again.")
)

func deviceKey(deviceCode string) string {
	sum := sha256.Sum256([]byte(deviceCode))
	return hex.EncodeToString(sum[:])
}

// NormalizeUserCode returns a typed user code as stored: upper case,
// without spaces or dashes. It returns "" for anything that cannot be one.
func NormalizeUserCode(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		}
		if !strings.ContainsRune(userCodeAlphabet, r) {
			return ""
		}
		b.WriteRune(r)
		if b.Len() > userCodeLen {
			return ""
		}
	}
	if b.Len() != userCodeLen {
		return ""
	}
	return b.String()
}

func (a *Authority) newUserCode() (string, error) {
	var raw [userCodeLen]byte
	if _, err := io.ReadFull(a.rand, raw[:]); err != nil {
		return "", err
	}
	// 256 is not a multiple of the alphabet's 29: the bias (at most one
	// part in 8) costs a fraction of a bit of the code's 43.7.
	for i, c := range raw {
		raw[i] = userCodeAlphabet[int(c)%len(userCodeAlphabet)]
	}
	return string(raw[:]), nil
}

// deviceLimiter bounds new device codes per client address.
func (a *Authority) deviceLimiter(r *http.Request) *rate.Limiter {
	addr := r.RemoteAddr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	key := "devicecode\x00" + addr
	if lim, ok := a.lockouts.Get(key); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Every(time.Minute/deviceCodesPerMinute), deviceCodesPerMinute)
	if prev, ok, _ := a.lockouts.PeekOrAdd(key, lim); ok {
		return prev
	}
	return lim
}

// handleDeviceCode is POST {tenant}/oauth2/v2.0/devicecode and
// /adfs/oauth2/devicecode.
func (a *Authority) handleDeviceCode(w http.ResponseWriter, r *http.Request, seg string, adfs bool) error {
	tid, err := a.dir.ResolveTenant(seg)
	if err != nil {
		return oauthErr(oauthInvalidTenant, 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(seg))
	}
	tr := &tokenRequest{tenantSeg: seg, tenantID: tid, adfs: adfs}
	if err := readForm(r, tr, "client_id"); err != nil {
		return err
	}
	if tr.clientID == "" {
		return oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if tr.secret != "" || tr.form.Get("client_assertion") != "" {
		return oauthErr(oauthInvalidClient, 700025, "The device code flow is for public clients: neither 'client_assertion' nor 'client_secret' should be presented.")
	}
	clientID, name := strings.ToLower(tr.clientID), publicClientNames[strings.ToLower(tr.clientID)]
	if !publicClients[clientID] {
		client, err := a.client(tr)
		if err != nil {
			return err
		}
		if client.Principal().ManagedIdentity {
			return oauthErr(oauthUnauthorizedClient, 700016, "'%s' is a managed identity: people do not sign in to it.", clip(tr.clientID))
		}
		clientID, name = client.Principal().ClientID, client.Principal().Name
	}
	resource, err := a.personResource(tr)
	if err != nil {
		return err
	}
	if !a.deviceLimiter(r).Allow() {
		return gatehouse.Errorf(http.StatusTooManyRequests, "slow_down",
			"Too many device codes were requested from this address. Try again in a minute.").
			WithInner("50196").WithHeader("Retry-After", "60")
	}
	var raw [32]byte
	if _, err := io.ReadFull(a.rand, raw[:]); err != nil {
		return fmt.Errorf("authority: device code: %w", err)
	}
	deviceCode := base64.RawURLEncoding.EncodeToString(raw[:])
	now := storage.Now(a.now())
	rec := deviceRecord{TenantID: tid, ClientID: clientID, ClientName: name, Scope: tr.form.Get("scope"),
		Resource: resource, ADFS: adfs, Expires: now.Add(DeviceCodeLifetime), State: DevicePending}
	var userCode string
	for range 3 { // a user-code collision (2^-44 a pair) is retried
		if userCode, err = a.newUserCode(); err != nil {
			return fmt.Errorf("authority: device code: %w", err)
		}
		_, err = a.deviceCodes.Create(r.Context(), &storage.Record[deviceRecord]{Key: deviceKey(deviceCode),
			Alt: userCode, Value: rec, Expires: rec.Expires})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		return gatehouse.ErrUnavailable.WithCause(err)
	}
	uri := a.base + DevicePagePath
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	return json.NewEncoder(w).Encode(struct {
		UserCode        string `json:"user_code"`
		DeviceCode      string `json:"device_code"`
		VerificationURI string `json:"verification_uri"`
		ExpiresIn       int    `json:"expires_in"`
		Interval        int    `json:"interval"`
		Message         string `json:"message"`
	}{userCode, deviceCode, uri, int(DeviceCodeLifetime / time.Second), deviceCodeInterval,
		"To sign in, use a web browser to open the page " + uri + " and enter the code " + userCode + " to authenticate."})
}

// deviceCodeGrant redeems an approved device code (grant_type
// urn:ietf:params:oauth:grant-type:device_code).
func (a *Authority) deviceCodeGrant(r *http.Request, tr *tokenRequest) (mintSpec, string, error) {
	code := tr.form.Get("device_code")
	if code == "" {
		code = tr.form.Get("code") // the v1 endpoint's name for it
	}
	if tr.clientID == "" {
		return mintSpec{}, "", oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if code == "" {
		return mintSpec{}, "", oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'device_code'.")
	}
	if tr.secret != "" || tr.form.Get("client_assertion") != "" {
		return mintSpec{}, "", oauthErr(oauthInvalidClient, 700025, "The device code flow is for public clients: neither 'client_assertion' nor 'client_secret' should be presented.")
	}
	invalid := oauthErr(oauthInvalidGrant, 70000, "The provided value for the input parameter 'device_code' is not valid.")
	ctx := r.Context()
	now := storage.Now(a.now())
	errPending, errDeclined, errRedeemed, errOther := errors.New("pending"), errors.New("declined"), errors.New("redeemed"), errors.New("other client")
	rec, err := a.deviceCodes.Update(ctx, deviceKey(code), func(sr *storage.Record[deviceRecord]) error {
		v := &sr.Value
		switch {
		case !strings.EqualFold(v.TenantID, tr.tenantID) || !strings.EqualFold(v.ClientID, tr.clientID):
			return errOther
		case !v.Expires.After(now):
			return storage.ErrNotFound
		case v.State == DevicePending:
			return errPending
		case v.State == DeviceDeclined:
			return errDeclined
		case v.State != DeviceApproved:
			return errRedeemed
		}
		v.State = deviceRedeemed
		return nil
	})
	switch {
	case errors.Is(err, errPending):
		return mintSpec{}, "", oauthErr("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
	case errors.Is(err, errDeclined):
		return mintSpec{}, "", oauthErr("authorization_declined", 70000, "The user declined the sign-in request.")
	case errors.Is(err, errRedeemed):
		return mintSpec{}, "", oauthErr(oauthInvalidGrant, 54005, "The device code was already redeemed.")
	case errors.Is(err, errOther):
		return mintSpec{}, "", invalid
	case errors.Is(err, storage.ErrNotFound):
		// Unknown codes are indistinguishable from expired ones once the
		// upkeep loop removed them; a known expired one is said so.
		if cur, gerr := a.deviceCodes.Get(ctx, deviceKey(code)); gerr == nil && strings.EqualFold(cur.Value.ClientID, tr.clientID) {
			return mintSpec{}, "", oauthErr("expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
		}
		return mintSpec{}, "", invalid
	case err != nil:
		return mintSpec{}, "", gatehouse.ErrUnavailable.WithCause(err)
	}
	v := rec.Value
	p, err := a.signedInPerson(v.ObjectID, v.AuthTime)
	if err != nil {
		return mintSpec{}, "", err
	}
	spec := mintSpec{principal: p, acr: "0", clientID: v.ClientID, scope: "user_impersonation", audience: v.Resource}
	if wantsRefreshToken(v.Scope) {
		spec.session = &session{id: gatehouse.NewGUID(), authTime: v.AuthTime}
	}
	return spec, v.Scope, nil
}

// DeviceRequest returns the pending or decided device sign-in of a user
// code (as typed: NormalizeUserCode applies). ErrDeviceCodeUnknown.
func (a *Authority) DeviceRequest(ctx context.Context, userCode string) (*DeviceRequest, error) {
	uc := NormalizeUserCode(userCode)
	if uc == "" {
		return nil, ErrDeviceCodeUnknown
	}
	rec, err := a.deviceCodes.GetByAlt(ctx, uc)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, ErrDeviceCodeUnknown
	case err != nil:
		return nil, gatehouse.ErrUnavailable.WithCause(err)
	case !rec.Value.Expires.After(a.now()):
		return nil, ErrDeviceCodeUnknown
	}
	dr := deviceRequest(uc, rec.Value)
	dr.APIName, dr.Permissions = a.requestedPermissions(rec.Value.TenantID, rec.Value.Resource, rec.Value.Scope)
	return dr, nil
}

func deviceRequest(uc string, v deviceRecord) *DeviceRequest {
	return &DeviceRequest{UserCode: uc, TenantID: v.TenantID, ClientID: v.ClientID, ClientName: v.ClientName,
		Resource: v.Resource, OfflineAccess: wantsRefreshToken(v.Scope), Expires: v.Expires, State: v.State}
}

// DecideDevice approves (approve true) or declines the pending device
// sign-in of userCode for person, who must be an enabled person of the
// code's tenant. It is audited. ErrDeviceCodeUnknown, ErrDeviceCodeDecided,
// 403 for a person of another tenant.
func (a *Authority) DecideDevice(ctx context.Context, r *http.Request, userCode string, person gatehouse.Principal, approve bool) (*DeviceRequest, error) {
	uc := NormalizeUserCode(userCode)
	if uc == "" {
		return nil, ErrDeviceCodeUnknown
	}
	if person.Type != gatehouse.PrincipalUser {
		return nil, gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed, "Only people can approve a device sign-in.")
	}
	cur, err := a.deviceCodes.GetByAlt(ctx, uc)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, ErrDeviceCodeUnknown
	case err != nil:
		return nil, gatehouse.ErrUnavailable.WithCause(err)
	}
	if !strings.EqualFold(cur.Value.TenantID, person.TenantID) {
		return nil, gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed,
			"The sign-in request is for another tenant than yours.")
	}
	now := storage.Now(a.now())
	rec, err := a.deviceCodes.Update(ctx, cur.Key, func(sr *storage.Record[deviceRecord]) error {
		v := &sr.Value
		switch {
		case !v.Expires.After(now):
			return ErrDeviceCodeUnknown
		case v.State != DevicePending:
			return ErrDeviceCodeDecided
		}
		v.State, v.ObjectID, v.AuthTime = DeviceDeclined, person.ObjectID, now
		if approve {
			v.State = DeviceApproved
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = ErrDeviceCodeUnknown
		}
		if _, ok := gatehouse.AsError(err); !ok {
			err = gatehouse.ErrUnavailable.WithCause(err)
		}
		return nil, err
	}
	if r != nil {
		action := actionApproveDevice
		if !approve {
			action = actionDeclineDevice
		}
		a.audit(r, person, action, "/gatehouse/deviceCodes/"+rec.Value.ClientID, nil)
	}
	server.SetPrincipal(ctx, person.ObjectID)
	return deviceRequest(uc, rec.Value), nil
}

// Audited device sign-in decisions (the scope names the client).
const (
	actionApproveDevice = "Gatehouse/deviceCodes/approve/action"
	actionDeclineDevice = "Gatehouse/deviceCodes/decline/action"
)

// signedInPerson is the person objectID who signed in at authTime, when
// they still may get tokens from that sign-in: they exist, are enabled,
// and their sessions were not revoked since (refresh tokens, device codes
// and authorization codes are all checked so when redeemed).
func (a *Authority) signedInPerson(objectID string, authTime time.Time) (gatehouse.Principal, error) {
	u, err := a.dir.User(objectID)
	switch {
	case err != nil:
		return gatehouse.Principal{}, oauthErr(oauthInvalidGrant, 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user no longer exists.")
	case !u.Enabled:
		return gatehouse.Principal{}, oauthErr(oauthInvalidGrant, 50057, "The user account is disabled.")
	case authTime.Before(u.SignInSessionsValidFrom):
		return gatehouse.Principal{}, oauthErr(oauthInvalidGrant, 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password, or their sessions were revoked.")
	}
	return gatehouse.Principal{Type: gatehouse.PrincipalUser, TenantID: u.TenantID, ObjectID: u.ObjectID, Name: u.UserName}, nil
}
