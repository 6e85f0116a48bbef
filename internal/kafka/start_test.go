package kafka

import (
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// TestSeedFrom: start_from applies to a partition without a row only at
// the pipeline's first start; once it is recorded, or while the ledger
// holds rows without it, such a partition starts at its beginning. Plan
// and the source both decide by it.
func TestSeedFrom(t *testing.T) {
	cfg := &exactly.Config{Source: exactly.SourceConfig{StartFrom: "latest"}}
	first := &exactly.PipelineRow{StartedAt: time.Now()}
	for _, c := range []struct {
		first *exactly.PipelineRow
		rows  bool
		want  string
	}{{nil, false, "latest"}, {first, false, "earliest"}, {nil, true, "earliest"}, {first, true, "earliest"}} {
		if got := seedFrom(cfg, c.first, c.rows); got != c.want {
			t.Errorf("seedFrom(first %v, rows %v) = %s, want %s", c.first != nil, c.rows, got, c.want)
		}
	}
}
