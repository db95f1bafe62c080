package h1

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpfield"
)

// TestValidTarget holds the word-at-a-time check to the byte loop: every
// byte value at every position of targets longer and shorter than a word.
func TestValidTarget(t *testing.T) {
	want := func(t []byte, spaces bool) bool {
		for _, c := range t {
			if c < ' ' || c == ' ' && !spaces || c >= 0x7f {
				return false
			}
		}
		return true
	}
	for _, n := range []int{1, 7, 8, 9, 16, 23} {
		for pos := range n {
			for b := range 256 {
				tg := bytes.Repeat([]byte("a"), n)
				tg[pos] = byte(b)
				for _, spaces := range []bool{false, true} {
					if got := validTarget(tg, spaces); got != want(tg, spaces) {
						t.Fatalf("validTarget(%q, %v) = %v", tg, spaces, got)
					}
				}
			}
		}
	}
}

// TestPlainURLWords holds plainURL's word-at-a-time path test to the
// table: every byte value at every place of paths around a word long.
func TestPlainURLWords(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 16, 23, 50} {
		for pos := range n {
			for b := range 256 {
				if b == '?' {
					continue // the query's start, not a byte of the path
				}
				p := []byte(("/ai/bench-1/openai_x/deployments/chat.v2/completions/" + "xxxxxxxxxxxxxxxxxxxxxxx")[:n])
				p[0] = '/'
				if pos > 0 {
					p[pos] = byte(b)
				}
				want := true
				for _, c := range p {
					want = want && httpfield.IsPlainPathChar(c)
				}
				var u url.URL
				if got := plainURL(string(p)+"?q=1", &u) != nil; got != want {
					t.Fatalf("plainURL(%q) plain = %v, want %v", p, got, want)
				}
			}
		}
	}
}
