package statuspage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exactly/exactly"
)

func TestListenAddrDefaultsToLoopback(t *testing.T) {
	for in, want := range map[string]string{
		":9108": "127.0.0.1:9108", "9108": "127.0.0.1:9108", "0.0.0.0:9108": "0.0.0.0:9108",
		"127.0.0.1:0": "127.0.0.1:0", "[::1]:9108": "[::1]:9108", "10.0.0.5:9108": "10.0.0.5:9108",
	} {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	s, _ := server(t, nil)
	s.Token = "t0ken"
	h := s.Handler()
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/", "", 401}, {"/metrics", "", 401}, {"/", "Bearer wrong", 401}, {"/", "t0ken", 401},
		{"/", "Bearer t0ken", 200}, {"/metrics", "Bearer t0ken", 200},
		{"/healthz", "", 200}, {"/readyz", "", 503}, // open for probes (503: nothing assigned)
	} {
		r, _ := http.NewRequest("GET", c.path, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := &recorder{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code != c.want {
			t.Errorf("%s with %q: %d, want %d", c.path, c.auth, w.code, c.want)
		}
	}
}

type recorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

// TestPageHidesPayloadsAndSecrets pins issue 16: the page showed dead-letter
// payloads (often personal data) and the database's error text with row
// values to anyone who could reach the port, and error text that quoted a
// DSN. By default payloads show as sizes and quoted values are masked; a
// DSN's password is masked always.
func TestPageHidesPayloadsAndSecrets(t *testing.T) {
	s, hs := server(t, nil)
	db := ledgerDB(s)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := db.Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		VALUES ('b1', 'p', 'orders', 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 'h', 'failed', ?, 'w', ?, ?)`,
		`writing table orders: ERROR: invalid input syntax for type integer: "Alice Smith" (SQLSTATE 22P02); dial postgres://app:Pg-S3cret@db/shop`, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO exactly_dead_letters (pipeline, batch_id, topic, "partition", "offset", record_key, record_value, error, created_at)
		VALUES ('p', 'b1', 'orders', 0, 0, 'alice@example.com', '{"ssn":"123-45-6789"}', 'orders[0]@0: Key (email)=(alice@example.com) already exists; Incorrect integer value: ''Alice Smith''', ?)`, now); err != nil {
		t.Fatal(err)
	}
	s.Metrics.Failed("db", "connection", errors.New("dial app:Drv-S3cret@tcp(db:3306)/shop: refused"))
	s.Metrics.Assigned(map[exactly.TP]int64{{Topic: "orders", Partition: 0}: 0})
	s.Metrics.Halted(exactly.TP{Topic: "orders", Partition: 0}, errors.New(`orders[0]@0: value "Bob Jones" refused; password=Kv-S3cret`))
	_, page := fetch(t, hs.URL+"/")
	for _, leak := range []string{"Pg-S3cret", "Drv-S3cret", "Kv-S3cret", "alice@example.com", "123-45-6789", "Alice Smith", "Bob Jones"} {
		if strings.Contains(page, leak) {
			t.Errorf("the page shows %q", leak)
		}
	}
	for _, want := range []string{"orders[0]@0", "(17 bytes, hidden)", "(21 bytes, hidden)", "invalid input syntax for type integer", "xxxxx"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	_, metrics := fetch(t, hs.URL+"/metrics")
	for _, leak := range []string{"Pg-S3cret", "Drv-S3cret", "Kv-S3cret"} {
		if strings.Contains(metrics, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}

	// --status-show-data: the values, never the passwords.
	s.ShowData, s.view, s.pageBody = true, nil, nil
	_, page = fetch(t, hs.URL+"/")
	for _, want := range []string{"alice@example.com", "123-45-6789", "Alice Smith"} {
		if !strings.Contains(page, want) && !strings.Contains(page, strings.ReplaceAll(want, `"`, "&#34;")) {
			t.Errorf("with ShowData the page lacks %q", want)
		}
	}
	for _, leak := range []string{"Pg-S3cret", "Drv-S3cret", "Kv-S3cret"} {
		if strings.Contains(page, leak) {
			t.Errorf("with ShowData the page shows %q", leak)
		}
	}
}

