package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	brokerOnce sync.Once
	brokerBin  string
	brokerErr  error
)

// Broker is a kfake broker running in a process of its own (see
// internal/testenv/kfakebroker): a test can kill it, freeze it or restart
// it on the same port, as a real broker goes down and comes back. Its
// state lives in a data directory, so a restart keeps topics, records and
// groups.
type Broker struct {
	Addr string
	t    testing.TB
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartBroker builds and starts a broker holding topics of the given
// partitions. It is killed when the test ends.
func StartBroker(t testing.TB, partitions int, topics ...string) *Broker {
	t.Helper()
	brokerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "exactly-kfake-")
		if err != nil {
			brokerErr = err
			return
		}
		brokerBin = filepath.Join(dir, "kfakebroker")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", brokerBin, "./internal/testenv/kfakebroker")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			brokerErr = fmt.Errorf("go build kfakebroker: %v\n%s", err, out)
		}
	})
	if brokerErr != nil {
		t.Fatal(brokerErr)
	}
	b := &Broker{t: t, args: []string{"-data-dir", t.TempDir(), "-partitions", strconv.Itoa(partitions),
		"-topics", strings.Join(topics, ",")}}
	b.Start()
	t.Cleanup(b.Kill)
	return b
}

// Start (re)starts the broker process, on the port it had before if any.
func (b *Broker) Start() {
	b.t.Helper()
	port := "0"
	if b.Addr != "" {
		_, port, _ = strings.Cut(b.Addr, ":")
	}
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(brokerBin, append([]string{"-port", port}, b.args...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready "); ok {
			b.Addr, b.cmd, b.done = addr, cmd, make(chan struct{})
			go func(done chan struct{}) { cmd.Wait(); close(done) }(b.done)
			return
		}
		cmd.Wait()
		// The port of a killed broker may linger a moment.
		if attempt > 50 {
			b.t.Fatalf("starting kfakebroker on port %s: %q %s", port, line, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill ends the broker at once (SIGKILL), as a crashed broker.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGCONT)
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// Stop ends the broker cleanly (SIGTERM): its state is written to the
// data directory, and Start brings it back with its records.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.done
	b.cmd = nil
}

// Freeze stops the broker (SIGSTOP): connections stay open and nothing
// answers, like a broker behind a dead network. Thaw resumes it.
func (b *Broker) Freeze() { b.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen broker.
func (b *Broker) Thaw() { b.cmd.Process.Signal(syscall.SIGCONT) }
