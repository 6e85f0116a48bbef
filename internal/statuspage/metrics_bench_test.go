package statuspage

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/exactly/exactly"
)

// BenchmarkMetrics is one /metrics request (gzip, as Go's client and
// Prometheus ask) with 32 partitions assigned: cached (within
// MetricsEvery) and gathered every time (MetricsEvery 1ns).
func BenchmarkMetrics(b *testing.B) {
	for _, c := range []struct {
		name     string
		uncached bool
	}{{"cached", false}, {"gathered", true}} {
		b.Run(c.name, func(b *testing.B) {
			s, _ := server(&testing.T{}, nil)
			if c.uncached {
				s.MetricsEvery = 1
			}
			parts := map[exactly.TP]int64{}
			for i := 0; i < 32; i++ {
				parts[exactly.TP{Topic: "t" + string(rune('a'+i%8)), Partition: int32(i / 8)}] = 0
			}
			s.Metrics.Assigned(parts)
			h := s.Handler()
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.Header.Set("Accept-Encoding", "gzip")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
