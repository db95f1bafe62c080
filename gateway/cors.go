package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpfield"
	"github.com/gatehouse/gatehouse/server"
)

// CORS: the data plane answers browsers as Azure AI services do, so that a
// web page can call it with a key or a token (the Language and OpenAI
// JavaScript SDKs, fetch): a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) on a route is answered 204 with the
// route's method and the headers asked for, and every answer to a request
// with an allowed Origin — errors included, so the page can read why it was
// refused — carries Access-Control-Allow-Origin and exposes the response
// headers. No cookie is ever involved (credentials travel in headers), so
// Access-Control-Allow-Credentials is never sent and "*" is safe as the
// default: the key or token is what protects the account, exactly as on
// Azure. Options.CORSOrigins narrows it to a list or turns it off.

// CORSPolicy is which browser origins may call the data plane.
type CORSPolicy struct {
	// Any allows every origin.
	Any bool
	// Origins are the allowed origins ("https://app.example:8443"),
	// compared as browsers send them (lower-case scheme and host).
	Origins []string
}

// ParseCORSOrigins parses the --cors-origins setting: "*" (any origin),
// "" (none: no CORS headers, preflights refused as before), or a
// comma-separated list of origins (scheme://host[:port], nothing else).
func ParseCORSOrigins(s string) (CORSPolicy, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return CORSPolicy{}, nil
	case "*":
		return CORSPolicy{Any: true}, nil
	}
	var p CORSPolicy
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
			u.Fragment != "" || u.User != nil || o == "*" {
			return CORSPolicy{}, &corsError{o}
		}
		p.Origins = append(p.Origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return p, nil
}

type corsError struct{ origin string }

func (e *corsError) Error() string {
	return "cors-origins: " + quote(e.origin) + " is not an origin (scheme://host[:port]); use * for any origin or leave it empty for none"
}

func quote(s string) string { return "\"" + s + "\"" }

// allowed returns the Access-Control-Allow-Origin value for origin, or "".
func (p *CORSPolicy) allowed(origin string) string {
	if origin == "" {
		return ""
	}
	if p.Any {
		return "*"
	}
	for _, o := range p.Origins {
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

// corsHeaders adds the headers of an answer to a cross-origin request.
// Only a request with an Origin header pays more than one map lookup.
func (g *Gateway) corsHeaders(w http.ResponseWriter, r *http.Request) {
	origin := r.Header[hdrOrigin]
	if len(origin) == 0 {
		return
	}
	allow := g.cors.allowed(origin[0])
	h := w.Header()
	if allow == "" {
		if len(g.cors.Origins) > 0 {
			// The answer would have differed for a listed origin: a cache
			// must not give this one to it.
			h.Add("Vary", "Origin")
		}
		return
	}
	if allow == "*" {
		h[hdrAllowOrigin] = anyOrigin
	} else {
		h[hdrAllowOrigin] = []string{allow}
		h.Add("Vary", "Origin")
	}
	h[hdrExposeHeaders] = exposeAll
}

// Canonical header names, set directly (no canonicalization per request).
const (
	hdrOrigin        = "Origin"
	hdrAllowOrigin   = "Access-Control-Allow-Origin"
	hdrExposeHeaders = "Access-Control-Expose-Headers"
)

// exposeAll lets the page read every response header (request ids,
// Retry-After, the upstream's rate-limit headers); "*" is honoured for
// requests without credentials, which these are.
var exposeAll = []string{"*"}

// anyOrigin is the Access-Control-Allow-Origin of the "*" policy, shared
// (header values are never modified in place).
var anyOrigin = []string{"*"}

// preflight answers OPTIONS on a data-plane route: 204 with the CORS
// headers when the origin is allowed and the method asked for is the
// route's; otherwise false, and the request is routed as before (405).
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, methods []string) bool {
	allow := g.cors.allowed(r.Header.Get("Origin"))
	want := r.Header.Get("Access-Control-Request-Method")
	if allow == "" || !slices.Contains(methods, want) {
		if allow != "*" && len(g.cors.Origins) > 0 && r.Header.Get("Origin") != "" {
			w.Header().Add("Vary", "Origin") // as corsHeaders
		}
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allow)
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	if req := r.Header.Values("Access-Control-Request-Headers"); len(req) > 0 {
		// The headers asked for, if each is a header name: the route
		// decides which credential it takes, not the preflight.
		names := strings.Join(req, ",")
		if validHeaderList(names) {
			h.Set("Access-Control-Allow-Headers", names)
		}
	}
	h.Set("Access-Control-Max-Age", "600")
	if allow != "*" {
		h.Add("Vary", "Origin")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// validHeaderList reports whether s is a comma-separated list of header
// names (RFC 9110 tokens, optional whitespace), at most 4 KiB.
func validHeaderList(s string) bool {
	if len(s) > 4<<10 {
		return false
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			if !httpfield.IsToken(name[i]) {
				return false
			}
		}
	}
	return true
}

// mountPreflights registers OPTIONS on every data-plane route (path form
// and host form) and the STS paths; what preflight declines gets the
// router's 405, as before.
func (g *Gateway) mountPreflights(rt *server.Router) {
	handler := func(methods ...string) http.Handler {
		allow := strings.Join(methods, ", ")
		return server.WithSurface(server.SurfaceGateway, server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
			if g.preflight(w, r, methods) {
				return nil
			}
			w.Header().Set("Allow", allow)
			return errMethodNotAllowed
		}))
	}
	// A path may serve several methods (a stored response: GET, DELETE).
	var paths []string
	methods := map[string][]string{}
	for _, rte := range routes {
		if _, ok := methods[rte.path]; !ok {
			paths = append(paths, rte.path)
		}
		methods[rte.path] = append(methods[rte.path], rte.method)
	}
	for _, path := range paths {
		rt.Root.Handle("OPTIONS /ai/{account}"+path, handler(methods[path]...))
		rt.Account.Handle("OPTIONS "+path, handler(methods[path]...))
	}
	for _, stsPath := range stsPaths {
		rt.Root.Handle("OPTIONS /ai/{account}"+stsPath, handler(http.MethodPost))
		rt.Account.Handle("OPTIONS "+stsPath, handler(http.MethodPost))
		rt.Root.Handle("OPTIONS "+stsPath, handler(http.MethodPost))
	}
}
