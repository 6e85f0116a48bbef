package exactly_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// describedPostgres and describedMySQL are the real dialects, counting
// their catalog queries: each Describe and each DescribeMany.
type describedPostgres struct {
	*postgres.Dialect
	n *atomic.Int64
}

func (d describedPostgres) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.Describe(ctx, q, table)
}

func (d describedPostgres) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.DescribeMany(ctx, q, tables)
}

type describedMySQL struct {
	*mysql.Dialect
	n *atomic.Int64
}

func (d describedMySQL) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.Describe(ctx, q, table)
}

func (d describedMySQL) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.DescribeMany(ctx, q, tables)
}

// Regression: a flight to a table that create: true has yet to make
// described it once per record (a missing table is never cached), so the
// first flight of a backlog cost one catalog query per record: 29,000
// records took MariaDB past the flight's two minutes, and exactly run,
// retrying the flight with as many records, never created the table (a
// stall; Babelfish after 19,000). A flight describes each of its tables a
// few times, whatever its size.
func TestCreateDescribesAMissingTableAFewTimesPerFlight(t *testing.T) {
	for _, c := range ddlCases() {
		var n atomic.Int64
		switch d := c.d.(type) {
		case *postgres.Dialect:
			c.d = describedPostgres{d, &n}
		case *mysql.Dialect:
			c.d = describedMySQL{d, &n}
		default:
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			table := uniq("backlog")
			cfg := ddlConfig(t, c, "  - {topics: t.backlog, table: "+table+", key: [id], create: true, evolve: widen}\n")
			s := ddlSink(t, c, cfg)
			const records = 2000
			var recs []*exactly.Record
			for i := range records {
				recs = append(recs, &exactly.Record{Topic: "t.backlog", Offset: int64(i), Value: fmt.Appendf(nil, `{"id":%d,"name":"n%d"}`, i%500, i)})
			}
			n.Store(0)
			commit(t, s, &exactly.PartitionBatch{Topic: "t.backlog", Records: recs})
			if got := n.Load(); got > 10 {
				t.Errorf("one flight of %d records to a missing table described it %d times", records, got)
			}
			var rows int
			if err := s.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&rows); err != nil || rows != 500 {
				t.Errorf("rows: %d %v, want 500", rows, err)
			}
		})
	}
}

// Regression (issue 20): the first flight after a start described each of
// its tables with its own catalog query, one after another (800 tables:
// 750–800 ms per flight on a local PostgreSQL, seconds on Azure SQL). Its
// tables are described together: one catalog query for 50.
func TestFirstFlightDescribesItsTablesInOneQuery(t *testing.T) {
	const tables = 50
	for _, c := range ddlCases() {
		var n atomic.Int64
		switch d := c.d.(type) {
		case *postgres.Dialect:
			c.d = describedPostgres{d, &n}
		case *mysql.Dialect:
			c.d = describedMySQL{d, &n}
		default:
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			prefix := uniq("many")
			cfg := ddlConfig(t, c, "  - {topics: '^t\\.(.*)$', table: '"+prefix+"_$1', key: [id]}\n")
			s := ddlSink(t, c, cfg)
			var batches []*exactly.PartitionBatch
			for i := range tables {
				table := fmt.Sprintf("%s_%d", prefix, i)
				if _, err := s.DB().Exec("CREATE TABLE " + table + " (id integer PRIMARY KEY, name varchar(20))"); err != nil {
					t.Fatal(err)
				}
				topic := fmt.Sprintf("t.%d", i)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: topic}, 0); err != nil {
					t.Fatal(err)
				}
				batches = append(batches, &exactly.PartitionBatch{Topic: topic, Records: records(topic, 0, `{"id":1,"name":"a"}`, `{"id":2,"name":"b"}`)})
			}
			n.Store(0)
			for _, o := range s.Commit(context.Background(), batches) {
				if !o.Committed || o.Err != nil {
					t.Fatalf("outcome: %+v", o)
				}
			}
			if got := n.Load(); got != 1 {
				t.Errorf("the first flight over %d tables ran %d catalog queries, want 1", tables, got)
			}
		})
	}
}

// forgettingPostgres is PostgreSQL whose DescribeMany, after its query,
// adds a column to a table and forgets it, as another flight's evolve
// would between the query and the cache fill.
type forgettingPostgres struct {
	*postgres.Dialect
	after func()
}

func (d forgettingPostgres) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	got, err := d.Dialect.DescribeMany(ctx, q, tables)
	d.after()
	return got, err
}

