package mysql_test

import (
	"testing"

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
	})
}
