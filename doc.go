// Package gatehouse is the vocabulary of Gatehouse, a self-hosted access layer
// for AI services that speaks the wire protocols of Azure AI services, Key
// Vault, Microsoft Entra ID and Azure Resource Manager.
//
// The root package holds only the nouns every other package shares: the
// error type and its codes, identifiers, ARM resource ids and scopes, and
// principals. It imports the standard library only. Each idea lives in a
// package of its own (storage, keyring, directory, authz, authority,
// accounts, vault, gateway, server, ...); cmd/gatehouse wires them together.
package gatehouse
