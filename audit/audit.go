package audit

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/storage"
)

// Result is an entry's outcome.
type Result string

const (
	// Succeeded: the operation was carried out.
	Succeeded Result = "Succeeded"
	// Failed: the caller was allowed but the operation failed (not found,
	// conflict, invalid input, storage down).
	Failed Result = "Failed"
	// Denied: authorization refused the operation.
	Denied Result = "Denied"
)

// Principal is who acted, as recorded. Never a credential.
type Principal struct {
	ObjectID string `json:"objectId,omitempty"`
	Type     string `json:"type,omitempty"`
	Name     string `json:"name,omitempty"`
	TenantID string `json:"tenantId,omitempty"`
}

// Entry is one audited operation.
type Entry struct {
	// RequestID is the x-ms-request-id of the request that did it.
	RequestID string    `json:"requestId,omitempty"`
	Principal Principal `json:"principal"`
	// Action is the ARM action ("Microsoft.CognitiveServices/accounts/regenerateKey/action").
	Action string `json:"action"`
	// Scope is the ARM id the action applied to.
	Scope  string `json:"scope"`
	Result Result `json:"result"`
	// Status and Code are the HTTP status and the error code, if any.
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	// Details carries extra, non-secret facts, by names in AllowedDetails.
	Details map[string]string `json:"details,omitempty"`
	// Surface is where the operation came in ("management", "gateway").
	Surface string `json:"surface,omitempty"`
}

// AllowedDetails are the only detail names Append accepts. Each one names
// a fact that is never secret. Add a name here, with that argument, before
// using it.
var AllowedDetails = map[string]bool{
	"keyName":             true, // "Key1" or "Key2", never the key
	"generation":          true, // a key slot's generation number
	"kind":                true, // account kind
	"sku":                 true,
	"location":            true,
	"customSubDomainName": true,
	"disableLocalAuth":    true,
	// an account's data loss prevention switch (its allowedFqdnList is in
	// the resource, not the log)
	"restrictOutboundNetworkAccess": true,
	"identityType":                  true,
	"roleDefinitionId":              true,
	"roleName":                      true,
	"principalId":                   true, // an assignee's object id
	"principalType":                 true,
	"name":                          true, // a resource's own name
	"version":                       true, // a Key Vault secret's version id, never its value
	"credential":                    true, // credential kind ("key1", "sts", "identity"), never a value
	"reason":                        true, // a short public reason (an error code's message)
	"count":                         true,
	"clientAddress":                 true, // the caller's network address (no port), never a credential
	"restore":                       true, // "true" when a write recovered a soft-deleted account
	"operation":                     true, // a tags PATCH's operation: merge, replace or delete
	"tagName":                       true, // a tag's name (resource metadata), never its value
	"level":                         true, // a management lock's level: CanNotDelete or ReadOnly
	// a federated identity credential's issuer URL and subject claim: the
	// public names of the outside identity it trusts (it holds no secret)
	"issuer":  true,
	"subject": true,
	// what let a directory write through when no directory role did:
	// "owner" (the caller owns the object)
	"grantedBy": true,
	// the x-ms-correlation-request-id a management client sent (a GUID),
	// when it is not the request id
	"correlationId": true,
}

// Record is a stored entry with its place in the chain.
type Record struct {
	Seq      int64
	Time     time.Time
	Entry    Entry
	PrevHash []byte
	Hash     []byte
}

// Store is what the log needs from storage.
type Store interface {
	AppendAudit(ctx context.Context, build func(seq int64, prevHash []byte) (*storage.AuditRecord, error)) (*storage.AuditRecord, error)
	ListAudit(ctx context.Context, after int64, limit int) ([]*storage.AuditRecord, error)
	LastAuditSeq(ctx context.Context) (int64, error)
}

// Log is the audit log. It is safe for concurrent use.
type Log struct {
	store Store
	now   func() time.Time
}

// New returns the log over store; now defaults to time.Now.
func New(store Store, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, now: now}
}

// ErrInvalidEntry is returned (wrapped) by Append for an entry it refuses:
// no action or scope, an unknown result, or a detail name not in
// AllowedDetails. It signals a programming error in the caller.
var ErrInvalidEntry = errors.New("audit: invalid entry")

