package crosstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
)

const openAIVersion = "2024-10-21"

// vaultUpstream is an OpenAI-compatible server that accepts only the
// credential the test currently expects, and records which one it got.
type vaultUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	want map[string]bool // accepted bearer credentials
	got  []string
}

func newVaultUpstream(t *testing.T, accept ...string) *vaultUpstream {
	u := &vaultUpstream{want: map[string]bool{}}
	for _, a := range accept {
		u.want[a] = true
	}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *vaultUpstream) accept(creds ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range creds {
		u.want[c] = true
	}
}

func (u *vaultUpstream) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		return ""
	}
	return u.got[len(u.got)-1]
}

func (u *vaultUpstream) calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

func (u *vaultUpstream) serve(w http.ResponseWriter, r *http.Request) {
	cred, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	u.mu.Lock()
	u.got = append(u.got, cred)
	ok := u.want[cred]
	u.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"bad upstream key","type":"auth"}}`)
		return
	}
	out, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": "ok"}}}})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// chat sends one chat completion with openai-go (no retries) and returns
// the error, if any.
func (e *env) chat(t *testing.T, a *account, deployment string) error {
	t.Helper()
	c := openai.NewClient(azure.WithEndpoint(a.endpoint, openAIVersion), azure.WithAPIKey(a.key1),
		option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
	resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: deployment, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err == nil && (len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "ok") {
		t.Fatalf("unexpected reply %+v", resp)
	}
	return err
}

// wantUnavailable checks that err is the gateway's Azure-shaped error for
// a credential it cannot read: 500 UpstreamCredentialUnavailable, nothing
// about the vault in it.
func wantUnavailable(t *testing.T, err error, vault string) {
	t.Helper()
	apiErr, ok := errors.AsType[*openai.Error](err)
	if !ok {
		t.Fatalf("want an API error, got %v", err)
	}
	body := apiErr.RawJSON()
	if apiErr.StatusCode != http.StatusInternalServerError || apiErr.Code != "UpstreamCredentialUnavailable" ||
		apiErr.Response.Header.Get("x-ms-error-code") != "UpstreamCredentialUnavailable" {
		t.Fatalf("status %d code %q: %s", apiErr.StatusCode, apiErr.Code, body)
	}
	if strings.Contains(body, vault) || strings.Contains(strings.ToLower(body), "rbac") {
		t.Fatalf("the error tells the client about the vault: %s", body)
	}
}

// testUpstreamKeyVaultSecret: a deployment's upstream credential is a Key
// Vault secret the account's system-assigned identity reads. openai-go
// calls through the gateway; the upstream checks it gets the secret. A
// missing role, a rotation, a pinned version and a deleted secret each
// take effect on the next request.
func testUpstreamKeyVaultSecret(t *testing.T, e *env) {
	ctx := t.Context()
	const v1, v2 = "sk-vault-upstream-one-5f1c", "sk-vault-upstream-two-9a3e"
	e.createVault(t, "upstream-kv")
	kv := e.secrets(t, "upstream-kv")
	s1, err := kv.SetSecret(ctx, "llm-key", azsecrets.SetSecretParameters{Value: ptr(v1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := newVaultUpstream(t, v1)
	a := e.createAccount(t, e.group, "kv-chat", "OpenAI", true)
	if a.identity == "" {
		t.Fatal("the account has no system-assigned identity")
	}
	ref := e.vaultURL("upstream-kv") + "secrets/llm-key"
	r := e.deploy(t, a, "chat", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": ref})
	if r.status != http.StatusCreated {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	props := r.json(t)["properties"].(map[string]any)["upstream"].(map[string]any)
	if props["keyVaultSecret"] != ref || props["hasKey"] != false {
		t.Fatalf("deployment upstream %v", props)
	}

	// Without a role the account's identity cannot read the secret.
	wantUnavailable(t, e.chat(t, a, "chat"), "upstream-kv")
	if !strings.Contains(e.Logs.String(), "cannot read its deployment's upstream credential") {
		t.Error("the refusal is not logged")
	}
	if up.calls() != 0 {
		t.Fatal("the upstream was called without a credential")
	}

	// Key Vault Secrets User on the secret: the next request forwards v1.
	e.assign(t, e.vaultPath("upstream-kv")+"/secrets/llm-key", authz.RoleKeyVaultSecretsUser, a.identity, "ServicePrincipal")
	if err := e.chat(t, a, "chat"); err != nil {
		t.Fatalf("with the role: %v", err)
	}
	if up.last() != v1 {
		t.Fatalf("the upstream got %q, want the vault's secret", up.last())
	}

	// Rotation: a new version is used on the next request, no restart.
	up.accept(v2)
	if _, err := kv.SetSecret(ctx, "llm-key", azsecrets.SetSecretParameters{Value: ptr(v2)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.chat(t, a, "chat"); err != nil || up.last() != v2 {
		t.Fatalf("after rotation: %v, upstream got the new value: %v", err, up.last() == v2)
	}

	// A deployment pinned to the first version keeps it.
	if r := e.deploy(t, a, "pinned", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": ref + "/" + s1.ID.Version()}); r.status != http.StatusCreated {
		t.Fatalf("deploy pinned: %d %s", r.status, r.body)
	}
	if err := e.chat(t, a, "pinned"); err != nil || up.last() != v1 {
		t.Fatalf("pinned version: %v, got v1: %v", err, up.last() == v1)
	}

	// Invalid references and both kinds of credential are refused at PUT.
	for _, tt := range []struct {
		name     string
		upstream map[string]any
	}{
		{"key-and-reference", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": ref, "key": "k"}},
		{"foreign-host", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": "https://upstream-kv.vault.azure.net/secrets/llm-key"}},
		{"not-a-secret", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": e.vaultURL("upstream-kv") + "keys/llm-key"}},
		{"http", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": strings.Replace(ref, "https:", "http:", 1)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.deploy(t, a, "bad", tt.upstream)
			if r.status != http.StatusBadRequest || r.code() != "InvalidUpstream" {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}

	// The secret deleted: the deployment fails cleanly again.
	if _, err := kv.DeleteSecret(ctx, "llm-key", nil); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, e.chat(t, a, "chat"), "upstream-kv")

	// Revoking the role also takes effect at once (on the pinned version,
	// which a soft delete leaves unreadable too: use a fresh secret).
	if _, err := kv.SetSecret(ctx, "other-key", azsecrets.SetSecretParameters{Value: ptr(v2)}, nil); err != nil {
		t.Fatal(err)
	}
	roleID := e.assign(t, e.vaultPath("upstream-kv")+"/secrets/other-key", authz.RoleKeyVaultSecretsUser, a.identity, "ServicePrincipal")
	if r := e.deploy(t, a, "other", map[string]any{"endpoint": up.srv.URL, "keyVaultSecret": e.vaultURL("upstream-kv") + "secrets/other-key"}); r.status != http.StatusCreated {
		t.Fatalf("deploy other: %d %s", r.status, r.body)
	}
	if err := e.chat(t, a, "other"); err != nil {
		t.Fatalf("other: %v", err)
	}
	if r := e.arm(t, "DELETE", roleID+"?api-version=2022-04-01", nil, ""); r.status != http.StatusOK {
		t.Fatalf("delete role assignment: %d %s", r.status, r.body)
	}
	wantUnavailable(t, e.chat(t, a, "other"), "upstream-kv")

	// The role through a group: leaving the group takes effect at once too
	// (a group change must end the cached resolution, like a role change).
	g, err := e.Directory.CreateGroup(ctx, directory.GroupSpec{DisplayName: "kv-readers", MailNickname: "kv-readers"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Directory.AddGroupMember(ctx, g.ObjectID, a.identity); err != nil {
		t.Fatal(err)
	}
	e.assign(t, e.vaultPath("upstream-kv")+"/secrets/other-key", authz.RoleKeyVaultSecretsUser, g.ObjectID, "Group")
	if err := e.chat(t, a, "other"); err != nil {
		t.Fatalf("through the group: %v", err)
	}
	if _, err := e.Directory.RemoveGroupMember(ctx, g.ObjectID, a.identity); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, e.chat(t, a, "other"), "upstream-kv")

	// The account's system-assigned identity is the account's own: a
	// Managed Identity Operator of the group (which assigns user-assigned
	// identities) gets no header for it; the right to change the account
	// does.
	op, err := e.Directory.CreateApplication(ctx, directory.ApplicationSpec{DisplayName: "kv-mi-operator", ServicePrincipal: true})
	if err != nil {
		t.Fatal(err)
	}
	_, opSecret, err := e.Directory.AddSecret(ctx, op.AppID, directory.SecretSpec{})
	if err != nil {
		t.Fatal(err)
	}
	opToken := e.Token(t, e.SecretCredential(t, op.AppID, opSecret), "https://management.azure.com/.default")
	header := func() *response {
		return e.do(t, "POST", e.URL+"/gatehouse/v1/identityHeaders", map[string]any{"identity": a.identity}, opToken)
	}
	e.assign(t, e.groupPath(e.group), authz.RoleManagedIdentityOperator, op.ObjectID, "ServicePrincipal")
	if r := header(); r.status != http.StatusForbidden || r.code() != "AuthorizationFailed" {
		t.Fatalf("a Managed Identity Operator acted as the account's own identity: %d %s", r.status, r.body)
	}
	e.assign(t, a.id, authz.RoleCognitiveServicesContributor, op.ObjectID, "ServicePrincipal")
	if r := header(); r.status != http.StatusCreated {
		t.Fatalf("the account's contributor: %d %s", r.status, r.body)
	} else {
		e.AssertNotLogged(t, r.json(t)["header"].(string))
	}

	e.AssertNotLogged(t, v1, v2, a.key1, opSecret)
}

// testUpstreamKeyVaultSecretCLI: `deployment create
// --upstream-key-vault-secret` sets the reference.
func testUpstreamKeyVaultSecretCLI(t *testing.T, e *env) {
	c := e.loginBootstrap(t)
	a := e.createAccount(t, e.group, "kv-cli", "OpenAI", true)
	ref := e.vaultURL("cli-kv") + "secrets/llm-key"
	// Naming a secret needs the right to read it (the gateway would send
	// it to the endpoint the caller chose): refused before the vault and
	// the role exist.
	code, _, errOut := c.run(t, "cognitiveservices", "account", "deployment", "create", "-g", e.group, "-n", a.name,
		"--deployment-name", "chat", "--model-name", "gpt-4o", "--upstream-endpoint", "http://127.0.0.1:9",
		"--upstream-key-vault-secret", ref)
	if code == 0 || !strings.Contains(errOut, "LinkedAuthorizationFailed") {
		t.Fatalf("a secret the caller may not read: exit %d %s", code, errOut)
	}
	e.createVault(t, "cli-kv")
	out := decode[map[string]any](t, c.mustRun(t, "cognitiveservices", "account", "deployment", "create", "-g", e.group, "-n", a.name,
		"--deployment-name", "chat", "--model-name", "gpt-4o", "--upstream-endpoint", "http://127.0.0.1:9",
		"--upstream-key-vault-secret", ref))
	up := out["properties"].(map[string]any)["upstream"].(map[string]any)
	if up["keyVaultSecret"] != ref || up["hasKey"] != false {
		t.Fatalf("created %v", out)
	}
	code, _, errOut = c.run(t, "cognitiveservices", "account", "deployment", "create", "-g", e.group, "-n", a.name,
		"--deployment-name", "chat", "--model-name", "gpt-4o", "--upstream-endpoint", "http://127.0.0.1:9",
		"--upstream-key-vault-secret", "https://elsewhere.example/secrets/x")
	if code == 0 || !strings.Contains(errOut, "InvalidUpstream") {
		t.Fatalf("foreign reference: exit %d %s", code, errOut)
	}
}