// TestPageReadsTheLedgerOncePerCacheFor: page loads within CacheFor share
// one reading of the ledger; a row committed since shows after it.
func TestPageReadsTheLedgerOncePerCacheFor(t *testing.T) {
	s, hs := server(t, nil)
	s.CacheFor = 500 * time.Millisecond
	now := time.Now().UTC().Format(time.RFC3339Nano)
	ins := func(id string) {
		if _, err := ledgerDB(s).Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		VALUES (?, 'p', 'orders', 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 'h', 'committed', NULL, 'w', ?, ?)`, id, now, now); err != nil {
			t.Fatal(err)
		}
	}
	ins("first")
	if _, page := fetch(t, hs.URL+"/"); !strings.Contains(page, `data-batch="first"`) {
		t.Fatal("first batch not shown")
	}
	ins("second")
	if _, page := fetch(t, hs.URL+"/"); strings.Contains(page, `data-batch="second"`) {
		t.Error("the page read the ledger again within CacheFor")
	}
	time.Sleep(600 * time.Millisecond)
	if _, page := fetch(t, hs.URL+"/"); !strings.Contains(page, `data-batch="second"`) {
		t.Error("the page did not read the ledger again after CacheFor")
	}
}

// TestReadyzHidesRowValues: /readyz stays open when a token is set (for
// probes) and names the last error of a partition whose batches keep
// failing; that error is the database's, quoting row values. It showed
// them to anyone who could reach the port, token or not, whatever
// --status-show-data said (issue 16 review). Now as on the page: quoted
// values masked unless ShowData, passwords always.
func TestReadyzHidesRowValues(t *testing.T) {
	s, hs := server(t, nil)
	s.Token = "t0ken-for-the-page"
	tp := exactly.TP{Topic: "orders", Partition: 0}
	s.Metrics.Assigned(map[exactly.TP]int64{tp: 0})
	fail := errors.New(`writing table orders: ERROR: duplicate key value violates unique constraint "orders_email" Key (email)=(alice@example.com); value "Alice Smith" refused; dial postgres://app:Pg-S3cret@db/shop`)
	for i := 0; i < FailingAfter; i++ {
		s.Metrics.Committed([]exactly.Outcome{{Batch: &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition}, Err: fail}}, time.Millisecond, time.Millisecond)
	}
	code, body := fetch(t, hs.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "batches keep failing") {
		t.Fatalf("/readyz: %d %s, want 503 naming the failing partition", code, body)
	}
	for _, leak := range []string{"alice@example.com", "Alice Smith", "Pg-S3cret"} {
		if strings.Contains(body, leak) {
			t.Errorf("/readyz (no token needed) shows %q:\n%s", leak, body)
		}
	}
	s.ShowData = true
	if _, body = fetch(t, hs.URL+"/readyz"); !strings.Contains(body, "alice@example.com") || strings.Contains(body, "Pg-S3cret") {
		t.Errorf("with ShowData /readyz should show the values, never the password:\n%s", body)
	}
}

// TestQuotedValuesWithQuotesStayHidden: a value holding its own quote
// (O'Brien, or Go's escaped \" in the value checks' messages) ended the
// mask early and showed the rest of the value (issue 16 review).
func TestQuotedValuesWithQuotesStayHidden(t *testing.T) {
	s := &Server{}
	for _, in := range []string{
		`value refused: field "name", column name integer: not an integer: "O\"Brien-Smith"`,
		`Error 1366: Incorrect integer value: 'O'Brien-Smith' for column 'age' at row 1`,
		`ERROR: invalid input syntax for type integer: "O"Brien-Smith" (SQLSTATE 22P02)`,
		`Key (name)=(O'Brien-Smith) already exists`,
	} {
		if got := s.text(in); strings.Contains(got, "Brien") {
			t.Errorf("text(%s) = %s: shows part of the value", in, got)
		}
	}
	if got := s.text(`Error 1366: Incorrect integer value: 'abc' for column 'age' at row 1`); !strings.Contains(got, "for column") {
		t.Errorf("masked too much: %s", got)
	}
}

// countingCollector counts the gathers of a registry.
type countingCollector struct{ n atomic.Int64 }

func (c *countingCollector) Describe(chan<- *prometheus.Desc) {}
func (c *countingCollector) Collect(chan<- prometheus.Metric) { c.n.Add(1) }

