package gatewaytest

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// secondNode starts another node on e's PostgreSQL database, as a node of
// the same installation (the master key and the public host — the
// tokens' issuer — shared); nil on SQLite, whose data directory has one
// node.
func (e *env) secondNode(t *testing.T) *env {
	t.Helper()
	if e.dsn == "" {
		return nil
	}
	return &env{Server: testenv.Start(t, testenv.WithPostgres(e.dsn), testenv.WithConfig(func(c *app.Config) {
		c.MasterKeyFile = filepath.Join(e.DataDir, "master.key")
		c.Host = e.Host
	}))}
}

// until waits until cond holds, checking every millisecond (spinning
// would hold one of CI's two cores while the load runs on the other).
func until(cond func() bool) {
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

// testRotation is the rotation a team runs in production: apps move to
// key2, key1 is regenerated while they keep calling. Clients on key2 (and
// on STS tokens minted from key2) see no failure at all; the old key1 and
// the tokens minted from it are refused the moment RegenerateKey returns.
func testRotation(t *testing.T, e *env) {
	a := e.createAccount(t, "rotate", "TextAnalytics", nil)
	url := a.endpoint + languagePath
	body := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello world"}]}}`
	tok1, tok2 := e.sts(t, a.endpoint, a.key1), e.sts(t, a.endpoint, a.key2)

	var stop atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	var firstFailure atomic.Pointer[result]
	for i := range 6 {
		hdr := keyHeader(a.key2)
		if i%2 == 1 {
			hdr = bearer(tok2)
		}
		wg.Go(func() {
			for !stop.Load() {
				r, err := e.try(t, call{url: url, header: hdr, body: body})
				if err != nil {
					r = &result{body: []byte(err.Error())}
				}
				if r.status == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, r)
				}
			}
		})
	}
	halt := func() { stop.Store(true); wg.Wait() }
	defer halt()
	// A second node on the same database learns the rotation from the
	// change feed (PostgreSQL only: a SQLite data directory has one node).
	other := e.secondNode(t)
	if other != nil {
		if r := other.do(t, call{url: other.URL + "/ai/" + a.name + "/" + languagePath, header: bearer(tok1), body: body}); r.status != 200 {
			t.Fatalf("second node before the regeneration: %d %s", r.status, r.body)
		}
	}
	// Let the load run before and after the regeneration.
	until(func() bool { return ok.Load() >= 50 || failed.Load() > 0 })
	res, err := e.accounts.RegenerateKey(t.Context(), e.group, a.name,
		armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	newKey1 := *res.Key1
	// Immediately: nothing minted from the old key1 works any more.
	checks := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"old-key1", keyHeader(a.key1), 401},
		{"sts-token-from-old-key1", bearer(tok1), 401},
		{"new-key1", keyHeader(newKey1), 200},
		{"key2", keyHeader(a.key2), 200},
		{"sts-token-from-key2", bearer(tok2), 200},
	}
	for _, c := range checks {
		if r := e.do(t, call{url: url, header: c.hdr, body: body}); r.status != c.status {
			t.Errorf("%s right after regeneration: %d, want %d", c.name, r.status, c.status)
		}
	}
	if *res.Key2 != a.key2 {
		t.Error("regenerating key1 changed key2")
	}
	if other != nil {
		if err := other.Watcher.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if r := other.do(t, call{url: other.URL + "/ai/" + a.name + "/" + languagePath, header: c.hdr, body: body}); r.status != c.status {
				t.Errorf("second node: %s after regeneration: %d, want %d", c.name, r.status, c.status)
			}
		}
	}
	base := ok.Load()
	until(func() bool { return ok.Load() >= base+50 || failed.Load() > 0 })
	halt()
	if n := failed.Load(); n != 0 {
		r := firstFailure.Load()
		t.Errorf("%d of %d requests on key2 failed during the rotation; first: %d %s", n, n+ok.Load(), r.status, r.body)
	}
	t.Logf("%d requests on key2 and its tokens across the regeneration, 0 failures", ok.Load())

	// A new STS token from the new key1 works; the old one stays dead.
	if r := e.do(t, call{url: url, header: bearer(e.sts(t, a.endpoint, newKey1)), body: body}); r.status != 200 {
		t.Errorf("token from the new key1: %d", r.status)
	}
	if r := e.do(t, call{url: a.endpoint + "sts/v1.0/issueToken", header: keyHeader(a.key1)}); r.status != 401 {
		t.Errorf("STS with the old key1: %d", r.status)
	}
}
