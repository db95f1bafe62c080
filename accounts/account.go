package accounts

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

// Namespace and Type of AI accounts in ARM.
const (
	Namespace = "Microsoft.CognitiveServices"
	Type      = Namespace + "/accounts"
)

// Key slots. Azure calls them Key1 and Key2; arrays are indexed by slot.
const (
	Key1 = 0
	Key2 = 1
)

// SlotName returns "key1" or "key2".
func SlotName(slot int) string {
	if slot == Key2 {
		return "key2"
	}
	return "key1"
}

// ParseKeyName accepts Azure's key names in any case ("Key1", "key2").
func ParseKeyName(s string) (int, bool) {
	switch strings.ToLower(s) {
	case "key1":
		return Key1, true
	case "key2":
		return Key2, true
	}
	return 0, false
}

// Kinds are the account kinds Gatehouse serves.
var Kinds = []string{"AIServices", "CognitiveServices", "TextAnalytics", "OpenAI"}

// SKU is the account's pricing tier: one of its kind's (SKUs), kept and
// shown, never charged or enforced.
type SKU struct {
	Name string `json:"name"`
	Tier string `json:"tier,omitempty"`
}

// MatchPattern narrows a throttling rule to some requests.
type MatchPattern struct {
	Path   string `json:"path,omitempty"`
	Method string `json:"method,omitempty"`
}

// ThrottlingRule is one entry of properties.rateLimits, in ARM's
// ThrottlingRule shape: at most Count requests per RenewalPeriod seconds.
// The gateway reads two keys: RateLimitAccount (the whole account) and
// RateLimitCredential (each key slot or identity on its own).
type ThrottlingRule struct {
	Key                      string         `json:"key"`
	RenewalPeriod            float64        `json:"renewalPeriod"`
	Count                    float64        `json:"count"`
	MinCount                 float64        `json:"minCount,omitempty"`
	DynamicThrottlingEnabled bool           `json:"dynamicThrottlingEnabled,omitempty"`
	MatchPatterns            []MatchPattern `json:"matchPatterns,omitempty"`
}

// Rate-limit rule keys the gateway understands.
const (
	RateLimitAccount    = "account"
	RateLimitCredential = "credential"
)

// RateLimit returns the rule with key (any case) in properties.rateLimits:
// at most count requests per period; count 0 when there is none
// (unlimited).
func (a *Account) RateLimit(key string) (count float64, period time.Duration) {
	for _, r := range a.RateLimits {
		if strings.EqualFold(r.Key, key) && r.RenewalPeriod > 0 && r.Count > 0 {
			return r.Count, time.Duration(r.RenewalPeriod * float64(time.Second))
		}
	}
	return 0, 0
}

// Identity types.
const (
	IdentityNone                   = "None"
	IdentitySystemAssigned         = "SystemAssigned"
	IdentityUserAssigned           = "UserAssigned"
	IdentitySystemAndUserAssigned  = "SystemAssigned, UserAssigned"
	identitySystemAndUserAssigned2 = "SystemAssigned,UserAssigned"
)

// IdentityRef is a managed identity as an account refers to it.
type IdentityRef struct {
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
	TenantID    string `json:"tenantId,omitempty"`
}

// Identity is the account's managed identities.
type Identity struct {
	Type string `json:"type"`
	// System is the system-assigned identity (Type includes SystemAssigned).
	System *IdentityRef `json:"system,omitempty"`
	// UserAssigned maps user-assigned identity ARM ids (as given) to them.
	UserAssigned map[string]IdentityRef `json:"userAssigned,omitempty"`
}

// ActsAs is the identity the account acts as (reading a deployment's
// upstream credential from Key Vault): its system-assigned identity, else
// its only user-assigned one; false with none, or with several
// user-assigned ones and no system-assigned one.
func (i *Identity) ActsAs() (IdentityRef, bool) {
	if i == nil {
		return IdentityRef{}, false
	}
	ref := i.System
	if ref == nil && len(i.UserAssigned) == 1 {
		for _, u := range i.UserAssigned {
			ref = &u
		}
	}
	if ref == nil || ref.PrincipalID == "" {
		return IdentityRef{}, false
	}
	return *ref, true
}

func (i *Identity) hasSystem() bool {
	return i != nil && strings.HasPrefix(i.Type, IdentitySystemAssigned)
}

// Slot is the public state of one key slot (never the key).
type Slot struct {
	// Generation starts at 1 and grows by one with every regeneration. An
	// STS token minted from the slot records it and dies with it.
	Generation    int64     `json:"generation"`
	RegeneratedAt time.Time `json:"regeneratedAt"`
}

// Actor is who made a change, for systemData.
type Actor struct {
	ObjectID string
	// Type is ARM's createdByType: Application, User, ManagedIdentity or Key.
	Type string
}

// Account is an AI account as services and the API see it: no key
// material. Values returned by the service are snapshots; treat them as
// read-only.
type Account struct {
	// ID is the ARM id with the case it was created with.
	ID            string
	Subscription  string
	ResourceGroup string
	Name          string
	Kind          string
	Location      string
	SKU           SKU
	Tags          map[string]string
	Identity      *Identity
	// CustomSubDomainName is "" when the caller set none.
	CustomSubDomainName string
	// DataPlaneName routes the data plane (/ai/{name}/ and
	// {name}.cognitiveservices.H): the custom subdomain, else the account
	// name, lower-cased. Unique across the installation.
	DataPlaneName       string
	Endpoint            string
	DisableLocalAuth    bool
	PublicNetworkAccess string
	// NetworkACLs are the account's network rules (nil: none); Network is
	// them compiled with PublicNetworkAccess (nil: every address allowed).
	NetworkACLs *netacl.Rules
	Network     *netacl.Policy
	RateLimits  []ThrottlingRule
	// RestrictOutbound and AllowedFQDNs are restrictOutboundNetworkAccess
	// and allowedFqdnList; Outbound is them compiled (nil: unrestricted).
	RestrictOutbound bool
	AllowedFQDNs     []string
	Outbound         *netacl.Outbound
	InternalID       string
	Keys             [2]Slot
	CreatedAt        time.Time
	UpdatedAt        time.Time
	CreatedBy        Actor
	UpdatedBy        Actor
	// DeletedAt is set on a soft-deleted account (ListDeleted,
	// GetDeleted): when it was deleted; ScheduledPurge is when the upkeep
	// loop purges it unless it is recovered first.
	DeletedAt, ScheduledPurge time.Time
	// Revision is the storage revision of the last change (the ETag).
	Revision int64
}

