package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/metrics"
	"github.com/exactly/exactly/internal/status"
)

// opsFlags are exactly run's flags for metrics, health and the status page.
type opsFlags struct {
	addr       string
	stuckAfter time.Duration
	refresh    time.Duration
}

func (o *opsFlags) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "metrics-addr", "", "serve /metrics, /healthz, /readyz and the status page on / at this address, e.g. :9108 (default: off)")
	f.DurationVar(&o.stuckAfter, "stuck-after", 2*time.Minute, "/readyz fails when fetched records wait longer than this for a commit")
	f.DurationVar(&o.refresh, "status-refresh", 5*time.Second, "how often the status page reloads itself")
}

// serve starts the metrics and status server when --metrics-addr is set
// and attaches the metrics to the source. The returned func waits for the
// server to stop after ctx ends.
func (o *opsFlags) serve(ctx context.Context, cfg *exactly.Config, sink *exactly.Sink, src *kafka.Source, log *slog.Logger) (func(), error) {
	if o.addr == "" {
		return func() {}, nil
	}
	m := metrics.New(cfg.Pipeline, func(topic string) (string, bool) {
		_, table, ok := cfg.Route(topic)
		return table, ok
	})
	src.Observer = m
	srv := &status.Server{
		Pipeline:   cfg.Pipeline,
		Metrics:    m,
		Ledger:     &status.Ledger{DB: sink.DB(), Dialect: sink.Dialect(), Pipeline: cfg.Pipeline},
		PingKafka:  src.Ping,
		StuckAfter: o.stuckAfter,
		Refresh:    o.refresh,
		Log:        log,
	}
	sctx, cancel := context.WithCancel(ctx)
	addr, done, err := srv.Serve(sctx, o.addr)
	if err != nil {
		cancel()
		return nil, usage(err)
	}
	log.Info("serving metrics and the status page", "addr", addr)
	return func() {
		cancel()
		if err := <-done; err != nil {
			log.Warn("status server stopped", "err", err)
		}
	}, nil
}
