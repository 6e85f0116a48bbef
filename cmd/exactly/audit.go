package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	prog "github.com/exactly/exactly/internal/progress"
)

// auditEnv is what the read-only commands (status, verify) open: the sink
// database without creating anything in it, and a Kafka reader.
type auditEnv struct {
	cfg    *exactly.Config
	d      exactly.Dialect
	db     *sql.DB
	ledger *exactly.Ledger
	kafka  *kafka.Client
}

func openAudit(ctx context.Context, file string) (*auditEnv, error) {
	if file == "" {
		return nil, usage(errMissingConfig)
	}
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		return nil, err
	}
	d, err := dialectFor(cfg.Sink.Driver)
	if err != nil {
		var ce *exactly.ConfigError
		if errors.As(err, &ce) {
			ce.File = cfg.File
		}
		return nil, err
	}
	if cfg.Sink.Driver == "sqlite" {
		// Opening a missing SQLite file would create it: read-only
		// commands must not.
		path, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cfg.Sink.DSN, "sqlite://"), "file:"), "?")
		if _, err := os.Stat(path); err != nil {
			return nil, &exactly.ConfigError{File: cfg.File, Field: "sink.dsn", Value: cfg.Sink.DSN,
				Expected: "an existing SQLite file (status and verify never create one)"}
		}
	}
	db, err := d.Open(ctx, cfg.Sink)
	var ce *exactly.ConfigError
	if errors.As(err, &ce) {
		ce.File = cfg.File
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s sink: %w", d.Name(), err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &auditEnv{cfg: cfg, d: d, db: db, ledger: exactly.NewLedger(db, d, cfg.Pipeline), kafka: kr}, nil
}

func (e *auditEnv) Close() {
	e.kafka.Close()
	e.db.Close()
}

// progress draws a one-line progress display on stderr, only when stderr
// is a terminal, at most every 200 ms (internal/progress). Elsewhere it
// prints nothing.
type progress struct{ *prog.Bar }

func newProgress(g *globals) *progress {
	if !g.tty {
		return &progress{nil} // a nil Bar draws nothing
	}
	bar := prog.Always(g.stderr, "", 0)
	bar.SetWidth(func() int { return prog.TerminalWidth(g.ttyOut) })
	return &progress{bar}
}
