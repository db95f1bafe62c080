package vault

import (
	"net/http"
	"net/netip"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

// Network refusals: the innererror codes of Key Vault's 403 Forbidden.
const (
	CodeForbiddenByConnection = "ForbiddenByConnection"
	CodeForbiddenByFirewall   = "ForbiddenByFirewall"
)

// CheckNetwork applies the vault's network rules to a request from addr
// (private: addr is in the server's private networks) and returns nil when
// they admit it. Every surface that shows what is in a vault — its data
// plane, the portal, the management plane's secret metadata — asks here,
// so a firewalled vault's contents are seen from the same addresses
// everywhere.
//
// Errors (*gatehouse.Error): 403 Forbidden, with innererror
// ForbiddenByConnection (public access disabled) or ForbiddenByFirewall
// (the address matches no IP rule; the message names it), as Key Vault
// answers. caller names the caller as Key Vault does ("appid=…;oid=…").
func (v *Vault) CheckNetwork(addr netip.Addr, private bool, caller string) error {
	switch v.Network.Check(addr, private) {
	case netacl.DeniedPublicAccess:
		return gatehouse.Errorf(http.StatusForbidden, CodeForbidden,
			"Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\nCaller: %s\r\nVault: %s;location=%s",
			caller, v.Name, v.Location).WithInner(CodeForbiddenByConnection)
	case netacl.DeniedFirewall:
		return gatehouse.Errorf(http.StatusForbidden, CodeForbidden,
			"Client address is not authorized and caller is not a trusted service.\r\nClient address: %s\r\nCaller: %s\r\nVault: %s;location=%s",
			addr.String(), caller, v.Name, v.Location).WithInner(CodeForbiddenByFirewall)
	}
	return nil
}

// CallerName names p as Key Vault's refusals do: "appid=…;oid=…" (an
// application) or "oid=…".
func CallerName(p gatehouse.Principal) string {
	caller := "oid=" + p.ObjectID
	if p.ClientID != "" {
		caller = "appid=" + p.ClientID + ";" + caller
	}
	return caller
}
