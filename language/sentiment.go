package language

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jonreiter/govader"
)

type sentimentResults struct {
	Statistics   *requestStats       `json:"statistics,omitempty"`
	Documents    []sentimentDocument `json:"documents"`
	Errors       []docError          `json:"errors"`
	ModelVersion string              `json:"modelVersion"`
}

type sentimentDocument struct {
	ID               string     `json:"id"`
	Sentiment        string     `json:"sentiment"`
	Statistics       *docStats  `json:"statistics,omitempty"`
	ConfidenceScores scores     `json:"confidenceScores"`
	Sentences        []sentence `json:"sentences"`
	Warnings         []any      `json:"warnings"`
}

type sentence struct {
	Sentiment        string `json:"sentiment"`
	ConfidenceScores scores `json:"confidenceScores"`
	Offset           int    `json:"offset"`
	Length           int    `json:"length"`
	Text             string `json:"text"`
	// Targets and Assessments are present when the request asked for
	// opinion mining (opinion.go).
	Targets     *[]any `json:"targets,omitempty"`
	Assessments *[]any `json:"assessments,omitempty"`
}

type scores struct {
	Positive float64 `json:"positive"`
	Neutral  float64 `json:"neutral"`
	Negative float64 `json:"negative"`
}

const (
	positive = "positive"
	neutral  = "neutral"
	negative = "negative"
	mixed    = "mixed"
)

// analyzer scores sentences with VADER. PolarityScores only reads the
// lexicon, so one analyzer serves concurrent requests.
type analyzer struct {
	vader *govader.SentimentIntensityAnalyzer
}

func newAnalyzer() *analyzer {
	return &analyzer{vader: govader.NewSentimentIntensityAnalyzer()}
}

// analyzeDocument splits text into sentences, scores each, and derives the
// document's sentiment as Azure does: the mean of the sentence scores, and
// the label from the sentences' labels. docIndex is the document's place in
// the response, which opinion mining's references name.
func (a *analyzer) analyzeDocument(text string, unit indexUnit, opinions bool, docIndex int) sentimentDocument {
	spans := splitSentences(text)
	doc := sentimentDocument{Sentences: make([]sentence, 0, len(spans)), Warnings: []any{}}
	var sum scores
	var pos, neg bool
	for _, sp := range spans {
		t := text[sp.start:sp.end]
		// The offset counts everything before the sentence, so sentences
		// tile the text exactly in every unit.
		s := sentence{Text: t, Offset: unit.count(text[:sp.start]), Length: unit.count(t)}
		s.ConfidenceScores = a.score(t)
		s.Sentiment = label(s.ConfidenceScores)
		if opinions {
			a.mineOpinions(&s, text, sp.start, sp.end, unit, docIndex, len(doc.Sentences))
		}
		pos = pos || s.Sentiment == positive
		neg = neg || s.Sentiment == negative
		sum.Positive += s.ConfidenceScores.Positive
		sum.Neutral += s.ConfidenceScores.Neutral
		sum.Negative += s.ConfidenceScores.Negative
		doc.Sentences = append(doc.Sentences, s)
	}
	n := float64(len(spans))
	if n == 0 {
		doc.ConfidenceScores = scores{Neutral: 1}
		doc.Sentiment = neutral
		return doc
	}
	doc.ConfidenceScores = normalize(sum.Positive/n, sum.Negative/n)
	// Azure's document label follows the sentence labels: positive (or
	// negative) when some sentence is and the rest are neutral, mixed when
	// both occur, neutral when all are.
	switch {
	case pos && neg:
		doc.Sentiment = mixed
	case pos:
		doc.Sentiment = positive
	case neg:
		doc.Sentiment = negative
	default:
		doc.Sentiment = neutral
	}
	return doc
}

