package authority

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
)

// kindIdentityHeader holds identity headers: the secret that binds a
// process on the managed-identity endpoint's machine to one managed
// identity (App Service's IDENTITY_HEADER). Key: hex SHA-256 of the header
// (the header itself is never stored). Alt: the header's public id (for
// revocation). Ref: the identity's object id. Expires: its expiry.
const kindIdentityHeader = "authority.identityheader"

type headerRecord struct {
	ID         string    `json:"id"`
	ObjectID   string    `json:"objectId"`
	ResourceID string    `json:"resourceId"`
	CreatedBy  string    `json:"createdBy"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
}

// Identity header lifetimes: `gatehouse run` revokes its header when the
// command exits; the expiry bounds a header whose revocation never came
// (the CLI was killed).
const (
	DefaultHeaderLifetime = 12 * time.Hour
	MaxHeaderLifetime     = 7 * 24 * time.Hour
)

// MSIAPIVersion is the App Service managed-identity protocol version.
const MSIAPIVersion = "2019-08-01"

// IdentityHeader describes an issued identity header (not the secret).
type IdentityHeader struct {
	ID          string
	ClientID    string
	PrincipalID string
	ResourceID  string
	Expires     time.Time
	// Endpoint is the managed-identity endpoint URL (IDENTITY_ENDPOINT).
	Endpoint string
}

// IdentityAuthorizer decides whether caller may act as a managed identity
// (obtain an identity header for it). Principals holding the Global or
// Application Administrator directory role always may; for everyone else
// the authority asks this function, if set (the management API sets it to
// an RBAC check, e.g. Managed Identity Operator on the identity). nil error
// = allowed.
type IdentityAuthorizer func(ctx context.Context, caller gatehouse.Principal, mi *directory.ManagedIdentity) error

// Auditor records identity-header issuance and revocation (the audit log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (*audit.Record, error)
}

// SetAuditor installs the audit log. Call before serving.
func (a *Authority) SetAuditor(l Auditor) { a.auditor = l }

func (a *Authority) audit(r *http.Request, caller gatehouse.Principal, action, scope string, err error) {
	if a.auditor == nil {
		return
	}
	e := audit.Entry{RequestID: server.RequestID(r.Context()), Action: action, Scope: scope, Result: audit.Succeeded,
		Surface: string(server.SurfaceAuthority), Principal: audit.Principal{ObjectID: caller.ObjectID,
			Type: string(caller.Type), Name: caller.Name, TenantID: caller.TenantID}}
	if err != nil {
		e.Result, e.Status = audit.Failed, gatehouse.ErrorStatus(err)
		if ge, ok := gatehouse.AsError(err); ok {
			e.Code = ge.Code
		}
		if e.Status == http.StatusForbidden {
			e.Result = audit.Denied
		}
	}
	if _, aerr := a.auditor.Append(context.WithoutCancel(r.Context()), e); aerr != nil {
		a.logger.Error("audit: append failed", "action", action, "err", aerr)
	}
}

// Audited actions.
const (
	actionCreateHeader = "Gatehouse/identityHeaders/create"
	actionRevokeHeader = "Gatehouse/identityHeaders/delete"
)

// SetIdentityAuthorizer installs the check for non-administrators. Call
// before serving.
func (a *Authority) SetIdentityAuthorizer(f IdentityAuthorizer) { a.identityAuthz = f }

// SetMSIEndpoint records the URL of the managed-identity endpoint
// (http://127.0.0.1:PORT/msi/token), which identity headers are for.
func (a *Authority) SetMSIEndpoint(u string) { a.msiURL.Store(&u) }

// MSIEndpoint returns the managed-identity endpoint URL ("" if none).
func (a *Authority) MSIEndpoint() string {
	if p := a.msiURL.Load(); p != nil {
		return *p
	}
	return ""
}

// CreateIdentityHeader issues a new identity header for the managed
// identity mi, valid for lifetime (0 = DefaultHeaderLifetime). The header
// value is returned once; only its SHA-256 is stored. Authorization is the
// caller's business (see handleCreateHeader).
func (a *Authority) CreateIdentityHeader(ctx context.Context, createdBy string, mi *directory.ManagedIdentity, lifetime time.Duration) (*IdentityHeader, string, error) {
	if lifetime == 0 {
		lifetime = DefaultHeaderLifetime
	}
	if lifetime < time.Minute || lifetime > MaxHeaderLifetime {
		return nil, "", gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The lifetime must be between 1 minute and %d hours.", int(MaxHeaderLifetime.Hours()))
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(a.rand, raw); err != nil {
		return nil, "", err
	}
	secret := b64.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	now := storage.Now(a.now())
	rec := headerRecord{ID: gatehouse.NewGUID(), ObjectID: mi.PrincipalID, ResourceID: mi.ResourceID,
		CreatedBy: createdBy, Created: now, Expires: now.Add(lifetime)}
	_, err := a.headers.Create(ctx, &storage.Record[headerRecord]{Key: hex.EncodeToString(sum[:]), Alt: rec.ID,
		Ref: mi.PrincipalID, Value: rec, Expires: rec.Expires})
	if err != nil {
		return nil, "", gatehouse.ErrUnavailable.WithCause(err)
	}
	return &IdentityHeader{ID: rec.ID, ClientID: mi.ClientID, PrincipalID: mi.PrincipalID, ResourceID: mi.ResourceID,
		Expires: rec.Expires, Endpoint: a.MSIEndpoint()}, secret, nil
}

// RevokeIdentityHeader deletes the header with public id id. Only its
// creator or a directory administrator may (checked when caller is
// non-nil). The endpoint reads headers from storage, so revocation is
// immediate on every node. 404 when unknown.
func (a *Authority) RevokeIdentityHeader(ctx context.Context, caller *gatehouse.Principal, id string) error {
	notFound := gatehouse.NotFoundf(gatehouse.CodeNotFound, "The identity header %q does not exist.", clip(id))
	if !gatehouse.IsGUID(id) {
		return notFound
	}
	rec, err := a.headers.GetByAlt(ctx, strings.ToLower(id))
	if errors.Is(err, storage.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return gatehouse.ErrUnavailable.WithCause(err)
	}
	if caller != nil && rec.Value.CreatedBy != caller.ObjectID &&
		!a.dir.HasRole(caller.ObjectID, directory.RoleGlobalAdministrator, directory.RoleApplicationAdministrator) {
		return notFound
	}
	if err := a.headers.Delete(ctx, rec.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return gatehouse.ErrUnavailable.WithCause(err)
	}
	return nil
}

// createHeaderRequest is the body of POST /gatehouse/v1/identityHeaders.
type createHeaderRequest struct {
	// Identity names the managed identity: its name (unique), client id,
	// object id or resource id.
	Identity        string `json:"identity"`
	LifetimeSeconds int64  `json:"lifetimeSeconds,omitempty"`
}

type createHeaderResponse struct {
	ID          string `json:"id"`
	Header      string `json:"header"`
	Endpoint    string `json:"endpoint"`
	ClientID    string `json:"clientId"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	ExpiresOn   int64  `json:"expiresOn"`
}

