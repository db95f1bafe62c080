package compattest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/vault"
)

// pyEnv is where the Python scripts are and the interpreter that has the
// Azure SDK for Python.
type pyEnv struct {
	dir, python string
}

// pythonModules are the official Python clients the suite drives. Debian's
// python3-azure (a dependency of azure-cli, which CI installs) has them:
// azure-identity 1.13, azure-keyvault-secrets 4.7, azure-ai-textanalytics
// 5.3, azure-mgmt-cognitiveservices, -authorization and -msi.
const pythonModules = "azure.identity, azure.keyvault.secrets, azure.ai.textanalytics, " +
	"azure.mgmt.cognitiveservices, azure.mgmt.authorization, azure.mgmt.msi"

// requirePython finds an interpreter that imports pythonModules; without
// one the suite skips, or fails under CI=true.
func requirePython(t *testing.T) pyEnv {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "compat", "python"))
	if err != nil {
		t.Fatal(err)
	}
	// Debian's interpreter first: a python3 earlier in PATH (pyenv) does
	// not see Debian's packages.
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import "+pythonModules).Run() == nil {
			return pyEnv{dir: dir, python: path}
		}
	}
	msg := "no python3 with the Azure SDK for Python (apt-get install python3-azure)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: the Python compatibility suite must run)", msg)
	}
	t.Skip(msg)
	return pyEnv{}
}

// python runs `python3 script args...` in compat/python with exactly the
// environment vars plus PATH, HOME and the node's CA in REQUESTS_CA_BUNDLE
// (what azure-core's requests transport and MSAL read).
func (e *env) python(t *testing.T, py pyEnv, prefix func(argv []string) (string, string, error), vars map[string]string, script string, args ...string) steps {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "REQUESTS_CA_BUNDLE=" + e.CAFile,
		"PYTHONDONTWRITEBYTECODE=1"}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return e.exec(t, prefix, py.dir, env, append([]string{py.python, script}, args...))
}

