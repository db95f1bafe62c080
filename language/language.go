package language

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Kinds of analysis and their result kinds.
const (
	KindLanguageDetection = "LanguageDetection"
	KindSentimentAnalysis = "SentimentAnalysis"
)

// Model versions reported in results. "latest" and these are accepted in
// parameters.modelVersion.
const (
	ModelLanguageDetection = "2022-10-01"
	ModelSentimentAnalysis = "2022-11-01"
)

// Limits of the synchronous analyze-text operation.
const (
	MaxBodyBytes          = 1 << 20
	MaxTextElements       = 5120
	MaxDetectionDocuments = 1000
	MaxSentimentDocuments = 10
	MinAPIVersion         = "2022-05-01"
	dataLimitsURL         = "https://aka.ms/text-analytics-data-limits"
	languageSupportURL    = "https://aka.ms/talangs"
	errInvalidRequest     = "InvalidRequest"
	errInvalidArgument    = "InvalidArgument"
	innerBodyFormat       = "InvalidRequestBodyFormat"
	innerMissingDocuments = "MissingInputDocuments"
	innerDocumentBatch    = "InvalidDocumentBatch"
	innerParameterValue   = "InvalidParameterValue"
	innerModelVersion     = "ModelVersionIncorrect"
	innerInvalidDocument  = "InvalidDocument"
	innerUnsupportedLang  = "UnsupportedLanguageCode"
	innerInvalidCountry   = "InvalidCountryHint"
	msgInvalidDocument    = "Invalid document in request."
	msgInvalidRequest     = "Invalid Request."
	// msgInvalidDocumentInRequest heads a bad document list's error.
	msgInvalidDocumentInRequest = "Invalid document in request."
	stringIndexUTF16            = "Utf16CodeUnit"
	stringIndexCodePoint        = "UnicodeCodePoint"
	// The text-element unit is spelt TextElements_v8 by the Language API
	// (analyze-text: its spec and the SDKs built on it, which rewrite the
	// older spelling to this one) and TextElement_v8 by Text Analytics v3;
	// each API takes both here.
	stringIndexTextElements = "TextElements_v8"
	stringIndexTextElement  = "TextElement_v8"
)

// Service is the built-in Language service. It holds no per-account state;
// one Service serves every account. Safe for concurrent use.
type Service struct {
	sentiment func() *analyzer
}

// New returns a Service. The sentiment lexicon loads on first use.
func New() *Service {
	return &Service{sentiment: sync.OnceValue(newAnalyzer)}
}

// request is the analyze-text body. Unknown fields are ignored, as Azure
// ignores them.
type request struct {
	Kind          string `json:"kind"`
	AnalysisInput *struct {
		Documents []document `json:"documents"`
	} `json:"analysisInput"`
	Parameters *parameters `json:"parameters"`
}

type document struct {
	ID          string  `json:"id"`
	Text        *string `json:"text"`
	CountryHint *string `json:"countryHint"`
	Language    *string `json:"language"`
}

type parameters struct {
	ModelVersion    string `json:"modelVersion"`
	LoggingOptOut   bool   `json:"loggingOptOut"`
	OpinionMining   bool   `json:"opinionMining"`
	StringIndexType string `json:"stringIndexType"`
	// v3: the request came by Text Analytics v3's routes (whose spelling
	// of the text-element unit an error names).
	v3 bool
}

// docError is one entry of results.errors.
type docError struct {
	ID    string    `json:"id"`
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError *innerBody `json:"innererror,omitempty"`
}

type innerBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// requestStats and docStats are the optional statistics (showStats=true).
type requestStats struct {
	DocumentsCount          int `json:"documentsCount"`
	ValidDocumentsCount     int `json:"validDocumentsCount"`
	ErroneousDocumentsCount int `json:"erroneousDocumentsCount"`
	TransactionsCount       int `json:"transactionsCount"`
}

type docStats struct {
	CharactersCount   int `json:"charactersCount"`
	TransactionsCount int `json:"transactionsCount"`
}

// requestError is a request-level failure, rendered in the Language shape
// (with innererror.message, which the JS client appends to the message).
type requestError struct {
	status                       int
	code, message, inner, detail string
}

func (e *requestError) Error() string { return e.code + "/" + e.inner + ": " + e.detail }

func badRequest(inner, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, code: errInvalidRequest, message: msgInvalidRequest,
		inner: inner, detail: fmt.Sprintf(format, args...)}
}

