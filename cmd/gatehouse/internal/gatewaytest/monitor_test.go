package gatewaytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/openai/openai-go/v3/azure"
)

type monitorMetrics struct {
	Interval string
	Value    []struct {
		Name       struct{ Value string }
		Unit       string
		Timeseries []struct {
			Data []struct {
				TimeStamp string
				Total     *int64
			}
		}
	}
}

// totals sums each metric's points, and counts the points without data.
func (m *monitorMetrics) totals() (map[string]int64, int) {
	out, empty := map[string]int64{}, 0
	for _, v := range m.Value {
		for _, ts := range v.Timeseries {
			for _, d := range ts.Data {
				if d.Total == nil {
					empty++
					continue
				}
				out[v.Name.Value] += *d.Total
			}
		}
	}
	return out, empty
}

// testAzureMonitorMetrics: an account's Azure Monitor metrics count what
// the data plane served — calls with both keys, through a regeneration of
// one, and the tokens the upstream reported — at the five-minute grain
// (a finer interval is widened), with nothing before the 24 hours kept; a
// Reader reads them, a principal without a role does not; bad queries are
// 400.
func testAzureMonitorMetrics(t *testing.T, e *env) {
	a := e.createAccount(t, "monitored", "OpenAI", nil)
	e.deploy(t, a, "watched", "m-watched")
	for _, key := range []string{a.key1, a.key1, a.key2} {
		chat(t, e.openAIClient(a.endpoint, azure.WithAPIKey(key)), "watched", "count me")
	}
	keys, err := e.accounts.RegenerateKey(t.Context(), e.group, a.name, armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	chat(t, e.openAIClient(a.endpoint, azure.WithAPIKey(*keys.Key1)), "watched", "count me")
	if err := e.Gateway.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	metricsOf := func(query url.Values, token string) (*result, *monitorMetrics) {
		t.Helper()
		query.Set("api-version", "2018-01-01")
		r := e.do(t, call{method: "GET", url: e.URL + a.id + "/providers/Microsoft.Insights/metrics?" + query.Encode(), header: bearer(token)})
		var m monitorMetrics
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatal(err)
			}
		}
		return r, &m
	}
	now := time.Now().UTC()
	span := now.Add(-2*time.Hour).Format(time.RFC3339) + "/" + now.Add(time.Minute).Format(time.RFC3339)
	r, m := metricsOf(url.Values{"metricnames": {"TotalCalls,TokenTransaction,ProcessedPromptTokens,GeneratedTokens"}, "timespan": {span}, "interval": {"PT1H"}}, e.mgmtToken)
	if r.status != 200 || m.Interval != "PT1H" || len(m.Value) != 4 {
		t.Fatalf("metrics: %d %s", r.status, r.body)
	}
	got, empty := m.totals()
	if got["TotalCalls"] != 4 || got["TokenTransaction"] == 0 || got["TokenTransaction"] != got["ProcessedPromptTokens"]+got["GeneratedTokens"] || empty != 0 {
		t.Fatalf("totals %v (%d points without data): %s", got, empty, r.body)
	}
	// The default metric and grain: TotalCalls over the last hour; PT1M is
	// widened to five minutes.
	r, m = metricsOf(url.Values{"interval": {"PT1M"}}, e.mgmtToken)
	if got, _ := m.totals(); r.status != 200 || m.Interval != "PT5M" || len(m.Value) != 1 || got["TotalCalls"] != 4 || len(m.Value[0].Timeseries[0].Data) < 12 {
		t.Fatalf("default metrics: %d %s", r.status, r.body)
	}
	// az 2.45's form: zone-less times, the timespan escaped twice.
	azSpan := url.QueryEscape(now.Add(-time.Hour).Format("2006-01-02T15:04:05.000000") + "/" + now.Add(time.Minute).Format("2006-01-02T15:04:05.000000"))
	if r, m = metricsOf(url.Values{"timespan": {azSpan}, "interval": {"PT1M"}, "metricnames": {"TotalCalls"}, "top": {"10"}}, e.mgmtToken); r.status != 200 {
		t.Fatalf("az's timespan: %d %s", r.status, r.body)
	} else if got, _ := m.totals(); got["TotalCalls"] != 4 {
		t.Fatalf("az's timespan: %v", got)
	}
	// Nothing is kept beyond 24 hours: those points have no total.
	old := now.Add(-30*time.Hour).Format(time.RFC3339) + "/" + now.Add(-26*time.Hour).Format(time.RFC3339)
	if r, m = metricsOf(url.Values{"timespan": {old}, "interval": {"PT1H"}}, e.mgmtToken); r.status != 200 {
		t.Fatalf("old metrics: %d %s", r.status, r.body)
	} else if got, empty := m.totals(); len(got) != 0 || empty < 4 {
		t.Fatalf("old metrics: %v, %d empty: %s", got, empty, r.body)
	} else {
		for _, d := range m.Value[0].Timeseries[0].Data {
			if ts, err := time.Parse(time.RFC3339, d.TimeStamp); err != nil || !ts.Equal(ts.Truncate(time.Hour)) {
				t.Fatalf("a PT1H point at %s: not on the hour", d.TimeStamp)
			}
		}
	}
	defs := e.do(t, call{method: "GET", url: e.URL + a.id + "/providers/Microsoft.Insights/metricDefinitions?api-version=2018-01-01", header: bearer(e.mgmtToken)})
	if defs.status != 200 || !strings.Contains(string(defs.body), `"primaryAggregationType":"Total"`) || strings.Count(string(defs.body), `"unit":"Count"`) != 4 {
		t.Fatalf("metric definitions: %d %s", defs.status, defs.body)
	}

	// A Reader reads them; a principal without a role does not.
	_, readerCred := e.principal(t, "metrics-reader", a, authz.RoleReader)
	if r, _ := metricsOf(url.Values{}, e.Token(t, readerCred, "https://management.azure.com/.default")); r.status != 200 {
		t.Errorf("a Reader's metrics: %d %s", r.status, r.body)
	}
	_, noneCred := e.principal(t, "metrics-nobody", a, "")
	if r, _ := metricsOf(url.Values{}, e.Token(t, noneCred, "https://management.azure.com/.default")); r.status != 403 {
		t.Errorf("metrics without a role: %d %s", r.status, r.body)
	}

	for name, q := range map[string]url.Values{
		"unknown-metric": {"metricnames": {"TotalCalls,SecretCount"}},
		"average":        {"aggregation": {"Average"}},
		"timespan-junk":  {"timespan": {"yesterday"}},
		"timespan-back":  {"timespan": {now.Format(time.RFC3339) + "/" + now.Add(-time.Hour).Format(time.RFC3339)}},
		"timespan-long":  {"timespan": {now.Add(-40*24*time.Hour).Format(time.RFC3339) + "/" + now.Format(time.RFC3339)}},
		"interval-junk":  {"interval": {"PT2M"}},
		"filter":         {"$filter": {"ApiName eq '*'"}},
	} {
		if r, _ := metricsOf(q, e.mgmtToken); r.status != 400 || r.errorCode(t) != "BadRequest" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}
