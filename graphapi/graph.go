package graphapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/jsonutf8"
	"github.com/gatehouse/gatehouse/server"
)

// Auditor records writes (the audit log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (*audit.Record, error)
}

// API serves the Graph subset over a directory.
type API struct {
	dir    *directory.Directory
	auth   *authority.Authority
	logger *slog.Logger
	mux    *http.ServeMux // Mount's: where ServeAlternateKey routes again
	// Audit, when set, receives one entry per write (allowed, denied or
	// failed): who, the route, the path, the result. Never a body.
	Audit Auditor
	// ServicePrincipalDeleted, when set, is called after a service
	// principal's deletion (alone, or with its application) with its
	// object id: the server removes its Azure role assignments there,
	// which would otherwise come back with it (directory.ApplicationUpdate)
	// and keep granting its unexpired tokens.
	ServicePrincipalDeleted func(ctx context.Context, objectID string) error
}

// New returns the Graph subset.
func New(dir *directory.Directory, auth *authority.Authority, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{dir: dir, auth: auth, logger: logger}
}

// access levels
type access int

const (
	readAccess access = iota
	appWrite
	userWrite
	roleWrite
	// selfAccess: any signed-in principal, acting on itself (/me).
	selfAccess
	// selfRead: any signed-in principal, reading about itself (the
	// handler checks that it is itself, or readAccess's roles).
	selfRead
	// appOwner and spOwner: appWrite's roles, or an owner of the
	// application or service principal the path's {id} names, provided it
	// holds no directory role (owners.go). appOwnerRead and spOwnerRead:
	// readAccess's roles, or an owner.
	appOwner
	spOwner
	appOwnerRead
	spOwnerRead
	// ownedList: any signed-in principal; the handler lists everything to
	// readAccess's roles and only what the caller owns to anyone else.
	ownedList
	// ownerChecked: a write whose handler checks appWrite's roles or
	// ownership of the object its body names (POST /servicePrincipals).
	ownerChecked
)

// ownerAccess maps the ownership levels to the role level that grants
// them without ownership.
var ownerAccess = map[access]access{appOwner: appWrite, spOwner: appWrite, appOwnerRead: readAccess, spOwnerRead: readAccess}

// audited reports whether requests of this level are writes, and so
// audited.
func (a access) audited() bool {
	switch a {
	case readAccess, selfRead, appOwnerRead, spOwnerRead, ownedList:
		return false
	}
	return true
}

// rolesFor lists the directory roles that grant each access level.
var rolesFor = map[access][]string{
	readAccess: {directory.RoleGlobalAdministrator, directory.RoleApplicationAdministrator,
		directory.RoleUserAdministrator, directory.RoleDirectoryReaders},
	appWrite:  {directory.RoleGlobalAdministrator, directory.RoleApplicationAdministrator},
	userWrite: {directory.RoleGlobalAdministrator, directory.RoleUserAdministrator},
	roleWrite: {directory.RoleGlobalAdministrator},
}

// handler is a Graph handler: it runs after authentication and the role
// check, with the caller's claims.
type handler func(w http.ResponseWriter, r *http.Request, c *authority.Claims) error

