package demo

import (
	"slices"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// TestAtLeastOnceChildKeepsTheDSNOffItsArguments: demo --at-least-once
// started its consumer with --sink DSN, so the password was in ps for the
// whole demo even when the user gave it with --sink-file (issue 16 review).
func TestAtLeastOnceChildKeepsTheDSNOffItsArguments(t *testing.T) {
	const dsn = "postgres://app:Alo-S3cret@127.0.0.1:5432/test"
	cmd := AtLeastOnceChild("/bin/exactly", []string{"127.0.0.1:9092"}, dsn, "g", "")
	if args := strings.Join(cmd.Args, " "); strings.Contains(args, "Alo-S3cret") {
		t.Errorf("the child's arguments hold the password: %s", args)
	}
	if !slices.Contains(cmd.Env, SinkEnv+"="+dsn) {
		t.Errorf("the child's environment lacks %s", SinkEnv)
	}
}

// TestDemoConfigKeepsTheDSN: the demo wrote the DSN into its pipelines'
// configuration as is, and exactly run expands ${NAME} in values: a
// password holding "${HOME}" became the home directory (issue 16 review).
func TestDemoConfigKeepsTheDSN(t *testing.T) {
	t.Setenv("EXACTLY_T_DEMO", "replaced")
	dsn := "postgres://app:a'b${EXACTLY_T_DEMO}c$${d}#e@127.0.0.1:5432/test"
	cfg, err := exactly.ParseConfig(strings.NewReader(Config("demo", []string{"127.0.0.1:9092"}, "g", "postgres", dsn)), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sink.DSN != dsn {
		t.Errorf("sink.dsn = %q, want %q", cfg.Sink.DSN, dsn)
	}
}
