package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpfield"
)

// upExchange is one response being read from an upstream connection: its
// head, parsed by readHead, and its body, read through Read. A connection
// carries one exchange at a time and keeps it in place (no allocation).
//
// Once the exchange has ended — Read returned an error, io.EOF included,
// or finish or abort was called — the connection may already carry
// another request's exchange in the same place: its owner must not touch
// it again, and must have copied what it needs of the head (status,
// fields; the strings themselves are immutable) before reading the body.
type upExchange struct {
	pc     *upConn
	status int
	// fields are the header fields in the order received, names in
	// canonical form, names and values slices of one string per response.
	fields []Field
	// Body framing: remaining bytes of a Content-Length body (-1 when the
	// body is chunked or ends with the connection).
	remaining int64
	chunked   io.Reader // the chunked decoder, nil unless chunked
	untilEOF  bool
	// reuse is whether the connection may carry another exchange once the
	// body has been read to its end.
	reuse bool
	done  bool

	fieldBuf [16]Field
}

// Limits of a response head; an upstream beyond them is answered 502.
const (
	maxHeadBytes  = 64 << 10
	maxHeadFields = 128
)

var (
	errMalformedHead = errors.New("gateway: upstream client: malformed response head")
	errHeadTooLarge  = errors.New("gateway: upstream client: response head too large")
)

// readHead reads the status line and header fields (skipping 1xx interim
// responses) and works out the body's framing (RFC 9112 §6.3). noBody is
// set for a HEAD request.
func (ex *upExchange) readHead(noBody bool) error {
	pc := ex.pc
	br := pc.br
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		status, proto10, err := parseStatusLine(line)
		if err != nil {
			return err
		}
		// The head is gathered in pc.head as name, value, name, value...;
		// ends records where each piece ends.
		head := pc.head[:0]
		var ends [2 * maxHeadFields]int32
		n := 0
		for {
			line, err := readLine(br)
			if err != nil {
				return err
			}
			if len(line) == 0 {
				break
			}
			if n == maxHeadFields || len(head)+len(line) > maxHeadBytes {
				return errHeadTooLarge
			}
			name, value, ok := splitField(line)
			if !ok {
				return errMalformedHead
			}
			head = append(head, name...)
			ends[2*n] = int32(len(head))
			head = append(head, value...)
			ends[2*n+1] = int32(len(head))
			n++
		}
		pc.head = head
		if status >= 100 && status < 200 {
			if status == http.StatusSwitchingProtocols {
				return fmt.Errorf("%w: 101 Switching Protocols", errUnsupported)
			}
			continue // an interim response (103 Early Hints): the real one follows
		}
		ex.status = status
		return ex.frame(string(head), ends[:2*n], proto10, noBody)
	}
}

// frame turns the gathered head into fields and decides the body framing.
func (ex *upExchange) frame(head string, ends []int32, proto10, noBody bool) error {
	ex.fields = ex.fieldBuf[:0]
	ex.remaining = -1
	ex.reuse = !proto10
	chunked, length := false, int64(-1)
	start := int32(0)
	for i := 0; i < len(ends); i += 2 {
		nameRaw, value := head[start:ends[i]], head[ends[i]:ends[i+1]]
		start = ends[i+1]
		name := httpfield.Canonical(nameRaw)
		ex.fields = append(ex.fields, Field{name, value})
		switch name {
		case "Content-Length":
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil || v < 0 || value[0] == '+' || length >= 0 && v != length {
				return fmt.Errorf("%w: Content-Length %q", errMalformedHead, clipString(value, 32))
			}
			length = v
		case "Transfer-Encoding":
			// HTTP/1.0 has no transfer codings: such a message's framing
			// is faulty (RFC 9112 §6.1).
			if !strings.EqualFold(value, "chunked") || chunked || proto10 {
				return fmt.Errorf("%w: Transfer-Encoding %q", errUnsupported, clipString(value, 32))
			}
			chunked = true
		case "Connection":
			if hasToken(value, "close") {
				ex.reuse = false
			}
		}
	}
	switch {
	case noBody || ex.status == http.StatusNoContent || ex.status == http.StatusNotModified:
		ex.remaining = 0
	case chunked:
		if length >= 0 {
			ex.reuse = false // both framings: the connection is not to be trusted after it
		}
		ex.chunked = httputil.NewChunkedReader(ex.pc.br)
	case length >= 0:
		ex.remaining = length
	default:
		ex.untilEOF, ex.reuse = true, false
	}
	return nil
}