// A description read by a flight's catalog query is not cached when its
// table is forgotten (after DDL) before the query's result is: the stale
// description would have stayed until the next failure.
func TestADescriptionForgottenDuringTheQueryIsNotCached(t *testing.T) {
	var s *exactly.Sink
	var altered atomic.Bool
	d := forgettingPostgres{&postgres.Dialect{}, func() {
		if altered.CompareAndSwap(false, true) {
			if _, err := s.DB().Exec("ALTER TABLE fa ADD COLUMN extra integer"); err != nil {
				t.Error(err)
			}
			s.Forget("fa")
		}
	}}
	c := ddlCase{name: "postgres", driver: "postgres", dsn: func(t *testing.T) string { return testenv.PostgresSchema(t) }, d: d}
	cfg := ddlConfig(t, c, "  - {topics: '^t\\.(.*)$', table: 'f$1', key: [id]}\n")
	s = ddlSink(t, c, cfg)
	var batches []*exactly.PartitionBatch
	for _, x := range []string{"a", "b"} {
		if _, err := s.DB().Exec("CREATE TABLE f" + x + " (id integer PRIMARY KEY, name text)"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t." + x}, 0); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, &exactly.PartitionBatch{Topic: "t." + x, Records: records("t."+x, 0, `{"id":1,"name":"a"}`)})
	}
	for _, o := range s.Commit(context.Background(), batches) {
		if !o.Committed || o.Err != nil {
			t.Fatalf("outcome: %+v", o)
		}
	}
	if !altered.Load() {
		t.Fatal("the flight described its tables one by one")
	}
	tb, err := s.Table(context.Background(), "fa")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Column("extra") == nil {
		t.Errorf("fa's cached description is the one from before its ALTER TABLE and Forget: %+v", tb.Columns)
	}
}

// manyCase is one database whose dialect describes many tables at once,
// with the DDL of the tables DescribeMany is compared on.
type manyCase struct {
	name, driver string
	dsn          func(t *testing.T) string
	d            exactly.Dialect
	// integer, text and a text type with a collation of its own.
	integer, text, collated string
	// schema is the query naming the connection's current schema.
	schema string
	// odd is a table name that needs quoting.
	odd string
}

// TestDescribeManyIsDescribe compares each table's description from
// DescribeMany with Describe's: columns in order, types, nullability,
// key order, collation; quoted and mixed-case names, a composite key in
// another order than its columns, no key, a schema-qualified name, and a
// missing table (absent).
func TestDescribeManyIsDescribe(t *testing.T) {
	cases := []manyCase{
		{"postgres", "postgres", func(t *testing.T) string { return testenv.PostgresSchema(t) }, &postgres.Dialect{},
			"integer", "text", `varchar(20) COLLATE "C"`, "SELECT current_schema()", `we"ird]` + "`'"},
		{"mariadb", "mysql", func(t *testing.T) string { return testenv.MySQLDatabase(t) }, &mysql.Dialect{},
			"int", "varchar(50)", "varchar(20) COLLATE utf8mb4_bin", "SELECT DATABASE()", `we"ird]` + "`'"},
		{"sqlserver", "sqlserver", func(t *testing.T) string { return testenv.SQLServerDatabase(t) }, &sqlserver.Dialect{},
			"int", "nvarchar(50)", "nvarchar(20) COLLATE Latin1_General_100_BIN2", "SELECT SCHEMA_NAME()", `we"ird ` + "`'"}, // Babelfish refuses ]] inside [ ]
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ddlSink(t, ddlCase{name: c.name, driver: c.driver, dsn: c.dsn, d: c.d},
				ddlConfig(t, ddlCase{name: c.name, driver: c.driver, dsn: c.dsn, d: c.d}, "  - {topics: t, table: t, key: [id]}\n"))
			md, ok := c.d.(exactly.ManyDescriber)
			if !ok {
				t.Fatalf("%s does not describe many tables at once", c.name)
			}
			q := c.d.Quote
			ddl := map[string]string{
				"plain":     q("id") + " " + c.integer + " NOT NULL PRIMARY KEY, " + q("name") + " " + c.text,
				"MixedCase": q("Id") + " " + c.integer + " NOT NULL PRIMARY KEY, " + q("Some Col") + " " + c.collated + " NOT NULL",
				"composite": q("a") + " " + c.integer + " NOT NULL, " + q("b") + " " + c.text + ", " + q("c") + " " + c.integer + " NOT NULL, " + q("d") + " " + c.collated + " NOT NULL, PRIMARY KEY (" + q("c") + ", " + q("d") + ", " + q("a") + ")",
				"no key":    q("x") + " " + c.integer + ", " + q("y") + " " + c.collated,
				c.odd:       q("k k") + " " + c.integer + " NOT NULL PRIMARY KEY, " + q("v "+c.odd) + " " + c.text,
			}
			var names []string
			for name, cols := range ddl {
				if _, err := s.DB().Exec("CREATE TABLE " + q(name) + " (" + cols + ")"); err != nil {
					t.Fatalf("creating %s: %v", name, err)
				}
				names = append(names, name)
			}
			var schema string
			if err := s.DB().QueryRow(c.schema).Scan(&schema); err != nil {
				t.Fatal(err)
			}
			names = append(names, schema+".composite", schema+".MixedCase", "PLAIN", "missing", schema+".missing")
			got, err := md.DescribeMany(context.Background(), s.DB(), names)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, name := range names {
				want, err := c.d.Describe(context.Background(), s.DB(), name)
				if err != nil {
					t.Fatal(err)
				}
				if want != nil {
					found++
				}
				if (want == nil) != (strings.Contains(name, "missing") || name == "PLAIN" && c.name != "sqlserver") {
					t.Fatalf("Describe(%q) = %+v", name, want) // only SQL Server folds case here
				}
				if !reflect.DeepEqual(got[name], want) {
					t.Errorf("%s:\nDescribeMany %+v\n    Describe %+v", name, got[name], want)
				}
			}
			if len(got) != found {
				t.Errorf("DescribeMany gave %d tables, Describe %d", len(got), found)
			}
		})
	}
}

