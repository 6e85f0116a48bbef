package exactly

import (
	"testing"
	"time"
)

// Regression: a version like 1e999999999 (a JSON number a record may
// carry) made compareVersions expand it with big.Rat, stalling the batch
// for minutes. Found by FuzzDebezium's stalls.
func TestCompareVersionsRefusesHugeExponents(t *testing.T) {
	start := time.Now()
	if got := compareVersions(Decimal("1e999999999"), Decimal("2")); got != -1 {
		t.Errorf("got %d, want -1 (compared as text)", got)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	for _, c := range []struct {
		a, b any
		want int
	}{
		{int64(2), Decimal("10"), -1},
		{Decimal("1e3"), int64(999), 1},
		{Decimal("1.50"), Decimal("1.5"), 0},
		{nil, int64(1), -1},
		{time.Unix(2, 0), time.Unix(1, 0), 1},
		{"a", "b", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%v, %v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
