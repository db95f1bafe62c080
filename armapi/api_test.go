package armapi

import (
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
