package gatewaytest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/responses"
)

// testUsage: the gateway's counts reach the key usage evidence of the
// management API, metrics are labelled by account and credential kind
// (never a key), and denials reach the audit log.
func testUsage(t *testing.T, e *env) {
	a := e.createAccount(t, "usage-acct", "TextAnalytics", nil)
	oid, cred := e.principal(t, "usage-user", a, authz.RoleCognitiveServicesUser)
	body := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello world"}]}}`
	url := a.endpoint + languagePath
	for range 3 {
		e.do(t, call{url: url, header: map[string]string{"api-key": a.key1, "User-Agent": "usage-test/1.0"}, body: body})
	}
	e.do(t, call{url: url, header: bearer(e.sts(t, a.endpoint, a.key2)), body: body})
	e.do(t, call{url: url, header: bearer(e.Token(t, cred, "https://cognitiveservices.azure.com/.default")), body: body})
	if r := e.do(t, call{url: url, header: keyHeader("definitely-not-a-key"), body: body}); r.status != 401 {
		t.Fatalf("wrong key: %d", r.status)
	}
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev, err := e.Accounts.KeyUsage(t.Context(), a.rid)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := ev.Keys[0], ev.Keys[1]
	// key2: one STS call and one request with its token.
	if k1.RequestsTotal != 3 || k2.RequestsTotal != 2 || len(k1.UserAgents) == 0 || k1.UserAgents[0] != "usage-test/1.0" ||
		len(k1.ClientAddresses) == 0 || k1.LastUsed.IsZero() {
		t.Errorf("key usage key1 %+v key2 %+v", k1, k2)
	}
	found := false
	for _, p := range ev.Principals {
		found = found || p.PrincipalID == oid && p.RequestsLast24Hours == 1
	}
	if !found {
		t.Errorf("identity usage missing: %+v", ev.Principals)
	}

	r := e.do(t, call{method: "GET", url: e.URL + "/metrics"})
	metrics := string(r.body)
	for _, want := range []string{
		`gatehouse_gateway_requests_total{account="usage-acct",credential="key1",status="200"} 3`,
		`gatehouse_gateway_requests_total{account="usage-acct",credential="sts",status="200"} 1`,
		`gatehouse_gateway_requests_total{account="usage-acct",credential="identity",status="200"} 1`,
		`gatehouse_gateway_denials_total{account="usage-acct",reason="invalid_key"} 1`,
		`gatehouse_sts_tokens_issued_total{account="usage-acct",credential="key2"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, a.key1) || strings.Contains(metrics, a.key2) {
		t.Error("a key appears in the metrics")
	}

	// Denials are audited within one node-wide budget (a burst of 20, then
	// a few a second), which the other scenarios' refusals share, so the
	// wrong key is sent again until one is audited.
	var denied *audit.Record
	for attempt := 0; denied == nil && attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond) // the budget refills
			if r := e.do(t, call{url: url, header: keyHeader("definitely-not-a-key"), body: body}); r.status != 401 {
				t.Fatalf("wrong key: %d", r.status)
			}
			if err := e.Gateway.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		e.Audit.Each(t.Context(), 0, func(rec *audit.Record) error {
			if rec.Entry.Scope == a.id && rec.Entry.Result == audit.Denied && rec.Entry.Surface == "gateway" {
				denied = rec
			}
			return nil
		})
	}
	if denied == nil || denied.Entry.Details["reason"] != "invalid_key" || denied.Entry.Status != 401 ||
		!strings.Contains(denied.Entry.Action, "Language/analyze-text") {
		t.Errorf("audited denial %+v", denied)
	}
	e.AssertNotLogged(t, a.key1, a.key2)
}

// testTokenMetrics: the upstream's reported usage reaches
// gatehouse_gateway_tokens_total per account and deployment — from a chat
// completion, a chat stream that asked for usage, a response and a
// response stream (4 answers of 1 prompt and 1 completion token each) —
// while a chat stream without usage and reading a stored response add
// nothing.
func testTokenMetrics(t *testing.T, e *env) {
	a := e.createAccount(t, "tokens-acct", "OpenAI", nil)
	e.deploy(t, a, "counted", "m-tokens")
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("count me")}
	chat(t, c, "counted", "count me")
	for _, withUsage := range []bool{true, false} {
		params := openai.ChatCompletionNewParams{Model: "counted", Messages: msgs}
		if withUsage {
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		}
		stream := c.Chat.Completions.NewStreaming(t.Context(), params)
		for stream.Next() {
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Responses.New(t.Context(), responses.ResponseNewParams{Model: "counted",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("count me")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Responses.Get(t.Context(), resp.ID, responses.ResponseGetParams{}); err != nil {
		t.Fatal(err)
	}
	stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "counted",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("count me")}})
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	metrics := string(e.do(t, call{method: "GET", url: e.URL + "/metrics"}).body)
	for _, want := range []string{
		`gatehouse_gateway_tokens_total{account="tokens-acct",deployment="counted",type="prompt"} 4`,
		`gatehouse_gateway_tokens_total{account="tokens-acct",deployment="counted",type="completion"} 4`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The same tokens are in key1's usage evidence (listKeyUsage, what
	// `keys usage` and the portal show).
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.arm(t, "POST", a.id+"/listKeyUsage", "")
	var ev struct {
		Value []struct {
			KeyName                                                     string
			RequestsTotal                                               int64
			TokensLast24Hours, PromptTokensTotal, CompletionTokensTotal int64
		}
	}
	if err := json.Unmarshal(r.body, &ev); err != nil || r.status != 200 || len(ev.Value) != 2 {
		t.Fatalf("listKeyUsage %d %s: %v", r.status, r.body, err)
	}
	if k := ev.Value[0]; k.KeyName != "key1" || k.RequestsTotal != 6 || k.PromptTokensTotal != 4 || k.CompletionTokensTotal != 4 || k.TokensLast24Hours != 8 {
		t.Errorf("key1 evidence %+v", k)
	}
}

// testUsageAtRotation: the evidence a rotation is decided on is current.
// listKeyUsage shows a key used a moment ago, before the node's periodic
// flush; and uses of a key counted before its regeneration, flushed
// after it, are not taken for the new key's.
func testUsageAtRotation(t *testing.T, e *env) {
	a := e.createAccount(t, "rotation-usage", "TextAnalytics", nil)
	body := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello world"}]}}`
	use := func(key string, want int) {
		t.Helper()
		if r := e.do(t, call{url: a.endpoint + languagePath, header: map[string]string{"api-key": key, "User-Agent": "rotating/1"}, body: body}); r.status != want {
			t.Fatalf("request: %d %s, want %d", r.status, r.body, want)
		}
	}
	type slot struct {
		KeyName          string  `json:"keyName"`
		Generation       int64   `json:"generation"`
		LastUsed         *string `json:"lastUsed"`
		RequestsLastHour int64   `json:"requestsLastHour"`
		RequestsTotal    int64   `json:"requestsTotal"`
	}
	usage := func() [2]slot {
		t.Helper()
		r := e.arm(t, "POST", a.id+"/listKeyUsage", "")
		var ev struct{ Value []slot }
		if err := json.Unmarshal(r.body, &ev); err != nil || r.status != 200 || len(ev.Value) != 2 {
			t.Fatalf("listKeyUsage %d %s: %v", r.status, r.body, err)
		}
		return [2]slot{ev.Value[0], ev.Value[1]}
	}
	for range 3 {
		use(a.key2, 200)
	}
	if k := usage()[1]; k.RequestsLastHour != 3 || k.LastUsed == nil {
		t.Fatalf("key2 used a moment ago: %+v", k)
	}
	// key1 is used, then regenerated before anything flushed its uses.
	for range 5 {
		use(a.key1, 200)
	}
	if r := e.arm(t, "POST", a.id+"/regenerateKey", `{"keyName":"Key1"}`); r.status != 200 {
		t.Fatalf("regenerate: %d %s", r.status, r.body)
	}
	use(a.key1, 401)
	if k := usage()[0]; k.Generation != 2 || k.RequestsTotal != 0 || k.LastUsed != nil {
		t.Fatalf("the new key1 carries the old one's uses: %+v", k)
	}
}
