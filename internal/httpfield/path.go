package httpfield

// PlainPath reports whether every byte of path is one that url.URL keeps
// unescaped in a path (RFC 3986's unreserved characters and
// "$&+,/:;=@"): the escaped path of such a path is the path itself, and
// its segments need no unescaping. Eight bytes at a time, as ValidName;
// the loop is ValidName's with another word test and table, written out:
// a shared one taking the word test as a func is not inlined (it is
// generic over string and []byte), and calls it indirectly every word.
func PlainPath(path string) bool {
	i := 0
	for ; i+8 <= len(path); i += 8 {
		x := word(path, i)
		if plainWord(x) {
			continue
		}
		for j := i; j < i+8; j++ {
			if !plainPathChars[path[j]] {
				return false
			}
		}
	}
	if i < len(path) && i >= 8 {
		// The rest is the end of the path's last eight bytes: one word,
		// overlapping bytes already checked.
		i = len(path) - 8
		x := word(path, i)
		if plainWord(x) {
			return true
		}
	}
	for ; i < len(path); i++ {
		if !plainPathChars[path[i]] {
			return false
		}
	}
	return true
}

// IsPlainPathChar reports whether c is a byte PlainPath accepts.
func IsPlainPathChar(c byte) bool { return plainPathChars[c] }

var plainPathChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("-._~/:@$&+,;=") {
		t[c] = true
	}
	return t
}()

// plainWord reports whether the eight bytes of x are all letters, digits,
// '-', '.', '/' or '_' (most of a path; plainPathChars has a few more),
// with per-byte tests that carry nothing from one byte to the next (see
// alnumHyphens).
func plainWord(x uint64) bool {
	const low7 = 0x7f7f7f7f7f7f7f7f
	y := x & low7
	z := y | lsb*0x20
	letter := (z + lsb*(0x80-'a')) &^ (z + lsb*(0x7f-'z'))
	punctDigit := (y + lsb*(0x80-'-')) &^ (y + lsb*(0x7f-'9')) // - . / 0-9
	u := y ^ lsb*'_'
	underscore := ^(u + low7)
	return x&msb == 0 && (letter|punctDigit|underscore)&msb == msb
}

// word returns the eight bytes of b from i on as a little-endian word:
// one load and one bounds check (indexing b[i] to b[i+7] one by one keeps
// eight checks, and their branches, in every word of a loop).
func word[T string | []byte](b T, i int) uint64 {
	w := b[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}
