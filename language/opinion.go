package language

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Opinion mining (aspect-based sentiment): for each sentence, the
// assessments (opinion words) and the targets they are about, linked by
// JSON references as Azure links them, so the SDKs can build their
// mined-opinion views:
//
//	"targets":     [{"sentiment","confidenceScores":{"positive","negative"},"offset","length","text",
//	                 "relations":[{"relationType":"assessment","ref":"#/documents/0/sentences/0/assessments/0"}]}]
//	"assessments": [{"sentiment","confidenceScores","offset","length","text","isNegated"}]
//
// Offsets are counted from the start of the document, in the request's
// unit. Azure runs a trained model; this is a small rule set over VADER's
// lexicon, for English:
//
//   - an assessment is a word whose lexicon valence is at least 1 in size,
//     negated (isNegated, sentiment flipped) when one of the three words
//     before it is a negator;
//   - its targets are the noun phrase before a linking verb it follows
//     ("the food and the service were [very] good": food, service), or
//     else the word after it, past a determiner ("great food", "loved the
//     pool");
//   - pronouns, determiners and other opinion words are never targets, and
//     an assessment without a target is not reported (the SDKs show only
//     target–assessment pairs).
type target struct {
	Sentiment        string      `json:"sentiment"`
	ConfidenceScores polarScores `json:"confidenceScores"`
	Offset           int         `json:"offset"`
	Length           int         `json:"length"`
	Text             string      `json:"text"`
	Relations        []relation  `json:"relations"`
}

type relation struct {
	RelationType string `json:"relationType"`
	Ref          string `json:"ref"`
}

type assessment struct {
	Sentiment        string      `json:"sentiment"`
	ConfidenceScores polarScores `json:"confidenceScores"`
	Offset           int         `json:"offset"`
	Length           int         `json:"length"`
	Text             string      `json:"text"`
	IsNegated        bool        `json:"isNegated"`
}

// polarScores are a target's or assessment's confidences: no neutral.
type polarScores struct {
	Positive float64 `json:"positive"`
	Negative float64 `json:"negative"`
}

// word is a token of a sentence: its text and byte span in the document.
type word struct {
	text, lower string
	start, end  int
}

// words splits text[start:end] into words (letters, digits, and inner
// apostrophes or hyphens), with document byte offsets.
func words(text string, start, end int) []word {
	var out []word
	inWord := false
	ws := 0
	// Marks belong to the letter before them: "Cafe\u0301" is one word.
	isWordRune := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || inWord && unicode.IsMark(r) }
	for i := start; i < end; {
		r, size := utf8.DecodeRuneInString(text[i:])
		joiner := (r == '\'' || r == '’' || r == '-') && inWord && i+size < end
		if joiner {
			next, _ := utf8.DecodeRuneInString(text[i+size:])
			joiner = isWordRune(next)
		}
		switch {
		case isWordRune(r) || joiner:
			if !inWord {
				inWord, ws = true, i
			}
		case inWord:
			out = append(out, word{text: text[ws:i], lower: strings.ToLower(text[ws:i]), start: ws, end: i})
			inWord = false
		}
		i += size
	}
	if inWord {
		out = append(out, word{text: text[ws:end], lower: strings.ToLower(text[ws:end]), start: ws, end: end})
	}
	return out
}

var (
	linkingVerbs = set("is", "was", "are", "were", "be", "been", "being", "seems", "seemed", "seem", "looks", "looked",
		"look", "feels", "felt", "feel", "tastes", "tasted", "taste", "sounds", "sounded", "smells", "smelled",
		"remains", "remained", "became", "becomes", "got", "gets", "get", "'s", "’s")
	intensifiers = set("very", "really", "so", "too", "quite", "extremely", "pretty", "absolutely", "totally",
		"incredibly", "super", "rather", "fairly", "somewhat", "truly", "just", "still", "always", "mostly",
		"completely", "utterly", "highly", "not", "never", "n't", "also", "all", "a", "bit", "little", "kind", "of")
	negators = set("not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "hardly",
		"barely", "isn't", "wasn't", "aren't", "weren't", "don't", "doesn't", "didn't", "can't", "cannot",
		"couldn't", "won't", "wouldn't", "shouldn't", "ain't", "isn’t", "wasn’t", "aren’t", "weren’t", "don’t",
		"doesn’t", "didn’t", "can’t", "couldn’t", "won’t", "wouldn’t", "shouldn’t")
	// notTargets are words that never name what an opinion is about.
	notTargets = set("i", "me", "my", "mine", "you", "your", "yours", "he", "him", "his", "she", "her", "hers",
		"it", "its", "we", "us", "our", "ours", "they", "them", "their", "theirs", "this", "that", "these",
		"those", "there", "here", "what", "which", "who", "whom", "whose", "the", "a", "an", "and", "or", "but",
		"so", "if", "then", "than", "to", "of", "in", "on", "at", "by", "for", "with", "from", "as", "about",
		"everything", "something", "anything", "nothing", "everyone", "someone", "anyone", "one", "all",
		"some", "any", "each", "every", "both", "other", "very", "really", "too", "quite", "not", "no", "also",
		"just", "overall", "definitely", "will", "would", "could", "should", "can", "may", "might", "must",
		"do", "does", "did", "have", "has", "had", "am", "'m", "’m")
	determiners = set("the", "a", "an", "this", "that", "these", "those", "my", "our", "your", "their", "his",
		"her", "its", "some", "all", "every", "each")
)

