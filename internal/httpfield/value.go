package httpfield

import (
	"bufio"
	"encoding/binary"
	"unsafe"
)

// ValidValue reports whether a field value has no control characters but
// HTAB (and no DEL). Eight bytes at a time: a bearer token is a kilobyte,
// and a byte loop over it was most of what parsing a head cost.
func ValidValue(v []byte) bool {
	for len(v) >= 32 {
		le := binary.LittleEndian
		if suspect(le.Uint64(v))|suspect(le.Uint64(v[8:]))|suspect(le.Uint64(v[16:]))|suspect(le.Uint64(v[24:])) != 0 &&
			!validValueBytes(v[:32]) {
			return false
		}
		v = v[32:]
	}
	whole := v
	for len(v) >= 8 {
		if suspect(binary.LittleEndian.Uint64(v)) != 0 && !validValueBytes(v[:8]) {
			return false
		}
		v = v[8:]
	}
	if len(v) > 0 && len(whole) >= 8 {
		// The rest is the end of the value's last eight bytes: one word,
		// overlapping bytes already checked.
		last := whole[len(whole)-8:]
		return suspect(binary.LittleEndian.Uint64(last)) == 0 || validValueBytes(last)
	}
	return validValueBytes(v)
}

// ValidValueString is ValidValue of a string (read in place).
func ValidValueString(v string) bool {
	return ValidValue(unsafe.Slice(unsafe.StringData(v), len(v)))
}

// suspect is non-zero when a byte of x is below 0x20 or is DEL (the exact
// hasless and haszero tests of Bit Twiddling Hacks); such a word is then
// checked byte by byte (HTAB is below 0x20 and allowed).
func suspect(x uint64) uint64 {
	d := x ^ lsb*0x7f
	return ((x-lsb*0x20)&^x | (d-lsb)&^d) & msb
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func validValueBytes(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Write writes "name: value\r\n" to bw, with one copy when the field fits
// the buffer's room (four calls into bufio cost more); the caller has
// checked name and value.
func Write(bw *bufio.Writer, name, value string) {
	if b := bw.AvailableBuffer(); cap(b) >= len(name)+len(value)+4 {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
		bw.Write(b)
		return
	}
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}
