package language

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf16"
)

var svc = New()

// post runs one analyze-text request and decodes the JSON answer.
func post(t testing.TB, query, body string) (int, map[string]any) {
	t.Helper()
	if query == "" {
		query = "api-version=2023-04-01"
	}
	r := httptest.NewRequest(http.MethodPost, "/language/:analyze-text?"+query, strings.NewReader(body))
	w := httptest.NewRecorder()
	if err := svc.AnalyzeText(w, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("status %d, body not JSON: %s", w.Code, w.Body)
	}
	if w.Code != 200 && w.Header().Get("x-ms-error-code") == "" {
		t.Errorf("status %d without x-ms-error-code", w.Code)
	}
	return w.Code, m
}

func docs(kind string, texts ...string) string {
	var ds []map[string]any
	for i, t := range texts {
		ds = append(ds, map[string]any{"id": fmt.Sprint(i), "text": t})
	}
	b, _ := json.Marshal(map[string]any{"kind": kind, "analysisInput": map[string]any{"documents": ds}, "parameters": map[string]any{}})
	return string(b)
}

func path(m map[string]any, keys ...any) any {
	var v any = m
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			mm, _ := v.(map[string]any)
			v = mm[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestLanguageDetection(t *testing.T) {
	tests := []struct {
		name, text, wantName, wantISO string
	}{
		{"english", "Hello world, this is a sentence written in plain English for the detector.", "English", "en"},
		{"french", "Bonjour tout le monde, ceci est une phrase écrite en français pour le détecteur.", "French", "fr"},
		{"spanish", "Hola a todos, esta es una frase escrita en español para el detector de idiomas.", "Spanish", "es"},
		{"japanese", "これは日本語で書かれた文章です。", "Japanese", "ja"},
		{"chinese", "这是用中文写的句子", "Chinese_Simplified", "zh_chs"},
		{"unknown", "12345 :-) 678", "(Unknown)", "(Unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(t, "", docs(KindLanguageDetection, tt.text))
			if code != 200 {
				t.Fatalf("status %d: %v", code, m)
			}
			if m["kind"] != "LanguageDetectionResults" {
				t.Errorf("kind %v", m["kind"])
			}
			if _, ok := path(m, "results", "errors").([]any); !ok {
				t.Error("results.errors is not an array")
			}
			if path(m, "results", "modelVersion") != ModelLanguageDetection {
				t.Errorf("modelVersion %v", path(m, "results", "modelVersion"))
			}
			d := path(m, "results", "documents", 0).(map[string]any)
			if d["id"] != "0" {
				t.Errorf("id %v", d["id"])
			}
			if _, ok := d["warnings"].([]any); !ok {
				t.Error("warnings is not an array")
			}
			got := d["detectedLanguage"].(map[string]any)
			if got["name"] != tt.wantName || got["iso6391Name"] != tt.wantISO {
				t.Errorf("detected %v, want %s/%s", got, tt.wantName, tt.wantISO)
			}
			c := got["confidenceScore"].(float64)
			if tt.wantISO == "(Unknown)" && c != 0 || tt.wantISO != "(Unknown)" && (c <= 0 || c > 1) {
				t.Errorf("confidenceScore %v", c)
			}
		})
	}
}

func TestSentimentAnalysis(t *testing.T) {
	tests := []struct {
		name, text, want string
		sentences        []string
	}{
		{"positive", "I love this product. It is wonderful!", positive, []string{"positive", "positive"}},
		{"negative", "This is terrible. I hate it.", negative, []string{"negative", "negative"}},
		{"neutral", "The box is on the table.", neutral, []string{"neutral"}},
		{"mixed", "The food was great! The service was awful.", mixed, []string{"positive", "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(t, "", docs(KindSentimentAnalysis, tt.text))
			if code != 200 {
				t.Fatalf("status %d: %v", code, m)
			}
			if m["kind"] != "SentimentAnalysisResults" {
				t.Errorf("kind %v", m["kind"])
			}
			d := path(m, "results", "documents", 0).(map[string]any)
			if d["sentiment"] != tt.want {
				t.Errorf("sentiment %v, want %s (%v)", d["sentiment"], tt.want, d)
			}
			checkScores(t, d["confidenceScores"])
			ss := d["sentences"].([]any)
			if len(ss) != len(tt.sentences) {
				t.Fatalf("%d sentences, want %d: %v", len(ss), len(tt.sentences), ss)
			}
			joined := ""
			for i, s := range ss {
				s := s.(map[string]any)
				if s["sentiment"] != tt.sentences[i] {
					t.Errorf("sentence %d %q: %v, want %s", i, s["text"], s["sentiment"], tt.sentences[i])
				}
				checkScores(t, s["confidenceScores"])
				if _, ok := s["targets"]; ok {
					t.Error("targets present without opinion mining")
				}
				joined += s["text"].(string)
			}
			if joined != tt.text {
				t.Errorf("sentences %q do not tile the text %q", joined, tt.text)
			}
		})
	}
}

func checkScores(t *testing.T, v any) {
	t.Helper()
	s := v.(map[string]any)
	sum := s["positive"].(float64) + s["neutral"].(float64) + s["negative"].(float64)
	if sum < 0.989 || sum > 1.011 {
		t.Errorf("scores %v sum to %v", s, sum)
	}
}

func TestSentenceOffsets(t *testing.T) {
	text := "I love 😀 pizza. The café is bad 👍🏽! 🇫🇷 ok."
	tests := []struct {
		name, indexType string
		count           func(string) int
	}{
		{"utf16-default", "", func(s string) int { return len(utf16.Encode([]rune(s))) }},
		{"utf16", "Utf16CodeUnit", func(s string) int { return len(utf16.Encode([]rune(s))) }},
		{"code-points", "UnicodeCodePoint", func(s string) int { return len([]rune(s)) }},
		{"text-elements", "TextElements_v8", textElements},
		// Text Analytics v3's spelling, which the Language API takes too.
		{"text-element-v3-spelling", "TextElement_v8", textElements},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"kind":"SentimentAnalysis","parameters":{"stringIndexType":%q,"opinionMining":true},
				"analysisInput":{"documents":[{"id":"a","text":%q,"language":"en"}]}}`, tt.indexType, text)
			if tt.indexType == "" {
				body = strings.Replace(body, `"stringIndexType":"",`, "", 1)
			}
			code, m := post(t, "", body)
			if code != 200 {
				t.Fatalf("status %d: %v", code, m)
			}
			ss := path(m, "results", "documents", 0, "sentences").([]any)
			if len(ss) != 3 {
				t.Fatalf("%d sentences: %v", len(ss), ss)
			}
			pos := 0
			for _, s := range ss {
				s := s.(map[string]any)
				st := s["text"].(string)
				if int(s["offset"].(float64)) != pos || int(s["length"].(float64)) != tt.count(st) {
					t.Errorf("sentence %q: offset %v length %v, want %d %d", st, s["offset"], s["length"], pos, tt.count(st))
				}
				pos += tt.count(st)
				if _, ok := s["targets"].([]any); !ok {
					t.Error("opinion mining asked: targets should be an array")
				}
			}
		})
	}
	if n := textElements("👍🏽🇫🇷e\u0301\r\n👨\u200d👩\u200d👧"); n != 5 {
		t.Errorf("textElements = %d, want 5", n)
	}
}

func TestAnalyzeTextErrors(t *testing.T) {
	long := strings.Repeat("a", MaxTextElements+1)
	many := func(kind string, n int) string {
		texts := make([]string, n)
		for i := range texts {
			texts[i] = "hello there"
		}
		return docs(kind, texts...)
	}
	tests := []struct {
		name, query, body string
		status            int
		code, inner       string
	}{
		{"missing-api-version", "x=1", docs(KindLanguageDetection, "hi"), 400, "InvalidRequest", "InvalidParameterValue"},
		{"old-api-version", "api-version=2022-03-01-preview", docs(KindLanguageDetection, "hi"), 400, "InvalidRequest", "InvalidParameterValue"},
		{"garbage-api-version", "api-version=latest", docs(KindLanguageDetection, "hi"), 400, "InvalidRequest", "InvalidParameterValue"},
		{"malformed-json", "", `{"kind":`, 400, "InvalidRequest", "InvalidRequestBodyFormat"},
		{"trailing-garbage", "", docs(KindLanguageDetection, "hi") + "}", 400, "InvalidRequest", "InvalidRequestBodyFormat"},
		{"wrong-type", "", `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":1,"text":"x"}]}}`, 400, "InvalidRequest", "InvalidRequestBodyFormat"},
		{"missing-kind", "", `{"analysisInput":{"documents":[{"id":"1","text":"x"}]}}`, 400, "InvalidRequest", "InvalidParameterValue"},
		{"unknown-kind", "", `{"kind":"EntityRecognition","analysisInput":{"documents":[{"id":"1","text":"x"}]}}`, 400, "InvalidRequest", "InvalidParameterValue"},
		{"no-documents", "", `{"kind":"LanguageDetection","analysisInput":{"documents":[]}}`, 400, "InvalidRequest", "MissingInputDocuments"},
		{"no-analysis-input", "", `{"kind":"SentimentAnalysis"}`, 400, "InvalidRequest", "MissingInputDocuments"},
		{"too-many-sentiment", "", many(KindSentimentAnalysis, MaxSentimentDocuments+1), 400, "InvalidRequest", "InvalidDocumentBatch"},
		{"too-many-detection", "", many(KindLanguageDetection, MaxDetectionDocuments+1), 400, "InvalidRequest", "InvalidDocumentBatch"},
		{"duplicate-ids", "", `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"x"},{"id":"1","text":"y"}]}}`, 400, "InvalidRequest", "InvalidDocument"},
		{"empty-id", "", `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"","text":"x"}]}}`, 400, "InvalidRequest", "InvalidDocument"},
		{"bad-model-version", "", `{"kind":"SentimentAnalysis","parameters":{"modelVersion":"1999-01-01"},"analysisInput":{"documents":[{"id":"1","text":"x"}]}}`, 400, "InvalidRequest", "ModelVersionIncorrect"},
		{"bad-index-type", "", `{"kind":"SentimentAnalysis","parameters":{"stringIndexType":"Bytes"},"analysisInput":{"documents":[{"id":"1","text":"x"}]}}`, 400, "InvalidRequest", "InvalidParameterValue"},
		// LanguageDetection has no stringIndexType: one sent is ignored.
		{"detection-ignores-index-type", "", `{"kind":"LanguageDetection","parameters":{"stringIndexType":"Bytes"},"analysisInput":{"documents":[{"id":"1","text":"hello world"}]}}`, 200, "", ""},
		{"body-too-large", "", `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}}`, 413, "InvalidRequest", "InvalidDocumentBatch"},
		{"max-documents-ok", "", many(KindSentimentAnalysis, MaxSentimentDocuments), 200, "", ""},
		{"long-doc-is-document-error", "", docs(KindLanguageDetection, long), 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(t, tt.query, tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %.300v", code, tt.status, m)
			}
			if tt.code == "" {
				return
			}
			if got := path(m, "error", "code"); got != tt.code {
				t.Errorf("code %v, want %s", got, tt.code)
			}
			if got := path(m, "error", "innererror", "code"); got != tt.inner {
				t.Errorf("inner code %v, want %s", got, tt.inner)
			}
			if msg, _ := path(m, "error", "innererror", "message").(string); msg == "" {
				t.Error("no innererror.message")
			}
		})
	}
}

