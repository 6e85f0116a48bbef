package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // registers "sqlite"
)

// TestDedupeCommand drives the dedupe command on a SQLite file seeded with
// known duplicates: the dry run exits 1 and changes nothing, --apply
// repairs and adds the unique key, a rerun exits 0.
func TestDedupeCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "damaged.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{"CREATE TABLE orders (id integer, status text, updated_at text)"}
	for id := 1; id <= 10; id++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO orders VALUES (%d, 'new', '2025-06-10T08:00:00Z')", id))
		if id%2 == 0 { // the reprocessed micro-batch: written again, later
			stmts = append(stmts, fmt.Sprintf("INSERT INTO orders VALUES (%d, 'paid', '2025-06-10T08:00:10Z')", id))
		}
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		if err := db.QueryRow("SELECT COUNT(*) FROM orders").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := []string{"dedupe", "--sink", path, "--table", "orders", "--key", "id"}

	code, out, errs := runCLI(append(base, "--keep", "newest", "--order-by", "updated_at")...)
	if code != 1 || !strings.Contains(out, "surplus rows 5") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d, want 1\n%s%s", code, out, errs)
	}
	if n := count(); n != 15 {
		t.Fatalf("dry run changed the table: %d rows, want 15", n)
	}

	for _, bad := range [][]string{
		append(base, "--add-unique-key"),                                 // changes the table without --apply
		append(base, "--keep", "oldest"),                                 // --keep without --order-by
		{"dedupe", "--sink", path, "--table", "orders", "--key", "nope"}, // unknown column
		{"dedupe", "--table", "orders", "--key", "id"},                   // no sink
	} {
		if code, _, errs := runCLI(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", bad[1:], code, errs)
		}
	}

	code, out, errs = runCLI(append(base, "--order-by", "updated_at", "--apply", "--add-unique-key")...)
	if code != 0 || !strings.Contains(out, "moved 5 rows into orders_exactly_removed") || !strings.Contains(out, "added the unique key") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	var paid, removed int
	db.QueryRow("SELECT COUNT(*) FROM orders WHERE status = 'paid'").Scan(&paid)
	db.QueryRow("SELECT COUNT(*) FROM orders_exactly_removed WHERE status = 'new'").Scan(&removed)
	if n := count(); n != 10 || paid != 5 || removed != 5 {
		t.Errorf("after apply: %d rows (want 10), %d paid (want 5: the newest kept), %d old copies in the backup (want 5)", n, paid, removed)
	}
	if code, out, errs := runCLI(base...); code != 0 || !strings.Contains(out, "surplus rows 0") {
		t.Errorf("rerun: exit %d, want 0\n%s%s", code, out, errs)
	}
}