func (a *Authority) handleCreateHeader(w http.ResponseWriter, r *http.Request) error {
	c, err := a.AuthenticateARM(r, a.ManagementAudiences()...)
	if err != nil {
		return err
	}
	var req createHeaderRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	mi, err := a.findIdentity(req.Identity)
	if err != nil {
		return err
	}
	h, secret, err := a.createHeader(r, c.Principal, mi, time.Duration(req.LifetimeSeconds)*time.Second)
	a.audit(r, c.Principal, actionCreateHeader, mi.ResourceID, err)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusCreated, createHeaderResponse{ID: h.ID, Header: secret, Endpoint: h.Endpoint,
		ClientID: h.ClientID, PrincipalID: h.PrincipalID, ResourceID: h.ResourceID, ExpiresOn: h.Expires.Unix()})
	return nil
}

// createHeader authorizes caller to act as mi and issues the header.
func (a *Authority) createHeader(r *http.Request, caller gatehouse.Principal, mi *directory.ManagedIdentity, lifetime time.Duration) (*IdentityHeader, string, error) {
	// A Global Administrator may act as any identity (and could grant
	// itself the roles anyway); no other directory role gives tokens of a
	// managed identity, as in Entra.
	if !a.dir.HasRole(caller.ObjectID, directory.RoleGlobalAdministrator) {
		denied := gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed,
			"The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action' over scope '%s'.",
			caller.ClientName(), caller.ObjectID, mi.ResourceID)
		if a.identityAuthz == nil {
			return nil, "", denied
		}
		if err := a.identityAuthz(r.Context(), caller, mi); err != nil {
			if _, ok := gatehouse.AsError(err); ok {
				return nil, "", err
			}
			return nil, "", denied.WithCause(err)
		}
	}
	if a.MSIEndpoint() == "" {
		return nil, "", gatehouse.Errorf(http.StatusServiceUnavailable, gatehouse.CodeUnavailable, "The managed-identity endpoint is not enabled on this node.")
	}
	return a.CreateIdentityHeader(r.Context(), caller.ObjectID, mi, lifetime)
}

