package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/exactly/exactly"
)

// This file reads a record value's JSON object by hand: encoding/json's
// reflection was a third of all CPU in the bench. The rule: parseObject
// accepts and rejects exactly what encoding/json's Decoder (UseNumber)
// followed by Value accepts and rejects, and returns the same map, down to
// the Go types. FuzzObjectMatchesEncodingJSON holds it to that against
// encoding/json itself. Nested objects and arrays (rare in CDC rows) are
// validated here, then handed to encoding/json and json.Marshal, so their
// exactly.JSON text is encoding/json's by construction.

// maxJSONDepth is encoding/json's nesting limit, the top-level object counted:
// deeper input is an error there, so it is here.
const maxJSONDepth = 10000

var errEOF = errors.New("unexpected end of JSON input")

// objectParser reads one JSON object from b; i is the next byte to read.
type objectParser struct {
	b []byte
	i int
	// share says string values are cut from s, one copy of b made at
	// the first (a row's strings then cost one allocation, not one each);
	// only for a row's own object, whose strings are most of its bytes.
	share bool
	s     string
	// hint is the names of the decoder's last shape: the n-th member
	// most likely has the n-th of them, found by comparing bytes instead
	// of hashing them to intern (see names).
	hint []string
	n    int
}

// parseObject decodes the JSON object in b into column values (see Value).
// Like encoding/json's Decoder followed by More, it ignores whatever
// follows the object after white space and a '}' or ']'.
func parseObject(b []byte) (map[string]any, error) {
	m, _, err := parseRow(b, false, nil)
	return m, err
}

// parseRow is parseObject that also returns the object's shape (see
// shapes) when shaped is set, trying last first.
func parseRow(b []byte, shaped bool, last *lastShape) (map[string]any, *exactly.Shape, error) {
	m, _, shape, err := parseImage(b, shaped, false, last)
	return m, shape, err
}

// parseValues is parseRow returning the row by position (see
// exactly.Change.Values) when it has a shape of distinct names, else as
// a map.
func parseValues(b []byte, last *lastShape) (map[string]any, []any, *exactly.Shape, error) {
	return parseImage(b, true, true, last)
}

// parseImage reads a row's object: by position when byPosition is set and
// it can be, else as a map; with its shape when shaped is set.
func parseImage(b []byte, shaped, byPosition bool, last *lastShape) (map[string]any, []any, *exactly.Shape, error) {
	p := objectParser{b: b, share: true}
	if last != nil {
		if s := last.p.Load(); s != nil {
			p.hint = s.Names
		}
	}
	p.space()
	if p.i == len(b) {
		return nil, nil, nil, errEOF
	}
	if b[p.i] != '{' {
		return nil, nil, nil, p.notObject()
	}
	p.i++
	// The members are collected first so that the map is made at its
	// size: growing it took a quarter of the time.
	var buf [32]member
	members := buf[:0]
	p.space()
	if p.i < len(b) && b[p.i] == '}' {
		p.i++
	} else {
		var err error
		if members, err = p.members(members); err != nil {
			return nil, nil, nil, err
		}
	}
	p.space()
	if p.i < len(b) && b[p.i] != '}' && b[p.i] != ']' {
		return nil, nil, nil, errors.New("trailing data after the JSON value")
	}
	var shape *exactly.Shape
	if shaped {
		shape = shapes.get(members, last)
	}
	if byPosition && shape != nil && shape.Distinct() {
		vals := make([]any, len(members))
		for i, kv := range members {
			vals[i] = kv.value
		}
		return nil, vals, shape, nil
	}
	m := make(map[string]any, len(members))
	for _, kv := range members {
		m[kv.key] = kv.value // a repeated key keeps its last value, as in encoding/json
	}
	return m, nil, shape, nil
}

type member struct {
	key   string
	value any
}

// members appends the key:value pairs up to and including the closing '}'.
func (p *objectParser) members(out []member) ([]member, error) {
	for {
		if p.i == len(p.b) {
			return nil, errEOF
		}
		if p.b[p.i] != '"' {
			return nil, p.unexpected("looking for beginning of object key string")
		}
		k, err := p.name()
		if err != nil {
			return nil, err
		}
		p.n++
		if err := p.colon(); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, member{k, v})
		p.space()
		if p.i == len(p.b) {
			return nil, errEOF
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			return out, nil
		default:
			return nil, p.unexpected("after object key:value pair")
		}
	}
}

