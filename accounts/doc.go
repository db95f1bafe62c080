// Package accounts manages AI accounts (Microsoft.CognitiveServices/accounts):
// their settings, their two keys, and the evidence of how each key is used.
// It also keeps the in-memory indexes the data plane authenticates with.
//
// # Keys
//
// Every account has two key slots, key1 and key2. A key is 256 random bits
// written as 64 hex digits. Storage keeps both keys in the account record's
// sealed blob (keyring, additional data AAD(accounts.account, record key)),
// so ListKeys can return them, and the SHA-256 of each in the record itself,
// so a presented key is checked with one map lookup. Each slot has a
// generation, 1 at creation and one more at every regeneration; an STS token
// minted from a slot records it, so regenerating a key also retires the
// tokens minted from it.
//
//	RegenerateKey(slot)
//	  → storage Update (atomic; concurrent regenerations are serialized):
//	       open sealed keys → replace the slot's key → seal → new hash,
//	       generation+1
//	  → WaitFor(revision): this node's index now refuses the old key
//	  → return both keys; other nodes follow through the change feed
//
// # The data plane's view (exported for the gateway)
//
//	LookupKey / LookupKeyHash   SHA-256 of a presented key → account, slot, generation
//	ByDataPlaneName             /ai/{name}/ and {name}.cognitiveservices.H → account
//	ByID                        ARM id → account
//	RecordUsage                 flush a batch of per-slot / per-principal counts
//
// These read memory only: the index is loaded at start (Load) and every
// change to an account re-reads that record and swaps its entries, on every
// node. Writes made through this service wait for their own change to reach
// the local index before returning (read-your-writes).
//
// The data-plane name is the custom subdomain, else the account name,
// lower-cased. It is the record's alternate key, so it is unique across the
// installation (409 CustomDomainInUse otherwise).
//
// # Usage evidence
//
// Per account and slot: last use, total, requests in the last hour and day
// (5-minute buckets kept for 24 hours), and the last five distinct client
// addresses and user agents; the same per identity for token use. Counts
// are kept per key generation: a regenerated slot starts from zero.
//
// # Records
//
//	kind              key                          alt              sealed
//	accounts.account  lower-cased ARM id           data-plane name  {"key1","key2"}
//	accounts.usage    lower-cased ARM id           -                -  (holds the account's internalId)
//	accounts.deployment  see deployment.go
//
// # Deleting an account
//
// Delete removes the account with everything that hangs off it: its
// deployments and their sealed upstream credentials (before the account,
// and swept once more after it), its usage evidence and its system
// identity; Put of the same id later starts a new instance (a new
// internalId) that inherits nothing — evidence written late for the old
// instance is ignored. DeleteWithin does it for a resource group.
// PurgeOrphans, run by the node at start and hourly, removes what an
// interrupted delete left.
package accounts
