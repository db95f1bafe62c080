package authority

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestRotationStateMachine walks the key states with an injected clock:
// the first start publishes an active and a next key; a rotation promotes
// next (which was published a full period earlier) and retires active; a
// retired key stays published until every token it signed has expired.
func TestRotationStateMachine(t *testing.T) {
	store := teststore.SQLite(t)
	c := newClock()
	n := newNode(t, store, testSealer(t), c, Options{RotationPeriod: time.Hour, TokenLifetime: time.Hour, MaxTokenLifetime: 2 * time.Hour})
	ctx := t.Context()

	active0, pub := n.a.SigningKeyIDs()
	if active0 == "" || len(pub) != 2 {
		t.Fatalf("first start: active %q, published %v; want an active and a next key", active0, pub)
	}
	next0 := pub[slices.IndexFunc(pub, func(k string) bool { return k != active0 })]
	tok0, _, err := n.a.Issue(ctx, gatehouse.Principal{}, "aud", 2*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Not due yet: nothing changes.
	c.Advance(59 * time.Minute)
	if err := n.a.RotateKeys(ctx, false); err != nil {
		t.Fatal(err)
	}
	if a, _ := n.a.SigningKeyIDs(); a != active0 {
		t.Fatalf("rotated before the period ended: %s → %s", active0, a)
	}

	// Due: next becomes active, a new next is published, the old key stays.
	c.Advance(time.Minute)
	if err := n.a.RotateKeys(ctx, false); err != nil {
		t.Fatal(err)
	}
	active1, pub1 := n.a.SigningKeyIDs()
	if active1 != next0 {
		t.Fatalf("active after rotation = %s, want the published next key %s", active1, next0)
	}
	if len(pub1) != 3 || !slices.Contains(pub1, active0) {
		t.Fatalf("published after rotation = %v, want retired + active + next", pub1)
	}
	tok1, _, _ := n.a.Issue(ctx, gatehouse.Principal{}, "aud", 0, nil)
	if kidOf(t, tok1) != active1 {
		t.Fatal("the new active key does not sign")
	}
	n.a.cache.Purge()
	if _, err := n.a.Verify(ctx, tok0, "aud"); err != nil {
		t.Fatalf("a token of the retired key must verify until it expires: %v", err)
	}

	// The retired key is dropped once every token it signed has expired
	// (max lifetime + 2×skew after it stopped signing) — and not before.
	c.Advance(2*time.Hour + 2*DefaultClockSkew - time.Minute)
	n.a.RotateKeys(ctx, false) // the second rotation is due; the retired key stays
	if _, pub := n.a.SigningKeyIDs(); !slices.Contains(pub, active0) {
		t.Fatal("the retired key was dropped while its tokens could still be valid")
	}
	c.Advance(2 * time.Minute)
	if err := n.a.RotateKeys(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, pub := n.a.SigningKeyIDs(); slices.Contains(pub, active0) {
		t.Fatalf("the retired key is still published after its tokens expired: %v", pub)
	}
	n.a.cache.Purge()
	if _, err := n.a.Verify(ctx, tok0, "aud"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token of a removed key: %v, want invalid", err)
	}
}

// TestRotationRace: nodes rotating at the same moment rotate once (the
// rotation is one storage Update), on SQLite and PostgreSQL.
func TestRotationRace(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		c := newClock()
		sealer := testSealer(t)
		opts := Options{RotationPeriod: time.Hour}
		nodes := []*node{newNode(t, store, sealer, c, opts), newNode(t, store, sealer, c, opts), newNode(t, store, sealer, c, opts)}
		before, _ := nodes[0].a.SigningKeyIDs()
		c.Advance(time.Hour)
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 3 {
				wg.Go(func() {
					if err := n.a.RotateKeys(context.Background(), false); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		var actives []string
		for _, n := range nodes {
			n.sync(t)
			a, pub := n.a.SigningKeyIDs()
			actives = append(actives, a)
			if len(pub) != 3 {
				t.Errorf("published %d keys, want 3 (retired, active, next): one rotation", len(pub))
			}
		}
		if actives[0] == before || actives[0] != actives[1] || actives[1] != actives[2] {
			t.Fatalf("actives %v (before %s): want one common new key", actives, before)
		}
	})
}

// TestRotationUnderLoad: tokens are issued continuously on two nodes while
// the clock runs through several rotation periods and both nodes try to
// rotate at every step. Every token must verify, on both nodes, from a cold
// cache, until it expires — and be reported expired (not invalid) after.
func TestRotationUnderLoad(t *testing.T) {
	teststore.Run(t, func(t *testing.T, store storage.Store) {
		c := newClock()
		sealer := testSealer(t)
		opts := Options{RotationPeriod: time.Hour, TokenLifetime: 45 * time.Minute, MaxTokenLifetime: time.Hour}
		a, b := newNode(t, store, sealer, c, opts), newNode(t, store, sealer, c, opts)
		ctx := t.Context()
		type issued struct {
			token string
			exp   time.Time
		}
		var mu sync.Mutex
		var tokens []issued
		kids := map[string]bool{}
		for step := range 24 { // 24 × 10 min = 4 rotation periods
			c.Advance(10 * time.Minute)
			var wg sync.WaitGroup
			for i, n := range []*node{a, b, a, b} {
				wg.Go(func() {
					for j := range 5 {
						p := gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal, TenantID: n.d.DefaultTenant(),
							ObjectID: gatehouse.NewGUID(), ClientID: gatehouse.NewGUID()}
						tok, exp, err := n.a.Issue(ctx, p, "https://management.azure.com/", 0, map[string]any{"n": i*100 + j})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						tokens = append(tokens, issued{tok, exp})
						mu.Unlock()
					}
				})
				if i < 2 {
					wg.Go(func() {
						if err := n.a.RotateKeys(ctx, false); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			a.sync(t)
			b.sync(t)
			now := c.Now()
			for _, n := range []*node{a, b} {
				n.a.cache.Purge()
				for _, tk := range tokens {
					kids[kidOf(t, tk.token)] = true
					_, err := n.a.Verify(ctx, tk.token, ManagementAudiences...)
					switch {
					case now.After(tk.exp.Add(DefaultClockSkew)):
						if !errors.Is(err, ErrTokenExpired) && !errors.Is(err, ErrTokenInvalid) {
							t.Fatalf("step %d: expired token: %v", step, err)
						}
					case err != nil:
						t.Fatalf("step %d: a token %s old does not verify: %v", step, now.Sub(tk.exp.Add(-45*time.Minute)), err)
					}
				}
			}
			// Forget tokens long expired: their keys may be gone.
			tokens = slices.DeleteFunc(tokens, func(tk issued) bool { return now.After(tk.exp.Add(time.Hour)) })
		}
		if len(kids) < 4 {
			t.Fatalf("tokens were signed by %d keys over 4 rotation periods, want ≥ 4", len(kids))
		}
	})
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	j, err := parseCompact(tok)
	if err != nil {
		t.Fatal(err)
	}
	return j.header.Kid
}

// TestSigningAlgorithms: RS256 is selectable; a node switching algorithm
// keeps verifying the old keys' tokens.
func TestSigningAlgorithms(t *testing.T) {
	store := teststore.SQLite(t)
	c := newClock()
	sealer := testSealer(t)
	es := newNode(t, store, sealer, c, Options{RotationPeriod: time.Hour})
	tokES, _, err := es.a.Issue(t.Context(), gatehouse.Principal{}, "aud", 3*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := newNode(t, store, sealer, c, Options{RotationPeriod: time.Hour, SigningAlg: AlgRS256})
	// Two rotations: the RS256 node's keys take over.
	for range 2 {
		c.Advance(time.Hour)
		if err := rs.a.RotateKeys(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	tokRS, _, err := rs.a.Issue(t.Context(), gatehouse.Principal{}, "aud", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := parseCompact(tokRS)
	if j.header.Alg != AlgRS256 {
		t.Fatalf("alg = %s, want RS256", j.header.Alg)
	}
	for _, tok := range []string{tokES, tokRS} {
		es.sync(t)
		if _, err := es.a.Verify(t.Context(), tok, "aud"); err != nil {
			t.Fatalf("verify %s: %v", fmt.Sprint(kidOf(t, tok)), err)
		}
	}
}
