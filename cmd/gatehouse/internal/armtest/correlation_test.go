package armtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// testCorrelationIDs: every answer of the management API carries
// x-ms-correlation-request-id — the client's when it sent a GUID, the
// request id otherwise — errors and unauthenticated calls included; the
// Activity Log finds a write by it; the data plane does not set it.
func testCorrelationIDs(t *testing.T, e *env) {
	group := e.createGroup(t, "correlation")
	sub := "/subscriptions/" + e.sub
	mine := strings.ToUpper(gatehouse.NewGUID())
	for _, tt := range []struct {
		name, method, path, sent, token string
		status                          int
		echoed                          bool
	}{
		{"client-guid", "GET", sub + "?api-version=2022-12-01", mine, "", 200, true},
		{"none", "GET", sub + "?api-version=2022-12-01", "", "", 200, false},
		{"not-a-guid", "GET", sub + "?api-version=2022-12-01", "run-42", "", 200, false},
		{"too-long", "GET", sub + "?api-version=2022-12-01", strings.Repeat("a", 5000), "", 200, false},
		{"error", "GET", sub + "/providers/Microsoft.Nope?api-version=2021-04-01", mine, "", 404, true},
		{"unauthenticated", "GET", sub + "?api-version=2022-12-01", mine, "-", 401, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rq := request{method: tt.method, path: tt.path, token: tt.token}
			if tt.sent != "" {
				rq.header = http.Header{"X-Ms-Correlation-Request-Id": {tt.sent}}
			}
			r := e.do(t, rq)
			got := r.header.Values("x-ms-correlation-request-id")
			want := r.header.Get("x-ms-request-id")
			if tt.echoed {
				want = tt.sent
			}
			if r.status != tt.status || len(got) != 1 || got[0] != want || want == "" {
				t.Fatalf("%d: x-ms-correlation-request-id %q, x-ms-request-id %q; want %d %q", r.status, got, r.header.Get("x-ms-request-id"), tt.status, want)
			}
		})
	}
	// A write made under the client's id is found in the Activity Log by it.
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	corr := gatehouse.NewGUID()
	r := e.do(t, request{method: "PATCH", path: sub + "/resourceGroups/" + group + "?api-version=2021-04-01",
		body: map[string]any{"tags": map[string]string{"run": "1"}}, header: http.Header{"X-Ms-Correlation-Request-Id": {corr}}})
	if r.status != 200 || r.header.Get("x-ms-correlation-request-id") != corr {
		t.Fatalf("tag the group: %d %s", r.status, r.body)
	}
	filter := "eventTimestamp ge '" + since + "' and correlationId eq '" + corr + "'"
	var page struct{ Value []activityEvent }
	r = e.do(t, request{method: "GET", path: sub + "/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=" + url.QueryEscape(filter)})
	r.json(t, &page)
	if r.status != 200 || len(page.Value) != 1 || page.Value[0].CorrelationID != corr || !strings.EqualFold(page.Value[0].OperationName.Value, "Microsoft.Resources/subscriptions/resourceGroups/write") {
		t.Fatalf("the write by its correlation id: %d %+v", r.status, page.Value)
	}
	// The data plane is not ARM and does not set it.
	r = e.do(t, request{method: "POST", path: "/ai/no-such-account/language/:analyze-text?api-version=2023-04-01", token: "-",
		header: http.Header{"Ocp-Apim-Subscription-Key": {strings.Repeat("0", 32)}, "X-Ms-Correlation-Request-Id": {corr}},
		body:   `{"kind":"LanguageDetection","analysisInput":{"documents":[]}}`})
	if r.status < 400 || r.header.Get("x-ms-correlation-request-id") != "" {
		t.Errorf("data plane: %d, x-ms-correlation-request-id %q", r.status, r.header.Get("x-ms-correlation-request-id"))
	}
}
