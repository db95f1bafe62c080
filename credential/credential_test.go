package credential

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

const testKey = "0123456789abcdef0123456789abcdef"

// fakeSTS issues unsigned JWT-shaped tokens valid for ten minutes of the
// test clock; fail makes it refuse; gate, when set, holds every answer
// until it is closed.
type fakeSTS struct {
	srv   *httptest.Server
	now   func() time.Time
	calls atomic.Int32
	paths sync.Map
	fail  atomic.Bool
	gate  atomic.Pointer[chan struct{}]
}

func newFakeSTS(t *testing.T, now func() time.Time) *fakeSTS {
	f := &fakeSTS{now: now}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.paths.Store(r.URL.Path, true)
		if g := f.gate.Load(); g != nil {
			<-*g
		}
		if f.fail.Load() || r.Method != http.MethodPost || r.Header.Get("Ocp-Apim-Subscription-Key") != testKey {
			w.Header().Set("x-ms-error-code", "401")
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"401","message":"Access denied"}}`)
			return
		}
		n := f.now()
		payload := fmt.Sprintf(`{"aud":"urn:ms.cognitiveservices","iat":%d,"exp":%d,"n":%d}`, n.Unix(), n.Add(10*time.Minute).Unix(), f.calls.Load())
		w.Header().Set("Content-Type", "application/jwt; charset=us-ascii")
		fmt.Fprint(w, "eyJhbGciOiJFUzI1NiJ9."+base64.RawURLEncoding.EncodeToString([]byte(payload))+".c2ln")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCred(t *testing.T, f *fakeSTS, clk *clock, endpoint string) *KeyCredential {
	t.Helper()
	c, err := NewKeyCredential(endpoint, testKey, &Options{
		ClientOptions: azcore.ClientOptions{Transport: f.srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
		Now:           clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetTokenCachesAndRefreshes(t *testing.T) {
	clk := &clock{t: time.Unix(1_750_000_000, 0)}
	f := newFakeSTS(t, clk.Now)
	c := newCred(t, f, clk, f.srv.URL+"/ai/acct1/")
	ctx := context.Background()
	tok, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://cognitiveservices.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresOn.Equal(clk.Now().Add(10*time.Minute)) || !tok.RefreshOn.Equal(clk.Now().Add(5*time.Minute)) {
		t.Errorf("ExpiresOn %v RefreshOn %v", tok.ExpiresOn, tok.RefreshOn)
	}
	if _, ok := f.paths.Load("/ai/acct1/sts/v1.0/issueToken"); !ok {
		t.Error("the STS was not called at the account's endpoint")
	}
	for range 10 {
		again, _ := c.GetToken(ctx, policy.TokenRequestOptions{})
		if again.Token != tok.Token {
			t.Fatal("a fresh token was not reused")
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d STS calls, want 1", n)
	}
	clk.Advance(5*time.Minute + time.Second)
	next, err := c.GetToken(ctx, policy.TokenRequestOptions{})
	if err != nil || next.Token == tok.Token || f.calls.Load() != 2 {
		t.Errorf("after the refresh time: new token %v, calls %d, err %v", next.Token != tok.Token, f.calls.Load(), err)
	}
}

func TestGetTokenSingleFlight(t *testing.T) {
	clk := &clock{t: time.Unix(1_750_000_000, 0)}
	f := newFakeSTS(t, clk.Now)
	gate := make(chan struct{})
	f.gate.Store(&gate)
	c := newCred(t, f, clk, f.srv.URL)
	var wg sync.WaitGroup
	toks := make([]string, 50)
	errs := make([]error, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{})
			toks[i], errs[i] = tok.Token, err
		})
	}
	// Let the waiters pile up behind the one request, then answer it.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d STS calls for 50 concurrent callers, want 1", n)
	}
}

func TestGetTokenFailures(t *testing.T) {
	clk := &clock{t: time.Unix(1_750_000_000, 0)}
	f := newFakeSTS(t, clk.Now)
	c := newCred(t, f, clk, f.srv.URL+"/")
	ctx := context.Background()
	tok, err := c.GetToken(ctx, policy.TokenRequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	clk.Advance(6 * time.Minute) // past the refresh time, before expiry
	if again, err := c.GetToken(ctx, policy.TokenRequestOptions{}); err != nil || again.Token != tok.Token {
		t.Errorf("a failed refresh did not fall back to the valid token: %v", err)
	}
	clk.Advance(4 * time.Minute) // expired
	_, err = c.GetToken(ctx, policy.TokenRequestOptions{})
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 401 || re.ErrorCode != "401" {
		t.Errorf("error %v, want a 401 ResponseError", err)
	}
	f.fail.Store(false)
	if _, err := c.GetToken(ctx, policy.TokenRequestOptions{}); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	t.Run("wrong-key", func(t *testing.T) {
		c, _ := NewKeyCredential(f.srv.URL, "other", &Options{ClientOptions: azcore.ClientOptions{Transport: f.srv.Client()}, Now: clk.Now})
		if _, err := c.GetToken(ctx, policy.TokenRequestOptions{}); err == nil {
			t.Error("no error")
		}
	})
	t.Run("cancelled-waiter", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		clk.Advance(time.Hour)
		gate := make(chan struct{})
		f.gate.Store(&gate)
		before := f.calls.Load()
		done := make(chan error, 1)
		go func() { _, err := c.GetToken(ctx, policy.TokenRequestOptions{}); done <- err }()
		for f.calls.Load() == before {
			time.Sleep(time.Millisecond)
		}
		if _, err := c.GetToken(cctx, policy.TokenRequestOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter: %v", err)
		}
		f.gate.Store(nil)
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("the waiting caller failed: %v", err)
		}
	})
}

func TestNewKeyCredentialChecks(t *testing.T) {
	for _, tt := range []struct{ name, endpoint, key string }{
		{"http", "http://localhost:8443/ai/a/", testKey},
		{"relative", "/ai/a/", testKey},
		{"empty-key", "https://localhost:8443/", ""},
		{"garbage", "https://[::1", testKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeyCredential(tt.endpoint, tt.key, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
	c, err := NewKeyCredential("https://acct.cognitiveservices.localhost:8443/?x=1", testKey, nil)
	if err != nil || c.url != "https://acct.cognitiveservices.localhost:8443/sts/v1.0/issueToken" {
		t.Errorf("url %q %v", c.url, err)
	}
}

func TestKeyNeverLogged(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	log.SetListener(func(e log.Event, msg string) {
		mu.Lock()
		logs.WriteString(msg)
		mu.Unlock()
	})
	defer log.SetListener(nil)
	clk := &clock{t: time.Unix(1_750_000_000, 0)}
	f := newFakeSTS(t, clk.Now)
	c, _ := NewKeyCredential(f.srv.URL, testKey, &Options{ClientOptions: azcore.ClientOptions{
		Transport: f.srv.Client(),
		Logging:   policy.LogOptions{IncludeBody: false, AllowedHeaders: []string{"Ocp-Apim-Subscription-Key"}},
	}, Now: clk.Now})
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test proves nothing")
	}
	if strings.Contains(logs.String(), testKey) {
		t.Error("the key appears in the azcore log")
	}
}
