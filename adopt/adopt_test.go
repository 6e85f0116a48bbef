package adopt_test

import (
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/adopt"
)

// TestWriterNameFitsTheLedger: adopt names its checkpoint in the offsets
// rows' writer column, VARCHAR(255) on MySQL and SQL Server (Azure SQL);
// an ADLS URL is easily longer, and the insert would fail there. The end,
// with the micro-batch, is kept.
func TestWriterNameFitsTheLedger(t *testing.T) {
	long := "exactly adopt: spark checkpoint abfss://lake@acmedata.dfs.core.windows.net/" + strings.Repeat("teams/sales/streams/", 12) + "orders, micro-batch 41"
	got := adopt.WriterName(long)
	if n := len([]rune(got)); n != 255 || !strings.HasSuffix(got, "orders, micro-batch 41") || !strings.HasPrefix(got, "exactly adopt: …") {
		t.Errorf("WriterName: %d characters: %s", n, got)
	}
	if short := "exactly adopt: consumer group g"; adopt.WriterName(short) != short {
		t.Errorf("WriterName changed a short name: %s", adopt.WriterName(short))
	}
}

// TestDecide walks the decision table: a ledger row is the truth (equal:
// nothing to do; different: refused), an offset beyond the log end or
// below the log start is refused, anything else is seeded.
func TestDecide(t *testing.T) {
	tp := func(p int32) exactly.TP { return exactly.TP{Topic: "t", Partition: p} }
	a := &adopt.Adoption{Source: "consumer group g", Want: map[exactly.TP]int64{
		tp(0): 5, tp(1): 5, tp(2): 50, tp(3): 1, tp(4): 7,
	}}
	bounds := map[exactly.TP]exactly.Bounds{}
	for p := int32(0); p < 5; p++ {
		bounds[tp(p)] = exactly.Bounds{Start: 2, End: 10}
	}
	a.Decide(bounds, map[exactly.TP]int64{tp(0): 5, tp(1): 3})
	want := []struct{ ledger, action string }{
		{"5", "nothing: already there"},
		{"3", "REFUSED"},
		{"(no row)", "REFUSED"},
		{"(no row)", "REFUSED"},
		{"(no row)", "seed next_offset 7 (3 records to apply)"},
	}
	if len(a.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(a.Rows), len(want), a.Rows)
	}
	for i, w := range want {
		if r := a.Rows[i]; r.TP != tp(int32(i)) || r.Ledger != w.ledger || r.Action != w.action || r.Bounds != "2..10" {
			t.Errorf("row %d: %+v, want ledger %q action %q", i, r, w.ledger, w.action)
		}
	}
	if len(a.Seed) != 1 || a.Seed[0] != tp(4) {
		t.Errorf("seed %v, want [t[4]]", a.Seed)
	}
	for i, frag := range []string{"the ledger already has next_offset 3, consumer group g says 5", "ends at 10", "offsets 1..1 were deleted by retention"} {
		if i >= len(a.Problems) || !strings.Contains(a.Problems[i], frag) {
			t.Errorf("problem %d: %q, want it to say %q", i, a.Problems, frag)
		}
	}
}