// AnalyzeText serves POST …/language/:analyze-text for an already
// authenticated and authorized caller. Every outcome is written to w; the
// returned error is non-nil only for a failure to write.
func (s *Service) AnalyzeText(w http.ResponseWriter, r *http.Request) error {
	resp, rerr := s.analyze(r)
	if rerr != nil {
		writeError(w, rerr)
		return nil
	}
	return writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("apim-request-id", h.Get("x-ms-request-id"))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

func writeError(w http.ResponseWriter, e *requestError) {
	message := e.message
	if message == "" {
		message = e.detail
	}
	body := struct {
		Error errorBody `json:"error"`
	}{errorBody{Code: e.code, Message: message, InnerError: &innerBody{Code: e.inner, Message: e.detail}}}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("x-ms-error-code", e.code)
	w.WriteHeader(e.status)
	w.Write(b)
}

func (s *Service) analyze(r *http.Request) (any, *requestError) {
	q := r.URL.Query()
	if err := checkAPIVersion(q.Get("api-version")); err != nil {
		return nil, err
	}
	var req request
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	var p parameters
	if req.Parameters != nil {
		p = *req.Parameters
	}
	var docs []document
	if req.AnalysisInput != nil {
		docs = req.AnalysisInput.Documents
	}
	results, rerr := s.run(req.Kind, docs, p, strings.EqualFold(q.Get("showStats"), "true"))
	if rerr != nil {
		return nil, rerr
	}
	return &struct {
		Kind    string `json:"kind"`
		Results any    `json:"results"`
	}{req.Kind + "Results", results}, nil
}

// readJSON reads a body of at most MaxBodyBytes holding one JSON value.
func readJSON(r *http.Request, v any) *requestError {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &requestError{status: http.StatusRequestEntityTooLarge, code: errInvalidRequest,
				message: msgInvalidRequest, inner: innerDocumentBatch,
				detail: fmt.Sprintf("Request Payload sent is too large to be processed. Limit request size to: %d bytes. For additional details on the data limitations see %s", MaxBodyBytes, dataLimitsURL)}
		}
		return badRequest(innerBodyFormat, "The request body could not be read.")
	}
	// A UTF-8 byte order mark before the JSON is skipped, as .NET's
	// System.Text.Json (Azure's) skips it.
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil || !errors.Is(dec.Decode(new(json.RawMessage)), io.EOF) {
		return badRequest(innerBodyFormat, "Request body format is wrong. Make sure the json request is serialized correctly and there are no null members.")
	}
	return nil
}

// run analyzes docs: the results object (documents, errors, modelVersion,
// statistics) that analyze-text wraps and Text Analytics v3 returns as is.
func (s *Service) run(kind string, docs []document, p parameters, showStats bool) (any, *requestError) {
	var limit int
	var model string
	idx := unitUTF16
	switch kind {
	case KindLanguageDetection:
		// Its parameters have no stringIndexType (it reports no
		// offsets): one sent is ignored, as unknown parameters are.
		limit, model = MaxDetectionDocuments, ModelLanguageDetection
	case KindSentimentAnalysis:
		limit, model = MaxSentimentDocuments, ModelSentimentAnalysis
		var rerr *requestError
		if idx, rerr = parseIndexType(p.StringIndexType, p.v3); rerr != nil {
			return nil, rerr
		}
	case "":
		return nil, badRequest(innerParameterValue, "The kind of analysis is missing. Supported kinds: %s, %s.", KindLanguageDetection, KindSentimentAnalysis)
	default:
		return nil, badRequest(innerParameterValue, "The kind %q is not supported by this service. Supported kinds: %s, %s.",
			clip(kind, 64), KindLanguageDetection, KindSentimentAnalysis)
	}
	if p.ModelVersion != "" && p.ModelVersion != "latest" && p.ModelVersion != model {
		return nil, badRequest(innerModelVersion, "Invalid model version. Possible values are: latest,%s. For additional details see https://aka.ms/text-analytics-model-versioning", model)
	}
	if len(docs) == 0 {
		return nil, badRequest(innerMissingDocuments, "Missing input documents.")
	}
	// Azure's envelope for a bad document list: InvalidRequest, "Invalid
	// document in request.", the reason in innererror (the JS client joins
	// the two messages: one text twice read badly).
	if len(docs) > limit {
		return nil, &requestError{status: http.StatusBadRequest, code: errInvalidRequest, message: msgInvalidDocumentInRequest,
			inner: innerDocumentBatch, detail: fmt.Sprintf("Batch request contains too many records. Max %d records are permitted.", limit)}
	}
	seen := make(map[string]struct{}, len(docs))
	for _, d := range docs {
		if d.ID == "" {
			return nil, &requestError{status: http.StatusBadRequest, code: errInvalidRequest, message: msgInvalidDocumentInRequest,
				inner: innerInvalidDocument, detail: "Document id is missing. Every document needs a non-empty id."}
		}
		if _, dup := seen[d.ID]; dup {
			return nil, &requestError{status: http.StatusBadRequest, code: errInvalidRequest, message: msgInvalidDocumentInRequest,
				inner: innerInvalidDocument, detail: "Request contains duplicated Ids. Make sure each document has a unique Id."}
		}
		seen[d.ID] = struct{}{}
	}

	b := batch{showStats: showStats, docs: len(docs)}
	if kind == KindLanguageDetection {
		out := &detectionResults{ModelVersion: model, Errors: []docError{}, Documents: []detectedDocument{}}
		for _, d := range docs {
			text, ok := b.checkText(d, &out.Errors)
			if !ok {
				continue
			}
			if d.CountryHint != nil && !validCountryHint(*d.CountryHint) {
				b.fail(&out.Errors, d.ID, innerInvalidCountry, fmt.Sprintf("Country hint is not valid. Please specify an ISO 3166-1 alpha-2 two letter country code. Got: %s", clip(*d.CountryHint, 16)))
				continue
			}
			b.valid++
			out.Documents = append(out.Documents, detectedDocument{ID: d.ID, DetectedLanguage: detect(text),
				Warnings: []any{}, Statistics: b.stats(text)})
		}
		out.Statistics = b.requestStats()
		return out, nil
	}
	out := &sentimentResults{ModelVersion: model, Errors: []docError{}, Documents: []sentimentDocument{}}
	an := s.sentiment()
	for _, d := range docs {
		text, ok := b.checkText(d, &out.Errors)
		if !ok {
			continue
		}
		lang := "en"
		if d.Language != nil && *d.Language != "" {
			lang = *d.Language
		}
		if !supportedSentimentLanguage(lang) {
			b.fail(&out.Errors, d.ID, innerUnsupportedLang, fmt.Sprintf("Invalid language code '%s'. Supported languages: en. For additional details see %s", clip(lang, 16), languageSupportURL))
			continue
		}
		doc := an.analyzeDocument(text, idx, p.OpinionMining, len(out.Documents))
		doc.ID, doc.Statistics = d.ID, b.stats(text)
		b.valid++
		out.Documents = append(out.Documents, doc)
	}
	out.Statistics = b.requestStats()
	return out, nil
}

