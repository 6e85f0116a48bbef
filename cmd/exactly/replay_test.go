package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

func (f *auditFixture) snapshot(t *testing.T) string {
	t.Helper()
	rows, err := f.db.Query("SELECT id, name FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%d=%s;", id, name)
	}
	return sb.String()
}

func (f *auditFixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(exactly.Rebind(f.d, q), args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplayLeavesTableIdentical replays committed ranges and proves the
// table is unchanged, next_offset did not move, the ledger records the
// replay, and verify still finds nothing; replay also repairs a damaged row.
func TestReplayLeavesTableIdentical(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newAuditFixture(t, driver, 30, 10)
			before := f.snapshot(t)
			if before == "" {
				t.Fatal("fixture applied nothing")
			}

			code, out, errs := runCLI("replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "0")
			if code != 0 {
				t.Fatalf("replay exit %d:\n%s%s", code, out, errs)
			}
			if got := f.snapshot(t); got != before {
				t.Errorf("replay changed the table:\nbefore %s\nafter  %s", before, got)
			}
			if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 3 {
				t.Errorf("%d replayed ledger rows, want 3 (30 records, max_records 10)\n%s", n, out)
			}
			if n := f.count(t, "SELECT next_offset FROM exactly_offsets WHERE topic = 't.items'"); n != 30 {
				t.Errorf("next_offset %d after replay, want 30", n)
			}
			if code, out, errs := runCLI("verify", "-c", f.file); code != 0 {
				t.Errorf("verify after replay: exit %d\n%s%s", code, out, errs)
			}

			// Damage a row, replay the range that last wrote it: repaired.
			f.exec(t, "DELETE FROM items WHERE id = 3")
			f.exec(t, "UPDATE items SET name = 'wrong' WHERE id = 4")
			if code, out, errs := runCLI("replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "20"); code != 0 {
				t.Fatalf("replay exit %d:\n%s%s", code, out, errs)
			}
			if got := f.snapshot(t); got != before {
				t.Errorf("replay did not repair the table:\nwant %s\ngot  %s", before, got)
			}
		})
	}
}

func TestReplayRefusesUncommittedRanges(t *testing.T) {
	f := newAuditFixture(t, "sqlite", 20, 10)
	for _, args := range [][]string{
		{"replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "0", "--to", "25"},
		{"replay", "-c", f.file, "--topic", "t.items", "--partition", "0"},
		{"replay", "-c", f.file, "--topic", "other", "--partition", "0", "--from", "0"},
		{"replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "5", "--to", "5"},
	} {
		if code, _, errs := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args[3:], code, errs)
		}
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 0 {
		t.Errorf("%d replayed rows after refused replays", n)
	}

	// The fence inside the transaction, not only the command's check: a
	// batch ending beyond next_offset is refused by Sink.Replay itself.
	cfg, err := exactly.LoadConfig(f.file)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	f.produceMore(t, 5)
	var recs []*exactly.Record
	if err := kr.Read(context.Background(), exactly.TP{Topic: "t.items"}, 15, 25, func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err = f.sink.Replay(context.Background(), &exactly.PartitionBatch{Topic: "t.items", From: 15, Records: recs}, 20)
	var re *exactly.ReplayRangeError
	if !errors.As(err, &re) || re.Next != 20 || re.To != 25 {
		t.Fatalf("Replay beyond next_offset: got %v, want a ReplayRangeError at next_offset 20", err)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 0 {
		t.Errorf("%d replayed rows after a refused Replay", n)
	}
}
