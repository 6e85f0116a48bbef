package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/internal/workload"
)

// series is one sample of a scrape: its metric name, labels and value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads /metrics in the text exposition format.
func scrape(t *testing.T, addr string) []series {
	t.Helper()
	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
	var out []series
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := series{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// sum adds the samples of a metric whose labels include want.
func sum(ss []series, name string, want map[string]string) float64 {
	var total float64
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && s.labels[k] == v
		}
		if ok {
			total += s.value
		}
	}
	return total
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d\n%s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

// ledgerTotals sums exactly_batches per table (by topic) straight from the
// database: what every number shown must match.
type ledgerSums struct {
	committedBatches, failedBatches int64
	records, upserted, deleted, dl  map[string]int64 // by table
	next                            map[string]int64 // topic/partition -> next_offset
	recordsTP, batchesTP, dlTP      map[string]int64 // by topic/partition
	deadLetters                     int64
}

func (e *crashEnv) sums(t *testing.T) *ledgerSums {
	t.Helper()
	ctx := context.Background()
	s := &ledgerSums{records: map[string]int64{}, upserted: map[string]int64{}, deleted: map[string]int64{}, dl: map[string]int64{},
		next: map[string]int64{}, recordsTP: map[string]int64{}, batchesTP: map[string]int64{}, dlTP: map[string]int64{}}
	table := map[string]string{workload.TopicCustomers: workload.TableCustomers, workload.TopicOrders: workload.TableOrders, workload.TopicEvents: workload.TableEvents}
	rows, err := e.db.QueryContext(ctx, e.q(`SELECT topic, "partition", status, records, upserted, deleted, dead_lettered FROM exactly_batches WHERE pipeline = ?`), e.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var topic, status string
		var p int32
		var recs, ups, dels, dl int64
		if err := rows.Scan(&topic, &p, &status, &recs, &ups, &dels, &dl); err != nil {
			t.Fatal(err)
		}
		if status != "committed" {
			s.failedBatches++
			continue
		}
		tp := fmt.Sprintf("%s/%d", topic, p)
		s.committedBatches++
		s.batchesTP[tp]++
		s.recordsTP[tp] += recs
		s.dlTP[tp] += dl
		s.records[table[topic]] += recs
		s.upserted[table[topic]] += ups
		s.deleted[table[topic]] += dels
		s.dl[table[topic]] += dl
	}
	offs, err := e.db.QueryContext(ctx, e.q(`SELECT topic, "partition", next_offset FROM exactly_offsets WHERE pipeline = ?`), e.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	defer offs.Close()
	for offs.Next() {
		var topic string
		var p int32
		var next int64
		if err := offs.Scan(&topic, &p, &next); err != nil {
			t.Fatal(err)
		}
		s.next[fmt.Sprintf("%s/%d", topic, p)] = next
	}
	if err := e.db.QueryRowContext(ctx, e.q(`SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ?`), e.pipeline).Scan(&s.deadLetters); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *crashEnv) q(s string) string {
	return exactly.Rebind(e.d, strings.ReplaceAll(s, `"partition"`, e.d.Quote("partition")))
}

// startServed starts exactly run with --metrics-addr on a free port and
// returns the process and the address it serves on.
func (e *crashEnv) startServed(t *testing.T, n int) (*exec.Cmd, <-chan error, string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), "run", "-c", e.config(t, n), "--log-level", "info",
		"--metrics-addr", "127.0.0.1:0", "--status-refresh", "2s", "--status-show-data", "--status-cache", "1ms")
	logPath := filepath.Join(e.dir, "pipeline.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	addrRe := regexp.MustCompile(`serving metrics and the status page"? addr=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := addrRe.FindStringSubmatch(e.log()); m != nil {
			return cmd, done, m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("exactly run exited: %v\n%s", err, e.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no status address in the log\n%s", e.log())
	return nil, nil, ""
}

// produceBad writes records no decoder accepts: they must surface as dead
// letters with their coordinates, on the page and in the metrics.
func produceBad(t *testing.T, brokers []string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: workload.TopicOrders, Key: []byte("9999"), Value: []byte(fmt.Sprintf("not json %d {", i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMetricsDuringARunMatchTheLedger scrapes /metrics while the pipeline
// works through a stream being produced, and checks each scrape lies
// between two ledger readings taken around it; at the end every counter
// equals the ledger exactly.
func TestMetricsDuringARunMatchTheLedger(t *testing.T) {
	e := newCrashEnv(t, "sqlite", 500)
	produceBad(t, e.brokers, 3)
	cmd, done, addr := e.startServed(t, 0)
	get(t, "http://"+addr+"/healthz", http.StatusOK)

	// More records arrive while we watch, for about 3 s.
	produced := make(chan error, 1)
	go func() {
		produced <- workload.Produce(context.Background(), e.brokers, workload.NewGenerator(7, 100), 3000, 1000)
	}()
	scrapes := 0
	// A commit is in the ledger a moment before the process has counted
	// it, and /metrics is gathered at most once a second (shared by the
	// requests within it: statuspage.Server.MetricsEvery), so a scrape may
	// trail the ledger by that second; never by more than a reading taken
	// over a second before it, and it never exceeds the reading after it.
	type reading struct {
		at   time.Time
		sums *ledgerSums
	}
	history := []reading{{time.Now(), e.sums(t)}}
	const stale = 1200 * time.Millisecond // the gather's second, and the scrape's own time
	compared := 0
	// Scrape while records are produced, and at least three times.
	for waiting := true; waiting || scrapes < 3; {
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		default:
		}
		scraped := time.Now()
		m := scrape(t, addr)
		after := e.sums(t)
		scrapes++
		prev := history[0].sums // the newest reading at least stale before the scrape
		for _, r := range history {
			if r.at.Before(scraped.Add(-stale)) {
				prev = r.sums
			}
		}
		if prev != history[0].sums {
			compared++
		}
		got := sum(m, "exactly_batches_total", map[string]string{"status": "committed"})
		if got < float64(prev.committedBatches) || got > float64(after.committedBatches) {
			t.Errorf("scrape %d: exactly_batches_total{committed} = %v, the ledger held %d a scrape earlier and %d after", scrapes, got, prev.committedBatches, after.committedBatches)
		}
		for _, table := range []string{workload.TableCustomers, workload.TableOrders, workload.TableEvents} {
			got := sum(m, "exactly_records_committed_total", map[string]string{"table": table})
			if got < float64(prev.records[table]) || got > float64(after.records[table]) {
				t.Errorf("scrape %d: records committed to %s = %v, the ledger held %d a scrape earlier and %d after", scrapes, table, got, prev.records[table], after.records[table])
			}
		}
		history = append(history, reading{time.Now(), after})
		time.Sleep(100 * time.Millisecond)
	}
	if compared < 3 {
		t.Errorf("only %d of %d scrapes came over a second into the run: too few to check how far they trail", compared, scrapes)
	}
	t.Logf("%d scrapes during the run, each within the ledger readings around it (%d over a second into it)", scrapes, compared)

	var err error
	if e.ends, err = workload.EndOffsets(context.Background(), e.brokers, workload.Topics...); err != nil {
		t.Fatal(err)
	}
	waitAtEnd(t, e, done)
	// Lag comes from fetch responses and a periodic end-offset listing.
	deadline := time.Now().Add(15 * time.Second)
	var m []series
	for {
		m = scrape(t, addr)
		if sum(m, "exactly_partition_lag", nil) == 0 && len(filter(m, "exactly_partition_lag")) == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag never reached 0 on 9 partitions: %v", filter(m, "exactly_partition_lag"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	s := e.sums(t)
	check := func(what string, got float64, want int64) {
		t.Helper()
		if got != float64(want) {
			t.Errorf("%s: metrics say %v, the ledger %d", what, got, want)
		}
	}
	check("committed batches", sum(m, "exactly_batches_total", map[string]string{"status": "committed"}), s.committedBatches)
	check("failed batches", sum(m, "exactly_batches_total", map[string]string{"status": "failed"}), s.failedBatches)
	for _, table := range []string{workload.TableCustomers, workload.TableOrders, workload.TableEvents} {
		l := map[string]string{"table": table, "pipeline": e.pipeline}
		check(table+" committed", sum(m, "exactly_records_committed_total", l), s.records[table])
		check(table+" applied", sum(m, "exactly_records_applied_total", l), s.upserted[table])
		check(table+" deleted", sum(m, "exactly_records_deleted_total", l), s.deleted[table])
		check(table+" dead-lettered", sum(m, "exactly_records_dead_lettered_total", l), s.dl[table])
		// Nothing failed, so nothing was read twice.
		check(table+" consumed", sum(m, "exactly_records_consumed_total", l), s.records[table])
	}
	check("dead letters", sum(m, "exactly_records_dead_lettered_total", nil), s.deadLetters)
	if s.deadLetters != 3 {
		t.Errorf("the ledger holds %d dead letters, want the 3 bad records", s.deadLetters)
	}
	for tp, next := range s.next {
		topic, p, _ := strings.Cut(tp, "/")
		l := map[string]string{"topic": topic, "partition": p}
		check(tp+" next_offset", sum(m, "exactly_partition_next_offset", l), next)
		check(tp+" high watermark", sum(m, "exactly_partition_high_watermark", l), e.ends[topic][int32(atoi(p))])
	}
	check("partitions assigned", sum(m, "exactly_partitions_assigned", nil), 9)
	if c := sum(m, "exactly_batch_duration_seconds_count", nil); c < 1 {
		t.Errorf("exactly_batch_duration_seconds_count = %v", c)
	}
	if c := sum(m, "exactly_errors_total", nil); c != 0 {
		t.Errorf("a clean run counted %v errors: %v", c, filter(m, "exactly_errors_total"))
	}
	get(t, "http://"+addr+"/readyz", http.StatusOK)
	stop(t, e, cmd, done)
	checkGroupHint(t, e, "crash-0", s.next)
	checkQuietLog(t, e.log())
	checkDeadLetterWarnings(t, e.log(), 3)
}

// checkDeadLetterWarnings checks that the bad records were each told in
// a warning of their batch (count, first offset, redacted error), and
// that no warning carries their payload. Regression: dead letters were
// silent.
func checkDeadLetterWarnings(t *testing.T, log string, want int) {
	t.Helper()
	got := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="records dead-lettered"`) {
			continue
		}
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "first_offset=") || !strings.Contains(line, "first_error=") {
			t.Errorf("dead-letter warning without its coordinates: %s", line)
		}
		if strings.Contains(line, "not json") {
			t.Errorf("dead-letter warning carries the record's value: %s", line)
		}
		_, n, _ := strings.Cut(line, " count=")
		n, _, _ = strings.Cut(n, " ")
		got += atoi(n)
	}
	if got != want {
		t.Errorf("dead-letter warnings count %d records, want %d:\n%s", got, want, log)
	}
}

// checkQuietLog checks that a healthy run logged no warning or error and
// only a few lines at info level (start, seeding, stop).
func checkQuietLog(t *testing.T, log string) {
	t.Helper()
	info := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		switch {
		case strings.Contains(line, "level=INFO"):
			info++
		case strings.Contains(line, `msg="records dead-lettered"`):
			// Bad input, not an unhealthy run: see checkDeadLetterWarnings.
		case strings.Contains(line, "level=WARN"), strings.Contains(line, "level=ERROR"):
			t.Errorf("a healthy run logged: %s", line)
		}
	}
	if info > 5 {
		t.Errorf("a healthy run logged %d info lines, want at most 5:\n%s", info, log)
	}
}

// checkGroupHint checks that the consumer group's committed offsets (the
// hint for lag tools) reached the ledger's next_offset. Regression: the
// asynchronous group commit ran under flush's context, cancelled as flush
// returned, so no group offset was ever committed.
func checkGroupHint(t *testing.T, e *crashEnv, group string, next map[string]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for tp, want := range next {
		topic, p, _ := strings.Cut(tp, "/")
		o, ok := got.Lookup(topic, int32(atoi(p)))
		if !ok || o.At != want {
			t.Errorf("group %s offset of %s: %v (%v), want the ledger's %d", group, tp, o.At, ok, want)
		}
	}
}

func filter(ss []series, name string) []series {
	var out []series
	for _, s := range ss {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func waitAtEnd(t *testing.T, e *crashEnv, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !e.ledger(t).AtEnd {
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not catch up: %v\n%s", e.ledger(t).Lagging, e.log())
		}
		select {
		case err := <-done:
			t.Fatalf("pipeline exited early: %v\n%s", err, e.log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func stop(t *testing.T, e *crashEnv, cmd *exec.Cmd, done <-chan error) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SIGTERM: exit %v, want 0\n%s", err, e.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", e.log())
	}
}

var (
	rowRe = regexp.MustCompile(`(?s)<tr class="p" data-tp="([^"]+)"[^>]*>(.*?)</tr>`)
	tdRe  = regexp.MustCompile(`<td[^>]*>([^<]*)<`)
	// partCols are the cells of a partition's line on the status page.
	partCols = []string{"topic", "partition", "state", "next", "hwm", "lag", "rate", "committed", "records", "upserted", "deleted", "dead", "open", "failed", "last", "writer"}
	cellRe   = regexp.MustCompile(`data-k="([a-z]+)">([^<]*)<`)
	idRe     = regexp.MustCompile(`id="([a-z-]+)">([^<]*)<`)
)

// TestStatusPageShowsTheLedger loads the status page of a running
// pipeline in headless Chromium and checks that every number it shows per
// partition — next_offset, committed batches, records, upserted, deleted,
// dead letters — and the totals equal what the ledger tables hold, that
// the last batches listed are real ledger rows, and that the chain check
// finds nothing. The screenshot is kept under the test's artifacts.
func TestStatusPageShowsTheLedger(t *testing.T) {
	testenv.Chromium(t)
	e := newCrashEnv(t, "sqlite", 1200)
	produceBad(t, e.brokers, 2)
	var err error
	if e.ends, err = workload.EndOffsets(context.Background(), e.brokers, workload.Topics...); err != nil {
		t.Fatal(err)
	}
	cmd, done, addr := e.startServed(t, 0)
	waitAtEnd(t, e, done)
	shot := filepath.Join(testenv.ArtifactDir(t), "status.png")
	dom, err := testenv.Browse(context.Background(), t, "http://"+addr+"/", shot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	s := e.sums(t)

	rows := rowRe.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(s.next) || len(rows) != 9 {
		t.Fatalf("page shows %d partitions, the ledger has %d (want 9)\n%s", len(rows), len(s.next), cut(dom, 3000))
	}
	for _, r := range rows {
		tp := r[1]
		cells := map[string]string{}
		for i, c := range tdRe.FindAllStringSubmatch(r[2], -1) {
			if i < len(partCols) {
				cells[partCols[i]] = strings.TrimSpace(c[1])
			}
		}
		want := map[string]int64{"next": s.next[tp], "committed": s.batchesTP[tp], "records": s.recordsTP[tp], "dead": s.dlTP[tp]}
		for k, w := range want {
			if got := cells[k]; got != strconv.FormatInt(w, 10) {
				t.Errorf("%s %s: page shows %q, the ledger holds %d", tp, k, got, w)
			}
		}
	}
	ids := map[string]string{}
	for _, m := range idRe.FindAllStringSubmatch(dom, -1) {
		ids[m[1]] = strings.TrimSpace(m[2])
	}
	var records int64
	for _, n := range s.recordsTP {
		records += n
	}
	for k, w := range map[string]int64{"total-committed": s.committedBatches, "total-records": records,
		"total-dead": s.deadLetters, "total-failed": s.failedBatches, "total-lag": 0} {
		if got := ids[k]; got != strconv.FormatInt(w, 10) {
			t.Errorf("%s: page shows %q, the ledger holds %d", k, got, w)
		}
	}
	if !strings.HasPrefix(ids["chain"], "unbroken: "+strconv.FormatInt(s.committedBatches, 10)+" committed batches") {
		t.Errorf("chain check on the page: %q, want unbroken over %d batches", ids["chain"], s.committedBatches)
	}
	if ids["pipeline"] != e.pipeline {
		t.Errorf("pipeline shown %q, want %q", ids["pipeline"], e.pipeline)
	}
	// Every batch listed is a ledger row with the same range and count.
	listed := regexp.MustCompile(`(?s)<tr data-batch="([^"]+)">(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
	if len(listed) == 0 {
		t.Fatal("no batch listed")
	}
	for _, b := range listed {
		cells := map[string]string{}
		for _, c := range cellRe.FindAllStringSubmatch(b[2], -1) {
			cells[c[1]] = strings.TrimSpace(c[2])
		}
		var from, to, recs int64
		var status string
		if err := e.db.QueryRow(e.q(`SELECT from_offset, to_offset, records, status FROM exactly_batches WHERE batch_id = ?`), b[1]).Scan(&from, &to, &recs, &status); err != nil {
			t.Errorf("batch %s on the page: %v", b[1], err)
			continue
		}
		if cells["from"] != fmt.Sprint(from) || cells["to"] != fmt.Sprint(to) || cells["records"] != fmt.Sprint(recs) || cells["status"] != status {
			t.Errorf("batch %s: page shows %v, the ledger %d..%d %d %s", b[1], cells, from, to, recs, status)
		}
	}
	// The dead letters are listed with their coordinates and error.
	for i := 0; i < 2; i++ {
		if !strings.Contains(dom, fmt.Sprintf("not json %d {", i)) {
			t.Errorf("dead letter %d not shown", i)
		}
	}
	if !strings.Contains(dom, workload.TopicOrders+"[") {
		t.Error("dead letters shown without topic[partition]@offset")
	}
	if ids["ready"] != "ready" {
		t.Errorf("readiness on the page: %q", ids["ready"])
	}
	stop(t, e, cmd, done)
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
