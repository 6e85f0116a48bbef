package plan_test

import (
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/plan"
)

// TestHalt: a partition halts at assignment when its topic has another id
// than its row was seeded in, when its next_offset is beyond the log end,
// or below the log start; not inside the log, nor when an id is unknown.
func TestHalt(t *testing.T) {
	tp := exactly.TP{Topic: "t", Partition: 0}
	b := exactly.Bounds{Start: 10, End: 20}
	for _, c := range []struct {
		next          int64
		seededIn, now string
		want          string
	}{
		{15, "a", "a", ""},
		{15, "", "b", ""},
		{20, "a", "", ""},
		{10, "a", "b", "topic recreated: t[0] has topic id b, the offsets row was seeded in a; next_offset 10 (lag 10)"},
		{25, "", "", "offsets beyond the log end: next_offset 25, the log ends at 20 (lag -5)"},
		{4, "", "", "offsets 4..9 were deleted before they were applied (the log starts at 10)"},
	} {
		if got := plan.Halt(tp, c.next, b, c.seededIn, c.now); got != c.want {
			t.Errorf("Halt(next %d, seeded in %q, now %q) = %q, want %q", c.next, c.seededIn, c.now, got, c.want)
		}
	}
	if !strings.Contains(plan.Halt(tp, 0, exactly.Bounds{Start: 1, End: 1}, "", ""), "deleted") {
		t.Error("next_offset 0 below log start 1 does not halt")
	}
}

// TestDescribeKey: an append rule has no key; a key is read from the
// record key, the value, or the record key when it is a JSON object.
func TestDescribeKey(t *testing.T) {
	for _, c := range []struct {
		r    exactly.TableRule
		want string
	}{
		{exactly.TableRule{Mode: "append", Key: []string{"id"}}, "none (append)"},
		{exactly.TableRule{Mode: "upsert", Key: []string{"a", "b"}, KeyFrom: "value"}, "[a, b] from the value"},
		{exactly.TableRule{Mode: "upsert", KeyFrom: "record_key"}, "the record key's fields from the record key"},
		{exactly.TableRule{Mode: "upsert", Key: []string{"id"}}, "[id] from the record key when it is a JSON object, else from the value"},
	} {
		if got := plan.DescribeKey(&c.r); got != c.want {
			t.Errorf("DescribeKey(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}
