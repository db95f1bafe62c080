package gatewaytest

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// TestBodyTimeout: a request whose body stops arriving is answered 408
// RequestTimeout once --body-timeout has passed with nothing of it, over
// HTTP/1.1 (the fast path) and HTTP/2 (net/http), on the data plane and
// on the management API; it does not hold its connection and handler
// until the client gives up.
func TestBodyTimeout(t *testing.T) {
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.BodyTimeout = time.Second }))
	a := e.createAccount(t, "stall", "AIServices", nil)
	e.deploy(t, a, "chat", "m")
	h1 := e.Transport.Clone()
	h1.ForceAttemptHTTP2 = false
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	for _, tt := range []struct {
		name, url, header, value string
	}{
		{"data-plane", a.endpoint + "openai/deployments/chat/chat/completions?api-version=2024-10-21", "api-key", a.key1},
		{"management", e.URL + a.id + "/deployments/other?api-version=2024-10-01", "Authorization", "Bearer " + e.mgmtToken},
	} {
		for _, proto := range []struct {
			name string
			rt   http.RoundTripper
		}{{"http1", h1}, {"http2", e.Transport}} {
			t.Run(tt.name+"/"+proto.name, func(t *testing.T) {
				stall := make(chan struct{})
				body := io.MultiReader(strings.NewReader(`{"mes`), blockUntil(stall))
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, body)
				if err != nil {
					t.Fatal(err)
				}
				if tt.name == "management" {
					req.Method = http.MethodPut
				}
				req.ContentLength = 100
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(tt.header, tt.value)
				resp, err := proto.rt.RoundTrip(req)
				if err != nil {
					close(stall)
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				// The client's body ends only now: the answer came while
				// it was still sending (closing an HTTP/2 response waits
				// for the request body's writer).
				close(stall)
				resp.Body.Close()
				var got struct {
					Error struct{ Code string } `json:"error"`
				}
				json.Unmarshal(b, &got)
				if resp.StatusCode != http.StatusRequestTimeout || got.Error.Code != "RequestTimeout" {
					t.Fatalf("%d %s, want 408 RequestTimeout", resp.StatusCode, b)
				}
			})
		}
	}
	e.AssertNotLogged(t, a.key1, e.mgmtToken)
}

// blockUntil is a reader whose Read waits for c to close, then ends.
type blockUntil chan struct{}

func (c blockUntil) Read([]byte) (int, error) {
	<-c
	return 0, io.EOF
}

// TestUpstreamTimeout: --upstream-timeout bounds how long an upstream may
// stay silent: a request to one that never answers is answered 504
// GatewayTimeout once it has passed (the default, 5 minutes, would
// outlast the test).
func TestUpstreamTimeout(t *testing.T) {
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.UpstreamTimeout = time.Second }))
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http sees the connection close only after the body
		select {
		case <-r.Context().Done(): // the gateway gave up and closed the connection
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(silent.Close)
	a := e.createAccount(t, "silent", "AIServices", nil)
	if r := e.arm(t, http.MethodPut, a.id+"/deployments/chat", deploymentBody("m", silent.URL, upstreamKey)); r.status != http.StatusCreated {
		t.Fatalf("create deployment: %d %s", r.status, r.body)
	}
	r := e.do(t, call{url: a.endpoint + "openai/deployments/chat/chat/completions?api-version=2024-10-21",
		header: map[string]string{"api-key": a.key1}, body: `{"messages":[]}`})
	if r.status != http.StatusGatewayTimeout || r.errorCode(t) != "GatewayTimeout" {
		t.Fatalf("%d %s, want 504 GatewayTimeout", r.status, r.body)
	}
}
