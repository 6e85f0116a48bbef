package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/metrics"
	"github.com/exactly/exactly/internal/secret"
	"github.com/exactly/exactly/internal/statuspage"
)

// opsFlags are exactly run's flags for metrics, health and the status page.
type opsFlags struct {
	addr       string
	stuckAfter time.Duration
	refresh    time.Duration
	tokenFile  string
	showData   bool
	cacheFor   time.Duration
}

func (o *opsFlags) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "metrics-addr", "", "serve /metrics, /healthz, /readyz and the status page on / at this address, e.g. :9108 (127.0.0.1:9108; 0.0.0.0:9108 for every interface) (default: off)")
	f.StringVar(&o.tokenFile, "status-token-file", "", "require \"Authorization: Bearer TOKEN\" on / and /metrics, TOKEN read from this file (/healthz and /readyz stay open)")
	f.BoolVar(&o.showData, "status-show-data", false, "show dead-letter keys and values and the quoted values in error text on the status page (default: hidden, they often hold personal data)")
	f.DurationVar(&o.cacheFor, "status-cache", 5*time.Second, "how long the status page reuses what it read from the ledger")
	f.DurationVar(&o.stuckAfter, "stuck-after", 2*time.Minute, "/readyz fails when fetched records wait longer than this for a commit")
	f.DurationVar(&o.refresh, "status-refresh", 5*time.Second, "how often the status page reloads itself")
}

// metrics returns the metrics the source is to tell (kafka.Observe) when
// --metrics-addr is set, else nil.
func (o *opsFlags) metrics(cfg *exactly.Config) *metrics.Metrics {
	if o.addr == "" {
		return nil
	}
	return metrics.New(cfg.Pipeline, func(topic string) (string, bool) {
		_, table, ok := cfg.Route(topic)
		return table, ok
	})
}

// serve starts the metrics and status server of m, the source's metrics
// (see metrics), when --metrics-addr is set. The returned func waits for
// the server to stop after ctx ends.
func (o *opsFlags) serve(ctx context.Context, cfg *exactly.Config, sink *exactly.Sink, src *kafka.Source, m *metrics.Metrics, log *slog.Logger) (func(), error) {
	if o.addr == "" || m == nil {
		return func() {}, nil
	}
	var token string
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, usage(fmt.Errorf("--status-token-file: %w", err))
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, usage(fmt.Errorf("--status-token-file %s: the file is empty", o.tokenFile))
		}
		secret.Register(token)
	}
	// The status server's own small pool: page views and probes never
	// take a connection a flight is waiting for (issue 16: they shared
	// the sink's max_conns+1 and a few page loads could hold them all).
	sc := cfg.Sink
	sc.StatementTimeout = statusQueryTimeout
	db, err := sink.Dialect().Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("opening the status server's connection to the sink: %w", err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	srv := &statuspage.Server{
		Pipeline:     cfg.Pipeline,
		Metrics:      m,
		Ledger:       exactly.NewLedger(db, sink.Dialect(), cfg.Pipeline),
		PingKafka:    src.Ping,
		StuckAfter:   o.stuckAfter,
		Refresh:      o.refresh,
		CacheFor:     o.cacheFor,
		QueryTimeout: statusQueryTimeout,
		Token:        token,
		ShowData:     o.showData,
		Log:          log,
	}
	sctx, cancel := context.WithCancel(ctx)
	addr, done, err := srv.Serve(sctx, o.addr)
	if err != nil {
		cancel()
		db.Close()
		return nil, usage(err)
	}
	log.Info("serving metrics and the status page", "addr", addr)
	if host, _, _ := net.SplitHostPort(addr); token == "" && !net.ParseIP(host).IsLoopback() {
		log.Warn("the status page and /metrics are served beyond this host without a token: set --status-token-file", "addr", addr)
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			log.Warn("status server stopped", "err", err)
		}
		db.Close()
	}, nil
}

// statusQueryTimeout bounds each statement of the status server: the
// server ends it (PostgreSQL statement_timeout) and the client cancels it.
const statusQueryTimeout = 5 * time.Second
