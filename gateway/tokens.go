package gateway

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Token metering: what Azure Monitor shows as Processed Prompt Tokens and
// Generated Completion Tokens per deployment, as Prometheus counters
// (gatehouse_gateway_tokens_total{account, deployment, type}).
//
// The counts are the upstream's own, from the "usage" object of OpenAI's
// answers: a chat completion, completion, embedding or response
// ({"prompt_tokens", "completion_tokens"} or {"input_tokens",
// "output_tokens"}), the last event of a stream that carries one (a chat
// stream only when the client asked for stream_options.include_usage; a
// Responses stream's response.completed always), a Realtime
// response.done.
//
// A usageScanner follows the answer's JSON as the proxy copies it — its
// nesting and its strings, nothing decoded — and keeps only the usage
// object: the top-level "usage" member, or the one of the top-level
// "response" object (a Responses stream event, a Realtime message). A
// "usage" nested anywhere else (metadata, a tool's arguments) or written
// inside a string is not the answer's, however it is placed, and any
// amount may follow the usage (vLLM's and Azure's extra members). The
// last one wins. An event stream is scanned a line at a time: each data
// line is one JSON value. The cost is a pass over the bytes the copy
// already touches: an object that is whole in one read (most answers,
// every line of a stream) is walked member by member with jsonbody.go's
// loops (walk); one that spans reads is followed byte by byte with its
// state kept between them (scan), its strings skipped with a vectorized
// search for their closing quote and the levels below the watched ones
// eight bytes at a time. In instructions (cachegrind), metering a 330-byte
// chat completion went from about 4,000 (a 1 KiB tail and a search of it)
// to about 5,700; a proxied request (BenchmarkHandler) from 38,700 to
// 40,900.
//
// An answer cut short counts nothing, and neither do reads of stored
// responses (already counted when they were created).

// usageMax bounds the usage object kept: one with every detail OpenAI,
// Azure and vLLM report is under 500 bytes. A larger one is not read.
const usageMax = 2048

// Watched members: what the value after a watched member name is.
const (
	memberOther = iota
	memberUsage
	memberResponse
)

// usageParse is where a usageScanner is in the JSON.
type usageParse struct {
	depth  int  // containers open
	top    bool // the value at depth 0 is an object: depth 1 is watched
	inResp bool // depth 2 is the top-level "response" object: watched too
	str    bool // in a string
	bs     int  // backslashes ending the string so far (an odd count escapes a quote)
	esc    bool // in a kept usage object's string: the next byte is escaped
	// name is the member name being read at a watched depth (first 8
	// bytes; nameN counts them all); member what it named.
	isName  bool
	wantKey bool // at a watched depth, the next string is a member name
	name    [8]byte
	nameN   int
	member  int
	keep    int // > 0: the usage object is being kept in obj, until depth is below keep
	objN    int // bytes in obj; usageMax+1 once it overflowed
}

// usageScanner meters one answer (or one Realtime message) as it is
// copied: add every byte, in order, in pieces of any size; set done once
// the whole answer went through; usage has the counts then.
type usageScanner struct {
	sse bool // an event stream: scanned a line at a time
	// cont > 0: a value goes on in the next data line, whose "data:" has
	// its first cont-1 bytes passed over so far (dataPrefix).
	cont int
	// events: the values are events (a stream's, a Realtime message), in
	// which a top-level "response" object's usage is the answer's; in any
	// other answer it is some member's, not watched.
	events bool
	done   bool // the whole answer went through add
	st     usageParse
	// The last usage object's counts: ok when one was read.
	prompt, completion int64
	ok                 bool
	obj                [usageMax]byte // the usage object being kept
}

// reset readies s for an answer, an event stream when sse.
func (s *usageScanner) reset(sse bool) {
	s.sse, s.events, s.done, s.st, s.cont = sse, sse, false, usageParse{}, 0
	s.prompt, s.completion, s.ok = 0, 0, false
}

