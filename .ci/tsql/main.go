// Command tsql runs T-SQL statements against a SQL Server DSN: .ci/services
// uses it to create the test database on Babelfish (no sqlcmd there).
//
//	go run ./.ci/tsql DSN STATEMENT...
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "github.com/microsoft/go-mssqldb" // registers "sqlserver"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tsql DSN STATEMENT...")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("sqlserver", os.Args[1])
	if err == nil {
		defer db.Close()
		for _, q := range os.Args[2:] {
			if _, err = db.ExecContext(ctx, q); err != nil {
				err = fmt.Errorf("running %q: %w", q, err)
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsql:", err)
		os.Exit(1)
	}
}
