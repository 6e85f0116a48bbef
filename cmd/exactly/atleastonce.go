package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/workload"
)

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
			driver := demo.DriverOf(dsn)
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
