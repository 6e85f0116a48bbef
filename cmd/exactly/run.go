package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

func newRunCmd(g *globals) *cobra.Command {
	var file string
	var ops opsFlags
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the pipeline until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// First of all, so a signal that arrives while starting up
			// still means "stop cleanly", not the default instant death.
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if file == "" {
				return usage(errMissingConfig)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := exactly.LoadConfig(file)
			if err != nil {
				return err
			}
			sink, err := openSink(ctx, cfg, log)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped while connecting: nothing was written, a
					// clean stop (the scale-out test's SIGTERM at start-up).
					log.Info("stopped before the sink was open")
					return nil
				}
				return err
			}
			defer sink.Close()
			src, err := kafka.NewSource(cfg, sink, log)
			if err != nil {
				return err
			}
			served, err := ops.serve(ctx, cfg, sink, src, log)
			if err != nil {
				return err
			}
			defer served()
			log.Info("running", "pipeline", cfg.Pipeline, "sink", cfg.Sink.Driver, "writer", sink.Writer())
			if err := src.Run(ctx); err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	ops.flags(cmd)
	return cmd
}
