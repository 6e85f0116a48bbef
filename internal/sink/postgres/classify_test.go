package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestClassifyNamesOnlyConnectionFailuresSo: the errors that reach
// Classify, each made by the real PostgreSQL, pgx or database/sql. Only
// those of a connection that failed are ErrConnection (start-up waits for
// the database on them, two minutes); the caller's cancellation, a value
// pgx cannot encode, a scan, a transaction used after its end, a DSN that
// does not parse and the dialect's own errors are ErrOther.
func TestClassifyNamesOnlyConnectionFailuresSo(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	d := &postgres.Dialect{}
	ctx := context.Background()
	db, err := d.Open(ctx, exactly.SinkConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errOf := func(_ any, err error) error { return err }
	type errCase struct {
		name string
		err  error
		want exactly.ErrorKind
	}
	var cases []errCase
	add := func(name string, want exactly.ErrorKind, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		cases = append(cases, errCase{name, err, want})
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	add("canceled before the query", exactly.ErrOther, errOf(db.ExecContext(canceled, "SELECT 1")))
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, stop)
	add("canceled during the query", exactly.ErrOther, errOf(conn.ExecContext(stopping, "SELECT pg_sleep(5)")))
	add("the connection a cancellation broke", exactly.ErrConnection, errOf(conn.ExecContext(ctx, "SELECT 1")))
	conn.Close()
	add("a value pgx cannot encode", exactly.ErrOther, errOf(db.ExecContext(ctx, "SELECT $1::int", struct{ A int }{1})))
	var n int
	add("a scan", exactly.ErrOther, db.QueryRowContext(ctx, "SELECT 'abc'").Scan(&n))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	add("a transaction used after its end", exactly.ErrOther, tx.Commit())
	add("a DSN that does not parse", exactly.ErrOther, errOf(d.Open(ctx, exactly.SinkConfig{DSN: "postgres://x:%zz@h/"})))
	add("the dialect's own error", exactly.ErrOther, errOf(d.SameKeys(ctx, db, &exactly.Table{Name: "t"}, []string{"id"}, [][]any{{int64(1)}})))

	add("a bad value (22P02)", exactly.ErrData, errOf(db.ExecContext(ctx, "SELECT $1::int", "abc")))
	timeout, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	add("a deadline during the query", exactly.ErrConnection, errOf(db.ExecContext(timeout, "SELECT pg_sleep(5)")))
	refused, err := d.Open(ctx, exactly.SinkConfig{DSN: "postgres://127.0.0.1:1/test?connect_timeout=5"})
	if err == nil {
		err = refused.PingContext(ctx)
		refused.Close()
	}
	add("a refused dial", exactly.ErrConnection, err)
	conn, err = db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	add("a terminated session (57P01)", exactly.ErrConnection, errOf(conn.ExecContext(ctx, "SELECT 1")))
	add("its connection afterwards", exactly.ErrConnection, errOf(conn.ExecContext(ctx, "SELECT 1")))
	add("pgx on a closed connection", exactly.ErrConnection, conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		pc.Close(ctx)
		_, err := pc.Exec(ctx, "SELECT 1")
		return err
	}))
	released, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	released.Close()
	add("a connection used after its release", exactly.ErrConnection, errOf(released.ExecContext(ctx, "SELECT 1")))

	for _, c := range cases {
		if got := d.Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
