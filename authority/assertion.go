package authority

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
)

// kindJTI held the uses of certificate assertions, when a second use for
// one scope was refused. Nothing writes it any more (see
// checkCertificateAssertion); its rows are still pruned as they expire.
const kindJTI = "authority.jti"

// maxAssertionLifetime bounds exp - now of an assertion. MSAL uses 10
// minutes.
const maxAssertionLifetime = time.Hour

// assertionClaims are the claims of a client assertion or federated token.
type assertionClaims struct {
	Iss string       `json:"iss"`
	Sub string       `json:"sub"`
	Aud audience     `json:"aud"`
	Exp *json.Number `json:"exp"`
	Nbf *json.Number `json:"nbf"`
	Iat *json.Number `json:"iat"`
	JTI string       `json:"jti"`
}

// audience is a JWT aud: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

func unixClaim(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// checkTimes validates exp (required) and nbf (optional) with skew, and
// bounds the lifetime left.
func (a *Authority) checkTimes(c *assertionClaims, now time.Time, maxLeft time.Duration) (time.Time, error) {
	exp, ok := unixClaim(c.Exp)
	if !ok {
		return time.Time{}, oauthErr(oauthInvalidClient, 700024, "Client assertion is not within its valid time range: it has no valid 'exp'.")
	}
	if now.After(exp.Add(a.skew)) {
		return time.Time{}, oauthErr(oauthInvalidClient, 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid to: %s.", now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := unixClaim(c.Nbf); ok && nbf.After(now.Add(a.skew)) {
		return time.Time{}, oauthErr(oauthInvalidClient, 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from: %s.", now.UTC().Format(time.RFC3339), nbf.UTC().Format(time.RFC3339))
	}
	if c.Nbf != nil {
		if _, ok := unixClaim(c.Nbf); !ok {
			return time.Time{}, oauthErr(oauthInvalidClient, 700024, "Client assertion has an invalid 'nbf'.")
		}
	}
	if maxLeft > 0 && exp.Sub(now) > maxLeft {
		return time.Time{}, oauthErr(oauthInvalidClient, 700024, "Client assertion is valid for too long: 'exp' may be at most %s ahead.", maxLeft)
	}
	return exp, nil
}

// checkAssertion authenticates client with a client_assertion: its own
// certificate's signature (iss = sub = client id) or a federated token from
// a trusted external issuer.
func (a *Authority) checkAssertion(ctx context.Context, tr *tokenRequest, client *directory.Client, raw string) error {
	t, err := parseCompact(raw)
	if err != nil {
		return oauthErr(oauthInvalidClient, 50027, "Invalid JWT token. The client assertion is malformed.")
	}
	var c assertionClaims
	if err := strictUnmarshal(t.payload, &c); err != nil {
		return oauthErr(oauthInvalidClient, 50027, "Invalid JWT token. The client assertion's claims are malformed.")
	}
	if c.Iss == client.Principal().ClientID || gatehouse.IsGUID(c.Iss) {
		return a.checkCertificateAssertion(tr, client, t, &c)
	}
	return a.checkFederatedAssertion(ctx, client, t, &c)
}

// tokenEndpoints are the audiences a client assertion may name: the token
// endpoints of the request's tenant in both forms.
func (a *Authority) tokenEndpoints(tr *tokenRequest) []string {
	eps := []string{a.base + "/" + tr.tenantID + "/oauth2/v2.0/token", a.base + "/" + tr.tenantID + "/oauth2/token"}
	if tr.tenantID == a.dir.DefaultTenant() {
		eps = append(eps, a.base+"/adfs/oauth2/token", a.base+"/adfs/oauth2/v2.0/token")
	}
	return eps
}

func (a *Authority) checkCertificateAssertion(tr *tokenRequest, client *directory.Client, t *compactJWT, c *assertionClaims) error {
	clientID := client.Principal().ClientID
	if t.header.Alg != AlgPS256 && t.header.Alg != AlgRS256 {
		return oauthErr(oauthInvalidClient, 5002738, "Invalid JWT token. '%s' is not a supported signature algorithm. Supported algorithms are: 'PS256, RS256'.", clip(t.header.Alg))
	}
	s256 := decodeThumbprint(t.header.X5tS256, sha256.Size)
	s1 := decodeThumbprint(t.header.X5t, sha1.Size)
	if s256 == nil && s1 == nil {
		return oauthErr(oauthInvalidClient, 700027, "Client assertion failed signature validation: the header has no valid 'x5t' or 'x5t#S256' thumbprint.")
	}
	now := a.now()
	cert, err := client.Certificate(s1, s256, now)
	switch {
	case errors.Is(err, directory.ErrCertificateExpired):
		return oauthErr(oauthInvalidClient, 700027, "Client assertion failed signature validation: the certificate is outside its validity period.")
	case err != nil:
		return oauthErr(oauthInvalidClient, 700027, "Client assertion failed signature validation: no certificate with this thumbprint is registered for app '%s'.", clientID)
	}
	if err := verifySignature(t.header.Alg, cert.Cert.PublicKey, t.signingInput, t.signature); err != nil {
		return oauthErr(oauthInvalidClient, 700027, "Client assertion contains an invalid signature.")
	}
	if !equalFoldID(c.Iss, clientID) || !equalFoldID(c.Sub, clientID) {
		return oauthErr(oauthInvalidClient, 700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	eps := a.tokenEndpoints(tr)
	if !slices.ContainsFunc(c.Aud, func(aud string) bool { return slices.Contains(eps, aud) }) {
		return oauthErr(oauthInvalidClient, 700023, "Client assertion audience claim does not match the token endpoint.")
	}
	if _, err := a.checkTimes(c, now, maxAssertionLifetime); err != nil {
		return err
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return oauthErr(oauthInvalidClient, 700027, "Client assertion must carry a 'jti' of at most 256 characters.")
	}
	// No replay check: the MSALs reuse one signed assertion until it
	// expires — MSAL Node's ClientAssertion.getJwt returns its cached JWT
	// (msal-node 5.6.0), MSAL Python's AutoRefresher keeps one for 9 of its
	// 10 minutes — for every scope and for the same scope again (a token
	// MSAL Python takes for expired 5 minutes early under a short
	// --token-lifetime; a claims request), and Entra accepts it. Refusing a
	// second use for one scope failed those clients with AADSTS700235. An
	// assertion is signed by the client's key, bound to this token
	// endpoint and valid an hour at most.
	return nil
}

// checkFederatedAssertion validates a token of an external issuer against
// the client's federated credentials (azure-wire.md §2.4, workload
// identity). Federated tokens are reused by clients (Go re-reads the token
// file at most every 10 minutes), so there is no replay check.
func (a *Authority) checkFederatedAssertion(ctx context.Context, client *directory.Client, t *compactJWT, c *assertionClaims) error {
	creds := client.Federated()
	var byIssuer []directory.FederatedCredential
	for _, f := range creds {
		if f.Issuer == c.Iss {
			byIssuer = append(byIssuer, f)
		}
	}
	if len(byIssuer) == 0 {
		return oauthErr(oauthInvalidClient, 700211, "No matching federated identity record found for presented assertion issuer '%s'.", clip(c.Iss))
	}
	var bySubject []directory.FederatedCredential
	for _, f := range byIssuer {
		if f.Subject == c.Sub {
			bySubject = append(bySubject, f)
		}
	}
	if len(bySubject) == 0 {
		return oauthErr(oauthInvalidClient, 700213, "No matching federated identity record found for presented assertion subject '%s'.", clip(c.Sub))
	}
	var cred *directory.FederatedCredential
	for i, f := range bySubject {
		if slices.ContainsFunc(c.Aud, func(aud string) bool { return slices.Contains(f.Audiences, aud) }) {
			cred = &bySubject[i]
			break
		}
	}
	if cred == nil {
		return oauthErr(oauthInvalidClient, 700212, "No matching federated identity record found for presented assertion audience '%s'.", clip(firstOr(c.Aud)))
	}
	switch t.header.Alg {
	case AlgRS256, AlgPS256, AlgES256:
	default:
		return oauthErr(oauthInvalidClient, 5002738, "Invalid JWT token. '%s' is not a supported signature algorithm.", clip(t.header.Alg))
	}
	if strings.HasPrefix(cred.Issuer, a.base+"/") && len(cred.JWKS) == 0 {
		// A token of this server's own issuer (a managed identity's for
		// api://AzureADTokenExchange): verified with its own keys —
		// signature, issuer, audience, lifetime — not fetched from itself.
		raw := t.signingInput + "." + base64.RawURLEncoding.EncodeToString(t.signature)
		own, err := a.Verify(ctx, raw, cred.Audiences...)
		if err != nil || own.Issuer != cred.Issuer {
			return oauthErr(oauthInvalidClient, 700027, "Client assertion contains an invalid signature, or is not a valid token of issuer '%s'.", clip(cred.Issuer))
		}
		return nil
	}
	key, err := a.fed.key(ctx, cred.Issuer, t.header.Kid, cred.JWKS)
	if err != nil {
		a.logger.Info("federated issuer keys unavailable", "issuer", cred.Issuer, "err", err)
		return oauthErr(oauthInvalidClient, 50166, "Request to External OIDC endpoint failed: the signing key of issuer '%s' could not be found.", clip(cred.Issuer))
	}
	if key.alg != "" && key.alg != t.header.Alg {
		return oauthErr(oauthInvalidClient, 700027, "Client assertion contains an invalid signature: the algorithm does not match the key.")
	}
	if err := verifySignature(t.header.Alg, key.pub, t.signingInput, t.signature); err != nil {
		return oauthErr(oauthInvalidClient, 700027, "Client assertion contains an invalid signature.")
	}
	_, err = a.checkTimes(c, a.now(), 0)
	return err
}

func firstOr(a []string) string {
	if len(a) > 0 {
		return a[0]
	}
	return ""
}

func equalFoldID(a, b string) bool {
	return len(a) == len(b) && (a == b || gatehouse.IsGUID(a) && lowerASCII(a) == lowerASCII(b))
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
