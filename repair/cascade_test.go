package repair_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly/repair"
)

// TestDedupeKeepsChildRowsOfTheKeptCopy pins issue 15.10: dedupe --apply
// deleted every copy of a duplicated key and inserted one back, so ON
// DELETE CASCADE removed the child rows of the copy it kept — rows no
// backup held. Now only the surplus copies are deleted, by their row
// identity, and the dedupe is refused (nothing changed) when a child row
// references a surplus copy, when a delete trigger is on the table, or when
// a table without a primary key is referenced at all.
func TestDedupeKeepsChildRowsOfTheKeptCopy(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, d := open(t, driver)
			serial, text := "serial PRIMARY KEY", "text"
			if driver == "mysql" {
				serial, text = "int AUTO_INCREMENT PRIMARY KEY", "varchar(20)"
			}
			exec := func(stmts ...string) {
				t.Helper()
				for _, s := range stmts {
					if _, err := db.Exec(s); err != nil {
						t.Fatalf("%s: %v", s, err)
					}
				}
			}
			count := func(q string) (n int) {
				t.Helper()
				if err := db.QueryRow(q).Scan(&n); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return n
			}
			setup := func(orders, lines string) {
				t.Helper()
				exec(
					"CREATE TABLE "+orders+" (row_id "+serial+", id bigint, seq bigint, status "+text+")",
					"CREATE TABLE "+lines+" (line_id int PRIMARY KEY, order_row int, FOREIGN KEY (order_row) REFERENCES "+orders+" (row_id) ON DELETE CASCADE)",
					// rows 1..3: ids 1..3; rows 4, 5: ids 2, 3 again, newer (the reprocessed batch)
					"INSERT INTO "+orders+" (id, seq, status) VALUES (1, 1, 'new'), (2, 1, 'new'), (3, 1, 'new'), (2, 2, 'paid'), (3, 2, 'paid')",
					"INSERT INTO "+lines+" VALUES (1, 1), (2, 4), (3, 5)", // lines of the copies that will be kept
				)
			}

			// Refusals first, on their own tables: nothing may change.
			setup("refused", "refused_lines")
			spec := repair.Dedupe{Table: "refused", Key: []string{"id"}, OrderBy: "seq"}
			// A line of a surplus copy: the cascade would delete it unsaved.
			exec("INSERT INTO refused_lines VALUES (4, 2)")
			_, err := repair.ApplyDedupe(ctx, db, d, spec)
			if !errors.Is(err, repair.ErrBeyondBackup) || !strings.Contains(err.Error(), "refused_lines") {
				t.Errorf("a child of a surplus copy: got %v, want ErrBeyondBackup naming refused_lines", err)
			}
			exec("DELETE FROM refused_lines WHERE line_id = 4")
			// A delete trigger: whatever it changes is in no backup.
			exec("CREATE TABLE audit (n int)")
			if driver == "mysql" {
				exec("CREATE TRIGGER refused_gone AFTER DELETE ON refused FOR EACH ROW INSERT INTO audit VALUES (OLD.row_id)")
			} else {
				exec("CREATE FUNCTION refused_gone() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit VALUES (OLD.row_id); RETURN OLD; END$$",
					"CREATE TRIGGER refused_gone AFTER DELETE ON refused FOR EACH ROW EXECUTE FUNCTION refused_gone()")
			}
			if _, err := repair.ApplyDedupe(ctx, db, d, spec); !errors.Is(err, repair.ErrBeyondBackup) || !strings.Contains(err.Error(), "refused_gone") {
				t.Errorf("a delete trigger: got %v, want ErrBeyondBackup naming refused_gone", err)
			}
			if o, l, a := count("SELECT COUNT(*) FROM refused"), count("SELECT COUNT(*) FROM refused_lines"), count("SELECT COUNT(*) FROM audit"); o != 5 || l != 3 || a != 0 {
				t.Errorf("refused dedupes changed rows: orders %d (want 5), lines %d (want 3), audit %d (want 0)", o, l, a)
			}

			// The dedupe: the copies kept keep their lines.
			setup("orders", "order_lines")
			res, err := repair.ApplyDedupe(ctx, db, d, repair.Dedupe{Table: "orders", Key: []string{"id"}, OrderBy: "seq"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Removed != 2 || res.Kept != 2 {
				t.Errorf("removed %d kept %d, want 2 and 2", res.Removed, res.Kept)
			}
			var got []string
			rows, err := db.Query("SELECT o.row_id, o.status, l.line_id FROM orders o LEFT JOIN order_lines l ON l.order_row = o.row_id ORDER BY o.row_id")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var row int
				var line sql.NullInt64 // NULL: the kept copy lost its line
				var status string
				if err := rows.Scan(&row, &status, &line); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d:%s:%d", row, status, line.Int64))
			}
			rows.Close()
			if want := "[1:new:1 4:paid:2 5:paid:3]"; fmt.Sprint(got) != want {
				t.Errorf("orders with their lines after the dedupe: %v, want %s (the kept copies, untouched, lines and all)", got, want)
			}
			if b := count("SELECT COUNT(*) FROM orders_exactly_removed WHERE row_id IN (2, 3)"); b != 2 {
				t.Errorf("backup holds %d of the removed rows 2 and 3, want 2", b)
			}
		})
	}
}

// TestDedupeRefusesReferencedTableWithoutKey: MariaDB lets a foreign key
// reference a non-unique indexed column, so a table without a primary key
// can have children. Without a row identity the dedupe must delete every
// copy and insert one back, which would cascade: it is refused.
func TestDedupeRefusesReferencedTableWithoutKey(t *testing.T) {
	db, d := open(t, "mysql")
	for _, s := range []string{
		"CREATE TABLE accounts (id bigint, name varchar(20), KEY (id))",
		"CREATE TABLE notes (n int, account bigint, FOREIGN KEY (account) REFERENCES accounts (id) ON DELETE CASCADE)",
		"INSERT INTO accounts VALUES (1, 'a'), (1, 'a'), (2, 'b')",
		"INSERT INTO notes VALUES (1, 1), (2, 2)",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	_, err := repair.ApplyDedupe(context.Background(), db, d, repair.Dedupe{Table: "accounts", Key: []string{"id"}})
	if !errors.Is(err, repair.ErrBeyondBackup) || !strings.Contains(err.Error(), "primary key") {
		t.Fatalf("got %v, want ErrBeyondBackup asking for a primary key", err)
	}
	var a, n int
	db.QueryRow("SELECT COUNT(*) FROM accounts").Scan(&a)
	db.QueryRow("SELECT COUNT(*) FROM notes").Scan(&n)
	if a != 3 || n != 2 {
		t.Errorf("refused dedupe changed rows: accounts %d (want 3), notes %d (want 2)", a, n)
	}
}
