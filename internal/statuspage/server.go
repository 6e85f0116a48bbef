// Package statuspage serves what an operator and an auditor look at over
// HTTP: /metrics (Prometheus), /healthz (the process is alive), /readyz
// (Kafka and the database answer, partitions are assigned, none is halted
// or stuck) and a status page on / that shows, per partition, lag and
// throughput next to the ledger's own rows: the last batches, the dead
// letters and a check of the batch chain. It reads the ledger and never
// writes anything.
package statuspage

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/metrics"
)

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	"rate": func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		if d >= 10*time.Second {
			return d.Truncate(time.Second).String() + " ago"
		}
		return d.Truncate(100*time.Millisecond).String() + " ago"
	},
	"state": func(st string) string {
		switch {
		case st == "ok":
			return "ok"
		case st == "halted":
			return "bad"
		}
		return "warn"
	},
	"lag": func(v int64) string {
		if v == metrics.LagUnknown {
			return "?"
		}
		return fmt.Sprint(v)
	},
	"stamp": stamp,
	"off": func(v int64) string {
		if v < 0 {
			return "?"
		}
		return fmt.Sprint(v)
	},
}).ParseFS(pageFS, "page.html"))

// Server serves one pipeline's metrics, health and status page.
type Server struct {
	Pipeline string
	Metrics  *metrics.Metrics
	Ledger   *exactly.Ledger
	// PingKafka reaches a broker (Source.Ping).
	PingKafka func(ctx context.Context) error
	// StuckAfter is how long fetched records may wait for a commit before
	// /readyz fails. Default 2m.
	StuckAfter time.Duration
	// Refresh is how often the page reloads itself. Default 5s.
	Refresh time.Duration
	// ChainEvery is how long a chain check is reused. Default 30s.
	ChainEvery time.Duration
	// CacheFor is how long the page reuses what it read from the ledger
	// and its readiness checks: fifty browsers on the page must not be
	// fifty GROUP BYs over exactly_batches while flights wait. Default 5s.
	CacheFor time.Duration
	// QueryTimeout bounds each read of the ledger. Default 5s.
	QueryTimeout time.Duration
	// Token, when set, is required as "Authorization: Bearer TOKEN" on /
	// and /metrics; /healthz and /readyz stay open for probes.
	Token string
	// ShowData shows dead-letter keys and values, and the quoted values in
	// the database's error text. Default false: both often hold personal
	// data, so the page shows a payload's size and masks quoted values.
	ShowData bool
	// SampleEvery is how often the throughput and lag charts take a
	// sample (the last hour is kept in memory). Default 15s.
	SampleEvery time.Duration
	Log         *slog.Logger

	histOnce sync.Once
	history  *history

	viewMu sync.Mutex
	view   *ledgerView

	pageMu   sync.Mutex
	pageBody []byte
	pageGzip []byte
	pageAt   time.Time

	// MetricsEvery is how long a /metrics response (per Accept and
	// Accept-Encoding) and the readiness pings are reused. Default 1s.
	MetricsEvery time.Duration

	metricsMu    sync.Mutex
	metricsCache map[string]*response

	pingMu          sync.Mutex
	pingAt          time.Time
	kafkaErr, dbErr error

	mu      sync.Mutex
	chain   []exactly.ChainBreak
	chainN  int64
	chainAt time.Time
	chainEr error
}

// Handler returns the routes: /, /metrics, /healthz, /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.auth(s.cachedMetrics(s.Metrics.Handler())))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.page)))
	return mux
}

// response is a recorded /metrics response.
type response struct {
	at     time.Time
	code   int
	header http.Header
	body   bytes.Buffer
}

func (r *response) Header() http.Header         { return r.header }
func (r *response) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *response) WriteHeader(code int)        { r.code = code }

