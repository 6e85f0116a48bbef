package exactly

import "time"

// Observer is told what a pipeline does, for metrics and the status page.
// The source calls it from its poll loop and from the consumer group's
// callbacks: implementations must be cheap, must not block, and must be
// safe for concurrent use. It only watches; nothing it does can change
// what is committed.
type Observer interface {
	// Assigned is called when partitions are assigned, with the stored
	// next_offset each one resumes from.
	Assigned(next map[TP]int64)
	// Revoked is called when partitions are revoked or lost.
	Revoked(tps []TP)
	// Fetched is called after each poll for every partition in it: the
	// records taken into the buffer and the partition's high watermark
	// (-1 when unknown).
	Fetched(tp TP, records int, highWatermark int64)
	// Committed is called after each Sink.Commit with its outcomes, how
	// long the call took, and how long the oldest record of the flight had
	// waited since it was fetched.
	Committed(outcomes []Outcome, took, waited time.Duration)
	// Halted is called when a partition stops (on_error: fail, offsets
	// lost to retention) until the process restarts.
	Halted(tp TP, err error)
	// Failed is called for every error the pipeline meets and survives:
	// system is "db" or "kafka", kind a short stable word ("connection",
	// "conflict", "data", "other", "fetch", "offset_out_of_range", …).
	Failed(system, kind string, err error)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Assigned(map[TP]int64)                             {}
func (NopObserver) Revoked([]TP)                                      {}
func (NopObserver) Fetched(TP, int, int64)                            {}
func (NopObserver) Committed([]Outcome, time.Duration, time.Duration) {}
func (NopObserver) Halted(TP, error)                                  {}
func (NopObserver) Failed(string, string, error)                      {}

var _ Observer = NopObserver{}

func (k ErrorKind) String() string {
	switch k {
	case ErrConflict:
		return "conflict"
	case ErrConnection:
		return "connection"
	case ErrData:
		return "data"
	}
	return "other"
}
