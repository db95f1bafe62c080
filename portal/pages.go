package portal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/netacl"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/vault"
)

// The ARM actions the portal's pages need, the same as the management
// API's: a person sees and does in the portal exactly what their roles let
// them do through ARM.
const (
	actAccountRead      = "Microsoft.CognitiveServices/accounts/read"
	actAccountWrite     = "Microsoft.CognitiveServices/accounts/write"
	actDeletedRead      = "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/read"
	actListKeys         = "Microsoft.CognitiveServices/accounts/listKeys/action"
	actRegenerateKey    = "Microsoft.CognitiveServices/accounts/regenerateKey/action"
	actListKeyUsage     = "Microsoft.CognitiveServices/accounts/listKeyUsage/action"
	actDeploymentRead   = "Microsoft.CognitiveServices/accounts/deployments/read"
	actDeploymentWrite  = "Microsoft.CognitiveServices/accounts/deployments/write"
	actDeploymentDelete = "Microsoft.CognitiveServices/accounts/deployments/delete"
	actUsagesRead       = "Microsoft.CognitiveServices/locations/usages/read"
	actAssignmentRead   = "Microsoft.Authorization/roleAssignments/read"
	actVaultRead        = "Microsoft.KeyVault/vaults/read"
	dataSecretsList     = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
)

func (q *req) can(p *Portal, action string, scope *gatehouse.ResourceID) bool {
	return p.opts.Authz.Decide(q.user.ObjectID, authz.Action(action), scope).Allowed
}

func (q *req) canData(p *Portal, action string, scope *gatehouse.ResourceID) bool {
	return p.opts.Authz.Decide(q.user.ObjectID, authz.DataAction(action), scope).Allowed
}

// --- sign in and out

type signInView struct {
	Next, UserName, Error string
	// ChangePassword asks for a new password: the one given was an
	// administrator's temporary one (forceChangePasswordNextSignIn).
	ChangePassword bool
	// Context says why, when an app's sign-in waits for this one.
	Context string
}

// appWaiting is the sign-in page's context when next is an app's sign-in.
func appWaiting(next string) string {
	if strings.HasPrefix(next, authority.AuthorizePagePath+"?") || strings.HasPrefix(next, authority.DevicePagePath) {
		return "An app's sign-in is waiting: sign in to the portal to continue it."
	}
	return ""
}

func (p *Portal) signInPage(q *req) error {
	if u, err := p.session(q.r); err == nil && u != nil {
		http.Redirect(q.w, q.r, safeNext(q.r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	next := safeNext(q.r.URL.Query().Get("next"))
	return p.render(q, http.StatusOK, "signin", "Sign in", signInView{Next: next, Context: appWaiting(next)})
}

// maxFormBytes bounds a form body: the portal's forms are a few fields.
const maxFormBytes = 16 << 10

func (q *req) form() error {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, maxFormBytes)
	if err := q.r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return gatehouse.Errorf(http.StatusRequestEntityTooLarge, gatehouse.CodeRequestTooLarge, "The form is too large.")
		}
		return gatehouse.BadRequestf(gatehouse.CodeBadRequest, "The form could not be read.").WithCause(err)
	}
	return nil
}

func (p *Portal) signIn(q *req) error {
	if err := q.form(); err != nil {
		return err
	}
	v := signInView{Next: safeNext(q.r.PostForm.Get("next")), UserName: q.r.PostForm.Get("username")}
	v.Context = appWaiting(v.Next)
	if n := 200; len(v.UserName) > n {
		for n > 0 && !utf8.RuneStart(v.UserName[n]) {
			n-- // not within a character: the page stays UTF-8
		}
		v.UserName = v.UserName[:n]
	}
	if p.throttle.blocked(q.r, v.UserName) {
		v.Error = "Too many failed sign-ins from this address. Wait a minute and try again."
		q.w.Header().Set("Retry-After", "60")
		return p.render(q, http.StatusTooManyRequests, "signin", "Sign in", v)
	}
	var (
		pr  gatehouse.Principal
		err error
	)
	tenant, password := p.opts.Directory.DefaultTenant(), q.r.PostForm.Get("password")
	if q.r.PostForm.Has("newpassword") {
		// The second step of a temporary password's sign-in: the person
		// gives it again with the one they chose.
		v.ChangePassword = true
		next := q.r.PostForm.Get("newpassword")
		if next != q.r.PostForm.Get("confirmpassword") {
			v.Error = "The new passwords do not match."
			return p.render(q, http.StatusBadRequest, "signin", "Sign in", v)
		}
		pr, err = p.opts.Directory.ChangePassword(q.ctx(), tenant, v.UserName, password, next)
		if e, ok := gatehouse.AsError(err); ok && errors.Is(err, directory.ErrInvalid) {
			v.Error = e.Message
			return p.render(q, http.StatusBadRequest, "signin", "Sign in", v)
		}
		if err == nil {
			p.audit(q.ctx(), q.r, pr, actChangePassword, "/users/"+pr.ObjectID, audit.Succeeded, http.StatusOK, "", nil)
		}
	} else {
		pr, err = p.opts.Directory.CheckPassword(q.ctx(), tenant, v.UserName, password)
	}
	switch {
	case errors.Is(err, directory.ErrPasswordExpired):
		// Right, and temporary: ask for a new one. Not a failure for the
		// throttle, and no session yet.
		v.ChangePassword = true
		v.Error = "Your password is temporary: choose a new one to sign in."
		return p.render(q, http.StatusOK, "signin", "Sign in", v)
	case errors.Is(err, directory.ErrInvalidPassword), errors.Is(err, directory.ErrDisabled):
		p.throttle.failed(q.r, v.UserName)
		// One message for both: which accounts exist or are disabled is
		// not for a stranger to learn.
		v.Error = "The user name or password is incorrect."
		p.audit(q.ctx(), q.r, gatehouse.Principal{}, "Gatehouse/portal/signIn/action", "/", audit.Denied, http.StatusUnauthorized, "InvalidCredentials", nil)
		return p.render(q, http.StatusUnauthorized, "signin", "Sign in", v)
	case err != nil:
		return gatehouse.Errorf(http.StatusServiceUnavailable, gatehouse.CodeUnavailable, "Sign-in is busy; try again.").WithCause(err)
	}
	// A session the browser still held (another person's, or an old one)
	// ends here: one browser, one session.
	if err := p.deleteSession(q.r); err != nil {
		return err
	}
	if err := p.newSession(q.w, q.r, pr); err != nil {
		return err
	}
	p.audit(q.ctx(), q.r, pr, "Gatehouse/portal/signIn/action", "/", audit.Succeeded, http.StatusOK, "", nil)
	http.Redirect(q.w, q.r, v.Next, http.StatusSeeOther)
	return nil
}