func (a *Authority) handleRevokeHeader(w http.ResponseWriter, r *http.Request) error {
	c, err := a.AuthenticateARM(r, a.ManagementAudiences()...)
	if err != nil {
		return err
	}
	err = a.RevokeIdentityHeader(r.Context(), &c.Principal, r.PathValue("id"))
	a.audit(r, c.Principal, actionRevokeHeader, "/gatehouse/identityHeaders/"+clip(r.PathValue("id")), err)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// findIdentity resolves a managed identity by client id, object id,
// resource id or (unique) name.
func (a *Authority) findIdentity(name string) (*directory.ManagedIdentity, error) {
	if name == "" {
		return nil, gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request must name an identity.").WithTarget("identity")
	}
	if mi, err := a.dir.ManagedIdentityByID(name); err == nil {
		return mi, nil
	}
	all, err := a.dir.ListManagedIdentities(context.Background(), "")
	if err != nil {
		return nil, err
	}
	var found []*directory.ManagedIdentity
	for _, mi := range all {
		if strings.EqualFold(mi.Name, name) {
			found = append(found, mi)
		}
	}
	switch len(found) {
	case 0:
		return nil, gatehouse.NotFoundf(gatehouse.CodeResourceNotFound, "No managed identity is named %q.", clip(name))
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, mi := range found {
		ids[i] = mi.ResourceID
	}
	return nil, gatehouse.Errorf(http.StatusConflict, gatehouse.CodeConflict,
		"Several managed identities are named %q; name one by client id or resource id: %s.", clip(name), strings.Join(ids, ", "))
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err != nil {
		return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge, "The request body is too large.")
	}
	if err := strictUnmarshal(body, v); err != nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request body is not a valid JSON object of the expected shape.")
	}
	return nil
}

// MSIHandler serves the managed-identity protocols for the loopback
// listener:
//
//	GET /msi/token?api-version=2019-08-01&resource=R[&client_id=|&object_id=|&mi_res_id=]
//	X-IDENTITY-HEADER: <identity header>
//
// the App Service protocol (azure-wire.md §3.2) that every current SDK
// speaks when IDENTITY_ENDPOINT and IDENTITY_HEADER are set, and
//
//	POST /msi/token?identity-header=<identity header>
//	Metadata: true
//	resource=R[&client_id=|&object_id=|&msi_res_id=]
//
// the Cloud Shell protocol that az 2.45's `az login --identity` speaks when
// MSI_ENDPOINT is set (msrestazure get_msi_token: a form POST to
// MSI_ENDPOINT as given, no secret header). `gatehouse run` puts the
// identity header into MSI_ENDPOINT's query, which the request log never
// records; the SDKs prefer IDENTITY_ENDPOINT when both are set.
//
// The identity header selects the identity; a selector, if given, must
// name that same identity.
func (a *Authority) MSIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /msi/token", server.Handle(renderMSI, a.handleMSIToken))
	mux.Handle("POST /msi/token", server.Handle(renderMSI, a.handleCloudShellToken))
	mux.Handle("/", server.Handle(renderMSI, func(w http.ResponseWriter, r *http.Request) error {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "Not found. The managed-identity endpoint is GET /msi/token.")
	}))
	return server.WithSurface(server.SurfaceMSI, mux)
}

func badMSIRequest(format string, args ...any) error {
	return gatehouse.BadRequestf("invalid_request", format, args...)
}

func (a *Authority) handleMSIToken(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	header := r.Header.Get("X-IDENTITY-HEADER")
	if header == "" {
		return gatehouse.Errorf(http.StatusUnauthorized, "unauthorized", "The X-IDENTITY-HEADER header is missing.")
	}
	if v := q.Get("api-version"); v != MSIAPIVersion {
		return badMSIRequest("The api-version %q is not supported; use %s.", clip(v), MSIAPIVersion)
	}
	// principal_id is App Service's other name for object_id.
	objectID, principalID := q.Get("object_id"), q.Get("principal_id")
	if objectID != "" && principalID != "" && !strings.EqualFold(objectID, principalID) {
		return badMSIRequest("Give at most one of client_id, object_id and mi_res_id.")
	}
	if objectID == "" {
		objectID = principalID
	}
	t, err := a.msiToken(r, header, q.Get("resource"), q.Get("client_id"), objectID, q.Get("mi_res_id"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
		Resource    string `json:"resource"`
		TokenType   string `json:"token_type"`
		ClientID    string `json:"client_id"`
	}{t.token, strconv.FormatInt(t.expires.Unix(), 10), t.resource, "Bearer", t.clientID})
	return nil
}

// maxMSIForm bounds the body of a Cloud Shell token request.
const maxMSIForm = 16 << 10

