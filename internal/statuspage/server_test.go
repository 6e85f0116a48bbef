package statuspage

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/metrics"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// server is a status server over a fresh SQLite ledger.
func server(t *testing.T, kafkaErr error) (*Server, *httptest.Server) {
	t.Helper()
	d := &sqlite.Dialect{}
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "l.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, s := range d.LedgerDDL() {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New("p", func(topic string) (string, bool) { return topic, true })
	s := &Server{Pipeline: "p", Metrics: m, Ledger: exactly.NewLedger(db, d, "p"),
		PingKafka: func(context.Context) error { return kafkaErr }}
	testDBs.Store(s, db)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

// testDBs holds the database under each test server's ledger, for tests
// that write ledger rows (the page only reads).
var testDBs sync.Map

func ledgerDB(s *Server) *sql.DB {
	db, _ := testDBs.Load(s)
	return db.(*sql.DB)
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	s, hs := server(t, nil)
	if code, _ := fetch(t, hs.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	code, body := fetch(t, hs.URL+"/readyz")
	if code != 503 || !strings.Contains(body, "FAIL partitions: no partition assigned yet") {
		t.Errorf("before assignment: %d %q", code, body)
	}
	tp := exactly.TP{Topic: "orders", Partition: 1}
	s.Metrics.Assigned(map[exactly.TP]int64{tp: 0})
	if code, body := fetch(t, hs.URL+"/readyz"); code != 200 {
		t.Errorf("assigned, all well: %d %q", code, body)
	}
	s.Metrics.Halted(tp, errors.New("on_error: fail"))
	if code, body := fetch(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "FAIL halted: halted: orders[1]") {
		t.Errorf("halted: %d %q", code, body)
	}
	_, hs2 := server(t, errors.New("no broker answered"))
	if code, body := fetch(t, hs2.URL+"/readyz"); code != 503 || !strings.Contains(body, "FAIL kafka: no broker answered") {
		t.Errorf("kafka down: %d %q", code, body)
	}
}

func TestReadinessFailsWhenRecordsWaitTooLong(t *testing.T) {
	s, hs := server(t, nil)
	s.StuckAfter = 50 * time.Millisecond
	tp := exactly.TP{Topic: "orders", Partition: 0}
	s.Metrics.Assigned(map[exactly.TP]int64{tp: 0})
	s.Metrics.Fetched(tp, 3, 3) // fetched, never committed
	time.Sleep(100 * time.Millisecond)
	if code, body := fetch(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "FAIL stuck: records waiting longer than 50ms for a commit: orders[0]") {
		t.Errorf("stuck: %d %q", code, body)
	}
}

func TestPageShowsChainFindings(t *testing.T) {
	s, hs := server(t, nil)
	s.ShowData = true // the value is shown, escaped
	db := ledgerDB(s)
	ins := `INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		VALUES (?, 'p', 'orders', 0, ?, ?, ?, ?, ?, 0, 0, 0, 0, 'h', ?, ?, 'w', ?, ?)`
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, r := range []struct {
		id       string
		from, to int64
		status   string
		err      any
	}{
		{"b1", 0, 10, "committed", nil},
		{"b2", 12, 20, "committed", nil},                    // a gap: 10..11
		{"b3", 15, 20, "committed", nil},                    // an overlap
		{"b4", 20, 25, "failed", "writing table orders: x"}, // retried, not a break
	} {
		if _, err := db.Exec(ins, r.id, r.from, r.to, r.from, r.to-1, r.to-r.from, r.status, r.err, now, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO exactly_offsets (pipeline, topic, "partition", next_offset, writer, updated_at) VALUES ('p', 'orders', 0, 21, 'w', ?)`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO exactly_dead_letters (pipeline, batch_id, topic, "partition", "offset", record_key, record_value, error, created_at)
		VALUES ('p', 'b1', 'orders', 0, 7, 'k', '<not json>', 'orders[0]@7: invalid character', ?)`, now); err != nil {
		t.Fatal(err)
	}
	code, page := fetch(t, hs.URL+"/")
	if code != 200 {
		t.Fatalf("/ = %d", code)
	}
	for _, want := range []string{
		`id="chain">3 finding(s) in 3 committed batches`,
		"gap: offsets 10..11 are in no committed batch",
		"overlap: a batch starts at 15 but the previous one ended at 20",
		"next_offset is 21 but the last committed batch ends at 20",
		`data-batch="b4"`, "writing table orders: x",
		"orders[0]@7", "&lt;not json&gt;", // escaped, never raw HTML
		`id="total-committed">3<`, `id="total-failed">1<`, `id="total-dead">1<`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<not json>") {
		t.Error("a record value reached the page unescaped")
	}
}

// The page's chain follows the ledger as verify does: a replayed row
// re-applies a committed range by design (not an overlap), and a reseeded
// row restarts the chain where exactly reseed moved next_offset (not a gap).
// It reported "overlap … (offsets applied twice?)" after any replay.
func TestChainAfterReplayAndReseed(t *testing.T) {
	s, _ := server(t, nil)
	db := ledgerDB(s)
	ins := `INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		VALUES (?, 'p', 'orders', 0, ?, ?, ?, ?, ?, 0, 0, 0, 0, 'h', ?, NULL, 'w', ?, ?)`
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, r := range []struct {
		id       string
		from, to int64
		status   string
	}{
		{"b1", 0, 10, "committed"},
		{"b2", 10, 20, "committed"},
		{"b3", 5, 15, "replayed"},   // exactly replay of 5..14
		{"b4", 20, 100, "reseeded"}, // the topic was recreated: next_offset 20 -> 100
		{"b5", 100, 110, "committed"},
	} {
		if _, err := db.Exec(ins, r.id, r.from, r.to, r.from, r.to-1, r.to-r.from, r.status, now, now); err != nil {
			t.Fatal(err)
		}
	}
	offsets := []exactly.OffsetRow{{TP: exactly.TP{Topic: "orders", Partition: 0}, Next: 110}}
	findings, _, err := s.Ledger.CheckChains(context.Background(), offsets)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Fatalf("a replay and a reseed are not chain breaks: %v", findings)
	}
	// A real break after the reseed is still found.
	if _, err := db.Exec(ins, "b6", 112, 120, 112, 119, 8, "committed", now, now); err != nil {
		t.Fatal(err)
	}
	offsets[0].Next = 120
	findings, _, err = s.Ledger.CheckChains(context.Background(), offsets)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || !strings.Contains(findings[0].Problem(), "gap: offsets 110..111") {
		t.Fatalf("the gap after the reseed: %v", findings)
	}
}

// TestReadinessBlamesOnlyKafkaWhenKafkaHangs: the two pings shared one 3 s
// deadline, Kafka's first, so a broker that accepts connections and does
// not answer used it up and /readyz and the page said "FAIL database:
// context deadline exceeded" too, with the database fine (seen live: the
// kfake broker stopped with SIGSTOP under exactly run on PostgreSQL).
func TestReadinessBlamesOnlyKafkaWhenKafkaHangs(t *testing.T) {
	s, hs := server(t, nil)
	s.PingKafka = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	code, body := fetch(t, hs.URL+"/readyz")
	if code != 503 || !strings.Contains(body, "FAIL kafka: context deadline exceeded") || !strings.Contains(body, "ok   database: the sink answered") {
		t.Errorf("/readyz with Kafka hanging: %d\n%s", code, body)
	}
}
