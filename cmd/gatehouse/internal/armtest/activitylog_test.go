package armtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authz"
)

type activityEvent struct {
	Authorization struct{ Action, Scope string }
	Caller        string
	CorrelationID string
	EventDataID   string
	ID            string
	Level         string
	OperationName struct{ Value string }
	ResourceID    string
	Status        struct{ Value string }
	SubStatus     struct{ Value string }
	Properties    map[string]string
	HTTPRequest   struct{ Method string }
}

// testActivityLog: the subscription's Activity Log shows the management
// operations within it — a key regeneration, a refused change (Failed,
// Forbidden) — newest first, by resource group, resource, correlation id
// and status; a Reader of the group sees them, a Reader elsewhere does
// not; data-plane requests are not in it; pages follow nextLink; a bad
// $filter is 400.
func testActivityLog(t *testing.T, e *env) {
	group := e.createGroup(t, "activity")
	createAccount(t, e, group, "activity-acct", "TextAnalytics")
	acct := e.accountPath(group, "activity-acct")
	regen := e.do(t, request{method: "POST", path: acct + "/regenerateKey?api-version=2024-10-01", body: map[string]string{"keyName": "Key2"}})
	if regen.status != 200 {
		t.Fatalf("regenerate: %d %s", regen.status, regen.body)
	}
	correlation := regen.header.Get("x-ms-request-id")
	reader, readerCred := e.principal(t, "activity-reader")
	assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+group, authz.RoleReader, reader)
	readerTok := e.Token(t, readerCred, mgmtScope)
	if r := e.do(t, request{method: "PATCH", path: acct + "?api-version=2024-10-01", body: map[string]any{"tags": map[string]string{"x": "y"}}, token: readerTok}); r.status != 403 {
		t.Fatalf("a Reader's PATCH: %d", r.status)
	}
	// A data-plane denial is audited, but is not an Activity Log event.
	if r := e.do(t, request{method: "POST", path: "/ai/activity-acct/language/:analyze-text?api-version=2023-04-01", token: "-",
		header: http.Header{"Ocp-Apim-Subscription-Key": {strings.Repeat("0", 32)}}, body: `{"kind":"LanguageDetection","analysisInput":{"documents":[]}}`}); r.status != 401 {
		t.Fatalf("data plane with a wrong key: %d %s", r.status, r.body)
	}
	e.Gateway.Flush(t.Context())

	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	events := func(filter, token string) []activityEvent {
		t.Helper()
		var all []activityEvent
		next := "/subscriptions/" + e.sub + "/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=" + url.QueryEscape(filter)
		for pages := 0; next != ""; pages++ {
			if pages > 50 {
				t.Fatal("the nextLinks never end")
			}
			var page struct {
				Value    []activityEvent
				NextLink string
			}
			r := e.do(t, request{method: "GET", path: next, token: token})
			if r.status != 200 {
				t.Fatalf("activity log %q: %d %s", filter, r.status, r.body)
			}
			r.json(t, &page)
			all = append(all, page.Value...)
			next = strings.TrimPrefix(page.NextLink, e.URL)
		}
		return all
	}
	inGroup := events("eventTimestamp ge '"+since+"' and resourceGroupName eq '"+group+"'", "")
	find := func(evs []activityEvent, action, status string) *activityEvent {
		for i := range evs {
			if strings.EqualFold(evs[i].OperationName.Value, action) && evs[i].Status.Value == status {
				return &evs[i]
			}
		}
		return nil
	}
	regenEv := find(inGroup, "Microsoft.CognitiveServices/accounts/regenerateKey/action", "Succeeded")
	if regenEv == nil || !strings.EqualFold(regenEv.ResourceID, acct) || regenEv.Level != "Informational" || regenEv.Properties["keyName"] != "Key2" ||
		regenEv.HTTPRequest.Method != "POST" || regenEv.CorrelationID != correlation || !strings.HasPrefix(strings.ToLower(regenEv.ID), strings.ToLower(acct)+"/events/") {
		t.Fatalf("the regeneration's event: %+v (of %d)", regenEv, len(inGroup))
	}
	refused := find(inGroup, "Microsoft.CognitiveServices/accounts/write", "Failed")
	if refused == nil || refused.SubStatus.Value != "Forbidden" || refused.Level != "Error" || refused.Caller != reader {
		t.Fatalf("the refused PATCH's event: %+v", refused)
	}
	for i, ev := range inGroup {
		if ev.Properties["surface"] != "management" && ev.Properties["surface"] != "portal" {
			t.Errorf("a %s event in the Activity Log", ev.Properties["surface"])
		}
		if i > 0 && ev.EventDataID == inGroup[i-1].EventDataID {
			t.Errorf("event ids repeat")
		}
	}
	if byID := events("eventTimestamp ge '"+since+"' and correlationId eq '"+correlation+"'", ""); len(byID) != 1 || byID[0].EventDataID != regenEv.EventDataID {
		t.Errorf("by correlation id: %+v", byID)
	}
	if failed := events("eventTimestamp ge '"+since+"' and resourceId eq '"+acct+"' and status eq 'Failed'", ""); len(failed) != 1 {
		t.Errorf("failed events of the account: %+v", failed)
	}
	// The group's Reader sees its events; a Reader elsewhere does not.
	if got := events("eventTimestamp ge '"+since+"' and resourceGroupName eq '"+group+"'", readerTok); find(got, "Microsoft.CognitiveServices/accounts/regenerateKey/action", "Succeeded") == nil {
		t.Errorf("the group's Reader does not see the regeneration (%d events)", len(got))
	}
	other, otherCred := e.principal(t, "activity-outsider")
	outsiderGroup := e.createGroup(t, "activity-elsewhere")
	assign(t, e, "/subscriptions/"+e.sub+"/resourceGroups/"+outsiderGroup, authz.RoleReader, other)
	if got := events("eventTimestamp ge '"+since+"' and resourceGroupName eq '"+group+"'", e.Token(t, otherCred, mgmtScope)); len(got) != 0 {
		t.Errorf("a Reader of another group sees %d events", len(got))
	}

	// Newest first, across pages of at most 200.
	for i := range 205 {
		if r := e.do(t, request{method: "POST", path: acct + "/regenerateKey?api-version=2024-10-01", body: map[string]string{"keyName": []string{"Key1", "Key2"}[i%2]}}); r.status != 200 {
			t.Fatalf("regenerate %d: %d", i, r.status)
		}
	}
	all := events("eventTimestamp ge '"+since+"' and resourceId eq '"+acct+"' and status eq 'Succeeded'", "")
	regens := 0
	for i, ev := range all {
		if strings.HasSuffix(ev.OperationName.Value, "regenerateKey/action") {
			regens++
		}
		if i > 0 && strings.Split(ev.ID, "/ticks/")[1] > strings.Split(all[i-1].ID, "/ticks/")[1] { // same-length decimals
			t.Fatalf("event %d is newer than the one before it", i)
		}
	}
	if regens != 206 {
		t.Errorf("%d regenerations across the pages, want 206", regens)
	}

	for name, filter := range map[string]string{
		"none":         "",
		"no-time":      "resourceGroupName eq '" + group + "'",
		"too-old":      "eventTimestamp ge '" + time.Now().Add(-100*24*time.Hour).UTC().Format(time.RFC3339) + "'",
		"not-a-time":   "eventTimestamp ge 'yesterday'",
		"unknown":      "eventTimestamp ge '" + since + "' and secretValue eq 'x'",
		"not-eq":       "eventTimestamp ge '" + since + "' and caller ne 'x'",
		"reversed":     "eventTimestamp ge '" + since + "' and eventTimestamp le '" + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339) + "'",
		"unterminated": "eventTimestamp ge '" + since,
	} {
		r := e.do(t, request{method: "GET", path: "/subscriptions/" + e.sub + "/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=" + url.QueryEscape(filter)})
		if r.status != 400 || r.code() != "BadRequest" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	for name, q := range map[string]string{
		"skip-token":  "&$skipToken=x",
		"api-version": "&api-version=2099-01-01",
	} {
		path := "/subscriptions/" + e.sub + "/providers/Microsoft.Insights/eventtypes/management/values?$filter=" + url.QueryEscape("eventTimestamp ge '"+since+"'") + q
		if !strings.Contains(q, "api-version") {
			path += "&api-version=2015-04-01"
		}
		if r := e.do(t, request{method: "GET", path: path}); r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}

	// Diagnostic settings: none, and none can be made.
	diag := acct + "/providers/Microsoft.Insights/diagnosticSettings"
	if r := e.do(t, request{method: "GET", path: diag + "?api-version=2021-05-01-preview"}); r.status != 200 || string(r.body) != `{"value":[]}` {
		t.Errorf("diagnostic settings: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "GET", path: diag + "/to-law?api-version=2021-05-01-preview"}); r.status != 404 {
		t.Errorf("a diagnostic setting: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "PUT", path: diag + "/to-law?api-version=2021-05-01-preview", body: map[string]any{"properties": map[string]any{}}}); r.status != 400 || r.code() != "DiagnosticSettingsNotSupported" {
		t.Errorf("create a diagnostic setting: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "GET", path: e.accountPath(group, "no-such-acct") + "/providers/Microsoft.Insights/diagnosticSettings?api-version=2021-05-01-preview"}); r.status != 404 {
		t.Errorf("diagnostic settings of no account: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: "GET", path: diag + "?api-version=2021-05-01-preview", token: e.Token(t, otherCred, mgmtScope)}); r.status != 403 {
		t.Errorf("diagnostic settings without a role there: %d %s", r.status, r.body)
	}
}