// Key returns the account's storage key: its ARM id, lower-cased.
func (a *Account) Key() string { return strings.ToLower(a.ID) }

// record is what storage keeps: the account's public state plus the
// lookup hashes of its keys. The keys themselves are in the record's
// sealed blob. Persisted records are not API views.
type record struct {
	ID                  string            `json:"id"`
	Subscription        string            `json:"subscription"`
	ResourceGroup       string            `json:"resourceGroup"`
	Name                string            `json:"name"`
	Kind                string            `json:"kind"`
	Location            string            `json:"location"`
	SKU                 SKU               `json:"sku"`
	Tags                map[string]string `json:"tags,omitempty"`
	Identity            *Identity         `json:"identity,omitempty"`
	CustomSubDomainName string            `json:"customSubDomainName,omitempty"`
	DisableLocalAuth    bool              `json:"disableLocalAuth,omitempty"`
	PublicNetworkAccess string            `json:"publicNetworkAccess,omitempty"`
	NetworkACLs         *netacl.Rules     `json:"networkAcls,omitempty"`
	RateLimits          []ThrottlingRule  `json:"rateLimits,omitempty"`
	RestrictOutbound    bool              `json:"restrictOutbound,omitempty"`
	AllowedFQDNs        []string          `json:"allowedFqdns,omitempty"`
	InternalID          string            `json:"internalId"`
	Slots               [2]slotRecord     `json:"slots"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
	CreatedBy           actorRecord       `json:"createdBy"`
	UpdatedBy           actorRecord       `json:"updatedBy"`
	// DeletedAt is set while the account is soft-deleted (softdelete.go).
	DeletedAt      time.Time `json:"deletedAt,omitzero"`
	ScheduledPurge time.Time `json:"scheduledPurge,omitzero"`
	// Purging: a purge of the deleted account started (softdelete.go).
	Purging bool `json:"purging,omitempty"`
}

// deleted reports whether the account is soft-deleted.
func (r *record) deleted() bool { return !r.DeletedAt.IsZero() }

type slotRecord struct {
	Slot
	// Hash is the hex SHA-256 of the slot's current key.
	Hash string `json:"hash"`
}

type actorRecord struct {
	ObjectID string `json:"objectId,omitempty"`
	Type     string `json:"type,omitempty"`
}

// sealedKeys is the plaintext of a record's sealed blob.
type sealedKeys struct {
	Key1 string `json:"key1"`
	Key2 string `json:"key2"`
}

func (r *record) dataPlaneName() string {
	if r.CustomSubDomainName != "" {
		return strings.ToLower(r.CustomSubDomainName)
	}
	return strings.ToLower(r.Name)
}

func (r *record) view(rev int64, endpoint func(string) string) *Account {
	a := &Account{
		ID: r.ID, Subscription: r.Subscription, ResourceGroup: r.ResourceGroup, Name: r.Name, Kind: r.Kind,
		Location: r.Location, SKU: r.SKU, Tags: maps.Clone(r.Tags), Identity: cloneIdentity(r.Identity),
		CustomSubDomainName: r.CustomSubDomainName, DataPlaneName: r.dataPlaneName(),
		DisableLocalAuth: r.DisableLocalAuth, PublicNetworkAccess: r.PublicNetworkAccess, NetworkACLs: r.NetworkACLs.Clone(),
		RateLimits: slices.Clone(r.RateLimits), InternalID: r.InternalID,
		RestrictOutbound: r.RestrictOutbound, AllowedFQDNs: slices.Clone(r.AllowedFQDNs),
		Keys:      [2]Slot{r.Slots[0].Slot, r.Slots[1].Slot},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		CreatedBy: Actor(r.CreatedBy), UpdatedBy: Actor(r.UpdatedBy), Revision: rev,
		DeletedAt: r.DeletedAt, ScheduledPurge: r.ScheduledPurge,
	}
	if a.PublicNetworkAccess == "" {
		a.PublicNetworkAccess = "Enabled"
	}
	a.Network = netacl.Compile(a.PublicNetworkAccess, a.NetworkACLs)
	a.Outbound = netacl.CompileOutbound(a.RestrictOutbound, a.AllowedFQDNs)
	a.Endpoint = endpoint(a.DataPlaneName)
	return a
}

func cloneIdentity(i *Identity) *Identity {
	if i == nil {
		return nil
	}
	c := *i
	if i.System != nil {
		s := *i.System
		c.System = &s
	}
	c.UserAssigned = maps.Clone(i.UserAssigned)
	return &c
}

// ParseID checks that id names an account:
// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}.
func ParseID(s string) (*gatehouse.ResourceID, bool) {
	id, err := gatehouse.ParseResourceID(s)
	if err != nil || id.Scope != nil || id.ResourceGroup == "" || !strings.EqualFold(id.Namespace, Namespace) ||
		len(id.Types) != 1 || !strings.EqualFold(id.Types[0], "accounts") {
		return nil, false
	}
	return id, true
}
