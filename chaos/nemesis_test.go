package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fault kinds, as counted in the report.
const (
	faultKill        = "sigkill+restart"
	faultPGTerminate = "pg_terminate_backend"
	faultCutAfter    = "conn cut after COMMIT forwarded"
	faultCutBefore   = "conn cut at COMMIT, not forwarded"
	faultDBDown      = "database outage"
	faultBroker      = "fetch/list-offsets errors, dropped conns"
	faultCoordinator = "group coordinator errors (rejoin)"
	faultLeaders     = "partition leaders moved"
	faultRebalance   = "group member join/leave"
	faultZombie      = "zombie (SIGSTOP past session, SIGCONT)"
)

// nemesis injects faults at random moments until its context ends.
type nemesis struct {
	h   *harness
	rng *rand.Rand

	mu     sync.Mutex
	counts map[string]int
	notes  map[string]int // outcomes worth reporting (zombie fenced, ...)
	errs   []string
	wg     sync.WaitGroup
	zombie sync.Mutex // one zombie at a time; it owns slot 1 meanwhile
	// zombieAt is when the first zombie is forced, if none came yet.
	zombieAt    time.Time
	zombieTried bool
}

func newNemesis(h *harness, seed int64) *nemesis {
	return &nemesis{h: h, rng: rand.New(rand.NewSource(seed)), counts: map[string]int{}, notes: map[string]int{}}
}

func (n *nemesis) count(kind string) {
	n.mu.Lock()
	n.counts[kind]++
	n.mu.Unlock()
}

func (n *nemesis) countOf(kind string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counts[kind]
}

func (n *nemesis) note(what string) {
	n.mu.Lock()
	n.notes[what]++
	n.mu.Unlock()
}

func (n *nemesis) fail(format string, args ...any) {
	n.mu.Lock()
	n.errs = append(n.errs, fmt.Sprintf(format, args...))
	n.mu.Unlock()
}

func (n *nemesis) total() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := 0
	for _, c := range n.counts {
		t += c
	}
	return t
}

func (n *nemesis) report() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var kinds []string
	for k := range n.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var sb strings.Builder
	total := 0
	for _, k := range kinds {
		fmt.Fprintf(&sb, "  %-42s %5d\n", k, n.counts[k])
		total += n.counts[k]
	}
	fmt.Fprintf(&sb, "  %-42s %5d\n", "total", total)
	var notes []string
	for k := range n.notes {
		notes = append(notes, k)
	}
	sort.Strings(notes)
	for _, k := range notes {
		fmt.Fprintf(&sb, "  outcome: %-33s %5d\n", k, n.notes[k])
	}
	return sb.String()
}

type weighted struct {
	kind   string
	weight int
}

// run injects faults until ctx ends, from three loops: member faults
// (kill, join/leave, zombie, coordinator errors, leader moves) every
// 1–3 s, so batches commit between them; database faults (terminated
// sessions, cut COMMITs, outages) every 250–750 ms, so they land inside
// batches; fetch errors and dropped connections every 150–450 ms. The
// first zombie comes at a third of the run, so every run has one. A seed
// replays the same fault schedule and workload; the timing of the real
// processes decides where each fault lands.
func (n *nemesis) run(ctx context.Context, seed int64) {
	members := []weighted{{faultKill, 5}, {faultRebalance, 3}, {faultZombie, 2}, {faultCoordinator, 3}, {faultLeaders, 3}}
	brokers := []weighted{{faultBroker, 1}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n.loop(ctx, rand.New(rand.NewSource(seed+7)), members, 1000, 2000, true)
	}()
	if n.h.proxy != nil { // SQLite has no connection to break
		links := []weighted{{faultPGTerminate, 8}, {faultCutAfter, 8}, {faultCutBefore, 4}, {faultDBDown, 1}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.loop(ctx, n.rng, links, 250, 500, false)
		}()
	}
	go func() {
		defer wg.Done()
		n.loop(ctx, rand.New(rand.NewSource(seed+13)), brokers, 150, 300, false)
	}()
	wg.Wait()
	n.wg.Wait()
}

func (n *nemesis) loop(ctx context.Context, rng *rand.Rand, kinds []weighted, minMs, spreadMs int, supervise bool) {
	sum := 0
	for _, k := range kinds {
		sum += k.weight
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(minMs+rng.Intn(spreadMs)) * time.Millisecond):
		}
		if supervise && n.h.running(0) == nil { // a member that died at startup, during a database fault
			n.h.start(0, "")
		}
		if supervise && time.Now().After(n.zombieAt) && n.total() > 0 && n.countOf(faultZombie) == 0 && !n.zombieTried {
			n.zombieTried = true
			n.inject(ctx, rng, faultZombie)
			continue
		}
		x := rng.Intn(sum)
		for _, k := range kinds {
			if x < k.weight {
				n.inject(ctx, rng, k.kind)
				break
			}
			x -= k.weight
		}
	}
}

