package exactly

import (
	"fmt"
	"strconv"
	"strings"
)

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
	// KindJSON is a nested value (object, array, Connect struct/map/array).
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

// ConnectType maps a Kafka Connect schema (as carried by Debezium and the
// JSON converter with schemas.enable, or an Avro schema's connect.name) to
// a logical type. typ is the Connect primitive type (int8 … struct), name
// the schema's logical name ("org.apache.kafka.connect.data.Decimal",
// "io.debezium.time.MicroTimestamp", …) or "", params its parameters.
func ConnectType(typ, name string, params map[string]string) Type {
	switch name {
	case "org.apache.kafka.connect.data.Decimal":
		t := Type{Kind: KindDecimal, Scale: -1}
		if s, err := strconv.Atoi(params["scale"]); err == nil {
			t.Scale = s
		}
		if p, err := strconv.Atoi(params["connect.decimal.precision"]); err == nil {
			t.Precision = p
		}
		return t
	case "io.debezium.data.VariableScaleDecimal":
		return Type{Kind: KindDecimal, Scale: -1}
	case "org.apache.kafka.connect.data.Date", "io.debezium.time.Date":
		return Type{Kind: KindDate}
	case "org.apache.kafka.connect.data.Time", "io.debezium.time.Time":
		return Type{Kind: KindTime, Precision: 3}
	case "io.debezium.time.MicroTime":
		return Type{Kind: KindTime, Precision: 6}
	case "io.debezium.time.NanoTime":
		return Type{Kind: KindTime, Precision: 9}
	case "io.debezium.time.ZonedTime":
		return Type{Kind: KindText} // a time with an offset has no portable column type
	case "org.apache.kafka.connect.data.Timestamp", "io.debezium.time.Timestamp":
		return Type{Kind: KindTimestamp, Precision: 3}
	case "io.debezium.time.MicroTimestamp":
		return Type{Kind: KindTimestamp, Precision: 6}
	case "io.debezium.time.NanoTimestamp":
		return Type{Kind: KindTimestamp, Precision: 9}
	case "io.debezium.time.ZonedTimestamp":
		return Type{Kind: KindTimestampTZ}
	case "io.debezium.time.Year":
		return Type{Kind: KindInt32}
	case "io.debezium.data.Json":
		return Type{Kind: KindJSON}
	case "io.debezium.data.Uuid", "io.debezium.data.Enum", "io.debezium.data.EnumSet", "io.debezium.data.Xml":
		return Type{Kind: KindText}
	case "io.debezium.data.Bits":
		return Type{Kind: KindBytes}
	}
	switch strings.ToLower(typ) {
	case "boolean":
		return Type{Kind: KindBool}
	case "int8", "int16":
		return Type{Kind: KindInt16}
	case "int32":
		return Type{Kind: KindInt32}
	case "int64":
		return Type{Kind: KindInt64}
	case "float32", "float": // float and double: the names Connect's JsonConverter writes
		return Type{Kind: KindFloat32}
	case "float64", "double":
		return Type{Kind: KindFloat64}
	case "string":
		return Type{Kind: KindText}
	case "bytes":
		return Type{Kind: KindBytes}
	case "struct", "map", "array":
		return Type{Kind: KindJSON}
	}
	return Type{Kind: KindUnknown}
}

// AvroType maps an Avro schema (primitive type name and logicalType) to a
// logical type. When the schema carries a connect.name (Debezium's Avro
// converter), prefer ConnectType with it.
func AvroType(primitive, logical string, precision, scale int) Type {
	switch logical {
	case "decimal":
		return Type{Kind: KindDecimal, Precision: precision, Scale: scale}
	case "date":
		return Type{Kind: KindDate}
	case "time-millis":
		return Type{Kind: KindTime, Precision: 3}
	case "time-micros":
		return Type{Kind: KindTime, Precision: 6}
	case "timestamp-millis":
		return Type{Kind: KindTimestampTZ, Precision: 3}
	case "timestamp-micros":
		return Type{Kind: KindTimestampTZ, Precision: 6}
	case "timestamp-nanos":
		return Type{Kind: KindTimestampTZ, Precision: 9}
	case "local-timestamp-millis":
		return Type{Kind: KindTimestamp, Precision: 3}
	case "local-timestamp-micros":
		return Type{Kind: KindTimestamp, Precision: 6}
	case "local-timestamp-nanos":
		return Type{Kind: KindTimestamp, Precision: 9}
	case "uuid":
		return Type{Kind: KindText}
	}
	switch primitive {
	case "boolean":
		return Type{Kind: KindBool}
	case "int":
		return Type{Kind: KindInt32}
	case "long":
		return Type{Kind: KindInt64}
	case "float":
		return Type{Kind: KindFloat32}
	case "double":
		return Type{Kind: KindFloat64}
	case "string", "enum":
		return Type{Kind: KindText}
	case "bytes", "fixed":
		return Type{Kind: KindBytes}
	case "record", "map", "array":
		return Type{Kind: KindJSON}
	}
	return Type{Kind: KindUnknown}
}
