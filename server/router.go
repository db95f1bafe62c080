package server

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Router dispatches by Host to the per-surface muxes (see doc.go).
type Router struct {
	hostname string // H without port, lower case
	// Root serves H itself.
	Root *http.ServeMux
	// Account serves {account}.cognitiveservices.H and {account}.openai.H.
	Account *http.ServeMux
	// Vault serves {vault}.vault.H.
	Vault *http.ServeMux

	// Direct, when set, is offered the data-plane requests before the
	// muxes: those at an account host, with the account from the host and
	// the whole path, and those under /ai/{account}/ at H, with the account
	// from the path and the path after it. It serves the request and
	// returns true, or returns false having done nothing, and the muxes
	// route it. The gateway sets it (gateway/direct.go).
	Direct func(w http.ResponseWriter, r *http.Request, account, rel string) bool

	// NotFound, when set, is offered the requests at H that no route of
	// Root matched, before the JSON 404 or 405: it serves one and returns
	// true, or returns false having done nothing. The authority sets it to
	// answer an unknown tenant's token and discovery paths as Entra ID
	// does (its tenants are registered literally, see authority.Mount).
	NotFound func(w http.ResponseWriter, r *http.Request) bool

	accountSuffixes []string
	vaultSuffix     string
}

// NewRouter returns a router for the public authority host (host[:port]).
// Each mux gets a JSON catch-all.
func NewRouter(host string) *Router {
	hn := strings.ToLower(Hostname(host))
	r := &Router{
		hostname:        hn,
		Root:            http.NewServeMux(),
		Account:         http.NewServeMux(),
		Vault:           http.NewServeMux(),
		accountSuffixes: []string{".cognitiveservices." + hn, ".openai." + hn},
		vaultSuffix:     ".vault." + hn,
	}
	r.Root.Handle("/", catchAll(r.Root, func(w http.ResponseWriter, req *http.Request) bool {
		return r.NotFound != nil && r.NotFound(w, req)
	}))
	for _, m := range []*http.ServeMux{r.Account, r.Vault} {
		m.Handle("/", catchAll(m, nil))
	}
	return r
}

