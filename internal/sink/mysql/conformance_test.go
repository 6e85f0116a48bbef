package mysql_test

import (
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/sinktest"
	"github.com/exactly/exactly/internal/testenv"
)

// types are the MariaDB/MySQL column types of the suite's tables. MySQL
// has no timestamp with a zone: DATETIME(6) holds the instant in UTC (the
// dialect's session time zone).
var types = sinktest.Types{BigInt: "BIGINT", Int: "INT", Decimal: "DECIMAL(20,6)", Double: "DOUBLE",
	Text: "LONGTEXT", KeyText: "VARCHAR(100)", Bytes: "LONGBLOB", Bool: "BOOLEAN", Date: "DATE",
	Timestamp: "DATETIME(6)", TableSuffix: " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"}

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Target{
		Dialect: &mysql.Dialect{},
		DSN:     func(t *testing.T) string { return testenv.MySQLDatabase(t) },
		Types:   types,
		Refusals: []sinktest.Refusal{
			{Type: "BOOLEAN", Good: true, Bad: "maybe"},
			{Type: "DATE", Good: "2024-01-02", Bad: "2024-13-45"},
			{Type: "VARCHAR(5)", Good: "abc", Bad: "abcdefgh"},
			{Type: "SMALLINT", Good: int64(7), Bad: int64(70000)},
			{Type: "DECIMAL(5,2)", Good: exactly.Decimal("1.25"), Bad: exactly.Decimal("12345.6")},
		},
		Collisions: []sinktest.Collision{
			// The default collation: case- and accent-insensitive, PAD SPACE.
			{Name: "general_ci", Type: "VARCHAR(20)", Keys: []any{"abc", "ABC", "abc ", "àbc", "Abc", "abd", "ÀBD"}},
			{Name: "unicode_ci", Type: "VARCHAR(20) COLLATE utf8mb4_unicode_ci", Keys: []any{"abc", "ABC", "Äbc", "abd", "ß", "ss"}},
			{Name: "bin", Type: "VARCHAR(20) COLLATE utf8mb4_bin", Keys: []any{"ab", "ab ", "AB", "ab  "}},
			{Name: "bigint", Type: "BIGINT", Keys: []any{int64(1), "01", "1", int64(2), "2", "002"}},
			{Name: "general_ci_versioned", Type: "VARCHAR(20)", Versioned: true, Keys: []any{"abc", "ABC", "àbc", "abd"}},
		},
	})
}
