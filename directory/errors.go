package directory

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Sentinels. Every error the directory returns for these conditions is a
// *gatehouse.Error (so a surface can render it as is) whose cause is the
// sentinel, so callers test with errors.Is and map to their own codes
// (ARM's ResourceNotFound, Graph's Request_ResourceNotFound, OAuth's
// AADSTS codes).
var (
	// ErrNotFound: no such tenant, principal, credential or identity.
	ErrNotFound = errors.New("directory: not found")
	// ErrAlreadyExists: the name, resource id or client id is taken.
	ErrAlreadyExists = errors.New("directory: already exists")
	// ErrInvalid: the request breaks a rule (a name, a certificate, a
	// limit). The *gatehouse.Error says which, publicly.
	ErrInvalid = errors.New("directory: invalid")
)

// Credential check failures (Client.CheckSecret, Client.Certificate,
// Directory.CheckPassword). They carry no public message of their own: the
// token endpoint turns them into AADSTS errors.
var (
	ErrUnknownClient      = errors.New("directory: unknown client")
	ErrDisabled           = errors.New("directory: principal disabled")
	ErrNoServicePrincipal = errors.New("directory: application has no service principal")
	ErrInvalidSecret      = errors.New("directory: invalid client secret")
	ErrSecretExpired      = errors.New("directory: client secret expired")
	ErrUnknownCertificate = errors.New("directory: unknown certificate")
	ErrCertificateExpired = errors.New("directory: certificate outside its validity")
	ErrInvalidPassword    = errors.New("directory: invalid user name or password")
	// ErrPasswordExpired: the password is right, but an administrator set
	// it with forceChangePasswordNextSignIn: the person must choose a new
	// one (ChangePassword) before signing in.
	ErrPasswordExpired = errors.New("directory: password must be changed")
)

// Codes of the public errors (Graph-flavoured; surfaces may re-map).
const (
	CodeNotFound       = "Request_ResourceNotFound"
	CodeAlreadyExists  = "Request_MultipleObjectsWithSameKeyValue"
	CodeBadRequest     = "Request_BadRequest"
	CodeLimitExceeded  = "Directory_QuotaExceeded"
	CodeInvalidRequest = "Request_BadRequest"
)

func notFound(format string, args ...any) error {
	return gatehouse.Errorf(http.StatusNotFound, CodeNotFound, format, args...).WithCause(ErrNotFound)
}

func alreadyExists(format string, args ...any) error {
	return gatehouse.Errorf(http.StatusConflict, CodeAlreadyExists, format, args...).WithCause(ErrAlreadyExists)
}

func invalid(target, format string, args ...any) error {
	return gatehouse.Errorf(http.StatusBadRequest, CodeBadRequest, format, args...).WithTarget(target).WithCause(ErrInvalid)
}

// storeError turns a storage failure into a 503 (the database is down) while
// keeping the cause for the log.
func storeError(err error) error {
	if _, ok := gatehouse.AsError(err); ok {
		return err
	}
	return gatehouse.ErrUnavailable.WithCause(err)
}
