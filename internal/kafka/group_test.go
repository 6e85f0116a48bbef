package kafka

import (
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

func TestGroupKeepsTablesWholeAndBalances(t *testing.T) {
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: x.db, max_conns: 3}
tables:
  - topics: '^shop\.(a|b)$'
    table: ab
    key: [id]
  - topics: '^t\.(.*)$'
    table: '$1'
    key: [id]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Source{cfg: cfg}
	var batches []*exactly.PartitionBatch
	add := func(topic string, part int32, n int) {
		batches = append(batches, &exactly.PartitionBatch{Topic: topic, Partition: part, Records: make([]*exactly.Record, n)})
	}
	add("shop.a", 0, 50) // shop.a and shop.b both go to table ab: one group
	add("shop.b", 0, 50)
	add("shop.b", 1, 10)
	for i := 0; i < 10; i++ {
		add(fmt.Sprintf("t.x%d", i), 0, 20)
		add(fmt.Sprintf("t.x%d", i), 1, 20)
	}
	groups := s.group(batches)
	if len(groups) != 3 {
		t.Fatalf("got %d groups, want 3 (sink.max_conns)", len(groups))
	}
	where := map[string]int{}
	total := 0
	for i, g := range groups {
		n := 0
		for _, b := range g {
			_, table, _ := cfg.Route(b.Topic)
			if j, ok := where[table]; ok && j != i {
				t.Errorf("table %s split over groups %d and %d", table, j, i)
			}
			where[table] = i
			n += len(b.Records)
		}
		total += n
		if n < 150 || n > 190 { // the best split of 110 + 10×40 is 190, 160, 160
			t.Errorf("group %d holds %d records; want a balanced share of 510", i, n)
		}
	}
	if total != 510 {
		t.Errorf("groups hold %d records, want 510", total)
	}
}
