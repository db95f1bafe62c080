package kvapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/jsonutf8"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/vault"
)

// API versions. The clients send 7.0 (az), 7.5/7.6 (azsecrets ≤ 1.4),
// 2025-07-01 (azsecrets 1.5.0, @azure/keyvault-secrets 4.11) and
// 2026-04-01 (azsecrets 1.5.1); any 7.x[-preview[.N]] or
// YYYY-MM-DD[-preview] is accepted, since the shapes Gatehouse serves are
// the same for all. Key Vault numbers its 7.x previews (7.6-preview.2,
// 7.7-preview.1 in azure-keyvault-secrets' ApiVersion).
func validAPIVersion(v string) bool {
	base, preview := strings.CutSuffix(v, "-preview")
	if !preview {
		if b, n, ok := strings.Cut(v, "-preview."); ok && len(n) == 1 && n[0] >= '1' && n[0] <= '9' && strings.HasPrefix(b, "7.") {
			base = b
		}
	}
	if rest, ok := strings.CutPrefix(base, "7."); ok {
		return len(rest) == 1 && rest[0] >= '0' && rest[0] <= '9'
	}
	if len(base) != 10 || base[4] != '-' || base[7] != '-' {
		return false
	}
	_, err := time.Parse("2006-01-02", base)
	return err == nil
}

// checkAPIVersion reads api-version (r.URL.Query decodes percent-encoded
// names such as api%2Dversion, which @azure/keyvault-secrets sends).
func checkAPIVersion(r *http.Request) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The api-version query parameter is required (for example api-version=7.6 or 2025-07-01).")
	}
	if !validAPIVersion(v) {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The specified version (%s) is not recognized. Consider using the latest supported version (2026-04-01).", clipName(v))
	}
	return nil
}

// decode reads a JSON object body into v. Errors are Key Vault's 400
// BadParameter (empty, malformed, mistyped) and 413 over MaxBodyBytes.
func (c *call) decode(v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.api.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge,
			"The request body is larger than %d bytes.", c.api.opts.MaxBodyBytes)
	}
	if err != nil {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body could not be read.").WithCause(err)
	}
	defer clear(body) // it may hold a secret value
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body is empty: a JSON object is required.")
	}
	if trimmed[0] != '{' {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body must be a JSON object.")
	}
	// A value that is not UTF-8 would be stored with U+FFFD in place of
	// its bytes (or of an unpaired surrogate's escape) and read back
	// different: refused instead.
	if !jsonutf8.Valid(body) {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body is not valid UTF-8, or escapes an unpaired surrogate.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body is invalid: '%s' has the wrong type.", clipName(te.Field)).WithTarget(clipName(te.Field))
		}
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body is not valid JSON.")
	}
	if dec.More() {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The request body has data after the JSON object.")
	}
	return nil
}

// Wire shapes (azure-wire.md §4.3). Timestamps are integer unix seconds.

type attributesJSON struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
}

// secretJSON is SecretBundle, DeletedSecretBundle and the list items.
type secretJSON struct {
	Value              *string           `json:"value,omitempty"`
	ID                 string            `json:"id"`
	ContentType        string            `json:"contentType,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
	Attributes         attributesJSON    `json:"attributes"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        int64             `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64             `json:"scheduledPurgeDate,omitempty"`
}

type listJSON struct {
	Value    []secretJSON `json:"value"`
	NextLink *string      `json:"nextLink"`
}

func unixOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// base is the vault's URL without the trailing slash.
func base(v *vault.Vault) string { return strings.TrimSuffix(v.URI, "/") }

// view renders a secret; withVersion puts the version in the id (bundles
// and version lists) or leaves it out (secret lists).
func view(v *vault.Vault, s *vault.Secret, withVersion bool) secretJSON {
	id := base(v) + "/secrets/" + s.Name
	if withVersion && s.Version != "" {
		id += "/" + s.Version
	}
	out := secretJSON{ID: id, ContentType: s.ContentType, Tags: s.Tags,
		Attributes: attributesJSON{Enabled: s.Enabled, NotBefore: unixOrNil(s.NotBefore), Expires: unixOrNil(s.Expires),
			Created: unix(s.Created), Updated: unix(s.Updated), RecoveryLevel: v.RecoveryLevel(), RecoverableDays: v.RecoverableDays()}}
	if len(out.Tags) == 0 {
		out.Tags = nil
	}
	return out
}

// deletedView adds the recovery fields. recoveryId is only given when the
// secret can be recovered (the JS client polls for the deletion only then).
func deletedView(v *vault.Vault, s *vault.Secret, withVersion bool) secretJSON {
	out := view(v, s, withVersion)
	if !s.DeletedDate.IsZero() {
		out.RecoveryID = base(v) + "/deletedsecrets/" + s.Name
		out.DeletedDate, out.ScheduledPurgeDate = unix(s.DeletedDate), unix(s.ScheduledPurgeDate)
	}
	return out
}

// Paging: maxresults (1-25, default 25) and an opaque $skiptoken that
// nextLink carries along with the api-version (the Go client never adds
// it to a nextLink).
const maxPage = 25

func pageParams(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	limit = maxPage
	if m := q.Get("maxresults"); m != "" {
		n, perr := strconv.Atoi(m)
		if perr != nil || n < 1 || n > maxPage {
			return "", 0, gatehouse.BadRequestf(vault.CodeBadParameter, "The value '%s' is not valid for maxresults. The valid range is 1-%d.", clipName(m), maxPage)
		}
		limit = n
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		b, derr := base64.RawURLEncoding.DecodeString(tok)
		if derr != nil || len(b) == 0 || len(b) > 200 || !storage.ValidKey(string(b)) {
			return "", 0, gatehouse.BadRequestf(vault.CodeBadParameter, "The $skiptoken is not valid.")
		}
		after = string(b)
	}
	return after, limit, nil
}

// nextLink returns the absolute URL of the next page, or nil at the end.
func nextLink(r *http.Request, v *vault.Vault, path, next string, limit int) *string {
	if next == "" {
		return nil
	}
	q := url.Values{}
	q.Set("api-version", r.URL.Query().Get("api-version"))
	q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(next)))
	q.Set("maxresults", strconv.Itoa(limit))
	s := base(v) + path + "?" + q.Encode()
	return &s
}

// reply writes v with status.
func (c *call) reply(status int, v any) error {
	server.WriteJSON(c.w, status, v)
	return nil
}
