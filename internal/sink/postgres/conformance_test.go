package postgres_test

import (
	"testing"

	"github.com/exactly/exactly"

	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sinktest"
	"github.com/exactly/exactly/internal/testenv"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Target{
		Dialect: &postgres.Dialect{},
		DSN:     func(t *testing.T) string { return testenv.PostgresSchema(t) },
		Types: sinktest.Types{BigInt: "bigint", Int: "integer", Decimal: "numeric(20,6)", Double: "double precision",
			Text: "text", KeyText: "text", Bytes: "bytea", Bool: "boolean", Date: "date", Timestamp: "timestamptz"},
		Collisions: collisions,
		Refusals: []sinktest.Refusal{
			{Type: "boolean", Good: true, Bad: "maybe"},
			{Type: "date", Good: "2024-01-02", Bad: "2024-13-45"},
			{Type: "varchar(5)", Good: "abc", Bad: "abcdefgh"},
			{Type: "smallint", Good: int64(7), Bad: int64(70000)},
			{Type: "timestamptz", Good: "2024-01-02T03:04:05Z", Bad: "not a time"},
		},
	})
}

// collisions are PostgreSQL key types under which different values are
// one row: numeric (1 = 1.0), citext, a nondeterministic ICU collation,
// bigint given text ("01", " 1", "+2"), char(n) (trailing spaces).
var collisions = []sinktest.Collision{
	{Name: "numeric", Type: "numeric", Keys: []any{exactly.Decimal("1"), exactly.Decimal("1.0"), int64(1), "1.00", int64(2), exactly.Decimal("2.0"), "3"}},
	{Name: "citext", Setup: []string{"CREATE EXTENSION IF NOT EXISTS citext"}, Type: "citext",
		Keys: []any{"abc", "ABC", "Abc", "abd", "ABD"}},
	{Name: "nondeterministic", Setup: []string{`DO $$ BEGIN CREATE COLLATION exactly_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false); EXCEPTION WHEN duplicate_object THEN NULL; END $$`},
		Type: "text COLLATE exactly_ci", Keys: []any{"abc", "ABC", "Abc", "abd", "ABD"}},
	{Name: "bigint", Type: "bigint", Keys: []any{int64(1), "01", " 1", "1", int64(2), "+2"}},
	{Name: "char", Type: "character(5)", Keys: []any{"ab", "ab ", "ab  ", "ac"}},
	{Name: "citext_versioned", Setup: []string{"CREATE EXTENSION IF NOT EXISTS citext"}, Type: "citext", Versioned: true,
		Keys: []any{"abc", "ABC", "Abc", "abd"}},
}
