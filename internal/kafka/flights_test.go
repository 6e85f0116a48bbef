package kafka

import (
	"math/rand/v2"
	"testing"
	"time"
)

// curves are databases as the limiter sees them: committed records/s at
// each number of transactions in flight (index 1..8).
var curves = map[string][]float64{
	"2 cores beside the pipeline (best 2)": {0, 110e3, 150e3, 120e3, 105e3, 90e3, 80e3, 75e3, 70e3},
	"one writer is best":                   {0, 100e3, 80e3, 60e3, 50e3, 45e3, 40e3, 35e3, 30e3},
	"a 32-core server (best 8)":            {0, 20e3, 39e3, 57e3, 74e3, 90e3, 105e3, 119e3, 132e3},
	"flat from 3 on (fewest wins)":         {0, 50e3, 80e3, 100e3, 101e3, 100e3, 101e3, 100e3, 99e3},
}

// best is the limit with the highest rate, the fewest within 3% of it.
func bestOf(curve []float64) int {
	top := 0.0
	for _, r := range curve {
		top = max(top, r)
	}
	for n := 1; n < len(curve); n++ {
		if curve[n] >= closeEnough*top {
			return n
		}
	}
	return 0
}

// run feeds l windows measured on curve with ±noise, returning the limit
// of each window.
func run(l *flightLimit, curve []float64, windows int, noise float64, rng *rand.Rand) []int {
	var seen []int
	for range windows {
		seen = append(seen, l.cur)
		l.learn(curve[l.cur] * (1 + noise*(2*rng.Float64()-1)))
	}
	return seen
}

func TestFlightLimitFindsTheBestLimit(t *testing.T) {
	for name, curve := range curves {
		t.Run(name, func(t *testing.T) {
			best := bestOf(curve)
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 7))
				l := newFlightLimit(8, false, nil)
				seen := run(l, curve, 60, 0.02, rng)
				// After the first 20 windows (about 6 s), the limit sits at
				// the best most of the time and only probes a neighbour.
				at, off := 0, 0
				for _, n := range seen[20:] {
					switch {
					case n == best:
						at++
					case n < best-1 || n > best+1:
						off++
					}
				}
				if at < 30 || off > 0 {
					t.Fatalf("seed %d: best %d, limits %v", seed, best, seen)
				}
				// The records it committed are within 5% of the best fixed
				// limit's over the same windows (the bar).
				var got, want float64
				for _, n := range seen[20:] {
					got += curve[n]
					want += curve[best]
				}
				if got < 0.95*want {
					t.Fatalf("seed %d: %.0f%% of the best fixed limit's records; limits %v", seed, 100*got/want, seen)
				}
			}
		})
	}
}

// A database that changes (another workload arrives): the limit follows.
func TestFlightLimitFollowsAChangingDatabase(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := newFlightLimit(8, false, nil)
	run(l, curves["a 32-core server (best 8)"], 40, 0.02, rng)
	if l.cur < 7 {
		t.Fatalf("on the large server the limit is %d, want 7-8", l.cur)
	}
	// The same server, now busy with something else: far fewer records
	// at every limit, and more writers only hurt.
	// It must get there within a few windows, by forgetting what the
	// other limits did before, not by wearing each average down in turn.
	seen := run(l, curves["one writer is best"], 30, 0.02, rng)
	for i, n := range seen[12:] {
		if n > 2 {
			t.Fatalf("window %d after the change runs at %d; limits %v", 12+i, n, seen)
		}
	}
}

// Windows in which the flights did not fill the limit teach nothing: the
// database was not what held records back.
func TestFlightLimitLearnsOnlyWhenSaturated(t *testing.T) {
	l := newFlightLimit(8, false, nil)
	t0 := time.Unix(0, 0)
	l.tick(t0, 0)
	now := t0
	for range 100 {
		now = now.Add(50 * time.Millisecond)
		l.tick(now.Add(-25*time.Millisecond), 1)
		l.ended(now, 1000, 0) // one flight at a time, never two
	}
	if l.cur != 2 || l.avg[2] != 0 {
		t.Fatalf("unsaturated windows moved the limit to %d (averages %v)", l.cur, l.avg)
	}
	// Saturated: two flights always in flight, each ending every 50 ms.
	for range 100 {
		now = now.Add(25 * time.Millisecond)
		l.tick(now, 2)
		l.ended(now, 1000, 1)
	}
	if l.avg[2] == 0 {
		t.Fatalf("saturated windows taught nothing: %v", l.avg)
	}
}

func TestFixedFlightLimitIsMaxConns(t *testing.T) {
	var reported [2]int
	l := newFlightLimit(4, true, func(limit, max int) { reported = [2]int{limit, max} })
	now := time.Unix(0, 0)
	for range 200 {
		now = now.Add(10 * time.Millisecond)
		l.tick(now, 4)
		l.ended(now, 1000, 3)
	}
	if got := l.Limit(); got != 4 || reported != [2]int{4, 4} {
		t.Fatalf("fixed limit %d, reported %v; want 4 of 4", got, reported)
	}
}
