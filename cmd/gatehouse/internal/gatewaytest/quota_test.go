package gatewaytest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
)

// TestDeploymentQuotas: on a node with --deployment-quotas, a deployment's
// sku capacity is its quota — openai-go gets Azure OpenAI's 429 with
// Retry-After once the requests of a 10-second window (capacity 2: two)
// or the tokens of a minute (capacity 2: 2,000) are spent, and the
// x-ratelimit-remaining-* headers on what it is served.
func TestDeploymentQuotas(t *testing.T) {
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.DeploymentQuotas = true }))
	a := e.createAccount(t, "quota-acct", "OpenAI", nil)
	for _, d := range []struct {
		name     string
		capacity int
	}{{"small", 2}, {"tokens", 2}} {
		r := e.arm(t, http.MethodPut, a.id+"/deployments/"+d.name, jsonBody(map[string]any{"sku": map[string]any{"name": "Standard", "capacity": d.capacity},
			"properties": map[string]any{"model": map[string]any{"format": "OpenAI", "name": "m-quota"},
				"upstream": map[string]any{"endpoint": e.up.URL, "key": upstreamKey}}}))
		if r.status != http.StatusCreated {
			t.Fatalf("deployment %s: %d %s", d.name, r.status, r.body)
		}
	}
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}
	var served *http.Response
	for i := range 2 {
		if _, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "small", Messages: msgs},
			option.WithResponseInto(&served)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if served.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || served.Header.Get("X-Ratelimit-Remaining-Tokens") == "" {
		t.Errorf("headers %v", served.Header)
	}
	_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "small", Messages: msgs})
	var apiErr *openai.Error
	if !asError(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "429" || !strings.Contains(apiErr.Message, "exceeded call rate limit") ||
		!retryWithin(apiErr.Response.Header.Get("Retry-After"), 5) {
		t.Fatalf("third request: %v", err)
	}

	if _, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "tokens", Messages: msgs,
		MaxTokens: openai.Int(1900)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "tokens", Messages: msgs, MaxTokens: openai.Int(500)})
	if !asError(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.Message, "ChatCompletions_Create Operation") ||
		!strings.Contains(apiErr.Message, "exceeded token rate limit") || apiErr.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("over the tokens: %v", err)
	}
	e.AssertNotLogged(t, a.key1, a.key2)
}

// retryWithin reports whether a Retry-After header is a whole number of
// seconds from 1 to most: how long is left of a refill depends on how
// long the admitted requests took (capacity 2 refills one every 5 s).
func retryWithin(v string, most int) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1 && n <= most
}