// confirmSignOutEverywhere asks before ending every session of the
// person; it changes nothing.
func (p *Portal) confirmSignOutEverywhere(q *req) error {
	return p.render(q, http.StatusOK, "confirm", "Sign out everywhere", confirmView{
		Question: "Sign out everywhere as " + q.user.UserName + "?",
		Consequence: "Every session of yours ends at once, on every node: this browser and the portal in any other, " +
			"gatehouse login, az login and the apps you signed in from a browser or with a device code. " +
			"Access tokens they already hold keep working until they expire (an hour at most). Do this if you approved a sign-in you did not start.",
		Button: "Sign out everywhere",
		Action: "/portal/signout-everywhere",
		Cancel: "/portal/",
	})
}

// signOutEverywhere ends every session of the person (as Graph's
// revokeSignInSessions does, audited), then this browser's.
func (p *Portal) signOutEverywhere(q *req) error {
	u := q.user
	pr := gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: u.ObjectID, TenantID: u.TenantID, Name: u.UserName}
	if _, err := p.opts.Directory.RevokeSignInSessions(q.ctx(), u.ObjectID); err != nil {
		p.audit(q.ctx(), q.r, pr, actRevokeSessions, "/users/"+u.ObjectID, audit.Failed, gatehouse.ErrorStatus(err), "", nil)
		return err
	}
	p.audit(q.ctx(), q.r, pr, actRevokeSessions, "/users/"+u.ObjectID, audit.Succeeded, http.StatusOK, "", nil)
	if err := p.endSession(q.w, q.r); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/portal/signin", http.StatusSeeOther)
	return nil
}

// actChangePassword is audited when a person replaces a temporary
// password at sign-in.
const actChangePassword = "Gatehouse/portal/changePassword/action"

// actRevokeSessions is audited when a person signs out everywhere.
const actRevokeSessions = "Gatehouse/portal/signOutEverywhere/action"

// logoutTarget is where an app's sign-out (the authority's end-session
// endpoint sent the browser here with the app's query) goes afterwards:
// "" when the app named no address.
func (p *Portal) logoutTarget(r *http.Request) (string, error) {
	v := r.URL.Query()
	if p.opts.SignIns == nil || v.Get("post_logout_redirect_uri") == "" {
		return "", nil
	}
	return p.opts.SignIns.LogoutTarget(v.Get("client_id"), "", v.Get("post_logout_redirect_uri"), v.Get("state"))
}

