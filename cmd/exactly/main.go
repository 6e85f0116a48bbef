// Command exactly moves records from Kafka topics into SQL tables so that
// every record takes effect exactly once, and proves it. One file per
// subcommand; only this package chooses exit codes: 0 success, 1 findings
// or failure, 2 usage or configuration error.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	prog "github.com/exactly/exactly/internal/progress"
	"github.com/exactly/exactly/internal/secret"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/sink/sqlserver"
)

// exitError carries an exit code chosen by a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usage marks an error as a usage or configuration error (exit 2).
func usage(err error) error { return &exitError{code: 2, err: err} }

// findings marks a run that completed but found problems (exit 1).
func findings(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

func main() {
	tuneGC(os.Getenv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Every byte the command prints goes through secret.Scrub: the
	// structural redaction of DSNs and the configuration's own secret
	// values, in text and in JSON (issue 16: check printed the MySQL
	// driver form and ODBC pwd= in clear).
	// Whether stderr is a terminal is asked of the writer the process
	// was given: the secret.Writer around it is never one (the progress
	// lines were never drawn because of that).
	tty := stderrIsTerminal(stderr)
	rawStderr := stderr
	stdout, stderr = secret.Writer{W: stdout}, secret.Writer{W: stderr}
	root := newRoot(stdout, stderr)
	root.tty = tty
	root.ttyOut = rawStderr
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	// Every problem of a configuration file on a line of its own.
	for _, line := range strings.Split(secret.Error(err), "\n") {
		fmt.Fprintln(stderr, "exactly:", line)
	}
	var ee *exitError
	var ce *exactly.ConfigError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ce):
		return 2
	case isFlagError(err):
		return 2
	}
	return 1
}

// stderrIsTerminal tells whether the progress lines are drawn; tests put
// a function here that says yes for a buffer.
var stderrIsTerminal = prog.IsTerminal

// globals are the flags every subcommand shares.
type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
	// tty: stderr is a terminal, so commands draw a progress line there.
	tty bool
	// ttyOut is the stderr the process was given, asked for the
	// terminal's width at each progress draw.
	ttyOut io.Writer
}

// rootCmd is the exactly command and what its subcommands share.
type rootCmd struct {
	*cobra.Command
	*globals
}

func newRoot(stdout, stderr io.Writer) rootCmd {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "exactly",
		Short:         "Kafka → SQL, every record exactly once, with a ledger that proves it",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "text or json")
	root.AddCommand(newRunCmd(g), newDemoCmd(g), newStatusCmd(g), newVerifyCmd(g), newReplayCmd(g), newDedupeCmd(g))
	root.AddCommand(newAdoptCmd(g), newPlanCmd(g), newBenchCmd(g), newBenchBrokerCmd())
	root.AddCommand(newCheckCmd(g), newAtLeastOnceCmd(g), newRedriveCmd(g), newReseedCmd(g), newPruneCmd(g))
	return rootCmd{root, g}
}

func isFlagError(err error) bool {
	s := err.Error()
	return len(s) > 14 && (s[:14] == "unknown comman" || s[:13] == "unknown flag:" || s[:13] == "unknown short")
}

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usage(fmt.Errorf("--log-level: got %q, expected debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch g.logFormat {
	case "text":
		return slog.New(secret.NewHandler(slog.NewTextHandler(g.stderr, opts))), nil
	case "json":
		return slog.New(secret.NewHandler(slog.NewJSONHandler(g.stderr, opts))), nil
	}
	return nil, usage(fmt.Errorf("--log-format: got %q, expected text or json", g.logFormat))
}

// dialectFor returns the dialect of a configured driver.
func dialectFor(driver string) (exactly.Dialect, error) {
	switch driver {
	case "postgres":
		return &postgres.Dialect{}, nil
	case "sqlite":
		return &sqlite.Dialect{}, nil
	case "mysql":
		return &mysql.Dialect{}, nil
	case "sqlserver":
		return &sqlserver.Dialect{}, nil
	}
	return nil, &exactly.ConfigError{Field: "sink.driver", Value: driver, Expected: "a driver this build supports: postgres, mysql, sqlserver, sqlite"}
}
