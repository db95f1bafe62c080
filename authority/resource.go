package authority

import (
	"net"
	"net/url"
	"strings"
)

// Audiences that verifiers pass to Verify. An access token's aud is the
// resource exactly as the client requested it (Entra v1 style), so each
// resource has several equivalent spellings.
var (
	// ManagementAudiences: the management API (ARM). az asks for
	// https://management.core.windows.net/, the Go SDK for
	// https://management.azure.com/.default.
	ManagementAudiences = []string{
		"https://management.azure.com", "https://management.azure.com/",
		"https://management.core.windows.net", "https://management.core.windows.net/",
	}
	// CognitiveServicesAudiences: identity tokens for the AI data plane.
	CognitiveServicesAudiences = []string{"https://cognitiveservices.azure.com", "https://cognitiveservices.azure.com/"}
	// AIAudiences: identity tokens for the AI data plane requested the way
	// Azure's current documentation for the OpenAI v1 API and Foundry
	// resources does (scope https://ai.azure.com/.default). The data plane
	// takes both; they grant the same as any identity token: what the
	// principal's roles allow.
	AIAudiences = []string{"https://ai.azure.com", "https://ai.azure.com/"}
	// GraphAudiences: the Graph-shaped directory API.
	GraphAudiences = []string{
		"https://graph.microsoft.com", "https://graph.microsoft.com/",
		"https://graph.windows.net", "https://graph.windows.net/",
	}
)

// TokenExchangeAudience is the audience of a token meant as another
// application's federated credential (Entra's "application trusts a
// managed identity": a managed identity's token for
// api://AzureADTokenExchange is the client_assertion of an application
// whose federated credential names this server's issuer and the
// identity's object id). Only a client assertion takes it.
const TokenExchangeAudience = "api://AzureADTokenExchange"

// Canonical resource ids, as clients name them.
const (
	ResourceManagement        = "https://management.azure.com/"
	ResourceCognitiveServices = "https://cognitiveservices.azure.com"
	ResourceGraph             = "https://graph.microsoft.com"
)

// VaultResource is the Key Vault resource of this deployment,
// https://vault.H: the parent domain of every vault host, the resource the
// vault challenge names and the audience of vault tokens.
func (a *Authority) VaultResource() string { return "https://vault." + a.host }

// GraphAudiences are the audiences the Graph subset takes: Microsoft
// Graph's and Azure AD Graph's resource ids, and this server's own base
// URL — the Graph endpoint az uses when a cloud registers
// microsoftGraphResourceId as https://H/ (az 2.45 takes that one value
// for both the endpoint it calls and the resource it asks a token for).
func (a *Authority) GraphAudiences() []string {
	return append(append([]string{}, GraphAudiences...), a.base, a.base+"/")
}

// ManagementAudiences are the audiences the management API takes: ARM's
// public resource ids, and this server's own base URL — ARM's endpoint
// here, which the JavaScript ARM SDKs make their scope
// ("${endpoint}/.default") when only the endpoint is changed, as ARM's
// endpoint is its audience in every Azure cloud. The same audience is
// Graph's (az 2.45's microsoftGraphResourceId): one token for this server
// grants nothing more on either surface than the principal's roles there.
func (a *Authority) ManagementAudiences() []string {
	return append(append([]string{}, ManagementAudiences...), a.base, a.base+"/")
}

// VaultAudiences are the equivalent spellings of VaultResource.
func (a *Authority) VaultAudiences() []string {
	r := a.VaultResource()
	return []string{r, r + "/"}
}

func (a *Authority) defaultResources() []string {
	out := append([]string{}, ManagementAudiences...)
	out = append(out, CognitiveServicesAudiences...)
	out = append(out, AIAudiences...)
	out = append(out, GraphAudiences...)
	out = append(out, a.base, TokenExchangeAudience)
	return append(out, a.VaultResource())
}

// normalizeResource is the comparison form of a resource: lower case,
// without trailing slashes.
func normalizeResource(r string) string {
	return strings.ToLower(strings.TrimRight(r, "/"))
}

// KnownResource reports whether tokens may be issued for resource.
func (a *Authority) KnownResource(resource string) bool {
	return a.resources[normalizeResource(resource)]
}

// resourceFromScopes implements azure-wire.md §2.4: the resource is the
// first scope that ends in /.default with that suffix removed (a double
// slash, as az sends, leaves one trailing slash: the resource as
// requested); openid, offline_access and profile are ignored. Without a
// /.default scope, the first URL-like scope names its resource by dropping
// its last path segment (a delegated scope such as …/user_impersonation).
// ok is false when no scope names a resource.
func resourceFromScopes(scope string) (resource string, ok bool) {
	fields := strings.Fields(scope)
	for _, s := range fields {
		if r, found := strings.CutSuffix(s, "/.default"); found && r != "" {
			return r, true
		}
	}
	for _, s := range fields {
		switch s {
		case "openid", "offline_access", "profile", "email":
			continue
		}
		if i := strings.LastIndexByte(s, '/'); i > len("https://") && strings.Contains(s, "://") {
			return s[:i], true
		}
	}
	return "", false
}

// ReservedResource reports whether an application may not claim resource
// as an identifier URI: it is one of this server's resources, or an https
// URI of the server's host or a host under it (vaults, accounts), whose
// tokens only the server itself may be the audience of.
func (a *Authority) ReservedResource(resource string) bool {
	if a.KnownResource(resource) || normalizeResource(resource) == "api://azureadtokenexchange" {
		// The token-exchange audience is what federated credentials
		// trust; no application may have this authority mint it.
		return true
	}
	u, err := url.Parse(resource)
	if err != nil || !strings.EqualFold(u.Scheme, "https") {
		return false
	}
	host, own := strings.ToLower(u.Hostname()), strings.ToLower(a.host)
	if h, _, err := net.SplitHostPort(own); err == nil {
		own = h
	}
	return host == own || strings.HasSuffix(host, "."+own) ||
		strings.HasSuffix(host, ".azure.com") || strings.HasSuffix(host, ".windows.net") || strings.HasSuffix(host, ".microsoft.com")
}