// signOutPage is GET /portal/signout: an app's sign-out. Signed in, the
// person is asked (a link cannot sign anyone out); not signed in, the
// browser goes on to the app at once.
func (p *Portal) signOutPage(q *req) error {
	target, err := p.logoutTarget(q.r)
	if err != nil {
		return err
	}
	u, _, err := p.sessionSince(q.r)
	if errors.Is(err, errNoSession) {
		http.Redirect(q.w, q.r, cmp.Or(target, "/portal/signin"), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	q.user = u
	action := "/portal/signout"
	if q.r.URL.RawQuery != "" {
		action += "?" + q.r.URL.RawQuery
	}
	if target != "" {
		allowFormRedirect(q.w, target)
	}
	return p.render(q, http.StatusOK, "confirm", "Sign out", confirmView{
		Question:    "Sign out of Gatehouse as " + u.UserName + "?",
		Consequence: "An app asked to sign you out. This ends your session in this browser; tokens apps already hold keep working until they expire. Sign out everywhere ends every session.",
		Button:      "Sign out",
		Action:      action,
		Cancel:      "/portal/",
	})
}

// signOut ends this browser's session. A portal path in the form's next
// (the app sign-in page's "someone else?") is where signing in again leads;
// an app's sign-out (its query, checked again) goes back to the app.
func (p *Portal) signOut(q *req) error {
	if err := q.form(); err != nil {
		return err
	}
	target, err := p.logoutTarget(q.r)
	if err != nil {
		return err
	}
	if err := p.endSession(q.w, q.r); err != nil {
		return err
	}
	if target != "" {
		http.Redirect(q.w, q.r, target, http.StatusSeeOther)
		return nil
	}
	to := "/portal/signin"
	if next := q.r.PostForm.Get("next"); next != "" && safeNext(next) == next {
		to += "?next=" + url.QueryEscape(next)
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

// --- home

type resourceRow struct {
	Name, Group, Subscription, Kind, Location, Endpoint, Link string
	LocalAuth                                                 bool
}

type homeView struct {
	Accounts, Vaults []resourceRow
	Deleted          []deletedRow
}

// deletedRow is a soft-deleted account: recoverable until PurgeAt.
type deletedRow struct {
	Name, Group, Kind, Location, DeletedAt, PurgeAt, Link string
	CanRecover                                            bool
}

func (p *Portal) home(q *req) error {
	subs, err := p.opts.Resources.Subscriptions(q.ctx())
	if err != nil {
		return err
	}
	var v homeView
	for _, s := range subs {
		scope := &gatehouse.ResourceID{Subscription: s.ID}
		accts, err := p.opts.Accounts.List(q.ctx(), scope)
		if err != nil {
			return err
		}
		for _, a := range accts {
			id, ok := accounts.ParseID(a.ID)
			if !ok || !q.can(p, actAccountRead, id) {
				continue
			}
			v.Accounts = append(v.Accounts, resourceRow{Name: a.Name, Group: a.ResourceGroup, Subscription: a.Subscription,
				Kind: a.Kind, Location: a.Location, Endpoint: a.Endpoint, LocalAuth: !a.DisableLocalAuth,
				Link: resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name)})
		}
		deleted, err := p.opts.Accounts.ListDeleted(q.ctx(), s.ID)
		if err != nil {
			return err
		}
		for _, a := range deleted {
			id, ok := accounts.ParseID(a.ID)
			if !ok || !q.can(p, actDeletedRead, &gatehouse.ResourceID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}) {
				continue
			}
			v.Deleted = append(v.Deleted, deletedRow{Name: a.Name, Group: a.ResourceGroup, Kind: a.Kind, Location: a.Location,
				DeletedAt: a.DeletedAt.UTC().Format("2006-01-02 15:04 UTC"), PurgeAt: a.ScheduledPurge.UTC().Format("2006-01-02 15:04 UTC"),
				Link: resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name), CanRecover: q.can(p, actAccountWrite, id)})
		}
		if p.opts.Vaults == nil {
			continue
		}
		vaults, err := p.opts.Vaults.ListVaults(q.ctx(), scope)
		if err != nil {
			return err
		}
		for _, vt := range vaults {
			if !q.can(p, actVaultRead, vt.Scope()) {
				continue
			}
			v.Vaults = append(v.Vaults, resourceRow{Name: vt.Name, Group: vt.ResourceGroup, Subscription: vt.Subscription,
				Location: vt.Location, Endpoint: vt.URI, Link: resourceLink("vaults", vt.Subscription, vt.ResourceGroup, vt.Name)})
		}
	}
	return p.render(q, http.StatusOK, "home", "Resources", v)
}

func resourceLink(kind, sub, group, name string) string {
	return "/portal/" + kind + "/" + sub + "/" + group + "/" + name
}

// --- an AI account

// resourceID builds the id of the page's resource from the path, with the
// ARM id parser's validation.
func (q *req) resourceID(ns, typ string) (*gatehouse.ResourceID, error) {
	s := "/subscriptions/" + q.r.PathValue("sub") + "/resourceGroups/" + q.r.PathValue("rg") +
		"/providers/" + ns + "/" + typ + "/" + q.r.PathValue("name")
	id, err := gatehouse.ParseResourceID(s)
	if err != nil || !gatehouse.IsGUID(q.r.PathValue("sub")) || id.Name() != q.r.PathValue("name") {
		return nil, gatehouse.NotFoundf(gatehouse.CodeNotFound, "There is no such resource.")
	}
	return id, nil
}

type slotView struct {
	KeyName, Label string // "key1", "Key 1"
	Value          string // "" unless shown
	Generation     int64
	RegeneratedAt  time.Time
	Usage          *accounts.KeyUsage
	InUse          bool // used in the last 24 hours
	ConfirmMessage string
}

type keysView struct {
	Base                   string // the account's portal path
	Shown                  bool
	CanList, CanRegenerate bool
	CanSeeUsage            bool
	LocalAuthDisabled      bool
	Slots                  [2]slotView
	Flash                  string
}

type assignmentRow struct {
	Name, Role, Principal, PrincipalType, Scope string
	// Inherited: made above the resource; Here: made at exactly it (only
	// those can be removed on its page).
	Inherited, Here bool
}

type deploymentRow struct {
	Name, Model, Upstream, Credential, Quota string
	// DeleteURL is the delete button's form action, for whoever may
	// delete it ("": no button).
	DeleteURL string
}

// modelOption is a catalog model in the deploy form: Value is
// format|name|version.
type modelOption struct {
	Value, Label string
}

// quotaText says what a deployment's capacity allows, and whether the
// gateway holds it to that.
func quotaText(capacity int, enforced bool) string {
	if capacity <= 0 {
		return "unlimited"
	}
	s := fmt.Sprintf("%d: %d tokens, %d requests a minute", capacity, capacity*1000, capacity*6)
	if !enforced {
		s += " (not enforced)"
	}
	return s
}

type accountView struct {
	Account *accounts.Account
	// OpenAIBase and RealtimeURL are what OpenAI's clients are configured
	// with, for the kinds that serve the OpenAI routes.
	OpenAIBase, RealtimeURL string
	Keys                    keysView
	Principals              []accounts.PrincipalUsage
	Deployments             []deploymentRow
	// Models are the catalog's, offered in the deploy form to whoever may
	// write deployments here (none: no form); DeployBase is the form's
	// path.
	Models     []modelOption
	DeployBase string
	// Quotas are the catalog models' quotas in the account's location
	// (Standard, what the form deploys), for whoever may read them.
	Quotas        []accounts.QuotaUsage
	QuotaLocation string
	Roles         rolesView
	// Activity links the activity log, for whoever may read it.
	Activity string
	// Locks are the management locks on the account or above it.
	Locks []*resources.Lock
	Tags  tagsView
}

// locksOn lists the management locks that apply to id (on it or above it).
func (p *Portal) locksOn(q *req, id *gatehouse.ResourceID) ([]*resources.Lock, error) {
	all, err := p.opts.Resources.Locks(q.ctx(), id.Subscription)
	if err != nil {
		return nil, err
	}
	var out []*resources.Lock
	for _, l := range all {
		if resources.Within(id.String(), l.Scope) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (p *Portal) loadAccount(q *req) (*gatehouse.ResourceID, *accounts.Account, error) {
	id, err := q.resourceID("Microsoft.CognitiveServices", "accounts")
	if err != nil {
		return nil, nil, err
	}
	if !q.can(p, actAccountRead, id) {
		// Like ARM: the same answer whether it exists or not.
		return nil, nil, denied(q.user, actAccountRead, id)
	}
	a, err := p.opts.Accounts.Get(q.ctx(), id)
	if err != nil {
		return nil, nil, err
	}
	return id, a, nil
}

// locked refuses a change a management lock forbids (409 ScopeLocked, as
// ARM's; audited as failed): the portal's changes obey locks as the
// management API's do.
func (p *Portal) locked(q *req, action string, scope *gatehouse.ResourceID, details map[string]string) error {
	err := p.opts.Resources.CheckLocks(q.ctx(), scope, action)
	if err != nil {
		code := ""
		if e, ok := gatehouse.AsError(err); ok {
			code = e.Code
		}
		p.auditUser(q, action, scope, audit.Failed, gatehouse.ErrorStatus(err), code, details)
	}
	return err
}

func denied(u *directory.User, action string, scope *gatehouse.ResourceID) error {
	return gatehouse.Errorf(http.StatusForbidden, gatehouse.CodeAuthorizationFailed,
		"%s does not have authorization to perform action '%s' over scope '%s'.", u.UserName, action, scope.String())
}

// keysPanel builds the keys panel: both slots with their usage evidence, and
// the key values when keys is non-nil.
func (p *Portal) keysPanel(q *req, id *gatehouse.ResourceID, a *accounts.Account, keys *accounts.Keys) (keysView, []accounts.PrincipalUsage, error) {
	unlocked := p.opts.Resources.CheckLocks(q.ctx(), id, actListKeys) == nil
	kv := keysView{
		Base: resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name),
		// A ReadOnly lock stops both (offered, they would answer 409).
		// Without local auth listKeys answers 400, as in Azure.
		CanList:       q.can(p, actListKeys, id) && unlocked && !a.DisableLocalAuth,
		CanRegenerate: q.can(p, actRegenerateKey, id) && unlocked,
		CanSeeUsage:   q.can(p, actListKeyUsage, id), LocalAuthDisabled: a.DisableLocalAuth,
	}
	var ev *accounts.Evidence
	if kv.CanSeeUsage {
		var err error
		if ev, err = p.opts.Accounts.KeyUsage(q.ctx(), id); err != nil {
			return kv, nil, err
		}
	}
	now := p.opts.Now()
	for i := range kv.Slots {
		s := &kv.Slots[i]
		s.KeyName, s.Label = accounts.SlotName(i), "Key "+strconv.Itoa(i+1)
		s.Generation, s.RegeneratedAt = a.Keys[i].Generation, a.Keys[i].RegeneratedAt
		if keys != nil {
			s.Value = []string{keys.Key1, keys.Key2}[i]
			kv.Shown = true
		}
		s.ConfirmMessage = "Regenerate " + s.Label + "? Every application still using it stops working at once."
		if ev != nil {
			u := ev.Keys[i]
			s.Usage = &u
			s.InUse = !u.LastUsed.IsZero() && now.Sub(u.LastUsed) < 24*time.Hour
			if s.InUse {
				s.ConfirmMessage = "Regenerate " + s.Label + "? It was used " + ago(now, u.LastUsed) + " (" +
					strconv.FormatInt(u.RequestsLastHour, 10) + " requests in the last hour, from " +
					strconv.Itoa(len(u.ClientAddresses)) + " address(es)). Those applications stop working at once: move them to the other key first."
			}
		}
	}
	var principals []accounts.PrincipalUsage
	if ev != nil {
		principals = ev.Principals
	}
	return kv, principals, nil
}

func (p *Portal) accountView(q *req, id *gatehouse.ResourceID, a *accounts.Account, keys *accounts.Keys, flash string) (*accountView, error) {
	kv, principals, err := p.keysPanel(q, id, a, keys)
	if err != nil {
		return nil, err
	}
	kv.Flash = flash
	v := &accountView{Account: a, Keys: kv, Principals: principals}
	if v.Locks, err = p.locksOn(q, id); err != nil {
		return nil, err
	}
	if (strings.EqualFold(a.Kind, "OpenAI") || strings.EqualFold(a.Kind, "AIServices")) && strings.HasPrefix(a.Endpoint, "https://") {
		base := strings.TrimSuffix(a.Endpoint, "/") + "/openai/v1"
		v.OpenAIBase = base + "/"
		v.RealtimeURL = "wss://" + strings.TrimPrefix(base, "https://") + "/realtime?model={deployment}"
	}
	if p.opts.Deployments != nil && q.can(p, actDeploymentRead, id) {
		ds, err := p.opts.Deployments.ListDeployments(q.ctx(), a)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			cred := "none"
			switch {
			case d.Upstream.KeyVaultSecret != "":
				cred = "Key Vault: " + d.Upstream.KeyVaultSecret
			case d.Upstream.HasKey:
				cred = "stored key (sealed)"
			}
			model := d.Model.Name
			if d.Model.Version != "" {
				model += " (" + d.Model.Version + ")"
			}
			if d.Upstream.Model != "" && d.Upstream.Model != d.Model.Name {
				model += " → " + d.Upstream.Model
			}
			upstream := d.Upstream.Endpoint
			if d.Catalog {
				// The operator's upstream: its address is not the account's to see.
				upstream, cred = "the server's model catalog", "the catalog's"
			}
			v.Deployments = append(v.Deployments, deploymentRow{Name: d.Name, Model: model, Upstream: upstream, Credential: cred,
				Quota: quotaText(d.SKU.Capacity, p.opts.DeploymentQuotas)})
			if q.can(p, actDeploymentDelete, deploymentScope(id, d.Name)) {
				v.Deployments[len(v.Deployments)-1].DeleteURL = resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name) +
					"/deployments/" + url.PathEscape(d.Name) + "/delete"
			}
		}
		if slices.ContainsFunc(accounts.DeploymentKinds, func(k string) bool { return strings.EqualFold(k, a.Kind) }) &&
			q.can(p, actDeploymentWrite, id) {
			for _, o := range p.opts.Deployments.Catalog().Offers() {
				label := o.Name
				if o.Version != "" {
					label += " (" + o.Version + ")"
				}
				v.Models = append(v.Models, modelOption{Value: o.Format + "|" + o.Name + "|" + o.Version, Label: label})
			}
			v.DeployBase = resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name) + "/deployments"
			if q.can(p, actUsagesRead, &gatehouse.ResourceID{Subscription: id.Subscription}) {
				us, err := p.opts.Deployments.QuotaUsages(q.ctx(), id.Subscription, a.Location)
				if err != nil {
					return nil, err
				}
				for _, u := range us {
					if u.Limit != accounts.UnlimitedQuota && u.SKU == "Standard" {
						v.Quotas = append(v.Quotas, u)
					}
				}
				v.QuotaLocation = a.Location
			}
		}
	}
	v.Roles = p.rolesView(q, kv.Base, id)
	v.Tags = p.tagsView(q, kv.Base, id, a.Tags)
	if q.canSeeActivity(p, id) {
		v.Activity = kv.Base + "/activity"
	}
	return v, nil
}