// usage returns the counts of the last usage object of a complete answer.
func (s *usageScanner) usage() (prompt, completion int64, ok bool) {
	if !s.done || !s.ok {
		return 0, 0, false
	}
	return s.prompt, s.completion, true
}

// add scans the next bytes of the answer.
func (s *usageScanner) add(p []byte) {
	if !s.sse {
		s.scan(p)
		return
	}
	for {
		if s.cont > 0 {
			if p = s.dataPrefix(p); len(p) == 0 {
				return
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.scan(p)
			return
		}
		s.scan(p[:i])
		if st := &s.st; st.depth > 0 && !st.str {
			// A value spread over an event's data lines, which the client
			// joins with '\n' (white space to JSON): it goes on in the
			// next line, after its "data:" (dataPrefix).
			s.cont = 1
		} else {
			s.st = usageParse{} // the next line is a value of its own
		}
		p = p[i+1:]
	}
}

// dataPrefix passes over the "data:" (and the one space after it) that
// starts the next line of a value in progress, in pieces of any size, and
// returns what follows it. A line that is not a data line (a blank one
// ends the event; another field) abandons the value: the next is a value
// of its own.
func (s *usageScanner) dataPrefix(p []byte) []byte {
	const field = "data:"
	for s.cont > 0 && len(p) > 0 {
		switch m := s.cont - 1; {
		case m < len(field) && p[0] == field[m]:
			s.cont++
			p = p[1:]
		case m == len(field):
			if p[0] == ' ' {
				p = p[1:]
			}
			s.cont = 0
		default:
			s.cont, s.st = 0, usageParse{}
		}
	}
	return p
}

// scan follows p. The state lives in locals while it runs: this loop
// sees every byte of every answer.
func (s *usageScanner) scan(p []byte) {
	st := &s.st
	i := 0
	if st.keep > 0 {
		if i = s.keepObject(p, 0); i == len(p) {
			return
		}
		st.member = memberOther
	}
	depth, str, top, inResp, wantKey, member := st.depth, st.str, st.top, st.inResp, st.wantKey, st.member
	for i < len(p) {
		if str {
			j := bytes.IndexByte(p[i:], '"')
			if j < 0 {
				s.noteName(p[i:])
				st.bs = trailingBackslashes(p[i:], st.bs)
				break
			}
			k := i + j
			run := trailingBackslashes(p[i:k], st.bs)
			if st.isName {
				s.noteName(p[i : k+1])
			}
			st.bs, i = 0, k+1
			if run&1 == 1 {
				continue // an escaped quote
			}
			str = false
			if st.isName {
				member = st.named()
			}
			continue
		}
		watched := depth == 1 && top || depth == 2 && inResp
		if !watched && depth > 0 {
			// Only nesting and strings matter down there.
			if i += nextStructural(p[i:]); i == len(p) {
				break
			}
		}
		c := p[i]
		i++
		if scalarByte[c] {
			// A number, a literal, white space: on to what follows.
			for i < len(p) && scalarByte[p[i]] {
				i++
			}
			continue
		}
		switch c {
		case '"':
			str, st.bs, st.nameN = true, 0, 0
			st.isName = watched && wantKey
		case '{':
			if depth == 0 {
				// A value starts: read it the quick way if it is whole in p.
				prompt, completion, ok := s.prompt, s.completion, s.ok
				if end := s.walk(p, i-1, 1); end > 0 {
					i, top, member = end, false, memberOther
					continue
				}
				s.prompt, s.completion, s.ok = prompt, completion, ok // the scan reads it again
			}
			if watched && !wantKey {
				switch member {
				case memberUsage:
					member = memberOther
					if n, ok := s.readUsage(p[i-1:]); ok {
						i += n - 1 // whole in p: read where it is
						continue
					}
					depth++
					st.keep, st.esc, st.objN = depth, false, 1
					s.obj[0] = '{'
					st.depth, st.str = depth, false
					i = s.keepObject(p, i)
					depth, str = st.depth, st.str
					continue
				case memberResponse:
					if depth == 1 && s.events {
						inResp = true
					}
				}
			}
			depth++
			top = top || depth == 1
			wantKey, member = true, memberOther
		case '[':
			if depth == 0 {
				top = false
			}
			depth++
			member = memberOther
		case '}', ']':
			if depth > 0 {
				depth--
			}
			if depth < 2 {
				inResp = false
			}
			if depth == 0 {
				top = false
			}
			member = memberOther
		case ',':
			if watched {
				wantKey, member = true, memberOther
			}
		case ':':
			if watched {
				wantKey = false
			}
		}
	}
	st.depth, st.str, st.top, st.inResp, st.wantKey, st.member = depth, str, top, inResp, wantKey, member
}

// walk reads the object at p[i] when it ends in p — an answer that came
// in one read, each line of an event stream — with jsonbody.go's tight
// loops instead of the scan's state: the members of the top level (level
// 1) and of its "response" (level 2) one by one, reading a "usage" object
// and passing over the rest. It returns the index after the object, or
// -1 when it does not end in p or is anything but JSON, for the scan to
// take from i. On what it reads whole it finds what the scan finds: it
// takes strings and brackets as the scan does, and accepts less.
func (s *usageScanner) walk(p []byte, i, level int) int {
	for i, first := i+1, true; ; first = false {
		if i = skipWS(p, i); i >= len(p) {
			return -1
		}
		if p[i] == '}' {
			return i + 1
		}
		if !first {
			if p[i] != ',' {
				return -1
			}
			if i = skipWS(p, i+1); i >= len(p) {
				return -1
			}
		}
		if p[i] != '"' {
			return -1
		}
		end := skipString(p, i)
		if end >= len(p) {
			return -1
		}
		name := p[i+1 : end-1]
		if i = skipWS(p, end); i >= len(p) || p[i] != ':' {
			return -1
		}
		if i = skipWS(p, i+1); i >= len(p) {
			return -1
		}
		switch {
		case p[i] == '{' && string(name) == "usage":
			n, ok := s.readUsage(p[i:])
			if !ok {
				return -1
			}
			i += n
		case p[i] == '{' && level == 1 && s.events && string(name) == "response":
			if i = s.walk(p, i, 2); i < 0 {
				return -1
			}
		default:
			if i = skipScalarOrValue(p, i); i < 0 {
				return -1
			}
		}
	}
}

// skipScalarOrValue returns the index after the JSON value at p[i], or -1
// when it is not one (skipValue passes over anything up to a delimiter).
func skipScalarOrValue(p []byte, i int) int {
	var ok bool
	switch c := p[i]; {
	case c == '"':
		return skipString(p, i) // len(p) if cut off: the caller finds nothing after it
	case c == '{' || c == '[':
		return skipContainer(p, i)
	case c == '-' || '0' <= c && c <= '9':
		i, ok = scanNumber(p, i)
	case c == 't':
		i, ok = literal(p, i, "true")
	case c == 'f':
		i, ok = literal(p, i, "false")
	case c == 'n':
		i, ok = literal(p, i, "null")
	}
	if !ok {
		return -1
	}
	return i
}

// skipContainer returns the index after the object or array at p[i], or
// len(p) when it does not end in p: skipValue's, but from a number on
// (an embedding's thousands) to the next quote or bracket eight bytes at
// a time.
func skipContainer(p []byte, i int) int {
	depth := 0
	for i < len(p) {
		switch c := p[i]; {
		case c == '"':
			i = skipString(p, i)
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return i + 1
			}
		case c == '-' || '0' <= c && c <= '9':
			i += 1 + nextStructural(p[i+1:])
			continue
		}
		i++
	}
	return len(p)
}

