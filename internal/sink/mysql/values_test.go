package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/testenv"
)

// TestValueCheckAgreesWithMariaDB: every value ValueCheck refuses, the
// server refuses too in the dialect's strict session (sent as the apply
// statement sends it), and every value it takes, ValueCheck takes. A check
// that refused what the database takes would dead-letter good records; one
// that took what it refuses leaves the dead letters depending on the cut.
// The values are ones the check decides; spellings it leaves to the
// database ("12abc", "1e3") are not listed.
func TestValueCheckAgreesWithMariaDB(t *testing.T) {
	d := &Dialect{}
	ctx := context.Background()
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "mysql", DSN: testenv.MySQLDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cases := map[string][]any{
		"tinyint(1)":          {true, false, int64(0), int64(1), int64(5), int64(127), int64(128), "1", "0", "maybe", "", "true", " 7 "},
		"tinyint(3) unsigned": {int64(255), int64(256), int64(-1), "255", "256"},
		"smallint(6)":         {int64(32767), int64(32768), int64(-32768), int64(-32769), "-32769", "abc", exactly.Decimal("7")},
		"int(11)":             {int64(2147483647), int64(2147483648), "2147483648", "-2147483648", "seven", "12abc", "1.5", " 1e3", "0x1F", "1 2", "+4", ".5", "1.", "--1"},
		"bigint(20)":          {int64(9223372036854775807), "-9223372036854775808", "x"},
		"decimal(10,2)":       {int64(12345678), int64(123456789), exactly.Decimal("12345678.99"), exactly.Decimal("123456789.1"), exactly.Decimal("1.255"), "-99999999", "abc", exactly.Decimal("0.5"), "12abc", "1e3", "0x1F"},
		"varchar(5)":          {"abc", "abcde", "abcdef", "abcde   ", "abcde  x", "ééééé", "éééééé"},
		"char(3)":             {"abc", "abcd", "abc ", "ab"},
		"tinytext":            {string(make([]byte, 255)), string(make([]byte, 256))},
		"date": {"2024-01-02", "2024-02-29", "2023-02-29", "2024-13-45", "2024-01-02 03:04:05", "2024-04-31",
			time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		"datetime(6)": {"2024-01-02 03:04:05", "2024-02-30 00:00:00", "2024-01-02T03:04:05Z"},
	}
	for typ, vals := range cases {
		col := &exactly.Column{Name: "c", Type: typ}
		check := d.ValueCheck(col)
		if check == nil {
			t.Fatalf("%s: no check", typ)
		}
		conv := converters(&exactly.Table{Name: "value_check", Columns: []exactly.Column{*col}}, []string{"c"})[0]
		if _, err := conn.ExecContext(ctx, "DROP TEMPORARY TABLE IF EXISTS value_check"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE value_check (c "+typ+") DEFAULT CHARSET=utf8mb4"); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			why := check(v)
			_, dbErr := conn.ExecContext(ctx, "INSERT INTO value_check (c) VALUES (?)", conv(v))
			if (why != "") != (dbErr != nil) {
				t.Errorf("%s %#v: ValueCheck says %q, the server says %v", typ, v, why, dbErr)
			}
		}
	}
}

// BenchmarkValueCheck10k is what the value checks add to a batch of
// BenchmarkUpsert10k's shape (id BIGINT, name VARCHAR(300), qty BIGINT,
// updated_at DATETIME(6)): every record's values checked once, before
// the collapse. Compare with BenchmarkUpsert10k/exactly in the same run.
//
//	go test -run '^$' -bench 'ValueCheck10k|Upsert10k/exactly' -benchtime 10x ./internal/sink/mysql/
func BenchmarkValueCheck10k(b *testing.B) {
	d := &Dialect{}
	cols := []exactly.Column{{Name: "id", Type: "bigint(20)"}, {Name: "name", Type: "varchar(300)"},
		{Name: "qty", Type: "bigint(20)"}, {Name: "updated_at", Type: "datetime(6)"}}
	var checks []func(any) string
	for i := range cols {
		checks = append(checks, d.ValueCheck(&cols[i]))
	}
	pad := strings.Repeat("p", 140)
	rows := make([][]any, 10000)
	for i := range rows {
		id := int64(i * 2)
		rows[i] = []any{id, fmt.Sprintf("customer %d with a name of ordinary length ✓ %s", id, pad), int64(i % 1000), time.Unix(1700000000+id, 0).UTC()}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rows {
			for j, c := range checks {
				if c != nil && c(r[j]) != "" {
					b.Fatal("refused")
				}
			}
		}
	}
}