// assignments lists the role assignments that apply at id: at it, above it
// (inherited) and beneath it.
func (p *Portal) assignments(ctx context.Context, id *gatehouse.ResourceID) []assignmentRow {
	var rows []assignmentRow
	for _, as := range p.opts.Authz.Assignments(authz.AssignmentFilter{Scope: id}) {
		here := strings.EqualFold(as.Scope, id.String())
		row := assignmentRow{Name: as.Name, Role: as.RoleDefinitionID, Principal: as.PrincipalID, PrincipalType: as.PrincipalType,
			Scope: as.Scope, Here: here, Inherited: !here && id.Within(as.ScopeID())}
		if r, ok := p.opts.Authz.Role(as.RoleDefinitionID); ok {
			row.Role = r.RoleName
		}
		if pr, err := p.opts.Directory.Principal(ctx, as.PrincipalID); err == nil && pr.Name != "" {
			row.Principal = pr.Name + " (" + as.PrincipalID + ")"
		} else if g, err := p.opts.Directory.Group(as.PrincipalID); err == nil {
			row.Principal = g.DisplayName + " (" + as.PrincipalID + ")"
		}
		rows = append(rows, row)
	}
	return rows
}

func (p *Portal) accountPage(q *req) error {
	id, a, err := p.loadAccount(q)
	if err != nil {
		return err
	}
	v, err := p.accountView(q, id, a, nil, "")
	if err != nil {
		return err
	}
	return p.render(q, http.StatusOK, "account", a.Name, v)
}

