package authority

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// A person's token response (password, refresh_token and device_code
// grants) is Entra's v2 shape: token_type, scope, expires_in,
// ext_expires_in, access_token, and, as the request asks,
//
//   - refresh_token (scope offline_access: a session, refresh.go);
//   - client_info (client_info=1): base64url of {"uid": object id,
//     "utid": tenant id}, which MSAL makes the account's home id — without
//     it MSAL keeps no account, so azidentity's DeviceCodeCredential and
//     UsernamePasswordCredential could not refresh silently and would ask
//     the person again for every new scope;
//   - id_token (scope openid): an OpenID Connect ID token for the client
//     (aud = client id, iss = the endpoint's issuer, sub/oid, tid, name,
//     preferred_username, ver 2.0, and the authorization request's nonce),
//     signed like access tokens. MSAL reads the account's user name and
//     tenant from it.
//
// Both are well-formed or absent (azure-wire.md §2.4: Go fails the whole
// response on a malformed one). Applications' tokens never carry them.
type userTokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

func writeUserTokenResponse(w http.ResponseWriter, resp *userTokenResponse) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	json.NewEncoder(w).Encode(resp)
}

// hasScope reports whether the space-separated scope list holds s.
func hasScope(scope, s string) bool {
	for _, f := range strings.Fields(scope) {
		if f == s {
			return true
		}
	}
	return false
}

// clientInfo is MSAL's client_info for person p.
func clientInfo(p gatehouse.Principal, tenantID string) string {
	if p.TenantID != "" {
		tenantID = p.TenantID
	}
	b, _ := json.Marshal(struct {
		UID  string `json:"uid"`
		UTID string `json:"utid"`
	}{strings.ToLower(p.ObjectID), strings.ToLower(tenantID)}) // strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

type idClaims struct {
	Aud               string `json:"aud"`
	Iss               string `json:"iss"`
	Iat               int64  `json:"iat"`
	Nbf               int64  `json:"nbf"`
	Exp               int64  `json:"exp"`
	Name              string `json:"name,omitempty"`
	Nonce             string `json:"nonce,omitempty"`
	OID               string `json:"oid"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Sub               string `json:"sub"`
	TID               string `json:"tid"`
	Ver               string `json:"ver"`
	// The group claims the client asks for (groupclaims.go).
	Groups       []string      `json:"groups,omitempty"`
	WIDs         []string      `json:"wids,omitempty"`
	ClaimNames   *claimNames   `json:"_claim_names,omitempty"`
	ClaimSources *claimSources `json:"_claim_sources,omitempty"`
}

// idToken signs the ID token of spec's person for the requesting client,
// expiring with the access token.
func (a *Authority) idToken(tr *tokenRequest, spec mintSpec, tenantID, nonce string, exp time.Time) (string, error) {
	st := a.keys.Load()
	if st == nil || st.signer == nil {
		return "", errors.New("authority: no signing key")
	}
	p := spec.principal
	if p.TenantID != "" {
		tenantID = p.TenantID
	}
	iss := a.Issuer(tenantID)
	if tr.adfs {
		iss = a.base + "/adfs"
	}
	now := a.now().Unix()
	claims := idClaims{Aud: spec.clientID, Iss: iss, Iat: now, Nbf: now, Exp: exp.Unix(),
		Name: p.Name, Nonce: nonce, OID: p.ObjectID, PreferredUsername: p.Name, Sub: p.ObjectID, TID: tenantID, Ver: "2.0"}
	if app, err := a.dir.Application(spec.clientID); err == nil && app.TenantID == tenantID {
		// A registered client that asks for group claims gets them in its
		// ID token too (the public clients az and the SDKs use have none).
		var overage string
		claims.Groups, claims.WIDs, overage = a.groupClaims(app, p)
		if overage != "" {
			claims.ClaimNames, claims.ClaimSources = overageClaims(overage)
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return a.sign(st, payload)
}