// Read reads the body. At its end the connection goes back to the pool;
// an error closes it.
func (ex *upExchange) Read(p []byte) (int, error) {
	if ex.done {
		return 0, io.EOF
	}
	var n int
	var err error
	switch {
	case ex.remaining == 0:
		ex.finish()
		return 0, io.EOF
	case ex.remaining > 0:
		if int64(len(p)) > ex.remaining {
			p = p[:ex.remaining]
		}
		n, err = ex.pc.br.Read(p)
		ex.remaining -= int64(n)
		if ex.remaining == 0 {
			ex.finish()
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	case ex.chunked != nil:
		n, err = ex.chunked.Read(p)
		if err == io.EOF {
			if terr := skipTrailer(ex.pc.br); terr != nil {
				ex.abort()
				return n, terr
			}
			ex.finish()
			return n, io.EOF
		}
	default:
		n, err = ex.pc.br.Read(p)
		if err == io.EOF {
			ex.finish()
			return n, io.EOF
		}
	}
	if err != nil {
		ex.abort()
	}
	return n, err
}

// buffered returns the part of a Content-Length body already in the
// connection's buffer, at most the rest of the body, without copying; the
// caller consumes it with discard.
func (ex *upExchange) buffered() []byte {
	if ex.done || ex.remaining <= 0 {
		return nil
	}
	n := ex.pc.br.Buffered()
	if int64(n) > ex.remaining {
		n = int(ex.remaining)
	}
	b, _ := ex.pc.br.Peek(n)
	return b
}

// discard consumes n bytes that buffered returned, and reports whether
// that ended the exchange (the body has been read to its end).
func (ex *upExchange) discard(n int) bool {
	ex.pc.br.Discard(n)
	ex.remaining -= int64(n)
	if ex.remaining == 0 {
		ex.finish()
		return true
	}
	return false
}

// finish ends an exchange whose body was read to its end.
func (ex *upExchange) finish() {
	if !ex.done {
		ex.done = true
		ex.pc.release(ex.reuse)
	}
}

// abort ends an exchange before the end of its body: the rest of a long
// stream is not worth draining, so the connection is closed.
func (ex *upExchange) abort() {
	if !ex.done {
		ex.done = true
		ex.pc.release(false)
	}
}

// header returns the first value of the field name (canonical form).
func (ex *upExchange) header(name string) string {
	for _, f := range ex.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// response returns the exchange as an *http.Response (for RoundTrip and
// Do); its Body reads the exchange.
func (ex *upExchange) response() *http.Response {
	h := make(http.Header, len(ex.fields))
	chunked := ex.chunked != nil
	for _, f := range ex.fields {
		if chunked && (f.Name == "Transfer-Encoding" || f.Name == "Content-Length") {
			continue // as http.ReadResponse: the framing is in TransferEncoding
		}
		h[f.Name] = append(h[f.Name], f.Value)
	}
	resp := &http.Response{Status: strconv.Itoa(ex.status) + " " + http.StatusText(ex.status), StatusCode: ex.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, ContentLength: ex.remaining,
		Close: !ex.reuse}
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	if ex.remaining == 0 {
		ex.finish()
		resp.Body = http.NoBody
	} else {
		resp.Body = &exchangeBody{ex: ex}
	}
	return resp
}

// exchangeBody is an exchange as an io.ReadCloser that forgets it once it
// has ended, so a Close after the end (or a second one) cannot reach the
// next exchange of the same connection.
type exchangeBody struct{ ex *upExchange }

func (b *exchangeBody) Read(p []byte) (int, error) {
	if b.ex == nil {
		return 0, io.EOF
	}
	n, err := b.ex.Read(p)
	if err != nil {
		b.ex = nil // ended: at io.EOF the connection went back to the pool
	}
	return n, err
}

func (b *exchangeBody) Close() error {
	if b.ex != nil {
		b.ex.abort()
		b.ex = nil
	}
	return nil
}

// readLine returns the next line without its CRLF (or bare LF). The line
// is a view of the buffer, valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errHeadTooLarge
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (status int, proto10 bool, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformedHead, clipString(string(line), 40))
	}
	switch line[7] {
	case '0':
		proto10 = true
	case '1':
	default:
		return 0, false, fmt.Errorf("%w: status line %q", errMalformedHead, clipString(string(line), 40))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformedHead, clipString(string(line), 40))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("%w: status %d", errMalformedHead, status)
	}
	return status, proto10, nil
}

// splitField splits "Name: value" with the value's surrounding blanks
// trimmed. Names must be tokens (no blank before the colon); values may
// not carry control bytes; a folded line (leading blank) is refused.
func splitField(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, false
	}
	name, value = line[:i], line[i+1:]
	if !httpfield.ValidName(name) {
		return nil, nil, false
	}
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	if !httpfield.ValidValue(value) {
		return nil, nil, false
	}
	return name, value, true
}

// hasToken reports whether the comma-separated list v has token (any case).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// skipTrailer consumes the trailer section after the last chunk (fields up
// to an empty line), so the connection is positioned at the next response.
func skipTrailer(br *bufio.Reader) error {
	for i := 0; ; i++ {
		line, err := readLine(br)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if i == maxHeadFields {
			return errHeadTooLarge
		}
		if _, _, ok := splitField(line); !ok {
			return errMalformedHead
		}
	}
}
