package sqlserver_test

import (
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sinktest"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// TestConformance runs the suite against the server named by
// EXACTLY_TEST_SQLSERVER_DSN: under CI, Babelfish (.ci/services starts it,
// .ci/run sets the variable); point it at a real SQL Server or Azure SQL
// database to run the same suite there. Unset, the test skips, or fails
// under CI=true. Tests share the database: each uses its own pipeline and
// tables.
func TestConformance(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	sinktest.Run(t, sinktest.Target{
		Dialect: &sqlserver.Dialect{},
		DSN:     func(*testing.T) string { return dsn },
		Types: sinktest.Types{BigInt: "BIGINT", Int: "INT", Decimal: "DECIMAL(20,6)", Double: "FLOAT",
			Text: "NVARCHAR(MAX)", KeyText: "NVARCHAR(100)", Bytes: "VARBINARY(MAX)", Bool: "BIT", Date: "DATE",
			Timestamp: "DATETIMEOFFSET(6)"},
		Collisions: []sinktest.Collision{
			// The database default: SQL_Latin1_General_CP1_CI_AS on SQL
			// Server and Babelfish, case-insensitive, accent-sensitive,
			// trailing spaces ignored.
			{Name: "default_ci", Type: "NVARCHAR(20)", Keys: []any{"abc", "ABC", "abc ", "Abc", "àbc", "ÀBC", "abd", "ABD  "}},
			{Name: "ci_ai", Type: "NVARCHAR(20) COLLATE Latin1_General_CI_AI", Keys: []any{"abc", "ABC", "àbc", "ÀBC ", "abd"}},
			{Name: "bin2", Type: "NVARCHAR(20) COLLATE Latin1_General_100_BIN2", Keys: []any{"ab", "ab ", "AB", "ab  ", "àb"}},
			{Name: "varchar_ci", Type: "VARCHAR(20)", Keys: []any{"abc", "ABC", "abc ", "abd", "ABD"}},
			{Name: "bigint", Type: "BIGINT", Keys: []any{int64(1), "01", "1", int64(2), "2", "002"}},
			{Name: "default_ci_versioned", Type: "NVARCHAR(20)", Versioned: true, Keys: []any{"abc", "ABC", "àbc", "abd"}},
		},
		Refusals: []sinktest.Refusal{
			{Type: "BIT", Good: true, Bad: "maybe"},
			{Type: "NVARCHAR(5)", Good: "abc", Bad: "abcdefgh"},
			{Type: "SMALLINT", Good: int64(7), Bad: int64(70000)},
			{Type: "INT", Good: int64(7), Bad: "seven"},
			{Type: "DECIMAL(10,2)", Good: exactly.Decimal("1.25"), Bad: exactly.Decimal("1.255")},
			{Type: "VARBINARY(MAX)", Good: []byte("ok"), Bad: "text"},
		},
	})
}
