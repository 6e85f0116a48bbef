package mysql_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/testenv"
)

func TestConfigParsesURLsAndDriverDSNs(t *testing.T) {
	for _, c := range []struct {
		dsn                       string
		user, pass, addr, db, tls string
		interpolate               bool
	}{
		{"mysql://root@127.0.0.1:3306/test", "root", "", "127.0.0.1:3306", "test", "", true},
		{"mysql://app:p%40ss%2Fw%3Ard@db.example.com:3307/shop?tls=skip-verify", "app", "p@ss/w:rd", "db.example.com:3307", "shop", "skip-verify", true},
		{"mysql://u@db.example.com/x", "u", "", "db.example.com:3306", "x", "", true},
		{"mariadb://u:pw@[::1]:3306/x?interpolateParams=false", "u", "pw", "[::1]:3306", "x", "", false},
		{"root@tcp(127.0.0.1:3306)/test", "root", "", "127.0.0.1:3306", "test", "", true},
		{"app:secret@tcp(10.0.0.1:3306)/shop?interpolateParams=false&tls=true", "app", "secret", "10.0.0.1:3306", "shop", "true", false},
	} {
		t.Run(c.dsn, func(t *testing.T) {
			mc, err := mysql.Config(c.dsn)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintln(mc.User, mc.Passwd, mc.Addr, mc.DBName, mc.TLSConfig, mc.InterpolateParams)
			want := fmt.Sprintln(c.user, c.pass, c.addr, c.db, c.tls, c.interpolate)
			if got != want {
				t.Errorf("got  %swant %s", got, want)
			}
			// What exactly relies on, whatever the DSN says.
			if !mc.ClientFoundRows || !mc.ParseTime || mc.MultiStatements || mc.Loc != time.UTC {
				t.Errorf("clientFoundRows=%v parseTime=%v multiStatements=%v loc=%v", mc.ClientFoundRows, mc.ParseTime, mc.MultiStatements, mc.Loc)
			}
			if mc.Params["time_zone"] != "'+00:00'" || !strings.Contains(mc.Params["sql_mode"], "STRICT_ALL_TABLES") {
				t.Errorf("session params: %v", mc.Params)
			}
		})
	}
	if _, err := mysql.Config("mysql://root@127.0.0.1:3306/test?multiStatements=maybe"); err == nil {
		t.Error("a bad driver parameter was accepted")
	}
}

