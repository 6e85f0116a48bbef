// Package bench measures exactly against the database's own limit, in the
// same run: it produces a synthetic upsert workload into Kafka (a kfake
// broker in a process of its own, in-process, or given brokers), runs
// the real pipeline in-process (kafka.Source feeding exactly.Sink, the
// code `exactly run` runs), and loads the same rows by the database's
// fastest bulk path.
// The rule: every figure it prints is measured in that run, never quoted
// from elsewhere, because these machines are shared and noisy.
package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

// Options choose the workload and where it runs.
type Options struct {
	// Dialect and DSN of the sink.
	Dialect exactly.Dialect
	DSN     string
	// Brokers to produce to; empty starts a kfake broker: in a process of
	// its own when BrokerCommand is set (argv of a command running
	// ServeBroker), in this one otherwise.
	Brokers       []string
	BrokerCommand []string
	// Topics × Partitions the records are spread over; one table per topic.
	Topics, Partitions int
	// Records for the throughput phase (0 skips it), each RecordBytes of
	// JSON row.
	Records     int
	RecordBytes int
	// Format of the records: FormatJSON (the default) writes each row as
	// the record value; FormatDebezium wraps it in a Debezium create event
	// with its Connect schema, and keys it by a Connect key struct.
	Format string
	// Rate (records/s) and Duration of the latency phase (Rate 0 skips it).
	Rate     int
	Duration time.Duration
	// Pipeline settings: batch.interval, batch.max_records, sink.max_conns,
	// sink.synchronous_commit.
	Interval          time.Duration
	MaxRecords        int
	MaxConns          int
	SynchronousCommit string
	// Flights is sink.flights: adaptive (default) or fixed.
	Flights string
	// Rounds repeats the baseline and the pipeline over the same records
	// (default 1); the headline figures are the round with the median
	// ratio, so one round disturbed by another process does not decide.
	Rounds int
	// Keep leaves the bench tables and ledger rows in the sink.
	Keep bool
	Log  *slog.Logger
	// Progress, when set, receives one line per step.
	Progress func(format string, args ...any)
	// Observer, when set, makes the observer of each pipeline the bench
	// starts (kafka.Observe), as exactly run makes its metrics.
	Observer func(cfg *exactly.Config) exactly.Observer
	// Serve, when set, is called with each pipeline the bench starts and
	// the observer Observer made for it (nil without Observer), as exactly
	// run starts its status server, and its result called when the
	// pipeline stops.
	Serve func(ctx context.Context, cfg *exactly.Config, sink *exactly.Sink, src *kafka.Source, obs exactly.Observer) (stop func(), err error)
}

// Result holds the figures of one run.
type Result struct {
	Driver      string      `json:"driver"`
	Topics      int         `json:"topics"`
	Partitions  int         `json:"partitions"`
	RecordBytes int         `json:"record_bytes"`
	Format      string      `json:"format"`
	MaxConns    int         `json:"max_conns"`
	Flights     string      `json:"flights"`
	Interval    string      `json:"batch_interval"`
	Pipeline    string      `json:"pipeline_mode"`
	LoadAvg     string      `json:"loadavg_at_start"`
	Throughput  *Throughput `json:"throughput,omitempty"`
	Latency     *Latency    `json:"latency,omitempty"`
	// Broker says where the broker ran: "process" (a kfake broker in a
	// process of its own), "in-process" or "given" (--brokers).
	Broker string `json:"broker"`
	// PeakRSSBytes is the process's VmHWM over the whole run: pipeline,
	// producer and (when in-process) the broker, which holds every record.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// BrokerPeakRSSBytes is the broker process's VmHWM (Broker "process").
	BrokerPeakRSSBytes int64 `json:"broker_peak_rss_bytes,omitempty"`
}

