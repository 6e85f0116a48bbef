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
// slice of values and a slot per value its interface values point into
// (an int64, a float64's bits, a string header); the strings of the row
// share one copy of their bytes (see imageBlock.done).
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

// slot is the memory one boxed value points into: a string header (its
// data and length), or an int64's or float64's bits in the length's
// place, its data nil. The collector reads it as a string header: data a
// pointer, word not.
type slot struct {
	data unsafe.Pointer
	word uint64
}

// imageBlock hands out the slots of one row's block.
type imageBlock struct {
	values []any // len 0, cap the row's width
	slots  []slot
	// texts are the first maxTexts strings cut from the record b, until
	// done copies them: b[start:end] is slots[slot]'s text. A row's
	// further strings are copied each (a short array: walkImage zeroes
	// it per image).
	texts  [maxTexts]struct{ start, end, slot int32 }
	ntexts int
	// pending are the values of a row without a schema noted by later,
	// boxed by boxLater: b[start:end] is member's value.
	pending  [maxTexts]struct{ start, end, member int32 }
	npending int
}

const maxTexts = 16

// block is the memory of a row of up to N fields: [N]any, [N]slot.
type block[V, S any] struct {
	values V
	slots  S
}

// init prepares the block of a row of n (≤ maxBlock) fields.
func (ib *imageBlock) init(n int) {
	switch {
	case n <= 4:
		b := new(block[[4]any, [4]slot])
		ib.values, ib.slots = b.values[:0:n], b.slots[:0]
	case n <= 8:
		b := new(block[[8]any, [8]slot])
		ib.values, ib.slots = b.values[:0:n], b.slots[:0]
	case n <= 16:
		b := new(block[[16]any, [16]slot])
		ib.values, ib.slots = b.values[:0:n], b.slots[:0]
	case n <= 32:
		b := new(block[[32]any, [32]slot])
		ib.values, ib.slots = b.values[:0:n], b.slots[:0]
	default:
		b := new(block[[maxBlock]any, [maxBlock]slot])
		ib.values, ib.slots = b.values[:0:n], b.slots[:0]
	}
}

// word boxes the 8 bytes w as a value of type typ.
func (ib *imageBlock) word(typ unsafe.Pointer, w uint64) any {
	ib.slots = append(ib.slots, slot{word: w})
	return boxAt(typ, unsafe.Pointer(&ib.slots[len(ib.slots)-1].word))
}

// int64 boxes i.
func (ib *imageBlock) int64(i int64) any { return ib.word(int64Type, uint64(i)) }

// float64 boxes f.
func (ib *imageBlock) float64(f float64) any { return ib.word(float64Type, math.Float64bits(f)) }

// text boxes the string b[start:end] of the record b, a string written
// without escapes, as a value of typ (a string type); its text is filled
// in by done.
func (ib *imageBlock) text(b []byte, start, end int, typ unsafe.Pointer) any {
	ib.slots = append(ib.slots, slot{})
	k := len(ib.slots) - 1
	if n := ib.ntexts; n < maxTexts && end <= math.MaxInt32 {
		ib.texts[n].start, ib.texts[n].end, ib.texts[n].slot = int32(start), int32(end), int32(k)
		ib.ntexts++
	} else {
		*(*string)(unsafe.Pointer(&ib.slots[k])) = string(b[start:end])
	}
	return boxAt(typ, unsafe.Pointer(&ib.slots[k]))
}

// done gives the strings their text, all cut from one copy of their
// bytes in the record b, before the row's values are read.
func (ib *imageBlock) done(b []byte) {
	texts := ib.texts[:ib.ntexts]
	n := 0
	for _, t := range texts {
		n += int(t.end - t.start)
	}
	if n == 0 {
		return // "" needs no bytes: the slots are "" already
	}
	buf := make([]byte, 0, n)
	for _, t := range texts {
		buf = append(buf, b[t.start:t.end]...)
	}
	all := unsafe.String(&buf[0], n) // buf is not written again
	n = 0
	for _, t := range texts {
		l := int(t.end - t.start)
		*(*string)(unsafe.Pointer(&ib.slots[t.slot])) = all[n : n+l]
		n += l
	}
}

// later notes the value at p.i, of the row's member-th member, to box at
// the row's end (boxLater), when it is text written without escapes or
// an integer that fits an int64, and reads over it; it says whether it
// did. Such values are what value would make of them: a string, an int64.
func (ib *imageBlock) later(p *objectParser, member int) bool {
	if ib.npending == maxTexts || len(p.b) > math.MaxInt32 {
		return false
	}
	start, end := p.i, 0
	switch c := p.b[start]; {
	case c == '"':
		e, ok := p.plainString()
		if !ok {
			return false
		}
		p.i, end = e+1, e+1
	case c == '-' || '0' <= c && c <= '9':
		isInt, err := p.number()
		if err != nil || !isInt {
			p.i = start
			return false
		}
		if _, ok := parseInt(p.b[start:p.i], isInt); !ok {
			p.i = start
			return false
		}
		end = p.i
	default:
		return false
	}
	ib.pending[ib.npending].start, ib.pending[ib.npending].end, ib.pending[ib.npending].member = int32(start), int32(end), int32(member)
	ib.npending++
	return true
}

// boxLater returns the values of members, a row of the record b, those
// later noted boxed in a block when the row is not too wide for one.
func (ib *imageBlock) boxLater(b []byte, members []member) []any {
	var values []any
	if len(members) <= maxBlock {
		ib.init(len(members))
		values = ib.values[:len(members)]
	} else {
		values = make([]any, len(members))
	}
	for i, kv := range members {
		values[i] = kv.value
	}
	for _, pd := range ib.pending[:ib.npending] {
		var v any
		switch raw := b[pd.start:pd.end]; {
		case raw[0] == '"' && len(members) <= maxBlock:
			v = ib.text(b, int(pd.start)+1, int(pd.end)-1, stringType)
		case raw[0] == '"':
			v = string(raw[1 : len(raw)-1])
		default:
			i, _ := parseInt(raw, true)
			if len(members) <= maxBlock {
				v = ib.int64(i)
			} else {
				v = i
			}
		}
		values[pd.member] = v
	}
	if len(members) <= maxBlock {
		ib.done(b)
	}
	return values
}
