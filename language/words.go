package language

import (
	"math"
	"strings"

	"github.com/abadojack/whatlanggo"
)

// commonWords are very frequent words (function words, greetings) of the
// languages people most often send, for short texts: trigram profiles need
// more text than "Hello world" (whatlanggo calls that Dutch, "Good
// morning" Uyghur, "Bonjour" Uzbek), while a handful of such words settle
// it. A word may belong to several languages; it then votes for each.
var commonWords = map[whatlanggo.Lang]string{
	whatlanggo.Eng: "the be to of and a in that have i it for not on with he as you do at this but his by from they we " +
		"say her she or an will my one all would there their what so up out if about who get which go me is are was were " +
		"hello hi hey world good morning afternoon evening night thank thanks please yes love day time lovely great " +
		"very much how today welcome nice happy bad terrible wonderful english",
	whatlanggo.Fra: "le la les de des du un une et est je tu il elle nous vous ils elles que qui ne pas pour dans sur avec ce " +
		"cette ces au aux bonjour salut merci monde tout tous bien oui très mais où comment allez suis sont bonsoir " +
		"beaucoup aujourd'hui c'est j'ai n'est voici phrase",
	whatlanggo.Spa: "el la los las de del un una y es en que por para con no se lo su al como más pero sus le ya muy hola " +
		"mundo gracias buenos buenas días noches tardes sí esto esta este está estoy prueba qué yo tú bien todo todos",
	whatlanggo.Deu: "der die das und ist nicht ein eine ich du er sie es wir ihr zu den dem mit von auf für sich auch wie " +
		"aber hallo welt guten tag morgen abend danke bitte ja nein sehr gut bin dies diese heute ist's alles",
	whatlanggo.Ita: "il lo la gli le di del della che è e un una per non con sono mi ti ci si ma come anche ciao mondo " +
		"buongiorno buonasera grazie prego tutti questo questa molto bene sì sei grande",
	whatlanggo.Por: "o a os as de do da dos das um uma e é que não em no na para com por mais como mas ao olá mundo " +
		"obrigado obrigada bom dia boa tarde noite sim você isto isso este esta muito está estou tudo",
	whatlanggo.Nld: "de het een en van ik je is dat niet op te zijn met voor er maar ook als dit wat hallo wereld " +
		"goedemorgen goedenavond dank bedankt ja nee goed heel hoe gaat mij",
	whatlanggo.Pol: "i w nie na się z jest to że do co jak ale tak czy dzień dobry cześć świat dziękuję proszę bardzo " +
		"jestem ten ta witaj",
}

// wordIndex maps each common word to the languages it belongs to.
var wordIndex = func() map[string][]whatlanggo.Lang {
	m := map[string][]whatlanggo.Lang{}
	for l, ws := range commonWords {
		for _, w := range strings.Fields(ws) {
			m[w] = append(m[w], l)
		}
	}
	return m
}()

// voteWords counts, per language, the text's words that are common words
// of it, and returns the language with strictly the most votes, its vote
// count and the number of words; ok is false without a clear winner.
func voteWords(text string) (lang whatlanggo.Lang, best, n int, ok bool) {
	votes := map[whatlanggo.Lang]int{}
	for _, w := range words(text, 0, len(text)) {
		if w.lower[0] >= '0' && w.lower[0] <= '9' {
			continue
		}
		n++
		for _, l := range wordIndex[strings.ReplaceAll(w.lower, "’", "'")] {
			votes[l]++
		}
	}
	second := 0
	for l, v := range votes {
		switch {
		case v > best:
			lang, second, best = l, best, v
		case v > second:
			second = v
		}
	}
	return lang, best, n, best > 0 && best > second
}

// refine corrects whatlanggo's answer for short or function-word-rich text
// with the common-word vote: when the vote has a clear winner that covers
// at least 30% of the words, or the text has at most four words, the
// winner is the answer, with a confidence that grows with its share.
func refine(text string, d detectedLanguage) detectedLanguage {
	lang, best, n, ok := voteWords(text)
	if !ok || n == 0 {
		return d
	}
	share := float64(best) / float64(n)
	if share < 0.3 && n > 4 {
		return d
	}
	v, known := languages[lang]
	if !known {
		return d
	}
	v.ConfidenceScore = math.Round(math.Min(1, 0.6+0.4*share)*100) / 100
	if v.ISO6391Name == d.ISO6391Name && d.ConfidenceScore > v.ConfidenceScore {
		return d
	}
	return v
}
