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
