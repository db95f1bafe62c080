package gateway

import (
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// keyHeaders are the subscription-key headers the Azure clients send, in
// canonical form (Go canonicalizes incoming names, so "api-key" arrives as
// "Api-Key").
var keyHeaders = [...]string{"Ocp-Apim-Subscription-Key", "Api-Key"}

// credentialParams are query parameters that carry a credential in some
// client or other (a browser WebSocket's api-key, Translator's
// Subscription-Key, OAuth's access_token). The gateway never forwards
// them: a query the upstream gets is the client's less these, matched in
// any case.
var credentialParams = [...]string{"api-key", "subscription-key", "ocp-apim-subscription-key", "authorization", "access_token"}

// dropCredentialParams removes credentialParams from q.
func dropCredentialParams(q url.Values) {
	for k := range q {
		for _, c := range credentialParams {
			if strings.EqualFold(k, c) {
				delete(q, k)
				break
			}
		}
	}
}

// presentedKey returns the subscription key of the request, if it has one.
func presentedKey(h http.Header) (string, bool) {
	for _, name := range keyHeaders {
		if v := h[name]; len(v) > 0 {
			if k := strings.TrimSpace(v[0]); k != "" {
				return k, true
			}
		}
	}
	return "", false
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(h http.Header) (string, bool) {
	v := h["Authorization"]
	if len(v) == 0 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(v[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// dataAudiences are the audiences a bearer token may have on the data
// plane (a package variable: a literal list would be allocated per call).
var dataAudiences = []string{STSAudience, CognitiveAudience, cognitiveAudienceSlash, AIAudience, aiAudienceSlash}

// stsPrincipal is what the access log records for an STS token of a slot.
var stsPrincipal = [2]string{"sts:key1", "sts:key2"}

// keySum is the lookup hash of a key. Keys carry 256 bits of entropy, so a
// plain SHA-256 is the right hash: a slow one would only add latency. The
// key is hashed in place (Sum256 neither keeps nor modifies its input; a
// []byte(key) conversion would copy it to the heap on every request).
func keySum(key string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
}

// authenticate establishes who calls acct: a key of acct, an STS token
// minted from a current key of acct, or an identity token. With bearerKey a
// bearer that is not a JWT (no '.') is taken as a key. On failure the
// returned call says as much as is known (for the audit log) and the error
// is a denial.
func (g *Gateway) authenticate(r *http.Request, acct *Account, bearerKey bool) (*call, error) {
	c := newCall()
	if key, ok := presentedKey(r.Header); ok {
		return g.keyCall(r, acct, c, key)
	}
	raw, ok := bearer(r.Header)
	if !ok {
		return c, deny(errAccessDenied, reasonMissing)
	}
	if bearerKey && !strings.Contains(raw, ".") {
		return g.keyCall(r, acct, c, raw)
	}
	tok, err := g.opts.Tokens.VerifyToken(r.Context(), raw, dataAudiences...)
	if err != nil {
		if _, ok := gatehouse.AsError(err); ok && gatehouse.ErrorStatus(err) >= 500 {
			return c, err // the verifier could not decide: not the client's fault
		}
		return c, deny(errAccessDenied.WithCause(err), reasonInvalidToken)
	}
	if tok.STS != (tok.Audience == STSAudience) {
		// An STS audience without the STS claims, or the reverse: not a
		// token this server minted as such.
		return c, deny(errAccessDenied.WithCause(errors.New("token kind and audience disagree")), reasonInvalidToken)
	}
	if tok.STS {
		c.kind = CredentialSTS
		if acct.DisableLocalAuth {
			return c, deny(errLocalAuthDisabled, reasonLocalAuthDisabled)
		}
		if tok.AccountID != acct.ID || tok.Instance != "" && tok.Instance != acct.InternalID {
			return c, deny(errAccessDenied, reasonWrongAccount)
		}
		// The generation check is what revokes a token with its key: a
		// regeneration bumps the slot's generation in the account index on
		// every node, and tokens minted before it stop matching.
		if tok.Slot < 0 || tok.Slot > 1 || acct.Generations[tok.Slot] != tok.Generation {
			return c, deny(errAccessDenied, reasonRevokedToken)
		}
		c.slot = tok.Slot
		server.SetPrincipal(r.Context(), stsPrincipal[tok.Slot])
		return c, nil
	}
	c.kind, c.principal = CredentialIdentity, tok.Principal
	if tok.Principal.ObjectID == "" {
		return c, deny(errAccessDenied.WithCause(errors.New("token has no oid")), reasonInvalidToken)
	}
	server.SetPrincipal(r.Context(), tok.Principal.ObjectID)
	return c, nil
}

// keyCall authenticates a subscription key of acct.
func (g *Gateway) keyCall(r *http.Request, acct *Account, c *call, key string) (*call, error) {
	if acct.DisableLocalAuth {
		return c, deny(errLocalAuthDisabled, reasonLocalAuthDisabled)
	}
	m, ok := g.opts.Accounts.LookupKey(keySum(key))
	if !ok {
		return c, deny(errAccessDenied, reasonInvalidKey)
	}
	if m.AccountID != acct.ID {
		return c, deny(errAccessDenied, reasonWrongAccount)
	}
	c.kind, c.slot = SlotKind(m.Slot), m.Slot
	server.SetPrincipal(r.Context(), string(c.kind))
	return c, nil
}

// deny counts and audits a refusal and returns it for rendering. Errors
// that are not denials (the authorizer failing) pass through untouched.
func (g *Gateway) deny(r *http.Request, acct *Account, c *call, action string, err error) error {
	d, ok := errors.AsType[*denial](err)
	if !ok {
		return err
	}
	g.meter.denied(acct, d.reason)
	kind := CredentialKind("")
	var p gatehouse.Principal
	if c != nil {
		kind, p = c.kind, c.principal
	}
	g.auditor.record(Denial{
		Time: g.now(), RequestID: server.RequestID(r.Context()), AccountID: acct.ID, Action: action,
		Credential: kind, Principal: p, Status: d.err.Status, Code: d.err.Code, Reason: d.reason,
		ClientAddress: clientIP(r.RemoteAddr),
	})
	return err
}

// clientIP returns the host part of a RemoteAddr without allocating.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
