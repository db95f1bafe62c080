package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authz"
)

// Role assignments on an account's or a vault's page: who holds which role
// there (inherited ones marked), and — for whoever may write or delete
// role assignments at that scope, as through ARM — a form to grant a role
// to a person, service principal or managed identity, and a button to
// remove a grant made at this scope. This is how an application is given
// an identity-based way in (Cognitive Services User, Key Vault Secrets
// User) instead of a key.

const (
	actAssignmentWrite  = "Microsoft.Authorization/roleAssignments/write"
	actAssignmentDelete = "Microsoft.Authorization/roleAssignments/delete"
)

type roleOption struct {
	ID, Name string
}

// rolesView is the role assignments section of a resource page.
type rolesView struct {
	Base                        string // the resource's portal path
	CanSee, CanWrite, CanDelete bool
	Assignments                 []assignmentRow
	Roles                       []roleOption
	// Flash reports what was done; Error what was refused, with the
	// form's input kept.
	Flash, Error           string
	SelectedRole, Assignee string
}

func (p *Portal) rolesView(q *req, base string, id *gatehouse.ResourceID) rolesView {
	v := rolesView{Base: base, CanSee: q.can(p, actAssignmentRead, id)}
	if !v.CanSee {
		return v
	}
	v.Assignments = p.assignments(q.ctx(), id)
	v.CanWrite, v.CanDelete = q.can(p, actAssignmentWrite, id), q.can(p, actAssignmentDelete, id)
	if v.CanWrite {
		for _, r := range p.opts.Authz.Roles(authz.RoleFilter{Scope: id}) {
			v.Roles = append(v.Roles, roleOption{ID: r.ID, Name: r.RoleName})
		}
	}
	return v
}

// roleResource is a page that has a role assignments section: it loads
// its resource (answering 403/404 as the page does) and renders the page
// with a roles view.
type roleResource struct {
	load   func(q *req) (*gatehouse.ResourceID, error)
	render func(q *req, id *gatehouse.ResourceID, roles rolesView, status int) error
}

// open reads a form posted to the resource's page and loads the resource.
func (res roleResource) open(q *req) (*gatehouse.ResourceID, error) {
	if err := q.form(); err != nil {
		return nil, err
	}
	return res.load(q)
}

func (p *Portal) accountRoles() roleResource {
	return roleResource{
		load: func(q *req) (*gatehouse.ResourceID, error) {
			id, _, err := p.loadAccount(q)
			return id, err
		},
		render: func(q *req, id *gatehouse.ResourceID, roles rolesView, status int) error {
			a, err := p.opts.Accounts.Get(q.ctx(), id)
			if err != nil {
				return err
			}
			v, err := p.accountView(q, id, a, nil, "")
			if err != nil {
				return err
			}
			v.Roles = roles
			return p.render(q, status, "account", a.Name, v)
		},
	}
}

func (p *Portal) vaultRoles() roleResource {
	return roleResource{
		load: func(q *req) (*gatehouse.ResourceID, error) {
			if p.opts.Vaults == nil {
				return nil, gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such page.")
			}
			id, err := q.resourceID("Microsoft.KeyVault", "vaults")
			if err != nil {
				return nil, err
			}
			if !q.can(p, actVaultRead, id) {
				return nil, denied(q.user, actVaultRead, id)
			}
			// The vault must exist, as the account must (loadAccount): a
			// role assigned at a vault that is not would take effect for
			// whoever creates one of the name later.
			if _, err := p.opts.Vaults.GetVault(q.ctx(), id); err != nil {
				return nil, err
			}
			return id, nil
		},
		render: func(q *req, id *gatehouse.ResourceID, roles rolesView, status int) error {
			v, err := p.vaultView(q, id)
			if err != nil {
				return err
			}
			v.Roles = roles
			return p.render(q, status, "vault", v.Vault.Name, v)
		},
	}
}

// addRole grants the form's role to the form's assignee at the page's
// resource. The assignee is a person's user name or object id, or a
// service principal's or managed identity's object id or client id.
func (p *Portal) addRole(res roleResource) func(*req) error {
	return func(q *req) error {
		id, err := res.open(q)
		if err != nil {
			return err
		}
		roleID := strings.TrimSpace(q.r.PostForm.Get("role"))
		assignee := strings.TrimSpace(q.r.PostForm.Get("assignee"))
		// The assignee as typed is free text (it could be anything
		// pasted): only the resolved object id is audited.
		details := map[string]string{"roleDefinitionId": clipField(roleID)}
		if !q.can(p, actAssignmentWrite, id) {
			p.auditUser(q, actAssignmentWrite, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, details)
			return denied(q.user, actAssignmentWrite, id)
		}
		base := q.r.URL.Path[:strings.LastIndex(q.r.URL.Path, "/roles")]
		refuse := func(status int, msg string) error {
			v := p.rolesView(q, base, id)
			v.Error, v.SelectedRole, v.Assignee = msg, roleID, assignee
			return res.render(q, id, v, status)
		}
		role, ok := p.opts.Authz.Role(roleID)
		if !ok {
			return refuse(http.StatusBadRequest, "Choose one of the roles offered.")
		}
		objectID, name, problem := p.resolveAssignee(q, assignee)
		if problem != "" {
			return refuse(http.StatusBadRequest, problem)
		}
		details["principalId"] = objectID
		a, created, err := p.opts.Authz.CreateAssignment(q.ctx(), id, gatehouse.NewGUID(),
			authz.AssignmentSpec{RoleDefinitionID: authz.DefinitionID(id, role.ID), PrincipalID: objectID}, q.user.ObjectID)
		var ge *gatehouse.Error
		switch {
		case errors.As(err, &ge) && ge.Status < 500:
			p.auditUser(q, actAssignmentWrite, id, audit.Failed, ge.Status, ge.Code, details)
			msg := ge.Message
			if ge.Code == "RoleAssignmentExists" {
				msg = name + " already holds " + role.RoleName + " here."
			}
			return refuse(ge.Status, msg)
		case err != nil:
			return err
		}
		details["name"] = a.Name
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		p.auditUser(q, actAssignmentWrite, id, audit.Succeeded, status, "", details)
		v := p.rolesView(q, base, id)
		v.Flash = name + " now holds " + role.RoleName + " on " + id.Name() + "."
		return res.render(q, id, v, http.StatusOK)
	}
}

