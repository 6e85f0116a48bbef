package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/internal/workload"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// liveEnv is the set-up of the availability tests (issue 14): the real
// binary, a kfake broker in a process of its own, PostgreSQL, and the
// configuration a new user writes: brokers, group, sink, tables, every
// group timeout at its default.
type liveEnv struct {
	t        *testing.T
	broker   *testenv.Broker
	dsn      string
	d        exactly.Dialect
	db       *sql.DB
	dir      string
	pipeline string
	lockDir  string
	gen      *workload.Generator
	logf     *os.File
}

func newLiveEnv(t *testing.T) *liveEnv {
	t.Helper()
	e := &liveEnv{t: t, dir: t.TempDir(), lockDir: t.TempDir(), pipeline: "live",
		gen: workload.NewGenerator(time.Now().UnixNano(), 100)}
	e.dsn = testenv.PostgresSchema(t)
	var err error
	if e.d, err = dialectFor("postgres"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e.db, err = e.d.Open(ctx, exactly.SinkConfig{Driver: "postgres", DSN: e.dsn}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if err := demo.Reset(ctx, e.db, e.d, "postgres", e.pipeline); err != nil {
		t.Fatal(err)
	}
	e.broker = testenv.StartBroker(t, 3, workload.Topics...)
	if e.logf, err = os.OpenFile(filepath.Join(e.dir, "pipeline.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.logf.Close() })
	return e
}

// config writes a configuration with the given extra source settings
// (YAML flow-map entries) and DSN.
func (e *liveEnv) config(name, source, dsn string) string {
	e.t.Helper()
	if source != "" {
		source = ", " + source
	}
	path := filepath.Join(e.dir, name+".yaml")
	cfg := fmt.Sprintf("pipeline: %s\nsource: {brokers: [%s], group: live%s}\nsink: {driver: postgres, dsn: '%s'}\n%s",
		e.pipeline, e.broker.Addr, source, dsn, workload.Rules)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// proc is one `exactly run` process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	err  error
}

func (e *liveEnv) start(name, cfg string) *proc {
	e.t.Helper()
	return e.startWith(name, cfg)
}

// kill SIGKILLs the process and waits for it.
func (e *liveEnv) kill(p *proc) {
	fmt.Fprintf(e.logf, "=== %s: SIGKILL %s\n", time.Now().Format("15:04:05.000"), p.name)
	p.cmd.Process.Kill()
	<-p.done
}

// term SIGTERMs the process and returns how long it took to exit, failing
// the test when it does not exit 0 within limit.
func (e *liveEnv) term(p *proc, limit time.Duration) time.Duration {
	e.t.Helper()
	e.running(p, 60*time.Second)
	fmt.Fprintf(e.logf, "=== %s: SIGTERM %s\n", time.Now().Format("15:04:05.000"), p.name)
	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		took := time.Since(began)
		if err != nil {
			e.t.Errorf("%s: SIGTERM: exit %v after %v, want 0\n%s", p.name, err, took, e.log())
		}
		if took > limit {
			e.t.Errorf("%s: SIGTERM: exit after %v, want at most %v\n%s", p.name, took.Round(time.Millisecond), limit, e.log())
		}
		return took
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		e.t.Fatalf("%s: still running 60s after SIGTERM\n%s", p.name, e.log())
	}
	return 0
}

// running waits until p said "running" (its signal handler is installed
// before that). A SIGTERM sent earlier finds the Go runtime's default
// action and ends the process by the signal, a test bug, not the stop
// under test: under load (load average 30+ on 2 cores) the fixed second
// broker_down slept after a restart was not always enough, and the
// process "exited" within milliseconds with "signal: terminated".
func (e *liveEnv) running(p *proc, limit time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(filepath.Join(e.dir, "pipeline.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "running") && strings.Contains(line, writer(p)) {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			e.t.Fatalf("%s exited (%v) before it said running\n%s", p.name, err, e.log())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not say running within %v\n%s", p.name, limit, e.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produce writes the workload at about rate records/s until stop is called.
func (e *liveEnv) produce(rate int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := workload.Produce(ctx, []string{e.broker.Addr}, e.gen, rate/5, rate); err != nil && ctx.Err() == nil {
				e.t.Logf("producing: %v", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// commits counts the pipeline's committed ledger rows.
func (e *liveEnv) commits() int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM exactly_batches WHERE pipeline = $1 AND status = 'committed'`, e.pipeline).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitCommit waits for a committed ledger row beyond the first n and
// returns how long it took from since; limit bounds the wait.
func (e *liveEnv) waitCommit(n int, since time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(since) < limit {
		if e.commits() > n {
			return time.Since(since), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(since), false
}

// ledger checks the ledger against Kafka's end offsets now.
func (e *liveEnv) ledger() *workload.Ledger {
	e.t.Helper()
	ends, err := workload.EndOffsets(context.Background(), []string{e.broker.Addr}, workload.Topics...)
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := workload.CheckLedger(context.Background(), e.db, e.d, e.pipeline, ends)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// caughtUp waits until the ledger reached every end offset and returns how
// long it took from since.
func (e *liveEnv) caughtUp(since time.Time, limit time.Duration) time.Duration {
	e.t.Helper()
	for {
		l := e.ledger()
		if l.AtEnd {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			e.t.Fatalf("not caught up %v after %v: %v\n%s", limit, since.Format("15:04:05.000"), l.Lagging, e.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check proves every record took effect exactly once and the ledger chains.
func (e *liveEnv) check() {
	e.t.Helper()
	ctx := context.Background()
	recs, err := workload.ReadAll(ctx, []string{e.broker.Addr}, workload.Topics...)
	if err != nil {
		e.t.Fatal(err)
	}
	model, err := workload.Expect(recs)
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := workload.Check(ctx, e.db, model)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range tables {
		if !f.OK() {
			e.t.Errorf("%s: expected %d found %d lost %d duplicated %d: %v", f.Table, f.Expected, f.Found, f.Lost, f.Duplicate, f.Samples)
		}
	}
	l := e.ledger()
	if !l.ChainsOK {
		e.t.Errorf("ledger chain broken: %v", l.Breaks)
	}
	if l.Records != int64(model.Records) {
		e.t.Errorf("ledger counts %d records, Kafka holds %d", l.Records, model.Records)
	}
}

func (e *liveEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "pipeline.log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// newRand returns a seeded random source, the seed logged
// (EXACTLY_LIVENESS_SEED replays one).
func newRand(t *testing.T) *rand.Rand {
	seed := time.Now().UnixNano() % 1_000_000_007
	if s := os.Getenv("EXACTLY_LIVENESS_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d", seed)
	return rand.New(rand.NewSource(seed))
}

// loadavg is the 1-minute load average, for the figures' context.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// TestRestartAfterSIGKILLResumesAtOnce kills the process while records
// arrive and starts it again at once, as systemd or Kubernetes does: the
// restarted process must commit within seconds, not when the dead
// member's session ends (45s by default: issue 14 measured 45s). Static
// membership makes the restarted process the dead one's replacement.
func TestRestartAfterSIGKILLResumesAtOnce(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			e := newLiveEnv(t)
			source := "" // classic: the default configuration
			if protocol == "consumer" {
				source = "group_protocol: consumer"
			}
			cfg := e.config("a", source, e.dsn)
			stop := e.produce(200)
			defer stop()
			p := e.start("a", cfg)
			if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
				t.Fatalf("no commit within 60s\n%s", e.log())
			}
			time.Sleep(3 * time.Second) // a stable group, commits flowing
			for round := 0; round < 2; round++ {
				e.kill(p)
				time.Sleep(200 * time.Millisecond) // a transaction cut by the kill is over
				n := e.commits()
				restarted := time.Now()
				p = e.start("a", cfg)
				took, ok := e.waitCommit(n, restarted, 40*time.Second)
				t.Logf("%s: SIGKILL + restart %d: first commit %v after the restart (load %s)", protocol, round+1, took.Round(time.Millisecond), loadavg())
				if !ok || took > 10*time.Second {
					t.Fatalf("first commit %v after the restart, want within 5s (10s allowed under load)\n%s", took, e.log())
				}
				time.Sleep(2 * time.Second)
			}
			stop()
			e.caughtUp(time.Now(), 60*time.Second)
			e.term(p, 10*time.Second)
			e.check()
		})
	}
}

// TestTwelveSIGKILLsCatchUp kills the process 12 times at random gaps of
// 0.2–2.5s while records arrive, restarting it at once each time (issue
// 14: not caught up 120s after the last restart). After the last restart
// everything must be applied within 30s, nothing lost or doubled, the
// ledger chained.
func TestTwelveSIGKILLsCatchUp(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) { twelveKills(t, protocol) })
	}
}

func twelveKills(t *testing.T, protocol string) {
	e := newLiveEnv(t)
	source := ""
	if protocol == "consumer" {
		source = "group_protocol: consumer"
	}
	cfg := e.config("a", source, e.dsn)
	stop := e.produce(200)
	defer stop()
	p := e.start("a", cfg)
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s\n%s", e.log())
	}
	rng := newRand(t)
	for i := 0; i < 12; i++ {
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int63n(int64(2300*time.Millisecond))))
		e.kill(p)
		p = e.start("a", cfg)
	}
	last := time.Now()
	stop()
	took := e.caughtUp(last, 90*time.Second)
	t.Logf("%s: 12 SIGKILLs: caught up %v after the last restart (load %s)", protocol, took.Round(time.Millisecond), loadavg())
	if took > 30*time.Second {
		t.Errorf("caught up %v after the last restart, want within 30s\n%s", took, e.log())
	}
	e.term(p, 10*time.Second)
	e.check()
}

// pgProxy forwards TCP to PostgreSQL until cut: then the connections it
// carries go silent and new ones are accepted and never answered, the
// database behind a dead network (the worst case: nothing fails fast).
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newPGProxy(t *testing.T, dsn string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: u.Host}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go p.serve()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // accepted, never answered
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *pgProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // swallowed
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// Cut makes the database unreachable without closing anything.
func (p *pgProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

func (p *pgProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestSIGTERMEndsTheRunWithinTenSeconds stops the process in every state
// a supervisor meets: group stable, group rebalancing (a member that
// cannot answer holds the JoinGroup; issue 14: 41–58s), broker down, and
// database unreachable (a flight hanging in the network). Each must exit
// 0 within 10s, and nothing is lost: the pipeline started again applies
// everything exactly once.
func TestSIGTERMEndsTheRunWithinTenSeconds(t *testing.T) {
	for _, state := range []string{"stable", "rebalancing", "broker_down", "database_down", "broker_down_at_start"} {
		t.Run(state, func(t *testing.T) {
			e := newLiveEnv(t)
			proxy, proxied := newPGProxy(t, e.dsn)
			cfg := e.config("a", "", proxied)
			stop := e.produce(200)
			defer stop()
			if state == "broker_down_at_start" {
				e.broker.Kill()
			}
			p := e.start("a", cfg)
			if state != "broker_down_at_start" {
				if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
					t.Fatalf("no commit within 60s\n%s", e.log())
				}
			}
			var other *proc
			switch state {
			case "rebalancing":
				// A second member joins while the first is frozen: the
				// coordinator holds the newcomer's JoinGroup until the
				// frozen one rejoins or its session ends.
				p.cmd.Process.Signal(syscall.SIGSTOP)
				other = e.start("b", cfg)
				time.Sleep(5 * time.Second)
				p, other = other, p
			case "broker_down":
				stop()
				e.broker.Stop()
				time.Sleep(3 * time.Second)
			case "database_down":
				proxy.Cut()
				time.Sleep(3 * time.Second)
			case "broker_down_at_start":
				time.Sleep(3 * time.Second)
			}
			took := e.term(p, 10*time.Second)
			t.Logf("%s: SIGTERM → exit 0 in %v (load %s)", state, took.Round(time.Millisecond), loadavg())
			if other != nil {
				other.cmd.Process.Signal(syscall.SIGCONT)
				e.term(other, 10*time.Second)
			}
			if state == "broker_down_at_start" {
				return
			}
			// Nothing lost: started again with everything back, the
			// pipeline applies every record exactly once.
			stop()
			if state == "broker_down" {
				e.broker.Start()
			}
			p = e.start("a2", e.config("a2", "", e.dsn))
			e.caughtUp(time.Now(), 90*time.Second)
			e.term(p, 10*time.Second)
			e.check()
		})
	}
}

// writer is the ledger's writer column of a process.
func writer(p *proc) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, p.cmd.Process.Pid)
}

// ownedBy counts the partitions a process committed a batch of since t.
func (e *liveEnv) ownedBy(p *proc, since time.Time) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(`SELECT count(DISTINCT (topic, "partition")) FROM exactly_batches
		WHERE pipeline = $1 AND status = 'committed' AND writer = $2 AND committed_at > $3`,
		e.pipeline, writer(p), since.UTC()).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestAnotherInstanceTakesOver runs two instances (two identities) while
// records arrive and stops one for good: killed, it holds its partitions
// until its session ends (session_timeout, 45s by default) and the other
// must own them within session_timeout + 5s; stopped cleanly with
// on_stop: leave (the default) they move at once; with on_stop: stay
// they wait for the session, kept for a restart.
func TestAnotherInstanceTakesOver(t *testing.T) {
	for _, how := range []string{"sigterm_leave", "sigkill", "sigterm_stay"} {
		t.Run(how, func(t *testing.T) {
			e := newLiveEnv(t)
			source := ""
			if how == "sigterm_stay" {
				source = "on_stop: stay"
			}
			cfg := e.config("a", source, e.dsn)
			stop := e.produce(300)
			defer stop()
			a := e.start("a", cfg)
			if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
				t.Fatalf("no commit within 60s\n%s", e.log())
			}
			b := e.start("b", cfg)
			// Both own partitions and commit them.
			deadline := time.Now().Add(90 * time.Second)
			for {
				since := time.Now().Add(-3 * time.Second)
				na, nb := e.ownedBy(a, since), e.ownedBy(b, since)
				if na > 0 && nb > 0 && na+nb >= 9 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the two instances never shared the 9 partitions (a %d, b %d)\n%s", na, nb, e.log())
				}
				time.Sleep(500 * time.Millisecond)
			}
			gone := time.Now()
			if how == "sigkill" {
				e.kill(a)
			} else {
				e.term(a, 10*time.Second)
			}
			// Owning is being assigned the partitions, as the coordinator
			// says: what session_timeout + 5s bounds. B's first commit of
			// each comes a batch interval and a flight later, seconds
			// under load (48.5s of the 50s went there), and is checked
			// apart below.
			limit := 45*time.Second + 5*time.Second
			var took time.Duration
			for {
				took = time.Since(gone)
				if e.soleOwner(9) {
					break
				}
				if took > limit+15*time.Second {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: the other instance is assigned all 9 partitions %v after the stop (session_timeout 45s; load %s)", how, took.Round(time.Millisecond), loadavg())
			for e.ownedBy(b, gone) < 9 {
				if time.Since(gone) > took+60*time.Second {
					t.Fatalf("assigned all 9 partitions but committed only %d of them within 60s\n%s", e.ownedBy(b, gone), e.log())
				}
				time.Sleep(200 * time.Millisecond)
			}
			switch how {
			case "sigterm_leave":
				if took > 10*time.Second {
					t.Errorf("on_stop: leave: took %v, want the partitions moved at once (10s allowed under load)\n%s", took, e.log())
				}
			case "sigkill":
				if took > limit {
					t.Errorf("killed: took %v, want within session_timeout + 5s = %v\n%s", took, limit, e.log())
				}
			case "sigterm_stay":
				if took < 30*time.Second || took > limit {
					t.Errorf("on_stop: stay: took %v, want the partitions kept for the session (45s) and moved by %v\n%s", took, limit, e.log())
				}
			}
			stop()
			e.caughtUp(time.Now(), 60*time.Second)
			e.term(b, 10*time.Second)
			e.check()
		})
	}
}

// soleOwner reports whether the consumer group is stable with one member
// assigned all n partitions, as the coordinator describes it.
func (e *liveEnv) soleOwner(n int) bool {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker.Addr))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dg, err := kadm.NewClient(cl).DescribeGroups(ctx, "live")
	if err != nil {
		return false
	}
	d, ok := dg["live"]
	if !ok || d.Err != nil || d.State != "Stable" || len(d.Members) != 1 {
		return false
	}
	a, ok := d.Members[0].Assigned.AsConsumer()
	if !ok {
		return false
	}
	got := 0
	for _, t := range a.Topics {
		got += len(t.Partitions)
	}
	return got == n
}

// TestSameInstanceIDIsFenced starts a second process with the first one's
// configured instance id: the broker fences the first out of the group,
// and it must exit 1 saying so (two processes with one identity would
// otherwise take the partitions from each other forever), while the
// second goes on committing.
func TestSameInstanceIDIsFenced(t *testing.T) {
	e := newLiveEnv(t)
	cfg := e.config("a", "instance_id: pod-0", e.dsn)
	stop := e.produce(200)
	defer stop()
	a := e.start("a", cfg)
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s\n%s", e.log())
	}
	b := e.start("b", cfg)
	select {
	case err := <-a.done:
		if err == nil {
			t.Fatalf("the fenced process exited 0, want 1\n%s", e.log())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the first process is still running 60s after another joined with its instance id\n%s", e.log())
	}
	if !strings.Contains(e.log(), `another process joined with this member's instance id "pod-0"`) {
		t.Errorf("the fenced process does not say why it stopped\n%s", e.log())
	}
	n := e.commits()
	if _, ok := e.waitCommit(n, time.Now(), 30*time.Second); !ok {
		t.Fatalf("the second process does not commit\n%s", e.log())
	}
	stop()
	e.caughtUp(time.Now(), 60*time.Second)
	e.term(b, 10*time.Second)
	e.check()
}

// TestNothingMovesIsSaid: with the broker down at start-up the process
// must say so within seconds (issue 14: "running", then silence for
// 150s), on the log and on /readyz; and a member the group gives no
// partition while records wait must say it waits for the group.
func TestNothingMovesIsSaid(t *testing.T) {
	e := newLiveEnv(t)
	e.broker.Stop()
	addrA, addrB := freeAddr(t), freeAddr(t)
	cfg := e.config("a", "", e.dsn)
	a := e.startWith("a", cfg, "--metrics-addr", addrA)
	began := time.Now()
	e.waitLog(`nothing moves: no broker answers`, 15*time.Second)
	t.Logf("broker down at start-up: said after %v (load %s)", time.Since(began).Round(time.Millisecond), loadavg())
	readyz(t, addrA, "FAIL moving: nothing moves", "no broker answers")
	e.broker.Start()
	stop := e.produce(200)
	defer stop()
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s after the broker came back\n%s", e.log())
	}
	readyz(t, addrA, "ok   moving: nothing in the way")
	// a freezes holding every partition; b joins and gets none while the
	// group waits for a.
	a.cmd.Process.Signal(syscall.SIGSTOP)
	b := e.startWith("b", cfg, "--metrics-addr", addrB)
	e.waitLog(`records wait in demo.customers,demo.events,demo.orders but this member has no partition: group`, 30*time.Second)
	readyz(t, addrB, "FAIL moving: nothing moves", "this member has no partition")
	metric(t, addrB, `exactly_stalled{cause="waiting_for_group",pipeline="live"} 1`)
	var out, errOut strings.Builder
	if code := run([]string{"status", "-c", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exactly status: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "group live: PreparingRebalance, 2 members") ||
		!strings.Contains(out.String(), "records wait while the group is PreparingRebalance") {
		t.Errorf("exactly status does not say the group holds everything up:\n%s", out.String())
	}
	a.cmd.Process.Signal(syscall.SIGCONT)
	stop()
	e.term(a, 10*time.Second)
	e.caughtUp(time.Now(), 90*time.Second)
	e.term(b, 10*time.Second)
	e.check()
}

func (e *liveEnv) startWith(name, cfg string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(testenv.Binary(e.t), append([]string{"run", "-c", cfg, "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), "EXACTLY_LOCK_DIR="+e.lockDir)
	fmt.Fprintf(e.logf, "=== %s: start %s\n", time.Now().Format("15:04:05.000"), name)
	cmd.Stdout, cmd.Stderr = e.logf, e.logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	e.t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// waitLog waits for s in the processes' log.
func (e *liveEnv) waitLog(s string, limit time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(filepath.Join(e.dir, "pipeline.log"))
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%q not logged within %v\n%s", s, limit, e.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// readyz waits until /readyz holds every one of want.
func readyz(t *testing.T, addr string, want ...string) {
	t.Helper()
	waitHTTP(t, "http://"+addr+"/readyz", want...)
}

func metric(t *testing.T, addr string, want ...string) {
	t.Helper()
	waitHTTP(t, "http://"+addr+"/metrics", want...)
}

func waitHTTP(t *testing.T, u string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(body, w)
			}
			if ok {
				return
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s never held %q:\n%s", u, want, body)
}

// TestFailingTableBacksOff: a table is missing (create off). Its batches
// fail the same way again and again: they must back off (up to 30s) and
// write one failed ledger row per partition and error, not one a second
// (issue 14: 10 in 15s), /readyz must name the partitions, and the other
// tables must go on. Once the table exists everything is applied.
func TestFailingTableBacksOff(t *testing.T) {
	e := newLiveEnv(t)
	if _, err := e.db.Exec("DROP TABLE " + workload.TableEvents); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	stop := e.produce(200)
	defer stop()
	p := e.startWith("a", e.config("a", "", e.dsn), "--metrics-addr", addr)
	began := time.Now()
	readyz(t, addr, "FAIL failing: batches keep failing: demo.events[")
	time.Sleep(25*time.Second - time.Since(began))
	var failed, healthy int
	if err := e.db.QueryRow(`SELECT count(*) FROM exactly_batches WHERE pipeline = $1 AND status = 'failed' AND topic = $2`,
		e.pipeline, workload.TopicEvents).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if err := e.db.QueryRow(`SELECT count(*) FROM exactly_batches WHERE pipeline = $1 AND status = 'committed' AND topic <> $2 AND committed_at > $3`,
		e.pipeline, workload.TopicEvents, time.Now().Add(-5*time.Second).UTC()).Scan(&healthy); err != nil {
		t.Fatal(err)
	}
	t.Logf("a missing table for %v: %d failed ledger rows for its 3 partitions; %d batches of the other tables committed in the last 5s (load %s)",
		time.Since(began).Round(time.Second), failed, healthy, loadavg())
	if failed > 6 {
		t.Errorf("%d failed ledger rows in 25s for 3 partitions failing the same way, want one per partition and error\n%s", failed, e.log())
	}
	if healthy == 0 {
		t.Errorf("the other tables stopped committing while one table fails\n%s", e.log())
	}
	for _, s := range workload.DDL("postgres") {
		if strings.Contains(s, workload.TableEvents) {
			if _, err := e.db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop()
	e.caughtUp(time.Now(), 60*time.Second)
	readyz(t, addr, "ok   failing: no partition failed")
	e.term(p, 10*time.Second)
	e.check()
}

// TestRestartAfterSIGTERM measures a clean restart (systemctl restart, a
// pod replaced in place) under both on_stop settings: with leave the
// member left and rejoins, with stay it takes back the place it kept.
func TestRestartAfterSIGTERM(t *testing.T) {
	for _, onStop := range []string{"leave", "stay"} {
		t.Run(onStop, func(t *testing.T) {
			e := newLiveEnv(t)
			cfg := e.config("a", "on_stop: "+onStop, e.dsn)
			stop := e.produce(200)
			defer stop()
			p := e.start("a", cfg)
			if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
				t.Fatalf("no commit within 60s\n%s", e.log())
			}
			time.Sleep(3 * time.Second)
			took := e.term(p, 10*time.Second)
			n := e.commits()
			restarted := time.Now()
			p = e.start("a", cfg)
			first, ok := e.waitCommit(n, restarted, 60*time.Second)
			t.Logf("on_stop: %s: SIGTERM exit in %v, first commit %v after the restart (load %s)", onStop, took.Round(time.Millisecond), first.Round(time.Millisecond), loadavg())
			if !ok || first > 10*time.Second {
				t.Errorf("first commit %v after the restart, want within 5s (10s allowed under load)\n%s", first, e.log())
			}
			stop()
			e.caughtUp(time.Now(), 60*time.Second)
			e.term(p, 10*time.Second)
			e.check()
		})
	}
}

// TestSecondSIGTERMExitsAtOnce: a second SIGTERM during a stop ends the
// process at once by the signal, as an operator's second Ctrl-C asks (a
// stop, not a failure: it exited 1, which systemd's Restart=on-failure
// answers by starting the pipeline again), and nothing is lost or doubled:
// the pipeline started again applies every record exactly once.
func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	e := newLiveEnv(t)
	proxy, proxied := newPGProxy(t, e.dsn)
	stop := e.produce(300)
	defer stop()
	p := e.start("a", e.config("a", "", proxied))
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s\n%s", e.log())
	}
	e.running(p, 60*time.Second)
	// A flight hangs in the network, so the first stop waits for it.
	proxy.Cut()
	time.Sleep(time.Second)
	fmt.Fprintf(e.logf, "=== %s: SIGTERM twice %s\n", time.Now().Format("15:04:05.000"), p.name)
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after the second SIGTERM\n%s", e.log())
	}
	took := time.Since(began)
	t.Logf("second SIGTERM → gone in %v: %v (load %s)", took.Round(time.Millisecond), p.cmd.ProcessState, loadavg())
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("second SIGTERM: %v, want ended by SIGTERM (143 in a shell; a stop, not a failure)\n%s", p.cmd.ProcessState, e.log())
	}
	if took > 3*time.Second {
		t.Errorf("second SIGTERM: gone after %v, want at once", took)
	}
	stop()
	p = e.start("a2", e.config("a2", "", e.dsn))
	e.caughtUp(time.Now(), 90*time.Second)
	e.term(p, 10*time.Second)
	e.check()
}
