package authority

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// OAuth error codes (RFC 6749 §5.2, plus Entra's invalid_resource and
// invalid_tenant).
const (
	oauthInvalidRequest       = "invalid_request"
	oauthInvalidClient        = "invalid_client"
	oauthInvalidGrant         = "invalid_grant"
	oauthUnauthorizedClient   = "unauthorized_client"
	oauthUnsupportedGrantType = "unsupported_grant_type"
	oauthInvalidScope         = "invalid_scope"
	oauthInvalidResource      = "invalid_resource"
	oauthInvalidTenant        = "invalid_tenant"
)

// oauthErr builds the *gatehouse.Error the token endpoint returns: Code is
// the OAuth error, InnerCode the AADSTS number, Message the description
// after "AADSTSnnn: ". Entra answers 401 for invalid_client and 400 for the
// rest.
func oauthErr(code string, aadsts int, format string, args ...any) *gatehouse.Error {
	status := http.StatusBadRequest
	if code == oauthInvalidClient {
		status = http.StatusUnauthorized
	}
	return gatehouse.Errorf(status, code, format, args...).WithInner(strconv.Itoa(aadsts))
}

// oauthBody is Entra's error shape (azure-wire.md §2.4).
type oauthBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes,omitempty"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	ErrorURI      string `json:"error_uri,omitempty"`
}

// renderOAuth is the token and discovery endpoints' renderer. A 500 keeps
// the OAuth shape ("server_error" would be the RFC code, but Entra clients
// only read error and error_description).
func renderOAuth(w http.ResponseWriter, r *http.Request, e *gatehouse.Error) {
	now := time.Now().UTC()
	reqID := server.RequestID(r.Context())
	corr := r.Header.Get("client-request-id")
	if !gatehouse.IsGUID(corr) {
		corr = reqID
	}
	code := e.Code
	var codes []int
	desc := e.Message
	if n, err := strconv.Atoi(e.InnerCode); err == nil {
		codes = []int{n}
		desc = "AADSTS" + e.InnerCode + ": " + desc
	}
	if e.Status >= 500 {
		code = "temporarily_unavailable"
		if e.Code == gatehouse.CodeInternal {
			code = "server_error"
		}
	} else if !strings.Contains(code, "_") && code != "" {
		// A non-OAuth *gatehouse.Error (e.g. a directory validation error).
		code = oauthInvalidRequest
	}
	desc += "\r\nTrace ID: " + reqID + "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + now.Format("2006-01-02 15:04:05Z")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	server.WriteJSON(w, e.Status, oauthBody{Error: code, Description: desc, ErrorCodes: codes,
		Timestamp: now.Format("2006-01-02 15:04:05Z"), TraceID: reqID, CorrelationID: corr})
}
