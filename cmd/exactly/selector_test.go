package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/exactly/exactly/status"
)

// TestTopicAndTableSelect: --topic and --table narrow status, verify, plan
// and replay to the partitions they match; replay touches nothing else; a
// selection that matches nothing is refused with the topics there are.
func TestTopicAndTableSelect(t *testing.T) {
	f := newFleetFixture(t)

	code, out, errs := runCLI("status", "-c", f.file, "--table", "sales_*")
	if code != 0 {
		t.Fatalf("status --table: exit %d: %s", code, errs)
	}
	golden(t, "status_table", out)

	code, out, errs = runCLI("status", "-c", f.file, "--topic", "hr.*", "--json")
	var st struct{ Partitions []status.Partition }
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --topic --json: exit %d, %v: %s%s", code, err, out, errs)
	}
	if len(st.Partitions) != 2 || st.Partitions[0].Topic != "hr.people" || st.Partitions[1].Topic != "hr.people" {
		t.Errorf("status --topic hr.*: %+v", st.Partitions)
	}

	code, out, errs = runCLI("verify", "-c", f.file, "--topic", "sales.orders,hr.people", "--table", "sales_*")
	if code != 0 {
		t.Fatalf("verify --topic: exit %d: %s%s", code, out, errs)
	}
	golden(t, "verify_topic", out)

	code, out, errs = runCLI("plan", "-c", f.file, "--table", "hr_*", "--sample", "0")
	if code != 0 {
		t.Fatalf("plan --table: exit %d: %s%s", code, out, errs)
	}
	golden(t, "plan_table", out)

	code, out, errs = runCLI("replay", "-c", f.file, "--table", "hr_*", "--from", "3")
	if code != 0 {
		t.Fatalf("replay --table: exit %d: %s%s", code, out, errs)
	}
	golden(t, "replay_table", out)
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed' AND topic = 'hr.people'"); n != 2 {
		t.Errorf("%d replayed ledger rows of hr.people, want 2 (offsets 3..5 of two partitions)", n)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed' AND topic <> 'hr.people'"); n != 0 {
		t.Errorf("replay --table hr_* touched %d ledger rows of other topics", n)
	}
	code, out, errs = runCLI("replay", "-c", f.file, "--topic", "sales.orders", "--partition", "1", "--from", "0", "--dry-run")
	if code != 0 || strings.Count(out, "would replay") != 1 || !strings.Contains(out, "sales.orders[1] offsets 0..5") {
		t.Errorf("replay --topic --partition --dry-run: exit %d: %s%s", code, out, errs)
	}

	for _, args := range [][]string{
		{"status", "-c", f.file, "--table", "sale_*"},
		{"verify", "-c", f.file, "--topic", "sales"},
		{"plan", "-c", f.file, "--topic", "hr.people", "--table", "sales_*"},
		{"replay", "-c", f.file, "--topic", "absent.*", "--from", "0"},
		{"replay", "-c", f.file, "--topic", "hr.people", "--partition", "7", "--from", "0"},
	} {
		code, out, errs := runCLI(args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, want 2 and nothing on stdout: %s%s", args, code, out, errs)
		}
		golden(t, "nothing_"+args[0]+"_"+strings.Join(args[3:], "_"), errs)
	}
	for _, args := range [][]string{
		{"replay", "-c", f.file, "--from", "0"},
		{"status", "-c", f.file, "--topic", "sales.[a"},
	} {
		if code, _, errs := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errs)
		}
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 2 {
		t.Errorf("%d replayed rows after the refused replays, want the 2 of before", n)
	}
}
