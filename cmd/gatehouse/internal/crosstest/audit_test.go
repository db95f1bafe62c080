package crosstest

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/armapi"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the tamper test writes the SQLite file directly
)

type auditEntry struct {
	SequenceNumber int64             `json:"sequenceNumber"`
	Hash           string            `json:"hash"`
	PreviousHash   string            `json:"previousHash"`
	Action         string            `json:"action"`
	Scope          string            `json:"scope"`
	Result         string            `json:"result"`
	Surface        string            `json:"surface"`
	Status         int               `json:"status"`
	RequestID      string            `json:"requestId"`
	Details        map[string]string `json:"details"`
}

type auditReport struct {
	Intact   bool   `json:"intact"`
	Entries  int64  `json:"entries"`
	LastHash string `json:"lastHash"`
	BrokenAt int64  `json:"brokenAt"`
	Reason   string `json:"reason"`
}

// rawAudit reads and writes one stored audit row's data, bypassing
// Gatehouse: what an attacker with database access could do.
func (e *env) rawAudit(t *testing.T, seq int64, data []byte) []byte {
	t.Helper()
	ctx := context.Background()
	if e.dsn != "" {
		conn, err := pgx.Connect(ctx, e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if data != nil {
			if _, err := conn.Exec(ctx, `UPDATE audit SET data = $1 WHERE seq = $2`, data, seq); err != nil {
				t.Fatal(err)
			}
			return data
		}
		var out []byte
		if err := conn.QueryRow(ctx, `SELECT data FROM audit WHERE seq = $1`, seq).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.DataDir, "gatehouse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if data != nil {
		if _, err := db.ExecContext(ctx, `UPDATE audit SET data = ? WHERE seq = ?`, data, seq); err != nil {
			t.Fatal(err)
		}
		return data
	}
	var out []byte
	if err := db.QueryRowContext(ctx, `SELECT data FROM audit WHERE seq = ?`, seq).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// testAuditLog: `gatehouse audit list|verify` and the routes behind them;
// only access administrators may read; a row edited in the database is
// found by verify, and the restored row verifies again.
func testAuditLog(t *testing.T, e *env) {
	c := e.loginBootstrap(t)
	// Something to read: a write at the subscription (audited).
	e.createVault(t, "audit-kv")

	entries := decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--all"))
	if len(entries) < 2 {
		t.Fatalf("%d entries", len(entries))
	}
	prefix := strings.ToLower("/subscriptions/" + e.sub)
	for i, en := range entries {
		if len(en.Hash) != 64 || len(en.PreviousHash) != 64 && en.SequenceNumber != 1 || en.Action == "" {
			t.Fatalf("entry %+v", en)
		}
		if !strings.HasPrefix(strings.ToLower(en.Scope), prefix) {
			t.Fatalf("a subscription's list has an entry outside it: %s", en.Scope)
		}
		if i > 0 && en.SequenceNumber <= entries[i-1].SequenceNumber {
			t.Fatal("entries are not in order")
		}
	}
	// Paging: --top, --after.
	if two := decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--top", "2")); len(two) != 2 || two[0].SequenceNumber != entries[0].SequenceNumber {
		t.Fatalf("--top 2: %+v", two)
	}
	after := decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--after", strconv.FormatInt(entries[0].SequenceNumber, 10), "--top", "1"))
	if len(after) != 1 || after[0].SequenceNumber != entries[1].SequenceNumber {
		t.Fatalf("--after: %+v", after)
	}
	r := e.arm(t, "GET", "/subscriptions/"+e.sub+"/providers/Microsoft.Authorization/auditLogs?api-version=2022-04-01&$top=1", nil, "")
	if next, _ := r.json(t)["nextLink"].(string); !strings.HasPrefix(next, e.URL+"/subscriptions/") || !strings.Contains(next, "skipToken") {
		t.Fatalf("nextLink %q", next)
	}
	// Newest first: the same entries (and the reads since) in reverse;
	// --top and the nextLink page downwards.
	newest := decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--newest", "--all"))
	inNewest := map[int64]bool{}
	for i, en := range newest {
		if i > 0 && en.SequenceNumber >= newest[i-1].SequenceNumber {
			t.Fatalf("--newest: %d after %d", en.SequenceNumber, newest[i-1].SequenceNumber)
		}
		inNewest[en.SequenceNumber] = true
	}
	for _, en := range entries {
		if !inNewest[en.SequenceNumber] {
			t.Fatalf("--newest lacks entry %d", en.SequenceNumber)
		}
	}
	if top := decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--newest", "--top", "2")); len(top) != 2 || top[0].SequenceNumber < newest[0].SequenceNumber || top[1].SequenceNumber >= top[0].SequenceNumber {
		t.Fatalf("--newest --top 2: %+v", top)
	}
	r = e.arm(t, "GET", "/subscriptions/"+e.sub+"/providers/Microsoft.Authorization/auditLogs?api-version=2022-04-01&$top=1&$orderby=sequenceNumber%20desc", nil, "")
	page := r.json(t)
	next, _ := page["nextLink"].(string)
	if !strings.Contains(next, "orderby=sequenceNumber+desc") {
		t.Fatalf("newest-first nextLink %q", next)
	}
	first := page["value"].([]any)[0].(map[string]any)["sequenceNumber"].(float64)
	r = e.do(t, "GET", next, nil, e.mgmtToken)
	if v := r.json(t)["value"].([]any); r.status != http.StatusOK || len(v) != 1 || v[0].(map[string]any)["sequenceNumber"].(float64) >= first {
		t.Fatalf("the next newest-first page: %d %s", r.status, r.body)
	}
	if code, _, errOut := c.run(t, "audit", "list", "--newest", "--after", "3"); code == 0 || !strings.Contains(errOut, "--newest") {
		t.Fatalf("--newest --after: %d %q", code, errOut)
	}

	// Bad input is a 400 in ARM's shape, never a 500.
	base := "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/auditLogs?api-version=2022-04-01"
	for _, tt := range []struct{ name, path, code string }{
		{"top-zero", base + "&$top=0", "InvalidQueryParameterValue"},
		{"top-too-large", base + "&$top=5000", "InvalidQueryParameterValue"},
		{"top-not-a-number", base + "&$top=ten", "InvalidQueryParameterValue"},
		{"negative-skip-token", base + "&$skipToken=-3", "InvalidQueryParameterValue"},
		{"order-by-time", base + "&$orderby=time%20desc", "InvalidQueryParameterValue"},
		{"group-scope", e.groupPath(e.group) + "/providers/Microsoft.Authorization/auditLogs?api-version=2022-04-01", "InvalidAuditScope"},
		{"no-api-version", "/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/auditLogs", "MissingApiVersionParameter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.arm(t, "GET", tt.path, nil, "")
			if tt.name == "no-api-version" {
				r = e.do(t, "GET", e.URL+tt.path, nil, e.mgmtToken)
			}
			if r.status != http.StatusBadRequest || r.code() != tt.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}

	// Who may read: access administrators only.
	for _, tt := range []struct {
		name, role string
		status     int
	}{
		{"reader", authz.RoleReader, http.StatusForbidden},
		{"contributor", authz.RoleContributor, http.StatusForbidden},
		{"user-access-administrator", authz.RoleUserAccessAdministrator, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, err := e.Directory.CreateApplication(t.Context(), directory.ApplicationSpec{DisplayName: "audit-" + tt.name, ServicePrincipal: true})
			if err != nil {
				t.Fatal(err)
			}
			_, secret, err := e.Directory.AddSecret(t.Context(), app.AppID, directory.SecretSpec{})
			if err != nil {
				t.Fatal(err)
			}
			e.assign(t, "/subscriptions/"+e.sub, tt.role, app.ObjectID, "ServicePrincipal")
			tok := e.Token(t, e.SecretCredential(t, app.AppID, secret), mgmtScope)
			for _, call := range []struct{ method, path string }{{"GET", ""}, {"POST", "/verify"}} {
				r := e.arm(t, call.method, "/subscriptions/"+e.sub+"/providers/Microsoft.Authorization/auditLogs"+call.path+"?api-version=2022-04-01", nil, tok)
				if r.status != tt.status {
					t.Fatalf("%s %s: %d %s", call.method, call.path, r.status, r.body)
				}
				if r.status == http.StatusForbidden && r.code() != "AuthorizationFailed" {
					t.Fatalf("refusal %s", r.body)
				}
			}
		})
	}
	// The bootstrap principal owns the subscription, not the root.
	if code, _, errOut := c.run(t, "audit", "list", "--root"); code == 0 || !strings.Contains(errOut, "AuthorizationFailed") {
		t.Fatalf("root list: exit %d %s", code, errOut)
	}

	rep := decode[auditReport](t, c.mustRun(t, "audit", "verify"))
	if !rep.Intact || rep.Entries < int64(len(entries)) || len(rep.LastHash) != 64 {
		t.Fatalf("verify: %+v", rep)
	}

	// Tamper with a stored row: the scope of an entry, in the database.
	victim := entries[0].SequenceNumber
	orig := e.rawAudit(t, victim, nil)
	var doc map[string]any
	if err := json.Unmarshal(orig, &doc); err != nil {
		t.Fatal(err)
	}
	doc["scope"] = "/subscriptions/" + e.sub + "/resourceGroups/nothing-happened-here"
	forged, _ := json.Marshal(doc)
	e.rawAudit(t, victim, forged)
	code, out, errOut := c.run(t, "audit", "verify")
	broken := decode[auditReport](t, out)
	if code == 0 || broken.Intact || broken.BrokenAt != victim || !strings.Contains(broken.Reason, "hash") ||
		!strings.Contains(errOut, "broken at entry "+strconv.FormatInt(victim, 10)) {
		t.Fatalf("tampered chain: exit %d %+v %s", code, broken, errOut)
	}
	e.rawAudit(t, victim, orig)
	if rep := decode[auditReport](t, c.mustRun(t, "audit", "verify")); !rep.Intact {
		t.Fatalf("restored chain: %+v", rep)
	}

	// Reading and verifying are audited too, each entry with the status
	// the client got: 201 for the vault's create, 204 for a HEAD.
	// The HEAD's entry is found by its request id: other scenarios read
	// the audit log at the same time.
	head := e.arm(t, "HEAD", base, nil, "")
	if head.status != http.StatusNoContent || head.header.Get("x-ms-request-id") == "" {
		t.Fatalf("HEAD auditLogs: %d %v", head.status, head.header)
	}
	var seen bool
	status := map[string]int{}
	for _, en := range decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--all")) {
		seen = seen || en.Action == "Microsoft.Authorization/auditLogs/verify/action" && en.Result == "Succeeded"
		if k := en.Action + " " + strings.ToLower(en.Scope); status[k] == 0 {
			status[k] = en.Status // the first entry of an action at a scope
		}
		if en.RequestID == head.header.Get("x-ms-request-id") {
			status[en.Action] = en.Status
		}
	}
	if !seen {
		t.Error("verifying the audit log is not audited")
	}
	if got := status["Microsoft.KeyVault/vaults/write "+strings.ToLower(e.vaultPath("audit-kv"))]; got != http.StatusCreated {
		t.Errorf("the vault's create is audited with status %d, want 201", got)
	}
	if got := status[armapi.ActionAuditLogRead]; got != http.StatusNoContent {
		t.Errorf("a HEAD on the audit log is audited with status %d, want 204", got)
	}
}

