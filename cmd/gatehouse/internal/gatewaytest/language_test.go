package gatewaytest

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/authz"
)

const languagePath = "language/:analyze-text?api-version=2023-04-01"

func asError[T error](err error, target *T) bool { return errors.As(err, target) }

func testLanguage(t *testing.T, e *env) {
	a := e.createAccount(t, "lang-creds", "TextAnalytics", nil)
	_, cred := e.principal(t, "lang-user", a, authz.RoleCognitiveServicesUser)
	identity := e.Token(t, cred, "https://cognitiveservices.azure.com/.default")
	hostForm := "https://" + a.name + ".cognitiveservices." + e.Host + "/"
	creds := []struct {
		name, endpoint string
		header         map[string]string
	}{
		{"key1-ocp-apim", a.endpoint, keyHeader(a.key1)},
		{"key2-api-key", hostForm, map[string]string{"api-key": a.key2}},
		{"sts-token", a.endpoint, bearer(e.sts(t, a.endpoint, a.key1))},
		{"sts-token-from-root", hostForm, bearer(e.sts(t, e.URL, a.key2))},
		{"identity-token", a.endpoint, bearer(identity)},
	}
	for _, c := range creds {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, call{url: c.endpoint + languagePath, header: c.header, body: `{"kind":"LanguageDetection",
				"analysisInput":{"documents":[{"id":"0","text":"Bonjour tout le monde, comment allez-vous aujourd'hui ?","countryHint":"fr"},
				{"id":"1","text":""}]},"parameters":{}}`})
			if r.status != 200 {
				t.Fatalf("detection: %d %s", r.status, r.body)
			}
			m := r.json(t)
			res := m["results"].(map[string]any)
			docs, _ := res["documents"].([]any)
			errs, _ := res["errors"].([]any)
			if m["kind"] != "LanguageDetectionResults" || len(docs) != 1 || len(errs) != 1 {
				t.Fatalf("detection result %v", m)
			}
			dl := docs[0].(map[string]any)["detectedLanguage"].(map[string]any)
			if dl["iso6391Name"] != "fr" || dl["name"] != "French" {
				t.Errorf("detected %v", dl)
			}
			if code := errs[0].(map[string]any)["error"].(map[string]any)["innererror"].(map[string]any)["code"]; code != "InvalidDocument" {
				t.Errorf("document error %v", errs[0])
			}

			r = e.do(t, call{url: c.endpoint + languagePath, header: c.header, body: `{"kind":"SentimentAnalysis",
				"analysisInput":{"documents":[{"id":"a","text":"The room was lovely 😀. The breakfast was awful.","language":"en"}]}}`})
			if r.status != 200 {
				t.Fatalf("sentiment: %d %s", r.status, r.body)
			}
			m = r.json(t)
			doc := m["results"].(map[string]any)["documents"].([]any)[0].(map[string]any)
			ss := doc["sentences"].([]any)
			if m["kind"] != "SentimentAnalysisResults" || doc["sentiment"] != "mixed" || len(ss) != 2 {
				t.Fatalf("sentiment result %v", m)
			}
			// "The room was lovely 😀. " is 24 UTF-16 code units (the emoji
			// is a surrogate pair).
			s1 := ss[1].(map[string]any)
			if s1["offset"] != 24.0 || s1["sentiment"] != "negative" || !strings.HasPrefix(s1["text"].(string), "The breakfast") {
				t.Errorf("second sentence %v", s1)
			}
		})
	}
}
