package secret

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"
)

// Handler scrubs every record before the handler it wraps sees it: the
// message and every attribute, errors and Stringers included, at every
// level. A driver error that quotes a DSN cannot reach a log.
type Handler struct{ next slog.Handler }

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(Attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	scrubbed := make([]slog.Attr, len(as))
	for i, a := range as {
		scrubbed[i] = Attr(a)
	}
	return &Handler{h.next.WithAttrs(scrubbed)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{h.next.WithGroup(name)} }

// Attr returns a with its value scrubbed.
func Attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = Attr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Error(x))
		case fmt.Stringer:
			return slog.String(a.Key, Scrub(x.String()))
		default:
			if s := fmt.Sprint(x); Scrub(s) != s {
				return slog.String(a.Key, Scrub(s))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Writer scrubs what is written through it, one Write at a time: fmt,
// encoding/json and tabwriter write a value whole, so a DSN is never split
// over two writes. It is the backstop for command output (text and JSON).
//
// It also shows control characters as escapes (ESC as \x1b): text from
// topics (record values and keys in stored errors and dead letters, topic
// names) is untrusted and reaches an operator's terminal through status,
// verify and redrive, where an escape sequence could rewrite the screen,
// hide a line or set the window title. Newlines and tabs pass, and so does
// ClearLine at the start of a write, the progress line's own control.
type Writer struct{ W io.Writer }

// ClearLine returns the cursor to the start of the line and clears it
// (internal/progress writes it before each update).
const ClearLine = "\r\x1b[K"

// Write implements io.Writer.
func (w Writer) Write(p []byte) (int, error) {
	s := string(p)
	lead := ""
	if strings.HasPrefix(s, ClearLine) {
		lead, s = ClearLine, s[len(ClearLine):]
	}
	if _, err := io.WriteString(w.W, lead+Inert(Scrub(s))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Inert returns s with its control characters but newline and tab written
// as escapes (\x1b, \x0d, \u009b), so that printing it cannot move the
// cursor or send a terminal command.
func Inert(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !isControl(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return r != '\n' && r != '\t' && unicode.IsControl(r)
}
