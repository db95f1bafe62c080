package accounts

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/storage"
)

// Usage is what one credential of one account did since the data plane's
// previous flush. The gateway counts in memory and hands batches of these to
// RecordUsage; nothing is written per request.
type Usage struct {
	// AccountID is the account's ARM id (any case).
	AccountID string
	// Instance is the account instance (Account.InternalID) the requests
	// were made to; counts for another instance than the account's (one
	// deleted, and the id created again before the flush) are dropped. ""
	// (a node that does not say): the current one.
	Instance string
	// Slot is Key1 or Key2 for keys (and the STS tokens minted from them),
	// or -1 for an identity (PrincipalID).
	Slot        int
	PrincipalID string
	// Generation is the key generation the slot's requests authenticated
	// with; 0 (a node that does not say) is taken as the current one.
	// Requests made with a key since regenerated count in the account's
	// series only: they are not evidence that the new key is in use.
	Generation int64
	// Requests since the previous flush.
	Requests int64
	// PromptTokens and CompletionTokens are the tokens the answers to them
	// reported (OpenAI-compatible upstreams' usage).
	PromptTokens, CompletionTokens int64
	LastUsed                       time.Time
	// ClientAddresses and UserAgents are the most recent distinct values,
	// newest first.
	ClientAddresses []string
	UserAgents      []string
}

// Evidence retention and granularity.
const (
	bucketWidth   = 5 * time.Minute
	retention     = 24 * time.Hour
	maxRecent     = 5
	maxPrincipals = 50
)

// usageRecord is the stored evidence of one account (kind accounts.usage,
// key = the account's storage key).
type usageRecord struct {
	// InternalID is the account instance the evidence belongs to: an
	// account deleted and created again under the same id starts afresh
	// ("" in records written before it was kept: taken as the current
	// instance).
	InternalID string                    `json:"internalId,omitempty"`
	Slots      [2]usageCounters          `json:"slots"`
	Principals map[string]*usageCounters `json:"principals,omitempty"`
	// Account counts every credential's requests together, through key
	// regenerations: the series Azure Monitor's metrics read (Series).
	Account *usageCounters `json:"account,omitempty"`
}

// usageCounters are the counters of one slot (for one generation of its
// key) or one principal.
type usageCounters struct {
	// Generation is the key generation the counters belong to; a flush for
	// a newer generation starts them afresh (slots only).
	Generation int64     `json:"generation,omitempty"`
	LastUsed   time.Time `json:"lastUsed,omitzero"`
	Total      int64     `json:"total"`
	// PromptTokens and CompletionTokens are totals, like Total.
	PromptTokens     int64 `json:"promptTokens,omitempty"`
	CompletionTokens int64 `json:"completionTokens,omitempty"`
	// Buckets count requests (and tokens) per 5-minute window (start,
	// unix seconds), oldest first, for the last 24 hours.
	Buckets         []bucket `json:"buckets,omitempty"`
	ClientAddresses []string `json:"clientAddresses,omitempty"`
	UserAgents      []string `json:"userAgents,omitempty"`
}

type bucket struct {
	Start  int64 `json:"t"`
	Count  int64 `json:"n"`
	Tokens int64 `json:"k,omitempty"` // prompt and completion
	// Prompt and Completion split Tokens (0 in buckets written before
	// they were kept).
	Prompt     int64 `json:"p,omitempty"`
	Completion int64 `json:"c,omitempty"`
}

func (c *usageCounters) add(u *Usage, now time.Time) {
	c.Total += u.Requests
	c.PromptTokens += u.PromptTokens
	c.CompletionTokens += u.CompletionTokens
	if u.LastUsed.After(c.LastUsed) {
		c.LastUsed = storage.Now(u.LastUsed)
	}
	start := u.LastUsed.Truncate(bucketWidth).Unix()
	tokens := u.PromptTokens + u.CompletionTokens
	if i := slices.IndexFunc(c.Buckets, func(b bucket) bool { return b.Start == start }); i >= 0 {
		c.Buckets[i].Count += u.Requests
		c.Buckets[i].Tokens += tokens
		c.Buckets[i].Prompt += u.PromptTokens
		c.Buckets[i].Completion += u.CompletionTokens
	} else {
		c.Buckets = append(c.Buckets, bucket{Start: start, Count: u.Requests, Tokens: tokens, Prompt: u.PromptTokens, Completion: u.CompletionTokens})
		sort.SliceStable(c.Buckets, func(i, j int) bool { return c.Buckets[i].Start < c.Buckets[j].Start })
	}
	cutoff := now.Add(-retention).Unix()
	c.Buckets = slices.DeleteFunc(c.Buckets, func(b bucket) bool { return b.Start+int64(bucketWidth/time.Second) <= cutoff })
	c.ClientAddresses = mergeRecent(u.ClientAddresses, c.ClientAddresses)
	c.UserAgents = mergeRecent(u.UserAgents, c.UserAgents)
}

