package httpfield

import (
	"net/url"
	"testing"
)

// TestPlainPath holds the word-at-a-time test to url.URL's own: a path is
// plain when its escaped form is itself. Every byte value at every
// position of paths longer and shorter than a word.
func TestPlainPath(t *testing.T) {
	base := "/ai/bench-1/openai_x/deployments/chat.v2/completions/xxxxxxxxxxxxxxxxxxxxxxx"
	for n := 1; n <= 40; n++ {
		for pos := range n {
			for b := range 256 {
				if b == '?' || b == '#' || b == '%' {
					continue // not a byte of a decoded path's escaped form
				}
				p := []byte(base[:n])
				p[pos] = byte(b)
				u := url.URL{Path: string(p)}
				// ("*" alone EscapedPath leaves as it is: OPTIONS *.)
				want := u.EscapedPath() == string(p) && string(p) != "*"
				if got := PlainPath(string(p)); got != want {
					t.Fatalf("PlainPath(%q) = %v, url.URL escapes it: %v", p, got, !want)
				}
			}
		}
	}
}
