package portal

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// A resource's activity log: the audit entries whose scope is the account
// or vault or lies beneath it — who listed or regenerated keys, changed
// roles, was refused, and from which surface — newest first. It is for
// whoever administers access there, as the management API's audit log
// is: auditLogs/read and roleAssignments/write at the resource. Reading
// it is itself audited.

const (
	actAuditRead = "Microsoft.Authorization/auditLogs/read"
	// activityWindow bounds how many of the newest log entries a page
	// reads; activityLimit how many of the resource's it shows.
	activityWindow = 5000
	activityLimit  = 100
)

type activityRow struct {
	Time                   time.Time
	Principal, Type        string
	Action, Result, Status string
	Code, Surface, Details string
}

type activityView struct {
	Kind, Name, Base string // "Account"/"Vault", the resource's name and portal path
	Rows             []activityRow
	Window           int
}

// canSeeActivity reports whether the person may read the resource's
// activity log.
func (q *req) canSeeActivity(p *Portal, id *gatehouse.ResourceID) bool {
	return q.can(p, actAuditRead, id) && q.can(p, actAssignmentWrite, id)
}

func (p *Portal) activityPage(res roleResource, kind string) func(*req) error {
	return func(q *req) error {
		id, err := res.load(q)
		if err != nil {
			return err
		}
		if !q.canSeeActivity(p, id) {
			action := actAuditRead
			if q.can(p, actAuditRead, id) {
				action = actAssignmentWrite
			}
			p.auditUser(q, actAuditRead, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, nil)
			return denied(q.user, action, id)
		}
		scope := strings.ToLower(id.String())
		recs, err := p.opts.Audit.Recent(q.ctx(), activityWindow, activityLimit, func(r *audit.Record) bool {
			s := strings.ToLower(r.Entry.Scope)
			return s == scope || strings.HasPrefix(s, scope+"/")
		})
		if err != nil {
			return err
		}
		p.auditUser(q, actAuditRead, id, audit.Succeeded, http.StatusOK, "", nil)
		base := q.r.URL.Path[:strings.LastIndex(q.r.URL.Path, "/activity")]
		v := activityView{Kind: kind, Name: id.Name(), Base: base, Window: activityWindow}
		names := map[string]string{}
		for _, r := range recs {
			e := r.Entry
			row := activityRow{Time: r.Time, Principal: e.Principal.ObjectID, Type: e.Principal.Type, Action: e.Action,
				Result: string(e.Result), Code: e.Code, Surface: e.Surface, Details: p.details(q, e.Details)}
			if e.Status != 0 {
				row.Status = http.StatusText(e.Status)
				row.Status = strconv.Itoa(e.Status) + " " + row.Status
			}
			if oid := e.Principal.ObjectID; oid != "" {
				if _, ok := names[oid]; !ok {
					names[oid] = p.principalName(q, oid)
				}
				row.Principal = names[oid]
			}
			v.Rows = append(v.Rows, row)
		}
		return p.render(q, http.StatusOK, "activity", id.Name()+" activity", v)
	}
}

// details renders an entry's details as "name=value" pairs, sorted, with
// the names of the role and principal they refer to.
func (p *Portal) details(q *req, d map[string]string) string {
	parts := make([]string, 0, len(d))
	for k, v := range d {
		switch k {
		case "roleDefinitionId":
			if r, ok := p.opts.Authz.Role(v); ok {
				v += " (" + r.RoleName + ")"
			}
		case "principalId":
			if name := p.principalName(q, v); name != v {
				v += " (" + name + ")"
			}
		}
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
