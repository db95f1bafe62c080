package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// The dump file is JSON lines:
//
//	{"format":"gatehouse-dump","version":1,"revision":R,"written":"…"}
//	{"meta":{"name":…,"value":base64}}                     every meta entry
//	{"object":{"kind":…,"key":…,"data":base64,…}}          every object
//	{"audit":{"seq":…,"time":…,"data":base64,…}}           every audit record
//	{"end":{"meta":M,"objects":O,"audit":A,"sha256":hex}}
//
// The last line counts the items and hashes every byte before it, so a
// truncated or damaged file is refused before anything it holds is kept
// (the hash detects accidents, not tampering: a sealed value that was
// changed fails to open, and the audit chain has its own hashes). Blobs
// are base64, byte for byte; times are RFC 3339 in UTC with microseconds.

// DumpFormat names the file format in its first line.
const DumpFormat = "gatehouse-dump"

// DumpVersion is the format version this build writes and reads.
const DumpVersion = 1

// maxDumpLine bounds one line of a dump file: an object's document and its
// sealed blob, base64-encoded.
const maxDumpLine = 64 << 20

type dumpHead struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Revision int64     `json:"revision"`
	Written  time.Time `json:"written"`
}

type dumpObject struct {
	Kind     string     `json:"kind"`
	Key      string     `json:"key"`
	Alt      string     `json:"alt,omitempty"`
	Ref      string     `json:"ref,omitempty"`
	Data     []byte     `json:"data"`
	Sealed   []byte     `json:"sealed,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Revision int64      `json:"revision"`
	Created  time.Time  `json:"created"`
	Updated  time.Time  `json:"updated"`
}

type dumpAudit struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Data     []byte    `json:"data"`
	PrevHash []byte    `json:"prevHash,omitempty"`
	Hash     []byte    `json:"hash"`
}

type dumpMeta struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// DumpCounts says how many items a dump holds.
type DumpCounts struct {
	Meta    int `json:"meta"`
	Objects int `json:"objects"`
	Audit   int `json:"audit"`
}

type dumpEnd struct {
	DumpCounts
	SHA256 string `json:"sha256"`
}

type dumpLine struct {
	Meta   *dumpMeta   `json:"meta,omitempty"`
	Object *dumpObject `json:"object,omitempty"`
	Audit  *dumpAudit  `json:"audit,omitempty"`
	End    *dumpEnd    `json:"end,omitempty"`
}

// WriteDump writes d's contents to w as a dump file and returns the
// revision and the counts it wrote.
func WriteDump(ctx context.Context, w io.Writer, d Dumper, now time.Time) (int64, DumpCounts, error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	var counts DumpCounts
	var revision int64
	line := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		bw.Write(b)
		return bw.WriteByte('\n')
	}
	err := d.Dump(ctx, func(rev int64) error {
		revision = rev
		return line(dumpHead{Format: DumpFormat, Version: DumpVersion, Revision: rev, Written: now.UTC()})
	}, func(it DumpItem) error {
		switch {
		case it.Meta != nil:
			counts.Meta++
			return line(dumpLine{Meta: &dumpMeta{Name: it.Meta.Name, Value: it.Meta.Value}})
		case it.Object != nil:
			counts.Objects++
			o := it.Object
			do := &dumpObject{Kind: o.Kind, Key: o.Key, Alt: o.Alt, Ref: o.Ref, Data: o.Data, Sealed: o.Sealed,
				Revision: o.Revision, Created: o.Created.UTC(), Updated: o.Updated.UTC()}
			if !o.Expires.IsZero() {
				t := o.Expires.UTC()
				do.Expires = &t
			}
			return line(dumpLine{Object: do})
		default:
			counts.Audit++
			a := it.Audit
			return line(dumpLine{Audit: &dumpAudit{Seq: a.Seq, Time: a.Time.UTC(), Data: a.Data, PrevHash: a.PrevHash, Hash: a.Hash}})
		}
	})
	if err != nil {
		return 0, counts, err
	}
	// The hash covers what the buffer holds too.
	if err := bw.Flush(); err != nil {
		return 0, counts, err
	}
	end := dumpEnd{DumpCounts: counts, SHA256: hex.EncodeToString(h.Sum(nil))}
	b, _ := json.Marshal(dumpLine{End: &end})
	if _, err := w.Write(append(b, '\n')); err != nil {
		return 0, counts, err
	}
	return revision, counts, nil
}

// DumpReader reads a dump file's items in order.
type DumpReader struct {
	// Revision and Written come from the file's first line.
	Revision int64
	Written  time.Time

	r      *bufio.Reader
	h      hash.Hash
	line   int
	counts DumpCounts
	done   bool
}

// ErrBadDumpFile: the file is not a complete, intact dump this build reads.
var ErrBadDumpFile = errors.New("not a complete Gatehouse dump")

// ReadDump reads and checks the first line of a dump file.
func ReadDump(r io.Reader) (*DumpReader, error) {
	d := &DumpReader{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	b, err := d.next()
	if err != nil {
		return nil, err
	}
	d.h.Write(b)
	d.h.Write([]byte{'\n'})
	var head dumpHead
	if err := strictJSON(b, &head); err != nil || head.Format != DumpFormat {
		return nil, fmt.Errorf("%w: the first line does not name the %s format", ErrBadDumpFile, DumpFormat)
	}
	if head.Version != DumpVersion {
		return nil, fmt.Errorf("%w: format version %d; this build reads version %d", ErrBadDumpFile, head.Version, DumpVersion)
	}
	if head.Revision < 0 {
		return nil, fmt.Errorf("%w: negative revision", ErrBadDumpFile)
	}
	d.Revision, d.Written = head.Revision, head.Written
	return d, nil
}

// Counts returns how many items Next has returned.
func (d *DumpReader) Counts() DumpCounts { return d.counts }

// next returns the next line without its newline, hashing it.
func (d *DumpReader) next() ([]byte, error) {
	d.line++
	var buf []byte
	for {
		part, err := d.r.ReadSlice('\n')
		buf = append(buf, part...)
		if len(buf) > maxDumpLine {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrBadDumpFile, d.line, maxDumpLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file ends at line %d before its last line (truncated?)", ErrBadDumpFile, d.line)
		}
		return nil, err
	}
	return buf[:len(buf)-1], nil
}

// Next returns the next item, and io.EOF once the last line has confirmed
// the counts and the hash of everything before it.
func (d *DumpReader) Next() (DumpItem, error) {
	if d.done {
		return DumpItem{}, io.EOF
	}
	b, err := d.next()
	if err != nil {
		return DumpItem{}, err
	}
	var l dumpLine
	if err := strictJSON(b, &l); err != nil {
		return DumpItem{}, fmt.Errorf("%w: line %d: %v", ErrBadDumpFile, d.line, err)
	}
	bad := func(what string) (DumpItem, error) {
		return DumpItem{}, fmt.Errorf("%w: line %d: %s", ErrBadDumpFile, d.line, what)
	}
	set := 0
	for _, p := range []bool{l.Meta != nil, l.Object != nil, l.Audit != nil, l.End != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return bad("a line must hold exactly one of meta, object, audit or end")
	}
	if l.End != nil {
		sum := hex.EncodeToString(d.h.Sum(nil))
		if l.End.DumpCounts != d.counts {
			return bad(fmt.Sprintf("the file holds %+v, its last line says %+v", d.counts, l.End.DumpCounts))
		}
		if l.End.SHA256 != sum {
			return bad("the file's content does not match its SHA-256 (damaged?)")
		}
		if _, err := d.r.ReadByte(); !errors.Is(err, io.EOF) {
			return bad("data follows the last line")
		}
		d.done = true
		return DumpItem{}, io.EOF
	}
	d.h.Write(b)
	d.h.Write([]byte{'\n'})
	switch {
	case l.Meta != nil:
		d.counts.Meta++
		return DumpItem{Meta: &MetaEntry{Name: l.Meta.Name, Value: l.Meta.Value}}, nil
	case l.Object != nil:
		d.counts.Objects++
		o := l.Object
		out := &Object{Kind: o.Kind, Key: o.Key, Alt: o.Alt, Ref: o.Ref, Data: o.Data, Sealed: o.Sealed,
			Revision: o.Revision, Created: o.Created.UTC(), Updated: o.Updated.UTC()}
		if o.Expires != nil {
			out.Expires = o.Expires.UTC()
		}
		if out.Data == nil {
			out.Data = []byte{}
		}
		return DumpItem{Object: out}, nil
	default:
		d.counts.Audit++
		a := l.Audit
		return DumpItem{Audit: &AuditRecord{Seq: a.Seq, Time: a.Time.UTC(), Data: a.Data, PrevHash: a.PrevHash, Hash: a.Hash}}, nil
	}
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing
// data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
