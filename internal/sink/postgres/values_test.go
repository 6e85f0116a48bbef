package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestValueCheckAgreesWithPostgreSQL: every value ValueCheck refuses,
// PostgreSQL refuses too (casting its text form as the apply statement
// does), and every value PostgreSQL takes, ValueCheck takes. A check that
// refused what the database takes would dead-letter good records; one that
// took what it refuses leaves the dead letters depending on the cut.
func TestValueCheckAgreesWithPostgreSQL(t *testing.T) {
	d := &postgres.Dialect{}
	ctx := context.Background()
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "postgres", DSN: testenv.PostgresDSN(t)})
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
		"boolean": {true, false, int64(0), int64(1), int64(2), "t", "TR", " true ", "yes", "ye", "n", "on", "of", "off", "o",
			"1", "0", "01", "maybe", "", " ", "truee", "tru e", 1.0, exactly.Decimal("1"), exactly.Decimal("1.0")},
		"smallint": {int64(32767), int64(32768), int64(-32768), int64(-32769), " 12 ", "+5", "-5", "+-5", "5.0", "abc",
			"", "-", 1.0, 1.5, exactly.Decimal("7"), exactly.Decimal("7.5"), true, "99999999999999999999"},
		"integer": {int64(2147483647), int64(2147483648), "2147483648", "-2147483648", "1e3"},
		"bigint":  {int64(9223372036854775807), "9223372036854775808", "-9223372036854775808", "12abc"},
		"date": {"2024-01-02", "2024-02-29", "2023-02-29", "2024-13-45", "0000-01-01", "2024-01-02T03:04:05Z",
			"2024-01-02 03:04", "maybe", "today", "infinity", "-infinity", "epoch", "Jan", "", "not a date", true,
			time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		"timestamp with time zone": {"2024-01-02T03:04:05Z", "2024-02-30 00:00", "now", "nope", "2024-01-02T03:04:05.123456+02:00"},
		"character varying(5)":     {"abc", "abcde", "abcdef", "abcde   ", "abcde  x", "ééééé", "éééééé", int64(12345), int64(123456), true, "a\x00b"},
		"character(3)":             {"abc", "abcd", "abc ", "ab"},
		"text":                     {"anything", "a\x00b", ""},
		"numeric(5,2)": {int64(999), int64(1000), int64(-999), "999.99", "999.994", "999.995", "-999.995", "12345.6", "1e2", "1e3", "1.5e-3",
			" 7 ", "+7", ".5", "5.", "12abc", "0x1F", "", "NaN", "nan", "Infinity", "-Infinity", "1 2", "--1", exactly.Decimal("123.456"), 2.5, true},
		"numeric(2,2)": {".99", ".995", "0.5", "1", "-0.994"},
		"numeric":      {"1e300", "12abc", "Infinity", "NaN", "0.1234567890123456789012345678901234567", int64(-5)},
	}
	for typ, vals := range cases {
		check := d.ValueCheck(&exactly.Column{Name: "c", Type: typ})
		if check == nil {
			t.Fatalf("%s: no check", typ)
		}
		for _, v := range vals {
			why := check(v)
			var s any
			if v != nil {
				s = postgres.Text(v)
			}
			// As the apply statement: cast to the base type, then the
			// assignment to the column (which checks the length).
			if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS pg_temp.value_check; CREATE TEMP TABLE value_check (c "+typ+")"); err != nil {
				t.Fatal(err)
			}
			_, dbErr := conn.ExecContext(ctx, "INSERT INTO pg_temp.value_check SELECT $1::text::"+postgres.CastType(typ), s)
			if (why != "") != (dbErr != nil) {
				t.Errorf("%s %#v: ValueCheck says %q, PostgreSQL says %v", typ, v, why, dbErr)
			}
		}
	}
}