func (n *nemesis) inject(ctx context.Context, rng *rand.Rand, kind string) {
	h := n.h
	switch kind {
	case faultKill:
		slot := 0
		if rng.Intn(3) == 0 {
			slot = 1
		}
		if slot == 1 && !n.zombie.TryLock() {
			return
		}
		in := h.running(slot)
		if in == nil {
			if slot == 1 {
				n.zombie.Unlock()
			}
			return
		}
		h.kill(in)
		n.count(kind)
		if slot == 0 || rng.Intn(2) == 0 {
			h.start(slot, "")
		}
		if slot == 1 {
			n.zombie.Unlock()
		}
	case faultPGTerminate:
		if h.driver == "sqlserver" {
			n.killSessions(ctx, rng)
			return
		}
		// Prefer sessions inside a transaction: that is the interesting
		// moment, between the fence and the COMMIT.
		q := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`
		if rng.Intn(5) != 0 {
			q += ` AND state IN ('active', 'idle in transaction')`
		}
		var killed int
		if err := h.db.QueryRowContext(ctx, q, h.appName).Scan(&killed); err != nil {
			if ctx.Err() == nil {
				n.fail("pg_terminate_backend: %v", err)
			}
			return
		}
		if killed > 0 { // a fault only when it hit a session
			n.count(kind)
			h.troubled(time.Second)
		}
	case faultCutAfter: // counted when it fires (proxy.firedAfter)
		h.proxy.cutAfter.Store(1)
	case faultCutBefore:
		h.proxy.cutBefore.Store(1)
	case faultDBDown:
		d := time.Duration(200+rng.Intn(1000)) * time.Millisecond
		h.troubled(d)
		h.proxy.setDown(true)
		n.count(kind)
		n.wg.Add(1)
		time.AfterFunc(d, func() { h.proxy.setDown(false); n.wg.Done() })
	case faultBroker:
		keys := []int16{int16(kmsg.Fetch)}
		if rng.Intn(3) == 0 {
			keys = append(keys, int16(kmsg.ListOffsets))
		}
		h.broker.open(keys, time.Duration(30+rng.Intn(200))*time.Millisecond)
		n.count(kind)
	case faultCoordinator:
		var keys []int16
		for _, k := range []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.OffsetCommit} {
			if rng.Intn(2) == 0 {
				keys = append(keys, int16(k))
			}
		}
		if len(keys) == 0 {
			keys = []int16{int16(kmsg.Heartbeat)}
		}
		h.broker.open(keys, time.Duration(50+rng.Intn(400))*time.Millisecond)
		n.count(kind)
	case faultLeaders:
		h.cluster.ShufflePartitionLeaders()
		n.count(kind)
	case faultRebalance:
		if !n.zombie.TryLock() {
			return
		}
		defer n.zombie.Unlock()
		if in := h.running(1); in != nil {
			if rng.Intn(2) == 0 {
				if err := h.term(in, 60*time.Second); err != nil {
					n.fail("member leaving: %v", err)
				}
			} else {
				h.kill(in)
			}
		} else {
			h.start(1, "")
		}
		n.count(kind)
	case faultZombie:
		if !n.zombie.TryLock() {
			return
		}
		zr := rand.New(rand.NewSource(rng.Int63()))
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer n.zombie.Unlock()
			n.runZombie(ctx, zr)
		}()
	}
}

// runZombie starts a member that SIGSTOPs itself inside a batch
// transaction, keeps it paused past its session so the other member takes
// its partitions and moves them on, then resumes it: its stale batch must
// be fenced (before_write: its fence finds the offset moved) or, when it
// already held the offset rows (before_commit), the other member's batch
// must be fenced instead. Either way nothing is applied twice.
func (n *nemesis) runZombie(ctx context.Context, rng *rand.Rand) {
	h := n.h
	if in := h.running(1); in != nil {
		h.kill(in)
	}
	point := "before_write"
	if rng.Intn(3) == 0 {
		point = "before_commit"
	}
	z := h.start(1, fmt.Sprintf("%s:%d:stop", point, 1+rng.Intn(2)))
	deadline := time.Now().Add(20 * time.Second)
	for !stoppedState(z.pid()) {
		if z.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			n.note("zombie never reached its failpoint")
			if !z.exited() {
				h.kill(z)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	z.paused = true
	h.mu.Unlock()
	n.count(faultZombie)
	// Past the session timeout (2s): the group gives its partitions to
	// the other member, which commits batches for them meanwhile.
	pause := time.Duration(2500+rng.Intn(2000)) * time.Millisecond
	select {
	case <-time.After(pause):
	case <-ctx.Done():
	}
	before := n.fencedRows(z.pid())
	_ = z.cmd.Process.Signal(syscall.SIGCONT)
	h.mu.Lock()
	z.paused = false
	h.mu.Unlock()
	// Give it time to wake up, try its stale commit and rejoin.
	time.Sleep(1500 * time.Millisecond)
	if after := n.fencedRows(z.pid()); after > before {
		n.note("zombie batch fenced (ledger row 'failed', error 'fenced: …')")
	} else {
		n.note("zombie resumed without being fenced (peer fenced or idle)")
	}
}

// fencedRows counts failed ledger rows of a process that say it was fenced.
func (n *nemesis) fencedRows(pid int) int {
	var c int
	_ = n.h.db.QueryRow(n.h.q(`SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'failed' AND writer LIKE ? AND error LIKE 'fenced:%'`),
		pipeline, fmt.Sprintf("%%:%d", pid)).Scan(&c)
	return c
}

// killSessions is pg_terminate_backend for SQL Server: KILL the members'
// sessions (found by their app name), preferring those inside a
// transaction.
func (n *nemesis) killSessions(ctx context.Context, rng *rand.Rand) {
	h := n.h
	q := `SELECT session_id FROM sys.dm_exec_sessions WHERE program_name = @p1`
	if rng.Intn(5) != 0 {
		q += ` AND open_transaction_count > 0`
	}
	rows, err := h.db.QueryContext(ctx, q, h.appName)
	if err != nil {
		if ctx.Err() == nil {
			n.fail("listing sessions: %v", err)
		}
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	killed := 0
	for _, id := range ids {
		// A session may have ended on its own since it was listed.
		if _, err := h.db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err == nil {
			killed++
		}
	}
	if killed > 0 { // a fault only when it hit a session
		n.count(faultPGTerminate)
		h.troubled(time.Second)
	}
}
