package jsonutf8

import (
	"encoding/json"
	"testing"
)

func TestValid(t *testing.T) {
	for body, want := range map[string]bool{
		`{"v":"plain"}`:                    true,
		`{"v":"caf\u00e9 \u20ac"}`:         true,
		`{"v":"\ud83d\ude00"}`:             true, // a pair: 😀
		`{"v":"\uD83D\uDE00"}`:             true,
		`{"v":"a\\ud800"}`:                 true, // an escaped backslash, then text
		`{"v":"a\\\ud83d\ude00"}`:          true,
		`{"v":"pw-\ud800-end"}`:            false,
		`{"v":"v\udc00"}`:                  false,
		`{"v":"\ud800"}`:                   false,
		`{"v":"\ud800\u0041"}`:             false,
		`{"v":"\ud800\ud800"}`:             false,
		`{"v":"\ude00\ud83d"}`:             false,
		`{"k\ud800":"v"}`:                  false, // names too
		"{\"v\":\"\xed\xa0\x80\"}":         false, // CESU-8 bytes
		"{\"v\":\"\xff\"}":                 false,
		`{"v":"\u12"}`:                     true, // not JSON: the decoder refuses it
		`{"v":"\`:                          true,
		`{"v":"\ud800\`:                    false,
		`{"v":"trailing \ud83d\ude00 ok"}`: true,
	} {
		if got := Valid([]byte(body)); got != want {
			t.Errorf("Valid(%s) = %v, want %v", body, got, want)
		}
	}
}

// FuzzValid holds Valid to its promise: a body it passes decodes with no
// U+FFFD that was not sent.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`"\ud83d\ude00"`, `"\ud800"`, `"a\\ud800"`, `"\ufffd"`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s string
		if json.Unmarshal(b, &s) != nil || !Valid(b) {
			return
		}
		back, _ := json.Marshal(s)
		var again string
		if json.Unmarshal(back, &again) != nil || again != s {
			t.Fatalf("%q: %q round-trips as %q", b, s, again)
		}
		// No U+FFFD unless the body spelled one.
		if containsReplacement(s) && !spellsReplacement(b) {
			t.Fatalf("%q decoded with U+FFFD: %q", b, s)
		}
	})
}

func containsReplacement(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' {
			return true
		}
	}
	return false
}

func spellsReplacement(b []byte) bool {
	s := string(b)
	return containsReplacement(s) || containsFold(s, `\ufffd`)
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		match := true
		for j := 0; j < len(sub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
