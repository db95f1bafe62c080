package directory

import (
	"context"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Applications that expose an API: an application is a resource other
// principals get tokens for when it has a service principal. Its resource
// is named by its application id (bare, or as api://{appId}) and by the
// identifier URIs it declares (Graph's identifierUris, the portal's
// "Application ID URI"), each unique in its tenant.

// MaxIdentifierURIs bounds an application's identifier URIs.
const MaxIdentifierURIs = 50

// maxIdentifierURI is Entra's length limit for one.
const maxIdentifierURI = 255

// NormalizeIdentifierURI is the comparison form of a resource name: lower
// case, without trailing slashes (as clients write the resource of
// "{resource}/.default" with or without one).
func NormalizeIdentifierURI(uri string) string {
	return strings.ToLower(strings.TrimRight(uri, "/"))
}

// validIdentifierURIs checks a declared list: api:// or https:// URIs with
// a host, without query, fragment, wildcard or user info, none twice.
// reserved, when set, refuses a name another resource answers to.
func validIdentifierURIs(uris []string, reserved func(string) bool) ([]string, error) {
	if len(uris) > MaxIdentifierURIs {
		return nil, invalid("identifierUris", "An application has at most %d identifier URIs.", MaxIdentifierURIs)
	}
	out := make([]string, 0, len(uris))
	seen := map[string]bool{}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		switch {
		case raw == "" || len(raw) > maxIdentifierURI:
			return nil, invalid("identifierUris", "An identifier URI has 1 to %d characters.", maxIdentifierURI)
		case err != nil || (u.Scheme != "api" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
			return nil, invalid("identifierUris", "Identifier URI %q must be an absolute api:// or https:// URI, such as api://{appId}.", clip(raw))
		case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "*?# \t") || u.User != nil:
			return nil, invalid("identifierUris", "Identifier URI %q must not contain a query, a fragment, user information, spaces or wildcards.", clip(raw))
		case strings.HasSuffix(u.Path, "/.default") || u.Path == "/.default":
			return nil, invalid("identifierUris", "Identifier URI %q must not end in /.default.", clip(raw))
		}
		key := NormalizeIdentifierURI(raw)
		if seen[key] {
			return nil, invalid("identifierUris", "Identifier URI %q is listed twice.", clip(raw))
		}
		if reserved != nil && reserved(key) {
			return nil, invalid("identifierUris", "Identifier URI %q names a resource of this server; choose another (api://{appId} always works).", clip(raw))
		}
		seen[key] = true
		out = append(out, raw)
	}
	return out, nil
}

// SetIdentifierURIs replaces the identifier URIs of the application whose
// id (any of its three ids) is id. reserved, when set, names resources an
// application may not claim (the server's own). ErrNotFound, ErrInvalid
// (also when another application of the tenant has one of them).
func (d *Directory) SetIdentifierURIs(ctx context.Context, id string, uris []string, reserved func(string) bool) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	uris, err := validIdentifierURIs(uris, reserved)
	if err != nil {
		return nil, err
	}
	e, err = d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if slices.Equal(r.IdentifierURIs, uris) {
			return errNoChange
		}
		for _, u := range uris {
			if other := d.apiByName(r.TenantID, u); other != nil && other.rec.ObjectID != r.ObjectID {
				// Graph answers 400 Request_BadRequest here, not 409.
				return invalid("identifierUris", "Another object with the same value for property identifierUris already exists: %q.", clip(u))
			}
		}
		r.IdentifierURIs = uris
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// API returns the application of tenantID whose API resource is named
// resource: its application id (bare or api://{appId}) or one of its
// identifier URIs, in any case and with or without a trailing slash.
// ErrNotFound when no application is; ErrNoServicePrincipal or ErrDisabled
// when it cannot be a token's audience now.
func (d *Directory) API(tenantID, resource string) (*Application, error) {
	e := d.apiByName(tenantID, resource)
	switch {
	case e == nil:
		return nil, ErrNotFound
	case !e.rec.ServicePrincipal:
		return nil, ErrNoServicePrincipal
	case !e.rec.Enabled:
		return nil, ErrDisabled
	}
	return e.application(), nil
}

// apiByName finds the application of tenantID a resource name means.
func (d *Directory) apiByName(tenantID, resource string) *entry {
	key := NormalizeIdentifierURI(resource)
	appID := strings.TrimPrefix(key, "api://")
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e := d.byAppID[appID]; e != nil && e.rec.Kind == kindApplication && e.rec.TenantID == tenantID {
		return e
	}
	if e := d.byIdentifierURI[apiKey(tenantID, key)]; e != nil && e.rec.Kind == kindApplication {
		return e
	}
	return nil
}

