// Package progress draws a one-line progress display for long commands
// (replay, verify, dedupe, bench). Its rule: it draws only when the writer
// is a terminal, so logs, pipes, files and CI output never see a carriage
// return or an escape code, and it never blocks the work it reports on.
//
// Use:
//
//	bar := progress.New(os.Stderr, "verify", int64(len(partitions)))
//	defer bar.Done()
//	for _, tp := range partitions {
//		bar.Note(tp.String())
//		... work ...
//		bar.Add(1)
//	}
//
// A command that words its own line calls bar.Show(final, format, args...)
// instead of Add/Note. A nil *Bar is valid and draws nothing, so callers may pass one around
// unconditionally.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"

	"github.com/exactly/exactly/internal/secret"
)

// Bar is one progress line. Its methods are safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	total   int64
	done    int64
	note    string
	start   time.Time
	last    time.Time
	drawn   bool
	every   time.Duration
	now     func() time.Time
	stopped bool
	text    string // set by Show: drawn instead of the computed line
	shown   string // the line on the screen
	width   func() int
}

// SetWidth tells the bar how many columns the terminal has (0: unknown),
// asked at each draw: a longer line is cut to fit. A line that wraps
// cannot be erased by the carriage return and erase-line that redraw it,
// so every redraw of a long line (a long topic name) left a row behind.
func (b *Bar) SetWidth(width func() int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.width = width
}

// TerminalWidth returns the columns of the terminal w is, 0 when w is not
// a terminal or does not say.
func TerminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// fit cuts line to at most width-1 columns (the last column left free:
// some terminals wrap on writing it), ending it with "…".
func fit(line string, width int) string {
	if width < 2 || utf8.RuneCountInString(line) < width {
		return line
	}
	r := []rune(line)
	return string(r[:width-2]) + "…"
}

// New returns a bar for total units of work (0 when the total is not
// known) that draws on w only when w is a terminal.
func New(w io.Writer, label string, total int64) *Bar {
	if !IsTerminal(w) {
		return nil
	}
	b := Always(w, label, total)
	b.width = func() int { return TerminalWidth(w) }
	return b
}

// Always returns a bar that draws on w whatever w is (tests, a forced
// --progress flag).
func Always(w io.Writer, label string, total int64) *Bar {
	now := time.Now()
	return &Bar{w: w, label: label, total: total, start: now, every: 200 * time.Millisecond, now: time.Now}
}

// IsTerminal reports whether w is a terminal: a file the terminal ioctl
// answers for (not merely a character device: /dev/null is one).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

// Add counts n more units done and redraws at most every 200 ms.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.drawLocked(false)
}

// Set sets the units done.
func (b *Bar) Set(done int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.drawLocked(false)
}

// SetTotal changes the total, when it becomes known.
func (b *Bar) SetTotal(total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
}

// Note sets the text shown after the numbers (what is being worked on).
func (b *Bar) Note(format string, args ...any) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.note = fmt.Sprintf(format, args...)
	b.drawLocked(false)
}

// Show draws a free-form line instead of the computed one, for commands
// that count in their own words ("verify: 12/40 partitions, …"). final
// draws it whatever the time since the last draw.
func (b *Bar) Show(final bool, format string, args ...any) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text = fmt.Sprintf(format, args...)
	b.drawLocked(final)
}

// Clear erases the line so the command can print a result line; the next
// Show or Add draws again.
func (b *Bar) Clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn && !b.stopped {
		fmt.Fprint(b.w, secret.ClearLine)
		b.drawn = false
	}
}

// Done clears the line; the command then prints its result on a clean
// line. Further calls draw nothing.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn && !b.stopped {
		fmt.Fprint(b.w, secret.ClearLine)
	}
	b.stopped = true
}

func (b *Bar) drawLocked(force bool) {
	now := b.now()
	if b.stopped || (!force && now.Sub(b.last) < b.every) {
		return
	}
	b.last = now
	line := b.text
	if line == "" {
		line = b.lineLocked(now)
	}
	if b.width != nil {
		line = fit(line, b.width())
	}
	if b.drawn && line == b.shown {
		return // the same line again: nothing to redraw
	}
	fmt.Fprint(b.w, secret.ClearLine+line)
	b.drawn, b.shown = true, line
}

// lineLocked renders "label [#####.....]  45%  450/1000  12.3/s  eta 45s  note".
func (b *Bar) lineLocked(now time.Time) string {
	var sb strings.Builder
	sb.WriteString(b.label)
	elapsed := now.Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.done) / elapsed
	}
	if b.total > 0 {
		frac := min(float64(b.done)/float64(b.total), 1)
		const width = 24
		full := int(frac * width)
		fmt.Fprintf(&sb, " [%s%s] %3.0f%%  %d/%d", strings.Repeat("#", full), strings.Repeat(".", width-full), frac*100, b.done, b.total)
	} else {
		fmt.Fprintf(&sb, "  %d", b.done)
	}
	fmt.Fprintf(&sb, "  %s/s", human(rate))
	if b.total > 0 && rate > 0 && b.done < b.total {
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		fmt.Fprintf(&sb, "  eta %s", eta.Round(time.Second))
	}
	if b.note != "" {
		sb.WriteString("  " + b.note)
	}
	return sb.String()
}

func human(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.1fM", f/1e6)
	case f >= 1e4:
		return fmt.Sprintf("%.1fk", f/1e3)
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}
