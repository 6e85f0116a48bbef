package postgres_test

import (
	"testing"

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
	})
}
