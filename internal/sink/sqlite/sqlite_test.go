package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/exactly/exactly"
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
		// SQLite stores any value in a column that is not STRICT: these are
		// refused only by the create/evolve type check.
		Refusals: []sinktest.Refusal{
			{Type: "BOOLEAN", Good: true, Bad: "maybe"},
			{Type: "INTEGER", Good: int64(7), Bad: "seven"},
		},
		Collisions: []sinktest.Collision{
			// INTEGER affinity stores "01", "1.0" and " 1" as the integer 1.
			{Name: "integer", Type: "INTEGER", Keys: []any{int64(1), "01", "1", "1.0", " 1", int64(2), "2", exactly.Decimal("2.0")}},
			{Name: "nocase", Type: "TEXT COLLATE NOCASE", Keys: []any{"abc", "ABC", "Abc", "abd", "ÀBC", "àbc"}},
			{Name: "rtrim", Type: "TEXT COLLATE RTRIM", Keys: []any{"ab", "ab ", "ab  ", "AB", int64(1), "1", "1 "}},
			{Name: "text", Type: "TEXT", Keys: []any{int64(1), "1", "01", "a"}},
			{Name: "nocase_versioned", Type: "TEXT COLLATE NOCASE", Versioned: true, Keys: []any{"abc", "ABC", "abd"}},
		},
	})
}
