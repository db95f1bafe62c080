package language

import (
	"unicode"
	"unicode/utf8"
)

// indexUnit is what offsets and lengths count (stringIndexType).
type indexUnit int

const (
	unitUTF16 indexUnit = iota
	unitCodePoint
	unitTextElement
)

// count returns the length of s in unit.
func (u indexUnit) count(s string) int {
	switch u {
	case unitCodePoint:
		return utf8.RuneCountInString(s)
	case unitTextElement:
		return textElements(s)
	default:
		n := 0
		for _, r := range s {
			if r >= 0x10000 {
				n += 2 // a surrogate pair
			} else {
				n++
			}
		}
		return n
	}
}

// textElements counts extended grapheme clusters, approximately: a cluster
// is a base character followed by combining marks, variation selectors,
// emoji modifiers and tag characters; a zero-width joiner glues the next
// character on; two regional indicators form one flag; CR LF is one
// element. This matches .NET's StringInfo (which Azure counts with) for the
// scripts and emoji sequences seen in practice.
func textElements(s string) int {
	n := 0
	prev := rune(-1)
	ri := 0 // regional indicators in the current run
	for _, r := range s {
		joins := false
		switch {
		case prev == -1:
		case prev == 0x200D: // a zero-width joiner glues the next character on
			joins = true
		case prev == '\r' && r == '\n':
			joins = true
		case extends(r):
			joins = true
		case isRegionalIndicator(r) && ri%2 == 1: // the second half of a flag
			joins = true
		}
		if !joins {
			n++
		}
		if isRegionalIndicator(r) {
			ri++
		} else {
			ri = 0
		}
		prev = r
	}
	return n
}

// extends reports whether r continues the cluster before it.
func extends(r rune) bool {
	switch {
	case r == 0x200D: // zero-width joiner
		return true
	case 0xFE00 <= r && r <= 0xFE0F, 0xE0100 <= r && r <= 0xE01EF: // variation selectors
		return true
	case 0x1F3FB <= r && r <= 0x1F3FF: // emoji skin-tone modifiers
		return true
	case 0xE0020 <= r && r <= 0xE007F: // tag characters (subdivision flags)
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegionalIndicator(r rune) bool { return 0x1F1E6 <= r && r <= 0x1F1FF }
