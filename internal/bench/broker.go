package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ServeBroker runs the bench's kfake broker in this process until in
// reaches its end (the bench closed the pipe, or died), and writes
// "ready ADDR" to out once it listens. `exactly bench` runs it in a
// process of its own (see Options.BrokerCommand), as a real broker is:
// in the bench's process the broker's records, every one produced, were
// the bulk of the heap the collector paced itself by, and its fetches
// the pipeline's CPU.
func ServeBroker(in io.Reader, out io.Writer) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintln(out, "ready", c.ListenAddrs()[0]); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in)
	return err
}

// brokerProcess is a broker ServeBroker runs in a child process.
type brokerProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	// exited is closed when the process has ended (waited for), and
	// waitErr then says how.
	exited  chan struct{}
	waitErr error
}

// ended is the error a bench whose broker process ended before the
// bench stopped it fails with.
func (b *brokerProcess) ended() error {
	return fmt.Errorf("the bench's broker process (pid %d) ended: %v", b.cmd.Process.Pid, b.waitErr)
}

// startBroker starts argv (a command running ServeBroker) and waits for
// its address.
func startBroker(ctx context.Context, argv []string) (*brokerProcess, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the broker process: %w", err)
	}
	b := &brokerProcess{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready "); ok {
			b.addr = addr
			ready <- nil
		} else {
			ready <- fmt.Errorf("read %q: %v", line, err)
		}
		// Wait only once stdout is read to its end (exec's rule for
		// StdoutPipe), which it is when the process ends.
		_, _ = io.Copy(io.Discard, stdout)
		b.waitErr = cmd.Wait()
		if b.waitErr == nil {
			b.waitErr = errors.New("exit status 0")
		}
		close(b.exited)
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(30 * time.Second):
		err = errors.New("no address in 30s")
	}
	if err != nil {
		b.stop()
		return nil, fmt.Errorf("starting the broker process: %w (%s)", err, strings.TrimSpace(stderr.String()))
	}
	return b, nil
}

// watch returns a context of ctx that ends, with the cause b.ended(),
// when the broker process ends before stop: a broker that dies (the OOM
// killer's pick, as it holds every record) ends the run, which otherwise
// waited for it for good ("nothing moves: no broker answers"). release
// it when the run ends.
func (b *brokerProcess) watch(ctx context.Context) (_ context.Context, release context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-b.exited:
			cancel(b.ended())
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stop closes the broker's stdin, which ends it, and waits for it; a
// broker that does not end in 10s is killed.
func (b *brokerProcess) stop() {
	b.stdin.Close()
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}
