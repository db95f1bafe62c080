// Package vault is Gatehouse's key vault: vaults (the ARM resource
// Microsoft.KeyVault/vaults) and their secrets — versions, attributes,
// soft delete, recover, purge, backup and restore — with every value
// sealed by the keyring. It is the service under the Key Vault data plane
// (kvapi) and the vault routes of the management API (armapi); the
// gateway reads upstream credentials through ResolveSecretReference.
//
// # Records
//
//	kind                 key                              alt              ref                          sealed
//	vault.vault          lower-cased ARM id               data-plane name  subscription                 -
//	vault.secret         {internalId}/{name, lower}       -                {internalId}[/deleted]       -
//	vault.secretversion  {internalId}/{name}/{version}    -                -                            the value
//
// A vault's data-plane name (its lower-cased name, the host label of
// https://{name}.vault.H/) is its alternate key: unique across the
// installation, and kept by a soft-deleted vault until it is purged.
// Secrets belong to a vault instance (internalId), so a vault purged and
// created again starts empty. A secret record names its latest version;
// each version record holds the attributes in its data and the value in
// its sealed blob, sealed with keyring.AAD(KindVersion, its key). Version
// ids are 32 lower-case hex digits. The secret's ref says live or deleted,
// so both lists are index scans.
//
// # Writes and their order (no transactions; a crash leaves a safe state)
//
//	set      version record → secret record points at it (created on the
//	         first set). A crash between them leaves an unused version.
//	delete   secret record: deleted, deletedDate, scheduledPurgeDate
//	         (versions untouched; recover reverses it). Without soft
//	         delete: purge at once.
//	purge    secret record: purging → delete its versions → delete it. A
//	         purging record refuses sets (409 ObjectIsBeingDeleted); the
//	         purge loop finishes a purge a crash interrupted.
//	restore  versions (original ids) → secret record; undone on conflict.
//	vault    delete marks the vault deleted (soft delete) or purging;
//	         purging deletes versions, secrets, then the vault record.
//
// # Reads
//
//	GetSecret(vault, name, version)
//	  → vault from memory (VaultByName: an index kept by the change feed)
//	  → secret record, version record: read cache (bounded LRU of decoded
//	    records, values still sealed), else storage
//	  → keyring Open → plaintext only in the returned Secret
//
// No write happens on a read. The cache is invalidated by the change feed
// on every node, and by the writer itself before a write returns, so a
// node always reads its own writes; a generation counter keeps a read that
// raced a write from caching what it read.
//
// # Scheduled purge
//
// Run calls PurgeDue every interval: soft-deleted secrets and vaults whose
// scheduled purge date has passed are purged — purge protection only
// forbids purging earlier, by request — and interrupted purges are
// finished. Every step is idempotent, so several nodes may run it.
//
// # Backups
//
// BackupSecret returns every version (attributes and values) as JSON,
// sealed by the keyring under fixed additional data ("vault.backup", "v1")
// that no stored record uses: opaque to clients, restorable into any vault
// of a deployment holding the same master key (while the master key
// version it was sealed under is still in the key source), and into no
// other. RestoreSecret keeps the version ids and refuses a name that exists
// (live or deleted).
package vault