// Mount adds the Graph routes to mux (see doc.go for the list).
func (g *API) Mount(mux *http.ServeMux) {
	g.mux = mux // altkey.go
	h := func(need access, fn handler) http.Handler {
		return server.WithSurface(server.SurfaceGraph, withGraphIDs(server.Handle(renderGraph, g.guard(need, fn))))
	}
	mux.Handle("GET /v1.0/organization", h(readAccess, g.organization))

	mux.Handle("GET /v1.0/applications", h(ownedList, g.listApplications))
	mux.Handle("POST /v1.0/applications", h(appWrite, g.createApplication))
	mux.Handle("GET /v1.0/applications/{id}", h(appOwnerRead, g.getApplication))
	mux.Handle("PATCH /v1.0/applications/{id}", h(appOwner, g.patchApplication))
	mux.Handle("DELETE /v1.0/applications/{id}", h(appOwner, g.deleteApplication))
	mux.Handle("POST /v1.0/applications/{id}/addPassword", h(appOwner, g.addPassword))
	mux.Handle("POST /v1.0/applications/{id}/removePassword", h(appOwner, g.removePassword))
	mux.Handle("POST /v1.0/applications/{id}/addKey", h(appOwner, g.addKey))
	mux.Handle("POST /v1.0/applications/{id}/removeKey", h(appOwner, g.removeKey))
	mux.Handle("GET /v1.0/applications/{id}/federatedIdentityCredentials", h(appOwnerRead, g.listFederated))
	mux.Handle("POST /v1.0/applications/{id}/federatedIdentityCredentials", h(appOwner, g.createFederated))
	mux.Handle("GET /v1.0/applications/{id}/federatedIdentityCredentials/{fid}", h(appOwnerRead, g.getFederated))
	mux.Handle("PATCH /v1.0/applications/{id}/federatedIdentityCredentials/{fid}", h(appOwner, g.patchFederated))
	mux.Handle("DELETE /v1.0/applications/{id}/federatedIdentityCredentials/{fid}", h(appOwner, g.deleteFederated))
	mux.Handle("GET /v1.0/applications/{id}/owners", h(appOwnerRead, g.listOwners(directory.OwnedApplication))) // owners.go
	mux.Handle("POST /v1.0/applications/{id}/owners/$ref", h(appOwner, g.addOwner(directory.OwnedApplication)))
	mux.Handle("DELETE /v1.0/applications/{id}/owners/{oid}/$ref", h(appOwner, g.removeOwner(directory.OwnedApplication)))

	mux.Handle("GET /v1.0/servicePrincipals", h(ownedList, g.listServicePrincipals))
	mux.Handle("POST /v1.0/servicePrincipals", h(ownerChecked, g.createServicePrincipal))
	mux.Handle("GET /v1.0/servicePrincipals/{id}", h(spOwnerRead, g.getServicePrincipal))
	mux.Handle("PATCH /v1.0/servicePrincipals/{id}", h(spOwner, g.patchServicePrincipal))
	mux.Handle("DELETE /v1.0/servicePrincipals/{id}", h(spOwner, g.deleteServicePrincipal))
	mux.Handle("POST /v1.0/servicePrincipals/{id}/addPassword", h(spOwner, g.addPassword))
	mux.Handle("POST /v1.0/servicePrincipals/{id}/removePassword", h(spOwner, g.removePassword))
	mux.Handle("GET /v1.0/servicePrincipals/{id}/owners", h(spOwnerRead, g.listOwners(directory.OwnedServicePrincipal)))
	mux.Handle("POST /v1.0/servicePrincipals/{id}/owners/$ref", h(spOwner, g.addOwner(directory.OwnedServicePrincipal)))
	mux.Handle("DELETE /v1.0/servicePrincipals/{id}/owners/{oid}/$ref", h(spOwner, g.removeOwner(directory.OwnedServicePrincipal)))

	mux.Handle("GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo", h(readAccess, g.listAppRoleAssignedTo)) // approles.go
	mux.Handle("POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo", h(appWrite, g.assignAppRole(true)))
	mux.Handle("DELETE /v1.0/servicePrincipals/{id}/appRoleAssignedTo/{aid}", h(appWrite, g.deleteAppRoleAssignment(true)))
	mux.Handle("GET /v1.0/servicePrincipals/{id}/appRoleAssignments", h(readAccess, g.listAppRoleAssignments))
	mux.Handle("POST /v1.0/servicePrincipals/{id}/appRoleAssignments", h(appWrite, g.assignAppRole(false)))
	mux.Handle("DELETE /v1.0/servicePrincipals/{id}/appRoleAssignments/{aid}", h(appWrite, g.deleteAppRoleAssignment(false)))
	mux.Handle("GET /v1.0/users/{id}/appRoleAssignments", h(readAccess, g.listAppRoleAssignments))
	mux.Handle("POST /v1.0/users/{id}/appRoleAssignments", h(appWrite, g.assignAppRole(false)))
	mux.Handle("DELETE /v1.0/users/{id}/appRoleAssignments/{aid}", h(appWrite, g.deleteAppRoleAssignment(false)))
	mux.Handle("GET /v1.0/groups/{id}/appRoleAssignments", h(readAccess, g.listAppRoleAssignments))
	mux.Handle("POST /v1.0/groups/{id}/appRoleAssignments", h(appWrite, g.assignAppRole(false)))
	mux.Handle("DELETE /v1.0/groups/{id}/appRoleAssignments/{aid}", h(appWrite, g.deleteAppRoleAssignment(false)))

	// grants.go; az deletes at /oAuth2PermissionGrants (Graph's paths
	// are case-insensitive).
	for _, p := range []string{"/v1.0/oauth2PermissionGrants", "/v1.0/oAuth2PermissionGrants"} {
		mux.Handle("GET "+p, h(readAccess, g.listGrants))
		mux.Handle("POST "+p, h(appWrite, g.createGrant))
		mux.Handle("GET "+p+"/{id}", h(readAccess, g.getGrant))
		mux.Handle("PATCH "+p+"/{id}", h(appWrite, g.patchGrant))
		mux.Handle("DELETE "+p+"/{id}", h(appWrite, g.deleteGrant))
	}

	mux.Handle("GET /v1.0/groups", h(readAccess, g.listGroups)) // groups.go
	mux.Handle("POST /v1.0/groups", h(userWrite, g.createGroup))
	mux.Handle("GET /v1.0/groups/{id}", h(readAccess, g.getGroup))
	mux.Handle("PATCH /v1.0/groups/{id}", h(userWrite, g.patchGroup))
	mux.Handle("DELETE /v1.0/groups/{id}", h(userWrite, g.deleteGroup))
	mux.Handle("GET /v1.0/groups/{id}/members", h(readAccess, g.listGroupMembers))
	mux.Handle("POST /v1.0/groups/{id}/members/$ref", h(userWrite, g.addGroupMember))
	mux.Handle("DELETE /v1.0/groups/{id}/members/{mid}/$ref", h(userWrite, g.removeGroupMember))
	mux.Handle("POST /v1.0/groups/{id}/getMemberGroups", h(readAccess, g.getMemberGroups))
	mux.Handle("POST /v1.0/directoryObjects/getByIds", h(readAccess, g.getByIds))
	mux.Handle("POST /v1.0/directoryObjects/{id}/checkMemberGroups", h(readAccess, g.checkMemberGroups))
	mux.Handle("POST /v1.0/directoryObjects/{id}/getMemberGroups", h(readAccess, g.getMemberGroups))
	mux.Handle("POST /v1.0/users/{id}/getMemberGroups", h(readAccess, g.getMemberGroups))
	// Where a token's group overage claim points (groupclaims.go).
	for _, p := range []string{"users/{id}", "servicePrincipals/{id}", "directoryObjects/{id}", "groups/{id}", "me"} {
		mux.Handle("POST /v1.0/"+p+"/getMemberObjects", h(selfRead, g.getMemberObjects))
	}

	mux.Handle("GET /v1.0/users", h(readAccess, g.listUsers))
	mux.Handle("POST /v1.0/users", h(userWrite, g.createUser))
	mux.Handle("GET /v1.0/users/{id}", h(readAccess, g.getUser))
	mux.Handle("PATCH /v1.0/users/{id}", h(userWrite, g.patchUser))
	mux.Handle("DELETE /v1.0/users/{id}", h(userWrite, g.deleteUser))
	mux.Handle("POST /v1.0/users/{id}/revokeSignInSessions", h(userWrite, g.revokeSignInSessions)) // sessions.go
	mux.Handle("POST /v1.0/me/revokeSignInSessions", h(selfAccess, g.revokeOwnSignInSessions))
	mux.Handle("GET /v1.0/me", h(selfAccess, g.getMe))
	mux.Handle("POST /v1.0/me/changePassword", h(selfAccess, g.changeOwnPassword))
	mux.Handle("GET /v1.0/me/ownedObjects", h(selfRead, g.listOwnedObjects))

	mux.Handle("GET /v1.0/roleManagement/directory/roleAssignments", h(readAccess, g.listRoleAssignments))
	mux.Handle("POST /v1.0/roleManagement/directory/roleAssignments", h(roleWrite, g.createRoleAssignment))
	mux.Handle("DELETE /v1.0/roleManagement/directory/roleAssignments/{id}", h(roleWrite, g.deleteRoleAssignment))
}