// showKeys reveals both keys (POST: the values never sit in a URL, a
// history entry or a cache). Audited like ARM's listKeys.
func (p *Portal) showKeys(q *req) error {
	id, a, err := p.loadAccount(q)
	if err != nil {
		return err
	}
	if !q.can(p, actListKeys, id) {
		p.auditUser(q, actListKeys, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, nil)
		return denied(q.user, actListKeys, id)
	}
	if err := p.locked(q, actListKeys, id, nil); err != nil {
		return err
	}
	keys, err := p.opts.Accounts.ListKeys(q.ctx(), id)
	if err != nil {
		return err
	}
	p.auditUser(q, actListKeys, id, audit.Succeeded, http.StatusOK, "", nil)
	return p.renderAccount(q, id, a, &keys, "")
}

// regenerate replaces one key and shows both, once confirmed: by the
// hx-confirm dialog (an htmx request) or, without JavaScript, on the
// confirm page it answers first. Audited like ARM's regenerateKey.
func (p *Portal) regenerate(q *req) error {
	if err := q.form(); err != nil {
		return err
	}
	id, a, err := p.loadAccount(q)
	if err != nil {
		return err
	}
	slot, ok := accounts.ParseKeyName(q.r.PostForm.Get("keyName"))
	if !ok {
		return gatehouse.BadRequestf("InvalidKeyName", "The key name must be Key1 or Key2.")
	}
	name := []string{"Key1", "Key2"}[slot]
	if !q.can(p, actRegenerateKey, id) {
		p.auditUser(q, actRegenerateKey, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, map[string]string{"keyName": name})
		return denied(q.user, actRegenerateKey, id)
	}
	if err := p.locked(q, actRegenerateKey, id, map[string]string{"keyName": name}); err != nil {
		return err
	}
	// The forms carry the generation they were shown for: a form sent
	// again (a reload of the page a regeneration answered, without
	// JavaScript) finds the key already regenerated and does nothing.
	current := strconv.FormatInt(a.Keys[slot].Generation, 10)
	if g := q.r.PostForm.Get("generation"); g != "" && g != current {
		return p.renderAccount(q, id, a, nil, name+" was already regenerated (it is at generation "+current+"): nothing was done.")
	}
	if q.r.PostForm.Get("confirm") != "yes" && q.r.Header.Get("HX-Request") != "true" {
		// Without JavaScript (no hx-confirm dialog) the button leads to a
		// page that asks first, with what the key's usage says.
		kv, _, err := p.keysPanel(q, id, a, nil)
		if err != nil {
			return err
		}
		page := resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name)
		return p.render(q, http.StatusOK, "confirm", "Regenerate "+kv.Slots[slot].Label, confirmView{
			Question:    kv.Slots[slot].ConfirmMessage,
			Consequence: "The new key is shown once it is made. Applications on the other key keep working.",
			Button:      "Regenerate " + kv.Slots[slot].Label,
			Action:      page + "/regenerate",
			Fields:      map[string]string{"keyName": name, "confirm": "yes", "generation": current},
			Cancel:      page,
		})
	}
	keys, a2, err := p.opts.Accounts.RegenerateKey(q.ctx(), id, slot, accounts.Actor{ObjectID: q.user.ObjectID, Type: "User"})
	if err != nil {
		p.auditUser(q, actRegenerateKey, id, audit.Failed, gatehouse.ErrorStatus(err), "", map[string]string{"keyName": name})
		return err
	}
	p.auditUser(q, actRegenerateKey, id, audit.Succeeded, http.StatusOK, "",
		map[string]string{"keyName": name, "generation": strconv.FormatInt(a2.Keys[slot].Generation, 10)})
	var show *accounts.Keys
	if q.can(p, actListKeys, id) {
		show = &keys
	}
	return p.renderAccount(q, id, a2, show, name+" was regenerated. Applications using the old "+name+" now fail.")
}

