package graphapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/server"
)

// revokeSignInSessions is POST /v1.0/users/{id}/revokeSignInSessions: the
// person's refresh tokens (their CLI sessions) stop working; access tokens
// already issued run out on their own, as in Entra. Answers Graph's
// {"value": true}.
func (g *API) revokeSignInSessions(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	u, err := g.dir.User(r.PathValue("id"))
	if err != nil {
		return notFound(r.PathValue("id"))
	}
	if err := g.mayManageUser(c, u); err != nil {
		return err
	}
	if _, err := g.dir.RevokeSignInSessions(r.Context(), u.ObjectID); err != nil {
		return err
	}
	return revoked(w)
}

// revokeOwnSignInSessions is POST /v1.0/me/revokeSignInSessions: a person
// ends their own sessions (any signed-in person may; an application has no
// sessions to end).
func (g *API) revokeOwnSignInSessions(w http.ResponseWriter, r *http.Request, c *authority.Claims) error {
	if c.Principal.Type != gatehouse.PrincipalUser {
		return gatehouse.BadRequestf(codeBadRequest, "/me is only valid with a delegated authentication flow.")
	}
	if _, err := g.dir.RevokeSignInSessions(r.Context(), c.Principal.ObjectID); err != nil {
		return err
	}
	return revoked(w)
}

func revoked(w http.ResponseWriter) error {
	server.WriteJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
		"value":          true,
	})
	return nil
}
