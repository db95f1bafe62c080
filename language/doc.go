// Package language is Gatehouse's built-in Azure AI Language service: the
// synchronous `analyze-text` operation with the LanguageDetection and
// SentimentAnalysis kinds, wire-compatible with @azure/ai-language-text and
// the REST API (azure-wire.md §7.1). It runs offline: detection uses
// whatlanggo's trigram profiles, sentiment uses VADER (govader), which is an
// English lexicon — other sentiment languages are refused per document with
// Azure's UnsupportedLanguageCode, as Azure refuses a language it lacks.
// Opinion mining (opinionMining=true) links targets to assessments with
// Azure's JSON references, found by a small rule set over VADER's lexicon
// (opinion.go). The older Text Analytics v3.0/v3.1 routes share the same
// analysis (TextAnalyticsV3).
//
// The gateway authenticates and authorizes the caller, then hands the
// request to Service.AnalyzeText. The flow of one request:
//
//	api-version check → body (≤ 1 MiB) → JSON → kind → parameters
//	→ batch checks (documents present, ≤ limit, unique ids)   request-level 400
//	→ per document: text present, ≤ 5,120 text elements, hint   per-document error
//	→ analyze → results in input order, errors in "errors"
//
// Limits and codes follow the Language service's published data limits:
//
//	Limit                          LanguageDetection   SentimentAnalysis
//	documents per request          1,000               10
//	text elements per document     5,120               5,120
//	request body                   1 MiB               1 MiB
//
// Request-level errors are {"error":{"code","message","innererror":{"code",
// "message"}}} with code InvalidRequest (InvalidArgument for a too-large
// batch or duplicate ids) and the inner code naming the problem
// (InvalidRequestBodyFormat, MissingInputDocuments, InvalidDocumentBatch,
// InvalidParameterValue, ModelVersionIncorrect, InvalidDocument). Document
// errors carry code InvalidArgument and inner InvalidDocument,
// UnsupportedLanguageCode or InvalidCountryHint.
//
// Offsets and lengths of sentences are counted in the unit the request's
// stringIndexType names: UTF-16 code units by default (what JavaScript and
// .NET index by), Unicode code points, or text elements (extended grapheme
// clusters, approximated: a base character with its combining marks,
// variation selectors, zero-width-joiner sequences and flag pairs).
package language