// recoverAccount brings a soft-deleted account back (ARM's PUT with
// properties.restore), then shows its page. Audited like ARM's
// accounts/write.
func (p *Portal) recoverAccount(q *req) error {
	if err := q.form(); err != nil {
		return err
	}
	id, err := q.resourceID("Microsoft.CognitiveServices", "accounts")
	if err != nil {
		return err
	}
	details := map[string]string{"restore": "true"}
	if !q.can(p, actAccountWrite, id) {
		p.auditUser(q, actAccountWrite, id, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, details)
		return denied(q.user, actAccountWrite, id)
	}
	if err := p.locked(q, actAccountWrite, id, details); err != nil {
		return err
	}
	a, _, err := p.opts.Accounts.Put(q.ctx(), id, accounts.Spec{Restore: true, Location: q.r.PostForm.Get("location")},
		accounts.Actor{ObjectID: q.user.ObjectID, Type: "User"})
	if p.auditOutcome(q, actAccountWrite, id, err, details); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name), http.StatusSeeOther)
	return nil
}

func deploymentScope(account *gatehouse.ResourceID, name string) *gatehouse.ResourceID {
	return account.Child(accounts.Namespace, "deployments", name)
}

// deploymentCall is the prologue of a deployment action: the form, the
// account, the deployment's name (validated; read after the form is
// parsed) and the user's permission for action on it, a refusal audited.
// details carries the name for the audit entry.
func (p *Portal) deploymentCall(q *req, action string, name func() string) (*accounts.Account, *gatehouse.ResourceID, map[string]string, error) {
	if err := q.form(); err != nil {
		return nil, nil, nil, err
	}
	id, a, err := p.loadAccount(q)
	if err != nil {
		return nil, nil, nil, err
	}
	if p.opts.Deployments == nil {
		return nil, nil, nil, gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server has no deployments.")
	}
	n := name()
	if err := accounts.ValidateDeploymentName(n); err != nil {
		return nil, nil, nil, err
	}
	scope := deploymentScope(id, n)
	details := map[string]string{"name": n}
	if !q.can(p, action, scope) {
		p.auditUser(q, action, scope, audit.Denied, http.StatusForbidden, gatehouse.CodeAuthorizationFailed, details)
		return nil, nil, nil, denied(q.user, action, scope)
	}
	if err := p.locked(q, action, scope, details); err != nil {
		return nil, nil, nil, err
	}
	return a, scope, details, nil
}