// scalarByte marks the bytes that are not JSON punctuation: what a
// number, a literal or white space is made of.
var scalarByte = func() (t [256]bool) {
	for c := range t {
		t[c] = !strings.ContainsRune(`"{}[],:`, rune(c))
	}
	return t
}()

// named is what the member name just read names.
func (st *usageParse) named() int {
	switch string(st.name[:min(st.nameN, len(st.name))]) {
	case `usage"`:
		return memberUsage
	case `response`:
		if st.nameN == len(`response"`) {
			return memberResponse
		}
	}
	return memberOther
}

// noteName keeps the start of a member name.
func (s *usageScanner) noteName(b []byte) {
	st := &s.st
	if !st.isName {
		return
	}
	if st.nameN < len(st.name) {
		copy(st.name[st.nameN:], b)
	}
	st.nameN += len(b)
}

// trailingBackslashes counts the backslashes b ends with, plus carried
// when b is nothing else.
func trailingBackslashes(b []byte, carried int) int {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\\' {
		n++
	}
	if n == len(b) {
		n += carried
	}
	return n
}

// readUsage reads the usage object that starts p when it ends in p (as
// it does in almost every answer: it is small), and returns its length.
// Otherwise keepObject gathers it across reads. usageCounts consumes no
// quote or bracket that the scan would take otherwise, so both find the
// same end, whatever the reads.
func (s *usageScanner) readUsage(p []byte) (int, bool) {
	prompt, completion, n, ok := usageCounts(p)
	if n == 0 {
		return 0, false
	}
	if n > usageMax {
		prompt, completion, ok = 0, 0, false
	}
	s.prompt, s.completion, s.ok = prompt, completion, ok
	return n, true
}

