package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

// auditEnv is what the read-only commands (status, verify) open: the sink
// database without creating anything in it, and a Kafka reader.
type auditEnv struct {
	cfg    *exactly.Config
	d      exactly.Dialect
	db     *sql.DB
	ledger *exactly.Ledger
	kafka  *kafka.Reader
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
	if err != nil {
		return nil, fmt.Errorf("opening %s sink: %w", d.Name(), err)
	}
	kr, err := kafka.NewReader(cfg)
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
// is a terminal, at most every 200 ms. Elsewhere it prints nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

// Show redraws the line; final draws it whatever the time since the last.
func (p *progress) Show(final bool, format string, args ...any) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !final && time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	p.drawn = true
}

// Done clears the line.
func (p *progress) Done() {
	if p.on && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
