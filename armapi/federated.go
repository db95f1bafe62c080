package armapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Federated identity credentials of user-assigned identities
// (Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials,
// armmsi's FederatedIdentityCredentialsClient, az identity
// federated-credential): workload identity federation — a Kubernetes
// service account or a CI job presents its issuer's token as a client
// assertion with the identity's client id (WorkloadIdentityCredential) and
// gets the identity's tokens.
//
//	GET    {identity}/federatedIdentityCredentials          list (at most 20)
//	GET    {identity}/federatedIdentityCredentials/{fic}    one; 404 NotFound
//	PUT    {identity}/federatedIdentityCredentials/{fic}    create (201) or replace (200): properties.issuer
//	                                                        (https), subject, audiences (exactly one; default
//	                                                        api://AzureADTokenExchange); Gatehouse extension:
//	                                                        properties.jwks, the issuer's key set, for issuers
//	                                                        the server cannot reach
//	DELETE {identity}/federatedIdentityCredentials/{fic}    200, or 204 when there was none
var federatedRoutes = []route{
	{method: "GET", pattern: identity + "/federatedIdentityCredentials", family: famMSI, handle: listFederated},
	{method: "GET", pattern: identity + "/federatedIdentityCredentials/{fic}", family: famMSI, handle: getFederated},
	{method: "PUT", pattern: identity + "/federatedIdentityCredentials/{fic}", family: famMSI, audit: true, handle: putFederated},
	{method: "DELETE", pattern: identity + "/federatedIdentityCredentials/{fic}", family: famMSI, audit: true, handle: deleteFederated},
}

// Actions of federated identity credentials.
const (
	actFederatedRead   = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read"
	actFederatedWrite  = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
	actFederatedDelete = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete"
	federatedType      = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
)

// FederatedCredential is a federated identity credential as the API shows
// it.
type FederatedCredential struct {
	Name, Issuer, Subject string
	Audiences             []string
	// JWKS is the Gatehouse extension: the issuer's keys (never shown).
	JWKS json.RawMessage
}

type federatedJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Issuer    string   `json:"issuer"`
		Subject   string   `json:"subject"`
		Audiences []string `json:"audiences"`
	} `json:"properties"`
}

func federatedView(identityID *gatehouse.ResourceID, f FederatedCredential) federatedJSON {
	v := federatedJSON{ID: identityID.String() + "/federatedIdentityCredentials/" + f.Name, Name: f.Name, Type: federatedType}
	v.Properties.Issuer, v.Properties.Subject, v.Properties.Audiences = f.Issuer, f.Subject, f.Audiences
	return v
}

// federatedCall is the prologue of the routes: the identity must exist.
func (c *call) federatedCall(action string) (Identities, *gatehouse.ResourceID, error) {
	ids, id, err := c.identityCall(action)
	if err != nil {
		return nil, nil, err
	}
	if _, ok, err := ids.GetIdentity(c.ctx(), id.String()); err != nil || !ok {
		if err == nil {
			err = errResourceNotFound(id)
		}
		return nil, nil, err
	}
	return ids, id, nil
}

func errFederatedNotFound(id *gatehouse.ResourceID, name string) error {
	return gatehouse.NotFoundf("NotFound", "The federated identity credential '%s' of '%s' was not found.", clip(name), id.Name())
}

// federatedList is the identity's credentials, for a caller who may read
// them.
func (c *call) federatedList() (*gatehouse.ResourceID, []FederatedCredential, error) {
	ids, id, err := c.federatedCall(actFederatedRead)
	if err != nil {
		return nil, nil, err
	}
	all, err := ids.ListFederated(c.ctx(), id.String())
	return id, all, err
}

func listFederated(c *call) error {
	id, all, err := c.federatedList()
	if err != nil {
		return err
	}
	// Pages (azure-mgmt-msi's and armmsi's top, az rest's $top): by name,
	// $skiptoken the last name of the page before.
	page, next, err := pageOf(c, all, func(f FederatedCredential) string { return f.Name })
	if err != nil {
		return err
	}
	out := list[federatedJSON]{Value: []federatedJSON{}, NextLink: next}
	for _, f := range page {
		out.Value = append(out.Value, federatedView(id, f))
	}
	return c.reply(http.StatusOK, out)
}

func getFederated(c *call) error {
	id, all, err := c.federatedList()
	if err != nil {
		return err
	}
	for _, f := range all {
		if strings.EqualFold(f.Name, c.param("fic")) {
			return c.reply(http.StatusOK, federatedView(id, f))
		}
	}
	return errFederatedNotFound(id, c.param("fic"))
}

func putFederated(c *call) error {
	ids, id, err := c.federatedCall(actFederatedWrite)
	if err != nil {
		return err
	}
	var body struct {
		Properties *struct {
			Issuer    string          `json:"issuer"`
			Subject   string          `json:"subject"`
			Audiences []string        `json:"audiences"`
			JWKS      json.RawMessage `json:"jwks"`
		} `json:"properties"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if body.Properties == nil {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "The request body must have properties with issuer, subject and audiences.").WithTarget("properties")
	}
	p := body.Properties
	f, created, err := ids.PutFederated(c.ctx(), id.String(), FederatedCredential{Name: c.param("fic"), Issuer: p.Issuer,
		Subject: p.Subject, Audiences: p.Audiences, JWKS: p.JWKS})
	if err != nil {
		return err
	}
	c.detail("name", f.Name)
	c.detail("issuer", f.Issuer)
	c.detail("subject", f.Subject)
	return c.put(created, federatedView(id, f))
}

func deleteFederated(c *call) error {
	ids, id, err := c.federatedCall(actFederatedDelete)
	if err != nil {
		return err
	}
	existed, err := ids.DeleteFederated(c.ctx(), id.String(), c.param("fic"))
	if err != nil {
		return err
	}
	return c.deleted(existed)
}
