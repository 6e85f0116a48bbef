package sqlserver_test

import (
	"os"
	"testing"

	"github.com/exactly/exactly/internal/sink/sinktest"
	"github.com/exactly/exactly/internal/sink/sqlserver"
)

// TestConformance runs the suite against the server named by
// EXACTLY_TEST_SQLSERVER_DSN (e.g.
// sqlserver://sa:Passw0rd!@127.0.0.1:1433?database=test). No SQL Server
// can run on the CI machine, so without it this is the one test that
// skips even under CI=true; the SQL text is covered by the golden tests.
// Tests share the database: each uses its own pipeline and tables.
func TestConformance(t *testing.T) {
	dsn := os.Getenv("EXACTLY_TEST_SQLSERVER_DSN")
	if dsn == "" {
		t.Skip("EXACTLY_TEST_SQLSERVER_DSN is not set: no SQL Server to run the conformance suite against")
	}
	sinktest.Run(t, sinktest.Target{
		Dialect: &sqlserver.Dialect{},
		DSN:     func(*testing.T) string { return dsn },
		Types: sinktest.Types{BigInt: "BIGINT", Int: "INT", Decimal: "DECIMAL(20,6)", Double: "FLOAT",
			Text: "NVARCHAR(MAX)", KeyText: "NVARCHAR(100)", Bytes: "VARBINARY(MAX)", Bool: "BIT", Date: "DATE",
			Timestamp: "DATETIMEOFFSET(6)"},
	})
}