// mergeRecent puts newer (newest first) in front of older, keeping
// maxRecent distinct values of at most 256 bytes.
func mergeRecent(newer, older []string) []string {
	out := make([]string, 0, maxRecent)
	for _, v := range slices.Concat(newer, older) {
		if len(v) > 256 {
			v = v[:256]
		}
		if v == "" || slices.Contains(out, v) {
			continue
		}
		out = append(out, v)
		if len(out) == maxRecent {
			break
		}
	}
	return out
}

// since returns the requests and tokens counted in the windows that end
// after t.
func (c *usageCounters) since(t time.Time) (requests, tokens int64) {
	for _, b := range c.Buckets {
		if b.Start+int64(bucketWidth/time.Second) > t.Unix() {
			requests += b.Count
			tokens += b.Tokens
		}
	}
	return requests, tokens
}

// RecordUsage stores a batch of usage counts (the data plane's flush). Each
// account's evidence is one record, updated atomically, so flushes from
// several nodes add up. Usage of unknown (deleted) accounts, and of a
// deleted instance of an account whose id now names another, is dropped.
// Counts for a key slot are attributed to the generation they name (the
// current one when they name none); those of an earlier generation than
// the slot's go to the account's series only.
func (s *Service) RecordUsage(ctx context.Context, batch []Usage) error {
	byAccount := map[string][]*Usage{}
	for i := range batch {
		u := &batch[i]
		if u.Requests < 0 || u.PromptTokens < 0 || u.CompletionTokens < 0 || u.Requests+u.PromptTokens+u.CompletionTokens == 0 ||
			(u.Slot != Key1 && u.Slot != Key2 && u.PrincipalID == "") {
			continue
		}
		id, ok := ParseID(u.AccountID)
		if !ok {
			continue
		}
		byAccount[id.Key()] = append(byAccount[id.Key()], u)
	}
	var errs []error
	for key, us := range byAccount {
		// The stored account, not this node's view of it: a node whose feed
		// lags a delete and a re-create must neither count the old
		// instance's uses as the new one's nor reset the new one's evidence.
		stored, err := s.accounts.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) || err == nil && stored.Value.deleted() {
			continue // usage of a deleted account is dropped
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a := stored.Value.view(stored.Revision, s.opts.Endpoint)
		us = slices.DeleteFunc(us, func(u *Usage) bool { return u.Instance != "" && u.Instance != a.InternalID })
		if len(us) == 0 {
			continue
		}
		gens := [2]int64{a.Keys[0].Generation, a.Keys[1].Generation}
		now := s.opts.Now()
		apply := func(r *usageRecord) {
			if r.InternalID != a.InternalID {
				if r.InternalID != "" {
					*r = usageRecord{} // a previous instance's evidence
				}
				r.InternalID = a.InternalID
			}
			for _, u := range us {
				if r.Account == nil {
					r.Account = &usageCounters{}
				}
				r.Account.add(u, now)
				var c *usageCounters
				if u.Slot == Key1 || u.Slot == Key2 {
					c = &r.Slots[u.Slot]
					// This node's index may lag the key's regeneration on
					// another: a generation newer than it knows is current.
					cur := max(gens[u.Slot], c.Generation)
					g := u.Generation
					if g == 0 {
						g = cur
					}
					if g < cur {
						continue // a key since regenerated
					}
					if c.Generation != g {
						*c = usageCounters{Generation: g}
					}
				} else {
					if r.Principals == nil {
						r.Principals = map[string]*usageCounters{}
					}
					p := strings.ToLower(u.PrincipalID)
					if c = r.Principals[p]; c == nil {
						c = &usageCounters{}
						r.Principals[p] = c
					}
				}
				c.add(u, now)
			}
			trimPrincipals(r)
		}
		_, err = s.usage.Update(ctx, key, func(r *storage.Record[usageRecord]) error {
			apply(&r.Value)
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			var v usageRecord
			apply(&v)
			_, err = s.usage.Create(ctx, &storage.Record[usageRecord]{Key: key, Value: v})
			if errors.Is(err, storage.ErrAlreadyExists) {
				// Another node created it first: add to theirs.
				_, err = s.usage.Update(ctx, key, func(r *storage.Record[usageRecord]) error {
					apply(&r.Value)
					return nil
				})
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return unavailable(err)
	}
	return nil
}

// trimPrincipals keeps the maxPrincipals most recently seen principals.
func trimPrincipals(r *usageRecord) {
	if len(r.Principals) <= maxPrincipals {
		return
	}
	type kv struct {
		k string
		t time.Time
	}
	var all []kv
	for k, c := range r.Principals {
		all = append(all, kv{k, c.LastUsed})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].t.After(all[j].t) })
	for _, e := range all[maxPrincipals:] {
		delete(r.Principals, e.k)
	}
}

// KeyUsage is the evidence of how one key slot is used: what to look at
// before regenerating it.
type KeyUsage struct {
	// KeyName is "key1" or "key2".
	KeyName       string
	Generation    int64
	RegeneratedAt time.Time
	// LastUsed is zero when the current key was never used (as far as the
	// data plane has flushed).
	LastUsed            time.Time
	RequestsLastHour    int64
	RequestsLast24Hours int64
	// RequestsTotal counts every request since the key was generated.
	RequestsTotal int64
	// TokensLast24Hours and the totals since the key was generated are
	// the tokens the upstreams reported for its requests.
	TokensLast24Hours     int64
	PromptTokensTotal     int64
	CompletionTokensTotal int64
	ClientAddresses       []string
	UserAgents            []string
}

// PrincipalUsage is the evidence of one identity's use of the account.
type PrincipalUsage struct {
	PrincipalID         string
	LastUsed            time.Time
	RequestsLastHour    int64
	RequestsLast24Hours int64
	TokensLast24Hours   int64
	ClientAddresses     []string
	UserAgents          []string
}

// Evidence is an account's usage evidence.
type Evidence struct {
	Keys       [2]KeyUsage
	Principals []PrincipalUsage
}

// KeyUsage returns the account's usage evidence: this node's counts up to
// now (SetUsageFlusher), other nodes' as of their last flush (at most one
// flush interval old).
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) KeyUsage(ctx context.Context, id *gatehouse.ResourceID) (*Evidence, error) {
	a, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if f := s.flushUsage.Load(); f != nil {
		// A failure leaves the counts for the next flush; the evidence
		// stored so far is still worth showing.
		if err := (*f)(ctx); err != nil && s.opts.Logger != nil {
			s.opts.Logger.Warn("accounts: usage flush before reading key usage failed", "err", err)
		}
	}
	var u usageRecord
	rec, err := s.usage.Get(ctx, a.Key())
	switch {
	case err == nil:
		if rec.Value.InternalID == "" || rec.Value.InternalID == a.InternalID {
			u = rec.Value
		}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, unavailable(err)
	}
	now := s.opts.Now()
	ev := &Evidence{}
	for slot := range 2 {
		k := KeyUsage{KeyName: SlotName(slot), Generation: a.Keys[slot].Generation, RegeneratedAt: a.Keys[slot].RegeneratedAt}
		if c := u.Slots[slot]; c.Generation == k.Generation {
			k.LastUsed, k.RequestsTotal = c.LastUsed, c.Total
			k.PromptTokensTotal, k.CompletionTokensTotal = c.PromptTokens, c.CompletionTokens
			k.RequestsLastHour, _ = c.since(now.Add(-time.Hour))
			k.RequestsLast24Hours, k.TokensLast24Hours = c.since(now.Add(-retention))
			k.ClientAddresses, k.UserAgents = c.ClientAddresses, c.UserAgents
		}
		ev.Keys[slot] = k
	}
	for p, c := range u.Principals {
		hour, _ := c.since(now.Add(-time.Hour))
		day, tokens := c.since(now.Add(-retention))
		ev.Principals = append(ev.Principals, PrincipalUsage{PrincipalID: p, LastUsed: c.LastUsed,
			RequestsLastHour: hour, RequestsLast24Hours: day, TokensLast24Hours: tokens,
			ClientAddresses: c.ClientAddresses, UserAgents: c.UserAgents})
	}
	sort.Slice(ev.Principals, func(i, j int) bool { return ev.Principals[i].LastUsed.After(ev.Principals[j].LastUsed) })
	return ev, nil
}

