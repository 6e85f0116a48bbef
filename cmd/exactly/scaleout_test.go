package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/internal/workload"
)

// member is one `exactly run` process of the scale-out test.
type member struct {
	cmd     *exec.Cmd
	done    chan error
	started time.Time
}

// TestThreeInstancesShareTheGroup runs three real `exactly run` processes
// in one consumer group while a producer writes the workload, starting and
// stopping them at random (SIGTERM or SIGKILL, never the last one running),
// and proves that every partition kept moving during the churn and that,
// at the end, every record took effect exactly once: tables equal the
// model read back from Kafka, the ledger chains without gap or overlap,
// and its counts add up to what the topics hold. The seed is logged; set
// EXACTLY_SCALEOUT_SEED to replay one.
func TestThreeInstancesShareTheGroup(t *testing.T) {
	seed := time.Now().UnixNano() % 1_000_000_007
	if s := os.Getenv("EXACTLY_SCALEOUT_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	e := newCrashEnv(t, "postgres", 0)
	cfg := filepath.Join(e.dir, "group.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`pipeline: %s
source: {brokers: [%s], group: scaleout, session_timeout: 6s, rebalance_timeout: 6s}
sink: {driver: postgres, dsn: '%s', max_conns: 2}
batch: {interval: 100ms, max_records: 400}
%s`, e.pipeline, strings.Join(e.brokers, ","), e.dsn, workload.Rules)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "pipeline.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	var members [3]*member
	start := func(i int) {
		cmd := exec.Command(testenv.Binary(t), "run", "-c", cfg, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		m := &member{cmd: cmd, done: make(chan error, 1), started: time.Now()}
		go func() { m.done <- cmd.Wait() }()
		members[i] = m
	}
	stop := func(i int, sig syscall.Signal) {
		m := members[i]
		_ = m.cmd.Process.Signal(sig)
		select {
		case err := <-m.done:
			if sig == syscall.SIGTERM && err != nil {
				t.Errorf("member %d: SIGTERM gave %v, want exit 0\n%s", i, err, e.log())
			}
		case <-time.After(30 * time.Second):
			_ = m.cmd.Process.Kill()
			t.Errorf("member %d did not stop on %v within 30s", i, sig)
			<-m.done
		}
		members[i] = nil
	}
	t.Cleanup(func() {
		for i, m := range members {
			if m != nil {
				_ = m.cmd.Process.Kill()
				<-m.done
				members[i] = nil
			}
		}
	})

	ctx := context.Background()
	produced := make(chan error, 1)
	go func() {
		produced <- workload.Produce(ctx, e.brokers, workload.NewGenerator(seed, 150), 30000, 800)
	}()
	for i := range members {
		start(i)
	}
	// Let the group settle first: every member has committed a batch, so
	// the partitions are shared before the churn starts.
	settle := time.Now().Add(90 * time.Second)
	for {
		var n int
		if err := e.db.QueryRow(`SELECT count(DISTINCT writer) FROM exactly_batches WHERE pipeline = $1 AND status = 'committed'`, e.pipeline).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(members) {
			break
		}
		if time.Now().After(settle) {
			t.Fatalf("only %d of %d members committed within 90s\n%s", n, len(members), e.log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Churn while the producer runs; sample every partition's next_offset.
	moves := map[exactly.TP]int{}
	last := map[exactly.TP]int64{}
	sample := func() {
		rows, err := e.db.Query(`SELECT topic, "partition", next_offset FROM exactly_offsets WHERE pipeline = $1`, e.pipeline)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var tp exactly.TP
			var next int64
			if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
				t.Fatal(err)
			}
			if prev, ok := last[tp]; ok && next > prev {
				moves[tp]++
			}
			last[tp] = next
		}
	}
	events := 0
	churn := 24 * time.Second
	if d, err := time.ParseDuration(os.Getenv("EXACTLY_SCALEOUT_CHURN")); err == nil {
		churn = d // a longer soak
	}
	churnUntil := time.Now().Add(churn)
	for time.Now().Before(churnUntil) {
		// Events a few seconds apart: a SIGKILLed member holds its
		// partitions until its 6s session expires, and every join waits
		// for that too; churn faster than that only stalls the group.
		wait := time.Duration(3000+rng.Intn(3000)) * time.Millisecond
		for end := time.Now().Add(wait); time.Now().Before(end); {
			sample()
			time.Sleep(200 * time.Millisecond)
		}
		i := rng.Intn(len(members))
		running := 0
		for _, m := range members {
			if m != nil {
				running++
			}
		}
		switch {
		case members[i] == nil:
			start(i)
			t.Logf("%5.1fs start member %d", (churn - time.Until(churnUntil)).Seconds(), i)
		case running > 1:
			// SIGTERM only once a member had time to install its signal
			// handler; a younger one is killed.
			sig := syscall.SIGTERM
			if rng.Intn(2) == 0 || time.Since(members[i].started) < 3*time.Second {
				sig = syscall.SIGKILL
			}
			stop(i, sig)
			t.Logf("%5.1fs %v member %d", (churn - time.Until(churnUntil)).Seconds(), sig, i)
		default:
			continue
		}
		events++
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	sample()
	if e.ends, err = workload.EndOffsets(ctx, e.brokers, workload.Topics...); err != nil {
		t.Fatal(err)
	}
	for t2, ps := range e.ends {
		for p := range ps {
			if tp := (exactly.TP{Topic: t2, Partition: p}); moves[tp] < 1 {
				t.Errorf("%s advanced %d times during the churn; want every partition to keep moving\n%s", tp, moves[tp], e.log())
			}
		}
	}

	// Bring every member back; the group must finish the work.
	for i := range members {
		if members[i] == nil {
			start(i)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for !e.ledger(t).AtEnd {
		if time.Now().After(deadline) {
			t.Fatalf("the group did not catch up: %v\n%s", e.ledger(t).Lagging, e.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, m := range members {
		// A member started just now may not have installed its signal
		// handler yet; give it the time before asking it to stop.
		time.Sleep(time.Until(m.started.Add(5 * time.Second)))
		stop(i, syscall.SIGTERM)
	}
	e.check(t)
	var writers int
	if err := e.db.QueryRow(`SELECT count(DISTINCT writer) FROM exactly_batches WHERE pipeline = $1 AND status = 'committed'`, e.pipeline).Scan(&writers); err != nil {
		t.Fatal(err)
	}
	if writers < 3 {
		t.Errorf("committed batches came from %d processes; want at least the 3 first members", writers)
	}
	t.Logf("%d start/stop events, %d writer processes committed", events, writers)
	if os.Getenv("EXACTLY_SCALEOUT_LOG") != "" {
		t.Log(e.log())
	}
}