// Throughput is the bulk phase: every record produced first, then
// consumed and applied.
type Throughput struct {
	Records int `json:"records"`
	// Pipeline: first record fetched → last batch committed.
	PipelineSeconds     float64 `json:"pipeline_seconds"`
	PipelineRecordsPerS float64 `json:"pipeline_records_per_s"`
	Batches             int     `json:"batches"`
	BaselineMethod      string  `json:"baseline_method"`
	BaselineSeconds     float64 `json:"baseline_seconds"`
	BaselineRecordsPerS float64 `json:"baseline_records_per_s"`
	Ratio               float64 `json:"ratio_pipeline_to_baseline"`
	RowsChecked         bool    `json:"rows_checked"`
	ProduceRecordsPerS  float64 `json:"produce_records_per_s"`
	// Rounds holds every round's figures when there were several; the
	// fields above are the round with the median ratio.
	Rounds               []Round `json:"rounds,omitempty"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	StartupSeconds       float64 `json:"startup_seconds"`
	PipelineWallSeconds  float64 `json:"pipeline_wall_seconds"`
	PipelineWallRecordsS float64 `json:"pipeline_wall_records_per_s"`
}

// Round is one baseline and one pipeline run over the same records.
type Round struct {
	PipelineRecordsPerS float64 `json:"pipeline_records_per_s"`
	BaselineRecordsPerS float64 `json:"baseline_records_per_s"`
	Ratio               float64 `json:"ratio_pipeline_to_baseline"`
}

// Latency is the steady phase: records produced at a fixed rate while the
// pipeline runs; latency is produce timestamp → database commit.
type Latency struct {
	Rate     int     `json:"rate"`
	Seconds  float64 `json:"seconds"`
	Records  int     `json:"records"`
	Achieved float64 `json:"achieved_rate"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// MaxPartitionLag is the most records any one partition had produced
	// but not committed, sampled every 100ms.
	MaxPartitionLag int64 `json:"max_partition_lag"`
	// SteadyP50Ms and SteadyP99Ms are of the records produced after the
	// first SteadyAfterS seconds (the start: tables created, the flight
	// limit settling); the figures above count every record.
	SteadyAfterS float64 `json:"steady_after_s"`
	SteadyP50Ms  float64 `json:"steady_p50_ms"`
	SteadyP99Ms  float64 `json:"steady_p99_ms"`
	// WorstPartitionP99Ms is the highest per-partition p99 latency.
	WorstPartitionP99Ms float64 `json:"worst_partition_p99_ms"`
	// PartitionsCommitted counts partitions with at least one committed
	// batch, of Partitions in all.
	PartitionsCommitted int   `json:"partitions_committed"`
	Partitions          int   `json:"partitions"`
	Batches             int   `json:"batches"`
	PeakRSSBytes        int64 `json:"peak_rss_bytes"`
}