func TestClassify(t *testing.T) {
	d := &mysql.Dialect{}
	for _, c := range []struct {
		err  error
		want exactly.ErrorKind
	}{
		{&gomysql.MySQLError{Number: 1213, Message: "Deadlock found"}, exactly.ErrConflict},
		{&gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}, exactly.ErrConflict},
		{fmt.Errorf("writing table t: %w", &gomysql.MySQLError{Number: 1205}), exactly.ErrConflict},
		{&gomysql.MySQLError{Number: 1264, Message: "Out of range value"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1366, Message: "Incorrect integer value"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1406, Message: "Data too long"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1048, Message: "Column cannot be null"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1292, Message: "Incorrect datetime value"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1452, Message: "foreign key constraint fails"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 4025, Message: "CONSTRAINT failed"}, exactly.ErrData},
		{&gomysql.MySQLError{Number: 1927, Message: "Connection was killed"}, exactly.ErrConnection},
		{&gomysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, exactly.ErrConnection},
		{&gomysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}, exactly.ErrOther},
		{gomysql.ErrInvalidConn, exactly.ErrConnection},
		{fmt.Errorf("committing: %w", driver.ErrBadConn), exactly.ErrConnection},
		{io.ErrUnexpectedEOF, exactly.ErrConnection},
		{errors.New("something else"), exactly.ErrOther},
	} {
		if got := d.Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestLockWaitTimeoutRetriesTheWholeBatch pins FAULTS.md #10: MySQL rolls
// back only the statement that hit innodb_lock_wait_timeout and leaves the
// transaction open. The batch must never commit without that statement:
// it is retried as a unit, and when it cannot finish nothing of it stays.
func TestLockWaitTimeoutRetriesTheWholeBatch(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "innodb_lock_wait_timeout=1"
	pipeline := fmt.Sprintf("p%d", time.Now().UnixNano())
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: ['127.0.0.1:1']}
sink: {driver: mysql, dsn: '%s'}
tables:
  - {topics: t.a, table: a_items, key: [id]}
  - {topics: t.b, table: b_items, key: [id]}
`, pipeline, dsn)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := exactly.NewSink(ctx, cfg, &mysql.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	for _, stmt := range []string{
		"CREATE TABLE a_items (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
		"CREATE TABLE b_items (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
		"INSERT INTO b_items VALUES (2, 'old')",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"t.a", "t.b"} {
		if _, err := s.SeedOffset(ctx, exactly.TP{Topic: topic, Partition: 0}, 0); err != nil {
			t.Fatal(err)
		}
	}
	batches := func() []*exactly.PartitionBatch {
		return []*exactly.PartitionBatch{
			{Topic: "t.a", From: 0, Records: []*exactly.Record{{Topic: "t.a", Offset: 0, Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"name":"new"}`)}}},
			{Topic: "t.b", From: 0, Records: []*exactly.Record{{Topic: "t.b", Offset: 0, Key: []byte(`{"id":2}`), Value: []byte(`{"id":2,"name":"new"}`)}}},
		}
	}
	// A second session holds b_items id 2; a_items is written first, in an
	// earlier statement that succeeds, as do the two offset advances.
	hold := func() *sql.Tx {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var name string
		if err := tx.QueryRow("SELECT name FROM b_items WHERE id = 2 FOR UPDATE").Scan(&name); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	state := func() string {
		var a, b sql.NullString
		db.QueryRow("SELECT name FROM a_items WHERE id = 1").Scan(&a)
		db.QueryRow("SELECT name FROM b_items WHERE id = 2").Scan(&b)
		offs, err := s.LoadOffsets(ctx, []exactly.TP{{Topic: "t.a"}, {Topic: "t.b"}})
		if err != nil {
			t.Fatal(err)
		}
		var committed int
		db.QueryRow("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed'", pipeline).Scan(&committed)
		return fmt.Sprintf("a=%s b=%s offsets a=%d b=%d committed=%d", a.String, b.String,
			offs[exactly.TP{Topic: "t.a"}], offs[exactly.TP{Topic: "t.b"}], committed)
	}

	// The lock outlives every attempt: nothing of the batch may remain.
	holder := hold()
	short, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	out := s.Commit(short, batches())
	cancel()
	for _, o := range out {
		if o.Committed {
			t.Fatalf("%s committed while b_items was locked", o.Batch.Topic)
		}
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "a= b=old offsets a=0 b=0 committed=0"; got != want {
		t.Fatalf("after lock-wait timeouts:\n got %s\nwant %s", got, want)
	}
	var failed int
	db.QueryRow("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'failed'", pipeline).Scan(&failed)
	if failed == 0 {
		t.Error("the failed batch is not recorded in the ledger")
	}

	// The lock is released during the retries: the batch commits whole.
	holder = hold()
	go func() {
		time.Sleep(1500 * time.Millisecond)
		holder.Rollback()
	}()
	out = s.Commit(ctx, batches())
	for _, o := range out {
		if !o.Committed {
			t.Fatalf("%s not committed after the lock was released: %v", o.Batch.Topic, o.Err)
		}
	}
	if got, want := state(), "a=new b=new offsets a=1 b=1 committed=2"; got != want {
		t.Errorf("after the retry:\n got %s\nwant %s", got, want)
	}
}

// TestBadValuesAreDeadLetteredNotTruncated pins the session's strict mode:
// a value too long for its column, or out of range, is refused by MariaDB
// and dead-lettered, where a non-strict session would have stored a
// truncated or clipped row with only a warning.
func TestBadValuesAreDeadLetteredNotTruncated(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: strict
source: {brokers: ['127.0.0.1:1']}
sink: {driver: mysql, dsn: '%s'}
tables:
  - {topics: t.s, table: s_items, key: [id]}
`, dsn)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := exactly.NewSink(ctx, cfg, &mysql.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode string
	if err := s.DB().QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil || !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("session sql_mode %q (%v): want STRICT_ALL_TABLES", mode, err)
	}
	if _, err := s.DB().Exec("CREATE TABLE s_items (id BIGINT PRIMARY KEY, code VARCHAR(5) NOT NULL, n TINYINT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedOffset(ctx, exactly.TP{Topic: "t.s"}, 0); err != nil {
		t.Fatal(err)
	}
	recs := []*exactly.Record{
		{Topic: "t.s", Offset: 0, Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"code":"ok","n":1}`)},
		{Topic: "t.s", Offset: 1, Key: []byte(`{"id":2}`), Value: []byte(`{"id":2,"code":"much too long","n":1}`)},
		{Topic: "t.s", Offset: 2, Key: []byte(`{"id":3}`), Value: []byte(`{"id":3,"code":"ok","n":1000}`)},
		{Topic: "t.s", Offset: 3, Key: []byte(`{"id":4}`), Value: []byte(`{"id":4,"code":"fine","n":-5}`)},
	}
	out := s.Commit(ctx, []*exactly.PartitionBatch{{Topic: "t.s", From: 0, Records: recs}})
	if !out[0].Committed {
		t.Fatalf("not committed: %v", out[0].Err)
	}
	var got []string
	rows, err := s.DB().Query("SELECT id, code, n FROM s_items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, n int64
		var code string
		rows.Scan(&id, &code, &n)
		got = append(got, fmt.Sprintf("%d:%s:%d", id, code, n))
	}
	rows.Close()
	if fmt.Sprint(got) != "[1:ok:1 4:fine:-5]" {
		t.Errorf("rows: got %v, want [1:ok:1 4:fine:-5] (ids 2 and 3 refused)", got)
	}
	var dead []int64
	drows, err := s.DB().Query("SELECT `offset` FROM exactly_dead_letters WHERE pipeline = 'strict' ORDER BY `offset`")
	if err != nil {
		t.Fatal(err)
	}
	for drows.Next() {
		var o int64
		drows.Scan(&o)
		dead = append(dead, o)
	}
	drows.Close()
	if fmt.Sprint(dead) != "[1 2]" {
		t.Errorf("dead letters at offsets %v, want [1 2]", dead)
	}
}
