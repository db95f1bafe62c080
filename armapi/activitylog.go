package armapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/server"
)

// The Azure Activity Log of a subscription (az monitor activity-log list,
// azure-mgmt-monitor's activity_logs.list, armmonitor's
// ActivityLogsClient.NewListPager), read from the audit log:
//
//	GET /subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values
//	    ?api-version=2015-04-01&$filter=eventTimestamp ge '…' and eventTimestamp le '…'
//	      [and resourceGroupName|resourceId|resourceUri|resourceProvider|correlationId|caller|status|level eq '…']
//
// As Azure's, it holds the management plane's operations — ARM's and the
// portal's writes, deletes and actions (listKeys, regenerateKey), refused
// ones included — not the data planes' requests, and each caller sees the
// events at the scopes where they may read (Reader's */read is enough:
// Microsoft.Insights/eventtypes/values/read). Events come newest first,
// at most 200 a page, with a nextLink ($skipToken: the audit sequence
// number to continue below). The filter must bound eventTimestamp from
// below, at most 90 days back, as Azure's must. The full record of every
// access decision, data planes included, stays the audit log
// (auditlog.go), which is for access administrators.

const actActivityRead = "Microsoft.Insights/eventtypes/values/read"

var activityLogRoutes = []route{
	{method: "GET", pattern: sub + "/providers/Microsoft.Insights/eventtypes/management/values", family: famInsights, handle: listActivityLog},
}

const (
	activityPageSize  = 200
	activityMaxScan   = 20 * 1000 // audit entries one page may read
	activityRetention = 90 * 24 * time.Hour
	// activitySkew is how far an entry's time may trail the entry before
	// it (nodes' clocks differ a little); the backward walk stops only
	// past it.
	activitySkew = time.Minute
)

type localized struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

func loc(s string) localized { return localized{Value: s, LocalizedValue: s} }

type activityEventJSON struct {
	Authorization struct {
		Action string `json:"action"`
		Scope  string `json:"scope"`
	} `json:"authorization"`
	Caller               string            `json:"caller,omitempty"`
	Channels             string            `json:"channels"`
	CorrelationID        string            `json:"correlationId,omitempty"`
	Description          string            `json:"description"`
	EventDataID          string            `json:"eventDataId"`
	EventName            localized         `json:"eventName"`
	Category             localized         `json:"category"`
	EventTimestamp       string            `json:"eventTimestamp"`
	ID                   string            `json:"id"`
	Level                string            `json:"level"`
	OperationID          string            `json:"operationId,omitempty"`
	OperationName        localized         `json:"operationName"`
	ResourceGroupName    string            `json:"resourceGroupName,omitempty"`
	ResourceProviderName localized         `json:"resourceProviderName"`
	ResourceType         localized         `json:"resourceType"`
	ResourceID           string            `json:"resourceId"`
	Status               localized         `json:"status"`
	SubStatus            localized         `json:"subStatus"`
	SubmissionTimestamp  string            `json:"submissionTimestamp"`
	SubscriptionID       string            `json:"subscriptionId"`
	TenantID             string            `json:"tenantId,omitempty"`
	Properties           map[string]string `json:"properties"`
	HTTPRequest          *struct {
		ClientRequestID string `json:"clientRequestId,omitempty"`
		ClientIPAddress string `json:"clientIpAddress,omitempty"`
		Method          string `json:"method"`
	} `json:"httpRequest,omitempty"`
}

// activityFilter is a parsed $filter.
type activityFilter struct {
	from, to time.Time
	eq       map[string]string // lower-case field → value
}

var activityFields = map[string]bool{
	"resourcegroupname": true, "resourceid": true, "resourceuri": true, "resourceprovider": true,
	"correlationid": true, "caller": true, "status": true, "level": true, "eventchannels": true,
}

