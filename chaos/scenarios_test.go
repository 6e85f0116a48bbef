package chaos

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly/internal/workload"
)

// The scenarios below each pin one fault of FAULTS.md deterministically;
// the random runs above mix them.

// waitLedger waits until next_offset reached ends for every partition.
func (h *harness) waitLedger(t *testing.T, ends map[string]map[int32]int64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		l, err := workload.CheckLedger(context.Background(), h.db, h.d, pipeline, ends)
		if err != nil {
			t.Fatal(err)
		}
		if l.AtEnd {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("unseen: not caught up within %v: %v\n%s", limit, l.Lagging, tail(h.slot(0).log, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verify reads the topics and checks tables and ledger; it fails the
// test on any finding.
func (h *harness) verify(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	recs, err := workload.ReadAll(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	aborted, err := workload.ReadAborted(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	f, _, _, err := h.check(ctx, recs, aborted)
	if err != nil {
		t.Fatal(err)
	}
	if !f.empty() {
		t.Errorf("found:\n%s", f)
	}
	for _, r := range h.scanLogs() {
		t.Errorf("instance log: %s", r)
	}
	h.auditWithVerify(t)
}

func (h *harness) produce(t *testing.T, gen *workload.Generator, n int) map[string]map[int32]int64 {
	t.Helper()
	ctx := context.Background()
	if err := workload.Produce(ctx, h.brokers, gen, n, 0); err != nil {
		t.Fatal(err)
	}
	recs, err := workload.ReadAll(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	return workload.DataEnds(recs)
}

// TestZombieBatchIsFenced: a member pauses (SIGSTOP) inside its batch
// transaction, before the fence, past its session timeout; the other
// member takes its partitions and moves them on; the paused member
// resumes and tries to commit its stale batch. The fence must refuse it,
// the ledger must show the attempt as a failed row saying "fenced", and
// nothing may be applied twice (FAULTS.md #3).
func TestZombieBatchIsFenced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "postgres")
	// One transaction per cycle, so the paused member holds no offset
	// row locks at before_write, and a rebalance timeout (hence idle
	// transaction timeout) longer than the pause, so its transaction is
	// still there to be fenced when it wakes.
	h.maxConns, h.rebalance = 1, 30*time.Second
	gen := workload.NewGenerator(42, 100)
	h.produce(t, gen, 500)
	z := h.start(1, "before_write:1:stop")
	deadline := time.Now().Add(30 * time.Second)
	for !stoppedState(z.pid()) {
		if z.exited() || time.Now().After(deadline) {
			t.Fatalf("the zombie never reached before_write:\n%s", tail(z.log, 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	z.paused = true
	// The other member gets every partition once the zombie's session
	// (2s) expires, and applies everything, including the zombie's range.
	h.start(0, "")
	ends := h.produce(t, gen, 500)
	h.waitLedger(t, ends, 60*time.Second)
	if err := z.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	z.paused = false
	var fenced int
	deadline = time.Now().Add(30 * time.Second)
	for fenced == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if err := h.db.QueryRow(`SELECT COUNT(*) FROM exactly_batches WHERE pipeline = $1 AND status = 'failed' AND writer LIKE $2 AND error LIKE 'fenced:%'`,
			pipeline, fmt.Sprintf("%%:%d", z.pid())).Scan(&fenced); err != nil {
			t.Fatal(err)
		}
	}
	if fenced == 0 {
		t.Fatalf("the zombie's stale batch left no 'failed … fenced' row in exactly_batches:\n%s", tail(z.log, 3000))
	}
	for deadline = time.Now().Add(10 * time.Second); !strings.Contains(tail(z.log, 1<<20), "batch fenced"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the zombie did not log its fenced batch:\n%s", tail(z.log, 2000))
			break
		}
	}
	ends = h.produce(t, gen, 300)
	h.waitLedger(t, ends, 60*time.Second)
	for _, in := range []*instance{h.slot(0), z} {
		if err := h.term(in, 30*time.Second); err != nil {
			t.Error(err)
		}
	}
	h.verify(t)
}

// TestWrongGroupOffsetsAreIgnored: while the pipeline is stopped, the
// consumer group's Kafka offsets are set far ahead on some partitions and
// back to 0 on others. The ledger is the truth: after the restart nothing
// is skipped and nothing applied twice (FAULTS.md #6).
func TestWrongGroupOffsetsAreIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite")
	gen := workload.NewGenerator(7, 100)
	ends := h.produce(t, gen, 1500)
	in := h.start(0, "")
	h.waitLedger(t, ends, 60*time.Second)
	if err := h.term(in, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	wrong := kadm.Offsets{}
	for _, topic := range workload.Topics {
		for p := int32(0); p < 3; p++ {
			at := int64(0)
			if p%2 == 0 {
				at = ends[topic][p] + 100_000
			}
			wrong.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), "chaos", wrong)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("committing wrong group offsets: %v", err)
	}
	ends = h.produce(t, gen, 1000)
	h.start(0, "")
	h.waitLedger(t, ends, 60*time.Second)
	if err := h.term(h.slot(0), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	h.verify(t)
}

// TestRecordsDeletedBeforeApplyHaltLoudly: while the pipeline is stopped,
// DeleteRecords removes records of one partition past its next_offset.
// The pipeline must halt that partition naming the lost range, never jump
// over it, and go on with the others (FAULTS.md #7).
func TestRecordsDeletedBeforeApplyHaltLoudly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite")
	gen := workload.NewGenerator(9, 100)
	ends := h.produce(t, gen, 900)
	in := h.start(0, "")
	h.waitLedger(t, ends, 60*time.Second)
	if err := h.term(in, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := ends[workload.TopicOrders][1]
	ends = h.produce(t, gen, 900)
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cut := stopped + (ends[workload.TopicOrders][1]-stopped)/2
	if cut <= stopped {
		t.Fatalf("too few new records on %s[1]: %d..%d", workload.TopicOrders, stopped, ends[workload.TopicOrders][1])
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: workload.TopicOrders, Partition: 1, At: cut})
	resp, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("deleting records: %v", err)
	}
	in = h.start(0, "")
	// Every other partition catches up.
	others := map[string]map[int32]int64{}
	for topic, ps := range ends {
		others[topic] = map[int32]int64{}
		for p, e := range ps {
			if topic != workload.TopicOrders || p != 1 {
				others[topic][p] = e
			}
		}
	}
	h.waitLedger(t, others, 60*time.Second)
	want := fmt.Sprintf("needs offset %d but the log starts at %d", stopped, cut)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tail(in.log, 1<<20), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no loud halt naming the lost range (%q) in the log:\n%s", want, tail(in.log, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var next int64
	if err := h.db.QueryRow(`SELECT next_offset FROM exactly_offsets WHERE pipeline = ? AND topic = ? AND "partition" = 1`,
		pipeline, workload.TopicOrders).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != stopped {
		t.Errorf("skip: %s[1] moved from %d to %d over records deleted before they were applied", workload.TopicOrders, stopped, next)
	}
	if err := h.term(in, 30*time.Second); err != nil {
		t.Error(err)
	}
}

// TestOpenTransactionHoldsProgress: a transaction left open holds the
// partition's progress at its first offset (read_committed); once it
// aborts, progress resumes and none of its records is applied (FAULTS.md
// #8).
func TestOpenTransactionHoldsProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite")
	gen := workload.NewGenerator(11, 50)
	h.produce(t, gen, 300)
	ctx := context.Background()
	tx, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.TransactionalID("open-tx"),
		kgo.DefaultProduceTopic(workload.TopicEvents), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var open []*kgo.Record
	for i := 0; i < 30; i++ {
		r := gen.Next()
		res := tx.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		open = append(open, r)
	}
	firstOpen := map[string]map[int32]int64{}
	for _, r := range open {
		if firstOpen[r.Topic] == nil {
			firstOpen[r.Topic] = map[int32]int64{}
		}
		if o, ok := firstOpen[r.Topic][r.Partition]; !ok || r.Offset < o {
			firstOpen[r.Topic][r.Partition] = r.Offset
		}
	}
	nOpen := 0
	for _, ps := range firstOpen {
		nOpen += len(ps)
	}
	// Plain records after the open transaction: not readable yet.
	if err := workload.Produce(ctx, h.brokers, gen, 300, 0); err != nil {
		t.Fatal(err)
	}
	h.start(0, "")
	// Everything before the open transaction is applied, nothing after.
	deadline := time.Now().Add(60 * time.Second)
	for waiting := true; waiting; {
		waiting = false
		rows, err := h.db.Query(`SELECT topic, "partition", next_offset FROM exactly_offsets WHERE pipeline = ?`, pipeline)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var topic string
			var p int32
			var next int64
			if err := rows.Scan(&topic, &p, &next); err != nil {
				t.Fatal(err)
			}
			first, ok := firstOpen[topic][p]
			if !ok {
				continue
			}
			seen++
			if next > first {
				t.Fatalf("aborted read risk: %s[%d] next_offset %d passed the open transaction starting at %d", topic, p, next, first)
			}
			waiting = waiting || next < first
		}
		rows.Close()
		waiting = waiting || seen < nOpen
		if waiting && time.Now().After(deadline) {
			t.Fatalf("records before the open transaction not applied within 60s:\n%s", tail(h.slot(0).log, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // and it stays there
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	recs, err := workload.ReadAll(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	h.waitLedger(t, workload.DataEnds(recs), 60*time.Second)
	if err := h.term(h.slot(0), 30*time.Second); err != nil {
		t.Error(err)
	}
	h.verify(t)
}

// TestAmbiguousCommitWhileDatabaseStaysDown: the connection is cut right
// after a COMMIT reached PostgreSQL (the reply is lost) and the database
// then stays unreachable for seconds. The member must neither retry the
// batch blindly nor give it up as failed while the outcome is unknown: it
// reads the outcome back from the ledger once the database returns, and
// nothing is applied twice or lost (FAULTS.md #2).
func TestAmbiguousCommitWhileDatabaseStaysDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "postgres")
	gen := workload.NewGenerator(13, 100)
	first := h.produce(t, gen, 300)
	in := h.start(0, "")
	// Armed once batches commit: the first COMMIT of a new pipeline is its
	// first start's (exactly_pipelines), not a batch's.
	h.waitLedger(t, first, 60*time.Second)
	h.proxy.downAfterCut.Store(int64(5 * time.Second))
	h.proxy.cutAfter.Store(1)
	ends := h.produce(t, gen, 700)
	deadline := time.Now().Add(60 * time.Second)
	for h.proxy.firedAfter.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no COMMIT went through the proxy:\n%s", tail(in.log, 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.waitLedger(t, ends, 90*time.Second)
	if err := h.term(in, 30*time.Second); err != nil {
		t.Error(err)
	}
	if !strings.Contains(tail(in.log, 1<<20), "the ledger shows it committed") {
		t.Errorf("the interrupted COMMIT was not resolved from the ledger:\n%s", tail(in.log, 3000))
	}
	h.verify(t)
}

// TestDatabaseDownWhilePartitionsAreAssigned: the database is unreachable
// when a member is given new partitions (AdjustFetchOffsetsFn cannot read
// next_offset). The member must not start them from anywhere else; once
// the database returns it reads the ledger and catches up, nothing lost or
// doubled.
func TestDatabaseDownWhilePartitionsAreAssigned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "postgres")
	gen := workload.NewGenerator(17, 100)
	ends := h.produce(t, gen, 600)
	a := h.start(0, "")
	b := h.start(1, "")
	h.waitLedger(t, ends, 60*time.Second)
	h.proxy.setDown(true)
	h.kill(b) // its partitions go to a, whose database is away
	ends = h.produce(t, gen, 600)
	time.Sleep(8 * time.Second)
	h.proxy.setDown(false)
	h.waitLedger(t, ends, 90*time.Second)
	if a.exited() {
		t.Fatalf("the member died while its database was away:\n%s", tail(a.log, 3000))
	}
	if err := h.term(a, 30*time.Second); err != nil {
		t.Error(err)
	}
	h.verify(t)
}

// TestIdleMemberDoesNotBlockRebalance: a member with nothing to do must
// let a rebalance run. Regression: the poll loop called AllowRebalance
// only after a cycle, so an idle member held every rebalance until the
// coordinator evicted it at its rebalance timeout; the new member then got
// every partition while the evicted one kept fetching them.
func TestIdleMemberDoesNotBlockRebalance(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite")
	gen := workload.NewGenerator(19, 100)
	ends := h.produce(t, gen, 300)
	a := h.start(0, "")
	h.waitLedger(t, ends, 60*time.Second)
	time.Sleep(time.Second) // idle now
	b := h.start(1, "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		gs, err := adm.DescribeGroups(context.Background(), "chaos")
		if err == nil {
			g := gs["chaos"]
			owners := 0
			last = g.State
			for _, m := range g.Members {
				ca, _ := m.Assigned.AsConsumer()
				n := 0
				for _, tp := range ca.Topics {
					n += len(tp.Partitions)
				}
				last += fmt.Sprintf(" %s:%d", m.ClientHost, n)
				if n > 0 {
					owners++
				}
			}
			if g.State == "Stable" && owners == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not settle with both members owning partitions within 20s (last: %s)", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ends = h.produce(t, gen, 300)
	h.waitLedger(t, ends, 60*time.Second)
	for _, in := range []*instance{a, b} {
		if err := h.term(in, 30*time.Second); err != nil {
			t.Error(err)
		}
	}
	h.verify(t)
}

// TestPausedZombieDoesNotHoldOffsetLocks: a member pauses (SIGSTOP) with
// its batch transactions written and not committed, holding row locks on
// exactly_offsets, and stays paused. Regression: the member that took its
// partitions blocked on those locks for as long as the pause lasted (its
// commit timed out after 2 minutes and blocked again), so the pipeline
// stopped. The database now ends a transaction idle longer than the
// rebalance timeout, the locks go, and the new owner catches up; the
// zombie's batch never commits (FAULTS.md #15).
func TestPausedZombieDoesNotHoldOffsetLocks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "postgres")
	gen := workload.NewGenerator(43, 100)
	h.produce(t, gen, 500)
	z := h.start(1, "before_commit:1:stop")
	deadline := time.Now().Add(30 * time.Second)
	for !stoppedState(z.pid()) {
		if z.exited() || time.Now().After(deadline) {
			t.Fatalf("the zombie never reached before_commit:\n%s", tail(z.log, 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	z.paused = true
	// The paused member holds row locks on exactly_offsets inside an
	// open transaction (its writes are done, COMMIT not sent).
	var locked int
	var states string
	for deadline := time.Now().Add(10 * time.Second); locked == 0; time.Sleep(100 * time.Millisecond) {
		if err := h.db.QueryRow(`SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE a.application_name = $1 AND a.state LIKE 'idle in transaction%' AND l.mode = 'RowExclusiveLock'`, h.appName).Scan(&locked); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			_ = h.db.QueryRow(`SELECT string_agg(coalesce(state, '?') || ': ' || left(query, 60), '; ') FROM pg_stat_activity WHERE application_name = $1`, h.appName).Scan(&states)
			t.Fatalf("the paused member holds no locks in an open transaction (sessions: %s): the scenario did not happen", states)
		}
	}
	a := h.start(0, "")
	ends := h.produce(t, gen, 500)
	h.waitLedger(t, ends, 45*time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.done
	_ = z.cmd.Process.Signal(syscall.SIGCONT)
	z.paused = false
	if err := h.term(z, 30*time.Second); err != nil {
		t.Log(err) // its connection was ended under it; how it exits is not the point
	}
	h.verify(t)
}
