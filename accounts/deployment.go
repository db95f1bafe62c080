package accounts

// Deployments (Microsoft.CognitiveServices/accounts/deployments) map a name
// clients use in /openai/deployments/{name}/… to an OpenAI-compatible
// upstream: its base URL, its model name and its own credential. This file
// is the gateway engineer's (issue 5) addition to the package; it shares
// nothing mutable with the account Service.
//
//	kind                 key                              ref            sealed
//	accounts.deployment  {internalId}/{name, lower-case}  {internalId}   {"key": upstream credential}
//
// The upstream credential is either that sealed key or a Key Vault secret
// reference (keyVaultSecret, https://{vault}.vault.H/secrets/{name}[/{version}]),
// never both: the node reads a referenced secret as the account's managed
// identity when it forwards (app/upstream.go), so rotating the secret
// needs no change here.
//
// Deployments belong to an account instance, not to its ARM id: they are
// keyed by the account's internalId, so an account deleted and created
// again under the same id starts without the old deployments (and their
// upstream credentials). Service.Delete deletes an account's deployments
// with it; orphans an interrupted delete left are invisible to the data
// plane (which finds the account first) and to the API, and
// Service.PurgeOrphans removes them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/storage"
)

// KindDeployment is the storage kind of deployments.
const KindDeployment = "accounts.deployment"

// DeploymentType is the ARM type of deployments.
const DeploymentType = Type + "/deployments"

// MaxDeploymentsPerAccount bounds an account's deployments.
const MaxDeploymentsPerAccount = 100

// DeploymentModel is properties.model.
type DeploymentModel struct {
	Format  string `json:"format,omitempty"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// DeploymentSKU is the deployment's sku. Its capacity bounds the
// deployment's tokens and requests per minute when the gateway enforces
// deployment quotas (serve --deployment-quotas); otherwise it is kept.
type DeploymentSKU struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity,omitempty"`
}

// Upstream is the public description of a deployment's upstream (a
// Gatehouse extension, properties.upstream). The credential is write-only:
// HasKey says whether one is set.
type Upstream struct {
	// Endpoint is the upstream's base URL; requests go to {Endpoint}/v1/….
	Endpoint string `json:"endpoint"`
	// Model is the model name sent upstream (default: the deployment's
	// model name).
	Model string `json:"model,omitempty"`
	// KeyHeader carries the key: "" = "Authorization: Bearer <key>", any
	// other header name receives the key as is (e.g. "api-key").
	KeyHeader string `json:"keyHeader,omitempty"`
	HasKey    bool   `json:"hasKey"`
	// KeyVaultSecret is the Key Vault secret reference the credential is
	// read from ("" = none). It names the secret, it is not one.
	KeyVaultSecret string `json:"keyVaultSecret,omitempty"`
}

// Deployment is a deployment as the API shows it: no credential.
type Deployment struct {
	ID        string
	AccountID string
	Name      string
	Model     DeploymentModel
	SKU       DeploymentSKU
	// Upstream is the deployment's own upstream; when Catalog, the model
	// catalog's serves it and Upstream is empty.
	Upstream Upstream
	Catalog  bool
	// Capabilities are the catalog model's (nil for other deployments).
	Capabilities map[string]string
	// RaiPolicyName and VersionUpgradeOption are as given, or Azure's
	// defaults.
	RaiPolicyName, VersionUpgradeOption string
	// ScaleType is the scaleSettings.scaleType of API versions before
	// 2023-05-01 as given ("Standard" or "Manual"; "" when none was).
	ScaleType string
	Tags      map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy Actor
	UpdatedBy Actor
	Revision  int64
}

// DeploymentSpec is what a PUT asks for.
type DeploymentSpec struct {
	Model DeploymentModel
	SKU   *DeploymentSKU
	// Endpoint, UpstreamModel and KeyHeader describe the upstream.
	Endpoint, UpstreamModel, KeyHeader string
	// Key is the upstream's credential: nil keeps the current one (for
	// the same Endpoint and KeyHeader only: PutDeployment), "" removes it.
	Key *string
	// KeyVaultSecret, when set, is a Key Vault secret reference the
	// credential is read from instead; it removes a sealed Key, and giving
	// both is refused.
	KeyVaultSecret string

	// RaiPolicyName and VersionUpgradeOption are Azure's deployment
	// settings, kept and shown (Gatehouse applies no content filter and
	// upgrades no model); "" shows Azure's defaults.
	RaiPolicyName, VersionUpgradeOption string
	// ScaleType is scaleSettings.scaleType (older API versions), kept
	// and shown: "Standard", "Manual" or "".
	ScaleType string
	// Tags are the deployment's tags (the caller validates them).
	Tags map[string]string

	// catalog: no upstream was given and the model is the catalog's
	// (validateDeploymentSpec).
	catalog bool
}

