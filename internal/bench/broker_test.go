package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/exactly/exactly/internal/bench"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestMain runs the broker of TestBenchBrokerInAProcessOfItsOwn when the
// test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv("EXACTLY_BENCH_BROKER_CHILD") == "1" {
		if brokerThatDies() {
			os.Exit(0)
		}
		if err := bench.ServeBroker(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchBrokerInAProcessOfItsOwn: with a broker command, the records go
// through a broker in a child process, every row lands, the broker's
// peak RSS is read apart from the bench's, and the child has ended when
// Run returns.
func TestBenchBrokerInAProcessOfItsOwn(t *testing.T) {
	t.Setenv("EXACTLY_BENCH_BROKER_CHILD", "1")
	res, err := bench.Run(context.Background(), bench.Options{Dialect: &sqlite.Dialect{}, DSN: filepath.Join(t.TempDir(), "b.db"),
		Topics: 2, Partitions: 2, Records: 4000, RecordBytes: 200, Interval: 200e6, MaxRecords: 1000, MaxConns: 2,
		BrokerCommand: []string{os.Args[0], "-test.run=^$"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Broker != "process" || res.Throughput == nil || !res.Throughput.RowsChecked {
		t.Fatalf("broker %q, throughput %+v", res.Broker, res.Throughput)
	}
	if res.BrokerPeakRSSBytes <= 0 || res.PeakRSSBytes <= 0 {
		t.Errorf("peak RSS: bench %d, broker %d", res.PeakRSSBytes, res.BrokerPeakRSSBytes)
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("the broker process is still running: %v", kids)
	}
}

// TestBenchBrokerCommandThatFails: a broker command that prints no address
// is an error naming it, not a hang.
func TestBenchBrokerCommandThatFails(t *testing.T) {
	_, err := bench.Run(context.Background(), bench.Options{Dialect: &sqlite.Dialect{}, DSN: filepath.Join(t.TempDir(), "b.db"),
		Topics: 1, Partitions: 1, Records: 10, BrokerCommand: []string{"sh", "-c", "echo no broker here >&2; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "broker process") || !strings.Contains(err.Error(), "no broker here") {
		t.Fatalf("err = %v", err)
	}
}

// children lists this process's live (not zombie) child processes.
func children(t *testing.T) []int {
	t.Helper()
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == self && f[0] != "Z" {
			pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
			if syscall.Kill(pid, 0) == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
