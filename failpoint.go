package exactly

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Failpoints let crash and chaos tests stop the process at an exact point
// of the batch protocol. EXACTLY_FAILPOINT=name[:n][:action] acts the n-th
// time (default 1st) the named point is reached. Actions: kill (default)
// sends SIGKILL to this process; stop sends SIGSTOP to it, so a test can
// hold it paused mid-batch past its group session (a zombie) and resume it
// with SIGCONT. Points: before_write (transaction open, nothing written),
// before_commit (all written, COMMIT not sent), after_commit (committed,
// Kafka not told), before_kafka_commit. Unset, a failpoint costs one
// comparison.
var failpoint = parseFailpoint(os.Getenv("EXACTLY_FAILPOINT"))

type failpointSpec struct {
	name   string
	left   int
	signal syscall.Signal
}

func parseFailpoint(v string) failpointSpec {
	parts := strings.Split(v, ":")
	fp := failpointSpec{name: parts[0], left: 1, signal: syscall.SIGKILL}
	for _, p := range parts[1:] {
		if k, err := strconv.Atoi(p); err == nil && k > 0 {
			fp.left = k
		} else if p == "stop" {
			fp.signal = syscall.SIGSTOP
		}
	}
	return fp
}

var failpointMu sync.Mutex

// Failpoint kills (or stops) the process if EXACTLY_FAILPOINT names this
// point and its count is reached.
func Failpoint(name string) {
	if failpoint.name != name {
		return
	}
	failpointMu.Lock()
	defer failpointMu.Unlock()
	failpoint.left--
	if failpoint.left != 0 {
		return
	}
	_ = syscall.Kill(os.Getpid(), failpoint.signal)
	if failpoint.signal == syscall.SIGKILL {
		select {} // the signal is on its way
	}
	// The stop takes effect asynchronously: wait here, or this goroutine
	// would run on past the point (e.g. send its COMMIT) before it lands.
	time.Sleep(200 * time.Millisecond)
}
