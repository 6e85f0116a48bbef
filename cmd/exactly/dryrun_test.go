package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/testenv"
)

// dryRuns are the commands that only say what they would do.
var dryRuns = [][]string{
	{"replay", "--dry-run", "--topic", "t.items", "--from", "0"},
	{"reseed", "--dry-run", "--topic", "t.items", "--partition", "0", "--to", "earliest", "--reason", "dry"},
	{"redrive"},                            // without --apply
	{"prune", "--before", "1h"},            // without --apply
	{"prune", "--before", "1h", "--apply"}, // a ledger to prune must exist: never created by prune
}

// dryRunConfig writes a configuration of pipeline dry over a kfake
// cluster and the sink given.
func dryRunConfig(t *testing.T, driver, dsn string) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	file := filepath.Join(t.TempDir(), "dry.yaml")
	y := fmt.Sprintf("pipeline: dry\nsource: {brokers: [%s]}\nsink: {driver: %s, dsn: '%s'}\ntables:\n  - {topics: t.items, table: items, key: [id]}\n",
		strings.Join(cluster.ListenAddrs(), ","), driver, dsn)
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestDryRunsCreateNoSQLiteFile: replay --dry-run, reseed --dry-run and
// redrive without --apply against a SQLite file that does not exist
// refuse it, naming it, and leave it absent. Before, they opened the sink
// to write: the file and the ledger tables were created by a run that
// was to change nothing.
func TestDryRunsCreateNoSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing.db")
	file := dryRunConfig(t, "sqlite", path)
	for _, args := range dryRuns {
		code, out := cli(t, append([]string{args[0], "-c", file}, args[1:]...)...)
		if code != 2 || !strings.Contains(out, "an existing SQLite file (a dry run never creates one)") {
			t.Errorf("%s: exit %d, want 2 and the missing file named:\n%s", strings.Join(args, " "), code, out)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "missing.db*")); len(left) > 0 {
			t.Fatalf("%s created %v", strings.Join(args, " "), left)
		}
	}
}

// TestDryRunsCreateNoLedger: the same commands against a database without
// the ledger tables (a fresh PostgreSQL schema, a fresh MariaDB database,
// an empty SQLite file) say there is no ledger (exit 2) and create no
// exactly_* table. Before, each created the four ledger tables.
func TestDryRunsCreateNoLedger(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			var dsn, tables string
			switch driver {
			case "sqlite":
				dsn = filepath.Join(t.TempDir(), "empty.db")
				tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
			case "postgres":
				dsn = testenv.PostgresSchema(t)
				tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
			case "mysql":
				dsn = testenv.MySQLDatabase(t)
				tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
			}
			d, err := dialectFor(driver)
			if err != nil {
				t.Fatal(err)
			}
			db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: driver, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)"); err != nil { // the file exists, the ledger does not
				t.Fatal(err)
			}
			file := dryRunConfig(t, driver, dsn)
			for _, args := range dryRuns {
				code, out := cli(t, append([]string{args[0], "-c", file}, args[1:]...)...)
				if code != 2 || !strings.Contains(out, "the sink has no ledger tables") {
					t.Errorf("%s: exit %d, want 2 and no ledger:\n%s", strings.Join(args, " "), code, out)
				}
				var got []string
				rows, err := db.Query(tables)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var name string
					if err := rows.Scan(&name); err != nil {
						t.Fatal(err)
					}
					got = append(got, name)
				}
				rows.Close()
				if strings.Join(got, ",") != "items" {
					t.Fatalf("after %s the database holds tables %v, want only items", strings.Join(args, " "), got)
				}
			}
		})
	}
}

// TestDryRunsLeaveAnOldLedgerAsItIs: on a ledger made before the columns
// later versions added (exactly_offsets.topic_id, the resolved_* columns
// of exactly_dead_letters), reseed --dry-run and redrive without --apply
// answer as they would and add no column. Before, opening the sink to
// write brought the ledger up to date.
func TestDryRunsLeaveAnOldLedgerAsItIs(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "old.db")
	d, err := dialectFor("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range d.LedgerDDL() { // as the first release made it
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO exactly_offsets (pipeline, topic, "partition", next_offset, writer, updated_at) VALUES ('dry', 't.items', 0, 5, 'w', ?)`,
		time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	file := dryRunConfig(t, "sqlite", dsn)
	if code, out := cli(t, "reseed", "-c", file, "--dry-run", "--topic", "t.items", "--partition", "0", "--to", "earliest", "--reason", "dry"); code != 0 ||
		!strings.Contains(out, "would reseed t.items[0]: next_offset 5 -> 0") {
		t.Errorf("reseed --dry-run of an old ledger: exit %d\n%s", code, out)
	}
	if code, out := cli(t, "redrive", "-c", file); code != 0 || !strings.Contains(out, "no open dead letters selected") {
		t.Errorf("redrive of an old ledger: exit %d\n%s", code, out)
	}
	for table, col := range map[string]string{"exactly_offsets": "topic_id", "exactly_dead_letters": "resolved_at", "exactly_batches": "notes"} {
		tb, err := d.Describe(context.Background(), db, table)
		if err != nil || tb == nil {
			t.Fatalf("describing %s: %v", table, err)
		}
		if tb.Column(col) != nil {
			t.Errorf("a dry run added %s.%s", table, col)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM exactly_batches").Scan(&n); err != nil || n != 0 {
		t.Errorf("a dry run wrote %d ledger rows (%v)", n, err)
	}
}

// TestLookingLeavesASQLiteFileAsItIs: verify, status and the dry runs
// against a SQLite ledger whose file is in rollback-journal mode (set by
// an operator, or a copy made by a tool that writes one) leave its bytes
// as they were and no -wal or -shm file beside it. Before, opening the
// file set journal_mode=WAL, which rewrites the file's header: a command
// that changes nothing changed the file (and left its -wal and -shm).
func TestLookingLeavesASQLiteFileAsItIs(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "ledger.db")
	d, err := dialectFor("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range d.LedgerDDL() {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO exactly_offsets (pipeline, topic, "partition", next_offset, writer, updated_at) VALUES ('dry', 't.items', 0, 0, 'w', ?)`,
		time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode=DELETE").Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode=DELETE: %q %v", mode, err)
	}
	db.Close()
	before, err := os.ReadFile(dsn)
	if err != nil {
		t.Fatal(err)
	}
	file := dryRunConfig(t, "sqlite", dsn)
	looks := append([][]string{{"verify", "--all"}, {"status"}}, dryRuns...)
	for _, args := range looks {
		if slices.Contains(args, "--apply") {
			continue // writes (prune --apply), as exactly run does: WAL
		}
		// The answer does not matter here (replay finds its range empty),
		// the file does: each opened it.
		code, out := cli(t, append([]string{args[0], "-c", file}, args[1:]...)...)
		if strings.Contains(out, "SQLite file") || strings.Contains(out, "no ledger tables") {
			t.Errorf("%s: exit %d, it did not open the ledger\n%s", strings.Join(args, " "), code, out)
		}
		after, err := os.ReadFile(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("%s changed the SQLite file (header bytes 18-19: %v, were %v)", strings.Join(args, " "), after[18:20], before[18:20])
		}
		if left, _ := filepath.Glob(dsn + "-*"); len(left) > 0 {
			t.Fatalf("%s left %v", strings.Join(args, " "), left)
		}
	}
}