// Run runs the phases the options ask for.
func Run(ctx context.Context, o Options) (_ *Result, err error) {
	if o.Topics <= 0 || o.Partitions <= 0 || o.RecordBytes < 0 || o.Records < 0 || o.Rate < 0 {
		return nil, errors.New("topics and partitions must be positive; records, record bytes and rate not negative")
	}
	if o.Format == "" {
		o.Format = FormatJSON
	}
	if _, err := encoder(o.Format); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	res := &Result{Driver: o.Dialect.Name(), Topics: o.Topics, Partitions: o.Partitions, RecordBytes: o.RecordBytes, Format: o.Format,
		MaxConns: o.MaxConns, Flights: o.Flights, Interval: o.Interval.String(), LoadAvg: loadAvg(),
		Pipeline: "in-process kafka.Source + exactly.Sink (the code exactly run runs)"}
	brokers := o.Brokers
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var topics []string
	for i := 0; i < o.Topics; i++ {
		topics = append(topics, fmt.Sprintf("bench.%s.t%03d", run, i))
	}
	var latTopics []string
	for i := 0; i < o.Topics; i++ {
		latTopics = append(latTopics, fmt.Sprintf("bench.%s.l%03d", run, i))
	}
	switch {
	case len(brokers) > 0:
		res.Broker = "given"
	case len(o.BrokerCommand) > 0:
		b, berr := startBroker(ctx, o.BrokerCommand)
		if berr != nil {
			return nil, berr
		}
		defer b.stop()
		defer func() { res.BrokerPeakRSSBytes = peakRSSOf(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid)) }()
		res.Broker, brokers = "process", []string{b.addr}
		var release context.CancelCauseFunc
		ctx, release = b.watch(ctx)
		defer release(nil)
		defer func() {
			if cause := context.Cause(ctx); err != nil && cause != ctx.Err() {
				err = fmt.Errorf("%w (%v)", cause, err) // the broker died first
			}
		}()
	default:
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("starting the in-process broker: %w", err)
		}
		defer cluster.Close()
		res.Broker, brokers = "in-process", cluster.ListenAddrs()
	}
	if err := createTopics(ctx, brokers, o.Partitions, append(topics, latTopics...)); err != nil {
		return nil, err
	}
	db, err := o.Dialect.Open(ctx, exactly.SinkConfig{Driver: o.Dialect.Name(), DSN: o.DSN})
	if err != nil {
		return nil, fmt.Errorf("opening the sink: %w", err)
	}
	defer db.Close()
	tables := make([]string, o.Topics)
	for i := range tables {
		// Named by the run, as the topics and the pipeline are: two benches
		// against one database must not drop each other's tables.
		tables[i] = fmt.Sprintf("exactlybench_%s_t%03d", run, i)
	}
	if err := createTables(ctx, db, o.Dialect.Name(), tables); err != nil {
		return nil, err
	}
	pipeline := "bench-" + run
	if !o.Keep {
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, t := range tables {
				_, _ = db.ExecContext(c, "DROP TABLE IF EXISTS "+t)
			}
			for _, t := range []string{"exactly_batches", "exactly_offsets", "exactly_dead_letters", "exactly_pipelines"} {
				// The pipeline and its rounds: bench-RUN, bench-RUN.r2, …
				_, _ = db.ExecContext(c, exactly.Rebind(o.Dialect, "DELETE FROM "+t+" WHERE pipeline = ? OR pipeline LIKE ?"),
					pipeline, pipeline+".r%")
			}
		}()
	}

	if o.Records > 0 {
		resetPeakRSS()
		t, err := throughput(ctx, o, db, brokers, pipeline, run, topics, tables)
		if err != nil {
			return nil, err
		}
		t.PeakRSSBytes = peakRSS()
		res.Throughput = t
	}
	if o.Rate > 0 {
		resetPeakRSS()
		cfg, err := config(o, brokers, pipeline, run, "l")
		if err != nil {
			return nil, err
		}
		l, err := latency(ctx, o, cfg, brokers, latTopics)
		if err != nil {
			return nil, err
		}
		l.PeakRSSBytes = peakRSS()
		res.Latency = l
	}
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// config is the pipeline configuration of a phase: one rule maps the
// phase's topics (bench.RUN.tNNN or bench.RUN.lNNN) to table NNN.
func config(o Options, brokers []string, pipeline, run, phase string) (*exactly.Config, error) {
	mode := "upsert"
	if o.Format == FormatDebezium {
		mode = "cdc" // the default of format debezium
	}
	y := fmt.Sprintf(`pipeline: %s
source:
  brokers: [%s]
  group: %s
  session_timeout: 10s
  rebalance_timeout: 10s
sink:
  driver: %s
  dsn: '%s'
  max_conns: %d
batch:
  interval: %s
  max_records: %d
tables:
  - topics: '^bench\.%s\.%s(\d+)$'
    table: 'exactlybench_%s_t$1'
    format: %s
    mode: %s
    key: [id]
`, pipeline, strings.Join(brokers, ", "), pipeline, o.Dialect.Name(), strings.ReplaceAll(o.DSN, "'", "''"),
		o.MaxConns, o.Interval, o.MaxRecords, run, phase, run, o.Format, mode)
	if o.SynchronousCommit != "" {
		y = strings.Replace(y, "  max_conns:", "  synchronous_commit: "+o.SynchronousCommit+"\n  max_conns:", 1)
	}
	if o.Flights != "" {
		y = strings.Replace(y, "  max_conns:", "  flights: "+o.Flights+"\n  max_conns:", 1)
	}
	return exactly.ParseConfig(strings.NewReader(y), "bench")
}

func createTopics(ctx context.Context, brokers []string, partitions int, topics []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating bench topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

func createTables(ctx context.Context, db *sql.DB, driver string, tables []string) error {
	text := "TEXT"
	if driver == "sqlserver" { // TEXT is SQL Server's deprecated LOB type
		text = "NVARCHAR(MAX)"
	}
	for _, t := range tables {
		for _, q := range []string{"DROP TABLE IF EXISTS " + t,
			"CREATE TABLE " + t + " (id BIGINT PRIMARY KEY, name " + text + " NOT NULL, amount BIGINT, payload " + text + ")"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating bench table %s: %w", t, err)
			}
		}
	}
	return nil
}

// settle starts a phase from the same state as the other: on PostgreSQL a
// CHECKPOINT first, or the WAL of a million rows written by one phase
// triggers a checkpoint in the middle of the next (a run-to-run swing of
// 0.6–0.8× in the ratio). Best effort: it needs the pg_checkpoint role.
func settle(ctx context.Context, db *sql.DB, driver string) {
	if driver == "postgres" {
		_, _ = db.ExecContext(ctx, "CHECKPOINT")
	}
}

func truncate(ctx context.Context, db *sql.DB, driver string, tables []string) error {
	for _, t := range tables {
		q := "TRUNCATE " + t
		switch driver {
		case "sqlite":
			q = "DELETE FROM " + t
		case "sqlserver":
			q = "TRUNCATE TABLE " + t
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("emptying %s: %w", t, err)
		}
	}
	return nil
}

