package graphapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// Security groups (directory/group.go) as Graph serves them — what az ad
// group create|list|show|delete and az ad group member add|list|remove|check
// send. A role assignment to a group grants its role to the members.

type groupView struct {
	Context         string   `json:"@odata.context,omitempty"`
	ID              string   `json:"id"`
	DisplayName     string   `json:"displayName"`
	MailNickname    string   `json:"mailNickname"`
	Description     *string  `json:"description"`
	SecurityEnabled bool     `json:"securityEnabled"`
	MailEnabled     bool     `json:"mailEnabled"`
	GroupTypes      []string `json:"groupTypes"`
	CreatedDateTime *string  `json:"createdDateTime"`
}

func toGroupView(g *directory.Group) groupView {
	return groupView{ID: g.ObjectID, DisplayName: g.DisplayName, MailNickname: g.MailNickname, Description: strp(g.Description),
		SecurityEnabled: true, GroupTypes: []string{}, CreatedDateTime: graphTime(g.Created)}
}

func (g *API) group(id string) (*directory.Group, error) {
	grp, err := g.dir.Group(id)
	if err != nil {
		return nil, notFound(id)
	}
	return grp, nil
}

func (g *API) listGroups(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	f, err := filter(r, "displayName", "mailNickname", "id")
	if err != nil {
		return err
	}
	out := []groupView{}
	for _, grp := range g.dir.Groups(c.Principal.TenantID) {
		if f.keeps("displayName", grp.DisplayName) && f.keeps("mailNickname", grp.MailNickname) && f.keeps("id", grp.ObjectID) {
			out = append(out, toGroupView(grp))
		}
	}
	return list(w, r, "groups", out)
}

type groupBody struct {
	DisplayName     *string   `json:"displayName"`
	MailNickname    *string   `json:"mailNickname"`
	Description     *string   `json:"description"`
	SecurityEnabled *bool     `json:"securityEnabled"`
	MailEnabled     *bool     `json:"mailEnabled"`
	GroupTypes      *[]string `json:"groupTypes"`
}

