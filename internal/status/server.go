// Package status serves what an operator and an auditor look at over
// HTTP: /metrics (Prometheus), /healthz (the process is alive), /readyz
// (Kafka and the database answer, partitions are assigned, none is halted
// or stuck) and a status page on / that shows, per partition, lag and
// throughput next to the ledger's own rows: the last batches, the dead
// letters and a check of the batch chain. It reads the ledger and never
// writes anything.
package status

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
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
		return time.Since(t).Truncate(100*time.Millisecond).String() + " ago"
	},
	"lag": func(v int64) string {
		if v == metrics.LagUnknown {
			return "?"
		}
		return fmt.Sprint(v)
	},
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
	Ledger   *Ledger
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
	Log      *slog.Logger

	viewMu sync.Mutex
	view   *ledgerView

	pageMu   sync.Mutex
	pageBody []byte
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
	chain   []ChainFinding
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
		// Not the request's context: the result is shared.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		s.kafkaErr = nil
		if s.PingKafka != nil {
			s.kafkaErr = s.PingKafka(ctx)
		}
		s.dbErr = s.Ledger.DB.PingContext(ctx)
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
	Ledger Totals
	Offset OffsetRow
	State  string
	Halted string // why, scrubbed
}

type pageData struct {
	Pipeline     string
	Now          string
	Refresh      int
	Ready        bool
	Checks       []Check
	Rows         []Row
	Sum          Totals
	Lag          int64
	Rate         float64
	Batches      []BatchRow
	DeadLetters  []DeadLetterRow
	DeadTotal    int64
	Chain        []ChainFinding
	ChainRows    int64
	ChainAt      string
	Errors       []string
	LastErr      string
	LastErrAt    time.Time
	RecentFailed int
	// FlightLimit of FlightMax transactions may be in flight now (0 before
	// the source reported it).
	FlightLimit, FlightMax int
}

// page serves the status page, rendered at most once per CacheFor: the
// load test (50 clients reloading back to back) cost the pipeline 65% of
// its throughput on 2 cores when every request rendered the page, though
// the ledger reads were already shared.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.pageMu.Lock()
	if s.pageBody == nil || time.Since(s.pageAt) >= s.cacheFor() {
		var buf bytes.Buffer
		s.render(&buf, r)
		s.pageBody, s.pageAt = buf.Bytes(), time.Now()
	}
	body := s.pageBody
	s.pageMu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(body)
}

func (s *Server) cacheFor() time.Duration {
	if s.CacheFor <= 0 {
		return 5 * time.Second
	}
	return s.CacheFor
}

func (s *Server) render(w io.Writer, r *http.Request) {
	refresh := s.Refresh
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	d := pageData{Pipeline: s.Pipeline, Now: time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), Refresh: max(int(refresh.Seconds()), 1)}
	v := s.ledgerView(r.Context())
	d.Checks = v.checks
	d.Ready = true
	for _, c := range d.Checks {
		d.Ready = d.Ready && c.OK
	}
	d.Errors = v.errors
	offsets, totals := v.offsets, v.totals
	rows := map[exactly.TP]*Row{}
	row := func(tp exactly.TP) *Row {
		x := rows[tp]
		if x == nil {
			x = &Row{TP: tp, Live: metrics.Partition{TP: tp, NextOffset: -1, HighWatermark: -1, Lag: metrics.LagUnknown}}
			x.Offset.NextOffset = -1
			rows[tp] = x
		}
		return x
	}
	for _, o := range offsets {
		row(o.TP).Offset = o
	}
	for tp, t := range totals {
		row(tp).Ledger = *t
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
		d.Rows = append(d.Rows, *x)
	}
	sort.Slice(d.Rows, func(i, j int) bool {
		a, b := d.Rows[i], d.Rows[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
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

// chainCheck returns the last chain check, running a new one when the
// last is older than ChainEvery.
func (s *Server) chainCheck(ctx context.Context, offsets []OffsetRow) ([]ChainFinding, int64, string, error) {
	every := s.ChainEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chainAt.IsZero() || time.Since(s.chainAt) > every {
		s.chain, s.chainN, s.chainEr = s.Ledger.Chain(ctx, offsets)
		s.chainAt = time.Now()
	}
	return s.chain, s.chainN, s.chainAt.UTC().Format("15:04:05 UTC"), s.chainEr
}
