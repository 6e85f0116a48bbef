package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/workload"
	"github.com/exactly/exactly/status"
)

// TestReseedEndToEnd (issue 14, offsets beyond the log end): the real
// binary, a kfake broker in its own process, PostgreSQL, every timeout at
// its default. demo.events is deleted and created again under the running
// pipeline: its partitions halt with that cause (not "deleted"), /readyz
// says so, exactly status shows a negative lag, and the log gives a
// copyable exactly reseed command. reseed is refused while the pipeline
// owns the partitions; once it stopped, reseed --to earliest moves
// next_offset with a reseeded ledger row (who, why, from, to), the
// restarted pipeline applies the new topic's records, exactly verify is
// clean and explains the break with that row, and exactly status shows it.
// A member restarted before the reseed halts the partitions again at once.
// Before: the running member stayed ready with lag 0 and never applied
// the new records; a restart halted with "offsets N..-1 were deleted … re-
// seed with exactly adopt", and adopt refused every partition.
func TestReseedEndToEnd(t *testing.T) {
	e := newLiveEnv(t)
	ctx := context.Background()
	addr := freeAddr(t)
	cfg := e.config("a", "", e.dsn)
	stop := e.produce(300)
	p := e.startWith("a", cfg, "--metrics-addr", addr)
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s\n%s", e.log())
	}
	time.Sleep(2 * time.Second)
	stop()
	e.caughtUp(time.Now(), 90*time.Second)
	old := map[int32]int64{}
	rows, err := e.db.Query(`SELECT "partition", next_offset FROM exactly_offsets WHERE pipeline = $1 AND topic = $2`, e.pipeline, workload.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var part int32
		var n int64
		if err := rows.Scan(&part, &n); err != nil {
			t.Fatal(err)
		}
		old[part] = n
	}
	rows.Close()
	if len(old) != 3 || old[0] < 6 || old[1] < 6 || old[2] < 6 {
		t.Fatalf("demo.events next_offsets %v; want 3 partitions past 5 records each", old)
	}

	// The topic is recreated: 5 new events per partition, below the old
	// next_offsets.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, workload.TopicEvents); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := adm.CreateTopic(ctx, 3, 1, nil, workload.TopicEvents)
		if err == nil || errorsIsExists(err) && time.Now().After(deadline) {
			break
		}
		if !errorsIsExists(err) {
			t.Fatal(err)
		}
	}
	cl.ForceMetadataRefresh()
	var recs []*kgo.Record
	for part := int32(0); part < 3; part++ {
		for i := 0; i < 5; i++ {
			v := fmt.Sprintf(`{"event_id": %d, "kind": "after-recreate", "customer_id": 1}`, 9_000_000+int(part)*10+i)
			recs = append(recs, &kgo.Record{Topic: workload.TopicEvents, Partition: part, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	readyz(t, addr, "FAIL halted", "demo.events[0]", "demo.events[1]", "demo.events[2]")
	t.Logf("running member: demo.events halted %v after the new records (default 5s watermark check; load %s)", time.Since(began).Round(time.Millisecond), loadavg())
	e.waitLog("topic recreated: demo.events[0]", 5*time.Second)
	want := fmt.Sprintf("exactly reseed -c %s --topic demo.events --partition 0 --to earliest --reason", cfg)
	if !strings.Contains(e.log(), want) {
		t.Errorf("the halt does not give a copyable %q\n%s", want, e.log())
	}
	var out, errOut strings.Builder
	run([]string{"status", "-c", cfg, "--json"}, &out, &errOut)
	var st struct {
		Partitions []status.Partition `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		t.Fatalf("exactly status --json: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, s := range st.Partitions {
		if s.Topic == workload.TopicEvents && (s.Lag == nil || *s.Lag != 5-old[s.Partition]) {
			t.Errorf("exactly status: %s[%d] lag %v; want %d (next_offset %d beyond the log end 5)", s.Topic, s.Partition, s.Lag, 5-old[s.Partition], old[s.Partition])
		}
	}

	reseed := []string{"reseed", "-c", cfg, "--topic", "demo.events", "--partition", "0,1,2", "--to", "earliest", "--reason", "demo.events recreated by the platform team"}
	out.Reset()
	errOut.Reset()
	if code := run(reseed, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "is owned by") {
		t.Errorf("reseed while the pipeline runs: exit %d, %q; want refused, naming the owner", code, errOut.String())
	}
	e.term(p, 10*time.Second)
	// A restart halts them again at once, on assignment, with the same
	// cause (before: "offsets N..-1 were deleted … re-seed with exactly
	// adopt", which refused every partition).
	restarted := time.Now()
	p = e.startWith("a", cfg, "--metrics-addr", addr)
	readyz(t, addr, "FAIL halted", "demo.events[0]", "demo.events[1]", "demo.events[2]")
	t.Logf("restarted member: demo.events halted %v after the start (load %s)", time.Since(restarted).Round(time.Millisecond), loadavg())
	if n := strings.Count(e.log(), "topic recreated: demo.events[0]"); n < 2 {
		t.Errorf("the restarted member did not halt demo.events[0] as recreated (%d halts logged)\n%s", n, e.log())
	}
	if strings.Contains(e.log(), "were deleted") {
		t.Errorf("a recreated topic was reported as deleted offsets\n%s", e.log())
	}
	e.term(p, 10*time.Second)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out.Reset()
		errOut.Reset()
		code := run(reseed, &out, &errOut)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reseed after the stop: exit %d: %s%s", code, out.String(), errOut.String())
		}
	}
	for part := int32(0); part < 3; part++ {
		if w := fmt.Sprintf("reseeded demo.events[%d]: next_offset %d -> 0 (--to earliest), ledger row ", part, old[part]); !strings.Contains(out.String(), w) {
			t.Errorf("reseed output lacks %q:\n%s", w, out.String())
		}
	}
	var who, why string
	var from, to int64
	if err := e.db.QueryRow(`SELECT writer, notes, from_offset, to_offset FROM exactly_batches WHERE pipeline = $1 AND topic = $2 AND "partition" = 0 AND status = 'reseeded'`,
		e.pipeline, workload.TopicEvents).Scan(&who, &why, &from, &to); err != nil {
		t.Fatal(err)
	}
	if who != operator() || why != "demo.events recreated by the platform team" || from != old[0] || to != 0 {
		t.Errorf("reseeded row: by %q why %q %d -> %d; want %q, the reason, %d -> 0", who, why, from, to, operator(), old[0])
	}

	q := e.startWith("b", cfg, "--metrics-addr", addr)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var n int
		if err := e.db.QueryRow(`SELECT count(*) FROM demo_events WHERE kind = 'after-recreate'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 15 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 15 records of the recreated topic applied\n%s", n, e.log())
		}
	}
	readyz(t, addr, "ok   halted")
	e.term(q, 10*time.Second)

	out.Reset()
	errOut.Reset()
	if code := run([]string{"verify", "-c", cfg}, &out, &errOut); code != 0 {
		t.Errorf("exactly verify after the reseed: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "reseeded demo.events[0]") || !strings.Contains(out.String(), "demo.events recreated by the platform team") {
		t.Errorf("exactly verify does not explain the break with the reseeded row:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	run([]string{"status", "-c", cfg}, &out, &errOut)
	if !strings.Contains(out.String(), fmt.Sprintf("demo.events[0] next_offset %d -> 0 by %s", old[0], operator())) {
		t.Errorf("exactly status does not show the reseed:\n%s%s", out.String(), errOut.String())
	}
}

func errorsIsExists(err error) bool {
	return err != nil && strings.Contains(err.Error(), kerr.TopicAlreadyExists.Message)
}

// TestReseedRefusesToRewindAHealthyPartition (issue 14 review): reseed
// moved next_offset back on a partition whose log still held what was
// applied — re-applying those records (duplicates in an append table) with
// an audit row that made verify say OK. It now refuses unless --rewind says
// the log was rewritten; a move forward, or to a log that no longer holds
// next_offset, needs no flag.
func TestReseedRefusesToRewindAHealthyPartition(t *testing.T) {
	brokers, dsn := checkEnv(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Topic: workload.TopicEvents, Partition: 0, Value: []byte(fmt.Sprintf(`{"event_id": %d}`, i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	file := writeCheckConfig(t, brokers, dsn, "", workload.Rules)
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := exactly.OpenSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tp := exactly.TP{Topic: workload.TopicEvents, Partition: 0}
	if err := s.EnsureLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedOffset(context.Background(), tp, 8); err != nil {
		t.Fatal(err)
	}
	reseed := func(to string, extra ...string) (int, string) {
		return cli(t, append([]string{"reseed", "-c", file, "--topic", workload.TopicEvents, "--partition", "0", "--to", to, "--reason", "test"}, extra...)...)
	}
	if code, out := reseed("earliest"); code != 2 || !strings.Contains(out, "--rewind") || !strings.Contains(out, "records 0..7 would be applied a second time") {
		t.Fatalf("rewinding a healthy partition: exit %d, want 2 and a refusal naming --rewind:\n%s", code, out)
	}
	if got, _ := s.LoadOffsets(context.Background(), []exactly.TP{tp}); got[tp] != 8 {
		t.Fatalf("a refused reseed moved next_offset to %d", got[tp])
	}
	if code, out := reseed("earliest", "--rewind"); code != 0 || !strings.Contains(out, "next_offset 8 -> 0") {
		t.Fatalf("--rewind: exit %d\n%s", code, out)
	}
	if code, out := reseed("latest"); code != 0 || !strings.Contains(out, "next_offset 0 -> 10") {
		t.Fatalf("a move forward: exit %d\n%s", code, out)
	}
}
