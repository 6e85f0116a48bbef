package sqlserver_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// rowDecoder makes record value "id:v" an upsert of {id, v}.
type rowDecoder struct{}

func (rowDecoder) Decode(r *exactly.Record) (exactly.Change, error) {
	id, v, _ := strings.Cut(string(r.Value), ":")
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return exactly.Change{}, err
	}
	return exactly.Change{Op: exactly.OpUpsert, Row: map[string]any{"id": n, "v": v}}, nil
}

// tripsLog keeps the round trips the dialect logs per transaction.
type tripsLog struct {
	mu    sync.Mutex
	trips []int64
}

func (l *tripsLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *tripsLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *tripsLog) WithGroup(string) slog.Handler            { return l }
func (l *tripsLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sqlserver transaction round trips" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "round_trips" {
			l.mu.Lock()
			l.trips = append(l.trips, a.Value.Int64())
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// statementByStatement hides the dialect's Pipeliner: Sink then sends a
// flight statement by statement, as it did before ExecPipeline.
type statementByStatement struct{ exactly.Dialect }

// TestRoundTripsPerFlight commits a flight writing N tables (one
// partition each, 3 rows each) and reports the round trips its
// transaction took, as the dialect logs them, sent statement by statement
// and pipelined. N is 4, or the list in EXACTLY_ROUNDTRIPS_TABLES
// (e.g. 1,100,800). Pipelined, the fences, table statements and ledger
// rows of a flight share a batch: the round trips left per table are the
// staging table's (create/empty, bulk copy).
func TestRoundTripsPerFlight(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	sizes := []int{4} // short by default: the suite runs on every push
	if v := os.Getenv("EXACTLY_ROUNDTRIPS_TABLES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("EXACTLY_ROUNDTRIPS_TABLES=%q: %v", v, err)
			}
			sizes = append(sizes, n)
		}
	}
	log := &tripsLog{}
	prev := slog.Default()
	slog.SetDefault(slog.New(log))
	defer slog.SetDefault(prev)
	d := &sqlserver.Dialect{}
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: "sqlserver", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, n := range sizes {
		byStmt := flightTrips(t, dsn, log, statementByStatement{d}, db, n)
		piped := flightTrips(t, dsn, log, d, db, n)
		t.Logf("%d tables: %d round trips statement by statement, %d pipelined", n, byStmt, piped)
		if piped >= byStmt {
			t.Errorf("%d tables: pipelined %d round trips, not fewer than %d statement by statement", n, piped, byStmt)
		}
		// BEGIN, the flight's statements in as few requests as 2,000
		// parameters allow, COMMIT. About 13 distinct values per table
		// here (topic, offsets, 6 row values, batch id, hash, start
		// time), 20 with what packing whole statements into requests
		// leaves unused: measured 3 at 1 and 100 tables, 10 at 800.
		if bound := int64(3 + 20*n/2000); piped > bound {
			t.Errorf("%d tables: %d round trips pipelined, want at most %d", n, piped, bound)
		}
	}
}

// flightTrips creates n tables, commits two flights over all of them and
// returns the round trips of the second (the first describes the tables).
func flightTrips(t *testing.T, dsn string, log *tripsLog, d exactly.Dialect, db *sql.DB, n int) int64 {
	ctx := context.Background()
	{
		prefix := fmt.Sprintf("rt%d_%d_", time.Now().UnixNano()%1e9, n)
		_, piped := d.(exactly.Pipeliner)
		if piped {
			prefix += "p"
		}
		var ddl, drop []string
		for i := 0; i < n; i++ {
			ddl = append(ddl, fmt.Sprintf("CREATE TABLE %s%d (id BIGINT NOT NULL PRIMARY KEY, v NVARCHAR(100) NULL)", prefix, i))
			drop = append(drop, fmt.Sprintf("DROP TABLE %s%d", prefix, i))
		}
		for i := 0; i < len(ddl); i += 100 {
			if _, err := db.ExecContext(ctx, strings.Join(ddl[i:min(i+100, len(ddl))], "; ")); err != nil {
				t.Fatal(err)
			}
		}
		cfg := fmt.Sprintf("pipeline: %s\nsource: {brokers: ['127.0.0.1:1']}\nsink: {driver: sqlserver, dsn: '%s'}\n"+
			"tables:\n  - topics: '^%s(\\d+)$'\n    table: '%s$1'\n    key: [id]\n", prefix, dsn, prefix, prefix)
		c, err := exactly.ParseConfig(strings.NewReader(cfg), "roundtrips.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := exactly.NewSink(ctx, c, d, func(*exactly.TableRule) (exactly.Decoder, error) { return rowDecoder{}, nil },
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		// Every table's offsets, keys and values differ from the others',
		// as in a real flight: equal values are sent once per request.
		var batches []*exactly.PartitionBatch
		for i := 0; i < n; i++ {
			topic := fmt.Sprintf("%s%d", prefix, i)
			base := int64(10 * i)
			if _, err := s.SeedOffset(ctx, exactly.TP{Topic: topic, Partition: 0}, base); err != nil {
				t.Fatal(err)
			}
			b := &exactly.PartitionBatch{Topic: topic, Partition: 0, From: base}
			for off := base; off < base+3; off++ {
				b.Records = append(b.Records, &exactly.Record{Topic: topic, Offset: off,
					Value: []byte(fmt.Sprintf("%d:v%d-%d", 100000*i+int(off), i, off))})
			}
			batches = append(batches, b)
		}
		// Two flights: the first describes the tables, the second is the
		// steady state that is reported.
		var reported int64
		for round := 0; round < 2; round++ {
			if round == 1 {
				for _, b := range batches { // sorted by topic in Commit
					i, _ := strconv.Atoi(strings.TrimPrefix(b.Topic, prefix))
					b.From, b.To = int64(10*i+3), 0
					for j, r := range b.Records {
						r.Offset = b.From + int64(j)
						r.Value = []byte(fmt.Sprintf("%d:w%d-%d", 100000*i+int(r.Offset), i, r.Offset))
					}
				}
			}
			log.mu.Lock()
			log.trips = nil
			log.mu.Unlock()
			for _, o := range s.Commit(ctx, batches) {
				if !o.Committed {
					t.Fatalf("%d tables, round %d: %s not committed: %v", n, round, o.Batch.Topic, o.Err)
				}
				reported = o.RoundTrips
			}
		}
		s.Close()
		for i := 0; i < len(drop); i += 100 {
			db.ExecContext(ctx, strings.Join(drop[i:min(i+100, len(drop))], "; "))
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.trips) != 1 {
			t.Fatalf("%d tables: %d transactions logged, want 1: %v", n, len(log.trips), log.trips)
		}
		if reported != log.trips[0] {
			t.Errorf("%d tables: Outcome.RoundTrips %d (exactly_sink_round_trips), the transaction logged %d", n, reported, log.trips[0])
		}
		return log.trips[0]
	}
}
