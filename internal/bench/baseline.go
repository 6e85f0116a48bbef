package bench

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// baseline loads the throughput phase's rows by the database's own fastest
// path, with no Kafka and no ledger, and returns how long it took.
func baseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	switch o.Dialect.Name() {
	case "postgres":
		return pgBaseline(ctx, o, db, tables)
	case "sqlite":
		return sqliteBaseline(ctx, o, db, tables)
	case "mysql":
		return mysqlBaseline(ctx, o, db, tables)
	case "sqlserver":
		return sqlserverBaseline(ctx, o, db, tables)
	}
	return "", 0, fmt.Errorf("no baseline for the %s sink yet", o.Dialect.Name())
}

// ids yields the ids of the records placed in topic t, in order.
func ids(o Options, t int, each func(int64) error) error {
	for i := int64(t); i < int64(o.Records); i += int64(o.Topics) {
		if err := each(i); err != nil {
			return err
		}
	}
	return nil
}

// pgBaseline: one transaction; per table a binary COPY into an UNLOGGED
// staging table and one INSERT … SELECT … ON CONFLICT DO UPDATE.
func pgBaseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	var secs float64
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		start := time.Now()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for ti, t := range tables {
			stage := t + "_baseline"
			if _, err := tx.Exec(ctx, "CREATE UNLOGGED TABLE "+stage+" (LIKE "+t+")"); err != nil {
				return err
			}
			var cur int64 = int64(ti) - int64(o.Topics)
			src := pgx.CopyFromFunc(func() ([]any, error) {
				cur += int64(o.Topics)
				if cur >= int64(o.Records) {
					return nil, nil
				}
				r := makeRow(cur, o.RecordBytes)
				return []any{r.id, r.name, r.amount, r.payload}, nil
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, []string{"id", "name", "amount", "payload"}, src); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+t+" SELECT * FROM "+stage+
				" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, amount = EXCLUDED.amount, payload = EXCLUDED.payload"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+stage); err != nil {
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		secs = time.Since(start).Seconds()
		return nil
	})
	return "COPY into an UNLOGGED staging table + one INSERT … ON CONFLICT DO UPDATE per table, one transaction, one connection", secs, err
}

// sqliteBaseline: one transaction of prepared upserts.
func sqliteBaseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	secs, err := inOneTransaction(ctx, db, tables, func(tx *sql.Tx, ti int, t string) error {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+t+" (id, name, amount, payload) VALUES (?, ?, ?, ?)"+
			" ON CONFLICT (id) DO UPDATE SET name = excluded.name, amount = excluded.amount, payload = excluded.payload")
		if err != nil {
			return err
		}
		defer stmt.Close()
		return ids(o, ti, func(i int64) error {
			r := makeRow(i, o.RecordBytes)
			_, err := stmt.ExecContext(ctx, r.id, r.name, r.amount, r.payload)
			return err
		})
	})
	return "one transaction of prepared INSERT … ON CONFLICT DO UPDATE, one connection", secs, err
}

// inOneTransaction loads every table with load in one transaction on one
// connection, and returns how long it took from BEGIN to COMMIT.
func inOneTransaction(ctx context.Context, db *sql.DB, tables []string, load func(tx *sql.Tx, ti int, table string) error) (float64, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for ti, t := range tables {
		if err := load(tx, ti, t); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// execAll runs the statements in turn on tx.
func execAll(ctx context.Context, tx *sql.Tx, stmts ...string) error {
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
