package armapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/netacl"
)

// Actions of Microsoft.CognitiveServices/accounts. listKeyUsage is
// Gatehouse's extension action.
const (
	actAccountRead     = "Microsoft.CognitiveServices/accounts/read"
	actAccountWrite    = "Microsoft.CognitiveServices/accounts/write"
	actAccountDelete   = "Microsoft.CognitiveServices/accounts/delete"
	actListKeys        = "Microsoft.CognitiveServices/accounts/listKeys/action"
	actRegenerateKey   = "Microsoft.CognitiveServices/accounts/regenerateKey/action"
	actListKeyUsage    = "Microsoft.CognitiveServices/accounts/listKeyUsage/action"
	actIdentityAssign  = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
	codeLinkedAuthFail = "LinkedAuthorizationFailed"
)

// Account JSON, as armcognitiveservices/v2 reads it (azure-wire.md §5.2).
type accountJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Kind       string            `json:"kind"`
	SKU        accounts.SKU      `json:"sku"`
	Etag       string            `json:"etag"`
	Tags       map[string]string `json:"tags"`
	Identity   *identityJSON     `json:"identity,omitempty"`
	SystemData systemDataJSON    `json:"systemData"`
	Properties accountPropsJSON  `json:"properties"`
}

type identityJSON struct {
	Type                   string                      `json:"type"`
	PrincipalID            string                      `json:"principalId,omitempty"`
	TenantID               string                      `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]userIdentityJSON `json:"userAssignedIdentities,omitempty"`
}

type userIdentityJSON struct {
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
}

type systemDataJSON struct {
	CreatedAt          string `json:"createdAt"`
	CreatedBy          string `json:"createdBy"`
	CreatedByType      string `json:"createdByType"`
	LastModifiedAt     string `json:"lastModifiedAt"`
	LastModifiedBy     string `json:"lastModifiedBy"`
	LastModifiedByType string `json:"lastModifiedByType"`
}

type accountPropsJSON struct {
	ProvisioningState   string                    `json:"provisioningState"`
	Endpoint            string                    `json:"endpoint"`
	Endpoints           map[string]string         `json:"endpoints"`
	CustomSubDomainName string                    `json:"customSubDomainName,omitempty"`
	PublicNetworkAccess string                    `json:"publicNetworkAccess"`
	NetworkACLs         *netacl.Rules             `json:"networkAcls,omitempty"`
	DisableLocalAuth    bool                      `json:"disableLocalAuth"`
	DateCreated         string                    `json:"dateCreated"`
	InternalID          string                    `json:"internalId"`
	Capabilities        []map[string]string       `json:"capabilities"`
	RateLimits          []accounts.ThrottlingRule `json:"rateLimits,omitempty"`
	CallRateLimit       *callRateLimitJSON        `json:"callRateLimit,omitempty"`
	// Data loss prevention: restricted, the account's own upstreams must
	// be in allowedFqdnList (null when empty, as Azure shows it).
	RestrictOutboundNetworkAccess bool     `json:"restrictOutboundNetworkAccess"`
	AllowedFqdnList               []string `json:"allowedFqdnList"`
	// Encryption is what it always is here: the service's own keys
	// (Gatehouse's master key), the only keySource a PUT may name.
	Encryption encryptionJSON `json:"encryption"`
	// Set on a soft-deleted account (deletedaccounts.go).
	DeletionDate       string `json:"deletionDate,omitempty"`
	ScheduledPurgeDate string `json:"scheduledPurgeDate,omitempty"`
}

type encryptionJSON struct {
	KeySource string `json:"keySource"`
}

type callRateLimitJSON struct {
	Rules []accounts.ThrottlingRule `json:"rules"`
}

// endpointNames are the per-API entries of properties.endpoints, by kind.
var endpointNames = map[string][]string{
	"OpenAI":            {"OpenAI Language Model Instance API"},
	"TextAnalytics":     {"Language"},
	"AIServices":        {"OpenAI Language Model Instance API", "Language"},
	"CognitiveServices": {"Language"},
}

func accountView(a *accounts.Account) accountJSON {
	tags := a.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	v := accountJSON{
		ID: a.ID, Name: a.Name, Type: accounts.Type, Location: a.Location, Kind: a.Kind, SKU: a.SKU,
		Etag: etag(a.Revision), Tags: tags,
		SystemData: systemDataJSON{
			CreatedAt: armTime(a.CreatedAt), CreatedBy: a.CreatedBy.ObjectID, CreatedByType: a.CreatedBy.Type,
			LastModifiedAt: armTime(a.UpdatedAt), LastModifiedBy: a.UpdatedBy.ObjectID, LastModifiedByType: a.UpdatedBy.Type,
		},
		Properties: accountPropsJSON{
			ProvisioningState: "Succeeded", Endpoint: a.Endpoint, Endpoints: map[string]string{},
			CustomSubDomainName: a.CustomSubDomainName, PublicNetworkAccess: a.PublicNetworkAccess, NetworkACLs: a.NetworkACLs,
			DisableLocalAuth: a.DisableLocalAuth, DateCreated: armTime(a.CreatedAt), InternalID: a.InternalID,
			Capabilities:                  []map[string]string{{"name": "VirtualNetworks"}},
			RateLimits:                    a.RateLimits,
			RestrictOutboundNetworkAccess: a.RestrictOutbound, AllowedFqdnList: a.AllowedFQDNs,
			Encryption: encryptionJSON{KeySource: "Microsoft.CognitiveServices"},
		},
	}
	for _, n := range endpointNames[a.Kind] {
		v.Properties.Endpoints[n] = a.Endpoint
	}
	if len(a.RateLimits) > 0 {
		v.Properties.CallRateLimit = &callRateLimitJSON{Rules: a.RateLimits}
	}
	if id := a.Identity; id != nil {
		v.Identity = &identityJSON{Type: id.Type}
		if id.System != nil {
			v.Identity.PrincipalID, v.Identity.TenantID = id.System.PrincipalID, id.System.TenantID
		}
		for rid, ref := range id.UserAssigned {
			if v.Identity.UserAssignedIdentities == nil {
				v.Identity.UserAssignedIdentities = map[string]userIdentityJSON{}
			}
			v.Identity.UserAssignedIdentities[rid] = userIdentityJSON{PrincipalID: ref.PrincipalID, ClientID: ref.ClientID}
		}
	}
	return v
}

// accountBody is a PUT or PATCH body. Pointers distinguish "absent" from
// "zero".
type accountBody struct {
	Kind       string            `json:"kind"`
	Location   string            `json:"location"`
	SKU        *accounts.SKU     `json:"sku"`
	Tags       map[string]string `json:"tags"`
	Identity   *identityBody     `json:"identity"`
	Properties *struct {
		CustomSubDomainName *string                    `json:"customSubDomainName"`
		DisableLocalAuth    *bool                      `json:"disableLocalAuth"`
		PublicNetworkAccess *string                    `json:"publicNetworkAccess"`
		NetworkACLs         *netacl.Rules              `json:"networkAcls"`
		RateLimits          *[]accounts.ThrottlingRule `json:"rateLimits"`
		RestrictOutbound    *bool                      `json:"restrictOutboundNetworkAccess"`
		AllowedFqdnList     *[]string                  `json:"allowedFqdnList"`
		// Restore recovers the soft-deleted account (az cognitiveservices
		// account recover sends only it and the location).
		Restore *bool `json:"restore"`
		// What Gatehouse does not do is refused (spec), never dropped: a
		// customer-managed key, storage of the customer's own, a kind's
		// API properties.
		Encryption *struct {
			KeySource string `json:"keySource"`
		} `json:"encryption"`
		UserOwnedStorage []json.RawMessage          `json:"userOwnedStorage"`
		APIProperties    map[string]json.RawMessage `json:"apiProperties"`
		// Azure features Gatehouse lacks: their defaults (false, null,
		// empty) are taken, anything else refused (unsupported).
		DynamicThrottlingEnabled *bool             `json:"dynamicThrottlingEnabled"`
		AllowProjectManagement   *bool             `json:"allowProjectManagement"`
		MigrationToken           *string           `json:"migrationToken"`
		DefaultProject           *string           `json:"defaultProject"`
		Locations                json.RawMessage   `json:"locations"`
		AmlWorkspace             json.RawMessage   `json:"amlWorkspace"`
		RaiMonitorConfig         json.RawMessage   `json:"raiMonitorConfig"`
		AssociatedProjects       []json.RawMessage `json:"associatedProjects"`
		NetworkInjections        []json.RawMessage `json:"networkInjections"`
	} `json:"properties"`
}

// unsupported refuses the first property of an account body that asks for
// an Azure feature Gatehouse does not have, naming it: taking it and
// showing nothing of it on a GET would lose the caller's setting.
func (b *accountBody) unsupported() error {
	p := b.Properties
	set := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" && string(raw) != "{}" }
	for _, f := range []struct {
		name, why string
		on        bool
	}{
		{"dynamicThrottlingEnabled", "Gatehouse applies properties.rateLimits as given, without dynamic throttling", p.DynamicThrottlingEnabled != nil && *p.DynamicThrottlingEnabled},
		{"allowProjectManagement", "Gatehouse has no AI Foundry projects", p.AllowProjectManagement != nil && *p.AllowProjectManagement},
		{"associatedProjects", "Gatehouse has no AI Foundry projects", len(p.AssociatedProjects) > 0},
		{"defaultProject", "Gatehouse has no AI Foundry projects", p.DefaultProject != nil && *p.DefaultProject != ""},
		{"locations", "an account is served from its own location only (no multi-region routing)", set(p.Locations)},
		{"migrationToken", "Gatehouse has no account migration", p.MigrationToken != nil && *p.MigrationToken != ""},
		{"amlWorkspace", "Gatehouse has no Azure Machine Learning workspaces", set(p.AmlWorkspace)},
		{"raiMonitorConfig", "Gatehouse has no content-safety monitoring", set(p.RaiMonitorConfig)},
		{"networkInjections", "Gatehouse has no virtual network injection", len(p.NetworkInjections) > 0},
	} {
		if f.on {
			return gatehouse.BadRequestf("PropertyNotSupported", "properties.%s is not supported: %s.", f.name, f.why).
				WithTarget("properties." + f.name)
		}
	}
	return nil
}

type identityBody struct {
	Type string `json:"type"`
	// UserAssignedIdentities maps ids to {} (attach) or null (in a PATCH,
	// detach; as ARM's providers read it).
	UserAssignedIdentities map[string]*emptyObject `json:"userAssignedIdentities"`
}

// emptyObject accepts the {} ARM clients send per user-assigned identity.
type emptyObject struct{}

// mergeUserAssigned gives a PATCH's identity ARM's meaning: the
// user-assigned identities it names with {} join those the account has,
// those it names with null leave (they were attached instead, and the
// others detached), when the new type keeps user-assigned identities.
func (b *identityBody) mergeUserAssigned(spec *accounts.IdentitySpec, cur *accounts.Identity) {
	if spec == nil || !strings.HasSuffix(spec.Type, accounts.IdentityUserAssigned) {
		return
	}
	set := map[string]string{}
	if cur != nil {
		for id := range cur.UserAssigned {
			set[strings.ToLower(id)] = id
		}
	}
	for _, id := range spec.UserAssigned {
		set[strings.ToLower(id)] = id
	}
	for id, v := range b.UserAssignedIdentities {
		if v == nil {
			delete(set, strings.ToLower(id))
		}
	}
	spec.UserAssigned = spec.UserAssigned[:0]
	for _, id := range set {
		spec.UserAssigned = append(spec.UserAssigned, id)
	}
	sort.Strings(spec.UserAssigned)
}

func (b *accountBody) spec() (accounts.Spec, error) {
	s := accounts.Spec{Kind: b.Kind, Location: b.Location, SKU: b.SKU, Tags: b.Tags}
	if p := b.Properties; p != nil {
		if e := p.Encryption; e != nil && e.KeySource != "" && !strings.EqualFold(e.KeySource, "Microsoft.CognitiveServices") {
			return s, gatehouse.BadRequestf("CustomerManagedKeyNotSupported",
				"Gatehouse seals an account's keys and credentials with its own master key (README: encryption at rest): properties.encryption.keySource can only be Microsoft.CognitiveServices.").WithTarget("properties.encryption.keySource")
		}
		if len(p.UserOwnedStorage) > 0 {
			return s, gatehouse.BadRequestf("UserOwnedStorageNotSupported",
				"Gatehouse keeps an account's data in its own store: properties.userOwnedStorage is not supported.").WithTarget("properties.userOwnedStorage")
		}
		if len(p.APIProperties) > 0 {
			return s, gatehouse.BadRequestf("ApiPropertiesNotSupported",
				"No kind Gatehouse serves takes API properties: properties.apiProperties is not supported.").WithTarget("properties.apiProperties")
		}
		if err := b.unsupported(); err != nil {
			return s, err
		}
	}
	if b.Identity != nil {
		s.Identity = &accounts.IdentitySpec{Type: b.Identity.Type}
		for id, v := range b.Identity.UserAssignedIdentities {
			if v != nil { // null detaches (a PATCH's; see mergeUserAssigned)
				s.Identity.UserAssigned = append(s.Identity.UserAssigned, id)
			}
		}
		sort.Strings(s.Identity.UserAssigned)
	}
	if p := b.Properties; p != nil {
		s.Properties = accounts.Properties{CustomSubDomainName: p.CustomSubDomainName, DisableLocalAuth: p.DisableLocalAuth,
			PublicNetworkAccess: p.PublicNetworkAccess, NetworkACLs: p.NetworkACLs, RateLimits: p.RateLimits,
			RestrictOutboundNetworkAccess: p.RestrictOutbound, AllowedFQDNList: p.AllowedFqdnList}
		s.Restore = p.Restore != nil && *p.Restore
	}
	return s, nil
}

// accountID is the account of the path. The name is validated here, so a
// malformed one is 400 before anything else.
func (c *call) accountID() (*gatehouse.ResourceID, error) {
	id := &gatehouse.ResourceID{Subscription: strings.ToLower(c.param("sub")), ResourceGroup: c.param("rg"),
		Namespace: accounts.Namespace, Types: []string{"accounts"}, Names: []string{c.param("name")}}
	return id, accounts.ValidateName(c.param("name"))
}

func (c *call) actor() accounts.Actor {
	return accounts.Actor{ObjectID: c.principal.ObjectID, Type: actorType(c.principal)}
}

func listAccounts(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	scope := &gatehouse.ResourceID{Subscription: s.ID}
	if rg := c.param("rg"); rg != "" {
		g, err := c.api.opts.Resources.Group(c.ctx(), s.ID, rg)
		if err != nil {
			return err
		}
		scope = g.ID()
	}
	all, err := c.api.opts.Accounts.List(c.ctx(), scope)
	if err != nil {
		return err
	}
	out := list[accountJSON]{Value: []accountJSON{}}
	for _, a := range all {
		if id, ok := accounts.ParseID(a.ID); ok && c.can(actAccountRead, id) {
			out.Value = append(out.Value, accountView(a))
		}
	}
	return c.reply(http.StatusOK, out)
}

// accountCall runs the common prologue: subscription, authorization,
// resource group, name.
func (c *call) accountCall(action string) (*gatehouse.ResourceID, error) {
	if _, err := c.subscription(); err != nil {
		return nil, err
	}
	id, nameErr := c.accountID()
	if err := c.authorize(action, id); err != nil {
		return nil, err
	}
	if _, err := c.group(); err != nil {
		return nil, err
	}
	return id, nameErr
}

// readAccount authorizes reading the path's account and loads it.
func (c *call) readAccount() (*accounts.Account, error) {
	id, err := c.accountCall(actAccountRead)
	if err != nil {
		return nil, err
	}
	return c.api.opts.Accounts.Get(c.ctx(), id)
}

func getAccount(c *call) error {
	a, err := c.readAccount()
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, accountView(a))
}

// PUT completes synchronously: 201 (created) or 200 (updated) with
// provisioningState Succeeded, which azcore's body poller treats as done.
func putAccount(c *call) error {
	id, err := c.accountCall(actAccountWrite)
	if err != nil {
		return err
	}
	var body accountBody
	if err := c.decode(&body); err != nil {
		return err
	}
	spec, err := body.spec()
	if err != nil {
		return err
	}
	if err := c.authorizeIdentities(spec.Identity); err != nil {
		return err
	}
	if spec.Restore {
		c.detail("restore", "true")
	}
	a, created, err := c.api.opts.Accounts.Put(c.ctx(), id, spec, c.actor())
	if err != nil {
		return err
	}
	c.accountDetails(a)
	return c.put(created, accountView(a))
}

func patchAccount(c *call) error {
	id, err := c.accountCall(actAccountWrite)
	if err != nil {
		return err
	}
	var body accountBody
	if err := c.decode(&body); err != nil {
		return err
	}
	spec, err := body.spec()
	if err != nil {
		return err
	}
	if err := c.authorizeIdentities(spec.Identity); err != nil {
		return err
	}
	if body.Identity != nil && len(body.Identity.UserAssignedIdentities) > 0 {
		cur, err := c.api.opts.Accounts.Get(c.ctx(), id)
		if err != nil {
			return err
		}
		body.Identity.mergeUserAssigned(spec.Identity, cur.Identity)
	}
	a, err := c.api.opts.Accounts.Patch(c.ctx(), id, spec, c.actor())
	if err != nil {
		return err
	}
	c.accountDetails(a)
	return c.reply(http.StatusOK, accountView(a))
}

// authorizeIdentities: attaching a user-assigned identity needs its assign
// action, as in ARM (403 LinkedAuthorizationFailed).
func (c *call) authorizeIdentities(spec *accounts.IdentitySpec) error {
	if spec == nil {
		return nil
	}
	for _, u := range spec.UserAssigned {
		rid, err := gatehouse.ParseResourceID(u)
		if err != nil {
			continue // the service rejects it with a 400
		}
		if !c.can(actIdentityAssign, rid) {
			return c.linkedAuthorizationFailed(actIdentityAssign, rid)
		}
	}
	return nil
}

// linkedAuthorizationFailed is ARM's 403 for a request the caller may
// make whose body names a scope where it may not perform action.
func (c *call) linkedAuthorizationFailed(action string, linked *gatehouse.ResourceID) error {
	c.denied = true
	return gatehouse.Errorf(http.StatusForbidden, codeLinkedAuthFail,
		"The client '%s' has permission to perform action '%s' on scope '%s', however it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' or the linked scope(s) are invalid.",
		c.principal.ObjectID, c.action, clip(c.auditScope), action, clip(linked.String()))
}

func (c *call) accountDetails(a *accounts.Account) {
	c.detail("kind", a.Kind)
	c.detail("sku", a.SKU.Name)
	c.detail("location", a.Location)
	c.detail("disableLocalAuth", boolString(a.DisableLocalAuth))
	c.detail("restrictOutboundNetworkAccess", boolString(a.RestrictOutbound))
	if a.CustomSubDomainName != "" {
		c.detail("customSubDomainName", a.CustomSubDomainName)
	}
	if a.Identity != nil {
		c.detail("identityType", a.Identity.Type)
	}
}

// DELETE: 200 when deleted, 204 when there was nothing (both done for
// azcore's poller). The account is soft-deleted (recoverable for 48 hours,
// deletedaccounts.go) and keeps its role assignments until it is purged;
// with soft delete off they go with it (accounts.Options.OnPurge).
func deleteAccount(c *call) error {
	id, err := c.accountCall(actAccountDelete)
	if err != nil {
		return err
	}
	existed, err := c.api.opts.Accounts.Delete(c.ctx(), id)
	if err != nil {
		return err
	}

	return c.deleted(existed)
}

type keysJSON struct {
	Key1 string `json:"key1"`
	Key2 string `json:"key2"`
}

// POST …/listKeys (az sends Content-Length: 0; any body is ignored).
func listKeys(c *call) error {
	id, err := c.accountCall(actListKeys)
	if err != nil {
		return err
	}
	keys, err := c.api.opts.Accounts.ListKeys(c.ctx(), id)
	if err != nil {
		return err
	}
	c.w.Header().Set("Cache-Control", "no-store")
	return c.reply(http.StatusOK, keysJSON{Key1: keys.Key1, Key2: keys.Key2})
}

// POST …/regenerateKey {"keyName":"Key1"|"Key2"} (any case) → both keys.
func regenerateKey(c *call) error {
	id, err := c.accountCall(actRegenerateKey)
	if err != nil {
		return err
	}
	var body struct {
		KeyName string `json:"keyName"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	slot, ok := accounts.ParseKeyName(body.KeyName)
	if !ok {
		return gatehouse.BadRequestf("InvalidKeyName", "The key name '%s' is invalid. It must be Key1 or Key2.", clip(body.KeyName)).WithTarget("keyName")
	}
	c.detail("keyName", []string{"Key1", "Key2"}[slot])
	keys, a, err := c.api.opts.Accounts.RegenerateKey(c.ctx(), id, slot, c.actor())
	if err != nil {
		return err
	}
	c.detail("generation", strconv.FormatInt(a.Keys[slot].Generation, 10))
	c.w.Header().Set("Cache-Control", "no-store")
	return c.reply(http.StatusOK, keysJSON{Key1: keys.Key1, Key2: keys.Key2})
}

