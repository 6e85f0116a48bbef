package exactly

import (
	"context"
	"time"
)

// PlanForBench runs batches through what a flight does before its
// transaction (route, decode, range hash, collapse by key, and the rows
// handed to the dialect) with no database: the record-path benchmarks
// (recordpath_bench_test.go) measure the pipeline's own CPU per format.
// d, when not nil, decides key identities as it does in the sink.
func PlanForBench(ctx context.Context, cfg *Config, d Dialect, newDecoder func(*TableRule) (Decoder, error), tables map[string]*Table, batches []*PartitionBatch) ([]*TableWrite, error) {
	s := &Sink{cfg: cfg, d: d, decode: newDecoder, tables: tables, decs: map[*TableRule]Decoder{}}
	for _, b := range batches {
		if err := s.prepare(ctx, b); err != nil {
			return nil, err
		}
	}
	writes, err := s.plan(ctx, nil, batches, tables)
	out := make([]*TableWrite, len(writes))
	for i, w := range writes {
		out[i] = w.TableWrite
	}
	return out, err
}

// SetStaleAfter sets how long a description is trusted while records
// carry fields it has no column for (see forgetStale), until restore.
func SetStaleAfter(d time.Duration) (restore func()) {
	old := staleAfter
	staleAfter = d
	return func() { staleAfter = old }
}