// guard authenticates the bearer token (a Graph audience) and checks that
// the caller holds a directory role granting need, or owns the object
// (ownership levels).
func (g *API) guard(need access, fn handler) server.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := g.auth.AuthenticateARM(r, g.auth.GraphAudiences()...)
		if err != nil {
			return err
		}
		n := &auditNote{}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, n))
		if err = g.authorize(r, c, need); err == nil {
			if err = altKeyNotFound(r); err == nil {
				err = fn(w, r, c)
			}
		}
		if need.audited() {
			g.audit(r, c, n, err)
		}
		return err
	}
}

func errDenied() error {
	return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

// authorize decides need for the caller (see the access levels).
func (g *API) authorize(r *http.Request, c *authority.Claims, need access) error {
	switch need {
	case selfAccess, selfRead, ownedList, ownerChecked:
		return nil
	}
	if base, ok := ownerAccess[need]; ok {
		obj := directory.OwnedApplication
		if need == spOwner || need == spOwnerRead {
			obj = directory.OwnedServicePrincipal
		}
		if g.dir.HasRole(c.Principal.ObjectID, rolesFor[base]...) {
			if need == appOwner || need == spOwner {
				return g.mayChangePrivileged(c, r.PathValue("id"), obj)
			}
			return nil
		}
		return g.authorizeOwner(r, c, r.PathValue("id"), obj, need == appOwner || need == spOwner)
	}
	if !g.dir.HasRole(c.Principal.ObjectID, rolesFor[need]...) {
		return errDenied()
	}
	return nil
}

// auditNote collects the facts a write's audit entry carries besides who,
// what and the result (names: audit.AllowedDetails). The guard puts one in
// each request's context.
type auditNote struct{ details map[string]string }

type auditNoteKey struct{}

func (n *auditNote) detail(name, value string) {
	if n.details == nil {
		n.details = map[string]string{}
	}
	n.details[name] = value
}

// noteOf returns the request's audit note (a throwaway one outside guard).
func noteOf(r *http.Request) *auditNote {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{}
}

// audit records a write. A failure to record is logged: the write itself
// has already happened.
func (g *API) audit(r *http.Request, c *authority.Claims, n *auditNote, err error) {
	if g.Audit == nil {
		return
	}
	e := audit.Entry{RequestID: server.RequestID(r.Context()), Action: r.Pattern, Scope: r.URL.Path,
		Result: audit.Succeeded, Surface: string(server.SurfaceGraph), Details: n.details,
		Principal: audit.Principal{ObjectID: c.Principal.ObjectID, Type: string(c.Principal.Type),
			Name: c.Principal.Name, TenantID: c.Principal.TenantID}}
	if err != nil {
		e.Result, e.Status = audit.Failed, gatehouse.ErrorStatus(err)
		if ge, ok := gatehouse.AsError(err); ok {
			e.Code = ge.Code
		}
		if e.Status == http.StatusForbidden {
			e.Result = audit.Denied
		}
	}
	if _, aerr := g.Audit.Append(context.WithoutCancel(r.Context()), e); aerr != nil {
		g.logger.Error("audit: append failed", "action", e.Action, "err", aerr)
	}
}

// Graph error codes.
const (
	codeBadRequest    = "Request_BadRequest"
	codeNotFound      = "Request_ResourceNotFound"
	codeUnsupported   = "Request_UnsupportedQuery"
	codeInvalidValue  = "Request_InvalidValue"
	codeAlreadyExists = "Request_MultipleObjectsWithSameKeyValue"
)

func badRequest(format string, args ...any) error {
	return gatehouse.BadRequestf(codeBadRequest, format, args...)
}

func notFound(id string) error {
	return gatehouse.NotFoundf(codeNotFound, "Resource '%s' does not exist or one of its queried reference-property objects are not present.", clip(id))
}

// decode reads a JSON object body (at most 256 KiB), rejecting unknown
// fields so typos do not pass silently.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 256<<10))
	if err != nil {
		return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge, "The request body is too large.")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	if !jsonutf8.Valid(body) {
		return badRequest("The request body is not valid UTF-8, or escapes an unpaired surrogate.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return gatehouse.BadRequestf(codeInvalidValue, "Invalid value for property '%s'.", clip(ute.Field))
		}
		if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.ErrUnexpectedEOF) {
			return badRequest("The request body is not valid JSON.")
		}
		// What remains is a property this route does not know; Graph
		// names it.
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return badRequest("The property '%s' is not supported here.", clip(strings.TrimSuffix(name, `"`)))
		}
		return badRequest("The request body has a property that is not supported here, or is malformed.")
	}
	if dec.More() {
		return badRequest("The request body must be one JSON object.")
	}
	return nil
}

