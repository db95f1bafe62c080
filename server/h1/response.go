package h1

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpfield"
)

// response is the fast path's http.ResponseWriter. A body whose length the
// handler declared goes out as written; one it did not is held (up to
// maxPending) so that a handler that writes a small body and returns sends
// it with a Content-Length, as net/http does; a longer or flushed one is
// chunked.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	status int

	wroteHeader bool // the final status is decided
	committed   bool // the head is in the write buffer
	chunked     bool
	declared    int64 // the handler's Content-Length, -1 if none
	written     int64
	closeAfter  bool
	handlerDone bool
	deadlineSet bool
	fullDuplex  bool
	// head: the request is a HEAD; what the handler writes is counted and
	// dropped, as net/http does (a small body still sets Content-Length).
	head bool
	body *body // the request's body
	err  error // a write failed: the client is gone
}

var errAfterHandler = errors.New("h1: write after the handler returned")

func (w *response) init(c *conn, r *http.Request, b *body) {
	w.c, w.req, w.body = c, r, b
	w.head = r.Method == http.MethodHead
	// The connection's header map serves each response in turn: a
	// handler may not use its ResponseWriter, the header included, once it
	// has returned (http.Handler), and the head is written by then. An
	// emptied small map keeps its storage, so most responses allocate no
	// map at all; one a response grew past a group is dropped instead.
	if len(c.header) <= 8 && c.header != nil {
		clear(c.header)
	} else {
		c.header = make(http.Header, 4)
	}
	w.header = c.header
	w.declared = -1
	c.pending = c.pending[:0]
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.handlerDone {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if v, err := strconv.ParseInt(cl[0], 10, 64); err == nil && v >= 0 && len(cl) == 1 {
			w.declared = v
		} else {
			delete(w.header, "Content-Length") // unusable: framed by the server instead
		}
	}
}