// TestDescribeManyTellsTablesApartByCaseOnMariaDB: under
// lower_case_table_names=0 (Linux) "Foo" and "foo" are two tables, and
// Describe's = finds each by its exact name. DescribeMany's IN and FIELD
// compared the names under the catalog's case-insensitive collation once
// MariaDB scanned the catalog (three names or more): "Foo" was described
// with the columns of both tables (id, a, id, b) and cached so, and a
// missing "BAR" took the description of "bar".
func TestDescribeManyTellsTablesApartByCaseOnMariaDB(t *testing.T) {
	c := ddlCase{name: "mariadb", driver: "mysql", dsn: func(t *testing.T) string { return testenv.MySQLDatabase(t) }, d: &mysql.Dialect{}}
	s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t, table: t, key: [id]}\n"))
	var lower int
	if err := s.DB().QueryRow("SELECT @@lower_case_table_names").Scan(&lower); err != nil {
		t.Fatal(err)
	}
	if lower != 0 {
		t.Skipf("lower_case_table_names=%d: one table per name whatever its case", lower)
	}
	for _, ddl := range []string{
		"CREATE TABLE `Foo` (id INT NOT NULL PRIMARY KEY, a INT)",
		"CREATE TABLE `foo` (id BIGINT NOT NULL PRIMARY KEY, b TEXT)",
		"CREATE TABLE `bar` (k INT NOT NULL PRIMARY KEY)",
	} {
		if _, err := s.DB().Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"BAR", "Foo", "bar", "foo"} // sorted, as describeFlight asks
	got, err := c.d.(exactly.ManyDescriber).DescribeMany(context.Background(), s.DB(), names)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		want, err := c.d.Describe(context.Background(), s.DB(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s:\nDescribeMany %+v\n    Describe %+v", name, got[name], want)
		}
	}
	// Describe's join to the primary key's columns compared the names so
	// too: "Foo" had its key column id twice, once for foo's key.
	foo, err := c.d.Describe(context.Background(), s.DB(), "Foo")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, col := range foo.Columns {
		cols = append(cols, col.Name)
	}
	if fmt.Sprint(cols, foo.Key) != "[id a] [id]" {
		t.Errorf("Describe(Foo): columns %v, key %v; want [id a], key [id]", cols, foo.Key)
	}
}

// TestDescribeTellsDatabasesApartByCaseOnMariaDB: under
// lower_case_table_names=0 databases "x_Q" and "x_q" are two as well;
// Describe("x_Q.t") joined the key columns of both (id twice), and
// DescribeMany could give it the columns of both.
func TestDescribeTellsDatabasesApartByCaseOnMariaDB(t *testing.T) {
	c := ddlCase{name: "mariadb", driver: "mysql", dsn: func(t *testing.T) string { return testenv.MySQLDatabase(t) }, d: &mysql.Dialect{}}
	s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t, table: t, key: [id]}\n"))
	var lower int
	var db string
	if err := s.DB().QueryRow("SELECT @@lower_case_table_names, DATABASE()").Scan(&lower, &db); err != nil {
		t.Fatal(err)
	}
	if lower != 0 {
		t.Skipf("lower_case_table_names=%d", lower)
	}
	up, low := db+"_Q", db+"_q"
	for _, ddl := range []string{
		"CREATE DATABASE `" + up + "`", "CREATE DATABASE `" + low + "`",
		"CREATE TABLE `" + up + "`.t (id INT NOT NULL PRIMARY KEY, a INT)",
		"CREATE TABLE `" + low + "`.t (id BIGINT NOT NULL PRIMARY KEY, b TEXT)",
		"CREATE TABLE `" + up + "`.u (k INT NOT NULL PRIMARY KEY)",
	} {
		if _, err := s.DB().Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		s.DB().Exec("DROP DATABASE `" + up + "`")
		s.DB().Exec("DROP DATABASE `" + low + "`")
	})
	names := []string{up + ".t", up + ".u", up + ".v", low + ".t"}
	got, err := c.d.(exactly.ManyDescriber).DescribeMany(context.Background(), s.DB(), names)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		want, err := c.d.Describe(context.Background(), s.DB(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s:\nDescribeMany %+v\n    Describe %+v", name, got[name], want)
		}
		if name == up+".t" && (want == nil || len(want.Columns) != 2) {
			t.Errorf("Describe(%s) = %+v, want columns id, a", name, want)
		}
	}
}
