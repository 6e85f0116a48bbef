package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
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

// TestVerifyRecreatedTopicThenReseed: t.items is deleted and created
// again under a ledger whose offsets row recorded its id. exactly verify
// says so, once for the partition, with both ids and the exactly reseed
// command to copy (before: a hash_mismatch or count_mismatch per range
// re-read from the new topic, as if the ledger had been altered); that
// command, run as given, makes verify clean again.
func TestVerifyRecreatedTopicThenReseed(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newAuditFixture(t, driver, 30, 10)
			cfg, err := exactly.LoadConfig(f.file)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := kafka.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := kr.TopicIDs(ctx, []string{"t.items"})
			kr.Close()
			if err != nil || ids["t.items"] == "" {
				t.Fatalf("topic id: %v %v", ids, err)
			}
			if err := f.sink.RecordTopicID(ctx, exactly.TP{Topic: "t.items"}, ids["t.items"]); err != nil { // as the source does
				t.Fatal(err)
			}
			recreateTopic(t, f.cluster.ListenAddrs(), "t.items", 25)

			code, out, errs := runCLI("verify", "-c", f.file, "--all")
			reseed := "exactly reseed -c " + f.file + " --topic t.items --partition 0 --to earliest --reason"
			if code != 1 || strings.Count(out, "FINDING ") != 1 || !strings.Contains(out, "FINDING topic_recreated t.items[0] at offset 30: ") ||
				!strings.Contains(out, ids["t.items"]) || !strings.Contains(out, reseed) || strings.Contains(out, "mismatch") {
				t.Fatalf("verify of a recreated topic: exit %d, want 1 and one topic_recreated finding naming the old id and %q:\n%s%s", code, reseed, out, errs)
			}
			_, out, _ = runCLI("verify", "-c", f.file, "--all", "--json")
			var rep struct {
				Findings []struct{ Kind string }
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != "topic_recreated" {
				t.Errorf("verify --json: %v\n%s", err, out)
			}

			if code, out, errs := runCLI("reseed", "-c", f.file, "--topic", "t.items", "--partition", "0", "--to", "earliest", "--reason", "t.items recreated"); code != 0 {
				t.Fatalf("reseed: exit %d\n%s%s", code, out, errs)
			}
			if code, out, errs := runCLI("verify", "-c", f.file, "--all"); code != 0 || !strings.Contains(out, "reseeded t.items[0]") {
				t.Errorf("verify after the reseed: exit %d, want 0 and the reseed noted\n%s%s", code, out, errs)
			}
		})
	}
}

// recreateTopic deletes the topic and creates it again (a new topic id,
// one partition) with n records unlike the old ones.
func recreateTopic(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil {
			break
		}
		if !errorsIsExists(err) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	cl.ForceMetadataRefresh()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, i%7)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"recreated-%d"}`, i%7, i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyReportsAnUnknownHashScheme: a ledger hash whose prefix this
// version does not know is a finding (exit 1) naming the batch, the
// partition and the range, not a crash and not a pass.
func TestVerifyReportsAnUnknownHashScheme(t *testing.T) {
	f := newAuditFixture(t, "sqlite", 30, 10)
	f.exec(t, "UPDATE exactly_batches SET hash = 'sha3:00' WHERE batch_id = ?", f.batches[1].BatchID)
	code, out, errs := runCLI("verify", "-c", f.file)
	want := "FINDING unknown_hash_scheme t.items[0] offsets 10..19 batch " + f.batches[1].BatchID + `: the range cannot be re-hashed: unknown hash scheme "sha3"`
	if code != 1 || !strings.Contains(out, want) || strings.Count(out, "FINDING") != 1 {
		t.Errorf("verify: exit %d, want 1 and %q\n%s%s", code, want, out, errs)
	}
}
