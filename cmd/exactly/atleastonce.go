package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/workload"
)

// atLeastOnceChild is the command demo --at-least-once starts. The DSN
// goes in its environment ($EXACTLY_SINK_DSN), not its arguments: every
// user of the machine reads those (ps), and the user may have kept the
// password off the command line with --sink-file.
func atLeastOnceChild(exe string, brokers []string, dsn, group, failpoint string) *exec.Cmd {
	cmd := exec.Command(exe, "at-least-once-consumer", "--brokers", strings.Join(brokers, ","), "--group", group)
	cmd.Env = append(os.Environ(), "EXACTLY_FAILPOINT="+failpoint, sinkEnv+"="+dsn)
	return cmd
}

// newAtLeastOnceCmd is the hidden child of demo --at-least-once: the plain
// consumer (write, then commit offsets) that demo kills between the two.
func newAtLeastOnceCmd(g *globals) *cobra.Command {
	var brokers, dsn, group string
	cmd := &cobra.Command{
		Use:    "at-least-once-consumer",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			bs := strings.Split(brokers, ",")
			ends, err := workload.EndOffsets(ctx, bs, workload.TopicEvents)
			if err != nil {
				return err
			}
			if dsn == "" {
				dsn = os.Getenv(sinkEnv)
			}
			driver := driverOf(dsn)
			d, err := dialectFor(driver)
			if err != nil {
				return err
			}
			db, err := d.Open(ctx, exactly.SinkConfig{Driver: driver, DSN: dsn})
			if err != nil {
				return err
			}
			defer db.Close()
			return workload.ConsumeAtLeastOnce(ctx, bs, group, db, d, ends[workload.TopicEvents])
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokers, "brokers", "", "comma-separated brokers")
	f.StringVar(&dsn, "sink", "", "sink DSN (default $"+sinkEnv+")")
	f.StringVar(&group, "group", "", "consumer group")
	return cmd
}

// demoAtLeastOnce runs the demo's workload (same seed, same records)
// through the plain consumer first, SIGKILLing it o.kills times between
// its database commit and its offset commit, and prints how many rows of
// demo_events were doubled. The demo then runs the same records through
// exactly.
func demoAtLeastOnce(ctx context.Context, out io.Writer, o demoOpts, dsn, dir string, rng *rand.Rand) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	driver := driverOf(dsn)
	d, err := dialectFor(driver)
	if err != nil {
		return err
	}
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: driver, DSN: dsn})
	if err != nil {
		return fmt.Errorf("opening the sink: %w", err)
	}
	defer db.Close()
	if err := resetDemo(ctx, db, d, driver, "demo"); err != nil {
		return err
	}
	if err := workload.Produce(ctx, brokers, workload.NewGenerator(o.seed, 400), o.records, 0); err != nil {
		return fmt.Errorf("producing the workload: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "at-least-once.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	start := func(fp string) (*exec.Cmd, error) {
		cmd := atLeastOnceChild(exe, brokers, dsn, fmt.Sprintf("demo-alo-%d", o.seed), fp)
		cmd.Stdout, cmd.Stderr = logf, logf
		return cmd, cmd.Start()
	}
	fmt.Fprintf(out, "at-least-once consumer (insert a poll of up to %d records, commit the transaction, then commit the offsets to Kafka):\n", workload.MicroBatch)
	kills := 0
	for i := 0; i < o.kills; i++ {
		fp := fmt.Sprintf("%s:%d", workload.AtLeastOnceFailpoint, 1+rng.Intn(3))
		child, err := start(fp)
		if err != nil {
			return fmt.Errorf("starting the consumer: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- child.Wait() }()
		select {
		case err := <-exited:
			if err == nil {
				fmt.Fprintf(out, "  run %d: consumed to the end before failpoint %s\n", i+1, fp)
				continue
			}
			kills++
			fmt.Fprintf(out, "  kill %d: SIGKILL after its database commit, before its offset commit (failpoint %s)\n", kills, fp)
		case <-time.After(2 * time.Minute):
			_ = child.Process.Kill()
			return findings("the at-least-once consumer did not reach failpoint %s in 2m (log: %s)", fp, logf.Name())
		}
	}
	child, err := start("")
	if err != nil {
		return fmt.Errorf("starting the consumer: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return findings("the at-least-once consumer failed: %v (log: %s)", err, logf.Name())
		}
	case <-time.After(3 * time.Minute):
		_ = child.Process.Kill()
		return findings("the at-least-once consumer did not catch up in 3m (log: %s)", logf.Name())
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
