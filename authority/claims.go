package authority

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Claims is what Verify found in a valid token. Verify returns shared,
// cached values: treat a *Claims (and its Extra map) as read-only.
type Claims struct {
	// Principal is who the token stands for (oid, tid, appid, type). For a
	// token issued without a principal (Issue with a zero ObjectID, e.g. an
	// STS token) only TenantID is set.
	Principal gatehouse.Principal
	// Audience is the token's aud (the resource as it was requested).
	Audience                     string
	Issuer                       string
	IssuedAt, NotBefore, Expires time.Time
	// ID is the token's unique id (uti).
	ID string
	// AppIDACR is how the client authenticated: "0" public client (a
	// person's password sign-in), "1" secret, "2" certificate or assertion
	// (and managed identities).
	AppIDACR string
	// Scope is scp: delegated scopes of a person's token ("" for apps).
	Scope string
	// Roles are the app roles the subject holds on the audience (an
	// application's API).
	Roles []string
	// Groups and DirectoryRoles are the groups claim (security group
	// object ids) and wids (directory role template ids), when the
	// audience application asks for them (groupMembershipClaims).
	// GroupsOverage is set instead of Groups when the subject has more
	// groups than a token names: the Graph endpoint that lists them
	// (_claim_sources, Entra's overage).
	Groups, DirectoryRoles []string
	GroupsOverage          string
	// Extra holds the non-standard claims passed to Issue. JSON numbers
	// come back as json.Number (use Int64), strings as string, objects as
	// map[string]any.
	Extra map[string]any
}

// String returns the extra claim name if it is a string.
func (c *Claims) String(name string) string {
	s, _ := c.Extra[name].(string)
	return s
}

// Int64 returns the extra claim name if it is an integer.
func (c *Claims) Int64(name string) (int64, bool) {
	switch v := c.Extra[name].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case float64:
		return int64(v), float64(int64(v)) == v
	}
	return 0, false
}

// Verification errors. Every error Verify returns wraps exactly one of
// them, so callers tell the cases apart with errors.Is and answer as ARM
// does (ExpiredAuthenticationToken vs InvalidAuthenticationToken).
var (
	// ErrTokenExpired: a well-formed, correctly signed token of ours whose
	// exp has passed (beyond the allowed skew).
	ErrTokenExpired = errors.New("authority: token expired")
	// ErrTokenInvalid: anything else — malformed, unknown or disallowed
	// alg, unknown kid, bad signature, wrong issuer or audience, not yet
	// valid, oversized.
	ErrTokenInvalid = errors.New("authority: invalid token")
)

// TokenError is a verification failure. Reason is safe to log (it never
// contains the token) but is not meant for clients.
type TokenError struct {
	Kind   error // ErrTokenExpired or ErrTokenInvalid
	Reason string
	// Expires is the token's expiry when Kind is ErrTokenExpired.
	Expires time.Time
	// Audience is the token's aud when it was valid except for its
	// audience (ARM answers InvalidAuthenticationTokenAudience then).
	Audience string
}

func (e *TokenError) Error() string { return e.Kind.Error() + ": " + e.Reason }
func (e *TokenError) Unwrap() error { return e.Kind }

func invalidToken(reason string) error { return &TokenError{Kind: ErrTokenInvalid, Reason: reason} }

// accessClaims is the payload of an access token, in Entra v1 shape
// (azure-wire.md §2.6). Field order is the serialization order.
type accessClaims struct {
	Aud            string `json:"aud"`
	Iss            string `json:"iss"`
	Iat            int64  `json:"iat"`
	Nbf            int64  `json:"nbf"`
	Exp            int64  `json:"exp"`
	AppDisplayName string `json:"app_displayname,omitempty"`
	AppID          string `json:"appid,omitempty"`
	AppIDACR       string `json:"appidacr,omitempty"`
	IDP            string `json:"idp,omitempty"`
	IDTyp          string `json:"idtyp,omitempty"`
	Name           string `json:"name,omitempty"`
	OID            string `json:"oid,omitempty"`
	Scp            string `json:"scp,omitempty"`
	Sub            string `json:"sub,omitempty"`
	TID            string `json:"tid"`
	UniqueName     string `json:"unique_name,omitempty"`
	UPN            string `json:"upn,omitempty"`
	UTI            string `json:"uti"`
	Ver            string `json:"ver"`
	MIRID          string `json:"xms_mirid,omitempty"`
	// Roles: the app roles the subject holds on the audience, when the
	// audience is an application's API.
	Roles []string `json:"roles,omitempty"`
	// Groups and WIDs: the subject's security groups and directory roles,
	// when the API asks for them; the overage claims replace groups for a
	// subject in more than MaxGroupsClaim groups.
	Groups       []string      `json:"groups,omitempty"`
	WIDs         []string      `json:"wids,omitempty"`
	ClaimNames   *claimNames   `json:"_claim_names,omitempty"`
	ClaimSources *claimSources `json:"_claim_sources,omitempty"`
}

// MaxGroupsClaim is the most groups a token names, as Entra's JWTs: a
// subject in more gets the overage claims, which point at Graph's
// getMemberObjects for the full list.
const MaxGroupsClaim = 200

// claimNames and claimSources are Entra's group overage claims:
// "_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":…}}.
type claimNames struct {
	Groups string `json:"groups"`
}

