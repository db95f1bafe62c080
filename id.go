package gatehouse

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// NewGUID returns a random (version 4) GUID in lower case, the form Azure
// uses for tenant, object, client and subscription ids.
func NewGUID() string {
	var s [36]byte
	PutGUID(&s)
	return string(s[:])
}

// PutGUID writes a new GUID, as NewGUID returns it, into s (for a caller
// that keeps it in a structure it allocates anyway).
func PutGUID(s *[36]byte) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
}

// IsGUID reports whether s is a GUID in 8-4-4-4-12 form (either case).
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// NormalizeGUID returns s in lower case if it is a GUID, and ok=false if not.
func NormalizeGUID(s string) (string, bool) {
	if !IsGUID(s) {
		return "", false
	}
	return strings.ToLower(s), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