func TestDocumentErrors(t *testing.T) {
	body := `{"kind":"SentimentAnalysis","analysisInput":{"documents":[
		{"id":"ok1","text":"Great job!"},
		{"id":"empty","text":"  "},
		{"id":"missing"},
		{"id":"long","text":"` + strings.Repeat("b", MaxTextElements+1) + `"},
		{"id":"fr","text":"C'est bien","language":"fr"},
		{"id":"ok2","text":"Bad job.","language":"en-US"}]}}`
	code, m := post(t, "api-version=2024-11-01&showStats=true", body)
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	ds := path(m, "results", "documents").([]any)
	if len(ds) != 2 || path(m, "results", "documents", 0, "id") != "ok1" || path(m, "results", "documents", 1, "id") != "ok2" {
		t.Errorf("documents %v", ds)
	}
	want := map[string]string{"empty": "InvalidDocument", "missing": "InvalidDocument", "long": "InvalidDocument", "fr": "UnsupportedLanguageCode"}
	es := path(m, "results", "errors").([]any)
	if len(es) != len(want) {
		t.Fatalf("errors %v", es)
	}
	for _, e := range es {
		e := e.(map[string]any)
		id := e["id"].(string)
		if path(e, "error", "code") != "InvalidArgument" || path(e, "error", "innererror", "code") != want[id] {
			t.Errorf("error for %s: %v, want InvalidArgument/%s", id, e, want[id])
		}
	}
	st := path(m, "results", "statistics").(map[string]any)
	if st["documentsCount"] != 6.0 || st["validDocumentsCount"] != 2.0 || st["erroneousDocumentsCount"] != 4.0 {
		t.Errorf("statistics %v", st)
	}
	if path(m, "results", "documents", 0, "statistics", "charactersCount") != 10.0 {
		t.Errorf("document statistics %v", path(m, "results", "documents", 0, "statistics"))
	}

	t.Run("country-hint", func(t *testing.T) {
		body := `{"kind":"LanguageDetection","analysisInput":{"documents":[
			{"id":"1","text":"hello there","countryHint":"us"},
			{"id":"2","text":"hello there","countryHint":"none"},
			{"id":"3","text":"hello there","countryHint":"usa"}]}}`
		code, m := post(t, "", body)
		if code != 200 || len(path(m, "results", "documents").([]any)) != 2 ||
			path(m, "results", "errors", 0, "error", "innererror", "code") != "InvalidCountryHint" {
			t.Errorf("status %d: %v", code, m)
		}
	})
}

