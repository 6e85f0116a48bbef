package statuspage

import (
	"time"

	"github.com/exactly/exactly"
)

// deadLetter is a dead letter as the page shows it: key and value cut
// short (or hidden, see Server.ShowData).
type deadLetter struct {
	exactly.TP
	Offset           int64
	BatchID          string
	Key, Value       string
	KeyLen, ValueLen int // bytes, before Key and Value are cut short
	Error, CreatedAt string
}

func newDeadLetter(d *exactly.DeadLetterRow) deadLetter {
	r := &d.Record
	return deadLetter{TP: exactly.TP{Topic: r.Topic, Partition: r.Partition}, Offset: r.Offset, BatchID: d.BatchID,
		Key: cut(string(r.Key), 80), Value: cut(string(r.Value), 200), KeyLen: len(r.Key), ValueLen: len(r.Value),
		Error: d.Error, CreatedAt: stamp(d.CreatedAt)}
}

// stamp is how the page shows a ledger time; the zero time (NULL) is
// blank.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
