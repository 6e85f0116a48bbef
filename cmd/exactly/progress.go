package main

import (
	prog "github.com/exactly/exactly/internal/progress"
)

// progress draws a one-line progress display on stderr, only when stderr
// is a terminal, at most every 200 ms (internal/progress). Elsewhere it
// prints nothing.
type progress struct{ *prog.Bar }

func newProgress(g *globals) *progress {
	if !g.tty {
		return &progress{nil} // a nil Bar draws nothing
	}
	bar := prog.Always(g.stderr, "", 0)
	bar.SetWidth(func() int { return prog.TerminalWidth(g.ttyOut) })
	return &progress{bar}
}
