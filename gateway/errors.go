package gateway

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// Azure's data-plane error bodies (azure-wire.md §1.3). Clients read only
// error.code and error.message.
const (
	msgAccessDenied        = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
	codeAuthDisabled       = "AuthenticationTypeDisabled"
	codePermissionDenied   = "PermissionDenied"
	codeDeploymentNotFound = "DeploymentNotFound"
)

var (
	// errAccessDenied answers a missing, wrong or foreign key, an unknown
	// account, and a token that is not accepted: the client learns nothing
	// about which.
	errAccessDenied = &gatehouse.Error{Status: http.StatusUnauthorized, Code: "401", Message: msgAccessDenied}
	// errLocalAuthDisabled answers a key or STS token on an account with
	// disableLocalAuth.
	errLocalAuthDisabled = &gatehouse.Error{Status: http.StatusForbidden, Code: codeAuthDisabled,
		Message: "Key based authentication is disabled for this resource."}
	// errNotFound is Azure's answer for a route the resource does not serve
	// (or a request without api-version).
	// Azure's answers to a request its network rules refuse.
	errPublicAccessDisabled = &gatehouse.Error{Status: http.StatusForbidden, Code: "403",
		Message: "Public access is disabled. Please configure private endpoint."}
	errFirewall = &gatehouse.Error{Status: http.StatusForbidden, Code: "403",
		Message: "Access denied due to Virtual Network/Firewall rules."}

	errNotFound = &gatehouse.Error{Status: http.StatusNotFound, Code: "404", Message: "Resource not found"}
	// errMethodNotAllowed answers an OPTIONS request that is not a CORS
	// preflight the policy allows (the router's answer for other methods).
	errMethodNotAllowed = &gatehouse.Error{Status: http.StatusMethodNotAllowed, Code: gatehouse.CodeMethodNotAllowed,
		Message: "The method OPTIONS is not allowed for this path."}
	// errDeploymentNotFound is Azure OpenAI's answer for an unknown deployment.
	errDeploymentNotFound = &gatehouse.Error{Status: http.StatusNotFound, Code: codeDeploymentNotFound,
		Message: "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}
)

// Denial reasons: the metric label and audit detail of a refusal. A fixed
// set, so the label's cardinality is bounded.
const (
	reasonUnknownAccount    = "unknown_account"
	reasonMissing           = "missing_credential"
	reasonInvalidKey        = "invalid_key"
	reasonWrongAccount      = "wrong_account"
	reasonLocalAuthDisabled = "local_auth_disabled"
	reasonInvalidToken      = "invalid_token"
	reasonRevokedToken      = "revoked_token"
	reasonPermission        = "permission_denied"
	reasonThrottled         = "throttled"
	reasonSTSThrottled      = "sts_throttled"
	reasonPublicAccess      = "public_access_disabled"
	reasonFirewall          = "firewall"
)

// denial is a refusal: the public error plus the reason it is counted and
// audited under. The renderer finds the *gatehouse.Error through Unwrap.
type denial struct {
	err    *gatehouse.Error
	reason string
}

func (d *denial) Error() string { return d.err.Error() }
func (d *denial) Unwrap() error { return d.err }

func deny(e *gatehouse.Error, reason string) error { return &denial{err: e, reason: reason} }

// permissionDenied is Azure's answer to an identity without the data action.
func permissionDenied(objectID string, rte *route) error {
	return deny(gatehouse.Errorf(http.StatusUnauthorized, codePermissionDenied,
		"The principal `%s` lacks the required data action `%s` to perform `%s` operation.",
		objectID, rte.dataAction, rte.operation), reasonPermission)
}

// throttled is the 429 of a rate limit, with Retry-After in whole seconds
// and retry-after-ms (which the OpenAI and Azure clients prefer).
func throttled(limit Rate, retryMS int64, reason string) error {
	return tooMany(retryMS, reason, "Requests to this resource have exceeded the rate limit of "+limit.String()+".")
}

// tooMany is a 429 saying why, then when to retry (Retry-After in whole
// seconds, and retry-after-ms).
func tooMany(retryMS int64, reason, why string) error {
	secs := max((retryMS+999)/1000, 1)
	e := gatehouse.Errorf(http.StatusTooManyRequests, "429", "%s Please retry after %d second%s.", why, secs, plural(secs)).
		WithHeader("Retry-After", strconv.FormatInt(secs, 10)).
		WithHeader("retry-after-ms", strconv.FormatInt(retryMS, 10))
	return deny(e, reason)
}

// throttledFailures is the STS's 429 for an address that has failed too
// often: only failures count, and its message says so (throttled's speaks
// of requests, which would send a client with a good key looking for its
// request rate).
func throttledFailures(perMinute int, retryMS int64) error {
	return tooMany(retryMS, reasonSTSThrottled,
		fmt.Sprintf("Too many failed token requests from this address (more than %d a minute, wrong or unknown keys).", perMinute))
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func badRequest(format string, args ...any) *gatehouse.Error {
	return gatehouse.BadRequestf("BadRequest", format, args...)
}

func tooLarge(limit int64) *gatehouse.Error {
	return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge,
		"The request body is larger than the limit of %s.", byteSize(limit))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
