package accounts

// The model catalog: the models an operator offers every OpenAI and
// AIServices account, as Azure offers its own. A deployment that names a
// catalog model in properties.model (format, name, version) and gives no
// properties.upstream forwards to the catalog's upstream for that model,
// with the catalog's credential. So a deployment made the Azure way — az
// cognitiveservices account deployment create, armcognitiveservices'
// DeploymentsClient, an ARM template — works unmodified; without a catalog
// every deployment must carry Gatehouse's properties.upstream extension,
// which those clients cannot send.
//
// The catalog is the node's configuration (serve --models FILE), read at
// start; nodes sharing a store should be given the same file. A deployment
// records that it comes from the catalog, not the upstream itself: the node
// resolves it when it loads the deployment, so a changed catalog (another
// upstream address, a rotated upstream key) applies to every deployment of
// the model at the node's next start. A node whose catalog lacks a model
// does not serve its deployments (logged) until it has it again.
//
//	PUT deployment {model: {format, name, version?}}   no properties.upstream
//	  → Catalog.Find: the model, and its default version when none is named
//	      found     → record {catalog: true, model with the version}
//	      not found → 400 DeploymentModelNotSupported (naming the offered models)
//	Load / change feed → dataPlane → Catalog.Find → upstream, model, credential
//	GET …/accounts/{name}/models, …/locations/{loc}/models → Catalog.Offers

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

// MaxCatalogModels bounds a catalog.
const MaxCatalogModels = 500

// CatalogModel is one model of the catalog and the upstream that serves it.
type CatalogModel struct {
	// Format is the model's format (default "OpenAI"); Name its name, as
	// deployments give them in properties.model.
	Format, Name string
	// Versions are the versions offered, the first the default; none: a
	// deployment may name any version (or none).
	Versions []string
	// Capabilities are shown in the model lists and on deployments
	// (Azure's, e.g. "chatCompletion": "true").
	Capabilities map[string]string
	// MaxCapacity bounds a deployment's sku capacity (0: no bound).
	MaxCapacity int
	// Quota bounds the capacity one subscription may deploy of the model
	// in one location, per sku (quota.go; 0: no quota).
	Quota int
	// Endpoint is the upstream's base URL; UpstreamModel the model name
	// sent upstream (default Name); KeyHeader and Key its credential, as a
	// deployment's properties.upstream has them.
	Endpoint, UpstreamModel, KeyHeader, Key string
}

// ModelOffer is one version of a catalog model, as the model lists show
// it. It carries nothing of the upstream.
type ModelOffer struct {
	Format, Name, Version string
	IsDefaultVersion      bool
	Capabilities          map[string]string
	MaxCapacity           int
}

// Catalog is an immutable set of models. The zero value and nil are empty.
type Catalog struct {
	models []*CatalogModel
	urls   map[*CatalogModel]*url.URL
}

// NewCatalog checks models (every problem at once) and returns the
// catalog. upstreams are the networks upstreams may be in (serve
// --upstream-networks), checked as for a deployment's own endpoint.
func NewCatalog(models []CatalogModel, upstreams netacl.Networks) (*Catalog, error) {
	if len(models) > MaxCatalogModels {
		return nil, fmt.Errorf("the catalog has %d models, at most %d are allowed", len(models), MaxCatalogModels)
	}
	c := &Catalog{urls: map[*CatalogModel]*url.URL{}}
	var problems []string
	seen := map[string]int{}
	for i := range models {
		m := models[i]
		m.Versions = slices.Clone(m.Versions)
		if m.Format == "" {
			m.Format = "OpenAI"
		}
		where := fmt.Sprintf("model %d (%s)", i+1, m.Name)
		add := func(format string, args ...any) { problems = append(problems, where+": "+fmt.Sprintf(format, args...)) }
		if m.Name == "" || len(m.Name) > 256 || !printable(m.Name) {
			add("name is required (at most 256 printable characters)")
		}
		if len(m.Format) > 64 || !printable(m.Format) || len(m.UpstreamModel) > 256 {
			add("format or upstream model is too long or not printable")
		}
		versions := map[string]bool{}
		for _, v := range m.Versions {
			if v == "" || len(v) > 64 || !printable(v) || versions[strings.ToLower(v)] {
				add("versions must be distinct, non-empty and at most 64 printable characters")
				break
			}
			versions[strings.ToLower(v)] = true
		}
		if m.MaxCapacity < 0 || m.Quota < 0 || m.Quota > UnlimitedQuota {
			add("maxCapacity and quota must not be negative (quota: at most %d)", UnlimitedQuota)
		}
		u, err := checkUpstream(m.Endpoint, m.KeyHeader, &m.Key, upstreams)
		if err != nil {
			var ge *gatehouse.Error
			errors.As(err, &ge)
			// The API's wording, with the catalog file's field names.
			add("%s", strings.ReplaceAll(ge.Message, "properties.upstream.", "upstream."))
		}
		k := strings.ToLower(m.Format + "\x00" + m.Name)
		if j, dup := seen[k]; dup {
			add("the same format and name as model %d", j)
		}
		seen[k] = i + 1
		c.models = append(c.models, &m)
		c.urls[&m] = u
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n  - "))
	}
	return c, nil
}

