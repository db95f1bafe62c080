package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse"
)

// TestMeterFront: the table in front of the meter's entries answers the
// entry of every key — keys whose strings are other copies of the same
// text, keys that share a slot — and never one the flush has dropped.
func TestMeterFront(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := newMeter(prometheus.NewRegistry(), func() time.Time { return now })
	var accts []Account
	for i := range 600 { // more keys than slots: some share one
		id := "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		accts = append(accts, Account{ID: id + "-" + time.Duration(i).String(), InternalID: "i", Generations: [2]int64{int64(i), 1}})
	}
	seen := map[usageKey]*usageEntry{}
	for round := range 3 {
		for i := range accts {
			a := accts[i]
			if round == 1 {
				a.ID = strings.Clone(a.ID) // the same account, another view's strings
			}
			for slot := -1; slot < 2; slot++ {
				c := &call{slot: slot, principal: gatehouse.Principal{ObjectID: "p" + a.ID[len(a.ID)-3:]}}
				e := m.entry(&a, c)
				want := usageKey{account: a.ID, instance: a.InternalID, slot: slot}
				if slot < 0 {
					want.principal = c.principal.ObjectID
				} else {
					want.generation = a.Generations[slot]
				}
				if e.key != want {
					t.Fatalf("round %d: entry of %+v is %+v's", round, want, e.key)
				}
				if prev := seen[want]; prev != nil && prev != e {
					t.Fatalf("round %d: %+v has two entries", round, want)
				}
				seen[want] = e
			}
		}
	}

	// One account's keys that differ only in their generation: more than
	// there are slots.
	one := accts[1]
	for round := range 2 {
		for g := range int64(700) {
			one.Generations[1] = g
			e := m.entry(&one, &call{slot: 1})
			if e.key.generation != g || e.key.account != one.ID {
				t.Fatalf("round %d: generation %d's entry is %+v's", round, g, e.key)
			}
		}
	}

	// An entry idle past idleAfter leaves the map at a flush; the next use
	// of its key gets a new entry that the flush sees, not the dropped one.
	a := accts[0]
	c := &call{slot: 0}
	old := m.entry(&a, c)
	old.served(httptestRequest(), CredentialKey1, 200)
	if err := m.flush(context.Background(), discardSink{}, nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * idleAfter)
	if err := m.flush(context.Background(), discardSink{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.entries.Load(old.key); ok {
		t.Fatal("the idle entry is still in the map")
	}
	if e := m.entry(&a, c); e == old {
		t.Fatal("the front table answered an entry the flush dropped")
	} else if v, ok := m.entries.Load(e.key); !ok || v.(*usageEntry) != e {
		t.Fatal("the new entry is not the map's")
	}
}

// TestTokenCountersFront: token counters found through the front table are
// the ones of their account and deployment, whichever strings spell them.
func TestTokenCountersFront(t *testing.T) {
	m := newTokenMetrics()
	s := getUsageScanner()
	defer usagePool.Put(s)
	s.add([]byte(`{"usage":{"prompt_tokens":3,"completion_tokens":4}}`))
	s.done = true
	for i := range 300 {
		acct, dep := "acct"+strings.Repeat("a", i%5), "dep"+time.Duration(i%40).String()
		m.count(acct, dep, s)
		m.count(strings.Clone(acct), strings.Clone(dep), s)
	}
	for i := range 300 {
		acct, dep := "acct"+strings.Repeat("a", i%5), "dep"+time.Duration(i%40).String()
		n := 0
		for j := range 300 {
			if "acct"+strings.Repeat("a", j%5) == acct && "dep"+time.Duration(j%40).String() == dep {
				n++
			}
		}
		if got := testutil.ToFloat64(m.vec.WithLabelValues(acct, dep, "prompt")); got != float64(3*2*n) {
			t.Fatalf("%s/%s prompt = %v, want %d", acct, dep, got, 3*2*n)
		}
	}
}

type discardSink struct{}

func (discardSink) RecordUsage(context.Context, []Usage) error { return nil }

func httptestRequest() *http.Request {
	return &http.Request{RemoteAddr: "192.0.2.1:1234", Header: http.Header{}}
}
