package accounts

import "testing"

// TestLowerASCII holds the word-at-a-time test to a byte loop: every byte
// value at every position of strings longer and shorter than a word.
func TestLowerASCII(t *testing.T) {
	base := "0f8fad5b-d9cb-469f-a165-70867728950e/chat-gpt4o"
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for b := range 256 {
				p := []byte(base[:n])
				p[pos] = byte(b)
				want := true
				for _, c := range p {
					want = want && c < 0x80 && (c < 'A' || c > 'Z')
				}
				if got := lowerASCII(string(p)); got != want {
					t.Fatalf("lowerASCII(%q) = %v, want %v", p, got, want)
				}
			}
		}
	}
}