// score maps VADER's compound score c ∈ [-1, 1] to three confidences that
// sum to 1: the polar class gets √|c| (so mild sentiment still leans), the
// neutral class the rest.
func (a *analyzer) score(text string) scores {
	c := a.vader.PolarityScores(strings.TrimSpace(text)).Compound
	s := math.Sqrt(math.Abs(c))
	if c >= 0 {
		return normalize(s, 0)
	}
	return normalize(0, s)
}

// normalize rounds to two decimals, as Azure reports, keeping the sum at 1.
func normalize(pos, neg float64) scores {
	p := math.Round(pos*100) / 100
	n := math.Round(neg*100) / 100
	return scores{Positive: p, Negative: n, Neutral: math.Round((1-p-n)*100) / 100}
}

// label is the class with the highest confidence; ties go to neutral.
func label(s scores) string {
	switch {
	case s.Positive > s.Neutral && s.Positive >= s.Negative:
		return positive
	case s.Negative > s.Neutral && s.Negative > s.Positive:
		return negative
	}
	return neutral
}

// span is a byte range of the text.
type span struct{ start, end int }

// splitSentences tiles text into sentences: a sentence ends after a run of
// terminators (. ! ? … and their full-width forms) and closing quotes or
// brackets that is followed by white space or the end, or at a line break.
// The white space after a sentence belongs to it (Azure's sentence texts end
// with it), leading white space to the first sentence; a decimal point or
// an abbreviation followed by a letter does not end a sentence.
func splitSentences(text string) []span {
	var out []span
	start := 0
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r == '\n' || r == '\r' || r == '\u2029' {
			i = skipSpace(text, i)
			out = appendSpan(out, text, start, i)
			start = i
			continue
		}
		if !isTerminator(r) {
			continue
		}
		if r == '.' && abbreviation(text[start:i-size]) {
			continue // "Mr. Smith went to Washington."
		}
		// Absorb further terminators and closers: "?!", "...", `."`.
		for i < len(text) {
			r2, s2 := utf8.DecodeRuneInString(text[i:])
			if !isTerminator(r2) && !isCloser(r2) {
				break
			}
			i += s2
		}
		if i < len(text) {
			r2, _ := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsSpace(r2) && !isFullWidthTerminator(r) {
				continue
			}
		}
		i = skipSpace(text, i)
		out = appendSpan(out, text, start, i)
		start = i
	}
	return appendSpan(out, text, start, len(text))
}

// titleAbbreviations are the abbreviations a name or an example follows,
// whose period does not end a sentence (lower case, without the period).
var titleAbbreviations = set("mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "mt", "rev", "gen", "capt", "sgt",
	"lt", "col", "hon", "vs", "e.g", "i.e", "cf", "approx")

// abbreviation reports whether before (the text before a period) ends in a
// word of titleAbbreviations.
func abbreviation(before string) bool {
	i := strings.LastIndexFunc(before, func(r rune) bool { return unicode.IsSpace(r) || r == '(' || r == '"' || r == '“' })
	w := before
	if i >= 0 {
		_, size := utf8.DecodeRuneInString(before[i:])
		w = before[i+size:]
	}
	return w != "" && titleAbbreviations[strings.ToLower(w)]
}

// appendSpan adds [start,end) unless it is only white space, which is then
// given to the previous sentence.
func appendSpan(out []span, text string, start, end int) []span {
	if start >= end {
		return out
	}
	if strings.TrimSpace(text[start:end]) == "" {
		if len(out) > 0 {
			out[len(out)-1].end = end
		}
		return out
	}
	return append(out, span{start, end})
}

func skipSpace(text string, i int) int {
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

func isTerminator(r rune) bool {
	switch r {
	case '.', '!', '?', '…', '‼', '⁇', '⁈', '⁉':
		return true
	}
	return isFullWidthTerminator(r)
}

// isFullWidthTerminator: CJK text puts no space after a sentence.
func isFullWidthTerminator(r rune) bool {
	switch r {
	case '。', '！', '？', '｡':
		return true
	}
	return false
}

func isCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '”', '’', '»', '›', '」', '』', '）':
		return true
	}
	return false
}
