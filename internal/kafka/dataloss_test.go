package kafka

import (
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// A log truncated above what was applied drops the buffered records from
// the reset point on, to be read again. A partition paused for holding its
// share stayed paused: with its buffer emptied no flight ever took it, and
// nothing resumed it, so it never fetched again; and its byte count kept
// the dropped records.
func TestDataLossAboveAppliedFetchesAgain(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tp := exactly.TP{Topic: "t.a", Partition: 0}
	s := &Source{cl: cl, log: slog.New(slog.NewTextHandler(io.Discard, nil)), opt: newOptions(nil),
		parts: map[exactly.TP]*partition{}}
	p := &partition{next: 10, paused: true}
	for off := int64(10); off < 20; off++ {
		p.recs = append(p.recs, &exactly.Record{Topic: tp.Topic, Offset: off, Value: []byte("0123456789")})
		p.bytes += 10
	}
	s.parts[tp] = p
	cl.PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})

	s.dataLoss(tp, &kgo.ErrDataLoss{Topic: tp.Topic, Partition: tp.Partition, ConsumedTo: 20, ResetTo: 15})
	if len(p.recs) != 5 || p.bytes != 50 {
		t.Fatalf("kept %d records, %d bytes; want the 5 below the reset point, 50 bytes", len(p.recs), p.bytes)
	}
	if p.halted != nil {
		t.Fatalf("halted: %v", p.halted)
	}
	if p.paused || len(cl.PauseFetchPartitions(nil)[tp.Topic]) > 0 {
		t.Fatalf("the partition is still paused: it would not read the dropped records again")
	}

	// All of the buffer dropped.
	p.paused = true
	cl.PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})
	s.dataLoss(tp, &kgo.ErrDataLoss{Topic: tp.Topic, Partition: tp.Partition, ConsumedTo: 15, ResetTo: 10})
	if len(p.recs) != 0 || p.bytes != 0 || p.paused || len(cl.PauseFetchPartitions(nil)[tp.Topic]) > 0 {
		t.Fatalf("after dropping the whole buffer: %d records, %d bytes, paused %v", len(p.recs), p.bytes, p.paused)
	}
}