// Text Analytics v3 operations (the REST API before analyze-text, still
// what azure-ai-textanalytics 5.0/5.1 and its api_version "v3.0"/"v3.1"
// call): POST /text/analytics/{v3.0|v3.1}/{languages|sentiment}.
const (
	OperationLanguages = "languages"
	OperationSentiment = "sentiment"
)

// TextAnalyticsV3 serves POST …/text/analytics/{version}/{operation} for an
// already authenticated and authorized caller: the same analysis as
// analyze-text, with v3's shapes — {"documents":[…]} in, the results
// object out, and the options (model-version, showStats, opinionMining,
// stringIndexType) in the query. Every outcome is written to w; the
// returned error is non-nil only for a failure to write.
func (s *Service) TextAnalyticsV3(w http.ResponseWriter, r *http.Request) error {
	segs := strings.Split(strings.TrimSuffix(r.URL.Path, "/"), "/")
	version, op := "", ""
	if n := len(segs); n >= 2 {
		version, op = segs[n-2], segs[n-1]
	}
	results, rerr := s.v3(r, version, op)
	if rerr != nil {
		writeError(w, rerr)
		return nil
	}
	return writeJSON(w, results)
}

// Unsupported answers an operation of the Language or Text Analytics APIs
// that this service does not perform (the asynchronous analyze-text jobs —
// analyze actions, healthcare, summarization — and v3's entity, key
// phrase and PII operations) for an already authenticated caller: 404 in
// the shape of the service's own "Resource not found", saying what it
// serves, where a bare "path not found" would leave the client guessing.
func (s *Service) Unsupported(w http.ResponseWriter, r *http.Request) error {
	writeError(w, &requestError{status: http.StatusNotFound, code: "404", message: "Resource not found", inner: "NotFound",
		detail: "This operation is not served by Gatehouse's built-in Language service: it serves POST language/:analyze-text " +
			"(LanguageDetection, SentimentAnalysis) and Text Analytics v3.0/v3.1 languages and sentiment."})
	return nil
}

