package armapi

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// FuzzDecodeBody: any body either decodes or is refused with a 4xx
// *gatehouse.Error; nothing panics and nothing becomes a 500.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"kind":"OpenAI","location":"westus","sku":{"name":"S0"}}`, `{"kind":5}`, `{`, ``, `[]`,
		`{"properties":{"rateLimits":[{"key":"a","renewalPeriod":1e400,"count":1}]}}`, `{"identity":{"type":"UserAssigned","userAssignedIdentities":{"x":null}}}`,
		`{"keyName":"Key1"}{}`, "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &call{api: New(Options{MaxBodyBytes: 1 << 16}), w: httptest.NewRecorder(),
			r: httptest.NewRequest("PUT", "/x", bytes.NewReader(body))}
		var v accountBody
		err := c.decode(&v)
		if err == nil {
			v.spec() // must not panic
			return
		}
		e, ok := gatehouse.AsError(err)
		if !ok || e.Status < 400 || e.Status > 499 {
			t.Fatalf("decode error %v is not a 4xx *gatehouse.Error", err)
		}
	})
}
