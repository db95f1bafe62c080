package gateway

import (
	"encoding/json"
	"errors"
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
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return dst, errNotObject
	}
	open := i
	i++
	var spans [][2]int // value spans of "model" members
	for {
		i = skipWS(body, i)
		if body[i] == '}' {
			break
		}
		if body[i] == ',' {
			i = skipWS(body, i+1)
		}
		keyStart := i
		i = skipString(body, i)
		key := body[keyStart:i]
		i = skipWS(body, i)
		i++ // ':'
		i = skipWS(body, i)
		valStart := i
		i = skipValue(body, i)
		if isModelKey(key) {
			spans = append(spans, [2]int{valStart, i})
		}
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
	if string(quoted) == `"model"` {
		return true
	}
	if len(quoted) > 40 || !slices.Contains(quoted, '\\') {
		return false
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "model"
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
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