// writeInterim sends a 1xx response (103 Early Hints) at once, with the
// header as it is.
func (w *response) writeInterim(code int) {
	bw := w.c.bw
	bw.WriteString(statusLine(code))
	w.writeFields(false)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *response) bodyAllowed() bool {
	return w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *response) Write(p []byte) (int, error) {
	if w.handlerDone {
		return 0, errAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.committed {
		if w.declared < 0 && len(w.c.pending)+len(p) <= maxPending {
			if len(w.c.pending) == 0 && len(p) > 0 {
				w.sniff(p)
			}
			w.c.pending = append(w.c.pending, p...)
			return len(p), nil
		}
		if len(w.c.pending) == 0 && len(p) > 0 {
			w.sniff(p)
		}
		w.commit(false)
	}
	return w.writeBody(p)
}

// sniff sets the Content-Type from the first bytes written, when the
// handler set none (net/http's rule).
func (w *response) sniff(p []byte) {
	if _, ok := w.header["Content-Type"]; !ok {
		w.header["Content-Type"] = []string{http.DetectContentType(p)}
	}
}

// writeBody writes p after the head, framed (a HEAD's is dropped).
func (w *response) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.head {
		w.written += int64(len(p))
		return len(p), nil
	}
	bw := w.c.bw
	var err error
	n := len(p)
	switch {
	case w.declared >= 0:
		if left := w.declared - w.written; int64(n) > left {
			n = int(left)
			err = http.ErrContentLength
		}
		_, werr := bw.Write(p[:n])
		if werr != nil {
			err = werr
		}
	case w.chunked:
		bw.WriteString(strconv.FormatInt(int64(n), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil && err != http.ErrContentLength {
		w.err = err
	}
	return n, err
}

// commit writes the head. final: the handler has returned, so the held
// body is all of it.
func (w *response) commit(final bool) {
	w.committed = true
	bw := w.c.bw
	bw.WriteString(statusLine(w.status))
	h := w.header
	if cv := h["Connection"]; len(cv) > 0 && hasToken(cv[0], "close") {
		w.closeAfter = true
	}
	if w.req.Close || w.c.s.shutdown.Load() {
		w.closeAfter = true
	}
	// A request body the handler left unread is read away now, before the
	// response goes out, so that the connection can carry the next
	// request (clients that send a whole body before reading the answer
	// would otherwise wait on each other); one too long to read away ends
	// the connection, and the response says so — a client must not send
	// its next request on it. net/http does the same. A body that stalled
	// is not waited for again.
	if rest := w.body.remaining; rest > 0 && !w.fullDuplex && !w.closeAfter {
		if rest > maxDiscard || w.body.stalled || !w.c.discardBody(w.body) {
			w.closeAfter = true
		}
	}
	if w.bodyAllowed() {
		switch {
		case w.declared >= 0:
			// the handler's Content-Length, written with the fields
		case final && (!w.head || len(w.c.pending) > 0):
			// A HEAD's length is the body the handler wrote, when it wrote
			// one (net/http's rule).
			bw.WriteString("Content-Length: ")
			bw.WriteString(strconv.Itoa(len(w.c.pending)))
			bw.WriteString("\r\n")
			w.declared = int64(len(w.c.pending))
		case w.head:
			// No framing: a HEAD's answer has no body.
		default:
			w.chunked = true
			bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(date(time.Now()))
		bw.WriteString("\r\n")
	}
	if w.closeAfter {
		// Whatever Connection the handler set, the connection ends.
		bw.WriteString("Connection: close\r\n")
	}
	w.writeFields(w.bodyAllowed())
	bw.WriteString("\r\n")
	if len(w.c.pending) > 0 {
		p := w.c.pending
		w.c.pending = w.c.pending[:0]
		w.writeBody(p)
	}
}

// writeFields writes the header's fields, leaving out those the framing
// decides (when framed) and any whose name is not a token; a value's line
// breaks become spaces, so a value can never start a field of its own.
func (w *response) writeFields(framed bool) {
	bw := w.c.bw
	for name, values := range w.header {
		if framed && name == "Transfer-Encoding" || !w.bodyAllowed() && name == "Content-Length" && w.status != http.StatusNotModified ||
			w.closeAfter && name == "Connection" {
			continue
		}
		if !httpfield.ValidName(name) {
			continue
		}
		for _, v := range values {
			httpfield.Write(bw, name, fieldValue(v))
		}
	}
}

// fieldValue is v as it goes on the wire: line breaks become spaces (so a
// value can never start a field of its own), surrounding blanks go. A
// value without control bytes — all but a malformed one — is looked at a
// word at a time.
func fieldValue(v string) string {
	if !httpfield.ValidValueString(v) && strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	return strings.TrimSpace(v)
}

// Flush sends what has been written (http.Flusher; a streamed response).
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush with its error (http.ResponseController).
func (w *response) FlushError() error {
	if w.handlerDone {
		return errAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.tc.SetReadDeadline(t) }

func (w *response) SetWriteDeadline(t time.Time) error {
	w.deadlineSet = true
	return w.c.tc.SetWriteDeadline(t)
}

// EnableFullDuplex serves http.ResponseController: the request body stays
// readable after the response has started, and what the handler leaves
// of it is dealt with when it returns.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// finish completes the response after the handler returned and reports
// whether the connection may carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusOK
	}
	if !w.committed {
		w.commit(true)
	} else if w.chunked && w.err == nil {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.declared >= 0 && w.written < w.declared && !w.head {
		w.closeAfter = true // a short body: the client must not wait for the rest
	}
	if w.err != nil {
		return false
	}
	if err := w.c.bw.Flush(); err != nil {
		return false
	}
	return !w.closeAfter
}

// statusLine returns "HTTP/1.1 {code} {text}\r\n".
func statusLine(code int) string {
	if code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n"
}

var statusLines = func() []string {
	lines := make([]string, 600)
	for code := range lines {
		if text := http.StatusText(code); text != "" {
			lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return lines
}()

// date returns the Date header's value for now, formatted once a second.
func date(now time.Time) string {
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &dateEntry{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type dateEntry struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[dateEntry]