// The $filter forms supported, one clause each — what az and the SDKs
// send: "<property> eq '<value>'", "startswith(<property>,'<prefix>')"
// (az ad app create looks for same-named applications so) and
// "<collection>/any(x:x eq '<value>')" (az ad sp show --id api://…).
var (
	filterEq         = regexp.MustCompile(`^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'`)
	filterStartsWith = regexp.MustCompile(`^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)`)
	filterAny        = regexp.MustCompile(`^\s*(\w+)/any\(\s*(\w+)\s*:\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*\)`)
)

// graphFilter is a parsed $filter: clauses that must all hold (joined
// by "and", as az ad group create sends); the zero value keeps everything.
type graphFilter []filterClause

type filterClause struct {
	Prop, Value string
	// Prefix: startswith; Search: $search's "prop:term", a prefix of any
	// word of the value; otherwise equality (of any element, for a
	// collection's any()). Comparisons ignore case, as Graph's do.
	Prefix, Search bool
}

// keeps reports whether an object whose property prop has values passes
// the filter's clauses on prop (always, when none is on prop).
func (f graphFilter) keeps(prop string, values ...string) bool {
	for _, c := range f {
		if c.Prop == prop && !c.holds(values) {
			return false
		}
	}
	return true
}

func (c filterClause) holds(values []string) bool {
	for _, v := range values {
		switch {
		case c.Search:
			for _, word := range strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				if hasPrefixFold(word, c.Value) {
					return true
				}
			}
			if hasPrefixFold(v, c.Value) {
				return true
			}
		case c.Prefix && hasPrefixFold(v, c.Value), !c.Prefix && strings.EqualFold(v, c.Value):
			return true
		}
	}
	return false
}

