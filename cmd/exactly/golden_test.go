package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the current output")

// volatile are the parts of CLI output that change from run to run: they
// are replaced before comparing with a golden file.
var volatile = []struct {
	re   *regexp.Regexp
	with string
	pad  bool // keep the width (with ~), so tables stay aligned
}{
	{regexp.MustCompile(`[0-9a-f]{13}-[0-9a-z]+-[0-9]{6}`), "BATCH", true},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "TIME", true},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT", false},
	{regexp.MustCompile(`/tmp/[^\s:'"]+`), "/TMP", false},
	{regexp.MustCompile(` +\n`), "\n", false},
}

// golden compares the CLI output got with testdata/golden/name.txt, the
// volatile parts (batch ids, times, ports, temporary paths) replaced.
func golden(t *testing.T, name, got string) {
	t.Helper()
	for _, v := range volatile {
		got = v.re.ReplaceAllStringFunc(got, func(m string) string {
			if !v.pad || len(m) <= len(v.with) {
				return v.with
			}
			return v.with + strings.Repeat("~", len(m)-len(v.with))
		})
	}
	name = regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(name, "_")
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it after a deliberate change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// fleetFixture is a pipeline of several topics routed to several tables
// (sales.orders → sales_orders, …), 2 partitions each, every partition
// committed in the ledger of a SQLite sink: what --topic and --table
// select from.
type fleetFixture struct {
	file    string
	cluster *kfake.Cluster
	sink    *exactly.Sink
}

var fleetTopics = []string{"hr.people", "sales.items", "sales.orders"}

func newFleetFixture(t *testing.T) *fleetFixture {
	t.Helper()
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, fleetTopics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	dir := t.TempDir()
	y := fmt.Sprintf(`pipeline: fleet
source: {brokers: [%s]}
sink: {driver: sqlite, dsn: '%s'}
batch: {max_records: 3}
tables:
  - topics: '^(sales|hr)\.(.*)$'
    table: '${1}_${2}'
    key: [id]
`, strings.Join(cluster.ListenAddrs(), ","), filepath.Join(dir, "sink.db"))
	f := &fleetFixture{file: filepath.Join(dir, "fleet.yaml"), cluster: cluster}
	if err := os.WriteFile(f.file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := exactly.LoadConfig(f.file)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dialectFor("sqlite")
	if f.sink, err = exactly.NewSink(ctx, cfg, d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sink.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, topic := range fleetTopics {
		_, table, _ := cfg.Route(topic)
		if _, err := f.sink.DB().Exec("CREATE TABLE " + table + " (id bigint PRIMARY KEY, name text)"); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			var recs []*kgo.Record
			for i := 0; i < 6; i++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf(`{"id":%d}`, i%4)),
					Value: []byte(fmt.Sprintf(`{"id":%d,"name":"%s-%d-%d"}`, i%4, topic, p, i))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	for _, topic := range fleetTopics {
		for p := int32(0); p < 2; p++ {
			tp := exactly.TP{Topic: topic, Partition: p}
			if _, err := f.sink.SeedOffset(ctx, tp, 0); err != nil {
				t.Fatal(err)
			}
			var recs []*exactly.Record
			if err := kr.Read(ctx, tp, 0, 6, func(r *exactly.Record) error { recs = append(recs, r); return nil }); err != nil {
				t.Fatal(err)
			}
			for from := int64(0); len(recs) > 0; {
				b := &exactly.PartitionBatch{Topic: topic, Partition: p, From: from, Records: recs[:3]}
				recs = recs[3:]
				for _, o := range f.sink.Commit(ctx, []*exactly.PartitionBatch{b}) {
					if !o.Committed {
						t.Fatal(o.Err)
					}
				}
				from = b.To
			}
		}
	}
	return f
}

func (f *fleetFixture) count(t *testing.T, q string) int {
	t.Helper()
	var n int
	if err := f.sink.DB().QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
