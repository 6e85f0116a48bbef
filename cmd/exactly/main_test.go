package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("pipeline: p\nsource: {brokers: [x:1]}\nsink: {driver: oracle, dsn: x}\ntables: [{topics: t, key: [id]}]\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"config error names file, line and field", []string{"run", "-c", bad}, 2, bad + ":3: sink.driver: got \"oracle\""},
		{"missing config file", []string{"run", "-c", filepath.Join(dir, "absent.yaml")}, 2, "absent.yaml: file"},
		{"missing -c", []string{"run"}, 2, "-c FILE"},
		{"unknown flag", []string{"run", "--frobnicate"}, 2, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad demo flags", []string{"demo", "--records", "0"}, 2, "--records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tc.args, &out, &errb); got != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", got, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tc.msg)
			}
		})
	}
}