func (s *Service) v3(r *http.Request, version, op string) (any, *requestError) {
	if version != "v3.0" && version != "v3.1" {
		return nil, &requestError{status: http.StatusNotFound, code: "404", message: "Resource not found",
			inner: "NotFound", detail: fmt.Sprintf("The Text Analytics version '%s' is not served: use v3.0, v3.1 or language/:analyze-text.", clip(version, 16))}
	}
	var kind string
	switch op {
	case OperationLanguages:
		kind = KindLanguageDetection
	case OperationSentiment:
		kind = KindSentimentAnalysis
	default:
		return nil, &requestError{status: http.StatusNotFound, code: "404", message: "Resource not found",
			inner: "NotFound", detail: fmt.Sprintf("The Text Analytics operation '%s' is not served by this service: only languages and sentiment.", clip(op, 32))}
	}
	q := r.URL.Query()
	p := parameters{ModelVersion: q.Get("model-version"), StringIndexType: q.Get("stringIndexType"), v3: true}
	if p.StringIndexType == "" {
		p.StringIndexType = stringIndexTextElement // v3's default
	}
	if version == "v3.1" && kind == KindSentimentAnalysis {
		p.OpinionMining = strings.EqualFold(q.Get("opinionMining"), "true")
	}
	var body struct {
		Documents []document `json:"documents"`
	}
	if err := readJSON(r, &body); err != nil {
		return nil, err
	}
	return s.run(kind, body.Documents, p, strings.EqualFold(q.Get("showStats"), "true"))
}

// batch accumulates the statistics of one request.
type batch struct {
	showStats   bool
	docs, valid int
	// transactions are the valid documents' text records: one per 1,000
	// characters begun, as Azure counts (and bills) them.
	transactions int
}

// checkText validates one document's text, recording a document error when
// it is unusable.
func (b *batch) checkText(d document, errs *[]docError) (string, bool) {
	if d.Text == nil || strings.TrimSpace(*d.Text) == "" {
		b.fail(errs, d.ID, innerInvalidDocument, "Document text is empty.")
		return "", false
	}
	if n := textElements(*d.Text); n > MaxTextElements {
		b.fail(errs, d.ID, innerInvalidDocument, fmt.Sprintf("A document within the request was too large to be processed. Limit document size to: %d text elements. For additional details on the data limitations see %s", MaxTextElements, dataLimitsURL))
		return "", false
	}
	return *d.Text, true
}

func (b *batch) fail(errs *[]docError, id, inner, detail string) {
	*errs = append(*errs, docError{ID: id, Error: errorBody{Code: errInvalidArgument, Message: msgInvalidDocument,
		InnerError: &innerBody{Code: inner, Message: detail}}})
}

func (b *batch) stats(text string) *docStats {
	if !b.showStats {
		return nil
	}
	n := textElements(text)
	t := max(1, (n+999)/1000)
	b.transactions += t
	return &docStats{CharactersCount: n, TransactionsCount: t}
}

func (b *batch) requestStats() *requestStats {
	if !b.showStats {
		return nil
	}
	return &requestStats{DocumentsCount: b.docs, ValidDocumentsCount: b.valid,
		ErroneousDocumentsCount: b.docs - b.valid, TransactionsCount: b.transactions}
}

// checkAPIVersion accepts 2022-05-01 (the first GA version of analyze-text;
// azure-ai-textanalytics 5.2 sends it, 5.3 betas send 2022-10-01-preview)
// and every later dated version, with or without a -preview suffix. For
// language detection and sentiment the shapes have not changed since.
func checkAPIVersion(v string) *requestError {
	if v == "" {
		return badRequest(innerParameterValue, "The api-version query parameter is required (%s or later).", MinAPIVersion)
	}
	date := strings.TrimSuffix(v, "-preview")
	if !isDate(date) || date < MinAPIVersion {
		return badRequest(innerParameterValue, "The api-version '%s' is not supported. Use %s or later.", clip(v, 32), MinAPIVersion)
	}
	return nil
}

// isDate reports whether s has the form YYYY-MM-DD (digits only).
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 4 || i == 7 {
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s[5:7] >= "01" && s[5:7] <= "12" && s[8:] >= "01" && s[8:] <= "31"
}

func parseIndexType(s string, v3 bool) (indexUnit, *requestError) {
	switch s {
	case "", stringIndexUTF16:
		return unitUTF16, nil
	case stringIndexCodePoint:
		return unitCodePoint, nil
	case stringIndexTextElements, stringIndexTextElement:
		return unitTextElement, nil
	}
	elements := stringIndexTextElements
	if v3 {
		elements = stringIndexTextElement
	}
	return 0, badRequest(innerParameterValue, "Invalid stringIndexType %q. Possible values are: %s, %s, %s.",
		clip(s, 32), elements, stringIndexCodePoint, stringIndexUTF16)
}

// validCountryHint accepts an ISO 3166-1 alpha-2 code (any case) or "none"
// (no hint), as Azure does; "" means the default.
func validCountryHint(s string) bool {
	if s == "" || strings.EqualFold(s, "none") {
		return true
	}
	return len(s) == 2 && isLetter(s[0]) && isLetter(s[1])
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// supportedSentimentLanguage: the VADER lexicon is English.
func supportedSentimentLanguage(lang string) bool {
	l := strings.ToLower(lang)
	return l == "en" || strings.HasPrefix(l, "en-")
}

// clip bounds an echoed client value.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
