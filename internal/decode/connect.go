package decode

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exactly/exactly"
)

// connectSchema is a Kafka Connect schema as the JSON converter writes it
// next to a payload (schemas.enable=true).
type connectSchema struct {
	Type       string            `json:"type"`
	Optional   bool              `json:"optional"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Fields     []*connectSchema  `json:"fields"`
	Parameters map[string]string `json:"parameters"`
}

// field returns the struct schema's field of that name, or nil.
func (s *connectSchema) field(name string) *connectSchema {
	if s == nil {
		return nil
	}
	for _, f := range s.Fields {
		if f != nil && f.Field == name {
			return f
		}
	}
	return nil
}

// Logical type names of Debezium and Kafka Connect that change how a value
// is read. Anything else keeps its physical type.
const (
	connectDate       = "org.apache.kafka.connect.data.Date"
	connectTime       = "org.apache.kafka.connect.data.Time"
	connectTimestamp  = "org.apache.kafka.connect.data.Timestamp"
	connectDecimal    = "org.apache.kafka.connect.data.Decimal"
	dbzDate           = "io.debezium.time.Date"
	dbzTime           = "io.debezium.time.Time"
	dbzMicroTime      = "io.debezium.time.MicroTime"
	dbzNanoTime       = "io.debezium.time.NanoTime"
	dbzTimestamp      = "io.debezium.time.Timestamp"
	dbzMicroTimestamp = "io.debezium.time.MicroTimestamp"
	dbzNanoTimestamp  = "io.debezium.time.NanoTimestamp"
	dbzZonedTimestamp = "io.debezium.time.ZonedTimestamp"
	dbzVarDecimal     = "io.debezium.data.VariableScaleDecimal"
	dbzJSON           = "io.debezium.data.Json"
)

// connectValue reads the value at p.i and converts it by its Connect
// schema, as connectValue did with the value encoding/json decoded (nil
// keeps the value as JSON gives it, see Value). The value is valid JSON:
// scan read it.
func (p *objectParser) connectValue(s *connectSchema) (any, error) {
	c := p.b[p.i]
	if c == 'n' {
		p.i += len("null")
		return nil, nil
	}
	if s == nil {
		return p.value()
	}
	isNumber := c == '-' || '0' <= c && c <= '9'
	switch s.Type {
	case "boolean":
		switch c {
		case 't':
			return true, p.literal("true")
		case 'f':
			return false, p.literal("false")
		}
		return nil, fmt.Errorf("expected a boolean, got %s", p.kind())
	case "int8", "int16", "int32", "int64":
		if !isNumber {
			return nil, fmt.Errorf("expected an integer (%s), got %s", s.Type, p.kind())
		}
		start := p.i
		isInt, err := p.number()
		if err != nil {
			return nil, err
		}
		n := p.b[start:p.i]
		i, ok := parseInt(n, isInt)
		if !ok {
			return nil, fmt.Errorf("expected an integer (%s), got %s", s.Type, n)
		}
		return integer(s.Name, i)
	case "float32", "float64", "float", "double": // float and double: what Connect's JsonConverter writes
		if !isNumber {
			return nil, fmt.Errorf("expected a number (%s), got %s", s.Type, p.kind())
		}
		start := p.i
		if _, err := p.number(); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
		if err != nil {
			return nil, fmt.Errorf("expected a number (%s), got %s", s.Type, p.b[start:p.i])
		}
		return f, nil
	case "string":
		if c != '"' {
			return nil, fmt.Errorf("expected a string, got %s", p.kind())
		}
		str, err := p.string()
		if err != nil {
			return nil, err
		}
		return text(s.Name, str)
	case "bytes":
		if c != '"' {
			return nil, fmt.Errorf("expected base64 bytes, got %s", p.kind())
		}
		str, err := p.string()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("expected base64 bytes: %v", err)
		}
		if s.Name == connectDecimal {
			scale, err := decimalScale(s.Parameters)
			if err != nil {
				return nil, err
			}
			return DecimalFromBytes(b, scale), nil
		}
		return b, nil
	case "struct":
		if c != '{' {
			return nil, fmt.Errorf("expected a struct, got %s", p.kind())
		}
		start := p.i
		if err := p.skip(2); err != nil {
			return nil, err
		}
		if s.Name == dbzVarDecimal {
			var m map[string]any
			if err := unmarshal(p.b[start:p.i], &m); err != nil {
				return nil, err
			}
			return variableScaleDecimal(m)
		}
		return nested(p.b[start:p.i])
	case "array", "map":
		return p.value()
	}
	return nil, fmt.Errorf("unknown Connect schema type %q", s.Type)
}

// check reads over the value at p.i, failing as connectValue would.
func (p *objectParser) check(s *connectSchema) error {
	c := p.b[p.i]
	if s == nil || c == 'n' || s.Type == "array" || s.Type == "map" ||
		c == '"' && s.Type == "string" && s.Name != dbzZonedTimestamp { // text cannot fail
		return p.skipValue(2)
	}
	if intType(s.Type) && integerCannotFail(s.Name) && (c == '-' || '0' <= c && c <= '9') {
		// An integer that fits is good: no need to make the value (an
		// allocation per field of a source block).
		start := p.i
		if isInt, err := p.number(); err == nil {
			if _, ok := parseInt(p.b[start:p.i], isInt); ok {
				return nil
			}
		}
		p.i = start // connectValue says what is wrong
	}
	_, err := p.connectValue(s)
	return err
}

// boxedValue is connectValue boxing the value in ib when it can (see
// box.go): an integer, a float or text of a kind (see fieldKind) that no
// logical type changes, text written without escapes. The value at p.i
// is not null.
func (p *objectParser) boxedValue(s *connectSchema, kind fieldKind, ib *imageBlock) (any, error) {
	start := p.i
	c := p.b[start]
	isNumber := c == '-' || '0' <= c && c <= '9'
	switch {
	case kind == kindInt && isNumber:
		if isInt, err := p.number(); err == nil {
			if i, ok := parseInt(p.b[start:p.i], isInt); ok {
				return ib.int64(i), nil
			}
		}
	case kind == kindFloat && isNumber:
		if _, err := p.number(); err == nil {
			if f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64); err == nil {
				return ib.float64(f), nil
			}
		}
	case kind == kindText && c == '"':
		if end, ok := p.plainString(); ok {
			p.i = end + 1
			return ib.text(p.b, start+1, end, stringType), nil
		}
	}
	p.i = start // connectValue reads it, or says what is wrong
	return p.connectValue(s)
}

// plainString says whether the string at p.i (its opening quote) is
// its own text: no escapes, no control characters, valid UTF-8, as
// string would return it; end is the closing quote's index.
func (p *objectParser) plainString() (end int, ok bool) {
	i := p.i + 1
	for i+8 <= len(p.b) && !special(binary.LittleEndian.Uint64(p.b[i:])) {
		i += 8
	}
	ascii := true
	for ; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			return i, ascii || utf8.Valid(p.b[p.i+1:i])
		case c == '\\' || c < ' ':
			return 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false
}

// plainInteger says whether integer returns an integer of that logical
// name as it is.
func plainInteger(name string) bool {
	switch name {
	case dbzDate, connectDate, dbzTimestamp, connectTimestamp, dbzMicroTimestamp, dbzNanoTimestamp,
		dbzTime, connectTime, dbzMicroTime, dbzNanoTime:
		return false
	}
	return true
}

// checkKind is check of a field of that kind (see fieldKind).
func (p *objectParser) checkKind(s *connectSchema, kind fieldKind) error {
	switch c := p.b[p.i]; {
	case kind == kindText && c == '"':
		p.i++
		return p.skipString()
	case kind == kindInt && (c == '-' || '0' <= c && c <= '9'):
		start := p.i
		if isInt, err := p.number(); err == nil {
			if _, ok := parseInt(p.b[start:p.i], isInt); ok {
				return nil
			}
		}
		p.i = start // check says what is wrong
	}
	return p.check(s)
}

func intType(t string) bool {
	return t == "int64" || t == "int32" || t == "int16" || t == "int8"
}

// integerCannotFail says whether integer takes any int64 with that
// logical name: dates and times of day have ranges.
func integerCannotFail(name string) bool {
	switch name {
	case dbzDate, connectDate, dbzTime, connectTime, dbzMicroTime, dbzNanoTime:
		return false
	}
	return true
}

// kind describes the value at p.i for an error, as jsonKind.
func (p *objectParser) kind() string {
	start := p.i
	if err := p.skipValue(2); err != nil {
		return "invalid JSON"
	}
	return kindOf(p.b[start:p.i])
}

// parseInt reads a JSON integer's text as strconv.ParseInt does.
func parseInt(n []byte, isInt bool) (int64, bool) {
	if !isInt {
		return 0, false
	}
	digits := n
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) <= 18 { // cannot overflow
		var v int64
		for _, c := range digits {
			v = v*10 + int64(c-'0')
		}
		if n[0] == '-' {
			v = -v
		}
		return v, true
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

// integer applies the logical types carried by Connect integers.
func integer(name string, i int64) (any, error) {
	switch name {
	case dbzDate, connectDate: // days since the epoch
		if i < -1e7 || i > 1e7 {
			return nil, fmt.Errorf("date %d days from the epoch is out of range", i)
		}
		return time.Unix(i*86400, 0).UTC(), nil
	case dbzTimestamp, connectTimestamp: // milliseconds since the epoch
		return time.UnixMilli(i).UTC(), nil
	case dbzMicroTimestamp:
		return time.UnixMicro(i).UTC(), nil
	case dbzNanoTimestamp:
		return time.Unix(0, i).UTC(), nil
	case dbzTime, connectTime: // milliseconds past midnight
		return timeOfDay(time.Duration(i) * time.Millisecond)
	case dbzMicroTime:
		return timeOfDay(time.Duration(i) * time.Microsecond)
	case dbzNanoTime:
		return timeOfDay(time.Duration(i))
	}
	return i, nil
}

// timeOfDay renders a time past midnight as text ("13:45:00.123456"),
// which every sink casts to its time type.
func timeOfDay(d time.Duration) (any, error) {
	if d < 0 || d > 24*time.Hour {
		return nil, fmt.Errorf("time of day %s is out of range", d)
	}
	t := time.Unix(0, 0).UTC().Add(d)
	if d == 24*time.Hour {
		return "24:00:00", nil
	}
	return t.Format("15:04:05.999999999"), nil
}

// text applies the logical types carried by Connect strings.
func text(name, s string) (any, error) {
	switch name {
	case dbzZonedTimestamp:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("expected an ISO-8601 timestamp with offset (%s), got %q", dbzZonedTimestamp, s)
		}
		return t, nil
	case dbzJSON:
		return exactly.JSON(s), nil
	}
	return s, nil
}

func decimalScale(params map[string]string) (int, error) {
	sc, ok := params["scale"]
	if !ok {
		return 0, errors.New("decimal schema has no scale parameter")
	}
	scale, err := strconv.Atoi(sc)
	if err != nil || scale < -1000 || scale > 1000 {
		return 0, fmt.Errorf("decimal scale %q is not a small integer", sc)
	}
	return scale, nil
}

// variableScaleDecimal reads Debezium's {scale, value} decimal struct.
func variableScaleDecimal(m map[string]any) (any, error) {
	n, ok := m["scale"].(json.Number)
	if !ok {
		return nil, errors.New("variable scale decimal without an integer scale")
	}
	scale, err := strconv.Atoi(n.String())
	if err != nil || scale < -1000 || scale > 1000 {
		return nil, fmt.Errorf("variable scale decimal scale %s is not a small integer", n)
	}
	str, ok := m["value"].(string)
	if !ok {
		return nil, errors.New("variable scale decimal without base64 value bytes")
	}
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		return nil, fmt.Errorf("variable scale decimal value: %v", err)
	}
	return DecimalFromBytes(b, scale), nil
}

// DecimalFromBytes renders a big-endian two's-complement unscaled integer
// and a scale as exact decimal text: ([0x30 0x39], 2) is "123.45".
func DecimalFromBytes(b []byte, scale int) exactly.Decimal {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 { // negative: subtract 2^(8·len)
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return DecimalFromBig(n, scale)
}

// DecimalFromBig renders unscaled·10^-scale as exact decimal text.
func DecimalFromBig(unscaled *big.Int, scale int) exactly.Decimal {
	neg := unscaled.Sign() < 0
	digits := new(big.Int).Abs(unscaled).String()
	if scale <= 0 {
		if digits != "0" {
			digits += strings.Repeat("0", -scale)
		}
	} else {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return exactly.Decimal(digits)
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case string:
		return fmt.Sprintf("the string %q", truncate([]byte(x)))
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}
