package status

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

const config = `pipeline: shop
source:
  brokers: [127.0.0.1:9092]
sink:
  driver: postgres
  dsn: postgres://x
tables:
  - topics: '^shop\.(.*)$'
    table: 'app_$1'
    key: [id]
`

func tp(topic string, p int32) exactly.TP { return exactly.TP{Topic: topic, Partition: p} }

func TestJoinComputesLagRetentionAndLastBatch(t *testing.T) {
	cfg, err := exactly.ParseConfig(strings.NewReader(config), "pipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := ledgerHalf{
		offs: []exactly.OffsetRow{{TP: tp("shop.orders", 0), Next: 10}, {TP: tp("shop.orders", 1), Next: 3}},
		last: map[exactly.TP]exactly.BatchRow{
			tp("shop.orders", 0): {BatchID: "b0", StartedAt: started, CommittedAt: started.Add(time.Second), Status: exactly.StatusCommitted},
			tp("shop.orders", 1): {BatchID: "b1", StartedAt: started, Status: exactly.StatusFailed, Error: "boom"},
		},
		dead: map[exactly.TP]exactly.DeadLetterCount{tp("shop.orders", 0): {Open: 2, Resolved: 1}},
	}
	tps := h.partitions([]exactly.TP{tp("shop.orders", 1), tp("other", 0), tp("shop.orders", 2)})
	want := []exactly.TP{tp("other", 0), tp("shop.orders", 0), tp("shop.orders", 1), tp("shop.orders", 2)}
	if len(tps) != len(want) {
		t.Fatalf("partitions: got %v, want %v", tps, want)
	}
	for i := range want {
		if tps[i] != want[i] {
			t.Fatalf("partitions: got %v, want %v (sorted, each once)", tps, want)
		}
	}
	bounds := map[exactly.TP]exactly.Bounds{
		tp("other", 0):       {Start: 0, End: 4},
		tp("shop.orders", 1): {Start: 5, End: 9}, // retention deleted 3, 4 before they were applied
		tp("shop.orders", 2): {Start: 2, End: 7}, // never started
	}
	st := h.join(cfg, tps, bounds)
	if len(st) != 4 {
		t.Fatalf("got %d partitions, want 4", len(st))
	}
	other, gone, lost, fresh := st[0], st[1], st[2], st[3]
	if other.Table != "" || other.NextOffset != nil || *other.Lag != 4 {
		t.Errorf("an unrouted partition never reached: %+v", other)
	}
	if gone.HighWater != nil || gone.Lag != nil || *gone.NextOffset != 10 || gone.Table != "app_orders" {
		t.Errorf("a partition without bounds (gone from Kafka): %+v", gone)
	}
	if gone.LastBatchAt == nil || !gone.LastBatchAt.Equal(started.Add(time.Second)) || gone.DeadLetters != 2 || gone.DeadLettersResolved != 1 {
		t.Errorf("a committed last batch is dated by its commit, dead letters counted: %+v", gone)
	}
	if *lost.Lag != 6 || lost.RetentionLost != 2 || lost.LastStatus != exactly.StatusFailed || !lost.LastBatchAt.Equal(started) || lost.LastError != "boom" {
		t.Errorf("lag from next_offset, 2 offsets lost to retention, failed batch dated by its start: %+v", lost)
	}
	if *fresh.Lag != 5 || fresh.RetentionLost != 0 || *fresh.LogStart != 2 {
		t.Errorf("a partition never started lags by what Kafka retains: %+v", fresh)
	}
	if got := Waiting(st); got != 4+6+5 {
		t.Errorf("Waiting: got %d, want 15", got)
	}
	sum := SummarizeLedger(st)
	if sum.Partitions != 4 || sum.DeadLetters != 2 || sum.FailedLast != 1 || !sum.LastBatchAt.Equal(started.Add(time.Second)) {
		t.Errorf("SummarizeLedger: %+v", sum)
	}
}

func TestWaitingIgnoresNegativeLag(t *testing.T) {
	neg, pos := int64(-3), int64(2)
	if got := Waiting([]Partition{{Lag: &neg}, {Lag: &pos}, {}}); got != 2 {
		t.Errorf("got %d, want 2: a next_offset beyond the log end waits for nothing", got)
	}
}

func TestReseedsOfKeepsTheShownPartitions(t *testing.T) {
	rows := []exactly.BatchRow{
		{BatchID: "r1", Topic: "a", Partition: 0, From: 1, To: 5, Writer: "ops", Notes: "why"},
		{BatchID: "r2", Topic: "b", Partition: 0, From: 1, To: 5},
	}
	got := reseedsOf(rows, shown([]Partition{{Topic: "a", Partition: 0}}))
	if len(got) != 1 || got[0].BatchID != "r1" || got[0].By != "ops" || got[0].Reason != "why" || got[0].To != 5 {
		t.Errorf("got %+v, want r1 only", got)
	}
	if got := reseedsOf(rows, nil); got == nil || len(got) != 0 {
		t.Errorf("none shown: got %#v, want an empty (not nil) list for JSON []", got)
	}
}

func TestKafkaDownSaysWhy(t *testing.T) {
	cause := errors.New("dial refused")
	e := &KafkaDown{Wait: 5 * time.Second, TimedOut: true, Err: cause}
	if got, want := e.Error(), "Kafka unreachable: dial refused (no answer within 5s)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(e, cause) {
		t.Error("KafkaDown does not unwrap to its cause")
	}
	e.TimedOut = false
	if got, want := e.Error(), "Kafka unreachable: dial refused"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestKafkaCauseDialsTheBrokers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	got := KafkaCause(ctx, []string{ln.Addr().String(), refused}, context.DeadlineExceeded).Error()
	if !strings.Contains(got, ln.Addr().String()+" accepts connections but did not answer") || !strings.Contains(got, "refused") {
		t.Errorf("got %q, want the listening broker silent and the closed one refused", got)
	}
	other := errors.New("not a timeout")
	if got := KafkaCause(ctx, []string{refused}, other); got != other {
		t.Errorf("an error other than the wait's end: got %v, want it unchanged", got)
	}
}
