package exactly

import "fmt"

// Kind is a logical column type, independent of any database. Decoders
// state it from a record schema (Field); create and evolve infer it from
// values when a record carries no schema; dialects map it to DDL text.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindBool
	KindInt16
	KindInt32
	KindInt64
	KindFloat32
	KindFloat64
	// KindDecimal is an exact number; see Type.Precision and Type.Scale.
	KindDecimal
	KindText
	KindBytes
	// KindDate is a calendar date.
	KindDate
	// KindTime is a time of day without a date.
	KindTime
	// KindTimestamp is a date and time without a zone (wall clock).
	KindTimestamp
	// KindTimestampTZ is an instant: a date and time with a zone.
	KindTimestampTZ
	// KindJSON is a nested value (an object, an array, a schema's struct, map or array).
	KindJSON
)

var kindNames = [...]string{"unknown", "bool", "int16", "int32", "int64", "float32", "float64",
	"decimal", "text", "bytes", "date", "time", "timestamp", "timestamptz", "json"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Type is a logical column type.
type Type struct {
	Kind Kind
	// Precision is, for KindDecimal, the total number of digits, and for
	// KindTime/KindTimestamp/KindTimestampTZ the fractional second digits
	// (3, 6, 9). 0 means the schema does not say.
	Precision int
	// Scale is, for KindDecimal, the digits after the point. A negative
	// Scale means the schema does not say (Debezium's
	// VariableScaleDecimal, a JSON number without a schema).
	Scale int
}

func (t Type) String() string {
	switch {
	case t.Kind == KindDecimal && t.Scale < 0:
		return "decimal"
	case t.Kind == KindDecimal && t.Precision > 0:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case t.Kind == KindDecimal:
		return fmt.Sprintf("decimal(?,%d)", t.Scale)
	}
	return t.Kind.String()
}

// Field describes one field of a record's row as the record's schema
// states it.
type Field struct {
	Name string
	Type Type
	// Nullable is true when the schema marks the field optional.
	Nullable bool
}
