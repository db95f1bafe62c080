package storage

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Sentinel errors. Backends map driver error codes to them; callers test
// with errors.Is.
var (
	// ErrNotFound: no object with that kind and key (or alternate key).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: Create found an object with the same key, or the
	// same non-empty alternate key, in the same kind.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict: an update could not be applied (its alternate key is
	// taken by another object, or an optimistic check failed).
	ErrConflict = errors.New("storage: conflict")
	// ErrHistoryGone: Changes was asked for revisions that were pruned.
	ErrHistoryGone = errors.New("storage: change history pruned")
	// ErrInvalidKey: a Kind, Key, Alt, Prefix or After that ValidKey
	// refuses, given to Create or List. (Get, GetByAlt, Update and Delete
	// answer ErrNotFound: no object can have such a key.) Such a key can
	// only come from a request, so it is a public 400: the services'
	// storage-error mappings pass a *gatehouse.Error through, and a name
	// the edge failed to validate is refused instead of being a 503.
	ErrInvalidKey = gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "A name in the request is not valid text (UTF-8 without NUL bytes).")
)

// Object is one stored record. Kind and Key identify it; the store sets
// Revision, Created and Updated.
type Object struct {
	Kind string
	// Key is unique within Kind. Services normalize it (ARM ids lower-case).
	Key string
	// Alt is an optional second unique key within Kind ("" = none): a
	// client id, a user name, a custom subdomain.
	Alt string
	// Ref is an optional non-unique index: list by it with ListOptions.Ref.
	Ref string
	// Data is the record's JSON document, stored byte for byte.
	Data []byte
	// Sealed is an optional blob sealed by the keyring with additional data
	// bound to Kind and Key. Storage stores it opaque.
	Sealed []byte
	// Expires, when non-zero, lets DeleteExpired remove the object.
	Expires time.Time

	// Revision is the revision of the write that last changed the object.
	Revision int64
	// Created and Updated are UTC, truncated to microseconds.
	Created, Updated time.Time
}

// ListOptions selects objects of one kind, ordered by Key.
type ListOptions struct {
	Kind string
	// Prefix keeps keys that start with it.
	Prefix string
	// Ref keeps objects whose Ref equals it (when non-empty).
	Ref string
	// After keeps keys strictly greater than it: the cursor of the previous
	// page.
	After string
	// Limit caps the page (0 = DefaultPageSize, at most MaxPageSize).
	Limit int
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Page is one page of a List. Next is the After of the next page, "" at the
// end.
type Page struct {
	Objects []*Object
	Next    string
}

// Objects is the per-record storage every service uses, usually through
// Table[T].
//
// Every method fails fast with the context's error when ctx is done. Every
// write is atomic and, once it returns nil, appears in the change feed.
type Objects interface {
	// Create stores a new object. ErrAlreadyExists if Kind/Key or Kind/Alt
	// is taken. Returns the stored object (with Revision and times).
	Create(ctx context.Context, o *Object) (*Object, error)
	// Get returns the object. ErrNotFound.
	Get(ctx context.Context, kind, key string) (*Object, error)
	// GetByAlt returns the object whose Alt is alt. ErrNotFound.
	GetByAlt(ctx context.Context, kind, alt string) (*Object, error)
	// List returns one page, ordered by Key.
	List(ctx context.Context, opts ListOptions) (*Page, error)
	// Update reads the object, passes a copy to fn and stores what fn left
	// in it (Data, Sealed, Alt, Ref, Expires; Kind and Key cannot change).
	// fn may be called more than once and must not have side effects; if fn
	// returns an error, nothing is written and Update returns that error.
	// No concurrent Update is lost. ErrNotFound, ErrConflict (Alt taken).
	Update(ctx context.Context, kind, key string, fn func(*Object) error) (*Object, error)
	// Delete removes the object. ErrNotFound.
	Delete(ctx context.Context, kind, key string) error
	// DeleteExpired removes objects of kind whose Expires is before t and
	// non-zero, and returns how many.
	DeleteExpired(ctx context.Context, kind string, t time.Time) (int, error)
}

// Op is what a change did.
type Op string

const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
)