func (a *Authority) handleCloudShellToken(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		return badMSIRequest("The Metadata: true header is required.")
	}
	header := r.URL.Query().Get("identity-header")
	if header == "" {
		return gatehouse.Errorf(http.StatusUnauthorized, "unauthorized", "The identity-header query parameter is missing (use the MSI_ENDPOINT that gatehouse run sets).")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxMSIForm)
	if err := r.ParseForm(); err != nil {
		return badMSIRequest("The body must be a form (application/x-www-form-urlencoded) of at most %d bytes.", maxMSIForm)
	}
	f := r.PostForm
	t, err := a.msiToken(r, header, f.Get("resource"), f.Get("client_id"), f.Get("object_id"), f.Get("msi_res_id"))
	if err != nil {
		return err
	}
	// The IMDS shape, which msrestazure and az read (numbers as strings).
	now := a.now()
	left := strconv.FormatInt(int64(t.expires.Sub(now)/time.Second), 10)
	w.Header().Set("Cache-Control", "no-store")
	server.WriteJSON(w, http.StatusOK, struct {
		AccessToken  string `json:"access_token"`
		ClientID     string `json:"client_id"`
		ExpiresIn    string `json:"expires_in"`
		ExpiresOn    string `json:"expires_on"`
		ExtExpiresIn string `json:"ext_expires_in"`
		NotBefore    string `json:"not_before"`
		Resource     string `json:"resource"`
		TokenType    string `json:"token_type"`
	}{t.token, t.clientID, left, strconv.FormatInt(t.expires.Unix(), 10), left,
		strconv.FormatInt(now.Unix(), 10), t.resource, "Bearer"})
	return nil
}

type msiIssued struct {
	token, resource, clientID string
	expires                   time.Time
}

// msiToken mints a token for resource as the managed identity header is
// bound to. clientID, objectID and resID are the optional selectors; at
// most one may be given and it must name that identity.
func (a *Authority) msiToken(r *http.Request, header, resource, clientID, objectID, resID string) (*msiIssued, error) {
	if resource == "" {
		return nil, badMSIRequest("The resource parameter is required.")
	}
	resource = strings.TrimSuffix(resource, "/.default")
	if len(header) > 256 {
		return nil, gatehouse.Errorf(http.StatusUnauthorized, "unauthorized", "The identity header is not valid.")
	}
	sum := sha256.Sum256([]byte(header))
	rec, err := a.headers.Get(r.Context(), hex.EncodeToString(sum[:]))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !a.now().Before(rec.Value.Expires)) {
		return nil, gatehouse.Errorf(http.StatusUnauthorized, "unauthorized", "The identity header is not valid (unknown, revoked or expired).")
	}
	if err != nil {
		return nil, gatehouse.ErrUnavailable.WithCause(err)
	}
	mi, err := a.dir.ManagedIdentityByID(rec.Value.ObjectID)
	if err != nil {
		return nil, gatehouse.Errorf(http.StatusUnauthorized, "unauthorized", "The identity this header was issued for no longer exists.")
	}
	selectors := 0
	for _, sel := range []struct{ name, got, want string }{
		{"client_id", clientID, mi.ClientID}, {"object_id", objectID, mi.PrincipalID},
	} {
		if sel.got != "" {
			selectors++
			if !strings.EqualFold(sel.got, sel.want) {
				return nil, badMSIRequest("No managed identity with %s %q is available to this caller.", sel.name, clip(sel.got))
			}
		}
	}
	if resID != "" {
		selectors++
		if resourceKey(resID) != resourceKey(mi.ResourceID) {
			return nil, badMSIRequest("No managed identity with resource id %q is available to this caller.", clip(resID))
		}
	}
	if selectors > 1 {
		return nil, badMSIRequest("Give at most one of client_id, object_id and mi_res_id.")
	}
	if err := a.resourceAllowed(mi.TenantID, resource, ""); err != nil {
		return nil, badMSIRequest("AADSTS500011: The resource principal named %s was not found in the tenant.", clip(resource))
	}
	p := gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, TenantID: mi.TenantID, ObjectID: mi.PrincipalID,
		ClientID: mi.ClientID, Name: mi.Name, ManagedIdentity: true}
	token, exp, err := a.mint(mintSpec{principal: p, audience: resource, acr: "2", miResourceID: mi.ResourceID})
	if err != nil {
		return nil, err
	}
	server.SetPrincipal(r.Context(), mi.PrincipalID)
	return &msiIssued{token: token, resource: resource, clientID: mi.ClientID, expires: exp}, nil
}

// renderMSI renders errors as App Service does: {"statusCode", "message",
// "correlationId"}; MSAL surfaces the body text.
func renderMSI(w http.ResponseWriter, r *http.Request, e *gatehouse.Error) {
	b, _ := json.Marshal(struct {
		StatusCode    int    `json:"statusCode"`
		Message       string `json:"message"`
		CorrelationID string `json:"correlationId"`
	}{e.Status, e.Message, server.RequestID(r.Context())})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status)
	w.Write(b)
}

func resourceKey(id string) string {
	if p, err := gatehouse.ParseResourceID(id); err == nil {
		return p.Key()
	}
	return strings.ToLower(id)
}
