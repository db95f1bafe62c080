// Package authority is Gatehouse's identity authority: an Entra
// ID-compatible token service that azidentity, @azure/identity and the az
// CLI use unmodified (azure-wire.md §2, §3), and the one token issuer and
// verifier of the whole server.
//
// # Routes
//
//	Host H (TLS)                                          renderer
//	GET  /{tenant}/v2.0/.well-known/openid-configuration  OAuth (Entra error shape)
//	GET  /adfs/.well-known/openid-configuration           OAuth
//	GET  /{tenant}/discovery/v2.0/keys, /adfs/discovery/keys
//	POST /{tenant}/oauth2/v2.0/token, /adfs/oauth2/token  OAuth
//	POST /{tenant}/oauth2/v2.0/devicecode, /adfs/oauth2/devicecode  OAuth (device.go)
//	GET  /{tenant}/oauth2/v2.0/authorize, /adfs/oauth2/authorize  redirects and pages (authcode.go)
//	GET|POST /{tenant}/oauth2/v2.0/logout, /adfs/oauth2/logout  to the portal's sign-out page (logout.go)
//	GET  /common/UserRealm/{user}, /common/userrealm/{user}  MSAL's realm lookup: always "Managed"
//	POST /gatehouse/v1/identityHeaders                    Azure (management token)
//	DELETE /gatehouse/v1/identityHeaders/{id}             Azure
//	Loopback (--msi-listen, plain HTTP)
//	GET  /msi/token?api-version=2019-08-01&resource=…     App Service MI protocol
//	POST /msi/token?identity-header=…  (form resource=…)   Cloud Shell MI protocol (az login --identity)
//
// {tenant} is the default tenant's GUID (routes are registered per tenant)
// and "adfs" means the default tenant.
//
// # The token endpoint
//
//	POST form ─▶ tenant ─▶ grant_type ─┬─ client_credentials ─▶ client (memory) ─┬─ secret: SHA-256, constant time
//	                                   │                                         ├─ certificate assertion: PS256/RS256,
//	                                   │                                         │   x5t / x5t#S256 (either base64), aud = token
//	                                   │                                         │   endpoint, exp/nbf ≤ 1 h, jti once per scope
//	                                   │                                         └─ federated assertion: issuer/subject/
//	                                   │                                             audience, issuer keys (discovery or JWKS)
//	                                   ├─ password ─▶ argon2id (people); offline_access → a new session
//	                                   ├─ refresh_token ─▶ SHA-256 → stored token, spent atomically (refresh.go)
//	                                   ├─ device_code ─▶ SHA-256 → stored code a person approved on the
//	                                   │   portal's device page, redeemed once (device.go)
//	                                   ├─ authorization_code ─▶ SHA-256 → stored code a person approved on
//	                                   │   the portal's authorize page; redirect URI and PKCE verifier, or a
//	                                   │   web app's registered URI and its client credential (authcode.go)
//	                                   └─ jwt-bearer + requested_token_use=on_behalf_of ─▶ the client's
//	                                       credential, then the assertion: a person's token for the client's
//	                                       API → the same person's token for the resource (obo.go)
//	      ─▶ resource from scope (first …/.default; openid, offline_access, profile ignored) ─▶ the server's
//	         own, or an application's API (its appId, api://{appId}, an identifier URI) ─▶ sign ─▶ 200
//	      ─▶ a session's responses also carry the next refresh_token (and scope)
//
// Errors are Entra-shaped: {"error","error_description":"AADSTSnnn: …",
// "error_codes","timestamp","trace_id","correlation_id"}; 401 for
// invalid_client, 400 otherwise. Success is {"token_type":"Bearer",
// "expires_in":N,"ext_expires_in":N,"access_token":…} with numeric
// expires_in; an application's never has an id_token or client_info, a
// person's has them when asked (openid, client_info=1: idtoken.go).
//
// # People's sessions
//
// A refresh token is 256 random bits stored only as its SHA-256, valid
// once (rotated at every use; a spent one presented again ends its whole
// session), for RefreshTokenLifetime unused and at most MaxSessionLifetime
// after the password sign-in. A password change, Graph's
// revokeSignInSessions (directory: sign-in sessions valid from) and
// disabling or deleting the person end sessions (on other nodes within
// the change feed's delay); the grant reads the token from storage every
// time, so a spent or ended session is refused everywhere at once. See
// refresh.go.
//
// # Tokens
//
// Access tokens look like Entra v1 tokens: aud (the resource as requested),
// iss (https://H/{tid}/v2.0), iat/nbf/exp, tid, oid, sub, appid, appidacr,
// idtyp, uti, ver "1.0", xms_mirid for managed identities, roles (the app
// roles the subject holds on an application's API); header alg,
// kid, typ. Other services mint their own tokens with Issue (same keys) and
// every surface checks tokens with Verify (one verifier, with a bounded
// cache keyed by the token's SHA-256). Verify's errors wrap ErrTokenExpired
// or ErrTokenInvalid; AuthenticateARM turns them into ARM's 401 codes.
//
// # Signing keys
//
// ES256 by default (RS256 selectable), generated here and stored sealed by
// the keyring in one storage object, so a rotation is a single atomic
// Update: two nodes can never both rotate. States:
//
//	next ──rotation──▶ active ──rotation──▶ retired ──RemoveAfter──▶ removed
//	published,         signs                published until every token it
//	not signing                             signed has expired (+2×skew)
//
// A rotation promotes next to active and publishes a new next key, which
// therefore sits in every node's verifier and in the JWKS for a whole
// period before it signs. A node that has not seen the rotation yet keeps
// signing with the old key, which stays valid as retired. Every node keeps
// the key set in memory and reloads it from the change feed.
//
// # Managed identities
//
// An identity header (App Service's IDENTITY_HEADER) is a 256-bit secret
// bound to one managed identity, stored as SHA-256 with an expiry and
// revocable; the MSI endpoint reads it from storage on each call, so a
// revocation is immediate on every node. `gatehouse run --identity` gets
// one through POST /gatehouse/v1/identityHeaders and revokes it when the
// command exits. Directory administrators may use any identity; others
// need the check installed with SetIdentityAuthorizer.
package authority
