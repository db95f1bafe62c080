// Package httpfield is what the data plane's HTTP/1.1 code (server/h1's
// fast path, the gateway's upstream client) needs of header fields: the
// token test, textproto.CanonicalMIMEHeaderKey, the value check and the
// writing of a field, made cheap for what clients and upstreams send.
//
// CanonicalMIMEHeaderKey tests every byte against the token set and then
// again for its case; for three or four canonical names a request it was
// about 3% of a proxied request's instructions (counted with
// bench/gateway.sh --instructions). Canonical finds a common name by its
// length and first byte and compares it whole (any case, no allocation),
// and checks any other name's case in one pass before handing it to
// textproto.
package httpfield

import "net/textproto"

// tokenChars marks the characters of an RFC 9110 token (field names,
// methods).
var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// IsToken reports whether c may appear in a token.
func IsToken(c byte) bool { return tokenChars[c] }

// ValidName reports whether name is a token (a field name, a method).
func ValidName[T string | []byte](name T) bool {
	if len(name) == 0 {
		return false
	}
	i := 0
	for ; i+8 <= len(name); i += 8 {
		// Most names are letters, digits and hyphens: eight such bytes
		// are one test; a word with anything else is looked at byte by
		// byte.
		x := word(name, i)
		if !alnumHyphens(x) {
			for j := i; j < i+8; j++ {
				if !tokenChars[name[j]] {
					return false
				}
			}
		}
	}
	if i < len(name) && i >= 8 {
		// The rest is the end of the name's last eight bytes: one word,
		// overlapping bytes already checked.
		i = len(name) - 8
		x := word(name, i)
		if alnumHyphens(x) {
			return true
		}
	}
	for ; i < len(name); i++ {
		if !tokenChars[name[i]] {
			return false
		}
	}
	return true
}

// alnumHyphens reports whether every byte of x is an ASCII letter, digit
// or hyphen. Each test is per byte, without a carry from one to the next:
// the top bit is tested apart, and on the seven bits below it adding at
// most 0x7f stays within the byte.
func alnumHyphens(x uint64) bool {
	const lsb, msb, low7 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	y := x & low7
	z := y | lsb*0x20 // letters in lower case
	letter := (z + lsb*(0x80-'a')) &^ (z + lsb*(0x7f-'z'))
	digit := (y + lsb*(0x80-'0')) &^ (y + lsb*(0x7f-'9'))
	d := y ^ lsb*'-'
	hyphen := ^(d + low7)
	return x&msb == 0 && (letter|digit|hyphen)&msb == msb
}

// common are the field names requests and responses carry most, in
// canonical form: the ones the official SDKs, openai's clients, browsers
// and OpenAI-compatible upstreams send.
var common = [...]string{
	// requests
	"Accept", "Accept-Encoding", "Accept-Language", "Api-Key", "Authorization", "Content-Length",
	"Content-Type", "Connection", "Cookie", "Expect", "Host", "Ocp-Apim-Subscription-Key",
	"Ocp-Apim-Subscription-Region", "Openai-Beta", "Origin", "Referer", "Traceparent", "Tracestate",
	"User-Agent", "X-Ms-Client-Request-Id", "X-Ms-Return-Client-Request-Id", "X-Ms-Useragent",
	"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-Os", "X-Stainless-Package-Version",
	"X-Stainless-Retry-Count", "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Timeout",
	"Upgrade", "Transfer-Encoding", "Te", "Keep-Alive", "Cache-Control", "Pragma",
	// responses
	"Date", "Server", "Vary", "Content-Encoding", "X-Request-Id", "Retry-After", "Retry-After-Ms",
	"Openai-Processing-Ms", "Openai-Version", "Openai-Organization", "Openai-Model",
	"Access-Control-Allow-Origin", "Strict-Transport-Security", "Set-Cookie", "Trailer",
	"Proxy-Authenticate", "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Reset-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens",
	"X-Ratelimit-Reset-Tokens",
}

// maxCommon bounds the names looked up in byShape.
const maxCommon = 32

// byShape holds the common names by length and first letter (lower case
// less 'a'; every common name starts with a letter).
var byShape = func() (t [maxCommon][26][]string) {
	for _, n := range common {
		if len(n) >= maxCommon {
			panic("httpfield: common name too long: " + n)
		}
		c := n[0] | 0x20
		t[len(n)][c-'a'] = append(t[len(n)][c-'a'], n)
	}
	return t
}()

// Canonical returns textproto.CanonicalMIMEHeaderKey(raw): a common name's
// canonical constant whatever raw's case, raw itself when it is already
// canonical (or not a token: textproto leaves those alone too), else a new
// string.
func Canonical(raw string) string {
	if n := len(raw); n > 0 && n < maxCommon {
		if c := raw[0] | 0x20; 'a' <= c && c <= 'z' {
			for _, name := range byShape[n][c-'a'] {
				if name == raw || equalFold(name, raw) {
					return name
				}
			}
		}
	}
	upper := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(raw)
		}
		upper = c == '-'
	}
	return raw
}

// equalFold reports whether the ASCII strings a and b, of equal length,
// are equal but for the case of letters.
func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}