// testAuditClientAddress: a gateway denial's audit entry names the
// caller's address. Denials are audited within one node-wide budget (a
// burst of 20, then a few a second), which the other scenarios' wrong keys
// share, so the denial is repeated until one is audited.
func testAuditClientAddress(t *testing.T, e *env) {
	a := e.createAccount(t, e.group, "audit-addr", "TextAnalytics", false)
	c := e.loginBootstrap(t)
	var found *auditEntry
	for attempt := 0; found == nil && attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond) // the budget refills
		}
		req, _ := http.NewRequestWithContext(t.Context(), "POST", a.endpoint+"language/:analyze-text?api-version=2023-04-01",
			strings.NewReader(`{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello"}]}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ocp-Apim-Subscription-Key", strings.Repeat("0", 64))
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong key: %d", resp.StatusCode)
		}
		if err := e.Gateway.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, en := range decode[[]auditEntry](t, c.mustRun(t, "audit", "list", "--all")) {
			if strings.EqualFold(en.Scope, a.id) && en.Surface == "gateway" && en.Result == "Denied" {
				found = &en
			}
		}
	}
	if found == nil || found.Details["clientAddress"] != "127.0.0.1" || found.Details["reason"] != "invalid_key" {
		t.Fatalf("audited denial %+v", found)
	}
}