// allowedProp returns the spelling allowed gives prop (compared without
// case), and whether it is there.
func allowedProp(allowed []string, prop string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(a, prop) {
			return a, true
		}
	}
	return prop, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// searchClause is one term of $search: "<property>:<term>", quoted.
var searchClause = regexp.MustCompile(`^\s*"(\w+):([^"]*)"`)

// search parses $search (ConsistencyLevel: eventual, as Graph requires):
// quoted "<property>:<term>" clauses joined by AND, each a prefix of a
// word of the property (Graph tokenizes on case and punctuation too; the
// words here are runs of letters and digits).
func search(r *http.Request, allowed []string) (graphFilter, error) {
	rest, ok := r.URL.Query()["$search"]
	if !ok {
		return nil, nil
	}
	if !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
		return nil, gatehouse.BadRequestf(codeUnsupported, "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
	}
	q := rest[0]
	var out graphFilter
	for {
		m := searchClause.FindStringSubmatchIndex(q)
		if m == nil || len(out) >= 4 {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Only $search=\"<property>:<term>\", at most 4 joined by AND, is supported.")
		}
		c := filterClause{Prop: q[m[2]:m[3]], Value: q[m[4]:m[5]], Search: true}
		var known bool
		if c.Prop, known = allowedProp(allowed, c.Prop); !known {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Searching on '%s' is not supported.", clip(c.Prop))
		}
		out = append(out, c)
		q = strings.TrimSpace(q[m[1]:])
		if q == "" {
			return out, nil
		}
		next, ok := strings.CutPrefix(q, "AND ")
		if !ok {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Clauses of $search are joined by AND.")
		}
		q = next
	}
}

var filterAnd = regexp.MustCompile(`^\s+and\s+`)