// deployModel deploys a model of the server's catalog (form: name,
// model as format|name|version, capacity), as ARM's PUT of a deployment
// without an upstream does, then shows the account page. Audited like
// ARM's deployments/write.
func (p *Portal) deployModel(q *req) error {
	a, scope, details, err := p.deploymentCall(q, actDeploymentWrite, func() string { return strings.TrimSpace(q.r.PostForm.Get("deploymentName")) })
	if err != nil {
		return err
	}
	name := details["name"]
	parts := strings.Split(q.r.PostForm.Get("model"), "|")
	if len(parts) != 3 || parts[1] == "" {
		return gatehouse.BadRequestf("InvalidDeploymentModel", "Choose a model.")
	}
	capacity, err := strconv.Atoi(q.r.PostForm.Get("capacity"))
	if err != nil || capacity < 1 || capacity > 100000 {
		return gatehouse.BadRequestf("InvalidCapacity", "The capacity must be a whole number from 1 to 100000.")
	}
	spec := accounts.DeploymentSpec{Model: accounts.DeploymentModel{Format: parts[0], Name: parts[1], Version: parts[2]},
		SKU: &accounts.DeploymentSKU{Name: "Standard", Capacity: capacity}}
	// The form makes new deployments: one of the name would be replaced
	// whole (its upstream and credential gone), as a PUT replaces it.
	if _, gerr := p.opts.Deployments.GetDeployment(q.ctx(), a, name); gerr == nil {
		err = gatehouse.Errorf(http.StatusConflict, "DeploymentExists",
			"The account has a deployment named %s already: delete it first, or choose another name.", name)
	} else {
		_, _, err = p.opts.Deployments.PutDeployment(q.ctx(), a, name, spec, accounts.Actor{ObjectID: q.user.ObjectID, Type: "User"})
	}
	if p.auditOutcome(q, actDeploymentWrite, scope, err, details); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name)+"#deployments", http.StatusSeeOther)
	return nil
}

// confirmView is the page that asks before a deletion: the Delete
// buttons of the resource pages lead to it, and its own button posts the
// deletion (so a stray click deletes nothing, with or without JavaScript).
type confirmView struct {
	Question, Consequence, Button string
	Action, Cancel                string
	// Fields are posted with the button (hidden inputs).
	Fields map[string]string
}

// confirmDeleteDeployment asks whether to delete a deployment, for a user
// who may; it changes nothing.
func (p *Portal) confirmDeleteDeployment(q *req) error {
	id, a, err := p.loadAccount(q)
	if err != nil {
		return err
	}
	if p.opts.Deployments == nil {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server has no deployments.")
	}
	name := q.r.PathValue("deployment")
	if err := accounts.ValidateDeploymentName(name); err != nil {
		return err
	}
	if scope := deploymentScope(id, name); !q.can(p, actDeploymentDelete, scope) {
		return denied(q.user, actDeploymentDelete, scope)
	}
	d, err := p.opts.Deployments.GetDeployment(q.ctx(), a, name)
	if err != nil {
		return err
	}
	page := resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name)
	return p.render(q, http.StatusOK, "confirm", "Delete the deployment "+d.Name, confirmView{
		Question: "Delete the deployment " + d.Name + " of the account " + a.Name + "?",
		Consequence: "Applications calling it get 404 DeploymentNotFound at once, on every node. " +
			"A deployment is not soft-deleted: creating it again starts afresh.",
		Button: "Delete " + d.Name,
		Action: page + "/deployments/" + url.PathEscape(d.Name) + "/delete",
		Cancel: page + "#deployments",
	})
}

