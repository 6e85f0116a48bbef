package replay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/replay"
)

// TestCheckLogRefusesAnotherLog: a range whose partition's log is not the
// one the ledger's offsets row counted is refused before anything is
// written: the topic's id is not the one exactly_offsets recorded (the
// topic was deleted and created again), or the log ends below the range
// (created again shorter, or truncated). Before, replay read the new
// topic's records and applied them as the old range (found on the binary:
// "replayed brk2b[0] offsets 0..29: 5 records" on a recreated topic).
func TestCheckLogRefusesAnotherLog(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := &kgo.Record{Topic: "t.items", Key: []byte(fmt.Sprintf(`{"id":%d}`, i)), Value: []byte(fmt.Sprintf(`{"id":%d}`, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: p
source: {brokers: [%s], group: g}
sink: {driver: sqlite, dsn: unused.db}
tables:
  - {topics: t.items, table: items, key: [id]}
`, strings.Join(c.ListenAddrs(), ","))), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	ids, err := kr.TopicIDs(ctx, []string{"t.items"})
	if err != nil || ids["t.items"] == "" {
		t.Fatalf("topic id: %v %v", ids, err)
	}
	tp := exactly.TP{Topic: "t.items"}
	for _, c := range []struct {
		name string
		r    replay.Range
		want string // "" accepted
	}{
		{"same topic", replay.Range{TP: tp, From: 0, To: 5, Next: 5, TopicID: ids["t.items"]}, ""},
		{"no id recorded", replay.Range{TP: tp, From: 0, To: 5, Next: 5}, ""},
		{"another topic id", replay.Range{TP: tp, From: 0, To: 5, Next: 5, TopicID: "AAAAAAAAAAAAAAAAAAAAAA=="}, "deleted and created again"},
		{"log ends below the range", replay.Range{TP: tp, From: 0, To: 30, Next: 30}, "ends at 5"},
	} {
		_, err := replay.CheckLog(ctx, cfg, kr, []replay.Range{c.r})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a refusal saying %q", c.name, err, c.want)
		}
	}
}