func set(ws ...string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// mineOpinions fills s.Targets and s.Assessments for the sentence
// text[start:end], the docIndex-th document and si-th sentence of the
// response.
func (a *analyzer) mineOpinions(s *sentence, text string, start, end int, unit indexUnit, docIndex, si int) {
	ws := words(text, start, end)
	type found struct {
		w       word
		valence float64
		negated bool
		targets []int // indexes into ws
	}
	var opinions []found
	for i, w := range ws {
		v, ok := a.vader.Lexicon[w.lower]
		if !ok || math.Abs(v) < 1 || negators[w.lower] {
			continue
		}
		f := found{w: w, valence: v}
		for j := max(0, i-3); j < i; j++ {
			if negators[ws[j].lower] || strings.HasSuffix(ws[j].lower, "n't") || strings.HasSuffix(ws[j].lower, "n’t") {
				f.negated = true
			}
		}
		if f.negated {
			f.valence = -f.valence
		}
		f.targets = a.targetsOf(ws, i)
		if len(f.targets) > 0 {
			opinions = append(opinions, f)
		}
	}
	targets, assessments := []any{}, []any{}
	s.Targets, s.Assessments = &targets, &assessments
	if len(opinions) == 0 {
		return
	}
	// One target entry per target word, related to every assessment of it.
	type targetAcc struct {
		w        word
		valences []float64
		refs     []relation
	}
	var order []int
	acc := map[int]*targetAcc{}
	for ai, f := range opinions {
		ref := "#/documents/" + strconv.Itoa(docIndex) + "/sentences/" + strconv.Itoa(si) + "/assessments/" + strconv.Itoa(ai)
		for _, ti := range f.targets {
			t, ok := acc[ti]
			if !ok {
				t = &targetAcc{w: ws[ti]}
				acc[ti] = t
				order = append(order, ti)
			}
			t.valences = append(t.valences, f.valence)
			t.refs = append(t.refs, relation{RelationType: "assessment", Ref: ref})
		}
		assessments = append(assessments, assessment{Sentiment: polarLabel(f.valence), ConfidenceScores: polar(f.valence),
			Offset: unit.count(text[:f.w.start]), Length: unit.count(f.w.text), Text: f.w.text, IsNegated: f.negated})
	}
	for _, ti := range order {
		t := acc[ti]
		var pos, neg bool
		var sum float64
		for _, v := range t.valences {
			pos, neg, sum = pos || v > 0, neg || v < 0, sum+v
		}
		label := polarLabel(sum)
		if pos && neg {
			label = mixed
		}
		targets = append(targets, target{Sentiment: label, ConfidenceScores: polar(sum / float64(len(t.valences))),
			Offset: unit.count(text[:t.w.start]), Length: unit.count(t.w.text), Text: t.w.text, Relations: t.refs})
	}
	s.Targets, s.Assessments = &targets, &assessments
}

// targetsOf finds what the assessment ws[i] is about: the noun phrase
// before a linking verb that precedes it (through intensifiers and
// negators), else the word after it (past determiners).
func (a *analyzer) targetsOf(ws []word, i int) []int {
	j := i - 1
	for j >= 0 && intensifiers[ws[j].lower] {
		j--
	}
	// "was slow and rude": past the other adjectives of a coordination.
	for n := 0; n < 3 && j >= 2 && (ws[j].lower == "and" || ws[j].lower == "or"); n++ {
		j -= 2
		for j >= 0 && intensifiers[ws[j].lower] {
			j--
		}
	}
	if j >= 1 && linkingVerbs[ws[j].lower] {
		var out []int
		k := j - 1
		for k >= 0 {
			if a.canBeTarget(ws[k]) {
				out = append(out, k)
			} else {
				break
			}
			// "the food and (the) service were": keep going through "and".
			k--
			for k >= 0 && determiners[ws[k].lower] {
				k--
			}
			if k < 0 || ws[k].lower != "and" {
				break
			}
			k--
			for k >= 0 && determiners[ws[k].lower] {
				k--
			}
			// "the service was slow and the waiter was rude": a word
			// after a linking verb is an earlier clause's predicate.
			p := k - 1
			for p >= 0 && intensifiers[ws[p].lower] {
				p--
			}
			if p >= 0 && linkingVerbs[ws[p].lower] {
				break
			}
		}
		for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
			out[l], out[r] = out[r], out[l]
		}
		return out
	}
	k := i + 1
	for k < len(ws) && determiners[ws[k].lower] {
		k++ // "loved the pool"
	}
	if k < len(ws) && a.canBeTarget(ws[k]) {
		return []int{k}
	}
	return nil
}

func (a *analyzer) canBeTarget(w word) bool {
	if notTargets[w.lower] || linkingVerbs[w.lower] || negators[w.lower] || len(w.lower) < 2 {
		return false
	}
	if _, opinion := a.vader.Lexicon[w.lower]; opinion {
		return false
	}
	r, _ := utf8.DecodeRuneInString(w.lower)
	return unicode.IsLetter(r)
}

// polar maps a lexicon valence (-4…4) to a target's or assessment's two
// confidences, as the sentence scores map VADER's compound score.
func polar(v float64) polarScores {
	c := math.Min(math.Abs(v)/4, 1)
	strong := math.Round((0.5+0.5*math.Sqrt(c))*100) / 100
	if v >= 0 {
		return polarScores{Positive: strong, Negative: math.Round((1-strong)*100) / 100}
	}
	return polarScores{Positive: math.Round((1-strong)*100) / 100, Negative: strong}
}

func polarLabel(v float64) string {
	if v < 0 {
		return negative
	}
	return positive
}
