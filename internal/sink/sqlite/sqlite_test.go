package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/exactly/exactly/internal/sink/sinktest"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestConformance runs the suite on a temporary database file. SQLite has
// no exact decimal type: decimals are declared TEXT so they keep every
// digit (a NUMERIC column would turn them into 64-bit floats).
func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Target{
		Dialect: &sqlite.Dialect{},
		DSN:     func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") },
		Types: sinktest.Types{BigInt: "INTEGER", Int: "INTEGER", Decimal: "TEXT", Double: "REAL",
			Text: "TEXT", KeyText: "TEXT", Bytes: "BLOB", Bool: "BOOLEAN", Date: "DATE", Timestamp: "TIMESTAMP"},
	})
}
