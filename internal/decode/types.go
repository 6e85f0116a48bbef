package decode

import (
	"strconv"
	"strings"

	"github.com/exactly/exactly"
)

// The column types a record schema states, by the schema's own type
// names: Kafka Connect's (Debezium, the JSON converter with
// schemas.enable) and Avro's. The root knows only the logical types.

// connectType maps a Kafka Connect schema (as carried by Debezium and the
// JSON converter with schemas.enable, or an Avro schema's connect.name) to
// a logical type. typ is the Connect primitive type (int8 … struct), name
// the schema's logical name ("org.apache.kafka.connect.data.Decimal",
// "io.debezium.time.MicroTimestamp", …) or "", params its parameters.
func connectType(typ, name string, params map[string]string) exactly.Type {
	switch name {
	case "org.apache.kafka.connect.data.Decimal":
		t := exactly.Type{Kind: exactly.KindDecimal, Scale: -1}
		if s, err := strconv.Atoi(params["scale"]); err == nil {
			t.Scale = s
		}
		if p, err := strconv.Atoi(params["connect.decimal.precision"]); err == nil {
			t.Precision = p
		}
		return t
	case "io.debezium.data.VariableScaleDecimal":
		return exactly.Type{Kind: exactly.KindDecimal, Scale: -1}
	case "org.apache.kafka.connect.data.Date", "io.debezium.time.Date":
		return exactly.Type{Kind: exactly.KindDate}
	case "org.apache.kafka.connect.data.Time", "io.debezium.time.Time":
		return exactly.Type{Kind: exactly.KindTime, Precision: 3}
	case "io.debezium.time.MicroTime":
		return exactly.Type{Kind: exactly.KindTime, Precision: 6}
	case "io.debezium.time.NanoTime":
		return exactly.Type{Kind: exactly.KindTime, Precision: 9}
	case "io.debezium.time.ZonedTime":
		return exactly.Type{Kind: exactly.KindText} // a time with an offset has no portable column type
	case "org.apache.kafka.connect.data.Timestamp", "io.debezium.time.Timestamp":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 3}
	case "io.debezium.time.MicroTimestamp":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 6}
	case "io.debezium.time.NanoTimestamp":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 9}
	case "io.debezium.time.ZonedTimestamp":
		return exactly.Type{Kind: exactly.KindTimestampTZ}
	case "io.debezium.time.Year":
		return exactly.Type{Kind: exactly.KindInt32}
	case "io.debezium.data.Json":
		return exactly.Type{Kind: exactly.KindJSON}
	case "io.debezium.data.Uuid", "io.debezium.data.Enum", "io.debezium.data.EnumSet", "io.debezium.data.Xml":
		return exactly.Type{Kind: exactly.KindText}
	case "io.debezium.data.Bits":
		return exactly.Type{Kind: exactly.KindBytes}
	}
	switch strings.ToLower(typ) {
	case "boolean":
		return exactly.Type{Kind: exactly.KindBool}
	case "int8", "int16":
		return exactly.Type{Kind: exactly.KindInt16}
	case "int32":
		return exactly.Type{Kind: exactly.KindInt32}
	case "int64":
		return exactly.Type{Kind: exactly.KindInt64}
	case "float32", "float": // float and double: the names Connect's JsonConverter writes
		return exactly.Type{Kind: exactly.KindFloat32}
	case "float64", "double":
		return exactly.Type{Kind: exactly.KindFloat64}
	case "string":
		return exactly.Type{Kind: exactly.KindText}
	case "bytes":
		return exactly.Type{Kind: exactly.KindBytes}
	case "struct", "map", "array":
		return exactly.Type{Kind: exactly.KindJSON}
	}
	return exactly.Type{Kind: exactly.KindUnknown}
}

// avroLogicalType maps an Avro schema (primitive type name and logicalType) to a
// logical type. When the schema carries a connect.name (Debezium's Avro
// converter), prefer connectType with it.
func avroLogicalType(primitive, logical string, precision, scale int) exactly.Type {
	switch logical {
	case "decimal":
		return exactly.Type{Kind: exactly.KindDecimal, Precision: precision, Scale: scale}
	case "date":
		return exactly.Type{Kind: exactly.KindDate}
	case "time-millis":
		return exactly.Type{Kind: exactly.KindTime, Precision: 3}
	case "time-micros":
		return exactly.Type{Kind: exactly.KindTime, Precision: 6}
	case "timestamp-millis":
		return exactly.Type{Kind: exactly.KindTimestampTZ, Precision: 3}
	case "timestamp-micros":
		return exactly.Type{Kind: exactly.KindTimestampTZ, Precision: 6}
	case "timestamp-nanos":
		return exactly.Type{Kind: exactly.KindTimestampTZ, Precision: 9}
	case "local-timestamp-millis":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 3}
	case "local-timestamp-micros":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 6}
	case "local-timestamp-nanos":
		return exactly.Type{Kind: exactly.KindTimestamp, Precision: 9}
	case "uuid":
		return exactly.Type{Kind: exactly.KindText}
	}
	switch primitive {
	case "boolean":
		return exactly.Type{Kind: exactly.KindBool}
	case "int":
		return exactly.Type{Kind: exactly.KindInt32}
	case "long":
		return exactly.Type{Kind: exactly.KindInt64}
	case "float":
		return exactly.Type{Kind: exactly.KindFloat32}
	case "double":
		return exactly.Type{Kind: exactly.KindFloat64}
	case "string", "enum":
		return exactly.Type{Kind: exactly.KindText}
	case "bytes", "fixed":
		return exactly.Type{Kind: exactly.KindBytes}
	case "record", "map", "array":
		return exactly.Type{Kind: exactly.KindJSON}
	}
	return exactly.Type{Kind: exactly.KindUnknown}
}
