package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/status"
)

// auditFixture is a sink whose ledger holds committed batches of real
// records of t.items[0], and the config file pointing at both.
type auditFixture struct {
	file     string
	driver   string
	d        exactly.Dialect
	db       *sql.DB
	sink     *exactly.Sink
	cluster  *kfake.Cluster
	batches  []*exactly.PartitionBatch
	produced int
}

// newAuditFixture produces n records (keys cycling over 7 ids) and commits
// them through Sink.Commit in batches of size.
func newAuditFixture(t *testing.T, driver string, n, size int) *auditFixture {
	t.Helper()
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	f := &auditFixture{driver: driver, cluster: cluster}
	dir := t.TempDir()
	dsn := filepath.Join(dir, "sink.db")
	switch driver {
	case "postgres":
		dsn = testenv.PostgresSchema(t)
	case "mysql":
		dsn = testenv.MySQLDatabase(t)
	}
	y := fmt.Sprintf(`pipeline: audit
source: {brokers: [%s]}
sink: {driver: %s, dsn: '%s'}
batch: {max_records: %d}
tables:
  - topics: t.items
    table: items
    key: [id]
`, strings.Join(cluster.ListenAddrs(), ","), driver, dsn, size)
	f.file = filepath.Join(dir, "audit.yaml")
	if err := os.WriteFile(f.file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := exactly.LoadConfig(f.file)
	if err != nil {
		t.Fatal(err)
	}
	if f.d, err = dialectFor(driver); err != nil {
		t.Fatal(err)
	}
	if f.sink, err = exactly.NewSink(ctx, cfg, f.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sink.Close() })
	f.db = f.sink.DB()
	if _, err := f.db.Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sink.SeedOffset(ctx, exactly.TP{Topic: "t.items"}, 0); err != nil {
		t.Fatal(err)
	}
	f.produceMore(t, n)
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	var recs []*exactly.Record
	if err := kr.Read(ctx, exactly.TP{Topic: "t.items"}, 0, int64(n), func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for len(recs) > 0 {
		k := min(size, len(recs))
		b := &exactly.PartitionBatch{Topic: "t.items", From: next, Records: recs[:k]}
		recs = recs[k:]
		for _, o := range f.sink.Commit(ctx, []*exactly.PartitionBatch{b}) {
			if !o.Committed {
				t.Fatal(o.Err)
			}
		}
		f.batches = append(f.batches, b)
		next = b.To
	}
	return f
}

// produceMore appends n records to t.items[0], keys cycling over 7 ids.
func (f *auditFixture) produceMore(t *testing.T, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.cluster.ListenAddrs()...), kgo.DefaultProduceTopic("t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		f.produced++
		id := f.produced % 7
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"n%d"}`, id, f.produced))}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (f *auditFixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(exactly.Rebind(f.d, q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestStatusAndVerifyCommands(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newAuditFixture(t, driver, 30, 10)

			code, out, errs := runCLI("status", "-c", f.file, "--json")
			if code != 0 {
				t.Fatalf("status exit %d: %s", code, errs)
			}
			var st struct {
				Pipeline   string             `json:"pipeline"`
				Partitions []status.Partition `json:"partitions"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			if len(st.Partitions) != 1 {
				t.Fatalf("status: %d partitions, want 1: %s", len(st.Partitions), out)
			}
			p := st.Partitions[0]
			if p.Table != "items" || *p.NextOffset != 30 || *p.HighWater != 30 || *p.Lag != 0 ||
				p.LastBatchID != f.batches[2].BatchID || p.LastStatus != "committed" {
				t.Errorf("status: %s", out)
			}
			code, out, _ = runCLI("status", "-c", f.file)
			if code != 0 || !strings.Contains(out, "NEXT_OFFSET") || !strings.Contains(out, f.batches[2].BatchID) {
				t.Errorf("status table (exit %d):\n%s", code, out)
			}

			code, out, errs = runCLI("verify", "-c", f.file)
			if code != 0 || !strings.Contains(out, "OK: no findings") {
				t.Fatalf("verify of a clean ledger: exit %d\n%s%s", code, out, errs)
			}

			f.exec(t, "UPDATE exactly_batches SET hash = 'tampered' WHERE batch_id = ?", f.batches[1].BatchID)
			code, out, errs = runCLI("verify", "-c", f.file, "--json")
			if code != 1 {
				t.Fatalf("verify after tampering: exit %d, want 1\n%s%s", code, out, errs)
			}
			var rep struct {
				Findings []struct {
					Kind      string `json:"kind"`
					Topic     string `json:"topic"`
					Partition int32  `json:"partition"`
					From, To  int64
					BatchID   string `json:"batch_id"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("verify --json: %v\n%s", err, out)
			}
			if len(rep.Findings) != 1 || rep.Findings[0].Kind != "hash_mismatch" || rep.Findings[0].From != 10 ||
				rep.Findings[0].To != 20 || rep.Findings[0].BatchID != f.batches[1].BatchID {
				t.Errorf("verify findings: %s", out)
			}
		})
	}
}

func TestAuditUsageErrors(t *testing.T) {
	f := newAuditFixture(t, "sqlite", 3, 10)
	// A config whose SQLite file does not exist: a configuration error,
	// and no file is created by looking.
	cfgText, err := os.ReadFile(f.file)
	if err != nil {
		t.Fatal(err)
	}
	noDB := filepath.Join(t.TempDir(), "absent.db")
	sinkDB := filepath.Join(filepath.Dir(f.file), "sink.db")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if err := os.WriteFile(missing, []byte(strings.Replace(string(cfgText), sinkDB, noDB, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := os.Stat(noDB); err == nil {
			t.Error("a read-only command created the SQLite file")
		}
	}()
	for _, args := range [][]string{
		{"verify"},
		{"status"},
		{"verify", "-c", f.file, "--from", "yesterday-ish"},
		{"verify", "-c", f.file, "--nope"},
		{"verify", "-c", missing},
		{"status", "-c", missing},
	} {
		if code, _, errs := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
	}
	if code, _, errs := runCLI("verify", "-c", f.file, "--from", time.Now().Add(-time.Hour).Format(time.RFC3339)); code != 0 {
		t.Errorf("verify --from: exit %d: %s", code, errs)
	}
}

// TestStatusShowsRetentionLoss: offsets deleted before the pipeline read
// them show in status, as a count and in the table.
func TestStatusShowsRetentionLoss(t *testing.T) {
	f := newAuditFixture(t, "sqlite", 10, 10)
	f.produceMore(t, 10) // 10..19, never applied
	if err := f.cluster.DeleteRecords("t.items", 0, 15); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI("status", "-c", f.file, "--json")
	if code != 0 || !strings.Contains(out, `"retention_lost": 5`) || !strings.Contains(out, `"lag": 10`) {
		t.Errorf("status --json (exit %d): %s%s", code, out, errs)
	}
	if code, out, _ := runCLI("status", "-c", f.file); code != 0 || !strings.Contains(out, "LOST 5 offsets") {
		t.Errorf("status table (exit %d):\n%s", code, out)
	}
}
