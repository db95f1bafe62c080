package armapi

// The audit log over the management API (a Gatehouse extension;
// `gatehouse audit list|verify`):
//
//	GET  {scope}/providers/Microsoft.Authorization/auditLogs?$top=N&$skipToken=SEQ[&$orderby=sequenceNumber desc]
//	POST {scope}/providers/Microsoft.Authorization/auditLogs/verify
//
// {scope} is the root ("/providers/…") or a subscription. At the root the
// list has every entry; at a subscription, the entries whose scope lies
// within it. Verify always walks the whole chain (there is one chain per
// installation) and answers 200 with "intact": false and the first broken
// entry when it does not verify: a broken chain is the answer, not a
// failure of the request.
//
// Who may: the audit log records every access decision of the scope, so it
// is for the principals who administer access there. The caller needs both
// the operation's own action (Microsoft.Authorization/auditLogs/read, or
// …/auditLogs/verify/action) and Microsoft.Authorization/roleAssignments/
// write at the scope. Of the built-in roles, Owner and User Access
// Administrator hold both (and Role Based Access Control Administrator,
// which may grant itself Owner anyway); Reader and Contributor hold the
// first through */read or * but not the second, as their NotActions
// exclude Microsoft.Authorization writes. A custom role can grant both.
//
// Reading and verifying are themselves audited.

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/storage"
)

// Actions of the audit-log routes (Gatehouse extensions), and the
// permission that marks an access administrator.
const (
	ActionAuditLogRead   = "Microsoft.Authorization/auditLogs/read"
	ActionAuditLogVerify = "Microsoft.Authorization/auditLogs/verify/action"
	actAuditGate         = actAssignmentWrite
)

var auditLogRoutes = []route{
	{method: "GET", pattern: authzP + "/auditLogs", family: famAuthorization, audit: true, handle: listAuditLog},
	{method: "POST", pattern: authzP + "/auditLogs/verify", family: famAuthorization, audit: true, handle: verifyAuditLog},
}

// Paging of the list.
const (
	auditDefaultTop = 100
	auditMaxTop     = 1000
	// auditMaxScan bounds the entries one subscription-scoped page reads
	// while filtering; a page that stops there carries a nextLink.
	auditMaxScan = 20 * storage.MaxPageSize
)

type auditEntryJSON struct {
	SequenceNumber int64             `json:"sequenceNumber"`
	Time           string            `json:"time"`
	Hash           string            `json:"hash"`
	PreviousHash   string            `json:"previousHash"`
	RequestID      string            `json:"requestId,omitempty"`
	Principal      audit.Principal   `json:"principal"`
	Action         string            `json:"action"`
	Scope          string            `json:"scope"`
	Result         audit.Result      `json:"result"`
	Status         int               `json:"status,omitempty"`
	Code           string            `json:"code,omitempty"`
	Details        map[string]string `json:"details,omitempty"`
	Surface        string            `json:"surface,omitempty"`
}

func auditEntryView(r *audit.Record) auditEntryJSON {
	e := r.Entry
	return auditEntryJSON{SequenceNumber: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano),
		Hash: hex.EncodeToString(r.Hash), PreviousHash: hex.EncodeToString(r.PrevHash),
		RequestID: e.RequestID, Principal: e.Principal, Action: e.Action, Scope: e.Scope, Result: e.Result,
		Status: e.Status, Code: e.Code, Details: e.Details, Surface: e.Surface}
}

// auditCall checks the scope (root or subscription) and the caller's
// permission for action; it returns the subscription's scope prefix for
// filtering ("" at the root).
func (c *call) auditCall(action string) (string, error) {
	scope := c.scope
	prefix := ""
	switch {
	case scope.IsRoot():
	case scope.IsSubscription():
		if _, err := c.subscriptionByID(scope.Subscription); err != nil {
			return "", err
		}
		prefix = strings.ToLower(scope.String())
	default:
		return "", gatehouse.BadRequestf("InvalidAuditScope",
			"The audit log is read at the root scope or at a subscription, not at '%s'.", clip(scope.String()))
	}
	if err := c.authorize(action, scope); err != nil {
		return "", err
	}
	if !c.can(actAuditGate, scope) {
		c.denied = true
		return "", errAuthorizationFailed(c.principal, actAuditGate, scope)
	}
	return prefix, nil
}

