package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/secret"
)

// sinkEnv is the environment variable exactly dedupe reads the sink DSN
// from when neither --sink nor --sink-file is given.
const sinkEnv = demo.SinkEnv

// sinkFlags are --sink DSN and --sink-file FILE. A DSN on the command line
// is visible to every user of the machine (ps, /proc/PID/cmdline), so a
// DSN with a password belongs in a file (a mounted secret) or, for
// dedupe, in $EXACTLY_SINK_DSN.
type sinkFlags struct {
	dsn, file string
	env       bool // fall back to $EXACTLY_SINK_DSN
}

func (s *sinkFlags) add(f *pflag.FlagSet, help string) {
	f.StringVar(&s.dsn, "sink", "", help+"; visible in ps: a DSN with a password belongs in --sink-file")
	f.StringVar(&s.file, "sink-file", "", "read the sink DSN from this file (a mounted secret; one trailing newline dropped)")
}

// resolve returns the DSN from --sink, --sink-file or the environment
// ("" when none is given) and registers its password with internal/secret.
func (s *sinkFlags) resolve() (string, error) {
	dsn := s.dsn
	switch {
	case s.dsn != "" && s.file != "":
		return "", usage(errors.New("give either --sink DSN or --sink-file FILE, not both"))
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", usage(errors.New("--sink-file: " + err.Error()))
		}
		dsn = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if dsn == "" {
			return "", usage(errors.New("--sink-file " + s.file + ": the file is empty"))
		}
	case s.dsn == "" && s.env:
		dsn = os.Getenv(sinkEnv)
	}
	secret.Register(secret.Passwords(dsn)...)
	return dsn, nil
}

// given tells whether a DSN was given in any way.
func (s *sinkFlags) given() bool {
	return s.dsn != "" || s.file != "" || (s.env && os.Getenv(sinkEnv) != "")
}
