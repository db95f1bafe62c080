package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"slices"
)

var errNotObject = errors.New("the request body is not a JSON object")

// setModel appends to dst the JSON object body with every top-level
// "model" member's value replaced by modelJSON (an encoded JSON string),
// or with one inserted first when there is none. body must already be
// valid JSON (json.Valid); anything but an object is errNotObject.
//
// Every duplicate is replaced, not only the first: parsers differ on which
// duplicate wins, and a client must not be able to smuggle another upstream
// model past the deployment's.
func setModel(dst, body, modelJSON []byte) ([]byte, error) {
	var buf [4][2]int
	spans, ok := scanJSON(body, buf[:0])
	if !ok {
		return dst, errNotObject
	}
	return spliceModel(dst, body, modelJSON, spans)
}

// spliceModel is setModel with the top-level "model" members' value spans
// as scanJSON found them in body (valid JSON).
func spliceModel(dst, body, modelJSON []byte, spans [][2]int) ([]byte, error) {
	open := skipWS(body, 0)
	if open >= len(body) || body[open] != '{' {
		return dst, errNotObject
	}
	if len(spans) == 0 {
		dst = append(dst, body[:open+1]...)
		dst = append(dst, `"model":`...)
		dst = append(dst, modelJSON...)
		if j := skipWS(body, open+1); body[j] != '}' {
			dst = append(dst, ',')
		}
		return append(dst, body[open+1:]...), nil
	}
	dst = slices.Grow(dst, len(body)+len(spans)*len(modelJSON))
	prev := 0
	for _, sp := range spans {
		dst = append(dst, body[prev:sp[0]]...)
		dst = append(dst, modelJSON...)
		prev = sp[1]
	}
	return append(dst, body[prev:]...), nil
}

// isModelKey reports whether the quoted key is "model", escapes included.
func isModelKey(quoted []byte) bool {
	switch {
	case len(quoted) == len(`"model"`):
		return string(quoted) == `"model"`
	case len(quoted) < len(`"model"`) || len(quoted) > 40 || bytes.IndexByte(quoted, '\\') < 0:
		return false // an escaped spelling is longer; one without escapes is "model"
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "model"
}

// skipWS returns the index of the first byte from b[i] on that is not
// JSON whitespace. Most calls find none (compact JSON, or the token after
// a colon's single space): a byte above the space, the common case, is
// one test.
func skipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or len(b) when it does not end in b. Its end is the first quote not
// escaped, one after an even run of backslashes: found with the
// vectorized search, which costs less than a byte loop from about ten
// bytes on (proxied answers' strings and request bodies' content).
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			break
		}
		k := i + j
		n := 0
		for k-n > i && b[k-n-1] == '\\' {
			n++
		}
		if n&1 == 0 {
			return k + 1
		}
		i = k + 1
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// maxJSONDepth is encoding/json's nesting limit, which validJSON keeps so
// that it accepts exactly what json.Valid accepts.
const maxJSONDepth = 10000

// validJSON reports whether b is one JSON value (RFC 8259) with optional
// surrounding whitespace, accepting exactly what encoding/json.Valid
// accepts (strings are not checked for valid UTF-8, nesting is bounded at
// maxJSONDepth) in one pass without its per-byte state functions: the body
// of every proxied request goes through it. FuzzValidJSON holds the two
// together.
func validJSON(b []byte) bool {
	_, ok := scanJSON(b, nil)
	return ok
}

// scanJSON is validJSON that also appends to models (unless nil) the
// spans of the values of the top-level object's "model" members (escaped
// spellings of the key included), which the proxy replaces (spliceModel):
// one pass over the body instead of a check and a second scan.
func scanJSON(b []byte, models [][2]int) ([][2]int, bool) {
	var buf [64]byte
	stack := buf[:0] // the open containers, '{' or '['
	model := -1      // where the value of a top-level "model" member starts, while it is scanned
	i := skipWS(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return models, false
		}
		ok := true
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxJSONDepth {
				return models, false // this one would be one level too deep
			}
			j := skipWS(b, i+1)
			if j < len(b) && (c == '{' && b[j] == '}' || c == '[' && b[j] == ']') {
				i = j + 1
				break // an empty container is a whole value
			}
			stack = append(stack, c)
			if c == '{' {
				var key int
				if i, key, ok = objectKey(b, j); !ok {
					return models, false
				}
				if models != nil && len(stack) == 1 && isModelKey(b[j:key]) {
					model = i
				}
			} else {
				i = j
			}
			continue
		case c == '"':
			i, ok = scanString(b, i)
		case c == '-' || '0' <= c && c <= '9':
			i, ok = scanNumber(b, i)
		case c == 't':
			i, ok = literal(b, i, "true")
		case c == 'f':
			i, ok = literal(b, i, "false")
		case c == 'n':
			i, ok = literal(b, i, "null")
		default:
			return models, false
		}
		if !ok {
			return models, false
		}
		// A value ended at i: close containers, or go on after a comma.
		for {
			if model >= 0 && len(stack) == 1 {
				models = append(models, [2]int{model, i})
				model = -1
			}
			i = skipWS(b, i)
			if len(stack) == 0 {
				return models, i == len(b)
			}
			if i >= len(b) {
				return models, false
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				j := skipWS(b, i+1)
				if top == '{' {
					k, key := j, 0
					if j, key, ok = objectKey(b, j); !ok {
						return models, false
					}
					if models != nil && len(stack) == 1 && isModelKey(b[k:key]) {
						model = j
					}
				}
				i = j
				break
			}
			if top == '{' && b[i] != '}' || top == '[' && b[i] != ']' {
				return models, false
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

// objectKey scans `"key" :` at i and returns the index of the member's
// value (whitespace skipped) and the index after the key's closing quote.
func objectKey(b []byte, i int) (int, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, i, false
	}
	i, ok := scanString(b, i)
	if !ok {
		return i, i, false
	}
	key := i
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, key, false
	}
	return skipWS(b, i+1), key, true
}

// scanString validates the string starting at b[i] == '"' and returns the
// index after it. Bytes that need no look (all but a quote, a backslash
// and controls) are passed over eight at a time.
func scanString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		for i+8 <= len(b) {
			if m := stringSpecial(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		}
	}
	return i, false
}

// stringSpecial has the high bit set in the bytes of x (little-endian)
// that are a quote, a backslash or below 0x20 — exactly so up to the
// first such byte, the lowest set bit (the haszero and hasless tests of
// Bit Twiddling Hacks; a borrow only runs upwards).
func stringSpecial(x uint64) uint64 {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(lsb*'"'), x^(lsb*'\\')
	return ((q-lsb)&^q | (bs-lsb)&^bs | (x-lsb*0x20)&^x) & msb
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