// filter parses $filter, and $search (search). allowed lists the
// properties that may be filtered or searched on.
func filter(r *http.Request, allowed ...string) (graphFilter, error) {
	out, err := search(r, allowed)
	if err != nil {
		return nil, err
	}
	rest := r.URL.Query().Get("$filter")
	for rest != "" && len(out) < 4 {
		var c filterClause
		var n int
		if m := filterEq.FindStringSubmatchIndex(rest); m != nil {
			c, n = filterClause{Prop: rest[m[2]:m[3]], Value: rest[m[4]:m[5]]}, m[1]
		} else if m := filterStartsWith.FindStringSubmatchIndex(rest); m != nil {
			c, n = filterClause{Prop: rest[m[2]:m[3]], Value: rest[m[4]:m[5]], Prefix: true}, m[1]
		} else if m := filterAny.FindStringSubmatchIndex(rest); m != nil && rest[m[4]:m[5]] == rest[m[6]:m[7]] {
			c, n = filterClause{Prop: rest[m[2]:m[3]], Value: rest[m[8]:m[9]]}, m[1]
		} else {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Only $filter=<property> eq '<value>', startswith(<property>,'<value>') and <collection>/any(x:x eq '<value>'), joined by and, are supported.")
		}
		c.Value = strings.ReplaceAll(c.Value, "''", "'")
		var known bool
		if c.Prop, known = allowedProp(allowed, c.Prop); !known {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Filtering on '%s' is not supported.", clip(c.Prop))
		}
		out = append(out, c)
		rest = rest[n:]
		if strings.TrimSpace(rest) == "" {
			rest = ""
			break
		}
		m := filterAnd.FindStringIndex(rest)
		if m == nil {
			return nil, gatehouse.BadRequestf(codeUnsupported, "Clauses of $filter are joined by 'and'.")
		}
		rest = rest[m[1]:]
		if rest == "" {
			return nil, gatehouse.BadRequestf(codeUnsupported, "The $filter ends after 'and'.")
		}
	}
	if rest != "" && len(out) >= 4 {
		return nil, gatehouse.BadRequestf(codeUnsupported, "A $filter has at most 4 clauses.")
	}
	return out, nil
}

func graphTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05Z")
	return &s
}

func parseTime(s *string, field string) (time.Time, error) {
	if s == nil || *s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, gatehouse.BadRequestf(codeInvalidValue, "Invalid value specified for property '%s'.", field)
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// withGraphIDs sets Graph's request-id and client-request-id response
// headers: the server's request id, and the client's client-request-id
// echoed (Graph SDKs send one and log both).
func withGraphIDs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := server.RequestID(r.Context())
		w.Header().Set("request-id", id)
		w.Header().Set("client-request-id", clientRequestID(r, id))
		h.ServeHTTP(w, r)
	})
}

// clientRequestID is the client's client-request-id if it is a GUID, else
// the request id (Graph answers with one either way).
func clientRequestID(r *http.Request, id string) string {
	if c, ok := gatehouse.NormalizeGUID(r.Header.Get("client-request-id")); ok {
		return c
	}
	return id
}

// renderGraph writes Graph's error shape: code and message, and an
// innerError with the date and the request ids, which Graph SDKs and az
// show beside the message.
func renderGraph(w http.ResponseWriter, r *http.Request, e *gatehouse.Error) {
	id := server.RequestID(r.Context())
	type innerError struct {
		Date            string `json:"date"`
		RequestID       string `json:"request-id"`
		ClientRequestID string `json:"client-request-id"`
	}
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target,omitempty"`
	}
	type graphError struct {
		Code       string     `json:"code"`
		Message    string     `json:"message"`
		Target     string     `json:"target,omitempty"`
		Details    []detail   `json:"details,omitempty"`
		InnerError innerError `json:"innerError"`
	}
	out := graphError{Code: e.Code, Message: e.Message, Target: e.Target, InnerError: innerError{
		Date: time.Now().UTC().Format("2006-01-02T15:04:05"), RequestID: id, ClientRequestID: clientRequestID(r, id)}}
	for _, d := range e.Details {
		out.Details = append(out.Details, detail{d.Code, d.Message, d.Target})
	}
	server.WriteJSON(w, e.Status, struct {
		Error graphError `json:"error"`
	}{out})
}
