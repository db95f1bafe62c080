package gatewaytest

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/openai/openai-go/v3/azure"
)

// TestEndpointFormHost: with --endpoint-form host, accounts advertise
// https://{account}.cognitiveservices.H/ and clients configured with it
// work; the path form keeps working too.
func TestEndpointFormHost(t *testing.T) {
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.EndpointForm = app.EndpointFormHost }))
	a := e.createAccount(t, "hostform", "AIServices", nil)
	if want := "https://hostform.cognitiveservices." + e.Host + "/"; a.endpoint != want {
		t.Fatalf("properties.endpoint %q, want %q", a.endpoint, want)
	}
	e.deploy(t, a, "chat", "m")
	for _, endpoint := range []string{a.endpoint, e.URL + "/ai/hostform/"} {
		if reply := chat(t, e.openAIClient(endpoint, azure.WithAPIKey(a.key1)), "chat", "x"); !strings.HasPrefix(reply, "echo from m") {
			t.Errorf("%s: reply %q", endpoint, reply)
		}
	}
	cfg := app.DefaultConfig()
	cfg.EndpointForm = "subdomain"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "endpoint-form") {
		t.Errorf("Validate: %v", err)
	}
}
