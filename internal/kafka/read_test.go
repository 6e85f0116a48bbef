package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

func readerFor(t *testing.T, brokers []string, opts ...kafka.ClientOption) *kafka.Client {
	t.Helper()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: r
source: {brokers: [%s]}
sink: {driver: sqlite, dsn: x.db}
tables: [{topics: r.t, key: [id]}]
`, strings.Join(brokers, ","))), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := kafka.NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func readAll(t *testing.T, r *kafka.Client, from, to int64) []int64 {
	t.Helper()
	var offs []int64
	if err := r.Read(context.Background(), exactly.TP{Topic: "r.t"}, from, to, func(rec *exactly.Record) error {
		offs = append(offs, rec.Offset)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return offs
}

// TestReaderSlowFetchIsNotTheEnd is the regression test for a Read that
// took a poll with no records (a first fetch slower than its idle wait)
// for the end of the range: verify then reported every range as a
// count_mismatch with 0 records. With an idle wait far shorter than any
// fetch, the whole range must still arrive.
func TestReaderSlowFetchIsNotTheEnd(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "r.t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("r.t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < 3000; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := readerFor(t, cluster.ListenAddrs(), kafka.ReadIdle(time.Microsecond))
	if got := readAll(t, r, 0, 3000); len(got) != 3000 || got[0] != 0 || got[2999] != 2999 {
		t.Fatalf("read %d records, want 3000", len(got))
	}
	if got := readAll(t, r, 1000, 1010); len(got) != 10 || got[0] != 1000 {
		t.Fatalf("read %v, want offsets 1000..1009", got)
	}
}

// TestReaderTransactions: markers and aborted records are skipped, and a
// range ending at a transaction still open ends at the last stable offset.
func TestReaderTransactions(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "r.t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("r.t"), kgo.TransactionalID("r-tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(n int, commit, end bool) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
	}
	txn(3, true, true)  // 0..2, marker 3
	txn(2, false, true) // aborted 4..5, marker 6
	txn(2, true, true)  // 7..8, marker 9
	r := readerFor(t, cluster.ListenAddrs(), kafka.ReadIdle(300*time.Millisecond))
	if got := fmt.Sprint(readAll(t, r, 0, 10)); got != "[0 1 2 7 8]" {
		t.Errorf("read %s, want [0 1 2 7 8]", got)
	}
	if got := fmt.Sprint(readAll(t, r, 4, 7)); got != "[]" {
		t.Errorf("aborted range read %s, want []", got)
	}
	txn(2, true, false) // 10..11, still open: the last stable offset stays 10
	if got := fmt.Sprint(readAll(t, r, 7, 12)); got != "[7 8]" {
		t.Errorf("read up to an open transaction %s, want [7 8]", got)
	}
}