// Append adds e to the log and returns the stored record. Appends from
// every node are serialized by the store.
func (l *Log) Append(ctx context.Context, e Entry) (*Record, error) {
	if err := validate(&e); err != nil {
		return nil, err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: encode: %w", err)
	}
	at := storage.Now(l.now())
	rec, err := l.store.AppendAudit(ctx, func(seq int64, prev []byte) (*storage.AuditRecord, error) {
		return &storage.AuditRecord{Seq: seq, Time: at, Data: data, PrevHash: prev,
			Hash: chainHash(seq, at, data, prev)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	return &Record{Seq: rec.Seq, Time: rec.Time, Entry: e, PrevHash: rec.PrevHash, Hash: rec.Hash}, nil
}

func validate(e *Entry) error {
	if e.Action == "" || e.Scope == "" {
		return fmt.Errorf("%w: action and scope are required", ErrInvalidEntry)
	}
	switch e.Result {
	case Succeeded, Failed, Denied:
	default:
		return fmt.Errorf("%w: unknown result %q", ErrInvalidEntry, e.Result)
	}
	for name := range e.Details {
		if !AllowedDetails[name] {
			return fmt.Errorf("%w: detail %q is not in AllowedDetails", ErrInvalidEntry, name)
		}
	}
	return nil
}

// hashDomain separates this chain's hashes from any other SHA-256 use.
const hashDomain = "gatehouse audit v1\x00"

// chainHash is SHA-256(domain ‖ seq ‖ time µs ‖ len(data) ‖ data ‖ prev),
// integers big-endian 8 bytes. The length prefix keeps data and prev apart.
func chainHash(seq int64, at time.Time, data, prev []byte) []byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(at.UnixMicro()))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	h.Write(n[:])
	h.Write(data)
	h.Write(prev)
	return h.Sum(nil)
}

// List returns up to limit entries with Seq > after, in order.
func (l *Log) List(ctx context.Context, after int64, limit int) ([]*Record, error) {
	recs, err := l.store.ListAudit(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out := make([]*Record, 0, len(recs))
	for _, r := range recs {
		rec := &Record{Seq: r.Seq, Time: r.Time, PrevHash: r.PrevHash, Hash: r.Hash}
		if err := json.Unmarshal(r.Data, &rec.Entry); err != nil {
			return nil, fmt.Errorf("audit: entry %d does not decode: %w", r.Seq, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// Recent returns, newest first, up to limit of the entries keep accepts
// among the newest window entries of the log (a bounded read however long
// the log has grown).
func (l *Log) Recent(ctx context.Context, window, limit int, keep func(*Record) bool) ([]*Record, error) {
	last, err := l.store.LastAuditSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	var out []*Record
	err = l.Each(ctx, max(0, last-int64(window)), func(r *Record) error {
		if r.Seq > last {
			return errStop
		}
		if keep(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	slices.Reverse(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

var errStop = errors.New("stop")

// Before returns up to limit entries (at most storage.MaxPageSize) with
// Seq < before, newest first; before <= 0 starts at the newest entry. It
// reads one page, however long the log has grown.
func (l *Log) Before(ctx context.Context, before int64, limit int) ([]*Record, error) {
	limit = min(max(limit, 1), storage.MaxPageSize)
	last, err := l.store.LastAuditSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: before: %w", err)
	}
	if before <= 0 || before > last+1 {
		before = last + 1
	}
	recs, err := l.List(ctx, max(0, before-1-int64(limit)), limit)
	if err != nil {
		return nil, err
	}
	recs = slices.DeleteFunc(recs, func(r *Record) bool { return r.Seq >= before })
	slices.Reverse(recs)
	return recs, nil
}

// EachBefore calls fn for every entry with Seq < before (every entry when
// before <= 0), newest first, stopping at the first error (which it
// returns).
func (l *Log) EachBefore(ctx context.Context, before int64, fn func(*Record) error) error {
	return l.eachBefore(ctx, before, storage.MaxPageSize, fn)
}

func (l *Log) eachBefore(ctx context.Context, before int64, page int, fn func(*Record) error) error {
	for {
		recs, err := l.Before(ctx, before, page)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) == 0 || recs[len(recs)-1].Seq <= 1 {
			return nil
		}
		before = recs[len(recs)-1].Seq
	}
}

// Each calls fn for every entry with Seq > after, in order, stopping at the
// first error (which it returns).
func (l *Log) Each(ctx context.Context, after int64, fn func(*Record) error) error {
	for {
		recs, err := l.List(ctx, after, storage.MaxPageSize)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
			after = r.Seq
		}
		if len(recs) == 0 {
			return nil
		}
	}
}

// Report is what Verify found in an intact log.
type Report struct {
	// Entries is how many entries were checked.
	Entries int64
	// LastSeq and LastHash identify the newest entry: record them outside
	// Gatehouse to detect a truncated tail later.
	LastSeq  int64
	LastHash []byte
}

// ChainError says where the chain breaks.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at entry %d: %s", e.Seq, e.Reason)
}

// Chain checks entries one after another, from the first: sequence numbers
// follow each other from 1, every entry names the previous entry's hash,
// and every hash matches its entry. The zero value expects entry 1.
type Chain struct {
	rep  Report
	prev []byte
}

// Next checks r, the entry after the last one checked, and returns a
// *ChainError when it does not verify.
func (c *Chain) Next(r *storage.AuditRecord) error {
	switch {
	case r.Seq != c.rep.LastSeq+1:
		return &ChainError{Seq: r.Seq, Reason: fmt.Sprintf("follows entry %d", c.rep.LastSeq)}
	case subtle.ConstantTimeCompare(r.PrevHash, c.prev) != 1:
		return &ChainError{Seq: r.Seq, Reason: "does not name the previous entry's hash"}
	case subtle.ConstantTimeCompare(r.Hash, chainHash(r.Seq, r.Time, r.Data, r.PrevHash)) != 1:
		return &ChainError{Seq: r.Seq, Reason: "its hash does not match its content"}
	}
	c.prev = r.Hash
	c.rep.Entries++
	c.rep.LastSeq = r.Seq
	c.rep.LastHash = r.Hash
	return nil
}

// Report returns what the entries checked so far came to.
func (c *Chain) Report() *Report {
	rep := c.rep
	return &rep
}

// Verify walks the whole log with a Chain and returns a *ChainError for the
// first entry that does not verify.
func (l *Log) Verify(ctx context.Context) (*Report, error) {
	var c Chain
	var after int64
	for {
		recs, err := l.store.ListAudit(ctx, after, storage.MaxPageSize)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		for _, r := range recs {
			if err := c.Next(r); err != nil {
				return nil, err
			}
			after = r.Seq
		}
		if len(recs) == 0 {
			return c.Report(), nil
		}
	}
}
