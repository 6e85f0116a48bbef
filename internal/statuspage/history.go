package statuspage

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/exactly/exactly/internal/metrics"
)

// sample is what the charts plot at one moment: the records this process
// had committed so far (a counter: throughput is its slope) and the lag of
// the partitions it owns.
type sample struct {
	at        time.Time
	committed int64
	lag       int64
	lagKnown  bool
}

// history is a ring of samples covering the last hour, kept in memory: the
// page needs no other service, and a restart starts an empty chart. At the
// default 15 s, an hour is 240 samples (a few kilobytes).
type history struct {
	mu   sync.Mutex
	ring []sample
	head int // next write
	n    int
}

func newHistory(span, every time.Duration) *history {
	return &history{ring: make([]sample, max(int(span/every)+1, 2))}
}

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.head] = s
	h.head = (h.head + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
}

// since returns the samples taken at or after t, oldest first.
func (h *history) since(t time.Time) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]sample, 0, h.n)
	for i := 0; i < h.n; i++ {
		s := h.ring[(h.head-h.n+i+len(h.ring))%len(h.ring)]
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) sampleEvery() time.Duration {
	if s.SampleEvery <= 0 {
		return 15 * time.Second
	}
	return s.SampleEvery
}

// chartSpan is how far back the charts reach.
const chartSpan = time.Hour

func (s *Server) hist() *history {
	s.histOnce.Do(func() { s.history = newHistory(chartSpan, s.sampleEvery()) })
	return s.history
}

// sample records the process's committed records and lag now.
func (s *Server) sample(at time.Time) {
	smp := sample{at: at}
	for _, p := range s.Metrics.Snapshot() {
		smp.committed += p.Committed
		if p.Assigned && p.Lag != metrics.LagUnknown {
			smp.lag += max(p.Lag, 0)
			smp.lagKnown = true
		}
	}
	s.hist().add(smp)
}

// sampleLoop samples every SampleEvery until ctx ends.
func (s *Server) sampleLoop(ctx context.Context) {
	s.sample(time.Now())
	t := time.NewTicker(s.sampleEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

// Chart is one small inline SVG line chart on the page.
type Chart struct {
	ID, Title, Unit string
	// Points is the polyline (x,y in a chartW×chartH box), Area the same
	// closed down to the axis for the fill.
	Points, Area string
	Max, Last    string
	Samples      int
}

const chartW, chartH = 360.0, 64.0

// charts returns the throughput and lag charts over the last hour.
func (s *Server) charts(now time.Time) []Chart {
	from := now.Add(-chartSpan)
	smp := s.hist().since(from)
	var rate, lag []point
	for i, x := range smp {
		if i > 0 {
			prev := smp[i-1]
			if dt := x.at.Sub(prev.at).Seconds(); dt > 0 {
				rate = append(rate, point{x.at, max(float64(x.committed-prev.committed), 0) / dt})
			}
		}
		if x.lagKnown {
			lag = append(lag, point{x.at, float64(x.lag)})
		}
	}
	return []Chart{
		chart("chart-rate", "throughput, last hour", "records/s", rate, from, 1),
		chart("chart-lag", "lag, last hour", "records", lag, from, 0),
	}
}

type point struct {
	at time.Time
	v  float64
}

func chart(id, title, unit string, pts []point, from time.Time, decimals int) Chart {
	c := Chart{ID: id, Title: title, Unit: unit, Samples: len(pts), Max: "0", Last: "–"}
	if len(pts) == 0 {
		return c
	}
	top := 0.0
	for _, p := range pts {
		top = math.Max(top, p.v)
	}
	top = nice(top)
	c.Max = num(top, 0)
	c.Last = num(pts[len(pts)-1].v, decimals)
	var b strings.Builder
	xOf := func(t time.Time) float64 {
		return math.Max(0, math.Min(chartW, t.Sub(from).Seconds()/chartSpan.Seconds()*chartW))
	}
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		y := chartH - p.v/top*chartH
		fmt.Fprintf(&b, "%.1f,%.1f", xOf(p.at), y)
	}
	c.Points = b.String()
	c.Area = fmt.Sprintf("%.1f,%.1f %s %.1f,%.1f", xOf(pts[0].at), chartH, c.Points, xOf(pts[len(pts)-1].at), chartH)
	return c
}

// nice rounds a chart's top up to 1, 2 or 5 times a power of ten.
func nice(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64, decimals int) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
