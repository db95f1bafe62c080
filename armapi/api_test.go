package armapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/server"
)

// TestCorrelate: x-ms-correlation-request-id is the client's GUID as sent,
// else the request id — also when the handler fails.
func TestCorrelate(t *testing.T) {
	h := (&server.Middleware{}).Wrap(correlate(server.Handle(server.RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Path == "/fail" {
			return errNoRoute(r.URL.Path)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})))
	guid := "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
	tests := []struct {
		name, path string
		sent       []string
		echoed     bool
	}{
		{"guid", "/ok", []string{guid}, true},
		{"guid-on-error", "/fail", []string{guid}, true},
		{"none", "/ok", nil, false},
		{"empty", "/ok", []string{""}, false},
		{"not-a-guid", "/ok", []string{"abc"}, false},
		{"guid-with-braces", "/ok", []string{"{" + guid + "}"}, false},
		{"long", "/ok", []string{strings.Repeat("f", 4096)}, false},
		{"first-of-two", "/ok", []string{guid, "other"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			if tt.sent != nil {
				r.Header[hdrCorrelation] = tt.sent
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Result().Header.Values(hdrCorrelation)
			want := w.Result().Header.Get("x-ms-request-id")
			if tt.echoed {
				want = guid
			}
			if len(got) != 1 || got[0] != want || want == "" {
				t.Fatalf("x-ms-correlation-request-id %q, want %q", got, want)
			}
		})
	}
}

// TestJSONErrorNamesJSONTypes: a value of the wrong JSON type is named
// with the JSON type its field takes, whatever Go type holds it.
func TestJSONErrorNamesJSONTypes(t *testing.T) {
	var v struct {
		Properties *struct {
			Flag *bool `json:"flag"`
		} `json:"properties"`
		SKU  *struct{ Name string } `json:"sku"`
		Tags map[string]string      `json:"tags"`
		N    *int                   `json:"n"`
		List []string               `json:"list"`
	}
	for body, want := range map[string]string{
		`{"properties":[]}`:           "a JSON array at 'properties' to type 'object'",
		`{"sku":"S0"}`:                "a JSON string at 'sku' to type 'object'",
		`{"tags":1}`:                  "a JSON number at 'tags' to type 'object'",
		`{"n":"1"}`:                   "a JSON string at 'n' to type 'number'",
		`{"list":{}}`:                 "a JSON object at 'list' to type 'array'",
		`{"properties":{"flag":"y"}}`: "a JSON string at 'properties.flag' to type 'boolean'",
	} {
		err := jsonError(json.Unmarshal([]byte(body), &v))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
