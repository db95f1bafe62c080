package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/gateway"
	"github.com/gatehouse/gatehouse/language"
	"github.com/gatehouse/gatehouse/netacl"
	hlru "github.com/hashicorp/golang-lru/v2"
)

// Endpoint forms of properties.endpoint (Config.EndpointForm).
const (
	EndpointFormPath = "path"
	EndpointFormHost = "host"
)

// gatewayState is the data plane's part of Main.
type gatewayState struct {
	banner []string
}

// configureDataPlane runs before the management API is mounted: it picks
// the endpoint form accounts advertise (unless a test set AccountEndpoint)
// and builds the deployments service the management API serves.
func (m *Main) configureDataPlane(ctx, bg context.Context) error {
	if m.AccountEndpoint == nil && m.Config.EndpointForm == EndpointFormHost {
		m.AccountEndpoint = func(name string) string {
			return "https://" + name + ".cognitiveservices." + m.Host + "/"
		}
	}
	upstreams, err := netacl.ParsePrefixes(m.Config.UpstreamNetworks) // validated with the config
	if err != nil {
		return err
	}
	catalog, err := loadCatalog(m.Config.Models, os.LookupEnv, upstreams) // validated with the config
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if catalog.Len() > 0 {
		plural := "s"
		if catalog.Len() == 1 {
			plural = ""
		}
		m.gateway.banner = append(m.gateway.banner, fmt.Sprintf("Model catalog: %d model%s from %s (deploy them by name: az cognitiveservices account list-models)",
			catalog.Len(), plural, m.Config.Models))
	}
	m.Deployments = accounts.NewDeployments(bg, m.Store, m.Watcher, accounts.DeploymentOptions{
		Sealer: m.Sealer, Now: m.Now, Logger: m.Logger, ParseSecretReference: m.parseSecretReference, // upstream.go
		UpstreamNetworks: upstreams, Catalog: catalog})
	return m.Deployments.Load(ctx)
}

// mountGateway builds the AI data plane — the gateway with the STS, the
// built-in Language service and the upstream proxy — over the identity
// and management services, mounts it on the root host (/ai/{account}/…,
// /sts/v1.0/issueToken) and the account hosts, and starts its usage
// flush. It runs after mountManagement.
func (m *Main) mountGateway(ctx, bg context.Context) error {
	if m.Accounts == nil || m.Authority == nil || m.Authz == nil {
		return errors.New("gateway: the identity and management services must be mounted first")
	}
	deps, err := hlru.New[deploymentViewKey, *gateway.Deployment](4096)
	if err != nil {
		return err
	}
	lang := language.New()
	cors, err := gateway.ParseCORSOrigins(m.Config.CORSOrigins) // validated with the config
	if err != nil {
		return err
	}
	private, err := netacl.ParsePrefixes(m.Config.PrivateNetworks) // validated with the config
	if err != nil {
		return err
	}
	upstreams, err := netacl.ParsePrefixes(m.Config.UpstreamNetworks) // validated with the config
	if err != nil {
		return err
	}
	m.Gateway = gateway.New(gateway.Options{
		DeploymentQuotas: m.Config.DeploymentQuotas,
		UpstreamTimeout:  m.Config.UpstreamTimeout,
		PlainSyscalls:    !m.Config.RawSyscalls,
		CORS:             cors,
		PrivateNetworks:  private,
		UpstreamNetworks: upstreams,
		Accounts:         accountIndex{m.Accounts},
		Tokens:           tokenVerifier{m.Authority},
		Issuer:           stsIssuer{m.Authority},
		Authz:            newDataAuthorizer(m.Authz),
		Deployments:      deploymentIndex{d: m.Deployments, views: deps, front: new([256]atomic.Pointer[deploymentView]), creds: m.newUpstreamCredentials(bg)}, // upstream.go
		Models:           m.baseModels,
		Language:         lang.AnalyzeText,
		// The same service behind the Text Analytics v3.x routes.
		TextAnalyticsV3:     lang.TextAnalyticsV3,
		LanguageUnsupported: lang.Unsupported,
		Usage:               usageSink{m.Accounts},
		Audit:               denialAudit{m.Audit},
		Registry:            m.Metrics.Registry,
		Logger:              m.Logger,
		Now:                 m.Now,
	})
	m.Gateway.Mount(m.Router)
	// Key usage evidence read here (listKeyUsage, the portal) includes
	// this node's last seconds of use.
	m.Accounts.SetUsageFlusher(m.Gateway.Flush)
	m.goBackground(func() { m.Gateway.Run(bg) })
	if m.Config.Dev {
		m.AddBootstrapStep("dev", m.bootstrapDev)
	}
	return nil
}