// APINames are the names an application's API answers to, normalized: its
// application id, api://{appId} and its identifier URIs.
func (a *Application) APINames() []string {
	out := []string{NormalizeIdentifierURI(a.AppID), "api://" + NormalizeIdentifierURI(a.AppID)}
	for _, u := range a.IdentifierURIs {
		out = append(out, NormalizeIdentifierURI(u))
	}
	return out
}

func apiKey(tenantID, normalized string) string { return tenantID + " " + normalized }

// Redirect URIs: where the authorization endpoint may send a person's
// browser back with a code for the application, besides the loopback
// addresses every public client may use (RFC 8252). Web redirect URIs
// (Graph's web.redirectUris) belong to a confidential web app: a code
// sent there is redeemed only with the application's own credential.
// Public client redirect URIs (publicClient.redirectUris) belong to
// native apps, which redeem with PKCE alone.

// MaxRedirectURIs bounds an application's redirect URIs of one kind.
const MaxRedirectURIs = 256

// validRedirectURIs checks a list: absolute URIs without fragment,
// wildcard or user info, at most 256 characters, https (web) — http only
// for a loopback host — and none twice.
func validRedirectURIs(field string, uris []string, web bool) ([]string, error) {
	if len(uris) > MaxRedirectURIs {
		return nil, invalid(field, "An application has at most %d redirect URIs of a kind.", MaxRedirectURIs)
	}
	out := make([]string, 0, len(uris))
	seen := map[string]bool{}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		switch {
		case raw == "" || len(raw) > 256:
			return nil, invalid(field, "A redirect URI has 1 to 256 characters.")
		case err != nil || !u.IsAbs() || u.Fragment != "" || strings.ContainsAny(raw, "*# \t") || u.User != nil:
			return nil, invalid(field, "Redirect URI %q must be an absolute URI without a fragment, wildcards or user information.", clip(raw))
		case scriptSchemes[strings.ToLower(u.Scheme)]:
			return nil, invalid(field, "Redirect URI %q: the scheme %s: cannot be a redirect URI.", clip(raw), u.Scheme)
		case u.Scheme == "http" && !LoopbackHost(u.Hostname()):
			return nil, invalid(field, "Redirect URI %q: http is allowed only for localhost; use https.", clip(raw))
		case web && u.Scheme != "https" && u.Scheme != "http", (u.Scheme == "https" || u.Scheme == "http") && u.Host == "":
			return nil, invalid(field, "Redirect URI %q must be an https URI with a host.", clip(raw))
		case !plainHost(u.Hostname()):
			return nil, invalid(field, "Redirect URI %q: the host may hold only letters, digits, dots, dashes and an IP address's colons.", clip(raw))
		case seen[raw]:
			return nil, invalid(field, "Redirect URI %q is listed twice.", clip(raw))
		}
		seen[raw] = true
		out = append(out, raw)
	}
	return out, nil
}

// scriptSchemes run or read in the browser instead of reaching an app.
var scriptSchemes = map[string]bool{"javascript": true, "data": true, "vbscript": true, "file": true, "about": true,
	"blob": true, "filesystem": true}

// plainHost: a DNS name or IP address, nothing a header or a page could
// read otherwise (the form_post page's CSP names the redirect's origin).
func plainHost(h string) bool {
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// LoopbackHost reports whether h (a URL's Hostname) is localhost or a
// loopback address: where RFC 8252 lets any public client receive codes.
func LoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// SetRedirectURIs replaces the web and/or public client redirect URIs (a
// nil list is left alone) of the application whose id is id. ErrNotFound,
// ErrInvalid.
func (d *Directory) SetRedirectURIs(ctx context.Context, id string, web, public *[]string) (*Application, error) {
	e := d.findApp(id)
	if e == nil {
		return nil, notFound("The application %q does not exist.", clip(id))
	}
	var w, p []string
	var err error
	if web != nil {
		if w, err = validRedirectURIs("web.redirectUris", *web, true); err != nil {
			return nil, err
		}
	}
	if public != nil {
		if p, err = validRedirectURIs("publicClient.redirectUris", *public, false); err != nil {
			return nil, err
		}
	}
	e, err = d.update(ctx, e.rec.ObjectID, kindApplication, func(r *record) error {
		if web != nil {
			r.WebRedirectURIs = w
		}
		if public != nil {
			r.PublicRedirectURIs = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e.application(), nil
}

// RedirectKind is how an application registered a redirect URI.
type RedirectKind int

const (
	RedirectUnregistered RedirectKind = iota
	RedirectWeb                       // web.redirectUris: a confidential client's
	RedirectPublic                    // publicClient.redirectUris: a native app's
)

// Redirect reports how the application registered uri (exact match).
func (a *Application) Redirect(uri string) RedirectKind {
	switch {
	case slices.Contains(a.WebRedirectURIs, uri):
		return RedirectWeb
	case slices.Contains(a.PublicRedirectURIs, uri):
		return RedirectPublic
	}
	return RedirectUnregistered
}