// deleteDeployment deletes a deployment, then shows the account page.
// Audited like ARM's deployments/delete.
func (p *Portal) deleteDeployment(q *req) error {
	a, scope, details, err := p.deploymentCall(q, actDeploymentDelete, func() string { return q.r.PathValue("deployment") })
	if err != nil {
		return err
	}
	_, err = p.opts.Deployments.DeleteDeployment(q.ctx(), a, details["name"])
	if p.auditOutcome(q, actDeploymentDelete, scope, err, details); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, resourceLink("accounts", a.Subscription, a.ResourceGroup, a.Name)+"#deployments", http.StatusSeeOther)
	return nil
}

// renderAccount answers an account action: the keys panel for htmx, the
// whole page otherwise (the forms work without JavaScript).
func (p *Portal) renderAccount(q *req, id *gatehouse.ResourceID, a *accounts.Account, keys *accounts.Keys, flash string) error {
	if q.htmx() {
		kv, _, err := p.keysPanel(q, id, a, keys)
		if err != nil {
			return err
		}
		kv.Flash = flash
		return p.renderFragment(q, "account", "keys", kv)
	}
	v, err := p.accountView(q, id, a, keys, flash)
	if err != nil {
		return err
	}
	return p.render(q, http.StatusOK, "account", a.Name, v)
}

// --- a vault

type secretRow struct {
	Name, ContentType string
	Enabled           bool
	Updated, Expires  time.Time
}

type vaultView struct {
	Vault   *vault.Vault
	CanList bool
	// NetworkDenied: the vault's network rules refuse the caller's address.
	NetworkDenied bool
	Secrets       []secretRow
	More          bool
	Roles         rolesView
	Tags          tagsView
	Activity      string
}

func (p *Portal) vaultPage(q *req) error {
	id, err := p.vaultRoles().load(q)
	if err != nil {
		return err
	}
	v, err := p.vaultView(q, id)
	if err != nil {
		return err
	}
	return p.render(q, http.StatusOK, "vault", v.Vault.Name, v)
}

// vaultView builds a vault's page: its secrets' metadata (never values)
// for whoever may read it, and its role assignments.
func (p *Portal) vaultView(q *req, id *gatehouse.ResourceID) (*vaultView, error) {
	vt, err := p.opts.Vaults.GetVault(q.ctx(), id)
	if err != nil {
		return nil, err
	}
	v := &vaultView{Vault: vt, CanList: q.canData(p, dataSecretsList, vt.Scope())}
	// The vault's network rules hold here as on its data plane: a
	// caller they refuse there sees no secret names here either.
	if v.CanList && vt.Network != nil {
		addr := netacl.RemoteAddr(q.r.RemoteAddr)
		if vt.Network.Check(addr, p.opts.PrivateNetworks.Contains(addr)) != netacl.Allowed {
			v.CanList, v.NetworkDenied = false, true
		}
	}
	if v.CanList {
		const pageSize = 200
		list, next, err := p.opts.Vaults.ListSecrets(q.ctx(), vt, "", pageSize)
		if err != nil {
			return nil, err
		}
		v.More = next != ""
		for _, s := range list {
			v.Secrets = append(v.Secrets, secretRow{Name: s.Name, ContentType: s.ContentType, Enabled: s.Enabled, Updated: s.Updated, Expires: s.Expires})
		}
		slices.SortFunc(v.Secrets, func(a, b secretRow) int { return strings.Compare(a.Name, b.Name) })
	}
	base := resourceLink("vaults", vt.Subscription, vt.ResourceGroup, vt.Name)
	v.Roles = p.rolesView(q, base, id)
	v.Tags = p.tagsView(q, base, id, vt.Tags)
	if q.canSeeActivity(p, id) {
		v.Activity = base + "/activity"
	}
	return v, nil
}

// --- audit

func (p *Portal) auditUser(q *req, action string, scope *gatehouse.ResourceID, result audit.Result, status int, code string, details map[string]string) {
	pr := gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: q.user.ObjectID, TenantID: q.user.TenantID}
	p.audit(q.ctx(), q.r, pr, action, scope.String(), result, status, code, details)
}

// auditOutcome records how a user's action at scope ended: succeeded, or
// failed with err's status and code.
func (p *Portal) auditOutcome(q *req, action string, scope *gatehouse.ResourceID, err error, details map[string]string) {
	if err == nil {
		p.auditUser(q, action, scope, audit.Succeeded, http.StatusOK, "", details)
		return
	}
	code := ""
	if ge, ok := gatehouse.AsError(err); ok {
		code = ge.Code
	}
	p.auditUser(q, action, scope, audit.Failed, gatehouse.ErrorStatus(err), code, details)
}

// audit appends an entry. Failures are logged: what was done is done.
func (p *Portal) audit(ctx context.Context, r *http.Request, pr gatehouse.Principal, action, scope string, result audit.Result, status int, code string, details map[string]string) {
	e := audit.Entry{
		RequestID: server.RequestID(ctx),
		Principal: audit.Principal{ObjectID: pr.ObjectID, Type: string(pr.Type), TenantID: pr.TenantID},
		Action:    action, Scope: scope, Result: result, Status: status, Code: code,
		Details: details, Surface: string(server.SurfacePortal),
	}
	if _, err := p.opts.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
		p.opts.Logger.Error("portal: audit append failed", "request_id", e.RequestID, "action", action, "err", err)
	}
}