// baseModels lists the model catalog for the data plane's model list.
func (m *Main) baseModels() []gateway.BaseModel {
	var out []gateway.BaseModel
	for _, o := range m.Deployments.Catalog().Offers() {
		out = append(out, gateway.BaseModel{Name: o.Name, Version: o.Version, Capabilities: o.Capabilities})
	}
	return out
}

// gatewayBanner is the data plane's part of the start-up banner.
func (m *Main) gatewayBanner() []string {
	if m.Gateway == nil {
		return nil
	}
	lines := []string{"AI data plane: " + m.URL + "/ai/{account}/  and  https://{account}.cognitiveservices." + m.Host + "/",
		"STS: POST " + m.URL + "/sts/v1.0/issueToken  (Ocp-Apim-Subscription-Key: <key>)"}
	return append(lines, m.gateway.banner...)
}

// Demo account of `gatehouse serve --dev`.
const (
	devAccountName = "demo-language"
	devSampleText  = "Gatehouse is up and running. I love how easy this was!"
)

// bootstrapDev creates the demo Language account on the first --dev start
// and, on every --dev start, prints its endpoint, a key and a curl line
// that gets a real answer from the built-in Language service.
func (m *Main) bootstrapDev(ctx context.Context, b *Bootstrap) error {
	sub, group := b.Credentials.SubscriptionID, b.Credentials.ResourceGroup
	if sub == "" || group == "" {
		d, err := m.Resources.EnsureDefaults(ctx, b.TenantID, nil)
		if err != nil {
			return err
		}
		sub, group = d.Subscription, d.Group
	}
	id, err := gatehouse.ParseResourceID("/subscriptions/" + sub + "/resourceGroups/" + group +
		"/providers/" + accounts.Type + "/" + devAccountName)
	if err != nil {
		return err
	}
	acct, err := m.Accounts.Get(ctx, id)
	by := accounts.Actor{ObjectID: b.ObjectID, Type: "Application"}
	wrote, restore := false, false
	if e, ok := gatehouse.AsError(err); ok && e.Status == 404 {
		acct, wrote, err = m.Accounts.Put(ctx, id, accounts.Spec{Kind: "TextAnalytics", Location: "local",
			SKU: &accounts.SKU{Name: "S0"}}, by)
	}
	if e, ok := gatehouse.AsError(err); ok && e.Code == "FlagMustBeSetForRestore" {
		// Deleted since the last start: bring it back, keys and all.
		acct, _, err = m.Accounts.Put(ctx, id, accounts.Spec{Restore: true}, by)
		wrote, restore = err == nil, true
	}
	if err != nil {
		return fmt.Errorf("demo account: %w", err)
	}
	if wrote {
		details := map[string]string{"name": devAccountName, "kind": acct.Kind, "location": acct.Location}
		if restore {
			details["restore"] = "true"
		}
		if err := m.auditStartup(ctx, b, "Microsoft.CognitiveServices/accounts/write", acct.ID, details); err != nil {
			return err
		}
	}
	if acct.DisableLocalAuth {
		m.gateway.banner = append(m.gateway.banner,
			"Development mode: demo Language account "+devAccountName+" (resource "+acct.ID+")",
			"  endpoint: "+acct.Endpoint,
			"  local authentication is disabled on it (disableLocalAuth): call it with an identity token, or enable keys with",
			"  gatehouse cognitiveservices account update -g "+group+" -n "+devAccountName+" --disable-local-auth false")
		return nil
	}
	keys, err := m.Accounts.ListKeys(ctx, id)
	if err != nil {
		return err
	}
	body := `{"kind":"SentimentAnalysis","analysisInput":{"documents":[{"id":"1","text":"` + devSampleText + `"}]}}`
	cacert := ""
	if ca := m.Certs.CAFile(); ca != "" {
		cacert = "--cacert " + ca + " "
	}
	m.gateway.banner = append(m.gateway.banner,
		"Development mode: demo Language account "+devAccountName+" (resource "+acct.ID+")",
		"  endpoint: "+acct.Endpoint,
		"  key:      "+keys.Key1,
		"  try it:",
		"  curl "+cacert+"-H 'Ocp-Apim-Subscription-Key: "+keys.Key1+"' -H 'Content-Type: application/json' \\",
		"    '"+acct.Endpoint+"language/:analyze-text?api-version=2023-04-01' \\",
		"    -d '"+body+"'",
	)
	return nil
}