// removeRole deletes a role assignment made at exactly the page's
// resource (inherited ones are removed where they were made).
// confirmRemoveRole asks whether to remove a role assignment made at the
// resource, for a user who may; it changes nothing.
func (p *Portal) confirmRemoveRole(res roleResource) func(*req) error {
	return func(q *req) error {
		id, err := res.load(q)
		if err != nil {
			return err
		}
		if !q.can(p, actAssignmentDelete, id) {
			return denied(q.user, actAssignmentDelete, id)
		}
		name := q.r.PathValue("assignment")
		for _, a := range p.assignments(q.ctx(), id) {
			if !a.Here || !strings.EqualFold(a.Name, name) {
				continue
			}
			page := q.r.URL.Path[:strings.LastIndex(q.r.URL.Path, "/roles/")]
			return p.render(q, http.StatusOK, "confirm", "Remove a role assignment", confirmView{
				Question: "Remove " + a.Role + " from " + a.Principal + " on " + id.Name() + "?",
				Consequence: "What the role allows there stops at once, on every node, unless another assignment " +
					"grants it; applications signing in with that identity are refused.",
				Button: "Remove " + a.Role,
				Action: page + "/roles/" + a.Name + "/delete",
				Cancel: page + "#roles",
			})
		}
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such role assignment here.")
	}
}

func (p *Portal) removeRole(res roleResource) func(*req) error {
	return func(q *req) error {
		id, err := res.open(q)
		if err != nil {
			return err
		}
		name := q.r.PathValue("assignment")
		details := map[string]string{"name": clipField(name)}
		if !q.can(p, actAssignmentDelete, id) {
			p.auditUser(q, actAssignmentDelete, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, details)
			return denied(q.user, actAssignmentDelete, id)
		}
		if _, ok := gatehouse.NormalizeGUID(name); !ok {
			return gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such role assignment here.")
		}
		a, err := p.opts.Authz.DeleteAssignment(q.ctx(), id, name)
		if err != nil {
			return err
		}
		if a == nil {
			return gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such role assignment here.")
		}
		details["principalId"], details["roleDefinitionId"] = a.PrincipalID, a.RoleDefinitionID
		p.auditUser(q, actAssignmentDelete, id, audit.Succeeded, http.StatusOK, "", details)
		base := q.r.URL.Path[:strings.LastIndex(q.r.URL.Path, "/roles/")]
		v := p.rolesView(q, base, id)
		roleName := a.RoleDefinitionID
		if r, ok := p.opts.Authz.Role(a.RoleDefinitionID); ok {
			roleName = r.RoleName
		}
		v.Flash = "Removed " + roleName + " from " + p.principalName(q, a.PrincipalID) + "."
		return res.render(q, id, v, http.StatusOK)
	}
}

// resolveAssignee finds the principal the form names: a GUID is an object
// id (person, service principal, managed identity) or else a client id;
// anything else a person's user name. It returns the object id and a
// name to show, or what is wrong, for the page.
func (p *Portal) resolveAssignee(q *req, s string) (objectID, name, problem string) {
	const unknown = "No person, service principal, managed identity or group is known by that name or id."
	if s == "" {
		return "", "", "Name who is to hold the role: a user name, an object id (a group's too) or a client id."
	}
	if len(s) > 256 {
		return "", "", unknown
	}
	if _, ok := gatehouse.NormalizeGUID(s); ok {
		if pr, err := p.opts.Directory.Principal(q.ctx(), s); err == nil {
			return pr.ObjectID, p.principalName(q, pr.ObjectID), ""
		}
		if pr, err := p.opts.Directory.PrincipalByClientID(s); err == nil {
			return pr.ObjectID, p.principalName(q, pr.ObjectID), ""
		}
		if g, err := p.opts.Directory.Group(s); err == nil {
			return g.ObjectID, "the group " + g.DisplayName, ""
		}
		return "", "", unknown
	}
	u, err := p.opts.Directory.User(s)
	if err != nil {
		return "", "", unknown
	}
	return u.ObjectID, u.UserName, ""
}

// principalName is a principal's name for messages, or its object id.
func (p *Portal) principalName(q *req, objectID string) string {
	if pr, err := p.opts.Directory.Principal(q.ctx(), objectID); err == nil && pr.Name != "" {
		return pr.Name
	}
	if g, err := p.opts.Directory.Group(objectID); err == nil {
		return "the group " + g.DisplayName
	}
	return objectID
}

// clipField bounds a form value kept in the audit log.
func clipField(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}