// TestMetricsAreGatheredOncePerInterval: /metrics gathered every series,
// the Go and process collectors and gzipped them per request; 50 clients
// reading it back to back halved the pipeline's throughput on 2 cores
// (issue 16 review). Concurrent and repeated requests within
// MetricsEvery now share one gather, per Accept/Accept-Encoding.
func TestMetricsAreGatheredOncePerInterval(t *testing.T) {
	s, _ := server(t, nil)
	s.MetricsEvery = time.Minute
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c := &countingCollector{}
	s.Metrics.Registry().MustRegister(c)
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, bodies[i] = fetch(t, hs.URL+"/metrics")
		}()
	}
	wg.Wait()
	for _, b := range bodies {
		if !strings.Contains(b, "exactly_partitions_assigned") {
			t.Fatalf("a /metrics response lacks exactly_partitions_assigned:\n%.300s", b)
		}
	}
	if n := c.n.Load(); n != 1 {
		t.Errorf("50 concurrent /metrics requests gathered %d times, want 1", n)
	}
	r, _ := http.NewRequest("GET", hs.URL+"/metrics", nil)
	r.Header.Set("Accept-Encoding", "identity") // another encoding: its own gather
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "exactly_partitions_assigned") || c.n.Load() != 2 {
		t.Errorf("identity-encoded /metrics: %d gathers, body %.200s", c.n.Load(), b)
	}
}

// TestReadyzPingsOncePerInterval: /readyz is open without a token and
// pinged a broker (through the pipeline's own Kafka client) and the
// database on every request: 157 µs of the pipeline process's CPU each,
// half a core under 50 clients (issue 16 review). Requests within
// MetricsEvery share one round of pings; the in-memory checks stay fresh.
func TestReadyzPingsOncePerInterval(t *testing.T) {
	s, _ := server(t, nil)
	s.MetricsEvery = time.Minute
	var pings atomic.Int64
	s.PingKafka = func(context.Context) error { pings.Add(1); return nil }
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, body := fetch(t, hs.URL+"/readyz"); !strings.Contains(body, "kafka: a broker answered") {
				t.Errorf("/readyz: %s", body)
			}
		}()
	}
	wg.Wait()
	if n := pings.Load(); n != 1 {
		t.Errorf("50 concurrent /readyz pinged Kafka %d times, want 1", n)
	}
	s.Metrics.Assigned(map[exactly.TP]int64{{Topic: "orders", Partition: 0}: 0})
	if code, body := fetch(t, hs.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("after an assignment /readyz answered %d (the in-memory checks must not be cached):\n%s", code, body)
	}
}

// TestHostileTopicNamesRenderInert: topic names are untrusted input and
// reach the page as table names, data attributes and partition lines. A
// topic named <script>alert(1)</script>, or one that closes an attribute,
// shows as text; the page's one script is its own, allowed by hash in the
// Content-Security-Policy.
func TestHostileTopicNamesRenderInert(t *testing.T) {
	s, hs := server(t, nil)
	for _, topic := range []string{`<script>alert(1)</script>`, `x" onmouseover="alert(2)" y='`, `</tbody></table><img src=x onerror=alert(3)>`} {
		s.Metrics.Assigned(map[exactly.TP]int64{{Topic: topic, Partition: 0}: 0})
		if _, err := ledgerDB(s).Exec(`INSERT INTO exactly_offsets (pipeline, topic, "partition", next_offset, writer, updated_at) VALUES ('p', ?, 0, 0, 'w', '')`, topic); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	for _, bad := range []string{`<script>alert`, `onmouseover="alert`, `<img`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements, want the page's own", n)
	}
	if !strings.Contains(page, `data-table="&lt;script&gt;alert(1)&lt;/script&gt;"`) || !strings.Contains(page, `&gt;&lt;img src=x onerror=alert(3)&gt;`) {
		t.Error("a hostile topic's table is missing or escaped otherwise")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src '" + sha(pageJS) + "'", "style-src '" + sha(pageCSS) + "'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if !strings.Contains(page, "<script>"+pageJS+"</script>") || !strings.Contains(page, "<style>"+pageCSS+"</style>") {
		t.Error("the inline script or style differs from what its hash covers")
	}
}