// Len is the number of models.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.models)
}

// Find returns the model format/name (case-insensitive; format "" is
// OpenAI) and the version a deployment of it gets: version itself when
// the model offers it (in the catalog's spelling) or offers any, the
// default version when version is "".
func (c *Catalog) Find(format, name, version string) (*CatalogModel, string, bool) {
	if c == nil {
		return nil, "", false
	}
	if format == "" {
		format = "OpenAI"
	}
	for _, m := range c.models {
		if !strings.EqualFold(m.Format, format) || !strings.EqualFold(m.Name, name) {
			continue
		}
		if len(m.Versions) == 0 {
			return m, version, true
		}
		if version == "" {
			return m, m.Versions[0], true
		}
		for _, v := range m.Versions {
			if strings.EqualFold(v, version) {
				return m, v, true
			}
		}
		return nil, "", false
	}
	return nil, "", false
}

// upstreamURL is m's parsed endpoint.
func (c *Catalog) upstreamURL(m *CatalogModel) *url.URL {
	u := *c.urls[m] // a copy: the caller's to keep
	return &u
}

// Offers lists every version of every model, in catalog order.
func (c *Catalog) Offers() []ModelOffer {
	if c == nil {
		return nil
	}
	var out []ModelOffer
	for _, m := range c.models {
		versions := m.Versions
		if len(versions) == 0 {
			versions = []string{""}
		}
		for i, v := range versions {
			out = append(out, ModelOffer{Format: m.Format, Name: m.Name, Version: v, IsDefaultVersion: i == 0,
				Capabilities: m.Capabilities, MaxCapacity: m.MaxCapacity})
		}
	}
	return out
}

// describe lists the catalog's models for an error message.
func (c *Catalog) describe() string {
	var names []string
	for _, m := range c.models {
		s := m.Format + "/" + m.Name
		if len(m.Versions) > 0 {
			s += " (" + strings.Join(m.Versions, ", ") + ")"
		}
		names = append(names, s)
		if len(names) == 10 && len(c.models) > 10 {
			names = append(names, fmt.Sprintf("and %d more", len(c.models)-10))
			break
		}
	}
	return strings.Join(names, ", ")
}

// validPort reports whether a URL's port is absent or 1-65535 (url.Parse
// takes any digits, and a deployment at :99999 would answer every request
// 502).
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// checkUpstream checks an upstream's base URL, key header and key (a
// deployment's properties.upstream or a catalog model's) and returns the
// parsed URL. A nil key is not checked (a PUT keeping the current one).
func checkUpstream(endpoint, keyHeader string, key *string, upstreams netacl.Networks) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || !validPort(u.Port()) ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(endpoint) > 2048 {
		return nil, badRequest("InvalidUpstream", "properties.upstream.endpoint",
			"properties.upstream.endpoint must be the absolute http or https base URL of an OpenAI-compatible server, without credentials, query or fragment.")
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !netacl.UpstreamAllowed(upstreams, a) {
		return nil, badRequest("InvalidUpstream", "properties.upstream.endpoint",
			"The upstream address %s is not in the networks this server may reach (serve --upstream-networks; link-local addresses never are).", a)
	}
	if h := keyHeader; h != "" {
		ok := len(h) <= 64
		for i := 0; ok && i < len(h); i++ {
			c := h[i]
			ok = alnum(c) || c == '-' || c == '_'
		}
		switch strings.ToLower(h) {
		case "host", "content-length", "content-type", "transfer-encoding", "connection", "cookie":
			ok = false
		}
		if !ok {
			return nil, badRequest("InvalidUpstream", "properties.upstream.keyHeader", "properties.upstream.keyHeader must be a plain header name (letters, digits, '-').")
		}
	}
	if k := key; k != nil {
		if len(*k) > 4096 || strings.ContainsAny(*k, "\r\n\x00") {
			return nil, badRequest("InvalidUpstream", "properties.upstream.key", "properties.upstream.key must be at most 4096 characters without line breaks.")
		}
	}
	return u, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
