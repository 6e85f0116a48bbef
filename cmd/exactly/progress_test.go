package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exactly/exactly/internal/testenv"
)

// TestProgressLinesOnlyOnATerminal: verify, replay, dedupe and adopt draw
// one updating line on stderr when it is a terminal (\r, erase, text; the
// line erased before a result is printed), and nothing otherwise. The
// terminal is injected (stderrIsTerminal); TestProgressOnARealTerminal
// runs the binary in a pseudo-terminal. Before, the check was made on
// the secret.Writer wrapping stderr, never a terminal: no line was ever
// drawn.
func TestProgressLinesOnlyOnATerminal(t *testing.T) {
	f := newFleetFixture(t)
	db := filepath.Join(filepath.Dir(f.file), "sink.db")
	if _, err := f.sink.DB().Exec("CREATE TABLE dups (id bigint, v text); INSERT INTO dups VALUES (1, 'a'), (1, 'b'), (2, 'c')"); err != nil {
		t.Fatal(err)
	}
	commands := []struct {
		args []string
		line string
	}{
		{[]string{"verify", "-c", f.file}, "\r\033[Kverify: 6/6 partitions, 36 records re-read"},
		{[]string{"replay", "-c", f.file, "--table", "sales_items", "--from", "0"}, "\r\033[Kreplay 1/2 sales.items[0]: 3 records applied, at offset 3 of 6"},
		{[]string{"dedupe", "--sink", db, "--table", "dups", "--key", "id"}, "\r\033[Kdedupe dups: reading duplicates…"},
		{[]string{"adopt", "-c", f.file, "--timestamp", "2026-01-01T00:00:00Z"}, "\r\033[Kadopt: comparing 6 partitions with Kafka and the ledger…"},
	}
	defer func(was func(io.Writer) bool) { stderrIsTerminal = was }(stderrIsTerminal)
	for _, tty := range []bool{true, false} {
		stderrIsTerminal = func(io.Writer) bool { return tty }
		for _, c := range commands {
			_, out, errs := runCLI(c.args...)
			if strings.ContainsAny(out, "\r\033") {
				t.Errorf("%s: stdout holds terminal controls: %q", c.args[0], out)
			}
			switch {
			case !tty && strings.ContainsAny(errs, "\r\033"):
				t.Errorf("%s, not a terminal: stderr holds terminal controls: %q", c.args[0], errs)
			case tty && !strings.Contains(errs, c.line):
				t.Errorf("%s on a terminal: stderr %q lacks %q", c.args[0], errs, c.line)
			case tty && strings.HasPrefix(errs[strings.LastIndex(errs, "\r\033[K")+len("\r\033[K"):], c.args[0]):
				// What follows the last erase is a message, not the line.
				t.Errorf("%s on a terminal: the line is not erased at the end: %q", c.args[0], errs)
			}
		}
	}
}

// TestProgressOnARealTerminal runs exactly demo in a pseudo-terminal
// (script(1)): the progress line is drawn, and erased before the report;
// exactly verify with stderr sent to a file draws nothing there.
func TestProgressOnARealTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		testenv.Unavailable(t, "script(1), for a pseudo-terminal", err)
	}
	bin := testenv.Binary(t)
	out, err := exec.Command(script, "-qec", bin+" demo --records 2000 --kills 1", "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("demo in a terminal: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"\r\033[Kdemo: pipeline start 1 of 2 running", "\r\033[Kdemo: pipeline start 2 of 2 catching up: 2000 records applied",
		"\r\033[Kdemo: stopping the pipeline (SIGTERM)", "\r\033[K\r\nrecords produced      2000", "exactly once: 0 lost, 0 duplicated"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo in a terminal lacks %q:\n%q", want, s)
		}
	}

	f := newFleetFixture(t)
	errFile := filepath.Join(t.TempDir(), "stderr")
	out, err = exec.Command(script, "-qec", bin+" verify -c "+f.file+" 2>"+errFile, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: no findings") {
		t.Fatalf("verify in a terminal: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(errFile); err != nil || len(b) != 0 {
		t.Errorf("verify with stderr to a file wrote %q there (%v)", b, err)
	}
}

// TestProgressFitsANarrowTerminal: in a terminal of 30 columns every
// progress line verify draws fits in 29 (a longer one wraps, and its
// redraw erases only the last row, leaving the others on the screen).
func TestProgressFitsANarrowTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		testenv.Unavailable(t, "script(1), for a pseudo-terminal", err)
	}
	bin := testenv.Binary(t)
	f := newFleetFixture(t)
	out, err := exec.Command(script, "-qec", "stty cols 30; "+bin+" verify -c "+f.file, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: no findings") {
		t.Fatalf("verify in a terminal: %v\n%s", err, out)
	}
	pieces := strings.Split(string(out), "\r\033[K")
	if len(pieces) < 3 {
		t.Fatalf("verify drew no progress line:\n%q", out)
	}
	for _, p := range pieces[1 : len(pieces)-1] { // each drawn line, up to the next draw
		if n := utf8.RuneCountInString(p); n > 29 || strings.ContainsAny(p, "\r\n") {
			t.Errorf("progress line of %d columns in a terminal of 30: %q", n, p)
		}
	}
}
