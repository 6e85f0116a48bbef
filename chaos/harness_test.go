package chaos

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/internal/workload"
)

const pipeline = "chaos"

// harness is one chaos run: a broker, a sink, the instances of exactly.
type harness struct {
	t       *testing.T
	driver  string
	dir     string
	bin     string
	cluster *kfake.Cluster
	brokers []string
	d       exactly.Dialect
	db      *sql.DB // direct, never through the proxy: the checker's view
	sinkDSN string  // what the instances use (through the proxy for postgres)
	appName string
	proxy   *pgProxy
	broker  *brokerFaults

	// maxConns and rebalance, when set before the first start, change
	// the members' sink.max_conns and source.rebalance_timeout.
	maxConns  int
	rebalance time.Duration

	mu    sync.Mutex
	slots [2]*instance
	runs  int
	// exits that nobody asked for, with their log's tail
	unexpected []string
	// dbTrouble is when the last database fault ends: an instance may
	// fail to start during an outage and is then simply restarted.
	dbTrouble time.Time
}

// instance is one running exactly process.
type instance struct {
	slot    int
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	err     error
	expect  bool // the harness stopped it: its exit is not a finding
	paused  bool
	started time.Time
}

func (i *instance) pid() int { return i.cmd.Process.Pid }

func (i *instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

func newHarness(t *testing.T, driver string) *harness {
	t.Helper()
	h := &harness{t: t, driver: driver, dir: t.TempDir(), bin: testenv.Binary(t)}
	var err error
	if os.Getenv("EXACTLY_CHAOS_KEEP") != "" { // keep the instances' logs
		if h.dir, err = os.MkdirTemp("", "exactly-chaos-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("logs in %s", h.dir)
	}
	h.broker = newBrokerFaults()
	h.cluster, err = kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, workload.Topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cluster.Close)
	h.broker.install(h.cluster)
	h.brokers = h.cluster.ListenAddrs()

	ctx := context.Background()
	var checkDSN string
	switch driver {
	case "postgres":
		h.d = &postgres.Dialect{}
		checkDSN = testenv.PostgresSchema(t)
		h.proxy, err = newPGProxy("127.0.0.1:5432")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.proxy.close)
		// A name of our own: pg_terminate_backend must never reach the
		// sessions of tests running beside this one.
		h.appName = fmt.Sprintf("exactly-chaos-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
		h.sinkDSN = strings.Replace(checkDSN, "127.0.0.1:5432", h.proxy.addr(), 1) + "&application_name=" + h.appName
		if !strings.Contains(checkDSN, "127.0.0.1:5432") {
			t.Fatalf("the chaos proxy needs a DSN on 127.0.0.1:5432, got %s", checkDSN)
		}
	case "sqlserver":
		// Babelfish in CI; the proxy reads TDS in the clear, so no TLS.
		h.d = &sqlserver.Dialect{}
		checkDSN = testenv.SQLServerDatabase(t)
		u, err := url.Parse(checkDSN)
		if err != nil {
			t.Fatal(err)
		}
		target := u.Host
		if u.Port() == "" {
			target += ":1433"
		}
		h.proxy, err = newTDSProxy(target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.proxy.close)
		h.appName = fmt.Sprintf("exactly-chaos-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
		q := u.Query()
		q.Set("encrypt", "disable")
		q.Set("app name", h.appName)
		u.RawQuery = q.Encode()
		u.Host = h.proxy.addr()
		h.sinkDSN = u.String()
	case "sqlite":
		h.d = &sqlite.Dialect{}
		checkDSN = filepath.Join(h.dir, "sink.db")
		h.sinkDSN = checkDSN
	}
	if h.db, err = h.d.Open(ctx, exactly.SinkConfig{Driver: driver, DSN: checkDSN}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close() })
	for _, s := range append(workload.DDL(driver), h.d.LedgerDDL()...) {
		if _, err := h.db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(h.stopAll)
	return h
}

func (h *harness) config() string {
	path := filepath.Join(h.dir, "exactly.yaml")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	rebalance, conns := 3*time.Second, 4
	if h.rebalance > 0 {
		rebalance = h.rebalance
	}
	if h.maxConns > 0 {
		conns = h.maxConns
	}
	cfg := fmt.Sprintf(`pipeline: %s
source: {brokers: [%s], group: chaos, session_timeout: 2s, rebalance_timeout: %s}
sink: {driver: %s, dsn: '%s', max_conns: %d}
batch: {interval: 100ms, max_records: 400}
%s`, pipeline, strings.Join(h.brokers, ", "), rebalance, h.driver, h.sinkDSN, conns, workload.Rules)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// start runs a new exactly process in a slot, with an optional failpoint.
func (h *harness) start(slot int, failpoint string) *instance {
	h.mu.Lock()
	h.runs++
	n := h.runs
	h.mu.Unlock()
	log := filepath.Join(h.dir, fmt.Sprintf("run-%03d-slot%d.log", n, slot))
	f, err := os.Create(log)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin, "run", "-c", h.config(), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "EXACTLY_FAILPOINT="+failpoint)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		h.t.Fatal(err)
	}
	in := &instance{slot: slot, cmd: cmd, log: log, done: make(chan struct{}), started: time.Now()}
	go func() {
		in.err = cmd.Wait()
		f.Close()
		close(in.done)
		h.mu.Lock()
		expect := in.expect
		trouble := time.Since(h.dbTrouble) < 5*time.Second || time.Now().Before(h.dbTrouble)
		h.mu.Unlock()
		if !expect && !trouble {
			h.mu.Lock()
			h.unexpected = append(h.unexpected, fmt.Sprintf("slot %d pid %d exited by itself: %v\n%s", slot, in.pid(), in.err, tail(log, 1500)))
			h.mu.Unlock()
		}
	}()
	h.mu.Lock()
	h.slots[slot] = in
	h.mu.Unlock()
	return in
}

// troubled marks a database fault lasting d: an instance that cannot
// open its sink meanwhile exits, and is restarted, not reported.
func (h *harness) troubled(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := time.Now().Add(d); t.After(h.dbTrouble) {
		h.dbTrouble = t
	}
}

func (h *harness) slot(n int) *instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.slots[n]
}