func TestSplitSentencesTiles(t *testing.T) {
	for _, text := range []string{
		"", "one", "One. Two! Three? Four", "Pi is 3.14 today. Yes.", "He said \"stop.\" Then left.",
		"line one\nline two\n\n", "  leading space. x", "これは。日本語です。", "Wait... what?! Ok", "Mr. Smith. Dr.",
	} {
		got := ""
		for _, sp := range splitSentences(text) {
			got += text[sp.start:sp.end]
		}
		if strings.TrimLeft(text, " \n") != strings.TrimLeft(got, " \n") {
			t.Errorf("%q: sentences tile %q", text, got)
		}
	}
	if n := len(splitSentences("Pi is 3.14 today. Yes.")); n != 2 {
		t.Errorf("decimal point split a sentence: %d sentences", n)
	}
	// A title's or an example's period ends no sentence.
	for text, want := range map[string]int{
		"Mr. Smith went to Washington. He liked it.":  2,
		"I met Dr. Jones (and Mrs. Jones) today.":     1,
		"Bring fruit, e.g. apples. Or pears.":         2,
		"He lives on the street. St. Louis is far.":   2,
		"Smith vs. Jones was long. The jury was out.": 2,
	} {
		if n := len(splitSentences(text)); n != want {
			t.Errorf("%q: %d sentences, want %d", text, n, want)
		}
	}
}