// value reads a member's value and normalises it as Value does.
func (p *objectParser) value() (any, error) {
	if p.i == len(p.b) {
		return nil, errEOF
	}
	switch c := p.b[p.i]; c {
	case '"':
		return p.string()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		start := p.i
		isInt, err := p.number()
		if err != nil {
			return nil, err
		}
		return numberValue(p.b[start:p.i], isInt), nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	case '{', '[':
		start := p.i
		if err := p.skip(2); err != nil {
			return nil, err
		}
		return nested(p.b[start:p.i])
	}
	return nil, p.unexpected("looking for beginning of value")
}

// numberValue turns a number's text into an int64 when it is an integer that
// fits, else into an exactly.Decimal of the text as written.
func numberValue(s []byte, isInt bool) any {
	if n, ok := parseInt(s, isInt); ok {
		return n
	}
	return exactly.Decimal(s)
}

// nested normalises a nested object or array, already validated, through
// encoding/json: its map and slice, then json.Marshal's text.
func nested(b []byte) (any, error) {
	var v any
	if err := unmarshal(b, &v); err != nil {
		return nil, err
	}
	return Value(v), nil
}

// skip reads over the object or array at p.i, validating it; depth is its
// nesting depth.
func (p *objectParser) skip(depth int) error {
	if depth > maxJSONDepth {
		return errors.New("exceeded max depth")
	}
	end := byte(']')
	if p.b[p.i] == '{' {
		end = '}'
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == end {
		p.i++
		return nil
	}
	for {
		if end == '}' {
			if p.i == len(p.b) {
				return errEOF
			}
			if p.b[p.i] != '"' {
				return p.unexpected("looking for beginning of object key string")
			}
			p.i++
			if err := p.skipString(); err != nil {
				return err
			}
			p.space()
			if p.i == len(p.b) {
				return errEOF
			}
			if p.b[p.i] != ':' {
				return p.unexpected("after object key")
			}
			p.i++
			p.space()
		}
		if err := p.skipValue(depth); err != nil {
			return err
		}
		p.space()
		if p.i == len(p.b) {
			return errEOF
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case end:
			p.i++
			return nil
		default:
			return p.unexpected("after a value in an object or array")
		}
	}
}

// skipValue reads over any value inside a container at depth.
func (p *objectParser) skipValue(depth int) error {
	if p.i == len(p.b) {
		return errEOF
	}
	switch p.b[p.i] {
	case '"':
		p.i++
		return p.skipString()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, err := p.number()
		return err
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case '{', '[':
		return p.skip(depth + 1)
	}
	return p.unexpected("looking for beginning of value")
}

// number reads over a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// and says whether it has neither fraction nor exponent.
func (p *objectParser) number() (isInt bool, err error) {
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i == len(p.b):
		return false, errEOF
	case p.b[p.i] == '0':
		p.i++
	case '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return false, p.unexpected("in numeric literal")
	}
	isInt = true
	if p.i < len(p.b) && p.b[p.i] == '.' {
		isInt = false
		p.i++
		if err := p.someDigits("after decimal point in numeric literal"); err != nil {
			return false, err
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		isInt = false
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if err := p.someDigits("in exponent of numeric literal"); err != nil {
			return false, err
		}
	}
	return isInt, nil
}

func (p *objectParser) someDigits(context string) error {
	if p.i == len(p.b) {
		return errEOF
	}
	if p.b[p.i] < '0' || p.b[p.i] > '9' {
		return p.unexpected(context)
	}
	p.digits()
	return nil
}

func (p *objectParser) digits() {
	i := p.i
	for i < len(p.b) && '0' <= p.b[i] && p.b[i] <= '9' {
		i++
	}
	p.i = i
}

// literal reads over word (true, false, null).
func (p *objectParser) literal(word string) error {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return nil
	}
	for j := 0; j < len(word); j, p.i = j+1, p.i+1 {
		if p.i == len(p.b) {
			return errEOF
		}
		if p.b[p.i] != word[j] {
			return p.unexpected("in literal " + word)
		}
	}
	return nil // not reached: the fast check above matched
}

