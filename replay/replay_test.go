package replay_test

import (
	"errors"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/replay"
)

func tp(p int32) exactly.TP { return exactly.TP{Topic: "t", Partition: p} }

// TestRanges: the range defaults to each partition's next_offset, a range
// beyond next_offset is refused before anything is written, a partition
// with nothing committed in the range is skipped, and a selection where
// nothing is left is refused.
func TestRanges(t *testing.T) {
	next := map[exactly.TP]int64{tp(0): 10, tp(1): 3, tp(2): 20}
	ranges, skipped, err := replay.Ranges([]exactly.TP{tp(0), tp(1), tp(2)}, next, 5, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := []replay.Range{{TP: tp(0), From: 5, To: 10, Next: 10}, {TP: tp(2), From: 5, To: 20, Next: 20}}
	if len(ranges) != 2 || ranges[0] != want[0] || ranges[1] != want[1] {
		t.Errorf("ranges %+v, want %+v", ranges, want)
	}
	if len(skipped) != 1 || skipped[0].TP != tp(1) {
		t.Errorf("skipped %+v, want t[1]", skipped)
	}

	var re *exactly.ReplayRangeError
	if _, _, err := replay.Ranges([]exactly.TP{tp(0), tp(2)}, next, 5, 15); !errors.As(err, &re) || re.Next != 10 || re.To != 15 {
		t.Errorf("--to 15 beyond t[0]'s next_offset 10: %v, want a ReplayRangeError", err)
	}
	var ee *replay.EmptyError
	if _, _, err := replay.Ranges([]exactly.TP{tp(1)}, next, 5, -1); !errors.As(err, &ee) || ee.Selected != 1 {
		t.Errorf("one partition, empty range: %v, want an EmptyError", err)
	}
	if _, skipped, err := replay.Ranges([]exactly.TP{tp(0), tp(1)}, next, 50, -1); !errors.As(err, &ee) || ee.Selected != 2 || len(skipped) != 2 {
		t.Errorf("two partitions, nothing in range: %v (skipped %d), want an EmptyError and both skipped", err, len(skipped))
	}
}