func parseActivityFilter(f string, now time.Time) (*activityFilter, error) {
	bad := func(format string, args ...any) error {
		return gatehouse.BadRequestf("BadRequest", "The $filter is not valid: "+format, args...).WithTarget("$filter")
	}
	out := &activityFilter{to: now, eq: map[string]string{}}
	if strings.TrimSpace(f) == "" {
		return nil, bad("it must bound eventTimestamp, e.g. eventTimestamp ge '2026-11-30T00:00:00Z'.")
	}
	for _, clause := range splitAnd(f) {
		parts := strings.Fields(clause)
		if len(parts) < 3 {
			return nil, bad("'%s' is not 'field operator value'.", clip(clause))
		}
		field, op := strings.ToLower(parts[0]), strings.ToLower(parts[1])
		value := strings.TrimSpace(strings.TrimSpace(clause[len(parts[0]):])[len(parts[1]):])
		if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
			value = strings.ReplaceAll(value[1:len(value)-1], "''", "'")
		}
		switch {
		case field == "eventtimestamp":
			t, err := time.Parse(time.RFC3339Nano, value)
			if err != nil {
				// az sends Python's isoformat(): no zone, UTC.
				t, err = time.Parse("2006-01-02T15:04:05.999999999", value)
			}
			if err != nil {
				return nil, bad("'%s' is not a time.", clip(value))
			}
			switch op {
			case "ge", "gt":
				out.from = t
			case "le", "lt":
				out.to = t
			default:
				return nil, bad("eventTimestamp takes ge, gt, le or lt.")
			}
		case activityFields[field] && op == "eq":
			out.eq[field] = value
		default:
			return nil, bad("'%s %s' is not supported.", clip(parts[0]), clip(parts[1]))
		}
	}
	if out.from.IsZero() {
		return nil, bad("it must bound eventTimestamp from below (eventTimestamp ge …).")
	}
	if now.Sub(out.from) > activityRetention {
		return nil, bad("the activity log keeps 90 days; eventTimestamp ge must be within them.")
	}
	if out.to.Before(out.from) {
		return nil, bad("the time range ends before it starts.")
	}
	return out, nil
}

// splitAnd splits a filter at " and " outside quotes.
func splitAnd(f string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] == '\'':
			inQuote = !inQuote
		case !inQuote && i+5 <= len(f) && strings.EqualFold(f[i:i+5], " and "):
			out = append(out, strings.TrimSpace(f[start:i]))
			start = i + 5
			i += 4
		}
	}
	return append(out, strings.TrimSpace(f[start:]))
}

func listActivityLog(c *call) error {
	s, err := c.subscription()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	filter, err := parseActivityFilter(q.Get("$filter"), time.Now())
	if err != nil {
		return err
	}
	var before int64
	if v := q.Get("$skipToken"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return gatehouse.BadRequestf("BadRequest", "The $skipToken is not valid.").WithTarget("$skipToken")
		}
		before = n
	}
	prefix := "/subscriptions/" + s.ID
	out := list[activityEventJSON]{Value: []activityEventJSON{}}
	scanned, last, done := 0, before, false
	for !done && len(out.Value) < activityPageSize && scanned < activityMaxScan {
		recs, err := c.api.opts.Audit.Before(c.ctx(), last, 1000)
		if err != nil {
			return gatehouse.ErrUnavailable.WithCause(err)
		}
		if len(recs) == 0 {
			done = true
			break
		}
		for _, r := range recs {
			scanned++
			last = r.Seq
			if r.Time.Before(filter.from.Add(-activitySkew)) {
				done = true
				break
			}
			if ev, ok := c.activityEvent(r, prefix, filter); ok {
				out.Value = append(out.Value, ev)
				if len(out.Value) == activityPageSize {
					break
				}
			}
		}
	}
	if !done && last > 1 {
		next := url.Values{"api-version": {q.Get("api-version")}, "$filter": {q.Get("$filter")}, "$skipToken": {strconv.FormatInt(last, 10)}}
		if sel := q.Get("$select"); sel != "" {
			next.Set("$select", sel)
		}
		out.NextLink = "https://" + c.r.Host + c.r.URL.EscapedPath() + "?" + next.Encode()
	}
	return c.reply(http.StatusOK, out)
}

