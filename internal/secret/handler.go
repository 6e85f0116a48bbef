package secret

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
type Writer struct{ W io.Writer }

// Write implements io.Writer.
func (w Writer) Write(p []byte) (int, error) {
	s := Scrub(string(p))
	if _, err := io.WriteString(w.W, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
