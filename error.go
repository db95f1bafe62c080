package gatehouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is the one error type that crosses a surface boundary. Its Code,
// Message, Target, Details, InnerCode, Param, Type and Inner are public:
// renderers put them in the response body. Cause is private: it is logged, never rendered.
//
// Handlers return errors; anything that is not an *Error (after unwrapping)
// is rendered as a 500 "internal error" carrying only the request id.
type Error struct {
	// Status is the HTTP status the error maps to.
	Status int
	// Code is the Azure error code ("ResourceNotFound", "AuthorizationFailed").
	Code string
	// Message is safe to show a client. It never contains a secret, a key,
	// a token or lower-layer error text.
	Message string
	// Target names the offending field or parameter, when there is one.
	Target string
	// Details are nested public errors (ARM's "details" array).
	Details []*Error
	// InnerCode is rendered as innererror.code (Key Vault, Language).
	InnerCode string
	// Param, Type and Inner are the fields Azure OpenAI's errors carry
	// beside code and message: the offending parameter, OpenAI's error
	// type, and a whole innererror object (a content filter's results),
	// which replaces InnerCode's. The gateway passes an upstream's on.
	Param, Type string
	Inner       json.RawMessage
	// Header holds extra response headers (WWW-Authenticate, Retry-After).
	Header http.Header
	// Cause is the internal reason. Logged, never rendered.
	Cause error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Cause != nil {
		s += " (" + e.Cause.Error() + ")"
	}
	return s
}

// Unwrap returns the hidden cause so errors.Is works through an *Error.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with a formatted public message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithCause returns a copy of e carrying cause as its hidden reason.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// WithTarget returns a copy of e naming target.
func (e *Error) WithTarget(target string) *Error {
	c := *e
	c.Target = target
	return &c
}

// WithInner returns a copy of e with innererror.code set.
func (e *Error) WithInner(code string) *Error {
	c := *e
	c.InnerCode = code
	return &c
}

// WithHeader returns a copy of e that adds a response header.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Header = c.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Add(key, value)
	return &c
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	return errors.AsType[*Error](err)
}

// ErrorStatus returns the HTTP status for err: the *Error's status, or 500.
func ErrorStatus(err error) int {
	if e, ok := AsError(err); ok && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Codes shared by several surfaces. Surface-specific codes live with their
// surface.
const (
	CodeBadRequest          = "BadRequest"
	CodeInvalidRequest      = "InvalidRequestContent"
	CodeNotFound            = "NotFound"
	CodeResourceNotFound    = "ResourceNotFound"
	CodeConflict            = "Conflict"
	CodeInternal            = "InternalServerError"
	CodeUnavailable         = "ServiceUnavailable"
	CodeTooManyRequests     = "TooManyRequests"
	CodeMethodNotAllowed    = "MethodNotAllowed"
	CodeRequestTooLarge     = "RequestEntityTooLarge"
	CodeAuthorizationFailed = "AuthorizationFailed"
)

// Common errors. Use With* to add detail; never mutate these.
var (
	ErrInternal = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	// ErrUnavailable is returned when storage cannot be reached for a write.
	ErrUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
		Message: "The service is temporarily unable to process the request. Retry later."}
)

// NotFoundf returns a 404 with code.
func NotFoundf(code, format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, code, format, args...)
}

// BadRequestf returns a 400 with code.
func BadRequestf(code, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, code, format, args...)
}
