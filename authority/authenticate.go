package authority

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// ARM's authentication error codes (azure-wire.md §5.4).
const (
	CodeAuthenticationFailed               = "AuthenticationFailed"
	CodeAuthenticationFailedInvalidHeader  = "AuthenticationFailedInvalidHeader"
	CodeInvalidAuthenticationToken         = "InvalidAuthenticationToken"
	CodeExpiredAuthenticationToken         = "ExpiredAuthenticationToken"
	CodeInvalidAuthenticationTokenAudience = "InvalidAuthenticationTokenAudience"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive), and whether the header was present at
// all.
func BearerToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// AuthenticateARM verifies the request's bearer token for audiences and
// returns its claims, or a 401 *gatehouse.Error with ARM's codes and a
// WWW-Authenticate challenge: AuthenticationFailed (no header),
// AuthenticationFailedInvalidHeader (not Bearer), ExpiredAuthenticationToken,
// InvalidAuthenticationTokenAudience, InvalidAuthenticationToken. It also
// records the principal for the access log. The management API and the
// Graph subset use it; any surface with ARM-shaped errors may.
func (a *Authority) AuthenticateARM(r *http.Request, audiences ...string) (*Claims, error) {
	raw, present := BearerToken(r)
	challenge := `Bearer authorization_uri="` + a.base + `/` + a.dir.DefaultTenant() + `", error="invalid_token", error_description="%s"`
	fail := func(code, msg, desc string) *gatehouse.Error {
		return gatehouse.Errorf(http.StatusUnauthorized, code, "%s", msg).
			WithHeader("WWW-Authenticate", strings.Replace(challenge, "%s", desc, 1))
	}
	if !present {
		return nil, gatehouse.Errorf(http.StatusUnauthorized, CodeAuthenticationFailed,
			"Authentication failed. The 'Authorization' header is missing.").
			WithHeader("WWW-Authenticate", `Bearer authorization_uri="`+a.base+`/`+a.dir.DefaultTenant()+`", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
	}
	if raw == "" {
		return nil, fail(CodeAuthenticationFailedInvalidHeader,
			"Authentication failed. The 'Authorization' header is provided in an invalid format.",
			"The authentication failed because of invalid 'Authorization' header.")
	}
	c, err := a.Verify(r.Context(), raw, audiences...)
	if err != nil {
		var te *TokenError
		errors.As(err, &te)
		switch {
		case errors.Is(err, ErrTokenExpired):
			now := a.now().UTC().Format("01/02/2006 15:04:05")
			var exp string
			if te != nil && !te.Expires.IsZero() {
				exp = te.Expires.UTC().Format("01/02/2006 15:04:05")
			}
			return nil, fail(CodeExpiredAuthenticationToken,
				"The access token expiry UTC time '"+exp+"' is earlier than current UTC time '"+now+"'.",
				"The access token has expired.").WithCause(err)
		case te != nil && te.Audience != "":
			return nil, fail(CodeInvalidAuthenticationTokenAudience,
				"The access token has been obtained for wrong audience or resource '"+clip(te.Audience)+
					"'. It should exactly match with one of the allowed audiences '"+strings.Join(audiences, "','")+"'.",
				"The access token has been obtained for wrong audience or resource.").WithCause(err)
		default:
			return nil, fail(CodeInvalidAuthenticationToken, "The access token is invalid.",
				"The access token is invalid.").WithCause(err)
		}
	}
	server.SetPrincipal(r.Context(), c.Principal.ObjectID)
	return c, nil
}

type claimsKey struct{}

// WithClaims returns ctx carrying verified claims; ClaimsFrom reads them.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims stored by WithClaims, or nil.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}

// expiredError reports an expired token with its expiry.
func expiredError(exp time.Time) error {
	return &TokenError{Kind: ErrTokenExpired, Reason: "token expired at " + exp.UTC().Format(time.RFC3339), Expires: exp}
}
