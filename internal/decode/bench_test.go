package decode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// BenchmarkJSONDecode: one ~200-byte JSON record with a scalar key, the
// bench workload's shape.
func BenchmarkJSONDecode(b *testing.B) {
	d := &JSON{Key: []string{"id"}}
	r := &exactly.Record{Topic: "t", Key: []byte("12345"),
		Value: []byte(fmt.Sprintf(`{"id":12345,"name":"name-12345","amount":86415,"payload":"%s"}`, strings.Repeat("p", 130)))}
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Value)))
	for b.Loop() {
		if _, err := d.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// cdcRow is a ~200-byte change row: integers, strings, a decimal, a bool,
// a null and a timestamp string.
var cdcRow = []byte(`{"id":1234567,"customer_id":42,"status":"shipped",` +
	`"quantity":3,"total":1234.50,"paid":true,"note":null,` +
	`"created_at":"2026-11-26T02:15:31.123456Z","updated_at":"2026-11-26T02:16:02.654321Z"}`)

// BenchmarkObject: the hand-written parser against the encoding/json path
// it replaced, on one CDC row. Compare the two within one run.
func BenchmarkObject(b *testing.B) {
	for _, bm := range []struct {
		name   string
		decode func([]byte) (map[string]any, error)
	}{{"encoding_json", objectViaEncodingJSON}, {"hand_written", Object}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(cdcRow)))
			for b.Loop() {
				if _, err := bm.decode(cdcRow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
