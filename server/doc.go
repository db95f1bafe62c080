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
// The listener is served by server/h1: clean HTTP/1.1 requests of every
// surface on its fast path, HTTP/2 and unusual HTTP/1.x (OPTIONS *,
// chunked or Expect bodies, HTTP/1.0, odd framing) by net/http, through
// the same handler. (Every surface, not only the data planes: a connection
// handed to net/http stays there, and a keep-alive load balancer in front
// of a node mixes all its clients' requests on its connections.)
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
