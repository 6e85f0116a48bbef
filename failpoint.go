package exactly

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Failpoints let crash tests kill the process at an exact point of the
// batch protocol. EXACTLY_FAILPOINT=name[:n] sends SIGKILL to this process
// the n-th time (default 1st) the named point is reached. Points:
// before_write (transaction open, nothing written), before_commit (all
// written, COMMIT not sent), after_commit (committed, Kafka not told).
// Unset, a failpoint costs one comparison.
var failpoint = func() struct {
	name string
	left int
} {
	v := os.Getenv("EXACTLY_FAILPOINT")
	name, n, _ := strings.Cut(v, ":")
	left := 1
	if k, err := strconv.Atoi(n); err == nil && k > 0 {
		left = k
	}
	return struct {
		name string
		left int
	}{name, left}
}()

var failpointMu sync.Mutex

// Failpoint kills the process if EXACTLY_FAILPOINT names this point and its
// count is reached.
func Failpoint(name string) {
	if failpoint.name != name {
		return
	}
	failpointMu.Lock()
	defer failpointMu.Unlock()
	failpoint.left--
	if failpoint.left == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
