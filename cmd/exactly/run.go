package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/metrics"
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
			defer context.AfterFunc(ctx, func() { stopping(g) })()
			e, err := openEnv(ctx, g, file, envOpts{sink: writeSink, patience: startupPatience})
			if err != nil {
				if log, lerr := g.logger(); lerr == nil && ctx.Err() != nil {
					// Stopped while connecting: nothing was written, a
					// clean stop (the scale-out test's SIGTERM at start-up).
					log.Info("stopped before the sink was open")
					return nil
				}
				return err
			}
			// The sink is all the env holds; it is closed within a bound
			// (closeBounded), not by e.Close.
			cfg, sink, log := e.cfg, e.sink, e.log
			defer closeBounded(sink, log)
			// Without metrics only the summary watches: it needs no
			// watermarks, so none are listed every 5s for nobody.
			m := ops.metrics(cfg)
			sum, every := metrics.NewSummary(nil), time.Hour
			if m != nil {
				sum, every = metrics.NewSummary(m), 0
			}
			src, err := kafka.NewSource(cfg, sink, log, kafka.Observe(sum), kafka.WatermarkEvery(every))
			if err != nil {
				return err
			}
			served, err := ops.serve(ctx, cfg, sink, src, m, log)
			if err != nil {
				return err
			}
			defer served()
			log.Info("running", "pipeline", cfg.Pipeline, "sink", cfg.Sink.Driver, "writer", sink.Writer(),
				"group", cfg.Source.Group, "instance_id", src.InstanceID(), "group_protocol", cfg.Source.GroupProtocol)
			if err := src.Run(ctx); err != nil {
				log.Error("stopped on an error", append(sum.Attrs(), "err", err)...)
				return err
			}
			log.Info("stopped", sum.Attrs()...)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	ops.flags(cmd)
	return cmd
}

// stopLimit is the most a stop may take before the process gives up on
// it; every step of a stop is bounded well within (see kafka.stopGrace),
// so reaching it is a bug, said as one.
var stopLimit = 9500 * time.Millisecond

// stopping runs when the first SIGINT/SIGTERM arrives: a second one exits
// at once (the ledger makes that safe: a transaction cut in the middle
// rolls back, or it committed and the ledger says so), and so does a stop
// that outlives stopLimit.
func stopping(g *globals) {
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-again:
			fmt.Fprintf(g.stderr, "exactly: %v again: exiting at once (the ledger keeps what committed)\n", sig)
			dieBy(sig)
		case <-time.After(stopLimit):
			fmt.Fprintf(g.stderr, "exactly: the stop took longer than %v: exiting (the ledger keeps what committed)\n", stopLimit)
		}
		os.Exit(1)
	}()
}

// dieBy ends the process by sig's default action, as if no handler had
// been installed: an operator's second Ctrl-C or a supervisor's second
// SIGTERM is a stop asked for, not a failure. Exit 1 told systemd
// (Restart=on-failure) to start the pipeline it was stopping again, and
// shells and Kubernetes report 130/143 for a process ended so.
func dieBy(sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok {
		signal.Reset(syscall.SIGINT, syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), s)
		time.Sleep(time.Second)
		os.Exit(128 + int(s))
	}
}

// closeBounded closes the sink, waiting at most a second: database/sql
// waits for queries in progress, and a flight abandoned at a stop against
// an unreachable database may hold one.
func closeBounded(sink *exactly.Sink, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		sink.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		log.Info("not waiting for the sink's connections to close")
	}
}

// startupPatience is how long run waits for an unreachable sink database
// at start-up before giving up.
var startupPatience = 2 * time.Minute

// openSinkPatiently opens the sink, retrying for up to patience while the
// database cannot be reached (a service started before its database, a
// failover, a restart): a service should wait for it, not exit. Anything
// else (bad credentials, a missing database, a configuration error) fails
// at once.
func openSinkPatiently(ctx context.Context, cfg *exactly.Config, log *slog.Logger, patience time.Duration) (*exactly.Sink, error) {
	d, err := dialectFor(cfg.Sink.Driver)
	if err != nil {
		return openSink(ctx, cfg, log) // names the configuration error
	}
	deadline := time.Now().Add(patience)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		sink, err := openSink(ctx, cfg, log)
		var ce *exactly.ConfigError
		if err == nil || ctx.Err() != nil || errors.As(err, &ce) || d.Classify(err) != exactly.ErrConnection {
			return sink, err
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("the sink database stayed unreachable for %v (%d attempts): %w", patience, attempt, err)
		}
		log.Warn("the sink database is unreachable; retrying", "driver", cfg.Sink.Driver, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}