func (g *API) createGroup(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body groupBody
	if err := decode(r, &body); err != nil {
		return err
	}
	switch {
	case body.DisplayName == nil || body.MailNickname == nil:
		return badRequest("The properties 'displayName' and 'mailNickname' are required.")
	case body.SecurityEnabled != nil && !*body.SecurityEnabled, body.MailEnabled != nil && *body.MailEnabled,
		body.GroupTypes != nil && len(*body.GroupTypes) > 0:
		return gatehouse400("securityEnabled", "Only security groups (securityEnabled true, mailEnabled false, no groupTypes) are supported.")
	}
	grp, err := g.dir.CreateGroup(r.Context(), directory.GroupSpec{TenantID: c.Principal.TenantID, DisplayName: *body.DisplayName,
		MailNickname: *body.MailNickname, Description: deref(body.Description)})
	if err != nil {
		return err
	}
	v := toGroupView(grp)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#groups/$entity"
	w.Header().Set("Location", "https://graph.microsoft.com/v1.0/groups/"+grp.ObjectID)
	server.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (g *API) getGroup(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	v := toGroupView(grp)
	v.Context = "https://graph.microsoft.com/v1.0/$metadata#groups/$entity"
	return entity(w, r, "groups", v)
}

func (g *API) patchGroup(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body groupBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.MailNickname != nil || body.SecurityEnabled != nil || body.MailEnabled != nil || body.GroupTypes != nil {
		return badRequest("Only displayName and description can be changed.")
	}
	if _, err := g.dir.UpdateGroup(r.Context(), grp.ObjectID, directory.GroupUpdate{DisplayName: body.DisplayName, Description: body.Description}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) deleteGroup(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := g.dir.DeleteGroup(r.Context(), grp.ObjectID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// memberView is a directoryObject as Graph lists a group's members.
type memberView struct {
	Type              string `json:"@odata.type"`
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	AppID             string `json:"appId,omitempty"`
}

func (g *API) member(oid string) (memberView, bool) {
	if u, err := g.dir.User(oid); err == nil {
		return memberView{Type: "#microsoft.graph.user", ID: u.ObjectID, DisplayName: u.DisplayName, UserPrincipalName: u.UserName}, true
	}
	if grp, err := g.dir.Group(oid); err == nil {
		return memberView{Type: "#microsoft.graph.group", ID: grp.ObjectID, DisplayName: grp.DisplayName}, true
	}
	if a, mi, err := g.servicePrincipal(oid); err == nil {
		if mi != nil {
			return memberView{Type: "#microsoft.graph.servicePrincipal", ID: mi.PrincipalID, DisplayName: mi.Name, AppID: mi.ClientID}, true
		}
		return memberView{Type: "#microsoft.graph.servicePrincipal", ID: a.ObjectID, DisplayName: a.DisplayName, AppID: a.AppID}, true
	}
	return memberView{}, false
}

func (g *API) listGroupMembers(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []memberView{}
	for _, m := range grp.Members {
		if v, ok := g.member(m); ok { // a deleted principal's id is never reused
			out = append(out, v)
		}
	}
	return list(w, r, "directoryObjects", out)
}

// addGroupMember is POST /groups/{id}/members/$ref {"@odata.id": "…/directoryObjects/{oid}"}.
func (g *API) addGroupMember(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		ODataID string `json:"@odata.id"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	oid, ok := refObjectID(body.ODataID)
	if !ok {
		return badRequest("'@odata.id' must name a directory object: https://graph.microsoft.com/v1.0/directoryObjects/{id}.")
	}
	if _, err := g.dir.AddGroupMember(r.Context(), grp.ObjectID, oid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *API) removeGroupMember(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	grp, err := g.group(r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := g.dir.RemoveGroupMember(r.Context(), grp.ObjectID, r.PathValue("mid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkMemberGroups is POST /directoryObjects/{id}/checkMemberGroups
// {"groupIds":[…]}: which of them the object is a member of.
func (g *API) checkMemberGroups(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if len(body.GroupIDs) == 0 || len(body.GroupIDs) > 20 {
		return badRequest("groupIds must list 1 to 20 group ids.")
	}
	oid, err := g.directoryObjectID(r.PathValue("id"))
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, id := range g.dir.GroupsOf(oid) {
		in[id] = true
	}
	out := []string{}
	for _, id := range body.GroupIDs {
		if in[strings.ToLower(id)] {
			out = append(out, id)
		}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": out})
	return nil
}

// getMemberGroups is POST …/{id}/getMemberGroups {"securityEnabledOnly": …}:
// every group the object is in, directly or through member groups.
func (g *API) getMemberGroups(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		SecurityEnabledOnly *bool `json:"securityEnabledOnly"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	oid, err := g.directoryObjectID(r.PathValue("id"))
	if err != nil {
		return err
	}
	out := append([]string{}, g.dir.GroupsOf(oid)...)
	server.WriteJSON(w, http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": out})
	return nil
}

// directoryObjectID resolves a person, service principal or managed
// identity (any id Graph takes for them) to its object id.
func (g *API) directoryObjectID(id string) (string, error) {
	if grp, err := g.dir.Group(id); err == nil {
		return grp.ObjectID, nil
	}
	return g.principalObjectID(id)
}

// getByIds is POST /directoryObjects/getByIds {"ids":[…],"types":[…]}:
// the directory objects (people, service principals, groups) with those
// ids, as az resolves names with it. Unknown ids are left out.
func (g *API) getByIds(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	var body struct {
		IDs   []string `json:"ids"`
		Types []string `json:"types"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if len(body.IDs) > 1000 {
		return badRequest("At most 1000 ids may be given.")
	}
	want := func(t string) bool {
		if len(body.Types) == 0 {
			return true
		}
		for _, x := range body.Types {
			if strings.EqualFold(x, t) {
				return true
			}
		}
		return false
	}
	out := []memberView{}
	for _, id := range body.IDs {
		if grp, err := g.dir.Group(id); err == nil {
			if want("group") {
				out = append(out, memberView{Type: "#microsoft.graph.group", ID: grp.ObjectID, DisplayName: grp.DisplayName})
			}
			continue
		}
		if v, ok := g.member(id); ok && want(strings.TrimPrefix(v.Type, "#microsoft.graph.")) {
			out = append(out, v)
		}
	}
	return list(w, r, "directoryObjects", out)
}

// getMemberObjects is POST …/{id}/getMemberObjects {"securityEnabledOnly":
// …} and /me/getMemberObjects: the groups the object is in (groups are
// security groups; transitive). A token's group overage claim points
// here, so a principal may always ask about itself — a web API does, with
// the person's token for Graph — and about others with a directory reader
// role.
func (g *API) getMemberObjects(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	id := r.PathValue("id")
	if id == "" {
		if c.Principal.Type != gatehouse.PrincipalUser {
			return gatehouse.BadRequestf(codeBadRequest, "/me is only valid with a delegated authentication flow.")
		}
		id = c.Principal.ObjectID
	}
	if !strings.EqualFold(id, c.Principal.ObjectID) && !g.dir.HasRole(c.Principal.ObjectID, rolesFor[readAccess]...) {
		return gatehouse.Errorf(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	var body struct {
		SecurityEnabledOnly *bool `json:"securityEnabledOnly"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	oid, err := g.directoryObjectID(id)
	if err != nil {
		return err
	}
	out := g.dir.GroupsOf(oid)
	if out == nil {
		out = []string{}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": out})
	return nil
}
