package kafka

import (
	"sort"
	"time"
)

// maxRetryWait bounds how long a partition whose batches keep failing the
// same way waits before the next try.
const maxRetryWait = 30 * time.Second

// failing is a partition whose batches fail: the error and range start of
// the last failure, how many in a row, and when to try again. A batch that
// fails the same way again (a missing table, a refused DDL) backs off up
// to maxRetryWait and writes no new failed ledger row (see
// exactly.PartitionBatch.Failed); before, it was retried and recorded
// about every second for as long as the cause lasted.
type failing struct {
	from    int64
	err     string
	n       int
	retryAt time.Time
}

// again records a failure at from and returns the failures in a row and
// how long the partition now waits.
func (f *failing) again(from int64, err string, now time.Time) (int, time.Duration) {
	if f.n > 0 && f.from == from && f.err == err {
		f.n++
	} else {
		f.from, f.err, f.n = from, err, 1
	}
	wait := min(time.Second<<min(f.n-1, 5), maxRetryWait)
	f.retryAt = now.Add(wait)
	return f.n, wait
}

// last is the error the last attempt at a batch starting at from failed
// with, or "".
func (f *failing) last(from int64) string {
	if f.n == 0 || f.from != from {
		return ""
	}
	return f.err
}

// isolateFailing packs the partitions whose last batch failed apart from
// the others, one table per flight: a batch that fails takes its whole
// flight down with it, so a table that keeps failing (missing, refused
// DDL) would otherwise fail every table it is packed with, each retry.
// The healthy ones are packed first.
func isolateFailing(ready []candidate, free int, packHealthy func([]candidate, int) [][]candidate) [][]candidate {
	var healthy []candidate
	byTable := map[string][]candidate{}
	var tables []string
	for _, c := range ready {
		if !c.failing {
			healthy = append(healthy, c)
			continue
		}
		if byTable[c.table] == nil {
			tables = append(tables, c.table)
		}
		byTable[c.table] = append(byTable[c.table], c)
	}
	if len(tables) == 0 {
		return packHealthy(ready, free)
	}
	var out [][]candidate
	if len(healthy) > 0 {
		out = packHealthy(healthy, max(free-len(tables), 1))
	}
	sort.Strings(tables)
	for _, t := range tables {
		if len(out) >= free {
			break
		}
		out = append(out, byTable[t])
	}
	return out
}