// keyUsageJSON is the body of Gatehouse's listKeyUsage extension action.
type keyUsageJSON struct {
	KeyName             string  `json:"keyName"`
	Generation          int64   `json:"generation"`
	RegeneratedAt       string  `json:"regeneratedAt"`
	LastUsed            *string `json:"lastUsed"`
	RequestsLastHour    int64   `json:"requestsLastHour"`
	RequestsLast24Hours int64   `json:"requestsLast24Hours"`
	RequestsTotal       int64   `json:"requestsTotal"`
	// Tokens the upstreams reported for the key's requests.
	TokensLast24Hours     int64    `json:"tokensLast24Hours"`
	PromptTokensTotal     int64    `json:"promptTokensTotal"`
	CompletionTokensTotal int64    `json:"completionTokensTotal"`
	ClientAddresses       []string `json:"recentClientAddresses"`
	UserAgents            []string `json:"recentUserAgents"`
}

type principalUsageJSON struct {
	PrincipalID         string   `json:"principalId"`
	LastUsed            string   `json:"lastUsed"`
	RequestsLastHour    int64    `json:"requestsLastHour"`
	RequestsLast24Hours int64    `json:"requestsLast24Hours"`
	TokensLast24Hours   int64    `json:"tokensLast24Hours"`
	ClientAddresses     []string `json:"recentClientAddresses"`
	UserAgents          []string `json:"recentUserAgents"`
}

