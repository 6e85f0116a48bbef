package reseed_test

import (
	"errors"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/reseed"
)

var tp = exactly.TP{Topic: "t", Partition: 0}

// TestTargets: earliest is the log start, latest the last stable offset,
// an offset must lie between the two.
func TestTargets(t *testing.T) {
	bounds := map[exactly.TP]exactly.Bounds{tp: {Start: 10, End: 30}}
	latest := map[exactly.TP]int64{tp: 25}
	for _, c := range []struct {
		to     string
		offset int64
		want   int64
	}{{"earliest", -1, 10}, {"latest", -1, 25}, {"12", 12, 12}, {"25", 25, 25}} {
		got, err := reseed.Targets([]exactly.TP{tp}, c.to, c.offset, bounds, latest)
		if err != nil || got[tp] != c.want {
			t.Errorf("--to %s: %v, %v; want %d", c.to, got, err, c.want)
		}
	}
	var re *reseed.RangeError
	for _, off := range []int64{9, 26} {
		if _, err := reseed.Targets([]exactly.TP{tp}, "x", off, bounds, latest); !errors.As(err, &re) {
			t.Errorf("--to %d outside 10..25: %v, want a RangeError", off, err)
		}
	}
}

// TestCheckRewind: moving back on the same topic while the log still
// holds next_offset is refused without --rewind; on a recreated topic
// (other id) or past the log end it is the way out of the halt.
func TestCheckRewind(t *testing.T) {
	bounds := map[exactly.TP]exactly.Bounds{tp: {Start: 0, End: 30}}
	to := map[exactly.TP]int64{tp: 5}
	at := func(next int64, id string) map[exactly.TP]exactly.Position {
		return map[exactly.TP]exactly.Position{tp: {Next: next, TopicID: id}}
	}
	var re *reseed.RewindError
	if err := reseed.CheckRewind([]exactly.TP{tp}, at(20, "a"), bounds, "a", to, false); !errors.As(err, &re) || re.Next != 20 {
		t.Errorf("back from 20 to 5 on the same topic: %v, want a RewindError", err)
	}
	for _, c := range []struct {
		next   int64
		id     string
		rewind bool
	}{{20, "a", true}, {20, "b", false}, {40, "a", false}, {3, "a", false}} {
		if err := reseed.CheckRewind([]exactly.TP{tp}, at(c.next, c.id), bounds, "a", to, c.rewind); err != nil {
			t.Errorf("next %d seeded in %s, rewind %v: %v, want no refusal", c.next, c.id, c.rewind, err)
		}
	}
}
