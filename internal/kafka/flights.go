package kafka

import (
	"math"
	"sync"
	"time"
)

// flightLimit chooses how many flights may be in flight at once, between
// 1 and sink.max_conns, from what the database does: a 2-core database
// beside the pipeline writes fastest with 1 or 2 transactions at a time
// (more only contend for its cores), a 32-core Azure SQL with 8. One
// default cannot suit both, so the limit climbs the hill of committed
// records/s (the way .NET's thread pool sizes itself):
//
//   - Time is cut into windows of at least minWindow and a few flights.
//     A window counts only when the pipeline was saturated through it:
//     flights in flight at the limit at least 90% of the time. Otherwise
//     the database has room to spare, nothing is learnt, and the limit
//     steps up toward max_conns: more, smaller flights commit each wave of
//     due records sooner (the latency of 800 tables at a few thousand
//     records/s), and a database they would crowd saturates the flights
//     again, which brings the limit back down. A window the flights
//     fill less than half the time closes after one flight per slot (a
//     wave of due records), so the climb takes a batch.interval per step,
//     not three.
//
//   - A saturated window's rate (records committed per second) updates an
//     average kept for the limit it ran at: the mean of its first
//     averageOver windows, then a moving average.
//
//   - The limit moves one step at a time toward the best limit measured:
//     among those whose average is within 3% of the highest, the smallest
//     whose flights' oldest records waited (from fetch to commit) at most
//     20% longer than at the limit that waited least: fewer connections
//     for the same rate and about the same latency leave the database
//     room. (When the pipeline keeps up with Kafka every limit commits the
//     same records/s, and only latency tells them apart: 800 tables at
//     3,000 records/s wait less in four flights than in two.) The highest
//     average is taken with doubt: less the fewer windows it holds and
//     the more a window's rate strays from its limit's average (see
//     doubt), since the climb leaves most limits after one window and the
//     luckiest of them would otherwise set the bar for good. A neighbour
//     of the best never measured is tried first, and every probeEvery
//     windows at the best a neighbour is measured again, so the limit
//     follows a database whose load changes.
//
//   - A window whose rate falls below half the average of its limit means
//     the workload changed (other tables, a database under other load): the
//     averages of the other limits are forgotten and measured anew.
//
//   - The limit starts at max_conns: the start's first flights (800
//     tables' first records, due at once) commit soonest spread over every
//     connection, and a database max_conns crowds saturates the flights,
//     which brings the limit down. It started at 2 and stepped up one
//     batch.interval at a time, ~3.5 s to max_conns 4, and the start's
//     records were the p99 of a 30 s run (issue 20).
//
//   - The first window is not measured: it holds the start (tables
//     created, fetches ramping up, caches cold), whose rate says nothing
//     of the limit.
//
//   - A flight that failed while others were in flight brings the limit
//     down to those others, which become its roof (see failedBeside): a
//     database refusing connections past what it accepts fails the
//     flights past it, and Run's backoff after each failure leaves the
//     windows unsaturated, which only ever stepped the limit up.
//
// Failed flights commit no records and so count against the limit they
// ran at. With sink.flights: fixed the limit is sink.max_conns.
type flightLimit struct {
	mu    sync.Mutex
	max   int
	fixed bool
	cur   int

	// the window being measured
	start    time.Time
	last     time.Time // the last tick
	records  int64
	done     int     // flights ended in the window
	occupied float64 // ∫ min(in flight, cur) dt, in seconds
	waited   float64 // the flights' oldest records' waits, summed, in seconds

	avg        []float64 // average rate per limit (index: limit); 0 = not measured
	lat        []float64 // average wait of a flight's oldest record per limit, seconds
	count      []int     // saturated windows measured per limit since its average was last forgotten
	spread     float64   // mean squared relative deviation of a window's rate from its limit's average
	spreadN    int       // windows that measured spread
	sinceProbe int
	warm       bool // the first window, the start's, has closed
	probeUp    bool
	// roof (0: none) is the most flights in flight when one failed
	// beside them (see failedBeside): the limit steps up to it freely,
	// past it once every roofEvery windows that would have.
	roof, roofEvery, atRoof int
	onChange                func(limit, max int)
	reportedOnce            bool
}

