package decode

import (
	"encoding/binary"
	"testing"
	"unicode/utf8"
)

// TestSpecialFindsEveryByteStringStopsAt: the eight-byte test of string
// misses no quote, backslash, control character or non-ASCII byte, at any
// place among plain bytes, so string's result never depends on it.
func TestSpecialFindsEveryByteStringStopsAt(t *testing.T) {
	for c := 0; c < 256; c++ {
		stops := c == '"' || c == '\\' || c < ' ' || c >= utf8.RuneSelf
		for at := 0; at < 8; at++ {
			for _, fill := range []byte{'a', ' ', '~', '!', '#', '[', ']', 0x7f} {
				b := []byte{fill, fill, fill, fill, fill, fill, fill, fill}
				b[at] = byte(c)
				if got := special(binary.LittleEndian.Uint64(b)); got != stops {
					t.Fatalf("byte %#x at %d among %q: special %v, want %v", c, at, fill, got, stops)
				}
			}
		}
	}
}