// accountIndex is the gateway's view of the accounts index.
type accountIndex struct{ s *accounts.Service }

func gatewayAccount(a *accounts.Account) gateway.Account {
	return gateway.Account{
		ID: a.ID, InternalID: a.InternalID, Name: a.DataPlaneName, Kind: a.Kind, DisableLocalAuth: a.DisableLocalAuth,
		Generations: [2]int64{a.Keys[0].Generation, a.Keys[1].Generation}, Network: a.Network, Outbound: a.Outbound,
		Limits: gateway.RateLimits{Account: rateLimit(a, accounts.RateLimitAccount),
			Credential: rateLimit(a, accounts.RateLimitCredential)},
	}
}

func (x accountIndex) AccountByName(name string) (gateway.Account, bool) {
	a, ok := x.s.ByDataPlaneName(name)
	if !ok {
		return gateway.Account{}, false
	}
	return gatewayAccount(a), true
}

func (x accountIndex) AccountByID(id string) (gateway.Account, bool) {
	a, ok := x.s.ByID(id)
	if !ok {
		return gateway.Account{}, false
	}
	return gatewayAccount(a), true
}

func (x accountIndex) LookupKey(sum [32]byte) (gateway.KeyMatch, bool) {
	m, ok := x.s.LookupKeyHash(sum)
	if !ok {
		return gateway.KeyMatch{}, false
	}
	return gateway.KeyMatch{AccountID: m.Account.ID, Slot: m.Slot, Generation: m.Generation}, true
}

// tokenVerifier reads bearer tokens with the authority's one verifier and
// the STS claims back out of them.
type tokenVerifier struct{ a *authority.Authority }

func (x tokenVerifier) VerifyToken(ctx context.Context, raw string, audiences ...string) (gateway.VerifiedToken, error) {
	c, err := x.a.Verify(ctx, raw, audiences...)
	if err != nil {
		return gateway.VerifiedToken{}, err
	}
	v := gateway.VerifiedToken{Audience: c.Audience, Principal: c.Principal, Expires: c.Expires}
	if acct := c.String(gateway.ClaimAccount); acct != "" {
		v.STS, v.AccountID, v.Slot, v.Instance = true, acct, -1, c.String(gateway.ClaimInstance)
		if slot, ok := accounts.ParseKeyName(c.String(gateway.ClaimSlot)); ok {
			if gen, ok := c.Int64(gateway.ClaimGeneration); ok {
				v.Slot, v.Generation = slot, gen
			}
		}
	}
	return v, nil
}

// stsIssuer mints STS tokens with the authority's signing keys: a token of
// the STS audience, without a principal, carrying the account, key slot
// and generation it was minted from.
type stsIssuer struct{ a *authority.Authority }