const (
	minWindow   = 300 * time.Millisecond
	probeEvery  = 8
	saturated   = 0.9
	idle        = 0.5
	closeEnough = 0.97
	slowerOK    = 1.2

	// averageOver: a limit's average is the mean of its first
	// averageOver windows, then moves a 1/averageOver step toward each
	// new window's rate.
	averageOver = 4
	// spreadOver: the spread is the mean of the windows' squared
	// relative deviations from their limit's average, the first
	// spreadOver's, then a moving average.
	spreadOver = 16
	// doubtSpreads: how many spreads (over √windows) below its average
	// a limit's rate is taken to be when it sets the rate to be close to.
	doubtSpreads = 2
	// lowestBar: the limit chosen commits at least this share of the
	// highest average rate, doubt or not (the bar: adaptive
	// within 5% of the best fixed limit).
	lowestBar = 0.95
)

// newFlightLimit starts the limit at max_conns, adaptive or fixed.
func newFlightLimit(maxConns int, fixed bool, onChange func(limit, max int)) *flightLimit {
	maxConns = max(maxConns, 1)
	l := &flightLimit{max: maxConns, fixed: fixed, cur: maxConns, avg: make([]float64, maxConns+1),
		lat: make([]float64, maxConns+1), count: make([]int, maxConns+1), onChange: onChange}
	return l
}

// Limit is how many flights may be in flight now.
func (l *flightLimit) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.report()
	return l.cur
}

// report tells onChange the limit the first time it is asked for.
func (l *flightLimit) report() {
	if !l.reportedOnce && l.onChange != nil {
		l.reportedOnce = true
		l.onChange(l.cur, l.max)
	}
}

// tick accounts the time since the last tick with inFlight flights in
// flight. The Run loop calls it on every turn.
func (l *flightLimit) tick(now time.Time, inFlight int) {
	if l.fixed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start, l.last = now, now
		return
	}
	if dt := now.Sub(l.last).Seconds(); dt > 0 {
		l.occupied += dt * float64(min(inFlight, l.cur))
	}
	l.last = now
}

// ended accounts a flight that ended, having committed records whose
// oldest had waited since it was fetched, and closes the window when it is
// long enough.
func (l *flightLimit) ended(now time.Time, records int64, waited time.Duration, inFlight int) {
	if l.fixed {
		return
	}
	l.tick(now, inFlight+1) // it was in flight until now
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records += records
	l.waited += waited.Seconds()
	l.done++
	elapsed := now.Sub(l.start)
	if elapsed < minWindow || l.done < l.cur {
		return
	}
	secs := elapsed.Seconds()
	occupancy := l.occupied / (secs * float64(l.cur))
	if l.done < 2*l.cur+2 && occupancy >= idle {
		// A rate wants a few flights per limit; a window the flights
		// left plainly idle (a wave of due records every batch.interval)
		// steps up after one wave.
		return
	}
	full := occupancy >= saturated
	rate, wait := float64(l.records)/secs, l.waited/float64(l.done)
	l.start, l.last, l.records, l.done, l.occupied, l.waited = now, now, 0, 0, 0, 0
	if !l.warm {
		// The first window holds the start: tables created, fetches
		// ramping up, caches cold. It says nothing of the limit.
		l.warm = true
		return
	}
	if l.roof > 0 && l.cur > l.roof {
		// A window above the roof closed without a failure (one
		// restarts the window): the database takes more flights again.
		l.roof, l.roofEvery, l.atRoof = 0, 0, 0
	}
	if !full {
		if l.cur < l.max && l.mayRise() {
			l.set(l.cur + 1)
		}
		return
	}
	l.learn(rate, wait)
}

// failedBeside takes a flight that failed while running others were still
// in flight. A database refusing connections past what it accepts at once
// (max_connections or a role's CONNECTION LIMIT, crowded by other
// sessions) fails the flights past it; Run backs off after each failure,
// so the windows were never saturated, the limit stepped up and never
// down, and every wave failed a flight: with a role limited to 3
// connections and max_conns 8 the limit stayed 8 all run, 15-17 batches
// failed per 300,000 records, 10.3-14.8 s against 8.4 s at max_conns 3.
// The limit comes down to running, its roof from now on: past it only
// once every roofEvery windows that would have stepped up, roofEvery
// doubling (from probeEvery to 64) with each failure, so a probe that
// fails costs one failed flight ever more rarely, and one window closed
// above the roof lifts it. The window holding the failure is not
// measured. A flight failing alone (a database down, a batch timed out)
// says nothing of how many flights the database takes, and one failing
// beside others for another reason (a deadlock, a lost connection) only
// lowers the limit until a window above it goes well.
func (l *flightLimit) failedBeside(now time.Time, running int) {
	if l.fixed || running < 1 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roof, l.atRoof = running, 0
	l.roofEvery = min(max(2*l.roofEvery, probeEvery), 64)
	l.start, l.last, l.records, l.done, l.occupied, l.waited = now, now, 0, 0, 0, 0
	if l.cur > running {
		l.set(running)
	}
}

