package chaos

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/exactly/exactly/internal/workload"
)

// settings of a run, from the environment: EXACTLY_CHAOS_SEED replays a
// run, EXACTLY_CHAOS_SOAK=1 (or EXACTLY_CHAOS_DURATION=10m) runs long.
type settings struct {
	seed     int64
	duration time.Duration
	rate     int // plain records per second
}

func runSettings(t *testing.T, short time.Duration) settings {
	s := settings{seed: time.Now().UnixNano(), duration: short, rate: 300}
	if v := os.Getenv("EXACTLY_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("EXACTLY_CHAOS_SEED=%q: expected an integer", v)
		}
		s.seed = n
	}
	if os.Getenv("EXACTLY_CHAOS_SOAK") != "" {
		s.duration = 10 * time.Minute
	}
	if v := os.Getenv("EXACTLY_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EXACTLY_CHAOS_DURATION=%q: expected a duration like 10m", v)
		}
		s.duration = d
	}
	return s
}

// TestChaosPostgres and TestChaosSQLite run the real binary under every
// fault kind the sink allows, then prove nothing was lost, doubled, read
// from an aborted transaction or skipped.
func TestChaosPostgres(t *testing.T) { runChaos(t, "postgres", 30*time.Second) }

func TestChaosSQLite(t *testing.T) { runChaos(t, "sqlite", 20*time.Second) }

// TestChaosSQLServer runs against EXACTLY_TEST_SQLSERVER_DSN (Babelfish in
// CI) through a TDS proxy: the same faults, KILL for terminated sessions.
func TestChaosSQLServer(t *testing.T) { runChaos(t, "sqlserver", 30*time.Second) }

func runChaos(t *testing.T, driver string, short time.Duration) {
	s := runSettings(t, short)
	t.Logf("chaos %s: seed %d (replay with EXACTLY_CHAOS_SEED=%d), %v of faults", driver, s.seed, s.seed, s.duration)
	h := newHarness(t, driver)
	h.broker.rng.Seed(s.seed)

	ctx := context.Background()
	prodCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	prods := startProducers(prodCtx, h.brokers, s.seed, s.rate)
	h.start(0, "")
	h.start(1, "")

	nem := newNemesis(h, s.seed)
	nem.zombieAt = time.Now().Add(s.duration / 3)
	chaosCtx, stopChaos := context.WithTimeout(ctx, s.duration)
	defer stopChaos()
	nem.run(chaosCtx, s.seed)
	if h.proxy != nil {
		nem.counts[faultCutAfter] = int(h.proxy.firedAfter.Load())
		nem.counts[faultCutBefore] = int(h.proxy.firedBefore.Load())
	}

	during, err := workload.CheckLedger(ctx, h.db, h.d, pipeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := time.Now()
	// Quiet: faults off, paused members resumed, producers done.
	h.broker.clear()
	if h.proxy != nil {
		h.proxy.setDown(false)
		h.proxy.cutAfter.Store(0)
		h.proxy.cutBefore.Store(0)
	}
	stopProducing()
	if err := prods.wait(); err != nil {
		t.Fatalf("producing the workload: %v", err)
	}
	if h.running(0) == nil {
		h.start(0, "")
	}
	recs, err := workload.ReadAll(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	aborted, err := workload.ReadAborted(ctx, h.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	ends := workload.DataEnds(recs)

	// Catch up, then stop every member the way an operator would.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		l, err := workload.CheckLedger(ctx, h.db, h.d, pipeline, ends)
		if err != nil {
			t.Fatal(err)
		}
		if l.AtEnd {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("unseen: not caught up 3 minutes after the faults stopped: %v\n%s", l.Lagging, tail(h.slot(0).log, 3000))
			break
		}
		if h.running(0) == nil {
			h.start(0, "")
		}
		time.Sleep(200 * time.Millisecond)
	}
	caughtUp := time.Since(quiet)
	for slot := range h.slots {
		if in := h.running(slot); in != nil {
			if err := h.term(in, 60*time.Second); err != nil {
				t.Errorf("stopping slot %d: %v", slot, err)
			}
		}
	}

	f, model, l, err := h.check(ctx, recs, aborted)
	if err != nil {
		t.Fatal(err)
	}
	if want := prods.plain.Load() + prods.txRecords.Load(); int64(model.Records) != want {
		t.Errorf("the topics hold %d committed records, the producers had %d acknowledged", model.Records, want)
	}
	t.Logf("chaos %s: seed %d, %d records (%d plain, %d transactions committed, %d aborted holding %d records), %d batches committed (%d during the faults), %d failed rows, %d members started, caught up %v after the faults\nfaults injected:\n%s",
		driver, s.seed, model.Records, prods.plain.Load(), prods.txCommits.Load(), prods.txAborts.Load(), len(aborted),
		l.Batches, during.Batches, l.Failed, h.runs, caughtUp.Round(time.Second), nem.report())
	t.Logf("broker requests failed: %d; commits cut after forwarding: %s; commits dropped: %s; ambiguous commits resolved committed (log lines): %d",
		h.broker.hitCount(), proxyCount(h, true), proxyCount(h, false), h.countLogs("the ledger shows it committed"))
	for _, e := range nem.errs {
		t.Errorf("nemesis: %s", e)
	}
	for _, u := range h.unexpected {
		t.Errorf("unexpected exit: %s", u)
	}
	for _, r := range h.scanLogs() {
		t.Errorf("instance log: %s", r)
	}
	if !f.empty() {
		t.Errorf("seed %d found:\n%s", s.seed, f)
	}
	h.auditWithVerify(t)
}

// auditWithVerify runs the product's own audit, exactly verify, on the
// ledger the chaos left: it must agree that nothing is wrong (exit 0).
func (h *harness) auditWithVerify(t *testing.T) {
	t.Helper()
	out, err := exec.Command(h.bin, "verify", "--all", "-c", h.config()).CombinedOutput()
	if err != nil {
		t.Errorf("exactly verify after the chaos: %v\n%s", err, out)
	}
}

func proxyCount(h *harness, after bool) string {
	if h.proxy == nil {
		return "n/a"
	}
	if after {
		return strconv.FormatInt(h.proxy.firedAfter.Load(), 10)
	}
	return strconv.FormatInt(h.proxy.firedBefore.Load(), 10)
}