// row is the bench row of record i: the same values the record's JSON
// carries, so the baseline loads exactly what the pipeline applies.
type row struct {
	id      int64
	name    string
	amount  int64
	payload string
}

func makeRow(i int64, recordBytes int) row {
	r := row{id: i, name: "name-" + strconv.FormatInt(i, 10), amount: i * 7}
	// {"id":…,"name":"…","amount":…,"payload":"…"} ≈ 45 bytes + fields.
	pad := recordBytes - 45 - 2*len(r.name) - 10
	if pad < 0 {
		pad = 0
	}
	r.payload = strings.Repeat(string(rune('a'+i%26)), pad)
	return r
}

func (r row) json() []byte {
	b := make([]byte, 0, 64+len(r.payload)+len(r.name))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, `,"name":"`...)
	b = append(b, r.name...)
	b = append(b, `","amount":`...)
	b = strconv.AppendInt(b, r.amount, 10)
	b = append(b, `,"payload":"`...)
	b = append(b, r.payload...)
	b = append(b, `"}`...)
	return b
}

// place spreads record i over the topics, then over the partitions.
func place(i int64, topics, partitions int) (topic int, partition int32) {
	return int(i % int64(topics)), int32((i / int64(topics)) % int64(partitions))
}

// produce writes records [from, to) as fast as the broker takes them.
func produce(ctx context.Context, o Options, brokers []string, topics []string, from, to int64) error {
	encode, err := encoder(o.Format)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var first atomic.Pointer[error]
	for i := from; i < to; i++ {
		t, p := place(i, len(topics), o.Partitions)
		key, value := encode(makeRow(i, o.RecordBytes))
		cl.Produce(ctx, &kgo.Record{Topic: topics[t], Partition: p, Key: key, Value: value},
			func(_ *kgo.Record, err error) {
				if err != nil {
					first.CompareAndSwap(nil, &err)
				}
			})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e := first.Load(); e != nil {
		return fmt.Errorf("producing: %w", *e)
	}
	return nil
}

// pipelineRun is the in-process pipeline of one phase.
type pipelineRun struct {
	sink   *exactly.Sink
	src    *kafka.Source
	cancel context.CancelFunc
	done   chan error
	served func()
}

func startPipeline(ctx context.Context, o Options, cfg *exactly.Config, onCommit func([]exactly.Outcome), onFetch func(int)) (*pipelineRun, error) {
	sink, err := exactly.NewSink(ctx, cfg, o.Dialect, decode.For(cfg), o.Log)
	if err != nil {
		return nil, err
	}
	opts := []kafka.Option{kafka.OnCommit(onCommit), kafka.OnFetch(onFetch)}
	var obs exactly.Observer
	if o.Observer != nil {
		obs = o.Observer(cfg)
		opts = append(opts, kafka.Observe(obs))
	}
	src, err := kafka.NewSource(cfg, sink, o.Log, opts...)
	if err != nil {
		sink.Close()
		return nil, err
	}
	served := func() {}
	if o.Serve != nil {
		if served, err = o.Serve(ctx, cfg, sink, src, obs); err != nil {
			sink.Close()
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	p := &pipelineRun{sink: sink, src: src, cancel: cancel, done: make(chan error, 1), served: served}
	go func() { p.done <- src.Run(rctx) }()
	return p, nil
}

func (p *pipelineRun) stop() error {
	p.cancel()
	err := <-p.done
	p.served()
	p.sink.Close()
	return err
}

func throughput(ctx context.Context, o Options, db *sql.DB, brokers []string, pipeline, run string, topics, tables []string) (*Throughput, error) {
	o.Progress("producing %d %s records of ~%d-byte rows into %d topics × %d partitions", o.Records, o.Format, o.RecordBytes, o.Topics, o.Partitions)
	start := time.Now()
	if err := produce(ctx, o, brokers, topics, 0, int64(o.Records)); err != nil {
		return nil, err
	}
	produced := float64(o.Records) / time.Since(start).Seconds()
	var rounds []*Throughput
	for r := 1; r <= max(o.Rounds, 1); r++ {
		name := pipeline
		if r > 1 {
			// A pipeline (and group) of its own: the round reads every
			// record again from offset 0.
			name = fmt.Sprintf("%s.r%d", pipeline, r)
			if err := truncate(ctx, db, o.Dialect.Name(), tables); err != nil {
				return nil, err
			}
		}
		cfg, err := config(o, brokers, name, run, "t")
		if err != nil {
			return nil, err
		}
		t, err := round(ctx, o, cfg, db, tables, r)
		if err != nil {
			return t, err
		}
		t.ProduceRecordsPerS = produced
		rounds = append(rounds, t)
	}
	if len(rounds) == 1 {
		return rounds[0], nil
	}
	byRatio := slices.Clone(rounds)
	slices.SortFunc(byRatio, func(a, b *Throughput) int { return cmp.Compare(a.Ratio, b.Ratio) })
	t := byRatio[(len(byRatio)-1)/2]
	for _, r := range rounds {
		t.Rounds = append(t.Rounds, Round{PipelineRecordsPerS: r.PipelineRecordsPerS, BaselineRecordsPerS: r.BaselineRecordsPerS, Ratio: r.Ratio})
	}
	return t, nil
}

// round loads the produced records by the baseline, empties the tables,
// then runs the pipeline cfg names over them and checks the rows.
func round(ctx context.Context, o Options, cfg *exactly.Config, db *sql.DB, tables []string, r int) (*Throughput, error) {
	t := &Throughput{Records: o.Records}
	of := ""
	if o.Rounds > 1 {
		of = fmt.Sprintf(" (round %d of %d)", r, o.Rounds)
	}
	o.Progress("baseline: the database's own bulk upsert of the same rows%s", of)
	settle(ctx, db, o.Dialect.Name())
	method, secs, err := baseline(ctx, o, db, tables)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	t.BaselineMethod, t.BaselineSeconds = method, secs
	t.BaselineRecordsPerS = float64(o.Records) / secs
	if err := truncate(ctx, db, o.Dialect.Name(), tables); err != nil {
		return nil, err
	}
	settle(ctx, db, o.Dialect.Name())

	o.Progress("pipeline: consuming and applying with exactly-once upserts%s", of)
	var (
		mu        sync.Mutex
		firstRec  time.Time
		lastAt    time.Time
		committed int
		batches   int
		failed    error
	)
	all := make(chan struct{})
	onFetch := func(n int) {
		if n > 0 {
			mu.Lock()
			if firstRec.IsZero() {
				firstRec = time.Now()
			}
			mu.Unlock()
		}
	}
	onCommit := func(outs []exactly.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		for _, oc := range outs {
			if oc.Committed {
				committed += len(oc.Batch.Records)
				batches++
			} else if oc.Err != nil && failed == nil {
				failed = oc.Err
			}
		}
		lastAt = time.Now()
		if committed >= o.Records {
			select {
			case <-all:
			default:
				close(all)
			}
		}
	}
	wall := time.Now()
	p, err := startPipeline(ctx, o, cfg, onCommit, onFetch)
	if err != nil {
		return nil, err
	}
	select {
	case <-all:
	case err := <-p.done:
		p.sink.Close()
		return nil, fmt.Errorf("pipeline stopped early: %v", err)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	if err := p.stop(); err != nil {
		return nil, err
	}
	mu.Lock()
	t.Batches = batches
	t.PipelineSeconds = lastAt.Sub(firstRec).Seconds()
	t.StartupSeconds = firstRec.Sub(wall).Seconds()
	t.PipelineWallSeconds = lastAt.Sub(wall).Seconds()
	mu.Unlock()
	t.PipelineRecordsPerS = float64(o.Records) / t.PipelineSeconds
	t.PipelineWallRecordsS = float64(o.Records) / t.PipelineWallSeconds
	t.Ratio = t.PipelineRecordsPerS / t.BaselineRecordsPerS
	if failed != nil {
		o.Log.Warn("a batch failed during the bench (it was retried)", "err", failed)
	}
	ok, err := checkRows(ctx, db, tables, o.Records)
	if err != nil {
		return nil, err
	}
	t.RowsChecked = ok
	if !ok {
		return t, fmt.Errorf("the tables do not hold the %d rows produced", o.Records)
	}
	return t, nil
}

// checkRows counts the rows: every record has a distinct id, so the tables
// hold exactly one row per record.
func checkRows(ctx context.Context, db *sql.DB, tables []string, want int) (bool, error) {
	total := 0
	for _, t := range tables {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return false, fmt.Errorf("counting %s: %w", t, err)
		}
		total += n
	}
	return total == want, nil
}

// peakRSS is VmHWM from /proc/self/status, in bytes (0 if unavailable).
func peakRSS() int64 { return peakRSSOf("/proc/self/status") }

// peakRSSOf is VmHWM from a /proc/PID/status file, in bytes (0 if
// unavailable).
func peakRSSOf(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS starts a new VmHWM measurement (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