// mayRise says whether the limit may step up now: below the roof always,
// at or past it once every roofEvery windows that asked.
func (l *flightLimit) mayRise() bool {
	if l.roof == 0 || l.cur < l.roof {
		return true
	}
	l.atRoof++
	if l.atRoof < l.roofEvery {
		return false
	}
	l.atRoof = 0
	return true
}

// set moves the limit to n and says so.
func (l *flightLimit) set(n int) {
	l.cur = n
	if l.onChange != nil {
		l.onChange(n, l.max)
	}
}

// learn takes a saturated window's rate and mean wait at the current
// limit and moves the limit.
func (l *flightLimit) learn(rate, wait float64) {
	cur := l.cur
	switch a := l.avg[cur]; {
	case a == 0:
		l.avg[cur], l.lat[cur], l.count[cur] = rate, wait, 1
	case rate < a/2:
		// The workload changed: what the other limits did is stale.
		clear(l.avg)
		clear(l.lat)
		clear(l.count)
		l.avg[cur], l.lat[cur], l.count[cur] = rate, wait, 1
	default:
		d := (rate - a) / a
		l.spreadN++
		l.spread += (d*d - l.spread) / float64(min(l.spreadN, spreadOver))
		l.count[cur]++
		w := 1 / float64(min(l.count[cur], averageOver))
		l.avg[cur] += w * (rate - a)
		l.lat[cur] += w * (wait - l.lat[cur])
	}
	best := l.best()
	next := best
	switch {
	case best < l.max && l.avg[best+1] == 0:
		next = best + 1
	case best > 1 && l.avg[best-1] == 0:
		next = best - 1
	case cur == best:
		l.sinceProbe++
		if l.sinceProbe >= probeEvery {
			l.sinceProbe = 0
			l.probeUp = !l.probeUp
			switch {
			case l.probeUp && best < l.max:
				next = best + 1
			case best > 1:
				next = best - 1
			case best < l.max:
				next = best + 1
			}
		}
	}
	switch { // one step at a time
	case next > cur && l.mayRise():
		next = cur + 1
	case next > cur:
		next = cur
	case next < cur:
		next = cur - 1
	}
	if next != cur {
		l.set(next)
	}
}

// best is, of the limits whose average rate is within closeEnough of the
// highest measured, the smallest whose wait is within slowerOK of the
// least wait among them. The current limit when none is measured.
func (l *flightLimit) best() int {
	top := 0.0
	for n, a := range l.avg {
		top = max(top, a*l.doubt(n))
	}
	if top == 0 {
		return l.cur
	}
	quickest := -1.0
	for n := 1; n <= l.max; n++ {
		if l.avg[n] >= closeEnough*top && (quickest < 0 || l.lat[n] < quickest) {
			quickest = l.lat[n]
		}
	}
	for n := 1; n <= l.max; n++ {
		if l.avg[n] >= closeEnough*top && l.lat[n] <= slowerOK*quickest {
			return n
		}
	}
	return l.cur
}

// doubt is the share of limit n's average rate that best trusts as the
// rate to come within closeEnough of: 1 less doubtSpreads times the
// spread of a window's rate about its limit's average, over the square
// root of the windows behind n's average. A limit measured in one window
// the climb then left keeps that window's luck for good; without the
// doubt, the luckiest of the five limits measured once on the way down a
// flat hill held the limit one step above the fewest within 3% of the
// best rate (TestFlightLimitFindsTheBestLimit, from max_conns). 1 while
// no limit was measured twice (the spread is unknown) and for a limit not
// measured. However much windows stray, the bar stays at least lowestBar
// of the highest average: with windows ±10% apart, doubt without a floor
// took a 32-core server's limit from 8 to 6 in the simulation (the worst
// run: 76% of the best fixed limit's records).
func (l *flightLimit) doubt(n int) float64 {
	if l.spread == 0 || l.count == nil || l.count[n] == 0 {
		return 1
	}
	windows := float64(min(l.count[n], 2*averageOver-1)) // an average of averageOver's weight holds about 2·averageOver−1 windows
	return max(lowestBar/closeEnough, 1-doubtSpreads*math.Sqrt(l.spread/windows))
}