func FuzzAnalyzeText(f *testing.F) {
	f.Add(docs(KindSentimentAnalysis, "I love it. Bad!"))
	f.Add(docs(KindLanguageDetection, "bonjour"))
	f.Add(`{"kind":"SentimentAnalysis","parameters":{"stringIndexType":"TextElement_v8"},"analysisInput":{"documents":[{"id":"1","text":"\u200d\ud83c"}]}}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/language/:analyze-text?api-version=2023-04-01", strings.NewReader(body))
		w := httptest.NewRecorder()
		if err := svc.AnalyzeText(w, r); err != nil {
			t.Fatal(err)
		}
		if w.Code != 200 && w.Code != 400 && w.Code != 413 {
			t.Fatalf("status %d", w.Code)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON %s", w.Body)
		}
	})
}

func BenchmarkSentiment(b *testing.B) {
	body := docs(KindSentimentAnalysis, "I love this product. It is wonderful! The delivery was slow, though.")
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/language/:analyze-text?api-version=2023-04-01", strings.NewReader(body))
		w := httptest.NewRecorder()
		svc.AnalyzeText(w, r)
	}
}

// TestAPIVersions: every analyze-text version the SDKs send by default
// (textanalytics 5.2: 2022-05-01; 5.3 betas: 2022-10-01-preview; 5.3 and
// @azure/ai-language-text: 2023-04-01) is served.
func TestAPIVersions(t *testing.T) {
	for _, v := range []string{"2022-05-01", "2022-10-01-preview", "2023-04-01", "2023-04-15-preview", "2024-11-01"} {
		status, m := post(t, "api-version="+v, docs(KindLanguageDetection, "Hello world, this is English."))
		if status != 200 || path(m, "results", "documents", 0, "detectedLanguage", "iso6391Name") != "en" {
			t.Errorf("%s: %d %v", v, status, m)
		}
	}
	for _, v := range []string{"2022-04-30", "2021-01-01-preview", "v3.1", "latest"} {
		if status, _ := post(t, "api-version="+v, docs(KindLanguageDetection, "hi")); status != 400 {
			t.Errorf("%s: %d", v, status)
		}
	}
}

// TestTextAnalyticsV3: the v3.x operations return the results object
// itself, take their options from the query, and refuse other versions
// and operations with 404.
func TestTextAnalyticsV3(t *testing.T) {
	call := func(path, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		if err := svc.TextAnalyticsV3(w, r); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: status %d, body not JSON: %s", path, w.Code, w.Body)
		}
		return w.Code, m
	}
	status, m := call("/ai/a/text/analytics/v3.1/languages?showStats=true",
		`{"documents":[{"id":"1","text":"Hello world, this is a sentence in English.","countryHint":"US"},{"id":"2","text":""}]}`)
	if status != 200 || path(m, "documents", 0, "detectedLanguage", "iso6391Name") != "en" ||
		path(m, "errors", 0, "id") != "2" || path(m, "modelVersion") != ModelLanguageDetection ||
		path(m, "statistics", "documentsCount") != float64(2) || m["kind"] != nil || m["results"] != nil {
		t.Fatalf("v3.1 languages: %d %v", status, m)
	}
	// Offsets default to text elements in v3: "é" written as e + U+0301
	// is one.
	status, m = call("/text/analytics/v3.1/sentiment?opinionMining=true",
		`{"documents":[{"id":"1","language":"en","text":"Cafe\u0301 food was wonderful. The parking was terrible."}]}`)
	if status != 200 || path(m, "documents", 0, "sentiment") != "mixed" ||
		path(m, "documents", 0, "sentences", 1, "offset") != float64(25) {
		t.Fatalf("v3.1 sentiment: %d %v", status, m)
	}
	status, m = call("/text/analytics/v3.0/sentiment?stringIndexType=Utf16CodeUnit",
		`{"documents":[{"id":"1","text":"Cafe\u0301 food was wonderful. The parking was terrible."}]}`)
	if status != 200 || path(m, "documents", 0, "sentences", 1, "offset") != float64(26) {
		t.Fatalf("v3.0 sentiment in UTF-16: %d %v", status, m)
	}
	for _, tt := range []struct {
		path, body string
		status     int
		inner      string
	}{
		{"/text/analytics/v2.1/languages", `{"documents":[{"id":"1","text":"hi"}]}`, 404, "NotFound"},
		{"/text/analytics/v3.1/keyPhrases", `{"documents":[{"id":"1","text":"hi"}]}`, 404, "NotFound"},
		{"/text/analytics/v3.1/languages", `{"documents":[]}`, 400, innerMissingDocuments},
		{"/text/analytics/v3.1/languages", `{"documents":`, 400, innerBodyFormat},
		{"/text/analytics/v3.1/languages?model-version=1999-01-01", `{"documents":[{"id":"1","text":"hi"}]}`, 400, innerModelVersion},
		{"/text/analytics/v3.1/sentiment", `{"documents":[` + strings.Repeat(`{"id":"x","text":"a"},`, 10) + `{"id":"y","text":"b"}]}`, 400, innerDocumentBatch},
	} {
		status, m := call(tt.path, tt.body)
		if status != tt.status || path(m, "error", "innererror", "code") != tt.inner {
			t.Errorf("%s %s: %d %v", tt.path, clip(tt.body, 40), status, m)
		}
	}
}

// TestOpinionMining: targets and assessments with document offsets, the
// references that link them (naming the document's place in the
// response), negation, a target shared by two assessments, and nothing
// for sentences whose opinions are about pronouns.
func TestOpinionMining(t *testing.T) {
	body := `{"kind":"SentimentAnalysis","parameters":{"opinionMining":true},"analysisInput":{"documents":[
		{"id":"a","text":""},
		{"id":"b","text":"I love this. The food and the service were unacceptable, but the staff was not rude."},
		{"id":"c","text":"Great coffee."},
		{"id":"d","text":"We loved the pool."},
		{"id":"e","text":"The service was slow and rude."},
		{"id":"f","text":"The service was slow and the waiter was rude."},
		{"id":"g","text":"Cafe\u0301 was nice."}]}}`
	status, m := post(t, "", body)
	if status != 200 {
		t.Fatalf("%d %v", status, m)
	}
	// Document "a" is an error, so "b" is documents[0] of the response.
	if path(m, "results", "documents", 0, "id") != "b" {
		t.Fatalf("documents: %v", path(m, "results", "documents"))
	}
	s0 := path(m, "results", "documents", 0, "sentences", 0).(map[string]any)
	if len(s0["targets"].([]any)) != 0 || len(s0["assessments"].([]any)) != 0 {
		t.Errorf("'I love this.' mined %v %v", s0["targets"], s0["assessments"])
	}
	s1 := path(m, "results", "documents", 0, "sentences", 1).(map[string]any)
	type tgt struct {
		Text, Sentiment string
		Offset, Length  int
		Relations       []struct{ RelationType, Ref string }
	}
	type asm struct {
		Text, Sentiment string
		Offset, Length  int
		IsNegated       bool
	}
	var targets []tgt
	var assessments []asm
	remarshal(t, s1["targets"], &targets)
	remarshal(t, s1["assessments"], &assessments)
	text := "I love this. The food and the service were unacceptable, but the staff was not rude."
	if len(assessments) != 2 || assessments[0].Text != "unacceptable" || assessments[0].Sentiment != "negative" ||
		assessments[1].Text != "rude" || !assessments[1].IsNegated || assessments[1].Sentiment != "positive" ||
		text[assessments[1].Offset:assessments[1].Offset+assessments[1].Length] != "rude" {
		t.Fatalf("assessments: %+v", assessments)
	}
	if len(targets) != 3 || targets[0].Text != "food" || targets[1].Text != "service" || targets[2].Text != "staff" ||
		text[targets[0].Offset:targets[0].Offset+targets[0].Length] != "food" ||
		targets[0].Relations[0].Ref != "#/documents/0/sentences/1/assessments/0" ||
		targets[1].Relations[0].Ref != "#/documents/0/sentences/1/assessments/0" ||
		targets[2].Relations[0].Ref != "#/documents/0/sentences/1/assessments/1" ||
		targets[2].Relations[0].RelationType != "assessment" || targets[0].Sentiment != "negative" || targets[2].Sentiment != "positive" {
		t.Fatalf("targets: %+v", targets)
	}
	var c []tgt
	remarshal(t, path(m, "results", "documents", 1, "sentences", 0, "targets"), &c)
	if len(c) != 1 || c[0].Text != "coffee" || c[0].Relations[0].Ref != "#/documents/1/sentences/0/assessments/0" {
		t.Fatalf("'Great coffee.': %+v", c)
	}
	remarshal(t, path(m, "results", "documents", 2, "sentences", 0, "targets"), &c)
	if len(c) != 1 || c[0].Text != "pool" || c[0].Sentiment != "positive" {
		t.Fatalf("'We loved the pool.': %+v", c)
	}
	remarshal(t, path(m, "results", "documents", 3, "sentences", 0, "targets"), &c)
	if len(c) != 1 || c[0].Text != "service" || c[0].Sentiment != "negative" {
		t.Fatalf("'The service was slow and rude.': %+v", c)
	}
	// The earlier clause's predicate is not a target of the later one.
	remarshal(t, path(m, "results", "documents", 4, "sentences", 0, "targets"), &c)
	if len(c) != 1 || c[0].Text != "waiter" {
		t.Fatalf("'The service was slow and the waiter was rude.': %+v", c)
	}
	// A combining mark stays with its letter (UTF-16 offsets, the default).
	remarshal(t, path(m, "results", "documents", 5, "sentences", 0, "targets"), &c)
	if len(c) != 1 || c[0].Text != "Cafe\u0301" || c[0].Offset != 0 || c[0].Length != 5 {
		t.Fatalf("'Café was nice.': %+v", c)
	}
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// TestDetectShortTexts: short greetings and sentences, where trigram
// profiles alone guess wrong ("Hello world" came out Dutch), are settled by
// common words; longer texts in languages without a word list keep the
// trigram answer.
func TestDetectShortTexts(t *testing.T) {
	for text, want := range map[string]string{
		"Hello world":                "en",
		"Hello":                      "en",
		"Good morning":               "en",
		"Good morning, lovely day.":  "en",
		"Hola mundo":                 "es",
		"Buenos días":                "es",
		"Bonjour":                    "fr",
		"Bonjour tout le monde":      "fr",
		"Guten Tag":                  "de",
		"Hallo Welt":                 "de",
		"Obrigado":                   "pt",
		"Questo è un test":           "it",
		"Dit is een test":            "nl",
		"To jest test":               "pl",
		"Hello world from Gatehouse": "en",
		"Jag heter Anna och jag bor i Stockholm och jag tycker om att läsa böcker.": "sv",
		"Привет, как дела? Сегодня прекрасная погода.":                              "ru",
		"これは日本語で書かれた文章です。":                                                          "ja",
	} {
		if got := detect(text); got.ISO6391Name != want || got.ConfidenceScore <= 0 || got.ConfidenceScore > 1 {
			t.Errorf("%q: %+v, want %s", text, got, want)
		}
	}
	if got := detect("12345 :-) !!!"); got.ISO6391Name != "(Unknown)" {
		t.Errorf("digits and emoticons: %+v", got)
	}
}

// TestTransactionsAndBOM: a document counts one text record per 1,000
// characters begun (Azure's unit), the request the sum; a UTF-8 byte
// order mark before the JSON is skipped, as .NET's reader skips it.
func TestTransactionsAndBOM(t *testing.T) {
	body := "\xef\xbb\xbf" + docs("LanguageDetection", strings.Repeat("hello world ", 250), "short")
	code, m := post(t, "api-version=2024-11-01&showStats=true", body)
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	if n := path(m, "results", "documents", 0, "statistics", "transactionsCount"); n != 3.0 {
		t.Errorf("a 3,000-character document: %v transactions, want 3", n)
	}
	if n := path(m, "results", "statistics", "transactionsCount"); n != 4.0 {
		t.Errorf("the request: %v transactions, want 4", n)
	}
}
