package postgres_test

import (
	"context"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestSameRowTwiceIsData: PostgreSQL refuses an upsert that reaches one
// row twice (SQLSTATE 21000). It was classified "other", so a flight
// holding two keys the database holds equal was retried forever; as a
// data error, isolating rows ends it.
func TestSameRowTwiceIsData(t *testing.T) {
	d := &postgres.Dialect{}
	db, err := d.Open(context.Background(), exactly.SinkConfig{DSN: testenv.PostgresSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "CREATE TEMP TABLE twice (k numeric PRIMARY KEY, v int)"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(context.Background(),
		"INSERT INTO twice SELECT * FROM (VALUES (1::numeric, 1), (1.0, 2)) s ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
	if err == nil {
		t.Fatal("PostgreSQL accepted one row updated twice")
	}
	if got := d.Classify(err); got != exactly.ErrData {
		t.Errorf("Classify(%v) = %v, want ErrData", err, got)
	}
}