// Change is one committed write.
type Change struct {
	Revision int64
	Kind     string
	Key      string
	Op       Op
	// Reset is set (with no Kind/Key) when the subscriber fell behind the
	// retained history: it must reload everything it caches.
	Reset bool
}

// Feed exposes committed changes in revision order.
type Feed interface {
	// Revision returns the newest committed revision (0 when empty).
	Revision(ctx context.Context) (int64, error)
	// Changes returns up to limit changes with revision > after, in order
	// (limit as ListOptions.Limit). ErrHistoryGone if changes after `after`
	// were pruned.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// Notify returns a channel that receives (without blocking the writer)
	// after committed writes, from this process and, where the backend can,
	// from other nodes. Wake-ups may coalesce or be lost; readers must also
	// poll. The channel is closed when ctx is done.
	Notify(ctx context.Context) <-chan struct{}
	// PruneChanges drops changes older than t, keeping at least the newest.
	PruneChanges(ctx context.Context, t time.Time) (int, error)
}

// AuditRecord is one entry of the append-only audit log.
type AuditRecord struct {
	Seq  int64
	Time time.Time
	// Data is the entry's JSON document. It never holds a secret.
	Data []byte
	// PrevHash and Hash chain the entries: Hash covers Seq, Time, Data and
	// PrevHash. The audit service computes them.
	PrevHash, Hash []byte
}

// Audit is the append-only log. There is no update and no delete.
type Audit interface {
	// AppendAudit appends one entry. build receives the sequence number the
	// entry will get and the previous entry's hash (nil for the first) and
	// returns the entry; appends are serialized, so the chain has no forks.
	// The entry must carry that Seq and PrevHash and a Time already in
	// storage form (Now(t)): Hash covers Time, and a time the store had to
	// truncate would no longer verify. AppendAudit rejects anything else.
	// build runs while appends are locked out: it should only compute.
	AppendAudit(ctx context.Context, build func(seq int64, prevHash []byte) (*AuditRecord, error)) (*AuditRecord, error)
	// ListAudit returns entries with Seq > after, in order, up to limit
	// (limit as ListOptions.Limit).
	ListAudit(ctx context.Context, after int64, limit int) ([]*AuditRecord, error)
	// LastAuditSeq returns the Seq of the newest entry (0 when there is
	// none), so that recent entries can be read without walking the log.
	LastAuditSeq(ctx context.Context) (int64, error)
}

// Meta is a tiny key/value area for the store's own bookkeeping (keyring
// check values, the active master key version). Not in the change feed.
type Meta interface {
	GetMeta(ctx context.Context, name string) ([]byte, error) // ErrNotFound
	// PutMeta sets name to value if the current value equals old (nil = absent).
	// ErrConflict otherwise.
	PutMeta(ctx context.Context, name string, old, value []byte) error
}

// Store is everything a backend offers.
type Store interface {
	Objects
	Feed
	Audit
	Meta
	// Sealed walks every object that has a Sealed blob, in (kind, key)
	// order, for the keyring's rewrap. fn returns a replacement blob or nil
	// to leave it; replacements are written only if the object's revision
	// did not change meanwhile (else that object is visited again). fn runs
	// outside any transaction: it may be slow and may use the store.
	// Returns how many replacements were written.
	RewrapSealed(ctx context.Context, fn func(kind, key string, sealed []byte) ([]byte, error)) (int, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases connections and stops background work.
	Close() error
}

// Now returns t in the form the store keeps: UTC, microseconds.
func Now(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ValidKey reports whether s can be a Kind, Key, Alt, Prefix or After:
// valid UTF-8 without a NUL byte. PostgreSQL's text holds nothing else, so
// both backends refuse other keys alike instead of SQLite storing them and
// PostgreSQL failing.
func ValidKey(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
