package authority

import (
	"net"
	"net/url"
	"strings"
	"testing"
)

// FuzzNormalizeUserCode: whatever a person types, the result is "" or a
// code of the alphabet's characters and length, and normalizing it again
// changes nothing.
func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGHJ", "abcd efghj", "", "0000-00000", "ABCDEFGHJK", "ÄBCDEFGHJ", "ab\tcd-ef gh j"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeUserCode(s)
		if n == "" {
			return
		}
		if len(n) != userCodeLen || strings.Trim(n, userCodeAlphabet) != "" || NormalizeUserCode(n) != n {
			t.Fatalf("NormalizeUserCode(%q) = %q", s, n)
		}
	})
}

// FuzzLoopbackRedirect: an accepted redirect URI is plain HTTP to a
// loopback host, without user info or fragment.
func FuzzLoopbackRedirect(f *testing.F) {
	for _, s := range []string{"http://localhost:8400/cb", "http://127.0.0.1/", "http://[::1]:9/x?y=1", "https://localhost/",
		"http://evil.example/", "http://localhost.evil.example/", "http://x@localhost/", "http://localhost#f", "http:localhost",
		"http://127.0.0.2:1/", "http://0x7f.1/", "http://localhost%2f@evil/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !loopbackRedirect(s) {
			return
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q", s)
		}
		if h := u.Hostname(); !strings.EqualFold(h, "localhost") {
			if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
				t.Fatalf("accepted %q: host %q", s, h)
			}
		}
	})
}
