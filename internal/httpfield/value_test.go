package httpfield

import (
	"bufio"
	"strings"
	"testing"
)

// TestValidValue compares the word-at-a-time check with the byte loop on
// every byte value at every position of values of 1 to 45 bytes (up to a
// 32-byte block, a word and a tail).
func TestValidValue(t *testing.T) {
	full := []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHI")
	for n := 1; n <= len(full); n++ {
		base := full[:n]
		testValidValue(t, base)
	}
}

// testValidValue checks every byte value at every position of base.
func testValidValue(t *testing.T, base []byte) {
	t.Helper()
	for pos := range base {
		for c := 0; c < 256; c++ {
			v := append([]byte(nil), base...)
			v[pos] = byte(c)
			if got, want := ValidValue(v), validValueBytes(v); got != want {
				t.Fatalf("byte %#x at %d: ValidValue %v, byte loop %v", c, pos, got, want)
			}
			if got := ValidValueString(string(v)); got != validValueBytes(v) {
				t.Fatalf("byte %#x at %d: ValidValueString %v", c, pos, got)
			}
		}
	}
}

// TestWrite writes fields that fit the buffer, fill it exactly, and are
// longer than all of it, and requires the same bytes each way.
func TestWrite(t *testing.T) {
	for _, size := range []int{16, 40, 64, 4096} {
		var out strings.Builder
		bw := bufio.NewWriterSize(&out, size)
		var want strings.Builder
		for i, v := range []string{"", "v", strings.Repeat("x", 20), strings.Repeat("y", 33), strings.Repeat("z", 5000), "end"} {
			name := strings.Repeat("N", i+1)
			Write(bw, name, v)
			want.WriteString(name + ": " + v + "\r\n")
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want.String() {
			t.Errorf("buffer %d: wrote %q, want %q", size, out.String(), want.String())
		}
	}
}

// BenchmarkValidValue: a bearer token's worth of value (the longest field
// a data-plane request carries).
func BenchmarkValidValue(b *testing.B) {
	v := []byte("Bearer " + strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6Ik9m.", 24))
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if !ValidValue(v) {
			b.Fatal("invalid")
		}
	}
}