// cachedMetrics gathers /metrics at most once per MetricsEvery: a
// gather (the Go and process collectors, every series, gzip) costs CPU
// the pipeline needs, and 50 clients reading /metrics back to back
// halved its throughput on 2 cores (issue 16 review: 35k against 74k
// records/s). One gather at a time; the others wait for it and share it.
func (s *Server) cachedMetrics(next http.Handler) http.Handler {
	every := s.MetricsEvery
	if every <= 0 {
		every = time.Second
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Accept") + "\x00" + r.Header.Get("Accept-Encoding")
		s.metricsMu.Lock()
		c := s.metricsCache[key]
		if c == nil || time.Since(c.at) >= every {
			c = &response{code: http.StatusOK, header: http.Header{}}
			next.ServeHTTP(c, r)
			c.at = time.Now()
			if s.metricsCache == nil || len(s.metricsCache) >= 8 { // headers are the client's to vary
				s.metricsCache = map[string]*response{}
			}
			s.metricsCache[key] = c
		}
		s.metricsMu.Unlock()
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.code)
		w.Write(c.body.Bytes())
	})
}

// auth requires the bearer token, when one is set.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="exactly"`)
			http.Error(w, "a bearer token is required (--status-token-file)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ListenAddr gives an address without a host (":9108", "9108") the
// loopback host: the page shows ledger rows and errors, and /metrics the
// topic names, so listening on every interface is a choice written out
// (0.0.0.0:9108), not a default.
func ListenAddr(addr string) string {
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Serve listens on addr and serves until ctx ends. The listener is bound
// before Serve returns its first error, so a taken port fails the command
// at start.
func (s *Server) Serve(ctx context.Context, addr string) (bound string, done <-chan error, err error) {
	ln, err := net.Listen("tcp", ListenAddr(addr))
	if err != nil {
		return "", nil, fmt.Errorf("listening on --metrics-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ch := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		ch <- err
	}()
	go s.sampleLoop(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), ch, nil
}

// FailingAfter is how many batches of a partition in a row must fail
// before /readyz reports it (one failure is retried and usually heals).
const FailingAfter = 3

// Check is one readiness condition.
type Check struct {
	Name string
	OK   bool
	Info string
}

// Ready runs the readiness checks.
func (s *Server) Ready(ctx context.Context) []Check {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out []Check
	add := func(name string, err error, info string) {
		c := Check{Name: name, OK: err == nil, Info: info}
		if err != nil {
			c.Info = err.Error()
		}
		out = append(out, c)
	}
	kafkaErr, dbErr := s.pings(ctx)
	if s.PingKafka != nil {
		add("kafka", kafkaErr, "a broker answered")
	}
	add("database", dbErr, "the sink answered")
	stuckAfter := s.StuckAfter
	if stuckAfter <= 0 {
		stuckAfter = 2 * time.Minute
	}
	assigned := 0
	var halted, stuck, failing []string
	for _, p := range s.Metrics.Snapshot() {
		if !p.Assigned {
			continue
		}
		assigned++
		if p.Halted != nil {
			halted = append(halted, p.TP.String())
		}
		if p.FailedInARow >= FailingAfter {
			failing = append(failing, fmt.Sprintf("%s (%d batches in a row, last: %v)", p.TP, p.FailedInARow, p.LastFailure))
		}
		if p.Stuck > stuckAfter {
			stuck = append(stuck, fmt.Sprintf("%s (%s)", p.TP, p.Stuck.Truncate(time.Second)))
		}
	}
	if st := s.Metrics.Stall(); st.Cause != "" {
		add("moving", fmt.Errorf("nothing moves for %s: %s", time.Since(st.Since).Truncate(time.Second), st.Detail), "")
	} else {
		add("moving", nil, "nothing in the way")
	}
	if assigned == 0 {
		add("partitions", errors.New("no partition assigned yet"), "")
	} else {
		add("partitions", nil, fmt.Sprintf("%d assigned", assigned))
	}
	if len(halted) > 0 {
		add("halted", fmt.Errorf("halted: %s", strings.Join(halted, ", ")), "")
	} else {
		add("halted", nil, "no partition halted")
	}
	if len(failing) > 0 {
		add("failing", fmt.Errorf("batches keep failing: %s", strings.Join(failing, "; ")), "")
	} else {
		add("failing", nil, fmt.Sprintf("no partition failed its last %d batches", FailingAfter))
	}
	if len(stuck) > 0 {
		add("stuck", fmt.Errorf("records waiting longer than %s for a commit: %s", stuckAfter, strings.Join(stuck, ", ")), "")
	} else {
		add("stuck", nil, "no partition waits longer than "+stuckAfter.String())
	}
	return out
}

// pings reaches a broker and the database at most once per MetricsEvery
// (1s): /readyz is open without a token, and each ping goes through the
// pipeline's own Kafka client, so 50 clients calling it back to back cost
// the pipeline's process half a core (issue 16 review: 157 µs of CPU a
// request). Concurrent requests wait for one round of pings and share it.
func (s *Server) pings(ctx context.Context) (kafkaErr, dbErr error) {
	every := s.MetricsEvery
	if every <= 0 {
		every = time.Second
	}
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if s.pingAt.IsZero() || time.Since(s.pingAt) >= every {
		// Not the request's context: the result is shared. Both at
		// once, each with the whole 3 s: a broker that does not answer
		// must not use up the database's time and fail its check too.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		kafkaDone := make(chan error, 1)
		go func() {
			if s.PingKafka == nil {
				kafkaDone <- nil
				return
			}
			kafkaDone <- s.PingKafka(ctx)
		}()
		s.dbErr = s.Ledger.Ping(ctx)
		s.kafkaErr = <-kafkaDone
		s.pingAt = time.Now()
	}
	return s.kafkaErr, s.dbErr
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := s.Ready(r.Context())
	code := http.StatusOK
	for _, c := range checks {
		if !c.OK {
			code = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	for _, c := range checks {
		word := "ok  "
		if !c.OK {
			word = "FAIL"
		}
		// Open without a token (probes): the same masking as the page,
		// since a failing batch's error quotes row values.
		fmt.Fprintf(w, "%s %s: %s\n", word, c.Name, s.text(c.Info))
	}
}

// Row is one partition on the page: what this process sees next to what
// the ledger holds.
type Row struct {
	exactly.TP
	Live   metrics.Partition
	Owned  bool
	Ledger exactly.BatchTotals
	Offset exactly.OffsetRow
	// OpenDead counts the partition's dead letters not yet redriven.
	OpenDead   int64
	LastCommit time.Time // the ledger's updated_at or this process's last commit
	State      string
	Halted     string // why, scrubbed
}

// TableRow is one table on the page: its partitions rolled up. Lag is -1
// when no partition's lag is known (none of them owned by this process).
type TableRow struct {
	Name       string
	Topics     int
	Parts      []Row
	Lag        int64
	Rate       float64
	LastCommit time.Time
	OpenDead   int64
	Failed     int64
	Committed  int64
	Records    int64
	State      string // the worst of its partitions'
}

// LastMS is the last commit in Unix milliseconds (0 never), for sorting.
func (t TableRow) LastMS() int64 {
	if t.LastCommit.IsZero() {
		return 0
	}
	return t.LastCommit.UnixMilli()
}

// collapseOver is how many partitions the page shows open under their
// tables; past it, each table is one line until opened.
const collapseOver = 24

type pageData struct {
	Pipeline     string
	Now          string
	Refresh      int
	Ready        bool
	Checks       []Check
	Tables       []TableRow
	Partitions   int
	Collapsed    bool
	Charts       []Chart
	Sum          exactly.BatchTotals
	Lag          int64
	Rate         float64
	Batches      []exactly.BatchRow
	DeadLetters  []deadLetter
	DeadTotal    int64
	Chain        []exactly.ChainBreak
	ChainRows    int64
	ChainAt      string
	Errors       []string
	LastErr      string
	LastErrAt    time.Time
	RecentFailed int
	// FlightLimit of FlightMax transactions may be in flight now (0 before
	// the source reported it).
	FlightLimit, FlightMax int
	CSS                    template.CSS
	JS                     template.JS
}

// page serves the status page, rendered at most once per CacheFor: the
// load test (50 clients reloading back to back) cost the pipeline 65% of
// its throughput on 2 cores when every request rendered the page, though
// the ledger reads were already shared. It is compressed once per
// rendering too: with 800 tables the HTML is about 1 MB and gzip sends a
// tenth of it.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.pageMu.Lock()
	if s.pageBody == nil || time.Since(s.pageAt) >= s.cacheFor() {
		var buf, z bytes.Buffer
		s.render(&buf, r)
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(buf.Bytes())
		zw.Close()
		s.pageBody, s.pageGzip, s.pageAt = buf.Bytes(), z.Bytes(), time.Now()
	}
	body, zbody := s.pageBody, s.pageGzip
	s.pageMu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(zbody)))
		w.Write(zbody)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(name) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

//go:embed page.css page.js
var assetFS embed.FS

var pageCSS, pageJS = mustRead("page.css"), mustRead("page.js")

// pageCSP lets the page run its own inline style and script and nothing
// else, by hash: a topic name or a value that got past the escaping could
// not run a script, load anything or send the page anywhere. Inline SVG
// (the charts) needs no source.
var pageCSP = "default-src 'none'; style-src '" + sha(pageCSS) + "'; script-src '" + sha(pageJS) +
	"'; img-src 'none'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func mustRead(name string) string {
	b, err := assetFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

func (s *Server) cacheFor() time.Duration {
	if s.CacheFor <= 0 {
		return 5 * time.Second
	}
	return s.CacheFor
}

// severity orders states for a table's roll-up: the worst partition's.
func severity(state string) int {
	switch {
	case state == "halted":
		return 4
	case strings.HasPrefix(state, "waiting"):
		return 3
	case state == "catching up":
		return 2
	case state == "other writer":
		return 1
	}
	return 0
}

func (s *Server) render(w io.Writer, r *http.Request) {
	refresh := s.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	now := time.Now()
	d := pageData{Pipeline: s.Pipeline, Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), Refresh: max(int(refresh.Seconds()), 1),
		CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	v := s.ledgerView(r.Context())
	d.Checks = v.checks
	d.Ready = true
	for _, c := range d.Checks {
		d.Ready = d.Ready && c.OK
	}
	d.Errors = v.errors
	rows := s.partitionRows(v)
	d.rollUp(rows, s.Metrics.Table)
	d.Partitions = len(rows)
	d.Collapsed = len(rows) > collapseOver
	d.Charts = s.charts(now)
	d.Batches, d.DeadLetters, d.DeadTotal = v.batches, v.dead, v.deadTotal
	d.Chain, d.ChainRows, d.ChainAt = v.chain, v.chainRows, v.chainAt
	if e, at := s.Metrics.LastError(); e != nil {
		d.LastErr, d.LastErrAt = s.text(e.Error()), at
	}
	d.FlightLimit, d.FlightMax = s.Metrics.Flights()
	if err := pageTmpl.Execute(w, d); err != nil && s.Log != nil {
		s.Log.Warn("rendering the status page", "err", err)
	}
}

// partitionRows joins, per partition, what the ledger holds (v) with
// what this process sees (its metrics), and names each partition's state.
func (s *Server) partitionRows(v *ledgerView) map[exactly.TP]*Row {
	rows := map[exactly.TP]*Row{}
	row := func(tp exactly.TP) *Row {
		x := rows[tp]
		if x == nil {
			x = &Row{TP: tp, Live: metrics.Partition{TP: tp, NextOffset: -1, HighWatermark: -1, Lag: metrics.LagUnknown}}
			x.Offset.Next = -1
			rows[tp] = x
		}
		return x
	}
	for _, o := range v.offsets {
		row(o.TP).Offset = o
	}
	for tp, t := range v.totals {
		row(tp).Ledger = *t
	}
	for tp, n := range v.openDead {
		row(tp).OpenDead = n
	}
	for _, p := range s.Metrics.Snapshot() {
		x := row(p.TP)
		x.Live, x.Owned = p, p.Assigned
		if p.Halted != nil {
			x.Halted = s.text(p.Halted.Error())
		}
	}
	for _, x := range rows {
		switch {
		case x.Live.Halted != nil:
			x.State = "halted"
		case !x.Owned:
			x.State = "other writer"
		case x.Live.Stuck > 30*time.Second:
			x.State = "waiting " + x.Live.Stuck.Truncate(time.Second).String()
		case x.Live.Lag > 0:
			x.State = "catching up"
		default:
			x.State = "ok"
		}
		x.LastCommit = x.Offset.UpdatedAt
		if x.Live.LastCommit.After(x.LastCommit) {
			x.LastCommit = x.Live.LastCommit
		}
	}
	return rows
}

// rollUp sums the partitions into the page's totals and into one line
// per table (tableOf names a topic's table), tables sorted by name and
// partitions by topic and number.
func (d *pageData) rollUp(rows map[exactly.TP]*Row, tableOf func(topic string) string) {
	tables := map[string]*TableRow{}
	topics := map[string]map[string]bool{}
	for _, x := range rows {
		if x.Owned && x.Live.Lag > 0 {
			d.Lag += x.Live.Lag
		}
		d.Rate += x.Live.RecordsPerSec
		d.Sum.Committed += x.Ledger.Committed
		d.Sum.Failed += x.Ledger.Failed
		d.Sum.Replayed += x.Ledger.Replayed
		d.Sum.Records += x.Ledger.Records
		d.Sum.Upserted += x.Ledger.Upserted
		d.Sum.Deleted += x.Ledger.Deleted
		d.Sum.DeadLettered += x.Ledger.DeadLettered

		name := tableOf(x.Topic)
		t := tables[name]
		if t == nil {
			t = &TableRow{Name: name, Lag: -1, State: "ok"}
			tables[name], topics[name] = t, map[string]bool{}
		}
		t.Parts = append(t.Parts, *x)
		topics[name][x.Topic] = true
		if x.Owned && x.Live.Lag != metrics.LagUnknown {
			t.Lag = max(t.Lag, 0) + max(x.Live.Lag, 0)
		}
		t.Rate += x.Live.RecordsPerSec
		if x.LastCommit.After(t.LastCommit) {
			t.LastCommit = x.LastCommit
		}
		t.OpenDead += x.OpenDead
		t.Failed += x.Ledger.Failed
		t.Committed += x.Ledger.Committed
		t.Records += x.Ledger.Records
		if severity(x.State) > severity(t.State) {
			t.State = x.State
		}
	}
	for name, t := range tables {
		t.Topics = len(topics[name])
		sort.Slice(t.Parts, func(i, j int) bool {
			a, b := t.Parts[i], t.Parts[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
		d.Tables = append(d.Tables, *t)
	}
	sort.Slice(d.Tables, func(i, j int) bool { return d.Tables[i].Name < d.Tables[j].Name })
}

// chainCheck returns the last chain check, running a new one when the
// last is older than ChainEvery.
func (s *Server) chainCheck(ctx context.Context, offsets []exactly.OffsetRow) ([]exactly.ChainBreak, int64, string, error) {
	every := s.ChainEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chainAt.IsZero() || time.Since(s.chainAt) > every {
		s.chain, s.chainN, s.chainEr = s.Ledger.CheckChains(ctx, offsets)
		s.chainAt = time.Now()
	}
	return s.chain, s.chainN, s.chainAt.UTC().Format("15:04:05 UTC"), s.chainEr
}
