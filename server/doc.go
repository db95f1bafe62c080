// Package server is the HTTP edge shared by every surface: one TLS listener
// routed by Host, the middleware every request passes (request id, panic
// recovery, metrics, access log), the error renderers, and the operations
// endpoints.
//
// Routing (DESIGN.md §2), H being the public authority:
//
//	Host                          Mux          Surfaces
//	H (or an IP literal)          Root         authority, management, STS, AI path form /ai/{account}, portal, ops
//	{account}.cognitiveservices.H Account      AI data plane (host form); AccountFromContext gives {account}
//	{account}.openai.H            Account      same
//	{vault}.vault.H               Vault        Key Vault data plane; VaultFromContext gives {vault}
//	anything else                 —            JSON 404
//
// The listener is served by server/h1: data-plane HTTP/1.1 requests
// (Router.DataPlane: account and vault hosts, /ai/ and /sts/ at H) on its
// fast path,
// everything else — HTTP/2, other surfaces, unusual HTTP/1.x — by
// net/http, through the same handler.
//
// Data-plane requests (account hosts, /ai/{account}/ at H) are offered to
// Router.Direct before the muxes: the gateway matches its small, fixed
// route table there without ServeMux's general matching, and leaves every
// request it does not take (a path to clean or unescape, another method,
// an unknown path) to the muxes, which give the 404s, 405s and redirects.
//
// Every mux ends in a JSON catch-all, so a client never sees an HTML or
// plain-text error page: unknown paths are 404 and known paths with the
// wrong method are 405, in Azure's error shape.
//
// Handlers return errors (HandlerFunc). A *gatehouse.Error is rendered by
// the surface's Renderer; anything else is logged with its cause and
// rendered as a 500 whose body carries only "internal error" and the
// request id.
package server
