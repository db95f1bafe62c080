package authority

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// The on-behalf-of grant (Entra's OAuth 2.0 OBO flow): a web API that
// received a person's token for itself trades it, with its own client
// credentials, for a token of the same person for another resource — a
// vault, the AI data plane, the management API, or another application's
// API — so it calls downstream as the person and the person's roles decide.
//
//	grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
//	requested_token_use=on_behalf_of
//	assertion=<the person's token, its aud one of the client's API names>
//	scope=<downstream resource>/.default
//	client_id + client_secret | client_assertion (certificate or federated)
//
// The assertion must be one of this authority's tokens, valid now, issued
// to a person of the request's tenant for the presenting application's API
// (its application id, api://{appId} or an identifier URI); the person is
// checked again (exists, enabled, sessions not revoked since the
// assertion). The new token keeps the person (oid, name) and names the
// presenting application as its appid. No refresh token is issued: the
// API asks again with the assertion it holds, as MSAL does.

// GrantJWTBearer is the JWT bearer grant type (RFC 7523), which Entra uses
// for on-behalf-of requests.
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func (a *Authority) onBehalfOfGrant(r *http.Request, tr *tokenRequest) (mintSpec, error) {
	if use := tr.form.Get("requested_token_use"); use != "on_behalf_of" {
		if use == "" {
			return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'requested_token_use'.")
		}
		return mintSpec{}, oauthErr(oauthInvalidRequest, 50034, "The value of 'requested_token_use' must be 'on_behalf_of'.")
	}
	assertion := tr.form.Get("assertion")
	if assertion == "" {
		return mintSpec{}, oauthErr(oauthInvalidRequest, 900144, "The request body must contain the following parameter: 'assertion'.")
	}
	app, err := a.clientCredentials(r, tr)
	if err != nil {
		return mintSpec{}, err
	}
	if app.principal.ManagedIdentity {
		return mintSpec{}, oauthErr(oauthUnauthorizedClient, 700016, "Application '%s' is a managed identity: it exposes no API, so no token was issued to it on a person's behalf.", app.principal.ClientID)
	}
	api, err := a.dir.API(tr.tenantID, app.principal.ClientID)
	if err != nil {
		return mintSpec{}, oauthErr(oauthUnauthorizedClient, 700016, "Application with identifier '%s' was not found in the directory '%s'.", app.principal.ClientID, tr.tenantID)
	}
	names := api.APINames()
	audiences := make([]string, 0, 2*len(names))
	for _, n := range names {
		audiences = append(audiences, n, n+"/")
	}
	c, err := a.Verify(r.Context(), assertion, audiences...)
	if err != nil {
		var te *TokenError
		switch {
		case errors.Is(err, ErrTokenExpired):
			return mintSpec{}, oauthErr(oauthInvalidGrant, 500133, "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.")
		case errors.As(err, &te) && te.Audience != "":
			return mintSpec{}, oauthErr(oauthInvalidGrant, 500131, "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%s' and the expected audience is '%s' or one of the Application Id URIs of this web API.", clip(te.Audience), app.principal.ClientID)
		}
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50013, "Assertion failed signature validation.")
	}
	if c.Principal.Type != gatehouse.PrincipalUser {
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50013, "The assertion is an application's token: on-behalf-of takes a token issued to a signed-in person.")
	}
	if !strings.EqualFold(c.Principal.TenantID, tr.tenantID) {
		return mintSpec{}, oauthErr(oauthInvalidGrant, 50013, "The assertion was issued for another tenant.")
	}
	person, err := a.signedInPerson(c.Principal.ObjectID, c.IssuedAt)
	if err != nil {
		return mintSpec{}, err
	}
	return mintSpec{principal: person, acr: app.acr, clientID: app.principal.ClientID, scope: "user_impersonation"}, nil
}
