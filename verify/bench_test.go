package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/verify"
)

// BenchmarkVerify measures verify's throughput (ledger read, re-read from
// Kafka, re-hash, compare) against its own baseline measured in the same
// run: a bare read_committed read of the same range through the same
// reader. The ratio is verify's overhead over reading the topic.
//
//	go test -run '^$' -bench Verify -benchtime 3x ./verify/
func BenchmarkVerify(b *testing.B) {
	const n, size = 100_000, 5_000
	e := newBenchEnv(b, n, size)
	ctx := context.Background()
	tp := exactly.TP{Topic: topic}
	var base, full time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		got := 0
		if err := e.reader.Read(ctx, tp, 0, n, func(*exactly.Record) error { got++; return nil }); err != nil || got != n {
			b.Fatalf("baseline read %d of %d: %v", got, n, err)
		}
		base += time.Since(start)
		start = time.Now()
		rep, err := verify.Run(ctx, exactly.NewLedger(e.db, e.d, "audit"), e.reader, verify.Options{})
		if err != nil || !rep.Clean() || rep.Records != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
		full += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/base.Seconds(), "read-records/s")
	b.ReportMetric(float64(n*b.N)/full.Seconds(), "verify-records/s")
	b.ReportMetric(full.Seconds()/base.Seconds(), "verify/read")
}

func newBenchEnv(b *testing.B, n, size int) *env {
	b.Helper()
	// newEnv produces one record per round trip; too slow for 100k.
	e := newEnv(b, "sqlite", 0, size)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		id := i % 1000
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"n%d"}`, id, i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	e.commit(0, int64(n), size)
	return e
}
