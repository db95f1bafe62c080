package gatewaytest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authz"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/realtime"
)

// testOpenAIRealtime: the Realtime API through the gateway, driven by
// openai-go's Realtime.Connect as Azure documents it for the v1 API (base
// URL …/openai/v1/, the deployment as the model): with the key and with an
// identity token, a session is created, a message and response.create go
// up, the reply streams back in typed events, and response.done's usage is
// metered per deployment. A principal without the realtime data action
// and a wrong key are refused before the upgrade.
func testOpenAIRealtime(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-realtime", "AIServices", nil)
	e.deploy(t, a, "voice", "upstream-realtime")
	_, cred := e.principal(t, "oai-rt-user", a, authz.RoleCognitiveServicesOpenAIUser)
	identity := e.Token(t, cred, "https://ai.azure.com/.default")
	_, noRole := e.principal(t, "oai-rt-reader", a, "")
	noRoleToken := e.Token(t, noRole, "https://cognitiveservices.azure.com/.default")
	connectAt := func(t *testing.T, node *env, endpoint, apiKey string) (*realtime.RealtimeConnection, error) {
		c := openai.NewClient(option.WithBaseURL(endpoint+"openai/v1/"), option.WithAPIKey(apiKey),
			option.WithHTTPClient(&http.Client{Transport: node.Transport}), option.WithMaxRetries(0))
		return c.Realtime.Connect(t.Context(), realtime.RealtimeConnectionOptions{}, option.WithQuery("model", "voice"))
	}
	connect := func(t *testing.T, apiKey string) (*realtime.RealtimeConnection, error) {
		return connectAt(t, e, a.endpoint, apiKey)
	}
	for _, tt := range []struct{ name, key string }{{"key", a.key2}, {"identity-token", identity}} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := connect(t, tt.key)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer conn.Close()
			ev, err := conn.Recv(t.Context())
			if err != nil || ev.Type != "session.created" || !strings.Contains(ev.RawJSON(), `"model":"upstream-realtime"`) {
				t.Fatalf("first event %s: %v", ev.RawJSON(), err)
			}
			for _, ev := range []string{
				`{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello ` + tt.name + `"}]}}`,
				`{"type":"response.create"}`,
			} {
				if err := conn.SendRaw(t.Context(), json.RawMessage(ev)); err != nil {
					t.Fatal(err)
				}
			}
			var text strings.Builder
			for {
				ev, err := conn.Recv(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if ev.Type == "response.output_text.delta" {
					text.WriteString(ev.AsResponseTextDeltaEvent().Delta)
				}
				if ev.Type == "error" {
					t.Fatalf("error event %s", ev.RawJSON())
				}
				if ev.Type == "response.done" {
					var done struct {
						Response struct {
							Status string
							Usage  struct{ InputTokens, OutputTokens int } `json:"usage"`
						}
					}
					json.Unmarshal([]byte(ev.RawJSON()), &done)
					if done.Response.Status != "completed" {
						t.Errorf("response.done %s", ev.RawJSON())
					}
					break
				}
			}
			if want := "echo from upstream-realtime at /v1/realtime: hello " + tt.name; text.String() != want {
				t.Errorf("reply %q, want %q", text.String(), want)
			}
		})
	}
	t.Run("regenerated-key-ends-session", func(t *testing.T) {
		// Regenerating key1 through the management API ends the sessions
		// opened with it (within the gateway's 2-second check) — on
		// PostgreSQL, a second node's too — as it refuses the key's next
		// request.
		nodes := map[string]*env{"this-node": e}
		if other := e.secondNode(t); other != nil {
			nodes["second-node"] = other
		}
		sessions := map[string]*realtime.RealtimeConnection{}
		for name, node := range nodes {
			conn, err := connectAt(t, node, node.URL+"/ai/"+a.name+"/", a.key1)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			defer conn.Abort()
			if ev, err := conn.Recv(t.Context()); err != nil || ev.Type != "session.created" {
				t.Fatalf("%s: first event: %v", name, err)
			}
			sessions[name] = conn
		}
		if r := e.arm(t, "POST", a.id+"/regenerateKey", `{"keyName":"Key1"}`); r.status != 200 {
			t.Fatalf("regenerate: %d %s", r.status, r.body)
		}
		for name, conn := range sessions {
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			if _, err := conn.Recv(ctx); err == nil || ctx.Err() != nil {
				t.Errorf("%s: the session outlived its key: %v", name, err)
			}
			cancel()
		}
	})
	t.Run("refusals", func(t *testing.T) {
		// (The client reports the status only; the bodies are
		// gateway.TestRealtime's.)
		for _, tt := range []struct{ name, key, want string }{
			{"wrong-key", strings.Repeat("0", 64), "401"},
			{"identity-without-role", noRoleToken, "401"},
		} {
			conn, err := connect(t, tt.key)
			if err == nil {
				conn.Abort()
				t.Fatalf("%s: connected", tt.name)
			}
			if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
	})
	// A session ends when its deployment goes, or when the account's
	// outbound restriction stops allowing its upstream.
	ends := func(t *testing.T, model string, change func()) {
		t.Helper()
		c := openai.NewClient(option.WithBaseURL(a.endpoint+"openai/v1/"), option.WithAPIKey(a.key2),
			option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
		conn, err := c.Realtime.Connect(t.Context(), realtime.RealtimeConnectionOptions{}, option.WithQuery("model", model))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Abort()
		if ev, err := conn.Recv(t.Context()); err != nil || ev.Type != "session.created" {
			t.Fatalf("first event: %v", err)
		}
		change()
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		if _, err := conn.Recv(ctx); err == nil || ctx.Err() != nil {
			t.Errorf("the session outlived the change: %v", err)
		}
	}
	t.Run("deleted-deployment-ends-session", func(t *testing.T) {
		e.deploy(t, a, "voice2", "upstream-realtime")
		ends(t, "voice2", func() {
			if r := e.arm(t, http.MethodDelete, a.id+"/deployments/voice2", ""); r.status != 200 {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
		})
	})
	t.Run("outbound-restriction-ends-session", func(t *testing.T) {
		restrict := func(on bool) {
			body := `{"properties":{"restrictOutboundNetworkAccess":false,"allowedFqdnList":[]}}`
			if on {
				body = `{"properties":{"restrictOutboundNetworkAccess":true,"allowedFqdnList":["models.example.com"]}}`
			}
			if r := e.arm(t, http.MethodPatch, a.id, body); r.status != 200 {
				t.Fatalf("restrict %v: %d %s", on, r.status, r.body)
			}
		}
		defer restrict(false)
		ends(t, "voice", func() { restrict(true) })
	})
	metrics := string(e.do(t, call{method: "GET", url: e.URL + "/metrics"}).body)
	for _, want := range []string{
		`gatehouse_gateway_tokens_total{account="oai-realtime",deployment="voice",type="prompt"} 14`,
		`gatehouse_gateway_tokens_total{account="oai-realtime",deployment="voice",type="completion"} 10`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.assertCredentialsKept(t, a.key2, identity, noRoleToken)
}
