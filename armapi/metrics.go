package armapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
)

// Azure Monitor metrics of an AI account (az monitor metrics list
// --resource <account> --metric TotalCalls, list-definitions; armmonitor's
// MetricsClient), read from the usage the data plane flushes (accounts'
// Series: 5-minute windows kept 24 hours, every credential together):
//
//	GET {account}/providers/Microsoft.Insights/metricDefinitions
//	GET {account}/providers/Microsoft.Insights/metrics?metricnames=…&timespan=start/end&interval=PT5M&aggregation=Total
//
// Metrics, with Azure's names: TotalCalls (requests served with a key, an
// STS token or an identity), ProcessedPromptTokens, GeneratedTokens and
// TokenTransaction (their sum) — the tokens OpenAI-compatible upstreams
// reported. The aggregation is Total; the finest interval is five minutes
// (a finer one is widened, as Azure's AutoAdjustTimegrain does, and the
// answer says so in its interval); windows older than 24 hours hold no
// data, so their points carry no total. There are no dimensions. Reading
// needs Microsoft.Insights/metrics/read (Reader's */read).

const (
	actMetricsRead           = "Microsoft.Insights/metrics/read"
	actMetricDefinitionsRead = "Microsoft.Insights/metricDefinitions/read"
)

var metricRoutes = []route{
	{method: "GET", pattern: account + "/providers/Microsoft.Insights/metricDefinitions", family: famMetrics, handle: listMetricDefinitions},
	{method: "GET", pattern: account + "/providers/Microsoft.Insights/metrics", family: famMetrics, handle: listMetrics},
}

type metricDef struct {
	name, display, description string
	value                      func(p accounts.UsagePoint) int64
}

var accountMetrics = []metricDef{
	{"TotalCalls", "Total Calls", "Total number of calls.", func(p accounts.UsagePoint) int64 { return p.Requests }},
	{"ProcessedPromptTokens", "Processed Prompt Tokens", "Number of prompt tokens processed on an OpenAI model.",
		func(p accounts.UsagePoint) int64 { return p.PromptTokens }},
	{"GeneratedTokens", "Generated Completion Tokens", "Number of generated tokens from an OpenAI model.",
		func(p accounts.UsagePoint) int64 { return p.CompletionTokens }},
	{"TokenTransaction", "Processed Inference Tokens", "Number of inference tokens processed on an OpenAI model.",
		func(p accounts.UsagePoint) int64 { return p.PromptTokens + p.CompletionTokens }},
}

func findMetric(name string) (metricDef, bool) {
	i := slices.IndexFunc(accountMetrics, func(m metricDef) bool { return strings.EqualFold(m.name, name) })
	if i < 0 {
		return metricDef{}, false
	}
	return accountMetrics[i], true
}

type metricAvailabilityJSON struct {
	TimeGrain string `json:"timeGrain"`
	Retention string `json:"retention"`
}

type metricDefinitionJSON struct {
	ID                        string                   `json:"id"`
	ResourceID                string                   `json:"resourceId"`
	Namespace                 string                   `json:"namespace"`
	Name                      localized                `json:"name"`
	DisplayDescription        string                   `json:"displayDescription"`
	Category                  string                   `json:"category"`
	Unit                      string                   `json:"unit"`
	PrimaryAggregationType    string                   `json:"primaryAggregationType"`
	SupportedAggregationTypes []string                 `json:"supportedAggregationTypes"`
	MetricAvailabilities      []metricAvailabilityJSON `json:"metricAvailabilities"`
	IsDimensionRequired       bool                     `json:"isDimensionRequired"`
	Dimensions                []localized              `json:"dimensions"`
}

func (c *call) metricsAccount(action string) (*accounts.Account, error) {
	id, err := c.accountCall(action)
	if err != nil {
		return nil, err
	}
	return c.api.opts.Accounts.Get(c.ctx(), id)
}

func listMetricDefinitions(c *call) error {
	a, err := c.metricsAccount(actMetricDefinitionsRead)
	if err != nil {
		return err
	}
	out := list[metricDefinitionJSON]{Value: []metricDefinitionJSON{}}
	for _, m := range accountMetrics {
		out.Value = append(out.Value, metricDefinitionJSON{
			ID: a.ID + "/providers/microsoft.insights/metricdefinitions/" + m.name, ResourceID: a.ID,
			Namespace: accounts.Namespace + "/accounts", Name: localized{Value: m.name, LocalizedValue: m.display},
			DisplayDescription: m.description, Category: "Usage", Unit: "Count",
			PrimaryAggregationType: "Total", SupportedAggregationTypes: []string{"Total"},
			MetricAvailabilities: []metricAvailabilityJSON{{TimeGrain: "PT5M", Retention: "P1D"}, {TimeGrain: "PT1H", Retention: "P1D"}},
			Dimensions:           []localized{},
		})
	}
	return c.reply(http.StatusOK, out)
}

type metricValueJSON struct {
	TimeStamp string `json:"timeStamp"`
	Total     *int64 `json:"total,omitempty"`
}

type metricJSON struct {
	ID                 string             `json:"id"`
	Type               string             `json:"type"`
	Name               localized          `json:"name"`
	DisplayDescription string             `json:"displayDescription"`
	Unit               string             `json:"unit"`
	Timeseries         []metricSeriesJSON `json:"timeseries"`
	ErrorCode          string             `json:"errorCode"`
}

type metricSeriesJSON struct {
	Metadatavalues []struct{}        `json:"metadatavalues"`
	Data           []metricValueJSON `json:"data"`
}

type metricsResponseJSON struct {
	Cost           int          `json:"cost"`
	Timespan       string       `json:"timespan"`
	Interval       string       `json:"interval"`
	Value          []metricJSON `json:"value"`
	Namespace      string       `json:"namespace"`
	Resourceregion string       `json:"resourceregion"`
}