// activityEvent renders an audit entry as an Activity Log event, if it is
// a management operation within the subscription that the filter keeps and
// the caller may read.
func (c *call) activityEvent(r *audit.Record, prefix string, f *activityFilter) (activityEventJSON, bool) {
	var ev activityEventJSON
	e := r.Entry
	if e.Surface != string(server.SurfaceManagement) && e.Surface != string(server.SurfacePortal) {
		return ev, false
	}
	if !auditWithin(e.Scope, strings.ToLower(prefix)) || r.Time.Before(f.from) || r.Time.After(f.to) {
		return ev, false
	}
	id, err := gatehouse.ParseResourceID(e.Scope)
	if err != nil || !c.can(actActivityRead, id) {
		return ev, false
	}
	status, sub, level := "Succeeded", "OK", "Informational"
	if e.Result != audit.Succeeded {
		status, level = "Failed", "Error"
		sub = http.StatusText(e.Status)
		if sub == "" {
			sub = string(e.Result)
		}
	}
	caller := e.Principal.Name
	if caller == "" {
		caller = e.Principal.ObjectID
	}
	top := id
	for top.Scope != nil {
		top = top.Scope
	}
	provider, typ := top.Namespace, ""
	if provider == "" {
		provider = "Microsoft.Resources"
		typ = "Microsoft.Resources/subscriptions"
		if top.ResourceGroup != "" {
			typ += "/resourceGroups"
		}
	} else {
		typ = top.Type()
	}
	// The x-ms-correlation-request-id the call was answered with (api.go).
	correlation := e.RequestID
	if v := e.Details["correlationId"]; v != "" {
		correlation = v
	}
	for field, want := range f.eq {
		var have string
		switch field {
		case "resourcegroupname":
			have = id.ResourceGroup
		case "resourceid", "resourceuri":
			have = e.Scope
		case "resourceprovider":
			have = provider
		case "correlationid":
			have = correlation
		case "caller":
			if strings.EqualFold(want, e.Principal.ObjectID) {
				continue
			}
			have = caller
		case "status":
			have = status
		case "level":
			have = level
		case "eventchannels":
			continue // every event is an Operation event
		}
		if !strings.EqualFold(have, want) {
			return ev, false
		}
	}
	sum := sha256.Sum256(r.Hash)
	eventID := hex.EncodeToString(sum[0:4]) + "-" + hex.EncodeToString(sum[4:6]) + "-" + hex.EncodeToString(sum[6:8]) + "-" +
		hex.EncodeToString(sum[8:10]) + "-" + hex.EncodeToString(sum[10:16])
	ts := r.Time.UTC().Format(time.RFC3339Nano)
	ev.Authorization.Action, ev.Authorization.Scope = e.Action, e.Scope
	ev.Caller, ev.Channels, ev.CorrelationID, ev.OperationID = caller, "Operation", correlation, e.RequestID
	ev.EventDataID = eventID
	ev.EventName, ev.Category = localized{Value: "EndRequest", LocalizedValue: "End request"}, loc("Administrative")
	ev.EventTimestamp, ev.SubmissionTimestamp = ts, ts
	// Azure's id: the resource, then the event and the ticks of its time.
	ev.ID = e.Scope + "/events/" + eventID + "/ticks/" + strconv.FormatInt(r.Time.UnixNano()/100+621355968000000000, 10)
	ev.Level, ev.OperationName = level, loc(e.Action)
	ev.ResourceGroupName, ev.ResourceProviderName, ev.ResourceType, ev.ResourceID = id.ResourceGroup, loc(provider), loc(typ), e.Scope
	ev.Status, ev.SubStatus = loc(status), loc(sub)
	ev.SubscriptionID, ev.TenantID = id.Subscription, e.Principal.TenantID
	ev.Properties = map[string]string{"statusCode": sub, "surface": e.Surface, "result": string(e.Result)}
	if e.Code != "" {
		ev.Properties["code"] = e.Code
	}
	for k, v := range e.Details {
		if k != "clientAddress" {
			ev.Properties[k] = v
		}
	}
	method := "POST"
	switch a := strings.ToLower(e.Action); {
	case strings.HasSuffix(a, "/write"):
		method = "PUT"
	case strings.HasSuffix(a, "/delete"):
		method = "DELETE"
	case strings.HasSuffix(a, "/read"):
		method = "GET"
	}
	ev.HTTPRequest = &struct {
		ClientRequestID string `json:"clientRequestId,omitempty"`
		ClientIPAddress string `json:"clientIpAddress,omitempty"`
		Method          string `json:"method"`
	}{ClientRequestID: e.RequestID, ClientIPAddress: e.Details["clientAddress"], Method: method}
	return ev, true
}
