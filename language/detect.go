package language

import (
	"math"

	"github.com/abadojack/whatlanggo"
)

type detectionResults struct {
	Statistics   *requestStats      `json:"statistics,omitempty"`
	Documents    []detectedDocument `json:"documents"`
	Errors       []docError         `json:"errors"`
	ModelVersion string             `json:"modelVersion"`
}

type detectedDocument struct {
	ID               string           `json:"id"`
	DetectedLanguage detectedLanguage `json:"detectedLanguage"`
	Warnings         []any            `json:"warnings"`
	Statistics       *docStats        `json:"statistics,omitempty"`
}

type detectedLanguage struct {
	Name            string  `json:"name"`
	ISO6391Name     string  `json:"iso6391Name"`
	ConfidenceScore float64 `json:"confidenceScore"`
}

// unknownLanguage is Azure's answer for text in no recognizable language
// (digits, emoticons, punctuation).
var unknownLanguage = detectedLanguage{Name: "(Unknown)", ISO6391Name: "(Unknown)", ConfidenceScore: 0}

// languages maps whatlanggo's languages to the name and code Azure reports.
// Azure names a few differently from whatlanggo (Chinese_Simplified,
// Norwegian, Persian); languages without an ISO 639-1 code report their
// ISO 639-3 code, as Azure does for e.g. "ceb".
var languages = func() map[whatlanggo.Lang]detectedLanguage {
	m := make(map[whatlanggo.Lang]detectedLanguage, len(whatlanggo.Langs))
	for l, name := range whatlanggo.Langs {
		code := l.Iso6391()
		if code == "" {
			code = l.Iso6393()
		}
		m[l] = detectedLanguage{Name: name, ISO6391Name: code}
	}
	for l, d := range map[whatlanggo.Lang]detectedLanguage{
		whatlanggo.Cmn: {Name: "Chinese_Simplified", ISO6391Name: "zh_chs"},
		whatlanggo.Nob: {Name: "Norwegian", ISO6391Name: "no"},
		whatlanggo.Nno: {Name: "Norwegian Nynorsk", ISO6391Name: "nn"},
		whatlanggo.Pes: {Name: "Persian", ISO6391Name: "fa"},
		whatlanggo.Ydd: {Name: "Yiddish", ISO6391Name: "yi"},
		whatlanggo.Sin: {Name: "Sinhala", ISO6391Name: "si"},
		whatlanggo.Slv: {Name: "Slovenian", ISO6391Name: "sl"},
		whatlanggo.Hat: {Name: "Haitian", ISO6391Name: "ht"},
		whatlanggo.Nya: {Name: "Chichewa", ISO6391Name: "ny"},
	} {
		m[l] = d
	}
	return m
}()

// detect returns the language of text with a confidence rounded to two
// decimals, or (Unknown): whatlanggo's trigram answer, corrected for short
// texts by a vote of common words (words.go).
func detect(text string) detectedLanguage {
	info := whatlanggo.Detect(text)
	d, ok := languages[info.Lang]
	if !ok || info.Confidence <= 0 {
		return refine(text, unknownLanguage)
	}
	d.ConfidenceScore = math.Round(info.Confidence*100) / 100
	if d.ConfidenceScore == 0 {
		d.ConfidenceScore = 0.01
	}
	return refine(text, d)
}