// keepObject copies the usage object from p[i:] into obj, up to its end
// or p's, and reads it once it is whole.
func (s *usageScanner) keepObject(p []byte, i int) int {
	st := &s.st
	start := i
	depth, str, esc := st.depth, st.str, st.esc
	for ; i < len(p); i++ {
		c := p[i]
		if str {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				str = false
			}
			continue
		}
		switch c {
		case '"':
			str = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth < st.keep {
				st.depth, st.str, st.esc, st.keep = depth, false, false, 0
				s.keepBytes(p[start : i+1])
				s.prompt, s.completion, s.ok = 0, 0, false
				if st.objN <= usageMax {
					var n int
					if s.prompt, s.completion, n, s.ok = usageCounts(s.obj[:st.objN]); n != st.objN {
						s.prompt, s.completion, s.ok = 0, 0, false
					}
				}
				return i + 1
			}
		}
	}
	st.depth, st.str, st.esc = depth, str, esc
	s.keepBytes(p[start:])
	return i
}

func (s *usageScanner) keepBytes(b []byte) {
	st := &s.st
	if st.objN+len(b) > usageMax {
		st.objN = usageMax + 1
		return
	}
	st.objN += copy(s.obj[st.objN:], b)
}

// nextStructural returns the index of b's first quote or bracket, or
// len(b). Eight bytes at a time: the four brackets are the bytes whose
// value masked with 0xd9 is 0x59 (with Y, _, y and DEL, which the caller
// looks at and passes over), the quote an exact match.
func nextStructural(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs } // lowest set bit exact
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		if m := zero(w&(0xd9*ones)^(0x59*ones)) | zero(w^('"'*ones)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case '"', '{', '}', '[', ']':
			return i
		}
	}
	return len(b)
}

