package armtest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// TestElevateAccess is Azure's break-glass path through the official
// client (GlobalAdministratorClient.ElevateAccess): a directory Global
// Administrator with no Azure role gets User Access Administrator at "/",
// uses it to grant itself a role on a subscription, and removes the root
// assignment again; anyone else is refused. Its own node per backend: a
// root assignment shows in every scope's default listing, which the shared
// node's scenarios count.
func TestElevateAccess(t *testing.T) {
	for _, b := range []struct {
		name string
		opts func(t *testing.T) []testenv.Option
	}{
		{"sqlite", func(*testing.T) []testenv.Option { return nil }},
		{"postgres", func(t *testing.T) []testenv.Option { return []testenv.Option{testenv.WithPostgres(pgtest.DSN(t))} }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testElevateAccess(t, newEnv(t, b.opts(t)...))
		})
	}
}

func testElevateAccess(t *testing.T, e *env) {
	ctx := t.Context()
	// A Global Administrator of the directory without any role assignment.
	app, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "break-glass",
		ServicePrincipal: true, Roles: []string{directory.RoleGlobalAdministrator}})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.Directory.AddSecret(ctx, app.AppID, directory.SecretSpec{DisplayName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	admin := e.SecretCredential(t, app.AppID, secret)
	_, assign, _, _ := e.clients(t, admin)
	subScope := "subscriptions/" + e.sub
	grantOwner := func(cred azcore.TokenCredential) error {
		_, ra, _, _ := e.clients(t, cred)
		_, err := ra.Create(ctx, subScope, gatehouse.NewGUID(), armauthorization.RoleAssignmentCreateParameters{
			Properties: &armauthorization.RoleAssignmentProperties{
				RoleDefinitionID: ptr(roleDefID(e.sub, authz.RoleOwner)), PrincipalID: ptr(app.ObjectID)}}, nil)
		return err
	}
	if err := grantOwner(admin); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("before elevating, granting itself Owner: %v", err)
	}

	elevate := func(cred azcore.TokenCredential) error {
		ga, err := armauthorization.NewGlobalAdministratorClient(cred, e.armOptions())
		if err != nil {
			t.Fatal(err)
		}
		_, err = ga.ElevateAccess(ctx, nil)
		return err
	}
	rootAssignments := func(oid string) []*armauthorization.RoleAssignment {
		var out []*armauthorization.RoleAssignment
		for _, a := range e.Authz.Assignments(authz.AssignmentFilter{Scope: &gatehouse.ResourceID{}, AtScope: true, PrincipalID: oid}) {
			out = append(out, &armauthorization.RoleAssignment{Name: ptr(a.Name), Properties: &armauthorization.RoleAssignmentProperties{
				Scope: ptr(a.Scope), RoleDefinitionID: ptr(a.RoleDefinitionID)}})
		}
		return out
	}

	// Someone who is not a Global Administrator is refused, and gets nothing.
	plainOID, plain := e.principal(t, "not-an-admin")
	if err := elevate(plain); !isCode(err, http.StatusForbidden, "AuthorizationFailed") {
		t.Fatalf("elevating a principal without the directory role: %v", err)
	}
	if got := rootAssignments(plainOID); len(got) != 0 {
		t.Fatalf("a refused elevation left %d root assignments", len(got))
	}

	// The Global Administrator elevates — four times at once, then once
	// more: one assignment, and every call answered 200.
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- elevate(admin) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent ElevateAccess: %v", err)
		}
	}
	if err := elevate(admin); err != nil {
		t.Fatalf("ElevateAccess: %v", err)
	}
	got := rootAssignments(app.ObjectID)
	if len(got) != 1 || *got[0].Properties.Scope != "/" || *got[0].Properties.RoleDefinitionID != authz.RoleUserAccessAdministrator {
		t.Fatalf("root assignments after elevating: %+v", got)
	}
	name := *got[0].Name

	// It is an ordinary assignment at "/", seen through the API ...
	a, err := assign.GetByID(ctx, "/providers/Microsoft.Authorization/roleAssignments/"+name, nil)
	if err != nil || *a.Properties.Scope != "/" || *a.Properties.PrincipalID != app.ObjectID {
		t.Fatalf("GetByID of the root assignment: %+v %v", a, err)
	}
	// ... that lets the administrator back into the subscription.
	if err := grantOwner(admin); err != nil {
		t.Fatalf("after elevating, granting itself Owner: %v", err)
	}
	// Removed like any assignment.
	if _, err := assign.DeleteByID(ctx, "/providers/Microsoft.Authorization/roleAssignments/"+name, nil); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if got := rootAssignments(app.ObjectID); len(got) != 0 {
		t.Fatalf("root assignments after removal: %+v", got)
	}

	// The same through the CLI, signed in as the administrator.
	cl := &cliRunner{dir: t.TempDir()}
	cl.mustRun(t, "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", app.AppID, "-p", secret)
	if out := cl.mustRun(t, "role", "elevate-access"); !strings.Contains(out, "User Access Administrator") {
		t.Fatalf("elevate-access printed %q", out)
	}
	listed := decodeJSON[[]map[string]any](t, cl.mustRun(t, "role", "assignment", "list", "--scope", "/", "--assignee", app.ObjectID))
	if len(listed) != 1 || listed[0]["roleDefinitionName"] != "User Access Administrator" || listed[0]["scope"] != "/" {
		t.Fatalf("CLI list at /: %v", listed)
	}
	cl.mustRun(t, "role", "assignment", "delete", "--ids", listed[0]["id"].(string))
	if got := rootAssignments(app.ObjectID); len(got) != 0 {
		t.Fatalf("root assignments after the CLI's removal: %+v", got)
	}

	// The elevations and the refusal are in the audit log.
	var audited []string
	err = e.Audit.Each(ctx, 0, func(r *audit.Record) error {
		if r.Entry.Action == "Microsoft.Authorization/elevateAccess/action" {
			audited = append(audited, r.Entry.Principal.ObjectID+" "+strconv.Itoa(r.Entry.Status))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{plainOID + " 403", app.ObjectID + " 200", app.ObjectID + " 200", app.ObjectID + " 200",
		app.ObjectID + " 200", app.ObjectID + " 200", app.ObjectID + " 200"}
	if !slices.Equal(audited, want) {
		t.Fatalf("audited elevations %v, want %v", audited, want)
	}

	// A wrong api-version is refused; az rest's 2016-07-01 is served.
	r := e.do(t, request{method: "POST", path: "/providers/Microsoft.Authorization/elevateAccess?api-version=2022-04-01"})
	if r.status != http.StatusBadRequest || r.code() != "InvalidApiVersionParameter" {
		t.Fatalf("unknown api-version: %d %s", r.status, r.body)
	}
	r = e.do(t, request{method: "POST", path: "/providers/Microsoft.Authorization/elevateAccess?api-version=2016-07-01"})
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("the bootstrap administrator, api-version 2016-07-01 (az rest): %d %s", r.status, r.body)
	}
	e.AssertNotLogged(t, secret)
	assertNotAudited(t, e, secret)
}
