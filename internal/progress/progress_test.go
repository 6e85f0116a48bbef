package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDrawsOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "verify", 10)
	b.Add(5) // a nil bar: nothing, no panic
	b.Note("x")
	b.Done()
	if buf.Len() != 0 {
		t.Errorf("drew %q on a buffer", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if New(f, "verify", 10) != nil || IsTerminal(f) {
		t.Error("a regular file was taken for a terminal")
	}
}

func TestLineShowsFractionRateAndETA(t *testing.T) {
	var buf bytes.Buffer
	b := Always(&buf, "replay", 1000)
	clock := b.start
	b.now = func() time.Time { return clock }
	b.Note("orders[3]") // drawn: the first draw is never rate-limited
	clock = clock.Add(10 * time.Second)
	b.Add(250)
	got := buf.String()
	for _, want := range []string{"\r\033[K", "replay [######..................]  25%  250/1000", "25.0/s", "eta 30s", "orders[3]"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
	// Redraws are rate-limited: another Add within 200 ms draws nothing.
	n := buf.Len()
	b.Add(1)
	if buf.Len() != n {
		t.Error("redrew within 200 ms")
	}
	clock = clock.Add(time.Second)
	b.Add(1)
	if buf.Len() == n {
		t.Error("did not redraw after 200 ms")
	}
	b.Done()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Error("Done did not clear the line")
	}
	n = buf.Len()
	b.Add(100)
	if buf.Len() != n {
		t.Error("drew after Done")
	}
}

func TestUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	b := Always(&buf, "dedupe", 0)
	clock := b.start.Add(2 * time.Second)
	b.now = func() time.Time { return clock }
	b.Set(50000)
	if got := buf.String(); !strings.Contains(got, "dedupe  50000  25.0k/s") || strings.Contains(got, "eta") {
		t.Errorf("unknown total: %q", got)
	}
}

func TestShowDrawsAFreeFormLine(t *testing.T) {
	var buf bytes.Buffer
	b := Always(&buf, "", 0)
	b.Show(false, "verify: %d/%d partitions", 1, 4)
	b.Show(false, "verify: %d/%d partitions", 2, 4) // within 200 ms: skipped
	b.Show(true, "verify: %d/%d partitions", 4, 4)  // final: drawn
	if got, want := buf.String(), "\r\033[Kverify: 1/4 partitions\r\033[Kverify: 4/4 partitions"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDrawsOnARealTerminal runs only inside a terminal (EXACTLY_TEST_TTY=1,
// e.g. the test binary started in tmux): New must draw there.
func TestDrawsOnARealTerminal(t *testing.T) {
	if os.Getenv("EXACTLY_TEST_TTY") != "1" {
		t.Skip("set EXACTLY_TEST_TTY=1 and run the test binary in a terminal")
	}
	b := New(os.Stderr, "tty", 3)
	if b == nil {
		t.Fatal("stderr is a terminal but New returned nil")
	}
	for i := 0; i < 3; i++ {
		b.Note("step %d", i)
		b.Add(1)
		time.Sleep(250 * time.Millisecond)
	}
	b.Show(true, "tty: drawn on a terminal")
	time.Sleep(500 * time.Millisecond)
}

func TestClearAndSameLine(t *testing.T) {
	var buf bytes.Buffer
	b := Always(&buf, "", 0)
	b.Show(true, "replay 1/2")
	b.Show(true, "replay 1/2") // the same line: not drawn again
	b.Clear()
	b.Show(true, "replay 1/2") // after a Clear it is
	b.Done()
	if got, want := buf.String(), "\r\033[Kreplay 1/2\r\033[K\r\033[Kreplay 1/2\r\033[K"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestLongLinesAreCutToTheTerminal: a line wider than the terminal wraps,
// and the carriage return and erase-line of the next draw clear only its
// last row: every redraw left a row of the old line on the screen.
func TestLongLinesAreCutToTheTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := Always(&buf, "", 0)
	b.SetWidth(func() int { return 20 })
	b.Show(true, "verify: 1/800 partitions (erp.sales.dbo.order_lines[0])")
	b.Show(true, "short")
	b.Done()
	if got, want := buf.String(), "\r\033[Kverify: 1/800 part…\r\033[Kshort\r\033[K"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