// intervals are the time grains accepted, as ISO 8601 durations; those
// under five minutes are widened to it.
var intervals = map[string]time.Duration{
	"PT1M": time.Minute, "PT5M": 5 * time.Minute, "PT15M": 15 * time.Minute, "PT30M": 30 * time.Minute,
	"PT1H": time.Hour, "PT6H": 6 * time.Hour, "PT12H": 12 * time.Hour, "P1D": 24 * time.Hour,
}

// parseMetricTime reads an ISO 8601 time; one without a zone (az sends
// Python's isoformat()) is UTC.
func parseMetricTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
	}
	return t.UTC(), err
}

func listMetrics(c *call) error {
	a, err := c.metricsAccount(actMetricsRead)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	bad := func(target, format string, args ...any) error {
		return gatehouse.BadRequestf("BadRequest", format, args...).WithTarget(target)
	}
	now := time.Now().UTC()
	from, to := now.Add(-time.Hour), now
	if ts := q.Get("timespan"); ts != "" {
		// az 2.45 (msrest) escapes the timespan twice, as Azure accepts.
		if strings.Contains(ts, "%") {
			if u, err := url.QueryUnescape(ts); err == nil {
				ts = u
			}
		}
		start, end, ok := strings.Cut(ts, "/")
		var err1, err2 error
		from, err1 = parseMetricTime(start)
		to, err2 = parseMetricTime(end)
		if !ok || err1 != nil || err2 != nil || !to.After(from) {
			return bad("timespan", "The timespan must be start/end in ISO 8601, the end after the start, e.g. 2026-11-30T00:00:00Z/2026-11-30T06:00:00Z.")
		}
		if to.Sub(from) > 31*24*time.Hour {
			return bad("timespan", "The timespan may cover at most 31 days.")
		}
	}
	grain := 5 * time.Minute
	intervalName := "PT5M"
	if iv := strings.ToUpper(q.Get("interval")); iv != "" && iv != "FULL" {
		d, ok := intervals[iv]
		if !ok {
			return bad("interval", "The interval '%s' is not supported: use PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D or FULL.", clip(q.Get("interval")))
		}
		if d > grain {
			grain, intervalName = d, iv
		}
	} else if iv == "FULL" {
		grain, intervalName = to.Sub(from), "FULL"
	}
	if to.Sub(from)/grain > 10000 {
		return bad("interval", "The timespan holds more than 10,000 intervals.")
	}
	for _, ag := range strings.Split(q.Get("aggregation"), ",") {
		if ag = strings.TrimSpace(ag); ag != "" && !strings.EqualFold(ag, "Total") && !strings.EqualFold(ag, "Sum") {
			return bad("aggregation", "The aggregation '%s' is not supported: these metrics are counts, aggregated as Total.", clip(ag))
		}
	}
	if q.Get("$filter") != "" {
		return bad("$filter", "These metrics have no dimensions to filter on.")
	}
	names := []string{"TotalCalls"}
	if mn := q.Get("metricnames"); mn != "" {
		names = strings.Split(mn, ",")
	}
	var defs []metricDef
	for _, n := range names {
		m, ok := findMetric(strings.TrimSpace(n))
		if !ok {
			return bad("metricnames", "Failed to find metric configuration for provider: Microsoft.CognitiveServices, resource type: accounts, metric: %s. Valid metrics: TotalCalls, ProcessedPromptTokens, GeneratedTokens, TokenTransaction.", clip(n))
		}
		if !slices.ContainsFunc(defs, func(d metricDef) bool { return d.name == m.name }) {
			defs = append(defs, m)
		}
	}
	points, err := c.api.opts.Accounts.Series(c.ctx(), &gatehouse.ResourceID{Subscription: a.Subscription, ResourceGroup: a.ResourceGroup,
		Namespace: accounts.Namespace, Types: []string{"accounts"}, Names: []string{a.Name}})
	if err != nil {
		return err
	}
	kept := now.Add(-accounts.UsageRetention)
	// Points start on the grain's boundaries (UTC), as Azure's do; a
	// 5-minute window counts in the point it starts in, if it starts
	// within the timespan.
	start := from.Truncate(grain)
	if intervalName == "FULL" {
		start = from
	}
	first := from.Truncate(accounts.UsageGrain)
	out := metricsResponseJSON{Timespan: from.Format(time.RFC3339) + "/" + to.Format(time.RFC3339), Interval: intervalName,
		Value: []metricJSON{}, Namespace: accounts.Namespace + "/accounts", Resourceregion: a.Location}
	for _, m := range defs {
		mj := metricJSON{ID: a.ID + "/providers/Microsoft.Insights/metrics/" + m.name, Type: "Microsoft.Insights/metrics",
			Name: localized{Value: m.name, LocalizedValue: m.display}, DisplayDescription: m.description, Unit: "Count", ErrorCode: "Success"}
		data := []metricValueJSON{}
		for t := start; t.Before(to); t = t.Add(grain) {
			v := metricValueJSON{TimeStamp: t.Format(time.RFC3339)}
			if !t.Add(grain).Before(kept) { // some of the window is within the kept 24 hours
				var total int64
				for _, p := range points {
					if !p.Start.Before(t) && p.Start.Before(t.Add(grain)) && !p.Start.Before(first) && p.Start.Before(to) {
						total += m.value(p)
					}
				}
				v.Total = &total
			}
			data = append(data, v)
		}
		mj.Timeseries = []metricSeriesJSON{{Metadatavalues: []struct{}{}, Data: data}}
		out.Value = append(out.Value, mj)
	}
	return c.reply(http.StatusOK, out)
}
