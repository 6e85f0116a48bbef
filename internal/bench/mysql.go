package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"

	gomysql "github.com/go-sql-driver/mysql"
)

// mysqlBaseline: one transaction on one connection; per table LOAD DATA
// LOCAL INFILE (streamed from memory, never a file) into a temporary
// table, then one INSERT … SELECT … ON DUPLICATE KEY UPDATE. It needs the
// server's local_infile on.
func mysqlBaseline(ctx context.Context, o Options, db *sql.DB, tables []string) (string, float64, error) {
	secs, err := inOneTransaction(ctx, db, tables, func(tx *sql.Tx, ti int, t string) error {
		name := fmt.Sprintf("exactly_bench_%d", ti)
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTSV(o, ti, pw)) }()
		gomysql.RegisterReaderHandler(name, func() io.Reader { return pr })
		defer gomysql.DeregisterReaderHandler(name)
		defer pr.Close() // ends the writer should a statement fail before reading it all
		stage := t + "_baseline"
		return execAll(ctx, tx,
			"CREATE TEMPORARY TABLE "+stage+" (id BIGINT, name TEXT, amount BIGINT, payload TEXT) DEFAULT CHARSET=utf8mb4",
			"LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE "+stage+" FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (id, name, amount, payload)",
			"INSERT INTO "+t+" (id, name, amount, payload) SELECT id, name, amount, payload FROM "+stage+
				" ON DUPLICATE KEY UPDATE name = VALUES(name), amount = VALUES(amount), payload = VALUES(payload)",
			"DROP TEMPORARY TABLE "+stage)
	})
	return "LOAD DATA LOCAL INFILE into a temporary table + one INSERT … SELECT … ON DUPLICATE KEY UPDATE per table, one transaction, one connection",
		secs, err
}

// writeTSV writes topic ti's rows as LOAD DATA's tab-separated lines.
func writeTSV(o Options, ti int, w io.Writer) error {
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
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
	if err == nil {
		_, err = w.Write(buf)
	}
	return err
}