// string reads the string at p.i (its opening quote) and unquotes it.
func (p *objectParser) string() (string, error) {
	p.i++
	start := p.i
	i := start
	for i+8 <= len(p.b) && !special(binary.LittleEndian.Uint64(p.b[i:])) {
		i += 8 // eight plain bytes at once: long text values are most of a row
	}
	for ; i < len(p.b); i++ {
		c := p.b[i]
		if c == '"' {
			p.i = i + 1
			if p.share {
				if p.s == "" {
					p.s = string(p.b)
				}
				return p.s[start:i], nil
			}
			return string(p.b[start:i]), nil
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			p.i = i
			if err := p.skipString(); err != nil {
				return "", err
			}
			return string(unquote(p.b[start : p.i-1])), nil
		}
	}
	p.i = len(p.b)
	return "", errEOF
}

// special reports whether any of the eight bytes in x is a quote, a
// backslash, a control character or not ASCII (bit tricks: a byte below
// n is found by subtracting n from every byte and looking at the borrow;
// no byte is missed, and string's byte loop tells which one it is).
func special(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	below := func(x uint64, n uint64) uint64 { return (x - ones*n) &^ x }
	return (below(x^ones*'"', 1)|below(x^ones*'\\', 1)|below(x, ' ')|x)&high != 0
}

// name reads a member name as string does, the same few names of a
// topic's records shared through names rather than copied per record.
func (p *objectParser) name() (string, error) {
	start := p.i + 1
	for i := start; i < len(p.b); i++ {
		c := p.b[i]
		if c == '"' {
			p.i = i + 1
			if p.n < len(p.hint) && p.hint[p.n] == string(p.b[start:i]) { // no allocation: compared as bytes
				return p.hint[p.n], nil
			}
			return names.get(p.b[start:i]), nil
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
	}
	// A copy of its own: a shape may keep the name for as long as the
	// process runs, and must not keep the whole record with it.
	share := p.share
	p.share = false
	s, err := p.string()
	p.share = share
	return s, err
}

// skipString reads over the rest of a string, validating its escapes, up
// to and including the closing quote.
func (p *objectParser) skipString() error {
	for p.i < len(p.b) {
		// Most bytes are neither quote, backslash nor control: run over
		// them with the index in a register.
		i := p.i
		for i < len(p.b) && p.b[i] != '"' && p.b[i] != '\\' && p.b[i] >= ' ' {
			i++
		}
		if p.i = i; i == len(p.b) {
			break
		}
		c := p.b[i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c == '\\':
			p.i++
			if p.i == len(p.b) {
				return errEOF
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for range 4 {
					if p.i == len(p.b) {
						return errEOF
					}
					if hex(p.b[p.i]) < 0 {
						return p.unexpected("in \\u hexadecimal character escape")
					}
					p.i++
				}
			default:
				return p.unexpected("in string escape code")
			}
		case c < ' ':
			return p.unexpected("in string literal")
		default:
			p.i++
		}
	}
	return errEOF
}

// unquote turns a validated string's content (between the quotes) into
// its text as encoding/json does: escapes decoded, a surrogate that is not
// half of a valid pair and each byte of invalid UTF-8 replaced by U+FFFD.
func unquote(s []byte) []byte {
	r := 0
	for r < len(s) {
		c := s[r]
		if c == '\\' {
			break
		}
		if c < utf8.RuneSelf {
			r++
			continue
		}
		rr, size := utf8.DecodeRune(s[r:])
		if rr == utf8.RuneError && size == 1 {
			break
		}
		r += size
	}
	if r == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	b = append(b, s[:r]...)
	for r < len(s) {
		c := s[r]
		switch {
		case c == '\\':
			r++
			switch s[r] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := u4(s[r+1:])
				r += 5
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, u4(s[r+2:])); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[r])
			}
			r++
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return b
}

// u4 reads the four hexadecimal digits of a validated \u escape.
func u4(s []byte) rune {
	return rune(hex(s[0])<<12 | hex(s[1])<<8 | hex(s[2])<<4 | hex(s[3]))
}

func hex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func (p *objectParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *objectParser) unexpected(context string) error {
	return fmt.Errorf("invalid character %q %s (offset %d)", p.b[p.i], context, p.i)
}

// notObject names what the top-level value is instead of an object.
func (p *objectParser) notObject() error {
	switch c := p.b[p.i]; {
	case c == '[':
		return errors.New("an array")
	case c == '"':
		return errors.New("a string")
	case c == 't' || c == 'f':
		return errors.New("a boolean")
	case c == '-' || '0' <= c && c <= '9':
		return errors.New("a number")
	case c == 'n' && bytes.HasPrefix(p.b[p.i:], []byte("null")):
		return errors.New("null")
	}
	return p.unexpected("looking for beginning of value")
}
