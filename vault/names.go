package vault

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Limits of the data plane (azure-wire.md §4.5).
const (
	MaxSecretNameLength  = 127
	MaxValueBytes        = 25 * 1024
	MaxContentTypeLength = 255
	MaxTags              = 15
	MaxTagNameLength     = 512
	MaxTagValueLength    = 256
	// VersionLength is the length of a version id: 32 lower-case hex digits.
	VersionLength = 32
)

// Retention bounds of soft-deleted objects, in days.
const (
	MinRetentionDays     = 7
	MaxRetentionDays     = 90
	DefaultRetentionDays = 90
)

// Key Vault data-plane error codes (azure-wire.md §4.5).
const (
	CodeBadParameter                  = "BadParameter"
	CodeSecretNotFound                = "SecretNotFound"
	CodeConflict                      = "Conflict"
	CodeObjectIsDeletedButRecoverable = "ObjectIsDeletedButRecoverable"
	CodeObjectIsBeingDeleted          = "ObjectIsBeingDeleted"
	CodeForbidden                     = "Forbidden"
	CodeSecretDisabled                = "SecretDisabled"
	CodeForbiddenByPolicy             = "ForbiddenByPolicy"
)

// ValidateVaultName applies Azure's rule: 3 to 24 characters, letters,
// digits and '-', starting with a letter, ending with a letter or digit,
// without consecutive hyphens.
//
// Errors (*gatehouse.Error): 400 VaultNameNotValid.
func ValidateVaultName(name string) error {
	ok := len(name) >= 3 && len(name) <= 24 && isLetter(name[0]) && isAlnum(name[len(name)-1]) &&
		!strings.Contains(name, "--")
	for i := 0; ok && i < len(name); i++ {
		ok = isAlnum(name[i]) || name[i] == '-'
	}
	if !ok {
		return gatehouse.BadRequestf("VaultNameNotValid",
			"The vault name '%s' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.",
			clip(name)).WithTarget("name")
	}
	return nil
}

// ValidSecretName reports whether name follows the secret name rule: 1 to
// 127 characters of letters, digits and '-'.
func ValidSecretName(name string) bool {
	if name == "" || len(name) > MaxSecretNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isAlnum(name[i]) && name[i] != '-' {
			return false
		}
	}
	return true
}

// ValidateSecretName returns the data plane's 400 for a bad secret name.
func ValidateSecretName(name string) error {
	if !ValidSecretName(name) {
		return gatehouse.BadRequestf(CodeBadParameter,
			"The request URI contains an invalid name: %s. Secret names must be 1-127 characters of letters, digits and '-'.",
			clip(name))
	}
	return nil
}

// validVersion reports whether v can be a version id: Gatehouse issues 32
// lower-case hex digits; lookups accept either case.
func validVersion(v string) bool {
	if len(v) != VersionLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validateTags applies the data plane's tag limits.
func validateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return gatehouse.BadRequestf(CodeBadParameter, "A secret can have at most %d tags.", MaxTags).WithTarget("tags")
	}
	for k, v := range tags {
		if k == "" || len(k) > MaxTagNameLength || !utf8.ValidString(k) {
			return gatehouse.BadRequestf(CodeBadParameter, "The tag name '%s' is invalid: tag names are 1-%d characters.", clip(k), MaxTagNameLength).WithTarget("tags")
		}
		if len(v) > MaxTagValueLength || !utf8.ValidString(v) {
			return gatehouse.BadRequestf(CodeBadParameter, "The value of tag '%s' is longer than %d characters.", clip(k), MaxTagValueLength).WithTarget("tags")
		}
	}
	return nil
}

func validateContentType(ct string) error {
	if len(ct) > MaxContentTypeLength || !utf8.ValidString(ct) {
		return gatehouse.BadRequestf(CodeBadParameter, "The contentType is longer than %d characters.", MaxContentTypeLength).WithTarget("contentType")
	}
	return nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || '0' <= c && c <= '9' }

func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Data-plane errors.

func errSecretNotFound(name, version string) error {
	id := name
	if version != "" {
		id += "/" + version
	}
	return gatehouse.NotFoundf(CodeSecretNotFound,
		"A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.", clip(id))
}

func errDeletedSecretNotFound(name string) error {
	return gatehouse.NotFoundf(CodeSecretNotFound, "Deleted Secret not found: %s", clip(name))
}

func errDeletedButRecoverable(name string) error {
	return gatehouse.Errorf(http.StatusConflict, CodeConflict,
		"Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", clip(name)).
		WithInner(CodeObjectIsDeletedButRecoverable)
}

func errBeingDeleted(name string) error {
	return gatehouse.Errorf(http.StatusConflict, CodeConflict,
		"Secret %s is currently being deleted.", clip(name)).WithInner(CodeObjectIsBeingDeleted)
}

func errDisabled() error {
	return gatehouse.Errorf(http.StatusForbidden, CodeForbidden, "Operation get is not allowed on a disabled secret.").
		WithInner(CodeSecretDisabled)
}

func errVaultNotFound(id *gatehouse.ResourceID) error {
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound,
		"The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		Type, clip(id.Name()), clip(id.ResourceGroup))
}
