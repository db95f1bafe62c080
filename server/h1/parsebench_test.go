package h1

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkParse is the fast path's head parsing alone: a proxied chat
// completion with a key, and with a bearer token as long as an identity
// token (the field value the parser spends most on).
func BenchmarkParse(b *testing.B) {
	s := &Server{Fast: func(host, path string) bool { return true }}
	c := &conn{s: s, ctx: context.Background()}
	for _, tc := range []struct{ name, auth string }{
		{"key", "Ocp-Apim-Subscription-Key: 3630964d1d7750548b846fe5dfae1011c69c47efc310e913629b91946e783527"},
		{"bearer", "Authorization: Bearer " + strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6", 40)},
	} {
		head := []byte("POST /ai/bench/openai/deployments/chat/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n" +
			"Host: localhost:18490\r\nContent-Type: application/json\r\n" + tc.auth + "\r\nContent-Length: 76\r\n\r\n")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if end, _, bare := scanHead(head, 0); end != len(head) || bare {
					b.Fatal("not a head")
				}
				if _, err := c.parse(head); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
