// Package kvapi is the Key Vault secrets data plane, served at
// https://{vault}.vault.H/ (server.Router.Vault), in the shapes the
// official clients expect (azure-wire.md §4): azsecrets, the JS and Python
// SDKs, az's track-1 client.
//
// # Request flow
//
//	authenticate  no Authorization → 401 Unauthorized (AKV10000) with
//	              WWW-Authenticate: Bearer authorization="https://H/{adfs|tenant}",
//	              resource="https://vault.H[:port]" — before anything else,
//	              so the SDKs' body-less first request gets its challenge;
//	              a bad, expired or foreign-audience token → the same 401
//	              plus error="invalid_token"
//	→ vault       from memory by host label (404 VaultNotFound); the token's
//	              tenant must be the vault's (401 AKV10032)
//	→ api-version 7.x[-preview] or YYYY-MM-DD[-preview] (400 BadParameter);
//	              percent-encoded names (api%2Dversion) decode as usual
//	→ route       names validated (400 BadParameter)
//	→ authorize   authz.Decide on the data action at the secret
//	              ({vault id}/secrets/{name}) or, for lists and restore, the
//	              vault → 403 Forbidden / innererror ForbiddenByRbac
//	→ body        JSON, ≤ 1 MiB (413), Key Vault's limits (400 BadParameter)
//	→ service     vault.Service
//	→ audit       every write, and denials (rate-limited, the rest counted),
//	              with name and version — never a value
//
// # Routes and data actions (Microsoft.KeyVault/vaults/secrets/…)
//
//	PUT    /secrets/{name}                   setSecret/action      200 SecretBundle (with value)
//	GET    /secrets/{name}[/[{version}]]     getSecret/action      200 SecretBundle (with value)
//	PATCH  /secrets/{name}[/[{version}]]     update/action         200 SecretBundle (no value)
//	GET    /secrets                          readMetadata/action   200 {value:[…], nextLink}
//	GET    /secrets/{name}/versions          readMetadata/action   200 {value:[…], nextLink}
//	DELETE /secrets/{name}                   delete                200 DeletedSecretBundle (+recoveryId)
//	GET    /deletedsecrets[/{name}]          readMetadata/action   200
//	POST   /deletedsecrets/{name}/recover    recover/action        200 SecretBundle (no value)
//	DELETE /deletedsecrets/{name}            purge/action          204
//	POST   /secrets/{name}/backup            backup/action         200 {"value": unpadded base64url}
//	POST   /secrets/restore                  restore/action        200 SecretBundle; 409 if the name exists
//
// Lists take maxresults (1-25, default 25) and return an absolute nextLink
// that carries api-version, $skiptoken (opaque) and maxresults, since the
// Go client never adds the api-version to a nextLink. Timestamps are
// integer unix seconds. Values are sent with Cache-Control: no-store and
// cleared from memory once written.
package kvapi