func (x stsIssuer) IssueSTSToken(ctx context.Context, g gateway.STSGrant) (string, error) {
	tok, _, err := x.a.Issue(ctx, gatehouse.Principal{}, gateway.STSAudience, g.Lifetime, map[string]any{
		gateway.ClaimAccount:    g.Account.ID,
		gateway.ClaimSlot:       accounts.SlotName(g.Slot),
		gateway.ClaimGeneration: g.Generation,
		gateway.ClaimInstance:   g.Account.InternalID,
	})
	return tok, err
}

// dataAuthorizer asks the cached authorization decision for data actions.
// Account scopes are parsed once per account id. On top of authz's own
// cache (which normalizes its inputs, allocating on every call), it keeps
// the answers of the gateway's calls as they come — the object id, the
// route's data action and the account id are the same strings request
// after request — stamped with authz's generation, so a hit costs one
// lookup and any change to roles or assignments retires them all.
type dataAuthorizer struct {
	z         *authz.Service
	scopes    sync.Map // account id → *gatehouse.ResourceID
	decisions *hlru.Cache[dataDecisionKey, dataDecision]
}

type dataDecisionKey struct{ principal, action, scope string }

type dataDecision struct {
	gen     uint64
	allowed bool
}

func newDataAuthorizer(z *authz.Service) *dataAuthorizer {
	d, _ := hlru.New[dataDecisionKey, dataDecision](1 << 14) // size > 0 cannot fail
	return &dataAuthorizer{z: z, decisions: d}
}

func (x *dataAuthorizer) AuthorizeData(ctx context.Context, p gatehouse.Principal, action, scope string) (bool, error) {
	// The generation is read before deciding: a change that lands in
	// between makes the stored answer look older than it is, never newer.
	gen := x.z.Generation()
	k := dataDecisionKey{p.ObjectID, action, scope}
	if d, ok := x.decisions.Get(k); ok && d.gen == gen {
		return d.allowed, nil
	}
	v, ok := x.scopes.Load(scope)
	if !ok {
		id, err := gatehouse.ParseResourceID(scope)
		if err != nil {
			return false, fmt.Errorf("gateway: account scope %q: %w", scope, err)
		}
		v, _ = x.scopes.LoadOrStore(scope, id)
	}
	allowed := x.z.Decide(p.ObjectID, authz.DataAction(action), v.(*gatehouse.ResourceID)).Allowed
	x.decisions.Add(k, dataDecision{gen: gen, allowed: allowed})
	return allowed, nil
}

// deploymentIndex is the gateway's view of the deployments index. The
// gateway's Deployment (with its prepared request parts) is built once per
// deployment version — and, for a credential read from Key Vault, per
// resolution of it (upstream.go) — and kept in a bounded cache keyed by
// the index's immutable values. In front of the cache, a small table
// indexed by the key's pointers answers a request with an atomic load
// and a comparison: the cache's lookup (a lock, a hash of the key, a move
// in its list) cost ~700 instructions a request.
type deploymentIndex struct {
	d     *accounts.Deployments
	views *hlru.Cache[deploymentViewKey, *gateway.Deployment]
	front *[256]atomic.Pointer[deploymentView]
	creds *upstreamCredentials
}

// deploymentView is an entry of deploymentIndex.front.
type deploymentView struct {
	k deploymentViewKey
	v *gateway.Deployment
}

// slot is k's place in deploymentIndex.front.
func (k deploymentViewKey) slot() uint8 {
	h := uintptr(unsafe.Pointer(k.dp)) ^ uintptr(unsafe.Pointer(k.cred))>>3 ^ uintptr(unsafe.Pointer(k.outbound))>>5
	return uint8(h>>4 ^ h>>12)
}

type deploymentViewKey struct {
	dp   *accounts.DataPlaneDeployment
	cred *upstreamCredential // nil: the sealed key (or none)
	// outbound is the account's restriction (nil: none): compiled anew at
	// each change of the account, so a changed allowedFqdnList is a new key.
	outbound *netacl.Outbound
}

