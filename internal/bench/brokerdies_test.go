package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exactly/exactly/internal/bench"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// brokerThatDies runs the bench's broker in this (child) process and
// SIGKILLs itself after EXACTLY_BENCH_BROKER_DIE_AFTER, as the OOM killer
// does the broker: the process that holds every record produced, the
// largest of the two (1.2 GB at 500k Debezium records).
func brokerThatDies() bool {
	after, err := time.ParseDuration(os.Getenv("EXACTLY_BENCH_BROKER_DIE_AFTER"))
	if err != nil {
		return false
	}
	go func() {
		time.Sleep(after)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}()
	_ = bench.ServeBroker(os.Stdin, os.Stdout)
	return true
}

// TestBenchFailsWhenItsBrokerProcessDies: a broker child that dies
// mid-run (SIGKILL, OOM killer) must end Run with an error. Found live
// (b417860): `exactly bench --records 60000 --rate 2000 --duration 6s`
// with its bench-broker child SIGKILLed 3 s in logged "nothing moves: no
// broker answers" every 10 s and was still running 10 minutes later, the
// child a zombie nobody waited for. In-process the broker could not die
// alone.
func TestBenchFailsWhenItsBrokerProcessDies(t *testing.T) {
	// 1.5 s in: the throughput phase; 5 s in: the latency phase (a
	// minute of records at 1,000/s), where the live run hung.
	for _, after := range []string{"1500ms", "5s"} {
		t.Run(after, func(t *testing.T) {
			t.Setenv("EXACTLY_BENCH_BROKER_CHILD", "1")
			t.Setenv("EXACTLY_BENCH_BROKER_DIE_AFTER", after)
			done := make(chan error, 1)
			go func() {
				_, err := bench.Run(context.Background(), bench.Options{Dialect: &sqlite.Dialect{}, DSN: filepath.Join(t.TempDir(), "b.db"),
					Topics: 2, Partitions: 2, Records: 20000, RecordBytes: 200, Interval: 200e6, MaxRecords: 1000, MaxConns: 2,
					Rate: 1000, Duration: 60 * time.Second,
					BrokerCommand: []string{os.Args[0], "-test.run=^$"}})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "broker process") {
					t.Fatalf("Run returned %v, want an error naming its broker process, which was killed", err)
				}
				t.Logf("Run failed as it should: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatalf("Run still running 30s after its broker process was SIGKILLed (%s in): the bench hangs", after)
			}
		})
	}
}
