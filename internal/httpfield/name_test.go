package httpfield

import (
	"net/textproto"
	"strings"
	"testing"
)

// TestCanonical holds Canonical equal to textproto.CanonicalMIMEHeaderKey
// for every common name in several cases, and for names that are not
// common, not canonical or not tokens.
func TestCanonical(t *testing.T) {
	var names []string
	for _, n := range common {
		if textproto.CanonicalMIMEHeaderKey(n) != n {
			t.Errorf("common name %q is not canonical", n)
		}
		names = append(names, n, strings.ToLower(n), strings.ToUpper(n), swapCase(n))
	}
	names = append(names, "", "a", "-", "X", "x-custom", "X-Custom", "x-CUSTOM-thing", "Content-Typo",
		"content-typ", "content type", "Content Type", "contenT-type\x00", "Ocp-Apim-Subscription-Keys",
		"Ocp_Apim_Subscription_Key", "1password", "@ccept", "`ccept", "Accept\x7f", "ACCEPT-ENCODING",
		"héllo", "ünknown-name", strings.Repeat("x-long-", 10))
	for _, n := range names {
		if got, want := Canonical(n), textproto.CanonicalMIMEHeaderKey(n); got != want {
			t.Errorf("Canonical(%q) = %q, textproto says %q", n, got, want)
		}
	}
}

// TestCanonicalAllocs: a common name in any case, and any canonical name,
// cost no allocation.
func TestCanonicalAllocs(t *testing.T) {
	for _, n := range []string{"content-type", "Content-Length", "OCP-APIM-SUBSCRIPTION-KEY", "X-Custom-Header"} {
		if a := testing.AllocsPerRun(100, func() { Canonical(n) }); a != 0 {
			t.Errorf("Canonical(%q): %v allocations", n, a)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, n := range common {
		f.Add(n)
		f.Add(strings.ToLower(n))
	}
	f.Add("x-a-B-c")
	f.Fuzz(func(t *testing.T, n string) {
		if got, want := Canonical(n), textproto.CanonicalMIMEHeaderKey(n); got != want {
			t.Errorf("Canonical(%q) = %q, textproto says %q", n, got, want)
		}
	})
}

func TestValidName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"Content-Type", true}, {"x!#$%&'*+-.^_`|~9", true}, {"", false}, {"a b", false}, {"a:b", false},
		{"a\tb", false}, {"é", false}, {"a\x7f", false}, {"(a)", false}, {"a/b", false},
	} {
		if got := ValidName(c.name); got != c.want {
			t.Errorf("ValidName(%q) = %v, want %v", c.name, got, c.want)
		}
		if got := ValidName([]byte(c.name)); got != c.want {
			t.Errorf("ValidName([]byte(%q)) = %v, want %v", c.name, got, c.want)
		}
	}
	for c := 0; c < 256; c++ {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		if IsToken(byte(c)) != want {
			t.Errorf("IsToken(%q) = %v, want %v", byte(c), !want, want)
		}
	}
	// Every byte at every place of names shorter and longer than the
	// eight bytes tested at once, in words of letters, digits and hyphens.
	for n := 1; n <= 25; n++ {
		for pos := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("Ab-9", 7)[:n])
				b[pos] = byte(c)
				if got, want := ValidName(b), IsToken(byte(c)); got != want {
					t.Fatalf("ValidName(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 32
		case 'A' <= c && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

func BenchmarkCanonical(b *testing.B) {
	names := []string{"Content-Type", "Content-Length", "Ocp-Apim-Subscription-Key", "content-type", "X-Custom-Header"}
	b.Run("fieldname", func(b *testing.B) {
		for b.Loop() {
			for _, n := range names {
				Canonical(n)
			}
		}
	})
	b.Run("textproto", func(b *testing.B) {
		for b.Loop() {
			for _, n := range names {
				textproto.CanonicalMIMEHeaderKey(n)
			}
		}
	})
}
