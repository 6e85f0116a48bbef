package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// mysqlBaseline: one transaction on one connection; per table LOAD DATA
// LOCAL INFILE (streamed from memory, never a file) into a temporary
// table, then one INSERT … SELECT … ON DUPLICATE KEY UPDATE. It needs the
// server's local_infile on.
func mysqlBaseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	start := time.Now()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return "", 0, err
	}
	defer tx.Rollback()
	for ti, t := range tables {
		name := fmt.Sprintf("exactly_bench_%d", ti)
		pr, pw := io.Pipe()
		go func() {
			buf := make([]byte, 0, 64<<10)
			err := ids(o, ti, func(i int64) error {
				r := makeRow(i, o.RecordBytes) // ASCII letters, digits and '-': nothing to escape
				buf = strconv.AppendInt(buf, r.id, 10)
				buf = append(buf, '\t')
				buf = append(buf, r.name...)
				buf = append(buf, '\t')
				buf = strconv.AppendInt(buf, r.amount, 10)
				buf = append(buf, '\t')
				buf = append(buf, r.payload...)
				buf = append(buf, '\n')
				if len(buf) > 60<<10 {
					if _, err := pw.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
				return nil
			})
			if err == nil {
				_, err = pw.Write(buf)
			}
			pw.CloseWithError(err)
		}()
		gomysql.RegisterReaderHandler(name, func() io.Reader { return pr })
		stage := t + "_baseline"
		for _, q := range []string{
			"CREATE TEMPORARY TABLE " + stage + " (id BIGINT, name TEXT, amount BIGINT, payload TEXT) DEFAULT CHARSET=utf8mb4",
			"LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + stage + " FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (id, name, amount, payload)",
			"INSERT INTO " + t + " (id, name, amount, payload) SELECT id, name, amount, payload FROM " + stage +
				" ON DUPLICATE KEY UPDATE name = VALUES(name), amount = VALUES(amount), payload = VALUES(payload)",
			"DROP TEMPORARY TABLE " + stage,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				gomysql.DeregisterReaderHandler(name)
				pr.Close()
				return "", 0, err
			}
		}
		gomysql.DeregisterReaderHandler(name)
	}
	if err := tx.Commit(); err != nil {
		return "", 0, err
	}
	return "LOAD DATA LOCAL INFILE into a temporary table + one INSERT … SELECT … ON DUPLICATE KEY UPDATE per table, one transaction, one connection",
		time.Since(start).Seconds(), nil
}