// usageCounts reads the usage object that starts obj: the prompt
// (prompt_tokens or input_tokens) and completion (completion_tokens or
// output_tokens) counts, and its length n, 0 when it does not end in obj
// or is not JSON usageCounts reads; ok is false when it has no count or
// is not an object of counts. It takes the JSON's numbers, strings,
// literals and nested values whole, never passing over a quote or a
// bracket (readUsage depends on it).
func usageCounts(obj []byte) (prompt, completion int64, n int, ok bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return 0, 0, 0, false
	}
	p := 1
	found := false
	for {
		if p = skipWS(obj, p); p >= len(obj) {
			return 0, 0, 0, false
		}
		switch obj[p] {
		case '}':
			if !found {
				return 0, 0, p + 1, false
			}
			return prompt, completion, p + 1, true
		case ',':
			p++
			continue
		case '"':
		default:
			return 0, 0, 0, false
		}
		end := skipString(obj, p) // jsonbody.go's
		if end > len(obj) || obj[end-1] != '"' || end-1 == p {
			return 0, 0, 0, false // cut off
		}
		var count *int64
		switch string(obj[p+1 : end-1]) {
		case "prompt_tokens", "input_tokens":
			count = &prompt
		case "completion_tokens", "output_tokens":
			count = &completion
		}
		if p = skipWS(obj, end); p >= len(obj) || obj[p] != ':' {
			return 0, 0, 0, false
		}
		if p = skipWS(obj, p+1); p >= len(obj) {
			return 0, 0, 0, false
		}
		switch c := obj[p]; {
		case count != nil && '0' <= c && c <= '9':
			var v int64
			for ; p < len(obj) && obj[p] >= '0' && obj[p] <= '9'; p++ {
				if v > 1<<40 {
					return 0, 0, 0, false // no answer has that many tokens
				}
				v = v*10 + int64(obj[p]-'0')
			}
			*count, found = v, true
		case c == '-' || '0' <= c && c <= '9':
			var ok bool
			if p, ok = scanNumber(obj, p); !ok {
				return 0, 0, 0, false
			}
		case c == '"' || c == '{' || c == '[':
			p = skipValue(obj, p) // len(obj) or beyond if cut off
		case c == 't' || c == 'f' || c == 'n':
			lit := "null"
			if c == 't' {
				lit = "true"
			} else if c == 'f' {
				lit = "false"
			}
			var ok bool
			if p, ok = literal(obj, p, lit); !ok {
				return 0, 0, 0, false
			}
		default:
			return 0, 0, 0, false
		}
	}
}

// tokenCounters are one deployment's prompt and completion counters.
type tokenCounters struct {
	key                tokenKey
	prompt, completion prometheus.Counter
}

type tokenKey struct{ account, deployment string }

// tokenMetrics resolves and keeps the counters per account and deployment.
type tokenMetrics struct {
	vec      *prometheus.CounterVec
	counters sync.Map // tokenKey → *tokenCounters
	front    frontTable[tokenCounters]
}

func newTokenMetrics() *tokenMetrics {
	return &tokenMetrics{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_gateway_tokens_total",
		Help: "Tokens the upstreams reported in their answers' usage, by account, deployment and type (prompt: prompt_tokens or input_tokens; completion: completion_tokens or output_tokens).",
	}, []string{"account", "deployment", "type"})}
}

// count adds the usage of a complete answer, if it has one, and returns
// it.
func (m *tokenMetrics) count(account, deployment string, s *usageScanner) (prompt, completion int64, ok bool) {
	prompt, completion, ok = s.usage()
	if !ok {
		return 0, 0, false
	}
	k := tokenKey{account, deployment}
	slot := &m.front[frontSlot(account, deployment, 0)]
	c := slot.Load()
	if c == nil || c.key != k {
		v, found := m.counters.Load(k)
		if !found {
			v, _ = m.counters.LoadOrStore(k, &tokenCounters{key: k,
				prompt:     m.vec.WithLabelValues(account, deployment, "prompt"),
				completion: m.vec.WithLabelValues(account, deployment, "completion"),
			})
		}
		c = v.(*tokenCounters)
		slot.Store(c)
	}
	c.prompt.Add(float64(prompt))
	c.completion.Add(float64(completion))
	return prompt, completion, true
}
