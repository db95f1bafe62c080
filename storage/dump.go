package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// A dump is a store's whole contents as of one revision: its meta entries,
// its objects and its audit log. Dumping reads them in one snapshot while
// nodes keep serving; loading writes them into an empty store in one
// transaction, so a store is either loaded completely or left untouched.
// Objects keep their revisions, times and sealed blobs byte for byte (the
// blobs stay sealed: loading needs no key), and the audit log keeps its
// sequence numbers and hashes, so a loaded store is the dumped one: ETags,
// version ids and the audit chain carry over. The change history does not:
// the loaded store's feed starts at the dump's revision, and a subscriber
// asking for anything older is told to reload (ErrHistoryGone).
//
// This is how a node is backed up and restored, and how a deployment moves
// from the embedded SQLite database to PostgreSQL (or back).

// MetaEntry is one entry of the Meta area.
type MetaEntry struct {
	Name  string
	Value []byte
}

// DumpItem is one item of a dump: exactly one field is set.
type DumpItem struct {
	Meta   *MetaEntry
	Object *Object
	Audit  *AuditRecord
}

// Dumper copies a store's contents out and into another store. Both
// backends implement it.
type Dumper interface {
	// Dump reads the store as of one moment: it calls head with the
	// store's revision, then item with every meta entry (by name), every
	// object (by kind and key) and every audit record (by sequence), in
	// that order. An error from head or item stops the walk and is
	// returned.
	Dump(ctx context.Context, head func(revision int64) error, item func(DumpItem) error) error
	// Load writes a dump into the store in one transaction: next returns
	// the items in Dump's order and io.EOF after the last; an error from
	// next (a truncated file, a value that does not open) rolls everything
	// back and is returned. The store must never have been written
	// (ErrNotEmpty). Items that break the store's rules are refused
	// (ErrBadDump): an empty or invalid kind, key or name, an object whose
	// revision is not in 1..revision, an audit record that does not follow
	// the previous one; a repeated key or alternate key fails like Create.
	// Afterwards the store's revision is revision.
	Load(ctx context.Context, revision int64, next func() (DumpItem, error)) error
}

// Load errors.
var (
	// ErrNotEmpty: Load's target store has been written to.
	ErrNotEmpty = errors.New("storage: the target store is not empty")
	// ErrBadDump: an item breaks the store's rules.
	ErrBadDump = errors.New("storage: invalid dump")
)

// DumpChecker holds the rules every backend's Load applies to the items, in
// order. The zero value expects the first item; set Revision first.
type DumpChecker struct {
	Revision int64
	stage    int // 0 meta, 1 objects, 2 audit
	lastSeq  int64
	prevHash []byte
}

// Check returns an ErrBadDump error when it breaks a rule, nil otherwise.
func (c *DumpChecker) Check(it DumpItem) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDump, fmt.Sprintf(format, args...))
	}
	n := 0
	stage := 0
	if it.Meta != nil {
		n++
	}
	if it.Object != nil {
		n, stage = n+1, 1
	}
	if it.Audit != nil {
		n, stage = n+1, 2
	}
	if n != 1 {
		return bad("an item must hold exactly one meta entry, object or audit record")
	}
	if stage < c.stage {
		return bad("items out of order (meta entries, then objects, then audit records)")
	}
	c.stage = stage
	switch {
	case it.Meta != nil:
		if it.Meta.Name == "" || !ValidKey(it.Meta.Name) {
			return bad("meta entry with an empty or invalid name")
		}
	case it.Object != nil:
		o := it.Object
		if o.Kind == "" || o.Key == "" || !ValidKey(o.Kind) || !ValidKey(o.Key) || !ValidKey(o.Alt) || !ValidKey(o.Ref) {
			return bad("object %q %q has an empty or invalid kind, key, alternate key or ref", o.Kind, o.Key)
		}
		if o.Revision < 1 || o.Revision > c.Revision {
			return bad("object %s %q has revision %d, outside the dump's 1..%d", o.Kind, o.Key, o.Revision, c.Revision)
		}
		if o.Created.IsZero() || o.Updated.IsZero() {
			return bad("object %s %q has no creation or update time", o.Kind, o.Key)
		}
	default:
		a := it.Audit
		if a.Seq != c.lastSeq+1 {
			return bad("audit record %d follows record %d", a.Seq, c.lastSeq)
		}
		if !bytes.Equal(a.PrevHash, c.prevHash) || len(a.Hash) == 0 {
			return bad("audit record %d does not chain to the previous record", a.Seq)
		}
		if a.Time.IsZero() || !a.Time.Equal(Now(a.Time)) {
			return bad("audit record %d has no time, or one finer than microseconds", a.Seq)
		}
		c.lastSeq, c.prevHash = a.Seq, a.Hash
	}
	return nil
}
