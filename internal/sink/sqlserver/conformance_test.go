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
