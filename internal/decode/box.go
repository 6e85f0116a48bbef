package decode

import (
	"math"
	"unsafe"
)

// This file boxes the values of a row read by position (see
// exactly.Change.Values) in one allocation per row: an int64, a float64
// or a string put in an interface value is copied to the heap on its own
// (runtime.convT64, convTstring), and with the slice of values and each
// string's copy that was most of the allocations of a Debezium record
// (BenchmarkRecordPath/debezium: ~6 of its 10). A block holds the row's
// slice of values, and the int64s, float64s and string headers its
// interface values point into; the strings of the row share one copy of
// the record's bytes they were cut from (see imageBlock.text).
//
// The interface values are made by hand (eface): the type word of the
// value's type and a data word pointing into the block, which is what
// the runtime makes, pointing into memory of its own. A block is the
// row's alone, and nothing writes to a slot after its value is read, so
// the values are as immutable as the runtime's.

// eface is the layout of an interface value of type any.
type eface struct {
	typ, data unsafe.Pointer
}

var (
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	stringType  = typeWord("")
)

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// boxAt is the interface value of type typ whose value is at data.
func boxAt(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// maxBlock is the widest row boxed in a block; wider ones box as before.
const maxBlock = 64

// imageBlock hands out the slots of one row's block.
type imageBlock struct {
	values []any // len 0, cap the row's width
	words  []uint64
	strs   []string
	// texts are the first maxTexts strings cut from the record, in
	// strs' order, until done copies them; a row's further strings are
	// copied each (a short array: walkImage zeroes it per image).
	texts [maxTexts]span
}

const maxTexts = 16

// block is the memory of a row of up to N fields.
type block[V, W, S any] struct {
	values V
	words  W
	strs   S
}

// init prepares the block of a row of n (≤ maxBlock) fields.
func (ib *imageBlock) init(n int) {
	switch {
	case n <= 4:
		b := new(block[[4]any, [4]uint64, [4]string])
		ib.values, ib.words, ib.strs = b.values[:0:n], b.words[:0], b.strs[:0]
	case n <= 8:
		b := new(block[[8]any, [8]uint64, [8]string])
		ib.values, ib.words, ib.strs = b.values[:0:n], b.words[:0], b.strs[:0]
	case n <= 16:
		b := new(block[[16]any, [16]uint64, [16]string])
		ib.values, ib.words, ib.strs = b.values[:0:n], b.words[:0], b.strs[:0]
	case n <= 32:
		b := new(block[[32]any, [32]uint64, [32]string])
		ib.values, ib.words, ib.strs = b.values[:0:n], b.words[:0], b.strs[:0]
	default:
		b := new(block[[maxBlock]any, [maxBlock]uint64, [maxBlock]string])
		ib.values, ib.words, ib.strs = b.values[:0:n], b.words[:0], b.strs[:0]
	}
}

// int64 boxes i.
func (ib *imageBlock) int64(i int64) any {
	ib.words = append(ib.words, uint64(i))
	return boxAt(int64Type, unsafe.Pointer(&ib.words[len(ib.words)-1]))
}

// float64 boxes f.
func (ib *imageBlock) float64(f float64) any {
	ib.words = append(ib.words, math.Float64bits(f))
	return boxAt(float64Type, unsafe.Pointer(&ib.words[len(ib.words)-1]))
}

// text boxes the string b[at.start:at.end] of the record b, a string
// written without escapes; its text is filled in by done.
func (ib *imageBlock) text(b []byte, at span) any {
	if n := len(ib.strs); n < maxTexts {
		ib.texts[n] = at
		ib.strs = append(ib.strs, "")
	} else {
		ib.strs = append(ib.strs, string(b[at.start:at.end]))
	}
	return boxAt(stringType, unsafe.Pointer(&ib.strs[len(ib.strs)-1]))
}

// done gives the strings their text, all cut from one copy of the part
// of the record b they span, before the row's values are read.
func (ib *imageBlock) done(b []byte) {
	n := min(len(ib.strs), maxTexts)
	if n == 0 {
		return
	}
	first, last := ib.texts[0].start, ib.texts[n-1].end
	s := string(b[first:last])
	for i, at := range ib.texts[:n] {
		ib.strs[i] = s[at.start-first : at.end-first]
	}
}
