package main

import (
	"slices"
	"strings"
	"testing"
)

// TestAtLeastOnceChildKeepsTheDSNOffItsArguments: demo --at-least-once
// started its consumer with --sink DSN, so the password was in ps for the
// whole demo even when the user gave it with --sink-file (issue 16 review).
func TestAtLeastOnceChildKeepsTheDSNOffItsArguments(t *testing.T) {
	const dsn = "postgres://app:Alo-S3cret@127.0.0.1:5432/test"
	cmd := atLeastOnceChild("/bin/exactly", []string{"127.0.0.1:9092"}, dsn, "g", "")
	if args := strings.Join(cmd.Args, " "); strings.Contains(args, "Alo-S3cret") {
		t.Errorf("the child's arguments hold the password: %s", args)
	}
	if !slices.Contains(cmd.Env, sinkEnv+"="+dsn) {
		t.Errorf("the child's environment lacks %s", sinkEnv)
	}
}
