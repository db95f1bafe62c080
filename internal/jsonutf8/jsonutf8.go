// Package jsonutf8 tells whether a JSON text's strings decode to exactly
// what was sent: encoding/json puts U+FFFD in place of bytes that are not
// UTF-8 and of a \u escape of a surrogate that has no partner, so a value
// stored from such a body would read back different from what its writer
// was told was stored. The surfaces that store what clients send refuse
// those bodies instead (400).
package jsonutf8

import (
	"bytes"
	"unicode/utf8"
)

// Valid reports whether body is UTF-8 and every \u escape of a surrogate
// in it is half of a pair (a high one, \uD800-\uDBFF, directly followed by
// a low one, \uDC00-\uDFFF). It looks only at escapes: a backslash can
// stand only inside a string in valid JSON, and a body that is not JSON
// is the decoder's to refuse.
func Valid(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			break
		}
		i += j
		if i+1 >= len(body) || body[i+1] != 'u' {
			i += 2 // \", \\, \n, ...: the escaped byte is not a backslash that starts one
			continue
		}
		r, ok := hex4(body, i+2)
		switch {
		case !ok:
			i += 2 // not an escape the decoder takes: it is the decoder's to refuse
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // a low surrogate with no high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			if i+11 >= len(body) || body[i+6] != '\\' || body[i+7] != 'u' {
				return false
			}
			if lo, ok := hex4(body, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 12
		default:
			i += 6
		}
	}
	return true
}

// hex4 is the value of the four hex digits at body[i:], if there are.
func hex4(body []byte, i int) (rune, bool) {
	if i+4 > len(body) {
		return 0, false
	}
	var r rune
	for _, c := range body[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
