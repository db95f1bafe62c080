package armapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/internal/jsonutf8"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
)

// authorize checks that the caller may perform action at scope, and notes
// both for the audit entry. Denials are ARM's 403 AuthorizationFailed; a
// change a management lock forbids is 409 ScopeLocked (locks.go).
func (c *call) authorize(action string, scope *gatehouse.ResourceID) error {
	c.action, c.auditScope = action, scope.String()
	if c.can(action, scope) {
		return c.checkLocks(action, scope)
	}
	c.denied = true
	return errAuthorizationFailed(c.principal, action, scope)
}

// can reports whether the caller may perform action at scope (list
// filtering; nothing is audited).
func (c *call) can(action string, scope *gatehouse.ResourceID) bool {
	if c.principal.ObjectID == "" {
		return false
	}
	return c.api.opts.Authz.Decide(c.principal.ObjectID, authz.Action(action), scope).Allowed
}

// errAuthorizationFailed is ARM's 403, which names the client as Azure
// does: an application by its client id, a person by user name, then the
// object id.
func errAuthorizationFailed(p gatehouse.Principal, action string, scope *gatehouse.ResourceID) error {
	return gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed,
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		clip(p.ClientName()), p.ObjectID, action, clip(scope.String()))
}

// subscription loads the {sub} of the path and checks that the caller's
// token belongs to its tenant.
func (c *call) subscription() (*resources.Subscription, error) {
	return c.subscriptionByID(c.param("sub"))
}

func (c *call) subscriptionByID(id string) (*resources.Subscription, error) {
	s, err := c.api.opts.Resources.Subscription(c.ctx(), id)
	if err != nil {
		return nil, err
	}
	if t := c.principal.TenantID; t != "" && s.TenantID != "" && !strings.EqualFold(t, s.TenantID) {
		return nil, gatehouse.Errorf(http.StatusUnauthorized, "InvalidAuthenticationTokenTenant",
			"The access token is from the wrong issuer. It must match the tenant '%s' associated with this subscription.", s.TenantID)
	}
	return s, nil
}

// group loads the {rg} of the path (its subscription must exist).
func (c *call) group() (*resources.Group, error) {
	s, err := c.subscription()
	if err != nil {
		return nil, err
	}
	return c.api.opts.Resources.Group(c.ctx(), s.ID, c.param("rg"))
}

// topResource is the top-level resource a scope names or lies within
// (that of a child or an extension scope); nil for a subscription or a
// resource group.
func topResource(scope *gatehouse.ResourceID) *gatehouse.ResourceID {
	res := scope
	for res.Scope != nil {
		res = res.Scope
	}
	if res.Namespace == "" {
		return nil
	}
	return &gatehouse.ResourceID{Subscription: res.Subscription, ResourceGroup: res.ResourceGroup,
		Namespace: res.Namespace, Types: res.Types[:1], Names: res.Names[:1]}
}

// checkScope checks that a scope (of role assignments, locks, tags, …)
// exists: its subscription, its resource group, and the top-level resource
// it names — which must be of a type Gatehouse serves (any other is 404
// ResourceNotFound, as no such resource can exist here).
func (c *call) checkScope(scope *gatehouse.ResourceID) error {
	if scope.Subscription == "" {
		return nil
	}
	s, err := c.subscriptionByID(scope.Subscription)
	if err != nil {
		return err
	}
	if scope.ResourceGroup == "" {
		return nil
	}
	if _, err := c.api.opts.Resources.Group(c.ctx(), s.ID, scope.ResourceGroup); err != nil {
		return err
	}
	top := topResource(scope)
	if top == nil {
		return nil
	}
	switch strings.ToLower(top.Type()) {
	case "microsoft.cognitiveservices/accounts":
		_, err = c.api.opts.Accounts.Get(c.ctx(), top)
	case "microsoft.keyvault/vaults":
		if vs := c.api.opts.Vaults; vs != nil {
			_, err = vs.GetVault(c.ctx(), top)
		}
	case "microsoft.managedidentity/userassignedidentities":
		if ids := c.api.opts.Identities; ids != nil {
			if _, ok, gerr := ids.GetIdentity(c.ctx(), top.String()); gerr != nil {
				err = gerr
			} else if !ok {
				err = errResourceNotFound(top)
			}
		}
	default:
		// No other type of resource exists here: an assignment, lock or
		// tag at one would be stored against nothing.
		err = errResourceNotFound(top)
	}
	return err
}

