// Package keyring holds Gatehouse's master keys and seals values at rest
// with envelope encryption (AES-256-GCM).
//
// Every Seal draws a fresh random 256-bit data key (DEK) and encrypts the
// value under it; the DEK is then wrapped (encrypted) under the active
// version of the master key. Both layers bind the record that holds the
// value — AAD(kind, key) — as GCM additional data, so a sealed value copied
// to another record does not open, and changing any byte of it makes Open
// fail. Rotating the master key re-wraps only the 48-byte wrapped DEK of
// each value; value ciphertexts are never rewritten.
//
// # Key sources
//
// A key source is the text of a key file (--master-key-file) or the value
// of GATEHOUSE_MASTER_KEY. It holds one or more master key versions:
//
//	# comment lines and blank lines are ignored
//	1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
//	2:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=
//
// Entries are separated by newlines or commas ("1:...,2:..." fits in one
// environment variable). Each entry is <version>:<key>, where version is a
// decimal number from 1 to 4294967295 without sign or leading zero, and key
// is 32 bytes in standard, padded base64 (openssl rand -base64 32). Spaces
// around an entry and around its colon are ignored. A source that is one
// bare key, without "<version>:", is version 1; a bare key beside other
// entries is an error. Parsing is strict: bad base64, a length other than
// 32 bytes, version 0, a version given twice, the same key under two
// versions or an empty entry is a *SourceError naming the line and entry —
// never quoting the source, so that no error carries key material.
//
// The embedded default generates the file into the data directory with
// mode 0600 (LoadOrCreateFile); the caller logs that production should
// supply its own key. AppendVersionToFile adds the next version to a file
// for an embedded rotation, replacing it atomically and keeping mode 0600.
//
// # Sealed value layout (format 1)
//
//	offset  size    field
//	0       1       format: 0x01
//	1       4       master key version, big-endian
//	5       12      wrap nonce (random)
//	17      48      wrapped DEK: AES-256-GCM(master key, wrap nonce, DEK, aad ‖ bytes 0..4), 32 + 16-byte tag
//	65      12      value nonce (random)
//	77      n + 16  value: AES-256-GCM(DEK, value nonce, value, aad ‖ byte 0), n + 16-byte tag
//
// Overhead is 93 bytes. aad is the caller's additional data, AAD(kind,
// key) = kind ‖ 0x00 ‖ key. The wrap layer also binds the format and the
// version; the value layer binds the format but not the version, which is
// what lets Rewrap change the version without touching the value. A future
// format gets a new first byte; Open rejects unknown ones.
//
// Nonces are random 96-bit values. Each DEK encrypts one value, so the
// value layer cannot repeat a nonce; the wrap layer stays far within the
// 2^32 wraps per master key version that random GCM nonces allow, and a
// rotation starts a new version.
//
// The nonces come from the injected random source, so the package uses
// cipher.NewGCM with explicit nonces. That works with GODEBUG=fips140=on;
// fips140=only forbids caller-supplied GCM nonces and is not supported.
//
// # Bookkeeping in the database
//
// Open and Rotate keep two kinds of names in storage.Meta:
//
//	name                   value
//	keyring/kcv/<version>  key check value: hex(HMAC-SHA256(key, "gatehouse keyring check value v<version>")[:16])
//	keyring/active         the active version, decimal
//
// The key check value (KCV) identifies a key without revealing it. At start
// Open verifies every local version the database has a KCV for, fails if
// the database's active version is not local, records KCVs for new versions,
// and activates the newest version of an empty database. A wrong master key
// is therefore reported at start ("master key version 1 does not match this
// database"), not as undecryptable values later. All checks run before any
// write; every write is a compare-and-swap, so nodes may start together.
//
// # Rotation
//
//	step  who         what                                                  versions in use
//	1     operator    add version N+1 to every node's key source            N
//	2     each node   restart (or AddKeys): KCV of N+1 recorded             N
//	3     one node    Rotate: active := N+1 (CAS), re-wrap every value      N, N+1
//	4     each node   Reload (periodically): new seals use N+1              N, N+1
//	5     one node    Rotate again: re-wraps values sealed by late nodes    N+1
//	6     operator    remove N once CountVersions reports none left         N+1
//
// Because older versions stay loaded until step 6, every value opens at
// every moment: there is no downtime. The active version only moves up:
// Rotate refuses to run on a node whose newest version is older than the
// database's active one, Reload never lowers a Keyring's active version,
// and Rewrap never moves a value to an older version.
//
// # Concurrency
//
// Seal, Open and Rewrap are called from many goroutines and take no lock:
// a Keyring publishes an immutable snapshot of its versions and active
// version through an atomic pointer; AddKeys, Reload and Rotate build and
// publish a new snapshot under a mutex. The random source must be safe for
// concurrent use (crypto/rand.Reader is).
package keyring
