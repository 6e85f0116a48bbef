package bench

import (
	"context"
	"database/sql"
	"fmt"

	mssql "github.com/microsoft/go-mssqldb"
)

// sqlserverBaseline: one transaction on one connection; per table one bulk
// copy into a #temp staging table, then the set-based apply the sink uses
// (UPDATE … FROM #stage, INSERT … SELECT … WHERE NOT EXISTS … WITH
// (UPDLOCK, HOLDLOCK)).
func sqlserverBaseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	secs, err := inOneTransaction(ctx, db, tables, func(tx *sql.Tx, ti int, t string) error {
		stage := fmt.Sprintf("#exactly_bench_stage_%d", ti)
		if _, err := tx.ExecContext(ctx, "CREATE TABLE "+stage+
			" (id BIGINT NOT NULL, name NVARCHAR(MAX) COLLATE DATABASE_DEFAULT NULL, amount BIGINT NULL, payload NVARCHAR(MAX) COLLATE DATABASE_DEFAULT NULL)"); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, mssql.CopyIn(stage, mssql.BulkOptions{}, "id", "name", "amount", "payload"))
		if err != nil {
			return err
		}
		err = ids(o, ti, func(i int64) error {
			r := makeRow(i, o.RecordBytes)
			_, err := stmt.ExecContext(ctx, r.id, r.name, r.amount, r.payload)
			return err
		})
		if err == nil {
			_, err = stmt.ExecContext(ctx)
		}
		if cerr := stmt.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bulk copying into %s: %w", stage, err)
		}
		return execAll(ctx, tx,
			"UPDATE t SET name = s.name, amount = s.amount, payload = s.payload FROM "+t+" AS t INNER JOIN "+stage+" AS s ON t.id = s.id",
			"INSERT INTO "+t+" (id, name, amount, payload) SELECT s.id, s.name, s.amount, s.payload FROM "+stage+
				" AS s WHERE NOT EXISTS (SELECT 1 FROM "+t+" AS t WITH (UPDLOCK, HOLDLOCK) WHERE t.id = s.id)",
			"DROP TABLE "+stage)
	})
	return "bulk copy into a #temp table + UPDATE … FROM and INSERT … WHERE NOT EXISTS (UPDLOCK, HOLDLOCK) per table, one transaction, one connection",
		secs, err
}