// Hostname returns host without its port (and without IPv6 brackets).
func Hostname(host string) string {
	if strings.IndexByte(host, ':') < 0 {
		return host // no port: SplitHostPort would allocate its error
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// ServeHTTP routes by Host.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = normalizePath(r)
	hn := strings.ToLower(Hostname(r.Host))
	if hn == rt.hostname || net.ParseIP(hn) != nil {
		r = decodeScope(r)
		if rest, ok := strings.CutPrefix(r.URL.Path, "/ai/"); ok && rt.Direct != nil {
			if i := strings.IndexByte(rest, '/'); i > 0 && rt.Direct(w, r, rest[:i], rest[i:]) {
				return
			}
		}
		rt.Root.ServeHTTP(w, r)
		return
	}
	info := infoFrom(r.Context())
	for _, suffix := range rt.accountSuffixes {
		if name, ok := strings.CutSuffix(hn, suffix); ok && validLabel(name) {
			if info != nil {
				info.account = name
			}
			if rt.Direct != nil && rt.Direct(w, r, name, r.URL.Path) {
				return
			}
			rt.Account.ServeHTTP(w, r)
			return
		}
	}
	if name, ok := strings.CutSuffix(hn, rt.vaultSuffix); ok && validLabel(name) {
		if info != nil {
			info.vault = name
		}
		rt.Vault.ServeHTTP(w, r)
		return
	}
	RenderError(w, r, RenderAzure, gatehouse.NotFoundf(gatehouse.CodeNotFound,
		"No Gatehouse surface is served at host %q.", clip(r.Host, 100)))
}

// decodeScope returns r with the encoded slashes of a management path that
// begins with one decoded: ARM's scope-addressed operations take the scope
// ("/subscriptions/…/resourceGroups/g") as one path parameter, and the
// Python SDK's generated clients escape it whole (management_locks
// *_by_scope send "/%2Fsubscriptions%2F…/providers/Microsoft.Authorization/locks"),
// which ARM routes as the plain path; Go's armlocks escapes a scope
// written without its leading slash, as its examples write it
// ("subscriptions/{sub}/resourceGroups/g" → "/subscriptions%2F…"). Only
// such paths are touched: "%2F" inside a later segment stays the mux's
// and armapi's to refuse.
func decodeScope(r *http.Request) *http.Request {
	raw := r.URL.RawPath
	encodedFirst := len(raw) >= 4 && raw[0] == '/' && raw[1] == '%' && raw[2] == '2' && (raw[3] == 'F' || raw[3] == 'f')
	if !encodedFirst && !(len(raw) > 17 && strings.EqualFold(raw[:17], "/subscriptions%2F")) {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = squeeze(u.Path), ""
	r2.URL = &u
	return r2
}

// normalizePath returns r with every run of slashes in its path reduced
// to one and its "." and ".." segments resolved (RFC 3986 §5.2.4), as
// nginx does before routing. SDKs join an endpoint that ends in "/" (as
// Azure advertises them, and as properties.endpoint does here) with a
// path that starts with one: @azure/ai-language-text 1.1.0 posts to
// "{endpoint}/language/:analyze-text", i.e. ".../ai/acct//language/...".
// Azure serves such paths as they are. http.ServeMux would instead answer
// 307 to the cleaned path (with an HTML body), and the SDKs' redirect
// policy (@typespec/ts-http-runtime redirectPolicy) deletes the
// Authorization header before following it: every bearer-authenticated
// call failed with 401. No route of any surface has an empty or a dot
// segment, so normalizing loses nothing, and routing, authorization and
// the audit log all see the one path that is served. Encoded slashes
// (%2F) are left to the mux.
func normalizePath(r *http.Request) *http.Request {
	double := strings.Contains(r.URL.Path, "//") && strings.Contains(r.URL.EscapedPath(), "//")
	dots := hasDotSegment(r.URL.Path)
	if !double && !dots {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	if dots {
		// The escaped form may hide the dots (%2E): path.Clean of the
		// decoded path is what is routed, and RawPath is dropped unless
		// it cleans to the same path (then it keeps escapes such as %3A).
		u.Path = cleanPath(u.Path)
		if u.RawPath != "" {
			if raw := cleanPath(u.RawPath); unescapesTo(raw, u.Path) {
				u.RawPath = raw
			} else {
				u.RawPath = ""
			}
		}
	} else {
		u.Path = squeeze(u.Path)
		if u.RawPath != "" {
			u.RawPath = squeeze(u.RawPath)
		}
	}
	r2.URL = &u
	return r2
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for i := strings.Index(p, "/."); i >= 0; {
		rest := p[i+2:]
		if rest == "" || rest[0] == '/' || rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
			return true
		}
		j := strings.Index(rest, "/.")
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	if c != "/" && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")) {
		c += "/"
	}
	return c
}

func unescapesTo(raw, p string) bool {
	u, err := url.PathUnescape(raw)
	return err == nil && u == p
}

func squeeze(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// validLabel reports whether s is one DNS label (no dots).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var allMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// catchAll answers requests no pattern of m matched: 405 with Allow when the
// path exists for another method, 404 otherwise, both as JSON.
func catchAll(m *http.ServeMux, first func(http.ResponseWriter, *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first != nil && first(w, r) {
			return
		}
		var allow []string
		for _, method := range allMethods {
			if method == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = method
			if _, pattern := m.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, method)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			RenderError(w, r, RenderAzure, gatehouse.Errorf(http.StatusMethodNotAllowed,
				gatehouse.CodeMethodNotAllowed, "The method %s is not allowed for this path.", clip(r.Method, 20)))
			return
		}
		RenderError(w, r, RenderAzure, gatehouse.NotFoundf(gatehouse.CodeNotFound,
			"The requested path was not found."))
	})
}
