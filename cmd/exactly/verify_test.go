package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestVerifyChecksTheLastDayByDefault: without --from, verify re-reads
// the ranges of the last 24 hours only and says so; --all and --from reach
// older rows. A tampered row three days old is found by --all and --from
// 96h, not by default; a tampered row of today by all three.
func TestVerifyChecksTheLastDayByDefault(t *testing.T) {
	f := newAuditFixture(t, "sqlite", 30, 10)
	old := time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339Nano)
	f.exec(t, "UPDATE exactly_batches SET hash = 'tampered', started_at = ?, committed_at = ? WHERE batch_id = ?", old, old, f.batches[0].BatchID)
	f.exec(t, "UPDATE exactly_batches SET hash = 'tampered' WHERE batch_id = ?", f.batches[2].BatchID)

	code, out, errs := runCLI("verify", "-c", f.file)
	if code != 1 {
		t.Fatalf("verify: exit %d, want 1\n%s%s", code, out, errs)
	}
	golden(t, "verify_default_window", out)
	if strings.Contains(out, f.batches[0].BatchID) || !strings.Contains(out, f.batches[2].BatchID) {
		t.Errorf("default verify: want the finding of today's batch only:\n%s", out)
	}

	for _, args := range [][]string{{"--all"}, {"--from", "96h"}, {"--from", "4d"}} {
		code, out, errs := runCLI(append([]string{"verify", "-c", f.file, "--json"}, args...)...)
		var rep struct {
			Since    time.Time
			Rehashed int
			Findings []struct {
				BatchID string `json:"batch_id"`
			}
		}
		if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil {
			t.Fatalf("verify %v: exit %d, %v\n%s%s", args, code, err, out, errs)
		}
		if len(rep.Findings) != 2 || rep.Findings[0].BatchID != f.batches[0].BatchID || rep.Rehashed != 3 {
			t.Errorf("verify %v: want both tampered batches, 3 ranges re-read:\n%s", args, out)
		}
		if (args[0] == "--all") != rep.Since.IsZero() {
			t.Errorf("verify %v: since %v", args, rep.Since)
		}
	}
	if code, out, _ := runCLI("verify", "-c", f.file, "--all"); !strings.Contains(out, "checked: the whole ledger (--all)") || code != 1 {
		t.Errorf("verify --all: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI("verify", "-c", f.file, "--all", "--from", "1h"); code != 2 {
		t.Errorf("verify --all --from: exit %d, want 2: %s", code, errs)
	}
}
