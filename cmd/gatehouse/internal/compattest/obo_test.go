package compattest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/vault"
)

// onBehalfOf is the on-behalf-of scenario of one client family: a person
// who may read one vault and not another, a web API (secret, certificate,
// identifier URI) with no role on either, and another application.
type onBehalfOf struct {
	person       *directory.User
	password     string
	api          principal // with a secret and a certificate (certFile)
	certFile     string
	apiURI       string
	other        principal
	open, closed string   // vault URLs
	values       []string // of oboSecret in open and closed
	tokens       []string // the scripts returned
}

// oboSecret is the secret both vaults hold, each with its own value.
const oboSecret = "db"

// newOnBehalfOf creates the scenario's vaults, person and applications;
// lang ("js", "py") keeps names apart. When the test ends, none of the
// password, the applications' secrets, the secrets' values and the tokens
// the scripts got may be in the node's logs.
func (e *env) newOnBehalfOf(t *testing.T, lang string) *onBehalfOf {
	t.Helper()
	ctx := t.Context()
	o := &onBehalfOf{password: lang + " on-behalf-of password"}
	t.Cleanup(func() {
		e.AssertNotLogged(t, append(append([]string{o.password, o.api.secret, o.other.secret}, o.values...), o.tokens...)...)
	})
	var openID string
	openID, o.open = e.createVault(t, lang+"-obo")
	_, o.closed = e.createVault(t, lang+"-obo-closed")
	for _, name := range []string{lang + "-obo", lang + "-obo-closed"} {
		v, ok := e.Vaults.VaultByName(name)
		if !ok {
			t.Fatalf("no vault %s", name)
		}
		value := "obo-value-" + name
		if _, err := e.Vaults.SetSecret(ctx, v, oboSecret, vault.SetInput{Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
		o.values = append(o.values, value)
	}
	var err error
	o.person, err = e.Directory.CreateUser(ctx, directory.UserSpec{UserName: lang + "obo@example.test", Password: o.password})
	must(t, err)
	e.assign(t, openID, secretsUser, o.person.ObjectID, armauthorization.PrincipalTypeUser)

	// The web API: an application with a secret, a certificate and an
	// Application ID URI, and no role anywhere.
	o.api, o.certFile = e.createCertPrincipal(t, "compat-"+lang+"-orders-api")
	_, o.api.secret, err = e.Directory.AddSecret(ctx, o.api.clientID, directory.SecretSpec{DisplayName: "compat"})
	must(t, err)
	o.apiURI = "api://orders-" + lang + "-" + gatehouse.NewGUID()[:8]
	_, err = e.Directory.SetIdentifierURIs(ctx, o.api.clientID, []string{o.apiURI}, e.Authority.ReservedResource)
	must(t, err)
	o.other = e.createPrincipal(t, "compat-"+lang+"-other-api")
	return o
}

// vars is the environment of on-behalf-of.mjs and on_behalf_of.py: the
// person signs in with the CLI's public client and the tenant GUID; the
// API authenticates with tenant adfs, as the vault's challenge names it,
// and with the tenant GUID (TENANT_GUID) and any tenant allowed.
func (o *onBehalfOf) vars(e *env) map[string]string {
	tenant := e.Directory.DefaultTenant()
	return merge(e.identityEnv(o.api), map[string]string{
		"PERSON_TENANT_ID":              tenant,
		"PERSON_CLIENT_ID":              authority.CLIClientID,
		"PERSON_USERNAME":               o.person.UserName,
		"PERSON_PASSWORD":               o.password,
		"API_SCOPE":                     o.apiURI + "/.default",
		"AZURE_CLIENT_CERTIFICATE_PATH": o.certFile,
		"TENANT_GUID":                   tenant,
		"KEYVAULT_URL":                  o.open,
		"CLOSED_KEYVAULT_URL":           o.closed,
		"SECRET_NAME":                   oboSecret,
		"VAULT_SCOPE":                   e.Authority.VaultResource() + "/.default",
		"OTHER_CLIENT_ID":               o.other.clientID,
		"OTHER_CLIENT_SECRET":           o.other.secret,
	})
}

// check asserts on the script's steps: the person's token is for the API;
// with each form of the API's credential the API reads what the person
// may read, gets 403 where the person has no role, and holds the person's
// vault token issued to the API; another application presenting the
// person's token is refused with AADSTS500131.
func (o *onBehalfOf) check(t *testing.T, e *env, s steps, forms map[string]string) {
	t.Helper()
	var person struct{ Token string }
	s.value(t, "person-token", &person)
	c := e.verify(t, person.Token, o.apiURI)
	if c.Principal.ObjectID != o.person.ObjectID || c.Principal.Type != gatehouse.PrincipalUser {
		t.Fatalf("the person's token for the API is %+v", c.Principal)
	}
	if appID, acr := tokenApp(t, person.Token); appID != authority.CLIClientID || acr != "0" {
		t.Errorf("the person's token names app %s (appidacr %s), want the public client %s", appID, acr, authority.CLIClientID)
	}
	o.tokens = append(o.tokens, person.Token)
	for form, acr := range forms {
		var read struct{ Value, Name string }
		s.value(t, form+"-read", &read)
		if read.Value != o.values[0] {
			t.Errorf("%s: the API read %q as the person, want %q", form, read.Value, o.values[0])
		}
		if err := s.err(t, form+"-closed"); err.StatusCode != 403 || err.Code != "Forbidden" {
			t.Errorf("%s: the vault the person may not read: %s", form, err)
		}
		var tok struct{ Token string }
		s.value(t, form+"-token", &tok)
		c := e.verify(t, tok.Token, e.Authority.VaultAudiences()...)
		if c.Principal.ObjectID != o.person.ObjectID || c.Principal.Type != gatehouse.PrincipalUser {
			t.Errorf("%s: the API's vault token is not the person's: %+v", form, c.Principal)
		}
		if appID, got := tokenApp(t, tok.Token); appID != o.api.clientID || got != acr {
			t.Errorf("%s: the vault token names app %s (appidacr %s), want the API %s (%s)", form, appID, got, o.api.clientID, acr)
		}
		o.tokens = append(o.tokens, tok.Token)
	}
	if err := s.err(t, "other-app"); !strings.Contains(err.Message, "AADSTS500131") {
		t.Errorf("another application presenting the person's token: %s", err)
	}
}

// tokenApp returns the appid and appidacr claims of a token the node
// issued (Claims has them only for applications' tokens).
func tokenApp(t *testing.T, token string) (appID, acr string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.10s…", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c struct{ AppID, AppIDACR string }
	must(t, json.Unmarshal(payload, &c))
	return c.AppID, c.AppIDACR
}

// testOnBehalfOf: a web API reads Key Vault as the person calling it with
// @azure/identity's OnBehalfOfCredential (secret with tenant adfs;
// certificate with the tenant GUID and any tenant allowed) and
// SecretClient; the person signs in to the API with
// UsernamePasswordCredential. The API's own identity reads nothing: the
// person's role decides.
func testOnBehalfOf(t *testing.T, e *env) {
	o := e.newOnBehalfOf(t, "js")
	s := e.node(t, o.vars(e), "on-behalf-of.mjs")
	o.check(t, e, s, map[string]string{"secret": "1", "certificate": "2"})

	own := merge(e.identityEnv(o.api), map[string]string{"KEYVAULT_URL": o.open, "SECRET_NAME": oboSecret})
	if err := e.node(t, own, "keyvault.mjs", "read").err(t, "get"); err.StatusCode != 403 {
		t.Errorf("the API reading as itself: %s", err)
	}
}
