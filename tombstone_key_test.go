package exactly_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// TestTombstoneWithANarrowerKeyIsSkipped: a rule key wider than the
// Debezium record key (table key (id, name), source key id) makes every
// tombstone unable to name its row, though its d deleted the row by the
// before image. Since tombstones delete (issue 15.7) each was a dead letter
// and, under on_error: fail, the partition halted at the first one for
// good. It is skipped, as before: the d did the delete.
func TestTombstoneWithANarrowerKeyIsSkipped(t *testing.T) {
	for _, c := range cdcCases() {
		t.Run(c.name, func(t *testing.T) {
			table, pipeline := uniq("customers"), uniq("p")
			cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: 'dbserver1\.inventory\.customers'
    table: %s
    format: debezium
    on_error: fail
    key: [id, name]
`, pipeline, c.d.Name(), c.dsn(t), table)), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			s := openSink(t, cfg, c.d)
			if _, err := s.DB().Exec(`CREATE TABLE ` + table + ` (id BIGINT, name VARCHAR(50) NOT NULL, price NUMERIC(10,2), born DATE,
		created TIMESTAMP, updated TIMESTAMP WITH TIME ZONE, active BOOLEAN, note TEXT, email TEXT, source_lsn BIGINT, PRIMARY KEY (id, name))`); err != nil {
				t.Fatal(err)
			}
			topic := "dbserver1.inventory.customers"
			if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: topic}, 0); err != nil {
				t.Fatal(err)
			}
			dec := []byte{0x30, 0x39}
			rec := func(off int64, id int, v []byte) *exactly.Record {
				return &exactly.Record{Topic: topic, Partition: 0, Offset: off, Key: dbzKey(id), Value: v}
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, Partition: 0, From: 0, Records: []*exactly.Record{
				rec(0, 1, dbzEvent("r", nil, dbzRow(1, "Ada", dec, true, nil, nil), 100, false)),
				rec(1, 2, dbzEvent("r", nil, dbzRow(2, "Bob", dec, true, nil, nil), 110, false)),
				rec(2, 2, dbzEvent("d", dbzRow(2, "Bob", dec, true, nil, nil), nil, 120, false)),
				rec(3, 2, nil),
				rec(4, 3, dbzEvent("r", nil, dbzRow(3, "Cy", dec, true, nil, nil), 130, false)),
			}}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("batch: %+v (halted at the tombstone)", out[0])
			}
			if got := textRows(t, s, "SELECT CAST(id AS TEXT) FROM "+table+" ORDER BY id"); strings.Join(got, ",") != "1,3" {
				t.Errorf("ids: %v, want [1 3]", got)
			}
			if got, want := ledgerCounts(t, s, pipeline, 0), "to=5 records=5 upserted=2 deleted=1 skipped=2 dead=0"; got != want {
				t.Errorf("ledger: got %s, want %s", got, want)
			}
		})
	}
}
