package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/workload"
)

// AtLeastOnceChild is the command demo --at-least-once starts. The DSN
// goes in its environment ($EXACTLY_SINK_DSN), not its arguments: every
// user of the machine reads those (ps), and the user may have kept the
// password off the command line with --sink-file.
func AtLeastOnceChild(exe string, brokers []string, dsn, group, failpoint string) *exec.Cmd {
	cmd := exec.Command(exe, "at-least-once-consumer", "--brokers", strings.Join(brokers, ","), "--group", group)
	cmd.Env = append(os.Environ(), "EXACTLY_FAILPOINT="+failpoint, SinkEnv+"="+dsn)
	return cmd
}

// AtLeastOnce runs the demo's workload (same seed, same records)
// through the plain consumer first, SIGKILLing it o.Kills times between
// its database commit and its offset commit, and prints how many rows of
// demo_events were doubled. The demo then runs the same records through
// exactly.
func AtLeastOnce(ctx context.Context, out io.Writer, rng *rand.Rand, o Options) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	db, err := o.D.Open(ctx, exactly.SinkConfig{Driver: o.Driver, DSN: o.DSN})
	if err != nil {
		return fmt.Errorf("opening the sink: %w", err)
	}
	defer db.Close()
	if err := Reset(ctx, db, o.D, o.Driver, pipeline); err != nil {
		return err
	}
	if err := workload.Produce(ctx, brokers, workload.NewGenerator(o.Seed, 400), o.Records, 0); err != nil {
		return fmt.Errorf("producing the workload: %w", err)
	}
	logf, err := os.Create(filepath.Join(o.Dir, "at-least-once.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	// run starts the consumer with failpoint fp and waits up to within for
	// it to exit: its exit error, or timedOut when it was killed then.
	run := func(fp string, within time.Duration) (exit error, timedOut bool, err error) {
		child := AtLeastOnceChild(o.Exe, brokers, o.DSN, fmt.Sprintf("demo-alo-%d", o.Seed), fp)
		child.Stdout, child.Stderr = logf, logf
		if err := child.Start(); err != nil {
			return nil, false, fmt.Errorf("starting the consumer: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- child.Wait() }()
		select {
		case exit := <-exited:
			return exit, false, nil
		case <-time.After(within):
			_ = child.Process.Kill()
			return nil, true, nil
		}
	}
	fmt.Fprintf(out, "at-least-once consumer (insert a poll of up to %d records, commit the transaction, then commit the offsets to Kafka):\n", workload.MicroBatch)
	kills := 0
	for i := 0; i < o.Kills; i++ {
		fp := fmt.Sprintf("%s:%d", workload.AtLeastOnceFailpoint, 1+rng.Intn(3))
		exit, timedOut, err := run(fp, 2*time.Minute)
		switch {
		case err != nil:
			return err
		case timedOut:
			return fmt.Errorf("the at-least-once consumer did not reach failpoint %s in 2m (log: %s)", fp, logf.Name())
		case exit == nil:
			fmt.Fprintf(out, "  run %d: consumed to the end before failpoint %s\n", i+1, fp)
		default:
			kills++
			fmt.Fprintf(out, "  kill %d: SIGKILL after its database commit, before its offset commit (failpoint %s)\n", kills, fp)
		}
	}
	exit, timedOut, err := run("", 3*time.Minute)
	switch {
	case err != nil:
		return err
	case timedOut:
		return fmt.Errorf("the at-least-once consumer did not catch up in 3m (log: %s)", logf.Name())
	case exit != nil:
		return fmt.Errorf("the at-least-once consumer failed: %v (log: %s)", exit, logf.Name())
	}
	ends, err := workload.EndOffsets(ctx, brokers, workload.TopicEvents)
	if err != nil {
		return err
	}
	var events int64
	for _, end := range ends[workload.TopicEvents] {
		events += end
	}
	rows, distinct, err := workload.CountEvents(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s: %d events in Kafka, %d rows, %d doubled, %d lost\n\n", workload.TableEvents, events, rows, rows-distinct, events-distinct)
	return nil
}
