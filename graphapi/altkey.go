package graphapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// Graph's alternate keys: an application or a service principal named by
// its appId instead of its object id, in the entity set's segment —
//
//	/v1.0/applications(appId='{appId}')[/…]
//	/v1.0/servicePrincipals(appId='{appId}')[/…]
//
// (what Get-MgServicePrincipalByAppId and the SDKs' …WithAppId builders
// send; the quotes may come as %27). Every route of the object id serves
// the alternate key: the request is routed again with the object's id in
// place of the key, so it meets the same authorization, handlers and
// answers. A ServeMux wildcard is a whole segment, and "{set}({key})"
// beside "{set}/{id}" would overlap every other route, so the key is
// served from the requests no route matched (ServeAlternateKey, which the
// server's not-found hook calls). An appId that names nothing is routed
// to an id that names nothing, and the guard answers 404 for the key once
// the caller is authenticated and authorized as for any unknown id.
// applications(uniqueName='…') is not served: applications here have no
// uniqueName.

// nilGUID is the id an unknown alternate key is routed to: no object has
// it.
const nilGUID = "00000000-0000-0000-0000-000000000000"

// altKeyMissing, in a request's context, is the alternate key that named
// no object (its value).
type altKeyMissing struct{}

// ServeAlternateKey serves a request whose path addresses an application
// or a service principal by an alternate key, and reports whether it did;
// any other request it leaves alone (false). Mount must have been called:
// the request is routed again on Mount's mux. The server offers it the
// requests no route matched (server.Router.NotFound).
func (g *API) ServeAlternateKey(w http.ResponseWriter, r *http.Request) bool {
	if g.mux == nil {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1.0/")
	if !ok {
		return false
	}
	seg, tail := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		seg, tail = rest[:i], rest[i:]
	}
	seg, err := url.PathUnescape(seg)
	if err != nil {
		return false
	}
	open := strings.IndexByte(seg, '(')
	if open < 0 {
		return false
	}
	var set string
	for _, s := range []string{"applications", "servicePrincipals"} {
		if strings.EqualFold(seg[:open], s) {
			set = s
		}
	}
	if set == "" {
		return false
	}
	id, missing, err := g.resolveAltKey(set, seg[open:])
	if err != nil {
		// A malformed key: Graph's 400, to an authenticated caller.
		server.WithSurface(server.SurfaceGraph, withGraphIDs(server.Handle(renderGraph, func(w http.ResponseWriter, r *http.Request) error {
			if _, aerr := g.auth.AuthenticateARM(r, g.auth.GraphAudiences()...); aerr != nil {
				return aerr
			}
			return err
		}))).ServeHTTP(w, r)
		return true
	}
	r2 := r.Clone(r.Context())
	if missing != "" {
		r2 = r2.WithContext(context.WithValue(r2.Context(), altKeyMissing{}, missing))
	}
	escaped := "/v1.0/" + set + "/" + id + tail
	r2.URL.Path, _ = url.PathUnescape(escaped)
	r2.URL.RawPath = escaped
	g.mux.ServeHTTP(w, r2)
	return true
}

// resolveAltKey returns the object id of the set's object that key,
// "(appId='…')", names, or nilGUID and the key's value when none.
func (g *API) resolveAltKey(set, key string) (id, missing string, err error) {
	appID, err := parseAltKey(set, key)
	if err != nil {
		return "", "", err
	}
	if set == "applications" {
		if a, err := g.dir.Application(appID); err == nil && strings.EqualFold(a.AppID, appID) {
			return a.AppObjectID, "", nil
		}
		return nilGUID, appID, nil
	}
	a, mi, err := g.servicePrincipal(appID)
	switch {
	case err != nil:
	case a != nil && strings.EqualFold(a.AppID, appID):
		return a.ObjectID, "", nil
	case mi != nil && strings.EqualFold(mi.ClientID, appID):
		return mi.PrincipalID, "", nil
	}
	return nilGUID, appID, nil
}

// altKeyNotFound is the answer to a request routed from an alternate key
// that named nothing (nil otherwise): the guard gives it once the caller
// passes authorization, which it does as for any other unknown id.
func altKeyNotFound(r *http.Request) error {
	if v, ok := r.Context().Value(altKeyMissing{}).(string); ok {
		return notFound(v)
	}
	return nil
}

// parseAltKey reads key, "(appId='{guid}')", and returns the GUID in
// lower case; anything else is Graph's 400.
func parseAltKey(set, key string) (string, error) {
	inner, opened := strings.CutPrefix(key, "(")
	inner, closed := strings.CutSuffix(inner, ")")
	if !opened || !closed {
		return "", badRequest("Bad Request - Error in query syntax.")
	}
	prop, value, ok := strings.Cut(inner, "=")
	prop, value = strings.TrimSpace(prop), strings.TrimSpace(value)
	if !ok {
		return "", badRequest("Bad Request - Error in query syntax.")
	}
	if !strings.EqualFold(prop, "appId") {
		return "", badRequest("The alternate key '%s' is not supported on %s: use appId.", clip(prop), set)
	}
	if len(value) < 2 || value[0] != '\'' || value[len(value)-1] != '\'' {
		return "", badRequest("Bad Request - Error in query syntax: the value of appId is a quoted string, appId='{appId}'.")
	}
	appID, ok := gatehouse.NormalizeGUID(value[1 : len(value)-1])
	if !ok {
		return "", badRequest("Invalid object identifier '%s'.", clip(value[1:len(value)-1]))
	}
	return appID, nil
}