// within reports whether an entry's scope lies in the subscription prefix.
func auditWithin(entryScope, prefix string) bool {
	if prefix == "" {
		return true
	}
	s := strings.ToLower(entryScope)
	return s == prefix || strings.HasPrefix(s, prefix+"/")
}

func listAuditLog(c *call) error {
	prefix, err := c.auditCall(ActionAuditLogRead)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	top := auditDefaultTop
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMaxTop {
			return gatehouse.BadRequestf("InvalidQueryParameterValue",
				"The $top must be a number from 1 to %d.", auditMaxTop).WithTarget("$top")
		}
		top = n
	}
	// $orderby: oldest first (the default, for following the log) or
	// newest first (for looking at what just happened).
	desc := false
	switch v := strings.Join(strings.Fields(strings.ToLower(q.Get("$orderby"))), " "); v {
	case "", "sequencenumber", "sequencenumber asc":
	case "sequencenumber desc":
		desc = true
	default:
		return gatehouse.BadRequestf("InvalidQueryParameterValue",
			"The $orderby must be 'sequenceNumber asc' or 'sequenceNumber desc'.").WithTarget("$orderby")
	}
	// $skipToken is the last sequence number of the page before: the next
	// page starts after it (or, newest first, before it).
	var from int64
	if v := q.Get("$skipToken"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return gatehouse.BadRequestf("InvalidQueryParameterValue", "The $skipToken is not valid.").WithTarget("$skipToken")
		}
		from = n
	}
	out := list[auditEntryJSON]{Value: []auditEntryJSON{}}
	var last int64
	scanned, more := 0, false
	errFull := errors.New("page full")
	take := func(r *audit.Record) error {
		if len(out.Value) == top || scanned == auditMaxScan {
			more = true
			return errFull
		}
		scanned++
		last = r.Seq
		if auditWithin(r.Entry.Scope, prefix) {
			out.Value = append(out.Value, auditEntryView(r))
		}
		return nil
	}
	if desc {
		err = c.api.opts.Audit.EachBefore(c.ctx(), from, take)
	} else {
		err = c.api.opts.Audit.Each(c.ctx(), from, take)
	}
	if err != nil && !errors.Is(err, errFull) {
		return gatehouse.ErrUnavailable.WithCause(err)
	}
	if more {
		next := url.Values{"api-version": {q.Get("api-version")}, "$top": {strconv.Itoa(top)},
			"$skipToken": {strconv.FormatInt(last, 10)}}
		if desc {
			next.Set("$orderby", "sequenceNumber desc")
		}
		out.NextLink = "https://" + c.r.Host + c.r.URL.EscapedPath() + "?" + next.Encode()
	}
	return c.reply(http.StatusOK, out)
}

type auditVerifyJSON struct {
	Intact             bool   `json:"intact"`
	Entries            int64  `json:"entries"`
	LastSequenceNumber int64  `json:"lastSequenceNumber,omitempty"`
	LastHash           string `json:"lastHash,omitempty"`
	BrokenAt           int64  `json:"brokenAt,omitempty"`
	Reason             string `json:"reason,omitempty"`
}

func verifyAuditLog(c *call) error {
	if _, err := c.auditCall(ActionAuditLogVerify); err != nil {
		return err
	}
	rep, err := c.api.opts.Audit.Verify(c.ctx())
	if ce, ok := errors.AsType[*audit.ChainError](err); ok {
		c.api.opts.Logger.Error("audit: the chain does not verify", "seq", ce.Seq, "reason", ce.Reason)
		return c.reply(http.StatusOK, auditVerifyJSON{Intact: false, BrokenAt: ce.Seq, Reason: ce.Reason})
	}
	if err != nil {
		return gatehouse.ErrUnavailable.WithCause(err)
	}
	return c.reply(http.StatusOK, auditVerifyJSON{Intact: true, Entries: rep.Entries, LastSequenceNumber: rep.LastSeq,
		LastHash: hex.EncodeToString(rep.LastHash)})
}
