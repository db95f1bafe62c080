package h1

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// validTarget reports whether an origin-form request target has only
// visible ASCII (no controls or bytes above 0x7e), and no spaces unless
// spaces is set (querySpaces has placed them in the query).
func validTarget(t []byte, spaces bool) bool {
	if !spaces {
		// Eight bytes at a time: a byte is wrong when, with its top bit
		// cleared, it is below 0x21 or is 0x7f, or when its top bit is
		// set (each test per byte, without a carry between them).
		const lsb, msb, low7 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
		for len(t) >= 8 {
			x := binary.LittleEndian.Uint64(t)
			y := x & low7
			if (^(y+lsb*(0x80-0x21))|(y+lsb)|x)&msb != 0 {
				return false
			}
			t = t[8:]
		}
	}
	for _, c := range t {
		if c < ' ' || c == ' ' && !spaces || c >= 0x7f {
			return false
		}
	}
	return true
}

// querySpaces counts the spaces of a request target, all of which must be
// in its query; -1 if one is in the path or ends the target.
//
// A request-target has no spaces (RFC 9112 §3.2), but azcore's generated
// clients append some parameters unencoded — armauthorization's
// RoleAssignmentsClient sends "$filter=atScope() and principalId eq '…'" —
// which over HTTP/2 arrive as they are and over HTTP/1.1 put spaces in the
// request line; Azure's front ends take them as %20 (RFC 9112 §3.2 lets a
// server "correct" an invalid request-target), net/http answers 400. The
// fast path takes them as %20 when the line still ends in " HTTP/1.1" and
// every space is in the query.
func querySpaces(t []byte) int {
	q := bytes.IndexByte(t, '?')
	n := bytes.Count(t, []byte(" "))
	switch {
	case n == 0:
		return 0
	case q < 0 || bytes.IndexByte(t[:q], ' ') >= 0 || t[len(t)-1] == ' ':
		return -1
	}
	return n
}

// validHost reports whether a Host value has only the characters of a
// host, an IP literal and a port.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:[]!$&'()*+,;=%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring
// case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token
// (case-insensitive).
func hasToken[T string | []byte](v T, token string) bool {
	for part := range strings.SplitSeq(string(v), ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}
