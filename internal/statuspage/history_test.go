package statuspage

import (
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// TestChartsKeepTheLastHour: the sampler's ring keeps an hour of samples
// and forgets older ones; throughput is the committed counter's slope
// between samples and lag the owned partitions' sum.
func TestChartsKeepTheLastHour(t *testing.T) {
	s, _ := server(t, nil)
	s.SampleEvery = 30 * time.Second
	tp := exactly.TP{Topic: "orders", Partition: 0}
	s.Metrics.Assigned(map[exactly.TP]int64{tp: 0})
	start := time.Now().Add(-3 * time.Hour)
	next := int64(0)
	for k := 0; k < 3*120; k++ { // three hours, one sample per 30 s
		recs := make([]*exactly.Record, 10*(k%2)+30)
		for i := range recs {
			recs[i] = &exactly.Record{}
		}
		s.Metrics.Committed([]exactly.Outcome{{Committed: true, Batch: &exactly.PartitionBatch{Topic: tp.Topic, From: next, To: next + int64(len(recs)), Records: recs}}}, 0, 0)
		next += int64(len(recs))
		s.Metrics.Fetched(tp, 0, next+int64(k))
		s.sample(start.Add(time.Duration(k) * 30 * time.Second))
	}
	now := start.Add(3*120*30*time.Second - 30*time.Second)
	smp := s.hist().since(now.Add(-chartSpan))
	if len(smp) != 121 || smp[len(smp)-1].lag != 359 || !smp[0].at.Equal(now.Add(-chartSpan)) {
		t.Fatalf("the last hour holds %d samples (want 121), last lag %d (want 359), first at %s", len(smp), smp[len(smp)-1].lag, smp[0].at)
	}
	if len(s.hist().ring) != 121 {
		t.Errorf("the ring holds %d samples, want an hour's 121", len(s.hist().ring))
	}
	c := s.charts(now)
	// 30 or 40 records per 30 s: 1.0 or 1.3 records/s; the last sample
	// (k=359, odd) committed 40.
	if c[0].ID != "chart-rate" || c[0].Last != "1.3" || c[0].Max != "2" || c[0].Samples != 120 {
		t.Errorf("throughput chart: %+v", c[0])
	}
	if c[1].ID != "chart-lag" || c[1].Last != "359" || c[1].Max != "500" || strings.Count(c[1].Points, ",") != 121 {
		t.Errorf("lag chart: last %s, top %s, %d points", c[1].Last, c[1].Max, strings.Count(c[1].Points, ","))
	}
}