// TestPython drives a node with the Azure SDK for Python, configured only
// through environment variables and endpoint URLs: azure-identity's
// credentials (client secret with tenant adfs and with the tenant GUID,
// certificate, environment, default, managed identity inside `gatehouse
// run`, on-behalf-of for a web API calling a vault as a person),
// SecretClient through a whole secret life cycle, TextAnalyticsClient
// with a key and with a token, on its default api-version
// (2022-10-01-preview, which the Language service used to refuse) and on
// the Text Analytics v3.1 routes, and the management clients for
// accounts, keys, roles and identities.
func TestPython(t *testing.T) {
	py := requirePython(t)
	e := newEnv(t, jsEnv{})
	t.Cleanup(func() { e.AssertNotLogged(t, e.secrets()...) })
	scopes := e.scopeArgs()

	t.Run("identity", func(t *testing.T) {
		t.Parallel()
		tenant := e.Directory.DefaultTenant()
		guid := e.identityEnv(e.app)
		guid["AZURE_TENANT_ID"] = tenant
		cert := map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
			"AZURE_CLIENT_ID": e.certApp.clientID, "AZURE_CLIENT_CERTIFICATE_PATH": e.certFile}
		const pyDevicePassword = "python device-code password"
		pyDevice, err := e.Directory.CreateUser(t.Context(), directory.UserSpec{UserName: "pydev@example.test", Password: pyDevicePassword})
		if err != nil {
			t.Fatal(err)
		}
		urls, browserVars := testenv.FakeBrowserEnv(t)
		browserVars["AZURE_AUTHORITY_HOST"], browserVars["AZURE_TENANT_ID"] = e.URL, "adfs"
		var opened atomic.Int32
		go func() {
			for u := range urls {
				opened.Add(1)
				e.BrowserSignIn(t, u, pyDevice.UserName, pyDevicePassword, true)
			}
		}()
		for _, tt := range []struct {
			mode string
			vars map[string]string
			oid  string
		}{
			{"client-secret", e.identityEnv(e.app), e.app.objectID},
			{"client-secret-guid", guid, e.app.objectID},
			{"client-certificate", cert, e.certApp.objectID},
			{"environment", e.identityEnv(e.app), e.app.objectID},
			{"default", e.identityEnv(e.app), e.app.objectID},
			// A person, signed in from a browser (the prompt callback
			// approves the code on the portal's device page): one prompt,
			// then every resource's token from the session.
			{"device-code", map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
				"DEVICE_USER": pyDevice.UserName, "DEVICE_PASSWORD": pyDevicePassword}, pyDevice.ObjectID},
			// The same person in "the system browser" (the test's: it signs
			// in to the portal and continues).
			{"interactive-browser", browserVars, pyDevice.ObjectID},
		} {
			t.Run(tt.mode, func(t *testing.T) {
				s := e.python(t, py, nil, tt.vars, "identity.py", append([]string{tt.mode}, scopes...)...)
				e.checkTokens(t, s, tt.oid)
				if tt.mode == "device-code" {
					var prompts int
					if s.value(t, "prompts", &prompts); prompts != 1 {
						t.Errorf("the person was asked %d times, want once", prompts)
					}
					e.AssertNotLogged(t, pyDevicePassword)
				}
				if n := opened.Load(); tt.mode == "interactive-browser" && n != 1 {
					t.Errorf("the browser opened %d times, want once", n)
				}
				if tt.mode != "client-secret" {
					return
				}
				if err := s.err(t, "wrong-secret"); err.Name != "ClientAuthenticationError" || !strings.Contains(err.Message, "AADSTS7000215") {
					t.Errorf("wrong secret: %s", err)
				}
				if err := s.err(t, "unknown-resource"); !strings.Contains(err.Message, "AADSTS500011") {
					t.Errorf("unknown resource: %s", err)
				}
			})
		}
		// A web API reads a vault as the person calling it
		// (OnBehalfOfCredential with a secret and with a certificate);
		// its own identity reads nothing.
		t.Run("on-behalf-of", func(t *testing.T) {
			o := e.newOnBehalfOf(t, "py")
			// The person signs in with tenant adfs: with a tenant GUID, MSAL
			// Python 1.21 first asks https://{host without the port}/common/
			// userrealm/{user} (Authority.instance is the URL's hostname), and
			// no node listens on 443 here.
			vars := merge(o.vars(e), map[string]string{"PERSON_TENANT_ID": "adfs"})
			o.check(t, e, e.python(t, py, nil, vars, "on_behalf_of.py"), map[string]string{"secret": "1", "certificate": "2"})
			own := merge(e.identityEnv(o.api), map[string]string{"KEYVAULT_URL": o.open, "SECRET_NAME": oboSecret})
			if err := e.python(t, py, nil, own, "keyvault.py", "read").err(t, "get"); err.StatusCode != 403 {
				t.Errorf("the API reading as itself: %s", err)
			}
		})
	})

	t.Run("managed-identity", func(t *testing.T) {
		t.Parallel()
		run := e.gatehouseRun(t, *e.mi.Name)
		oid := *e.mi.Properties.PrincipalID
		for _, tt := range []struct {
			mode string
			vars map[string]string
		}{
			{"managed-identity", nil},
			{"managed-identity-client-id", map[string]string{"APP_IDENTITY_CLIENT_ID": *e.mi.Properties.ClientID}},
			{"default", nil},
		} {
			t.Run(tt.mode, func(t *testing.T) {
				e.checkTokens(t, e.python(t, py, run, tt.vars, "identity.py", append([]string{tt.mode}, scopes...)...), oid)
			})
		}
		t.Run("keyvault-read", func(t *testing.T) {
			v, ok := e.Vaults.VaultByName(e.vaultName)
			if !ok {
				t.Fatal("no vault")
			}
			if _, err := e.Vaults.SetSecret(t.Context(), v, "py-mi-readable", vault.SetInput{Value: []byte("read-by-the-identity")}); err != nil {
				t.Fatal(err)
			}
			s := e.python(t, py, run, map[string]string{"KEYVAULT_URL": e.vaultURL, "SECRET_NAME": "py-mi-readable"}, "keyvault.py", "read")
			var got secretResult
			s.value(t, "get", &got)
			if got.Value != "read-by-the-identity" {
				t.Fatalf("managed identity read %q", got.Value)
			}
		})
	})

	t.Run("keyvault", func(t *testing.T) {
		t.Parallel()
		vars := e.identityEnv(e.app)
		vars["KEYVAULT_URL"] = e.vaultURL
		s := e.python(t, py, nil, vars, "keyvault.py", "full")
		vaultURL := strings.TrimSuffix(e.vaultURL, "/")
		var set, set2, got, old, upd, deleted, recovered, restored secretResult
		s.value(t, "set", &set)
		s.value(t, "set-again", &set2)
		s.value(t, "get", &got)
		s.value(t, "get-version", &old)
		if set.Value != "py-value-one" || set.ContentType != "text/plain" || set.Tags["env"] != "ci" || len(set.Version) != 32 ||
			set.ID != vaultURL+"/secrets/py-secret/"+set.Version || set.RecoveryLevel != "Recoverable+Purgeable" {
			t.Fatalf("set: %+v", set)
		}
		if got.Value != "py-value-two" || got.Version != set2.Version || old.Value != "py-value-one" {
			t.Fatalf("versions: got %+v old %+v", got, old)
		}
		var versions, names, deletedNames []string
		s.value(t, "versions", &versions)
		s.value(t, "list", &names)
		if len(versions) != 2 || !slices.Contains(names, "py-secret") {
			t.Fatalf("versions %v, list %v", versions, names)
		}
		s.value(t, "update", &upd)
		if upd.Enabled || upd.Tags["rotated"] != "yes" {
			t.Fatalf("update: %+v", upd)
		}
		if err := s.err(t, "get-disabled"); err.StatusCode != 403 || err.Code != "Forbidden" {
			t.Errorf("get a disabled version: %s", err)
		}
		s.value(t, "backup", nil)
		s.value(t, "delete", &deleted)
		s.value(t, "list-deleted", &deletedNames)
		if !slices.Contains(deletedNames, "py-secret") {
			t.Errorf("deleted secrets: %v", deletedNames)
		}
		if err := s.err(t, "get-deleted-live"); err.StatusCode != 404 || err.Code != "SecretNotFound" {
			t.Errorf("get a deleted secret: %s", err)
		}
		s.value(t, "recover", &recovered)
		s.value(t, "get-recovered", &got)
		if got.Value != "py-value-two" {
			t.Fatalf("recovered: %+v", got)
		}
		s.value(t, "purge", nil)
		s.value(t, "restore", &restored)
		if restored.Name != "py-secret" {
			t.Fatalf("restore: %+v", restored)
		}
		if err := s.err(t, "missing"); err.Name != "ResourceNotFoundError" || err.Code != "SecretNotFound" {
			t.Errorf("missing: %s", err)
		}
		if err := s.err(t, "bad-name"); err.StatusCode != 400 {
			t.Errorf("bad name: %s", err)
		}
	})

	t.Run("language", func(t *testing.T) {
		t.Parallel()
		type detected struct {
			ID, Language, Name, Error string
			Score                     float64
		}
		type sentiment struct {
			Sentiment  string    `json:"sentiment"`
			Scores     []float64 `json:"scores"`
			Characters int       `json:"characters"`
			Sentences  []struct {
				Text, Sentiment string
				Offset, Length  int
			} `json:"sentences"`
			Opinions []struct {
				Target, Sentiment string
				Assessments       []struct {
					Text, Sentiment string
					Negated         bool
				}
			} `json:"opinions"`
		}
		keyVars := map[string]string{"LANGUAGE_ENDPOINT": e.language.endpoint, "LANGUAGE_KEY": e.language.key1}
		for _, tt := range []struct {
			name, mode string
			vars       map[string]string
		}{
			{"key", "key", keyVars},
			{"aad", "aad", merge(e.identityEnv(e.app), map[string]string{"LANGUAGE_ENDPOINT": e.language.endpoint})},
			// The Text Analytics v3.1 routes (/text/analytics/v3.1/…).
			{"key-v3.1", "key", merge(keyVars, map[string]string{"LANGUAGE_API_VERSION": "v3.1"})},
			{"aad-v3.1", "aad", merge(e.identityEnv(e.app), map[string]string{"LANGUAGE_ENDPOINT": e.language.endpoint, "LANGUAGE_API_VERSION": "v3.1"})},
		} {
			mode := tt.mode
			t.Run(tt.name, func(t *testing.T) {
				s := e.python(t, py, nil, tt.vars, "language.py", mode)
				var det []detected
				s.value(t, "detect", &det)
				if len(det) != 3 || det[0].Language != "en" || det[1].Language != "fr" || det[2].Error != "InvalidDocument" {
					t.Fatalf("detect: %+v", det)
				}
				var sen []sentiment
				s.value(t, "sentiment", &sen)
				if len(sen) != 1 || sen[0].Sentiment != "mixed" || len(sen[0].Sentences) != 2 ||
					sen[0].Sentences[0].Sentiment != "positive" || sen[0].Sentences[1].Sentiment != "negative" ||
					sen[0].Sentences[1].Offset != sen[0].Sentences[0].Length || sen[0].Characters == 0 {
					t.Fatalf("sentiment: %+v", sen)
				}
				// Opinion mining: food and staff were praised, the parking not.
				var mined []string
				for _, o := range sen[0].Opinions {
					for _, a := range o.Assessments {
						mined = append(mined, o.Target+"/"+a.Text+"/"+a.Sentiment)
					}
				}
				if want := []string{"food/wonderful/positive", "staff/lovely/positive", "parking/terrible/negative"}; !slices.Equal(mined, want) {
					t.Errorf("mined opinions %v, want %v", mined, want)
				}
				// Counted in text elements: the flag and the toned thumb
				// are one each ("Paris 🇫🇷 is lovely 👍🏽. " is 21; 27 in UTF-16).
				var elems []struct {
					Text           string
					Offset, Length int
				}
				s.value(t, "text-elements", &elems)
				if len(elems) != 2 || elems[0].Offset != 0 || elems[0].Length != 21 || elems[1].Offset != 21 || elems[1].Length != 7 {
					t.Errorf("text elements: %+v", elems)
				}
				if mode != "key" {
					return
				}
				if err := s.err(t, "wrong-key"); err.StatusCode != 401 {
					t.Errorf("wrong key: %s", err)
				}
				if err := s.err(t, "too-many-documents"); err.StatusCode != 400 {
					t.Errorf("too many documents: %s", err)
				}
				// What the built-in service does not perform is answered
				// so: a long-running analysis (analyze-text/jobs, v3.1's
				// /analyze) and v3.1's entity route are 404s that say it;
				// the Language API refuses the EntityRecognition kind.
				if err := s.err(t, "analyze-actions"); err.StatusCode != 404 || !strings.Contains(err.Message, "not served by Gatehouse") {
					t.Errorf("analyze actions: %s", err)
				}
				if err := s.err(t, "entities"); !(err.StatusCode == 404 && strings.Contains(err.Message, "not served by Gatehouse") ||
					err.StatusCode == 400 && strings.Contains(err.Message, `"EntityRecognition" is not supported`)) {
					t.Errorf("entities: %s", err)
				}
			})
		}
	})

	t.Run("management", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"AZURE_AUTHORITY_HOST": e.URL, "AZURE_TENANT_ID": "adfs",
			"AZURE_CLIENT_ID": e.Bootstrap.ClientID, "AZURE_CLIENT_SECRET": e.Bootstrap.ClientSecret,
			"AZURE_SUBSCRIPTION_ID": e.sub, "RESOURCE_GROUP": e.group, "ARM_ENDPOINT": e.URL}
		s := e.python(t, py, nil, vars, "management.py")
		var created struct {
			ID, Endpoint, State string
			Tags                map[string]string
		}
		s.value(t, "create", &created)
		if created.State != "Succeeded" || created.Endpoint != e.URL+"/ai/py-language/" || created.Tags["from"] != "python" {
			t.Fatalf("create: %+v", created)
		}
		var keys struct{ Key1, Key2 string }
		s.value(t, "keys", &keys)
		if len(keys.Key1) != 64 || len(keys.Key2) != 64 {
			t.Fatalf("keys: %d %d", len(keys.Key1), len(keys.Key2))
		}
		var regen struct{ Key1Kept, Key2Changed bool }
		s.value(t, "regenerate", &regen)
		if !regen.Key1Kept || !regen.Key2Changed {
			t.Fatalf("regenerate Key2: %+v", regen)
		}
		var deleted []string
		s.value(t, "deleted-accounts", &deleted)
		if len(deleted) != 0 {
			t.Errorf("deleted accounts: %v", deleted)
		}
		var mi struct{ ClientID, PrincipalID string }
		s.value(t, "identity", &mi)
		var assigned struct{ Role, Scope, Principal string }
		s.value(t, "assign", &assigned)
		if assigned.Role != "a97b65f3-24c7-4388-baec-2e87135dc908" || assigned.Principal != mi.PrincipalID || !strings.EqualFold(assigned.Scope, created.ID) {
			t.Fatalf("assign: %+v (identity %+v)", assigned, mi)
		}
		var principals []string
		s.value(t, "assignments", &principals)
		if !slices.Contains(principals, mi.PrincipalID) {
			t.Errorf("assignments at the account: %v", principals)
		}
		if err := s.err(t, "bad-key-name"); err.StatusCode != 400 || err.Code != "InvalidKeyName" {
			t.Errorf("bad key name: %s", err)
		}
		for step, want := range map[string]struct {
			status int
			code   string
		}{
			"sku-unknown": {400, "InvalidSkuId"}, "location-unknown": {400, "LocationNotAvailableForResourceType"},
			"provider-unknown": {404, "InvalidResourceNamespace"},
		} {
			if err := s.err(t, step); err.StatusCode != want.status || err.Code != want.code {
				t.Errorf("%s: %s", step, err)
			}
		}
		var rules struct {
			Updated, DefaultAction string
			IPRules                []string
		}
		s.value(t, "network-rules", &rules)
		if rules.Updated != "Deny" || rules.DefaultAction != "Deny" || !slices.Equal(rules.IPRules, []string{"10.20.0.0/16", "203.0.113.7"}) {
			t.Errorf("network rules set with the Python SDK: %+v", rules)
		}
		if err := s.err(t, "bad-network-rule"); err.StatusCode != 400 || err.Code != "InvalidNetworkAcls" {
			t.Errorf("bad network rule: %s", err)
		}
		s.value(t, "delete", nil)
		if err := s.err(t, "get-deleted"); err.StatusCode != 404 {
			t.Errorf("get a deleted account: %s", err)
		}
		s.value(t, "deleted-after", &deleted)
		if !slices.Contains(deleted, "py-language") {
			t.Errorf("deleted accounts after the delete: %v", deleted)
		}
		var shown struct{ ID, DeletionDate, ScheduledPurgeDate string }
		s.value(t, "show-deleted", &shown)
		if !strings.HasSuffix(shown.ID, "/locations/westus/resourceGroups/"+vars["RESOURCE_GROUP"]+"/deletedAccounts/py-language") ||
			shown.DeletionDate == "" || shown.ScheduledPurgeDate == "" {
			t.Errorf("deleted account: %+v", shown)
		}
		var recovered struct {
			Name, Kind string
			Key1       bool
		}
		s.value(t, "recover", &recovered)
		if recovered.Name != "py-language" || recovered.Kind != "TextAnalytics" || !recovered.Key1 {
			t.Errorf("recovered: %+v", recovered)
		}
		s.value(t, "delete-again", nil)
		s.value(t, "purge", nil)
		if err := s.err(t, "purged"); err.StatusCode != 404 {
			t.Errorf("get a purged account: %s", err)
		}
		// A deployment of the catalog's model, by name alone.
		var dep struct {
			Models   [][]any
			Version  string
			Capacity int
			State    string
			Names    []string
		}
		s.value(t, "deploy", &dep)
		if len(dep.Models) != 3 || dep.Models[0][0] != "gpt-4o-mini" || dep.Models[0][1] != "2024-07-18" || dep.Version != "2024-07-18" ||
			dep.Capacity != 2 || dep.State != "Succeeded" || len(dep.Names) != 1 {
			t.Errorf("deploy: %+v", dep)
		}
		if err := s.err(t, "deploy-unknown-model"); err.StatusCode != 400 || err.Code != "DeploymentModelNotSupported" {
			t.Errorf("a model outside the catalog: %s", err)
		}
		s.value(t, "undeploy", nil)
		var out struct {
			Restrict bool
			Allowed  []string
		}
		s.value(t, "outbound", &out)
		if !out.Restrict || strings.Join(out.Allowed, ",") != "vllm.internal,10.0.0.5" {
			t.Errorf("outbound restriction: %+v", out)
		}
		if err := s.err(t, "outbound-bad-host"); err.StatusCode != 400 || err.Code != "InvalidAllowedFqdnList" {
			t.Errorf("a bad allowedFqdnList: %s", err)
		}
		e.AssertNotLogged(t, keys.Key1, keys.Key2)
	})
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
