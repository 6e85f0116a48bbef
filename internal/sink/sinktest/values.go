package sinktest

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/exactly/exactly"
)

// kind says how a column's values compare: each database returns its own
// Go types (a MySQL BOOLEAN is an integer, a SQLite date may be text), so
// both the wanted and the read value are rendered to one canonical text.
type kind int

const (
	kInt kind = iota
	kDec
	kDbl
	kText
	kBytes
	kBool
	kDate
	kTS
)

func norm(k kind, v any) string {
	if v == nil {
		return "NULL"
	}
	if b, ok := v.([]byte); ok && k != kBytes {
		v = string(b)
	}
	switch k {
	case kInt:
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10)
		case int32:
			return strconv.FormatInt(int64(x), 10)
		case int:
			return strconv.Itoa(x)
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return strconv.FormatInt(int64(x), 10)
			}
		case string:
			return strings.TrimSpace(x)
		}
	case kDec:
		switch x := v.(type) {
		case exactly.Decimal:
			return decimal(string(x))
		case string:
			return decimal(x)
		case float64: // an inexact type: rendered so it cannot equal the wanted text
			return fmt.Sprintf("float64(%v)", x)
		}
	case kDbl:
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		case float32:
			return strconv.FormatFloat(float64(x), 'g', -1, 32)
		case int64:
			return strconv.FormatFloat(float64(x), 'g', -1, 64)
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	case kText:
		if s, ok := v.(string); ok {
			return strconv.Quote(s)
		}
	case kBytes:
		switch x := v.(type) {
		case []byte:
			return "x'" + hex.EncodeToString(x) + "'"
		case string:
			return "x'" + hex.EncodeToString([]byte(x)) + "'"
		}
	case kBool:
		switch x := v.(type) {
		case bool:
			return strconv.FormatBool(x)
		case int64:
			return strconv.FormatBool(x != 0)
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return strconv.FormatBool(b)
			}
		}
	case kDate:
		switch x := v.(type) {
		case time.Time:
			return x.Format("2006-01-02")
		case string:
			if len(x) >= 10 {
				return x[:10]
			}
		}
	case kTS:
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano)
		case string:
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00",
				"2006-01-02 15:04:05.999999999 -0700 MST", "2006-01-02 15:04:05.999999999"} {
				if t, err := time.Parse(layout, x); err == nil {
					return t.UTC().Format(time.RFC3339Nano)
				}
			}
		}
	}
	return fmt.Sprintf("unexpected %T(%v)", v, v)
}

// decimal renders a decimal number without insignificant zeros.
func decimal(s string) string {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"), "0")
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "" || s[0] == '.' {
		s = "0" + s
	}
	if neg && s != "0" {
		s = "-" + s
	}
	return s
}