// POST …/listKeyUsage: per-slot usage evidence (a Gatehouse extension).
func listKeyUsage(c *call) error {
	id, err := c.accountCall(actListKeyUsage)
	if err != nil {
		return err
	}
	ev, err := c.api.opts.Accounts.KeyUsage(c.ctx(), id)
	if err != nil {
		return err
	}
	out := struct {
		Value      []keyUsageJSON       `json:"value"`
		Principals []principalUsageJSON `json:"principals"`
	}{Value: []keyUsageJSON{}, Principals: []principalUsageJSON{}}
	for _, k := range ev.Keys {
		j := keyUsageJSON{KeyName: k.KeyName, Generation: k.Generation, RegeneratedAt: armTime(k.RegeneratedAt),
			RequestsLastHour: k.RequestsLastHour, RequestsLast24Hours: k.RequestsLast24Hours, RequestsTotal: k.RequestsTotal,
			TokensLast24Hours: k.TokensLast24Hours, PromptTokensTotal: k.PromptTokensTotal, CompletionTokensTotal: k.CompletionTokensTotal,
			ClientAddresses: nonNil(k.ClientAddresses), UserAgents: nonNil(k.UserAgents)}
		if !k.LastUsed.IsZero() {
			t := k.LastUsed.UTC().Format(time.RFC3339)
			j.LastUsed = &t
		}
		out.Value = append(out.Value, j)
	}
	for _, p := range ev.Principals {
		out.Principals = append(out.Principals, principalUsageJSON{PrincipalID: p.PrincipalID,
			LastUsed: p.LastUsed.UTC().Format(time.RFC3339), RequestsLastHour: p.RequestsLastHour,
			RequestsLast24Hours: p.RequestsLast24Hours, TokensLast24Hours: p.TokensLast24Hours,
			ClientAddresses: nonNil(p.ClientAddresses), UserAgents: nonNil(p.UserAgents)})
	}
	return c.reply(http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