// errOutboundRestricted answers a request to a deployment whose upstream
// the account's allowedFqdnList does not name (its host is not told).
var errOutboundRestricted = gatehouse.Errorf(http.StatusForbidden, accounts.CodeOutboundRestricted,
	"The account restricts outbound network access (restrictOutboundNetworkAccess) and this deployment's upstream is not in its allowedFqdnList.")

func (x deploymentIndex) Deployment(acct *gateway.Account, name string) (*gateway.Deployment, bool) {
	dp, ok := x.d.Lookup(acct.InternalID, name)
	if !ok {
		return nil, false
	}
	k := deploymentViewKey{dp: dp}
	if dp.KeyVaultSecret != "" {
		k.cred = x.creds.get(acct, dp)
	}
	if !dp.Catalog {
		k.outbound = acct.Outbound
	}
	slot := &x.front[k.slot()]
	if e := slot.Load(); e != nil && e.k == k {
		return e.v, true
	}
	if v, ok := x.views.Get(k); ok {
		slot.Store(&deploymentView{k, v})
		return v, true
	}
	v := &gateway.Deployment{Name: dp.Name, Upstream: dp.Upstream, Model: dp.Model, Credential: dp.Key, AuthHeader: dp.KeyHeader,
		Capacity: dp.Capacity}
	if c := k.cred; c != nil {
		v.Credential, v.Unavailable = c.value, c.errorFor(dp.Name)
	}
	if k.outbound != nil && !k.outbound.Allows(dp.Upstream.Hostname()) {
		v.Credential, v.Unavailable = "", errOutboundRestricted
	}
	x.views.Add(k, v)
	slot.Store(&deploymentView{k, v})
	return v, true
}

func (x deploymentIndex) DeploymentNames(acct *gateway.Account) []string {
	return x.d.Names(acct.InternalID)
}

// usageSink flushes the gateway's usage counts into the accounts' evidence.
type usageSink struct{ s *accounts.Service }

func (x usageSink) RecordUsage(ctx context.Context, batch []gateway.Usage) error {
	out := make([]accounts.Usage, len(batch))
	for i, u := range batch {
		out[i] = accounts.Usage{AccountID: u.AccountID, Instance: u.Instance, Slot: u.Slot, Generation: u.Generation, PrincipalID: u.PrincipalID, Requests: u.Requests,
			PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
			LastUsed: u.LastUsed, ClientAddresses: u.ClientAddresses, UserAgents: u.UserAgents}
	}
	return x.s.RecordUsage(ctx, out)
}

// denialAudit writes data-plane denials to the audit log.
type denialAudit struct{ l *audit.Log }

func (x denialAudit) AuditDenial(ctx context.Context, d gateway.Denial) error {
	details := map[string]string{"reason": d.Reason}
	if d.Credential != "" {
		details["credential"] = string(d.Credential)
	}
	if d.Suppressed > 0 {
		details["count"] = fmt.Sprint(d.Suppressed + 1)
	}
	if d.ClientAddress != "" {
		details["clientAddress"] = d.ClientAddress
	}
	_, err := x.l.Append(ctx, audit.Entry{
		RequestID: d.RequestID,
		Principal: audit.Principal{ObjectID: d.Principal.ObjectID, Type: string(d.Principal.Type),
			Name: d.Principal.Name, TenantID: d.Principal.TenantID},
		Action: d.Action, Scope: d.AccountID, Result: audit.Denied, Status: d.Status, Code: d.Code,
		Details: details, Surface: "gateway",
	})
	return err
}

// validEndpointForm is used by Config.Validate.
func validEndpointForm(s string) bool {
	return s == EndpointFormPath || s == EndpointFormHost
}

// rateLimit is the account's rate-limit rule with key, as the gateway
// applies it.
func rateLimit(a *accounts.Account, key string) gateway.Rate {
	count, period := a.RateLimit(key)
	return gateway.Rate{Count: count, Period: period}
}