type claimSources struct {
	Src1 struct {
		Endpoint string `json:"endpoint"`
	} `json:"src1"`
}

func overageClaims(endpoint string) (*claimNames, *claimSources) {
	s := &claimSources{}
	s.Src1.Endpoint = endpoint
	return &claimNames{Groups: "src1"}, s
}

// reservedClaims cannot be set through Issue's extra map.
var reservedClaims = map[string]bool{
	"aud": true, "iss": true, "iat": true, "nbf": true, "exp": true, "app_displayname": true, "appid": true,
	"appidacr": true, "idp": true, "idtyp": true, "name": true, "oid": true, "scp": true, "sub": true, "tid": true,
	"unique_name": true, "upn": true, "uti": true, "ver": true, "xms_mirid": true, "azp": true, "azpacr": true,
	"roles": true, "jti": true, "groups": true, "wids": true, "_claim_names": true, "_claim_sources": true,
}

// claimsFrom turns a verified payload into Claims.
func claimsFrom(payload []byte) (*Claims, *accessClaims, error) {
	var all map[string]json.RawMessage
	if err := strictUnmarshal(payload, &all); err != nil {
		return nil, nil, invalidToken("payload is not a JSON object")
	}
	var ac accessClaims
	if err := json.Unmarshal(payload, &ac); err != nil {
		return nil, nil, invalidToken("payload has claims of the wrong type")
	}
	c := &Claims{Audience: ac.Aud, Issuer: ac.Iss, IssuedAt: time.Unix(ac.Iat, 0), NotBefore: time.Unix(ac.Nbf, 0),
		Expires: time.Unix(ac.Exp, 0), ID: ac.UTI, AppIDACR: ac.AppIDACR, Scope: ac.Scp, Roles: ac.Roles,
		Groups: ac.Groups, DirectoryRoles: ac.WIDs}
	if ac.ClaimNames != nil && ac.ClaimNames.Groups == "src1" && ac.ClaimSources != nil {
		c.GroupsOverage = ac.ClaimSources.Src1.Endpoint
	}
	c.Principal = gatehouse.Principal{TenantID: ac.TID, ObjectID: ac.OID}
	switch ac.IDTyp {
	case "user":
		c.Principal.Type = gatehouse.PrincipalUser
		c.Principal.Name = ac.UniqueName
	case "app":
		c.Principal.Type = gatehouse.PrincipalServicePrincipal
		c.Principal.ClientID = ac.AppID
		c.Principal.Name = ac.AppDisplayName
		c.Principal.ManagedIdentity = ac.MIRID != ""
	}
	for name, raw := range all {
		if reservedClaims[name] {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, nil, invalidToken("payload has an undecodable claim")
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[name] = v
	}
	return c, &ac, nil
}

// appendJSON appends the claims as a JSON object, field for field what
// encoding/json produces for accessClaims (same order, same omitempty), at
// a fraction of its cost: this runs once per issued token.
func (c *accessClaims) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendStringField(b, "aud", c.Aud, false)
	b = appendStringField(b, "iss", c.Iss, false)
	b = appendIntField(b, "iat", c.Iat)
	b = appendIntField(b, "nbf", c.Nbf)
	b = appendIntField(b, "exp", c.Exp)
	b = appendStringField(b, "app_displayname", c.AppDisplayName, true)
	b = appendStringField(b, "appid", c.AppID, true)
	b = appendStringField(b, "appidacr", c.AppIDACR, true)
	b = appendStringField(b, "idp", c.IDP, true)
	b = appendStringField(b, "idtyp", c.IDTyp, true)
	b = appendStringField(b, "name", c.Name, true)
	b = appendStringField(b, "oid", c.OID, true)
	b = appendStringField(b, "scp", c.Scp, true)
	b = appendStringField(b, "sub", c.Sub, true)
	b = appendStringField(b, "tid", c.TID, false)
	b = appendStringField(b, "unique_name", c.UniqueName, true)
	b = appendStringField(b, "upn", c.UPN, true)
	b = appendStringField(b, "uti", c.UTI, false)
	b = appendStringField(b, "ver", c.Ver, false)
	b = appendStringField(b, "xms_mirid", c.MIRID, true)
	b = appendStringsField(b, "roles", c.Roles)
	b = appendStringsField(b, "groups", c.Groups)
	b = appendStringsField(b, "wids", c.WIDs)
	if c.ClaimNames != nil {
		b = append(b, `"_claim_names":{"groups":`...)
		b = appendJSONString(b, c.ClaimNames.Groups)
		b = append(b, '}', ',')
	}
	if c.ClaimSources != nil {
		b = append(b, `"_claim_sources":{"src1":{"endpoint":`...)
		b = appendJSONString(b, c.ClaimSources.Src1.Endpoint)
		b = append(b, '}', '}', ',')
	}
	b[len(b)-1] = '}' // replaces the last field's comma
	return b
}

// appendStringsField appends "name":[…], omitted when vs is empty.
func appendStringsField(b []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']', ',')
}

func appendIntField(b []byte, name string, v int64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b = strconv.AppendInt(b, v, 10)
	return append(b, ',')
}

func appendStringField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b = appendJSONString(b, v)
	return append(b, ',')
}

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (quotes, backslashes, control characters, <, >, &, U+2028/9; invalid
// UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
