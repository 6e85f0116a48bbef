package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

// sinkMode is how a command opens the sink.
type sinkMode int

const (
	noSink sinkMode = iota
	// writeSink opens an exactly.Sink that creates the ledger tables (and
	// brings an older ledger up to date): replay, reseed, redrive, adopt
	// --apply.
	writeSink
	// lookSink opens an exactly.Sink that creates nothing. A SQLite file
	// that does not exist yet is not created: the command looks at an
	// empty in-memory database instead, which is what the pipeline will
	// find (plan, adopt).
	lookSink
	// auditSink opens the database and its ledger only, creating nothing;
	// a SQLite file that does not exist is refused (status, verify).
	auditSink
	// drySink opens an exactly.Sink (and its ledger) that creates nothing,
	// for a dry run, which changes nothing: a SQLite file that does not
	// exist and a database without the ledger tables are refused, as
	// there is nothing to look at (replay --dry-run, reseed --dry-run,
	// redrive without --apply).
	drySink
)

// envOpts say what a command needs besides its configuration.
type envOpts struct {
	sink  sinkMode
	kafka bool // a kafka.Client
	// patience: how long writeSink waits for an unreachable database
	// (openSinkPatiently); 0 fails at once.
	patience time.Duration
}

// env is what a command works in: its configuration and, as it needs
// them, the sink and Kafka. Close closes what was opened.
type env struct {
	cfg    *exactly.Config
	log    *slog.Logger
	d      exactly.Dialect
	sink   *exactly.Sink   // writeSink, lookSink, drySink
	db     *sql.DB         // auditSink
	ledger *exactly.Ledger // auditSink, drySink
	kafka  *kafka.Client
	g      *globals
}

// openEnv loads the configuration file and opens what o asks for.
func openEnv(ctx context.Context, g *globals, file string, o envOpts) (*env, error) {
	if file == "" {
		return nil, usage(errMissingConfig)
	}
	e := &env{g: g}
	var err error
	if e.log, err = g.logger(); err != nil {
		return nil, err
	}
	if e.cfg, err = exactly.LoadConfig(file); err != nil {
		return nil, err
	}
	if e.d, err = dialectFor(e.cfg.Sink.Driver); err != nil {
		return nil, e.named(err)
	}
	if o.sink == writeSink && o.patience > 0 {
		e.sink, err = openSinkPatiently(ctx, e.cfg, e.log, o.patience)
	} else {
		err = e.openSink(ctx, o.sink)
	}
	if err != nil {
		return nil, err
	}
	if o.kafka {
		if e.kafka, err = kafka.NewClient(e.cfg); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// openSink opens the sink as mode says.
func (e *env) openSink(ctx context.Context, mode sinkMode) error {
	var err error
	switch mode {
	case writeSink:
		e.sink, err = openSink(ctx, e.cfg, e.log)
	case lookSink:
		cfg := e.looking()
		e.sink, err = exactly.OpenSink(ctx, cfg, e.d, decode.For(cfg), e.log)
		err = e.named(err)
	case auditSink:
		if err := e.existingFile("status and verify never create one"); err != nil {
			return err
		}
		if e.db, err = e.openDB(ctx); err == nil {
			e.ledger = exactly.NewLedger(e.db, e.d, e.cfg.Pipeline)
		}
	case drySink:
		return e.openDry(ctx)
	}
	return err
}

// existingFile refuses a SQLite sink whose file does not exist: opening
// it would create it. why says who never creates one.
func (e *env) existingFile(why string) error {
	if path, ok := sqliteFile(e.cfg); ok {
		if _, err := os.Stat(path); err != nil {
			return &exactly.ConfigError{File: e.cfg.File, Field: "sink.dsn", Value: e.cfg.Sink.DSN,
				Expected: "an existing SQLite file (" + why + ")"}
		}
	}
	return nil
}

// openDry opens the sink of a dry run (drySink): nothing is created, and
// a sink without the ledger tables is refused.
func (e *env) openDry(ctx context.Context) error {
	if err := e.existingFile("a dry run never creates one"); err != nil {
		return err
	}
	cfg := *e.cfg
	cfg.Sink.ReadOnly = true // no setting that writes (SQLite's journal mode)
	s, err := exactly.OpenSink(ctx, &cfg, e.d, decode.For(&cfg), e.log)
	if err != nil {
		return e.named(err)
	}
	ok, err := s.HasLedger(ctx)
	if err == nil && !ok {
		err = usage(fmt.Errorf("the sink has no ledger tables (exactly_offsets): pipeline %s has never run against it, so there is nothing to look at (a dry run creates nothing; check sink.dsn in %s)",
			e.cfg.Pipeline, e.cfg.File))
	}
	if err != nil {
		s.Close()
		return err
	}
	e.sink, e.ledger = s, exactly.NewLedger(s.DB(), e.d, e.cfg.Pipeline)
	return nil
}

// looking is the configuration a command that only looks opens: a SQLite
// file that does not exist yet is not created (opening it would), the
// command looks at an empty in-memory database instead, which is what the
// pipeline will find.
func (e *env) looking() *exactly.Config {
	c := *e.cfg
	c.Sink.ReadOnly = true // no setting that writes (SQLite's journal mode)
	path, ok := sqliteFile(e.cfg)
	if !ok {
		return &c
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return &c
	}
	fmt.Fprintf(e.g.stdout, "(the SQLite file %s does not exist yet: looking at an empty database)\n", path)
	c.Sink.DSN = "file:exactly-look-" + fmt.Sprint(time.Now().UnixNano()) + "?mode=memory&cache=shared"
	return &c
}

// openDB opens the sink's database, creating nothing in it (not even a
// SQLite file: see looking).
func (e *env) openDB(ctx context.Context) (*sql.DB, error) {
	db, err := e.d.Open(ctx, e.looking().Sink)
	var ce *exactly.ConfigError
	if errors.As(err, &ce) {
		return nil, e.named(err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s sink: %w", e.d.Name(), err)
	}
	return db, nil
}

// named gives a configuration error the file's name.
func (e *env) named(err error) error {
	var ce *exactly.ConfigError
	if errors.As(err, &ce) && ce.File == "" {
		ce.File = e.cfg.File
	}
	return err
}

// sqliteFile is the path of a SQLite sink's database file; false for
// the other drivers.
func sqliteFile(cfg *exactly.Config) (string, bool) {
	if cfg.Sink.Driver != "sqlite" {
		return "", false
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cfg.Sink.DSN, "sqlite://"), "file:"), "?")
	return path, true
}

// Close closes what openEnv opened.
func (e *env) Close() {
	if e.kafka != nil {
		e.kafka.Close()
	}
	if e.sink != nil {
		e.sink.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
}

// openSink opens the configured sink with the standard decoders; it
// creates the ledger tables.
func openSink(ctx context.Context, cfg *exactly.Config, log *slog.Logger) (*exactly.Sink, error) {
	d, err := dialectFor(cfg.Sink.Driver)
	if err == nil {
		var s *exactly.Sink
		if s, err = exactly.NewSink(ctx, cfg, d, decode.For(cfg), log); err == nil {
			return s, nil
		}
	}
	var ce *exactly.ConfigError
	if errors.As(err, &ce) && ce.File == "" {
		ce.File = cfg.File
	}
	return nil, err
}
