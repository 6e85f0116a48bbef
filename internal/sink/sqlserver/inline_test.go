package sqlserver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// TestInlineStoresWhatTheBulkCopyStores: the same write, once inline
// (table variable, multi-row INSERT … VALUES: what a pipelined flight
// sends for a small write) and once bulk-copied (Apply: what a large
// write and row isolation use), leaves the same rows. Same stream, same
// tables, wherever the batches were cut.
func TestInlineStoresWhatTheBulkCopyStores(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	ctx := context.Background()
	d := &sqlserver.Dialect{}
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "sqlserver", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := fmt.Sprintf("inl%d_", time.Now().UnixNano()%1e9)
	def := "(id BIGINT NOT NULL PRIMARY KEY, i INT NULL, ti TINYINT NULL, b BIT NULL, f FLOAT NULL, r REAL NULL, " +
		"dec DECIMAL(20,6) NULL, n NVARCHAR(50) NULL, vc VARCHAR(50) NULL, vb VARBINARY(MAX) NULL, g UNIQUEIDENTIFIER NULL, " +
		"d DATE NULL, dt2 DATETIME2(3) NULL, dto DATETIMEOFFSET(6) NULL, tm TIME(3) NULL, j NVARCHAR(MAX) NULL, " +
		"nz DATETIMEOFFSET(3) NULL, bz VARBINARY(10) NULL)"
	for _, name := range []string{"inline", "bulk"} {
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+prefix+name+" "+def); err != nil {
			t.Fatal(err)
		}
		defer db.ExecContext(ctx, "DROP TABLE "+prefix+name)
	}
	ist := time.FixedZone("", 5*3600+1800)
	at := time.Date(2024, 3, 10, 2, 30, 59, 987654321, ist)
	// nz and bz are NULL in every row: a bare NULL there would be an int.
	cols := []string{"id", "i", "ti", "b", "f", "r", "dec", "n", "vc", "vb", "g", "d", "dt2", "dto", "tm", "j", "nz", "bz"}
	rows := [][]any{
		{int64(1), int64(-2147483648), int64(255), true, 0.1, 0.1, exactly.Decimal("12345678901234.123456"), "héllo ✓ 'x'", "plain ascii",
			[]byte{0, 0xff}, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "2024-02-29", at, at, at, exactly.JSON(`{"a":[1,2.50]}`), nil, nil},
		{int64(2), "42", int64(0), int64(0), "1e-3", exactly.Decimal("2.5"), "7", "", "", []byte{}, nil,
			at, "2024-03-09T23:59:59.9999999Z", "2024-03-10T02:30:00.1234567+05:30", time.Date(1970, 1, 1, 23, 59, 59, 999900000, time.UTC), "null", nil, nil},
		{int64(3), nil, nil, nil, nil, nil, int64(-5), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	write := func(table string) *exactly.TableWrite {
		tb, err := d.Describe(ctx, db, table)
		if err != nil || tb == nil {
			t.Fatalf("describing %s: %v", table, err)
		}
		// The converters work on copies: both writes get the same values.
		up := make([][]any, len(rows))
		for i, r := range rows {
			up[i] = append([]any(nil), r...)
		}
		return &exactly.TableWrite{Table: tb, Keys: []string{"id"}, Columns: cols, Upserts: up}
	}
	run := func(f func(*exactly.Tx) error) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(&exactly.Tx{Tx: tx, Conn: conn}); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// Twice each: the first write inserts, the second updates.
	for range 2 {
		run(func(tx *exactly.Tx) error {
			st, err := d.Statements(ctx, tx, write(prefix+"inline"))
			if err != nil {
				return err
			}
			if len(st) != 1 || !strings.Contains(st[0].SQL, "(VALUES (CAST(@p1 AS ") {
				return fmt.Errorf("a write of 3 rows was not inline: %d statements, %.80s", len(st), st[0].SQL)
			}
			_, err = d.ExecPipeline(ctx, tx, st)
			return err
		})
		run(func(tx *exactly.Tx) error { return d.Apply(ctx, tx, write(prefix+"bulk")) })
	}
	read := func(table string) [][]any {
		r, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out [][]any
		for r.Next() {
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			if err := r.Scan(p...); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	in, bulk := read(prefix+"inline"), read(prefix+"bulk")
	if len(in) != len(rows) || len(bulk) != len(rows) {
		t.Fatalf("%d rows inline, %d bulk-copied, want %d", len(in), len(bulk), len(rows))
	}
	for i := range rows {
		for j, c := range cols {
			if !reflect.DeepEqual(in[i][j], bulk[i][j]) {
				t.Errorf("row %d column %s: inline stored %#v, the bulk copy %#v", i+1, c, in[i][j], bulk[i][j])
			}
		}
	}
	t.Logf("row 1 as stored: %v", in[0])
}

// lockTimeoutsOnBabelfish recognises Babelfish's lock timeout, which it
// reports as 33557097 with PostgreSQL's text, where SQL Server reports
// 1222. Test-only: the product recognises 1222 alone (see LockTimedOut).
type lockTimeoutsOnBabelfish struct{ *sqlserver.Dialect }

func (d lockTimeoutsOnBabelfish) LockTimedOut(err error) bool {
	var me mssql.Error
	return d.Dialect.LockTimedOut(err) ||
		errors.As(err, &me) && me.Number == 33557097 && strings.Contains(me.Message, "lock timeout")
}

// TestPipelinedFenceLockTimeoutDropsOnlyItsPartition: another session
// holds partition 0's exactly_offsets row in an open transaction (a
// paused zombie). The pipelined flight of partitions 0 and 1 waits the
// session's LOCK_TIMEOUT (the default 10 s), the server names the line of
// partition 0's fence, and Sink drops that partition alone: partition 1
// commits in the same Commit call. Before, the whole flight failed as a
// conflict and was retried, every partition with it, for as long as the
// zombie lived.
func TestPipelinedFenceLockTimeoutDropsOnlyItsPartition(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	ctx := context.Background()
	pipeline := fmt.Sprintf("lt%d", time.Now().UnixNano()%1e9)
	table := pipeline + "_items"
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf("pipeline: %s\nsource: {brokers: ['127.0.0.1:1']}\n"+
		"sink: {driver: sqlserver, dsn: '%s'}\ntables:\n  - {topics: %s, table: %s, key: [id]}\n", pipeline, dsn, pipeline, table)), "lt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := lockTimeoutsOnBabelfish{&sqlserver.Dialect{}}
	if _, ok := exactly.Dialect(d).(exactly.Pipeliner); !ok {
		t.Fatal("the dialect is not pipelined")
	}
	s, err := exactly.NewSink(ctx, cfg, d, func(*exactly.TableRule) (exactly.Decoder, error) { return rowDecoder{}, nil },
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DB().ExecContext(ctx, "CREATE TABLE "+table+" (id BIGINT NOT NULL PRIMARY KEY, v NVARCHAR(100) NULL)"); err != nil {
		t.Fatal(err)
	}
	defer s.DB().ExecContext(ctx, "DROP TABLE "+table)
	for p := int32(0); p < 2; p++ {
		if _, err := s.SeedOffset(ctx, exactly.TP{Topic: pipeline, Partition: p}, 0); err != nil {
			t.Fatal(err)
		}
	}
	zombie, err := sql.Open("sqlserver", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	ztx, err := zombie.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ztx.Rollback()
	if _, err := ztx.ExecContext(ctx, "UPDATE exactly_offsets SET writer = N'zombie' WHERE pipeline = @p1 AND [partition] = 0", pipeline); err != nil {
		t.Fatal(err)
	}
	batch := func(p int32) *exactly.PartitionBatch {
		return &exactly.PartitionBatch{Topic: pipeline, Partition: p, From: 0, Records: []*exactly.Record{
			{Topic: pipeline, Partition: p, Offset: 0, Value: []byte(fmt.Sprintf("%d:p%d", p+1, p))}}}
	}
	began := time.Now()
	out := s.Commit(ctx, []*exactly.PartitionBatch{batch(0), batch(1)})
	took := time.Since(began)
	got := map[int32]exactly.Outcome{}
	for _, o := range out {
		got[o.Batch.Partition] = o
	}
	if !got[1].Committed {
		t.Fatalf("partition 1 (not locked) was not committed after %v: %v", took, got[1].Err)
	}
	var lte *exactly.LockTimeoutError
	if got[0].Committed || !errors.As(got[0].Err, &lte) || lte.Partition != 0 {
		t.Fatalf("partition 0 (locked): committed %v, err %v; want a LockTimeoutError of partition 0", got[0].Committed, got[0].Err)
	}
	t.Logf("flight returned after %v: partition 1 committed, partition 0 dropped: %v", took, got[0].Err)
	if took < 9*time.Second || took > 40*time.Second {
		t.Errorf("the flight took %v, want about the session's 10 s LOCK_TIMEOUT", took)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d rows written (%v), want partition 1's one", n, err)
	}
}
