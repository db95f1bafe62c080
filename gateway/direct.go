package gateway

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpfield"
	"github.com/gatehouse/gatehouse/server"
)

// Direct dispatch: the data plane's routes matched without http.ServeMux.
//
// The gateway's route table is small and fixed — literal segments and at
// most one wildcard — and it is matched on every proxied request, where
// ServeMux's general matching (path cleaning, the routing tree, the
// wildcard slice, PathValue) is measurable. server.Router asks direct
// first; it serves exactly the requests the muxes would route to the same
// handler with the same wildcard value, and leaves every other one to them
// (a path that needs cleaning or unescaping, HEAD and other methods, a
// trailing slash, a path no route has), so 404, 405 and redirects stay
// ServeMux's. TestDirectMatchesMux and FuzzDirect hold the two equal.

// directRoute is one route as direct matches it.
type directRoute struct {
	// pattern is the route's ServeMux pattern at an account host.
	pattern string
	method  string
	// segs are the path's segments after the leading slash; "" is the
	// wildcard.
	segs []string
	// serve answers a matched request: account is the account name as the
	// request wrote it, param the wildcard's value.
	serve func(g *Gateway, w http.ResponseWriter, r *http.Request, account, param string)
}

// directRoutes is the table direct matches, built from routes.
var directRoutes = buildDirectRoutes()

// stsPaths are the STS's path, as the SDKs write it and as the Azure
// portal shows it (Keys and Endpoint: …/sts/v1.0/issuetoken).
var stsPaths = [...]string{"/sts/v1.0/issueToken", "/sts/v1.0/issuetoken"}

func buildDirectRoutes() []directRoute {
	var out []directRoute
	for _, rte := range routes {
		if rte.muxOnly {
			continue
		}
		out = append(out, directRoute{pattern: rte.method + " " + rte.path, method: rte.method, segs: patternSegments(rte.path),
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, account, param string) {
				server.SetSurface(r.Context(), server.SurfaceGateway)
				if err := g.handle(w, r, rte, account, param); err != nil {
					server.RenderError(w, r, server.RenderAzure, err)
				}
			}})
	}
	for _, sts := range stsPaths {
		out = append(out, directRoute{pattern: "POST " + sts, method: http.MethodPost, segs: patternSegments(sts),
			serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, account, _ string) {
				server.SetSurface(r.Context(), server.SurfaceSTS)
				if err := g.issueToken(w, r, account, true); err != nil {
					server.RenderError(w, r, server.RenderAzure, err)
				}
			}})
	}
	return out
}

// patternSegments splits a route path ("/openai/deployments/{deployment}/
// chat/completions") into its segments, "" for the wildcard. A route with
// more than one wildcard, or a "{name...}" one, is a programming error:
// direct matches neither.
func patternSegments(path string) []string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) > maxDirectSegments {
		panic("gateway: direct dispatch takes at most maxDirectSegments segments: " + path)
	}
	wild := 0
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			if wild++; wild > 1 || strings.HasSuffix(s, "...}") {
				panic("gateway: direct dispatch takes one plain wildcard per route: " + path)
			}
			segs[i] = ""
		}
	}
	return segs
}

// direct serves r if a data-plane route matches it: account is the account
// the request addresses (its host, or /ai/{account}/ at H) and rel the path
// relative to the account. It returns false, having done nothing, for
// anything the muxes are to route.
func (g *Gateway) direct(w http.ResponseWriter, r *http.Request, account, rel string) bool {
	d, param := directMatch(r, account, rel)
	if d == nil {
		return false
	}
	d.serve(g, w, r, account, param)
	return true
}

// directMatch returns the route direct serves r with, and its wildcard's
// value; nil if the muxes are to route r. rel is split into its segments
// once, and only the routes of r's method with as many segments are
// compared with them.
func directMatch(r *http.Request, account, rel string) (*directRoute, string) {
	if r.URL.RawPath != "" || !directPath(rel) || account == "" || !plainSegment(account) {
		return nil, ""
	}
	var buf [maxDirectSegments]string
	segs, ok := splitSegments(rel, buf[:0])
	if !ok {
		return nil, ""
	}
	for i := range directRoutes {
		d := &directRoutes[i]
		if len(d.segs) != len(segs) || d.method != r.Method {
			continue
		}
		if param, ok := d.match(segs); ok {
			return d, param
		}
	}
	return nil, ""
}

// maxDirectSegments bounds the segments of a path direct matches: more
// than any route has, so a longer path matches none.
const maxDirectSegments = 8

// splitSegments appends rel's segments (rel starts with a slash) to segs;
// false when there are more than maxDirectSegments.
func splitSegments(rel string, segs []string) ([]string, bool) {
	p := rel[1:]
	for {
		if len(segs) == maxDirectSegments {
			return nil, false
		}
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return append(segs, p), true
		}
		segs = append(segs, p[:i])
		p = p[i+1:]
	}
}

// match reports whether segs, as many as the route's, are the route's
// path, with the wildcard's value.
func (d *directRoute) match(segs []string) (param string, ok bool) {
	for i, want := range d.segs {
		seg := segs[i]
		if want != "" {
			if seg != want {
				return "", false
			}
			continue
		}
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		param = seg
	}
	return param, true
}

// directPath reports whether path is one ServeMux routes as it is: it
// starts with a slash and every byte is one that needs no escaping in a
// path (so the escaped path is the path, and segments need no unescaping).
// Dot segments are refused by match; "//" has been collapsed by the router.
func directPath(path string) bool {
	return len(path) > 0 && path[0] == '/' && httpfield.PlainPath(path)
}

// plainSegment is directPath for one segment (the account of /ai/{account}).
func plainSegment(s string) bool {
	return s != "." && s != ".." && strings.IndexByte(s, '/') < 0 && httpfield.PlainPath(s)
}