// DataPlaneDeployment is what the gateway needs to forward a request,
// credential included. Values are shared and immutable.
type DataPlaneDeployment struct {
	Name      string
	Upstream  *url.URL
	Model     string
	Key       string
	KeyHeader string
	// KeyVaultSecret is the secret reference to read the credential from
	// ("" = Key, or no credential).
	KeyVaultSecret string
	// Capacity is the sku's capacity (the gateway's deployment quotas).
	Capacity int
	// Catalog: the model catalog's upstream (not subject to the account's
	// outbound restriction).
	Catalog bool
}

type deploymentRecord struct {
	ID            string          `json:"id"`
	AccountID     string          `json:"accountId"`
	Name          string          `json:"name"`
	Model         DeploymentModel `json:"model"`
	SKU           DeploymentSKU   `json:"sku"`
	Endpoint      string          `json:"endpoint"`
	UpstreamModel string          `json:"upstreamModel,omitempty"`
	KeyHeader     string          `json:"keyHeader,omitempty"`
	HasKey        bool            `json:"hasKey,omitempty"`
	// KeyVaultSecret is the credential's secret reference.
	KeyVaultSecret string `json:"keyVaultSecret,omitempty"`
	// Catalog: the upstream is the model catalog's for Model (catalog.go);
	// Endpoint and the credential are empty.
	Catalog bool `json:"catalog,omitempty"`
	// RaiPolicyName, VersionUpgradeOption and Tags: DeploymentSpec's.
	RaiPolicyName        string            `json:"raiPolicyName,omitempty"`
	VersionUpgradeOption string            `json:"versionUpgradeOption,omitempty"`
	ScaleType            string            `json:"scaleType,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	CreatedAt            time.Time         `json:"createdAt"`
	UpdatedAt            time.Time         `json:"updatedAt"`
	CreatedBy            actorRecord       `json:"createdBy"`
	UpdatedBy            actorRecord       `json:"updatedBy"`
}

type sealedDeploymentKey struct {
	Key string `json:"key"`
}

func (r *deploymentRecord) view(rev int64) *Deployment {
	up := Upstream{Endpoint: r.Endpoint, Model: r.UpstreamModel, KeyHeader: r.KeyHeader, HasKey: r.HasKey,
		KeyVaultSecret: r.KeyVaultSecret}
	if r.Catalog {
		up = Upstream{}
	}
	rai, vuo := r.RaiPolicyName, r.VersionUpgradeOption
	if rai == "" {
		rai = DefaultRaiPolicy
	}
	if vuo == "" {
		vuo = versionUpgradeOptions[0]
	}
	return &Deployment{ID: r.ID, AccountID: r.AccountID, Name: r.Name, Model: r.Model, SKU: r.SKU, Upstream: up, Catalog: r.Catalog,
		RaiPolicyName: rai, VersionUpgradeOption: vuo, ScaleType: r.ScaleType, Tags: r.Tags,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CreatedBy: Actor(r.CreatedBy), UpdatedBy: Actor(r.UpdatedBy), Revision: rev}
}

// view is r as the API shows it, with the catalog model's capabilities.
func (d *Deployments) view(r *storage.Record[deploymentRecord]) *Deployment {
	v := r.Value.view(r.Revision)
	if v.Catalog {
		if m, _, ok := d.catalog.Load().Find(v.Model.Format, v.Model.Name, v.Model.Version); ok {
			v.Capabilities = m.Capabilities
		}
	}
	return v
}

// Catalog is the model catalog deployments may name (nil: none).
func (d *Deployments) Catalog() *Catalog { return d.catalog.Load() }

// SetCatalog replaces the model catalog (serve's SIGHUP) and reloads the
// index, so deployments of catalog models are served by the new catalog's
// upstreams from the next request (and those of a model it lacks no
// longer are). Other nodes keep their own catalog.
func (d *Deployments) SetCatalog(ctx context.Context, c *Catalog) error {
	d.catalog.Store(c)
	return d.Load(ctx)
}

// DeploymentOptions configure Deployments.
type DeploymentOptions struct {
	// Sealer is required.
	Sealer Sealer
	// ParseSecretReference, when set, checks a keyVaultSecret reference
	// (vault.Service.ParseReference: this deployment's vault host form);
	// without it only the URL's shape is checked.
	ParseSecretReference func(uri string) error
	// UpstreamNetworks are the networks upstreams may be in (empty: any
	// but link-local and cloud platform addresses; netacl.UpstreamAllowed): an endpoint whose host is an
	// address outside them is refused here; the gateway checks every
	// resolved address when it connects.
	UpstreamNetworks netacl.Networks
	// Catalog is the models deployments may name without an upstream
	// (catalog.go); nil: none.
	Catalog *Catalog
	Now     func() time.Time
	Logger  *slog.Logger
}

// Deployments manages deployments and keeps the in-memory index the
// gateway reads (Lookup). Safe for concurrent use.
type Deployments struct {
	table   *storage.Table[deploymentRecord]
	watcher *storage.Watcher
	opts    DeploymentOptions
	bg      context.Context

	// catalog is the model catalog (opts.Catalog, then SetCatalog's).
	catalog atomic.Pointer[Catalog]
	// loadMu serializes Load and apply: a change applied while Load reads
	// the table would be lost when Load swaps in its index, and a Load for
	// a new catalog must not be overwritten by an entry resolved with the
	// old one.
	loadMu sync.Mutex

	mu    sync.RWMutex
	index map[string]*DataPlaneDeployment // storage key

	// accounts is the accounts' table, read for the model quotas
	// (quota.go); quotaMu serializes a quota's check with the write.
	accounts *storage.Table[record]
	quotaMu  sync.Mutex

	reload storage.Reloader
}

// NewDeployments returns the service over store, subscribed to w. Call
// Load after w.Start.
func NewDeployments(ctx context.Context, store storage.Objects, w *storage.Watcher, opts DeploymentOptions) *Deployments {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Deployments{table: storage.NewTable[deploymentRecord](store, KindDeployment), watcher: w, opts: opts,
		bg: ctx, index: map[string]*DataPlaneDeployment{}, accounts: storage.NewTable[record](store, KindAccount)}
	d.catalog.Store(opts.Catalog)
	d.reload.Name, d.reload.Load, d.reload.Logger = "deployments", d.Load, opts.Logger
	w.Subscribe(d.apply, KindDeployment)
	return d
}

func deploymentKey(acct *Account, name string) string {
	return strings.ToLower(acct.InternalID) + "/" + strings.ToLower(name)
}

// Load reads every deployment into the index.
func (d *Deployments) Load(ctx context.Context) error {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	recs, err := d.table.Collect(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("accounts: load deployments: %w", err)
	}
	cat := d.catalog.Load()
	index := make(map[string]*DataPlaneDeployment, len(recs))
	for _, r := range recs {
		if dp, err := d.dataPlane(r, cat); err == nil {
			index[r.Key] = dp
		} else {
			d.opts.Logger.Error("accounts: a deployment cannot be served", "deployment", r.Value.ID, "err", err)
		}
	}
	d.mu.Lock()
	d.index = index
	d.mu.Unlock()
	return nil
}

// dataPlane opens a record's credential and parses its upstream.
// A deployment of a catalog model is resolved with cat.
func (d *Deployments) dataPlane(r *storage.Record[deploymentRecord], cat *Catalog) (*DataPlaneDeployment, error) {
	if r.Value.Catalog {
		m, _, ok := cat.Find(r.Value.Model.Format, r.Value.Model.Name, r.Value.Model.Version)
		if !ok {
			return nil, fmt.Errorf("the model %s/%s version %q is not in this node's model catalog (serve --models)",
				r.Value.Model.Format, r.Value.Model.Name, r.Value.Model.Version)
		}
		dp := &DataPlaneDeployment{Name: r.Value.Name, Upstream: cat.upstreamURL(m), Model: m.UpstreamModel,
			Key: m.Key, KeyHeader: m.KeyHeader, Capacity: r.Value.SKU.Capacity, Catalog: true}
		if dp.Model == "" {
			dp.Model = m.Name
		}
		return dp, nil
	}
	u, err := url.Parse(r.Value.Endpoint)
	if err != nil {
		return nil, err
	}
	dp := &DataPlaneDeployment{Name: r.Value.Name, Upstream: u, Model: r.Value.UpstreamModel, KeyHeader: r.Value.KeyHeader,
		KeyVaultSecret: r.Value.KeyVaultSecret, Capacity: r.Value.SKU.Capacity}
	if dp.Model == "" {
		dp.Model = r.Value.Model.Name
	}
	if len(r.Sealed) > 0 {
		plain, err := d.opts.Sealer.Open(r.Sealed, keyring.AAD(KindDeployment, r.Key))
		if err != nil {
			return nil, fmt.Errorf("open upstream key: %w", err)
		}
		var k sealedDeploymentKey
		err = json.Unmarshal(plain, &k)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("upstream key does not decode: %w", err)
		}
		dp.Key = k.Key
	}
	return dp, nil
}

func (d *Deployments) apply(c storage.Change) {
	if c.Reset {
		go d.reload.Soon(d.bg)
		return
	}
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	ctx, cancel := context.WithTimeout(d.bg, 10*time.Second)
	defer cancel()
	r, err := d.table.Get(ctx, c.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		d.mu.Lock()
		delete(d.index, c.Key)
		d.mu.Unlock()
	case err != nil:
		d.opts.Logger.Warn("accounts: re-reading a deployment failed; reloading", "err", err)
		go d.reload.Soon(d.bg)
	default:
		dp, err := d.dataPlane(r, d.catalog.Load())
		d.mu.Lock()
		if err != nil {
			d.opts.Logger.Error("accounts: a deployment cannot be served", "deployment", r.Value.ID, "err", err)
			delete(d.index, c.Key)
		} else {
			d.index[c.Key] = dp
		}
		d.mu.Unlock()
	}
}

// Lookup returns the deployment name of the account instance with
// internal id internalID, from memory. The data plane calls it on every
// proxied request.
func (d *Deployments) Lookup(internalID, name string) (*DataPlaneDeployment, bool) {
	// The key is built on the stack: a map lookup by string(b) does not
	// allocate, where the concatenation would on every request.
	var buf [192]byte
	var b []byte
	ok := true
	if lowerASCII(internalID) && lowerASCII(name) {
		// What requests carry: copied whole, not a byte at a time.
		b = append(append(append(buf[:0], internalID...), '/'), name...)
	} else if b, ok = appendLowerASCII(buf[:0], internalID); ok {
		b = append(b, '/')
		b, ok = appendLowerASCII(b, name)
	}
	if !ok {
		b = []byte(strings.ToLower(internalID) + "/" + strings.ToLower(name))
	}
	d.mu.RLock()
	dp, found := d.index[string(b)]
	d.mu.RUnlock()
	return dp, found
}

// lowerASCII reports whether s is ASCII without upper-case letters.
// Eight bytes at a time (a lookup's ID and name are ~50 bytes): a byte is
// refused when its top bit is set or, with it cleared, it is in 'A'..'Z'
// (per-byte sums of at most 0x7f + 0x3f carry nothing into the next byte).
func lowerASCII(s string) bool {
	const lsb, msb, low7 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	for ; len(s) >= 8; s = s[8:] {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		y := x & low7
		upper := (y + lsb*(0x80-'A')) &^ (y + lsb*(0x7f-'Z'))
		if (x|upper)&msb != 0 {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// appendLowerASCII appends s lower-cased to b; false (and b unchanged in
// meaning) if s is not ASCII.
func appendLowerASCII(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return b, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b, true
}

// Names returns the names of the deployments of the account instance with
// internal id internalID, sorted, from memory.
func (d *Deployments) Names(internalID string) []string {
	prefix := strings.ToLower(internalID) + "/"
	var out []string
	d.mu.RLock()
	for k, dp := range d.index {
		if strings.HasPrefix(k, prefix) {
			out = append(out, dp.Name)
		}
	}
	d.mu.RUnlock()
	slices.Sort(out)
	return out
}

// DeploymentKinds are the account kinds that have deployments.
var DeploymentKinds = []string{"OpenAI", "AIServices"}

// ValidateDeploymentName applies Azure's rule: 2 to 64 characters,
// letters, digits, '-', '_' and '.', starting with a letter or digit.
func ValidateDeploymentName(name string) error {
	ok := len(name) >= 2 && len(name) <= 64 && alnum(name[0])
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = alnum(c) || c == '-' || c == '_' || c == '.'
	}
	if !ok {
		return badRequest("InvalidResourceName", "name",
			"The deployment name '%s' is invalid: use 2 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit.", clip(name))
	}
	return nil
}

func (d *Deployments) validateDeploymentSpec(spec *DeploymentSpec) error {
	if spec.Model.Name == "" || len(spec.Model.Name) > 256 {
		return badRequest("InvalidDeploymentModel", "properties.model.name", "properties.model.name is required (at most 256 characters).")
	}
	if spec.Model.Format == "" {
		spec.Model.Format = "OpenAI"
	}
	if len(spec.Model.Format) > 64 || len(spec.Model.Version) > 64 || len(spec.UpstreamModel) > 256 {
		return badRequest("InvalidDeploymentModel", "properties.model", "The model format, version or upstream model name is too long.")
	}
	if spec.SKU == nil {
		spec.SKU = &DeploymentSKU{Name: "Standard", Capacity: 1}
	}
	if err := checkDeploymentSKU(spec.SKU); err != nil {
		return err
	}
	if len(spec.RaiPolicyName) > 256 || !printable(spec.RaiPolicyName) {
		return badRequest("InvalidRaiPolicyName", "properties.raiPolicyName", "properties.raiPolicyName must be at most 256 printable characters.")
	}
	var err error
	if spec.VersionUpgradeOption, err = oneOf(spec.VersionUpgradeOption, versionUpgradeOptions, "InvalidVersionUpgradeOption",
		"properties.versionUpgradeOption"); err != nil {
		return err
	}
	if spec.ScaleType, err = oneOf(spec.ScaleType, scaleTypes, "InvalidScaleType", "properties.scaleSettings.scaleType"); err != nil {
		return err
	}
	if spec.Endpoint == "" && spec.UpstreamModel == "" && spec.KeyHeader == "" && spec.KeyVaultSecret == "" &&
		(spec.Key == nil || *spec.Key == "") {
		return d.fromCatalog(spec)
	}
	if _, err := checkUpstream(spec.Endpoint, spec.KeyHeader, spec.Key, d.opts.UpstreamNetworks); err != nil {
		return err
	}
	if ref := spec.KeyVaultSecret; ref != "" {
		if spec.Key != nil && *spec.Key != "" {
			return badRequest("InvalidUpstream", "properties.upstream.keyVaultSecret",
				"Give properties.upstream.key or properties.upstream.keyVaultSecret, not both.")
		}
		u, err := url.Parse(ref)
		ok := err == nil && u.Scheme == "https" && u.Host != "" && len(ref) <= 2048
		if ok && d.opts.ParseSecretReference != nil {
			ok = d.opts.ParseSecretReference(ref) == nil
		}
		if !ok {
			return badRequest("InvalidUpstream", "properties.upstream.keyVaultSecret",
				"properties.upstream.keyVaultSecret must be a Key Vault secret identifier of this server: https://{vault}.vault.{host}/secrets/{name}[/{version}].")
		}
	}
	return nil
}

// CodeOutboundRestricted refuses an upstream outside an account's
// allowedFqdnList (restrictOutboundNetworkAccess).
const CodeOutboundRestricted = "OutboundNetworkAccessRestricted"

// DefaultRaiPolicy is the content filter policy deployments show when
// none was given (Azure's default).
const DefaultRaiPolicy = "Microsoft.DefaultV2"

// versionUpgradeOptions are Azure's, the first the default.
var versionUpgradeOptions = []string{"OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade"}

// oneOf gives v ("" stays "") the spelling of the choice it names in any
// case, or refuses it with code naming target and the choices.
func oneOf(v string, choices []string, code, target string) (string, error) {
	if v == "" {
		return "", nil
	}
	i := slices.IndexFunc(choices, func(o string) bool { return strings.EqualFold(o, v) })
	if i < 0 {
		return "", badRequest(code, target, "%s must be one of %s.", target, strings.Join(choices, ", "))
	}
	return choices[i], nil
}

// scaleTypes are the scaleSettings.scaleType values of API versions
// before 2023-05-01 (az 2.45 sends Manual).
var scaleTypes = []string{"Standard", "Manual"}

// ModelSKUs are the deployment SKUs the catalog's models are offered in,
// as the model lists show them (Azure's usual two). A catalog deployment
// must use one; a deployment with an upstream of its own may name any.
var ModelSKUs = []string{"Standard", "GlobalStandard"}

// checkModelSKU gives sku (of a deployment of the catalog's model m at
// version) its canonical name, or refuses one the model is not offered in
// with Azure's 400 InvalidResourceProperties.
func checkModelSKU(sku *DeploymentSKU, m *CatalogModel, version string) error {
	i := slices.IndexFunc(ModelSKUs, func(n string) bool { return strings.EqualFold(n, sku.Name) })
	if i < 0 {
		// Azure's message, then the choices.
		return badRequest("InvalidResourceProperties", "sku.name",
			"The specified SKU '%s' of account deployment is not supported by the model '%s' version: '%s'. Use %s.",
			clip(sku.Name), clip(m.Name), clip(version), strings.Join(ModelSKUs, " or "))
	}
	sku.Name = ModelSKUs[i]
	return nil
}

// CheckDeploymentCapacity refuses a deployment capacity below 1 with
// Azure's 400 InvalidCapacity. A capacity is what the deployment quotas
// and the regional quota count: 0 would count as nothing and be served
// without a limit.
func CheckDeploymentCapacity(n int) error {
	if n < 1 {
		return badRequest("InvalidCapacity", "sku.capacity",
			"The specified capacity '%d' of account deployment should be greater than 0.", n)
	}
	return nil
}

// DeploymentSKUs are the sku names Azure gives deployments; one with an
// upstream of its own may have any of them (a catalog model's, only
// ModelSKUs).
var DeploymentSKUs = []string{"Standard", "GlobalStandard", "DataZoneStandard", "ProvisionedManaged",
	"GlobalProvisionedManaged", "DataZoneProvisionedManaged", "GlobalBatch", "DataZoneBatch", "DeveloperTier"}

// checkDeploymentSKU refuses a sku without a name, with a name Azure does
// not have, or with a capacity below 1, and gives the name its canonical
// case.
func checkDeploymentSKU(sku *DeploymentSKU) error {
	if sku.Name == "" || len(sku.Name) > 64 || !printable(sku.Name) {
		return badRequest("InvalidSkuName", "sku.name", "The deployment sku needs a name.")
	}
	if err := CheckDeploymentCapacity(sku.Capacity); err != nil {
		return err
	}
	i := slices.IndexFunc(DeploymentSKUs, func(n string) bool { return strings.EqualFold(n, sku.Name) })
	if i < 0 {
		return badRequest("InvalidResourceProperties", "sku.name",
			"The specified SKU '%s' of account deployment is not supported. Use %s.", clip(sku.Name), strings.Join(DeploymentSKUs, ", "))
	}
	sku.Name = DeploymentSKUs[i]
	return nil
}

// fromCatalog completes a spec without an upstream from the catalog: the
// model must be offered (its version, or the default when none is named)
// and the capacity within the model's bound.
func (d *Deployments) fromCatalog(spec *DeploymentSpec) error {
	cat := d.catalog.Load()
	if cat.Len() == 0 {
		return badRequest("InvalidUpstream", "properties.upstream.endpoint",
			"properties.upstream.endpoint is required: the base URL of the OpenAI-compatible server this deployment forwards to (this server offers no model catalog: serve --models).")
	}
	m, version, ok := cat.Find(spec.Model.Format, spec.Model.Name, spec.Model.Version)
	if !ok {
		return badRequest("DeploymentModelNotSupported", "properties.model",
			"The model 'Format: %s, Name: %s, Version: %s' is not offered by this server. Deploy one of: %s; or give properties.upstream.",
			clip(spec.Model.Format), clip(spec.Model.Name), clip(spec.Model.Version), cat.describe())
	}
	if err := checkModelSKU(spec.SKU, m, version); err != nil {
		return err
	}
	if m.MaxCapacity > 0 && spec.SKU.Capacity > m.MaxCapacity {
		return badRequest("InvalidCapacity", "sku.capacity",
			"The capacity %d is more than the model '%s' allows (%d).", spec.SKU.Capacity, clip(m.Name), m.MaxCapacity)
	}
	spec.Model = DeploymentModel{Format: m.Format, Name: m.Name, Version: version}
	spec.catalog = true
	spec.Key = new(string) // a catalog deployment keeps no credential of its own
	return nil
}

func errDeploymentNotFound(acct *Account, name string) error {
	return gatehouse.NotFoundf("DeploymentNotFound", "The deployment '%s' of account '%s' was not found.", clip(name), clip(acct.Name))
}

func deploymentID(acct *Account, name string) string { return acct.ID + "/deployments/" + name }

// PutDeployment creates or replaces the deployment name of acct. It
// returns the deployment and whether it was created. When it returns, this
// node's index serves the new state.
//
// Errors (*gatehouse.Error): 400 InvalidResourceName, InvalidDeploymentModel,
// InvalidSkuName, InvalidResourceProperties (a catalog model in a SKU not
// among ModelSKUs), InvalidUpstream, DeploymentNotSupported (the account's
// kind has no deployments; a sealed key kept, with no key given, for
// another endpoint or key header), InsufficientQuota (the catalog model's
// quota, quota.go); 409 TooManyDeployments; 503.
func (d *Deployments) PutDeployment(ctx context.Context, acct *Account, name string, spec DeploymentSpec, by Actor) (*Deployment, bool, error) {
	if err := ValidateDeploymentName(name); err != nil {
		return nil, false, err
	}
	if !containsFold(DeploymentKinds, acct.Kind) {
		return nil, false, badRequest("DeploymentNotSupported", "kind",
			"Accounts of kind '%s' have no deployments; use an OpenAI or AIServices account.", clip(acct.Kind))
	}
	if err := d.validateDeploymentSpec(&spec); err != nil {
		return nil, false, err
	}
	if _, ok := acct.Identity.ActsAs(); spec.KeyVaultSecret != "" && !ok {
		// Else every request would fail until one is assigned.
		return nil, false, badRequest("InvalidUpstream", "properties.upstream.keyVaultSecret",
			"The account has no managed identity to read the secret with (or several user-assigned ones and no system-assigned one): assign one first (az cognitiveservices account identity assign), and grant it Key Vault Secrets User on the secret or its vault.")
	}
	if !spec.catalog && acct.Outbound != nil {
		// The account's data loss prevention: its own upstreams must be
		// allowed hosts (the catalog's are the operator's, like Azure's own
		// model backends, and are not restricted).
		if u, err := url.Parse(spec.Endpoint); err != nil || !acct.Outbound.Allows(u.Hostname()) {
			return nil, false, badRequest(CodeOutboundRestricted, "properties.upstream.endpoint",
				"The account restricts outbound network access: the upstream's host is not in its allowedFqdnList.")
		}
	}
	key := deploymentKey(acct, name)
	if m := quotaModel(d.catalog.Load(), spec.Model, *spec.SKU); spec.catalog && m != nil {
		d.quotaMu.Lock()
		defer d.quotaMu.Unlock()
		if err := d.checkQuota(ctx, acct, key, m, *spec.SKU, d.quotaHeld(ctx, key, m, spec.SKU.Name)); err != nil {
			return nil, false, err
		}
	}
	now := storage.Now(d.opts.Now())
	var sealed []byte
	if spec.Key != nil && *spec.Key != "" {
		plain, _ := json.Marshal(sealedDeploymentKey{Key: *spec.Key})
		var err error
		sealed, err = d.opts.Sealer.Seal(plain, keyring.AAD(KindDeployment, key))
		clear(plain)
		if err != nil {
			return nil, false, fmt.Errorf("accounts: seal upstream key: %w", err)
		}
	}
	if spec.KeyVaultSecret != "" {
		spec.Key = new(string) // a reference replaces a sealed key
	}
	fill := func(r *deploymentRecord) {
		r.Model, r.SKU, r.Endpoint = spec.Model, *spec.SKU, spec.Endpoint
		r.UpstreamModel, r.KeyHeader, r.KeyVaultSecret = spec.UpstreamModel, spec.KeyHeader, spec.KeyVaultSecret
		r.Catalog = spec.catalog
		r.RaiPolicyName, r.VersionUpgradeOption, r.ScaleType, r.Tags = spec.RaiPolicyName, spec.VersionUpgradeOption, spec.ScaleType, spec.Tags
		r.UpdatedAt, r.UpdatedBy = now, actorRecord(by)
	}
	for range 3 {
		var refused error
		rec, err := d.table.Update(ctx, key, func(r *storage.Record[deploymentRecord]) error {
			if spec.Key == nil && len(r.Sealed) > 0 && (r.Value.Endpoint != spec.Endpoint || !strings.EqualFold(r.Value.KeyHeader, spec.KeyHeader)) {
				// The sealed key goes only where its writer sent it:
				// otherwise whoever may write deployments could have it
				// sent to a server of theirs without ever knowing it.
				refused = badRequest("InvalidUpstream", "properties.upstream.key",
					"properties.upstream.key must be given again to send the deployment's upstream key to another endpoint or header (or give none: \"key\": \"\").")
				return refused
			}
			fill(&r.Value)
			if spec.Key != nil {
				r.Sealed, r.Value.HasKey = sealed, sealed != nil
			}
			return nil
		})
		if refused != nil {
			return nil, false, refused
		}
		if err == nil {
			if err := d.watcher.WaitFor(ctx, rec.Revision); err != nil {
				return nil, false, err
			}
			return d.view(rec), false, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, false, unavailable(err)
		}
		existing, _, err := d.table.List(ctx, storage.ListOptions{Ref: acct.InternalID, Limit: MaxDeploymentsPerAccount + 1})
		if err != nil {
			return nil, false, unavailable(err)
		}
		if len(existing) >= MaxDeploymentsPerAccount {
			return nil, false, gatehouse.Errorf(http.StatusConflict, "TooManyDeployments",
				"The account has %d deployments, the most it may have.", MaxDeploymentsPerAccount)
		}
		r := deploymentRecord{ID: deploymentID(acct, name), AccountID: acct.ID, Name: name,
			CreatedAt: now, CreatedBy: actorRecord(by), HasKey: sealed != nil}
		fill(&r)
		rec, err = d.table.Create(ctx, &storage.Record[deploymentRecord]{Key: key, Ref: acct.InternalID, Value: r, Sealed: sealed})
		if errors.Is(err, storage.ErrAlreadyExists) {
			continue // created concurrently: update it instead
		}
		if err != nil {
			return nil, false, unavailable(err)
		}
		if err := d.watcher.WaitFor(ctx, rec.Revision); err != nil {
			return nil, false, err
		}
		return d.view(rec), true, nil
	}
	return nil, false, gatehouse.ErrUnavailable
}

// PatchDeployment changes the sku (nil: keep; without a name, only its
// capacity; with capacity 0, only its name) and the tags (nil: keep) of
// the deployment name of acct, as
// Azure's PATCH does; the capacity of a catalog deployment stays within
// its model's bound. The caller validates
// the tags.
//
// Errors (*gatehouse.Error): 400 InvalidSkuName, InvalidResourceProperties,
// InvalidCapacity, InsufficientQuota; 404 DeploymentNotFound; 503.
func (d *Deployments) PatchDeployment(ctx context.Context, acct *Account, name string, sku *DeploymentSKU, tags map[string]string, by Actor) (*Deployment, error) {
	key := deploymentKey(acct, name)
	if sku != nil {
		d.quotaMu.Lock()
		defer d.quotaMu.Unlock()
		if err := d.checkPatchQuota(ctx, acct, key, *sku); err != nil {
			return nil, err
		}
	}
	rec, err := d.table.Update(ctx, key, func(r *storage.Record[deploymentRecord]) error {
		v := &r.Value
		if sku != nil {
			next := *sku
			if next.Name == "" {
				next.Name = v.SKU.Name // {"sku": {"capacity": n}} changes the capacity alone
			}
			if next.Capacity == 0 {
				next.Capacity = max(v.SKU.Capacity, 1) // {"sku": {"name": s}} keeps it
			}
			if err := checkDeploymentSKU(&next); err != nil {
				return err
			}
			if v.Catalog {
				m, version, ok := d.catalog.Load().Find(v.Model.Format, v.Model.Name, v.Model.Version)
				if ok {
					if err := checkModelSKU(&next, m, version); err != nil {
						return err
					}
				}
				if ok && m.MaxCapacity > 0 && next.Capacity > m.MaxCapacity {
					return badRequest("InvalidCapacity", "sku.capacity",
						"The capacity %d is more than the model '%s' allows (%d).", next.Capacity, clip(m.Name), m.MaxCapacity)
				}
			}
			v.SKU = next
		}
		if tags != nil {
			v.Tags = tags
		}
		v.UpdatedAt, v.UpdatedBy = storage.Now(d.opts.Now()), actorRecord(by)
		return nil
	})
	var ge *gatehouse.Error
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errDeploymentNotFound(acct, name)
	case errors.As(err, &ge):
		return nil, err
	case err != nil:
		return nil, unavailable(err)
	}
	if err := d.watcher.WaitFor(ctx, rec.Revision); err != nil {
		return nil, err
	}
	return d.view(rec), nil
}

// GetDeployment returns the deployment name of acct (from storage).
//
// Errors (*gatehouse.Error): 404 DeploymentNotFound; 503.
func (d *Deployments) GetDeployment(ctx context.Context, acct *Account, name string) (*Deployment, error) {
	rec, err := d.table.Get(ctx, deploymentKey(acct, name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errDeploymentNotFound(acct, name)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return d.view(rec), nil
}

// ListDeployments returns acct's deployments, ordered by name.
func (d *Deployments) ListDeployments(ctx context.Context, acct *Account) ([]*Deployment, error) {
	recs, err := d.table.Collect(ctx, storage.ListOptions{Ref: acct.InternalID})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]*Deployment, len(recs))
	for i, r := range recs {
		out[i] = d.view(r)
	}
	return out, nil
}

// DeleteDeployment deletes the deployment name of acct; false when there
// was none. When it returns, this node's gateway no longer serves it.
func (d *Deployments) DeleteDeployment(ctx context.Context, acct *Account, name string) (bool, error) {
	key := deploymentKey(acct, name)
	err := d.table.Delete(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	// Delete carries no revision: wait for everything committed so far.
	if err := d.watcher.Sync(ctx); err != nil {
		return true, err
	}
	return true, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
