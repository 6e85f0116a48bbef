package plan_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/plan"
)

// TestMakeStartsWhereTheSourceWould plans two partitions of five records
// with start_from latest: before the first start both start at the end;
// once the ledger holds a row of one, the other starts at its beginning
// (as the source seeds a partition created since), and the planned one
// at its row. Planning writes nothing: no first start is recorded and no
// row is seeded.
func TestMakeStartsWhereTheSourceWould(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 5; i++ {
			r := &kgo.Record{Topic: "t.items", Partition: p, Value: []byte(fmt.Sprintf(`{"id":%d,"name":"n"}`, 10*int(p)+i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl.Close()
	yaml := fmt.Sprintf("pipeline: p\nsource:\n  brokers: [%s]\n  group: g\n  start_from: latest\nsink:\n  driver: sqlite\n  dsn: %s\ntables:\n  - topics: t.items\n    table: items\n    key: [id]\n    key_from: value\n    create: true\n",
		strings.Join(c.ListenAddrs(), ", "), filepath.Join(t.TempDir(), "s.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(yaml), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := exactly.NewSink(ctx, cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	kc, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	tps := []exactly.TP{{Topic: "t.items", Partition: 0}, {Topic: "t.items", Partition: 1}}

	starts := func() []plan.Partition {
		t.Helper()
		p, err := plan.Make(ctx, cfg, sink, kc, tps, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Topics) != 1 || len(p.Topics[0].Partitions) != 2 || p.Problems != 0 {
			t.Fatalf("plan %+v, want one topic of two partitions and no problem", p)
		}
		return p.Topics[0].Partitions
	}
	for _, pp := range starts() {
		if pp.Start != 5 || pp.From != "start_from latest, no ledger row yet" {
			t.Errorf("before the first start: %s starts at %d (%s), want 5 (start_from latest)", pp.TP, pp.Start, pp.From)
		}
	}
	if _, err := sink.SeedOffset(ctx, tps[0], 2); err != nil {
		t.Fatal(err)
	}
	got := starts()
	if got[0].Start != 2 || got[0].From != "ledger" {
		t.Errorf("%s starts at %d (%s), want 2 (ledger)", got[0].TP, got[0].Start, got[0].From)
	}
	if got[1].Start != 0 || !strings.Contains(got[1].From, "its beginning") {
		t.Errorf("%s starts at %d (%s), want 0 (its beginning)", got[1].TP, got[1].Start, got[1].From)
	}
	if first, err := sink.FirstStart(ctx); err != nil || first != nil {
		t.Errorf("plan recorded a first start: %+v, %v", first, err)
	}
	if pos, err := sink.LoadPositions(ctx, tps); err != nil || len(pos) != 1 {
		t.Errorf("plan seeded rows: %v, %v; want only the row the test seeded", pos, err)
	}
}