// UsagePoint is one 5-minute window of an account's use.
type UsagePoint struct {
	Start                                    time.Time
	Requests, PromptTokens, CompletionTokens int64
}

// UsageGrain and UsageRetention are the width of a UsagePoint and how long
// points are kept.
const (
	UsageGrain     = bucketWidth
	UsageRetention = retention
)

// Series returns the account's use in 5-minute windows over the last 24
// hours, oldest first, every credential together and through key
// regenerations (windows without use are absent), as of the data plane's
// last flush: what Azure Monitor's metrics of the account are read from.
//
// Errors (*gatehouse.Error): 404 ResourceNotFound; 503.
func (s *Service) Series(ctx context.Context, id *gatehouse.ResourceID) ([]UsagePoint, error) {
	a, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, err := s.usage.Get(ctx, a.Key())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	u := rec.Value
	if (u.InternalID != "" && u.InternalID != a.InternalID) || u.Account == nil {
		return nil, nil
	}
	cutoff := s.opts.Now().Add(-retention).Unix()
	var out []UsagePoint
	for _, b := range u.Account.Buckets {
		if b.Start+int64(bucketWidth/time.Second) <= cutoff {
			continue
		}
		out = append(out, UsagePoint{Start: time.Unix(b.Start, 0).UTC(), Requests: b.Count, PromptTokens: b.Prompt, CompletionTokens: b.Completion})
	}
	return out, nil
}