// running returns the slot's instance if it is alive.
func (h *harness) running(n int) *instance {
	in := h.slot(n)
	if in == nil || in.exited() {
		return nil
	}
	return in
}

// kill sends SIGKILL and waits for the process to go.
func (h *harness) kill(in *instance) {
	h.mu.Lock()
	in.expect = true
	h.mu.Unlock()
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
}

// term stops an instance with SIGTERM; it must exit 0. A process stuck
// resolving a commit while the database is away may take long: after
// limit it is killed, which is reported, not failed.
func (h *harness) term(in *instance, limit time.Duration) error {
	h.mu.Lock()
	in.expect = true
	h.mu.Unlock()
	if in.paused {
		_ = in.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(limit):
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		<-in.done
		return fmt.Errorf("pid %d did not stop within %v of SIGTERM", in.pid(), limit)
	}
	if in.err != nil {
		h.mu.Lock()
		trouble := time.Since(h.dbTrouble) < 5*time.Second
		h.mu.Unlock()
		switch {
		case killedBy(in.err, syscall.SIGTERM) && time.Since(in.started) < 3*time.Second:
			// Still starting: the runtime had not installed the handler.
		case trouble && strings.Contains(tail(in.log, 4000), "exactly: "):
			// It could not open its sink during a database fault.
		default:
			return fmt.Errorf("pid %d exited with %v after SIGTERM, want 0:\n%s", in.pid(), in.err, tail(in.log, 2000))
		}
	}
	return nil
}

func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func (h *harness) stopAll() {
	for n := range h.slots {
		if in := h.running(n); in != nil {
			h.kill(in)
		}
	}
}

// stoppedState reports whether a process is stopped (SIGSTOP), from
// /proc/PID/stat.
func stoppedState(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'T'
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// scanLogs returns lines of every instance log that must never appear: a
// data race (the binary is built with -race under go test -race) or a
// panic.
func (h *harness) scanLogs() []string {
	var out []string
	logs, _ := filepath.Glob(filepath.Join(h.dir, "run-*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "DATA RACE") || strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
				out = append(out, filepath.Base(l)+": "+line+"\n"+tail(l, 3000))
				break
			}
		}
	}
	return out
}

// countLogs counts log lines containing s across all instance logs.
func (h *harness) countLogs(s string) int {
	n := 0
	logs, _ := filepath.Glob(filepath.Join(h.dir, "run-*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		n += bytes.Count(b, []byte(s))
	}
	return n
}

func (h *harness) q(s string) string { return exactly.Rebind(h.d, s) }

var errNotReached = errors.New("not reached")
