package authority

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
)

// FuzzTokenEndpoint: no body, of any content, makes the token endpoint
// answer anything but a JSON OAuth error or a token; never a 500.
func FuzzTokenEndpoint(f *testing.F) {
	c := newClock()
	n := newNode(f, teststore.SQLite(f), testSealer(f), c, Options{})
	app, err := n.d.CreateApplication(f.Context(), directory.ApplicationSpec{DisplayName: "fuzz", ServicePrincipal: true})
	if err != nil {
		f.Fatal(err)
	}
	_, secret, _ := n.d.AddSecret(f.Context(), app.AppID, directory.SecretSpec{})
	mux := http.NewServeMux()
	n.a.Mount(mux)
	path := "/" + n.d.DefaultTenant() + "/oauth2/v2.0/token"
	f.Add(url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {secret},
		"scope": {"https://management.azure.com/.default"}}.Encode(), "application/x-www-form-urlencoded")
	f.Add("grant_type=client_credentials&client_id="+app.AppID+"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.e30", "application/x-www-form-urlencoded")
	f.Add("grant_type=password&client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&username=a&password=b", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("grant_type=refresh_token&client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&refresh_token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&scope=https%3A%2F%2Fmanagement.azure.com%2F.default", "application/x-www-form-urlencoded")
	f.Add("%", "text/plain")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("non-JSON answer %d: %q", w.Code, w.Body)
		}
		switch {
		case w.Code == 200:
			if resp["access_token"] == nil {
				t.Fatalf("200 without a token: %s", w.Body)
			}
		case w.Code == 400 || w.Code == 401:
			if resp["error"] == nil || resp["access_token"] != nil {
				t.Fatalf("%d: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