func errResourceNotFound(id *gatehouse.ResourceID) error {
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		id.Type(), clip(id.Name()), clip(id.ResourceGroup))
}

// decode reads the JSON body into v. Errors are ARM's: 415
// UnsupportedMediaType (a body that does not say it is JSON), 400
// InvalidRequestContent (empty, malformed or mistyped JSON, with the
// offending field as target), 413 RequestEntityTooLarge.
func (c *call) decode(v any) error {
	if err := jsonMediaType(c.r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.api.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge,
			"The request content size exceeds the maximum of %d bytes.", c.api.opts.MaxBodyBytes)
	}
	if err != nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content could not be read.").WithCause(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized: the body is empty.")
	}
	// Every ARM body is an object; and a string that is not UTF-8 would
	// be stored with U+FFFD in place of its bytes (or of an unpaired
	// surrogate's escape), so it is refused.
	if trimmed := bytes.TrimSpace(body); trimmed[0] != '{' {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized: a JSON object is required.")
	}
	if !jsonutf8.Valid(body) {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized: the body is not valid UTF-8, or escapes an unpaired surrogate.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized: unexpected data after the JSON value.")
	}
	return nil
}

// jsonMediaType answers ARM's 415 for a request whose body is not
// declared JSON: ARM reads a body only as application/json (parameters
// such as charset aside) and names the type it was given, "<null>" for
// none — a body sent without a Content-Type (curl -d says
// application/x-www-form-urlencoded) is refused, not guessed at. A request
// without a body is left to decode's "the body is empty".
func jsonMediaType(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	shown := "<null>"
	if ct != "" {
		shown = clip(ct)
	}
	return gatehouse.Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
		"The content media type '%s' is not supported. Only 'application/json' is supported.", shown)
}

// CodeUnsupportedMediaType is ARM's code for a body of another type
// than JSON.
const CodeUnsupportedMediaType = "UnsupportedMediaType"

// jsonError turns a decoding error into a public message that names the
// field and the expected type, never Go's type names.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest,
			"The request content was invalid and could not be deserialized: error converting a JSON %s at '%s' to type '%s'.",
			te.Value, clip(te.Field), jsonTypeName(te.Type)).WithTarget(clip(te.Field))
	case errors.As(err, &se):
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest,
			"The request content was invalid and could not be deserialized: invalid JSON at offset %d.", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized: unexpected end of JSON.")
	}
	return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request content was invalid and could not be deserialized.").WithCause(err)
}

// jsonTypeName names the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Interface:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "number"
	case reflect.String:
		return "string"
	}
	return "value"
}

// reply writes v as JSON with status.
func (c *call) reply(status int, v any) error {
	server.WriteJSON(c.w, status, v)
	return nil
}

// put answers a PUT as ARM does: 201 with v when it created the resource,
// 200 when it replaced one.
func (c *call) put(created bool, v any) error {
	if created {
		return c.reply(http.StatusCreated, v)
	}
	return c.reply(http.StatusOK, v)
}

// deleted answers a DELETE as ARM does: 200 when it deleted something, 204
// when there was nothing to delete.
func (c *call) deleted(existed bool) error {
	if existed {
		c.w.WriteHeader(http.StatusOK)
	} else {
		c.w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// list is ARM's page shape. Gatehouse returns every item in one page.
type list[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// etag renders a storage revision as an ETag.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 16) + `"` }

// armTime renders t as ARM does in systemData and role assignments.
func armTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// actorType is ARM's createdByType of the caller.
func actorType(p gatehouse.Principal) string {
	switch {
	case p.ManagedIdentity:
		return "ManagedIdentity"
	case p.Type == gatehouse.PrincipalUser:
		return "User"
	default:
		return "Application"
	}
}

func boolString(b bool) string { return fmt.Sprint(b) }
